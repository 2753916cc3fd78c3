/**
 * Benchmark program: the library's group endpoint at full packet rate, the
 * counterpart of `bench/c/mmsg_recv.c` in the packet-rate section
 * (`bench/c_pair.ts`). Joins `--group` on 127.0.0.1 through the endpoint
 * `--io` names (`native` = `openNativeGroupSocket`, recvmmsg batches and an
 * 8 MiB receive buffer; `deno` = `openGroupSocket`) and counts datagrams
 * and bytes until `--count` arrived (0: no limit), `--idle-ms` passed after
 * the last one, or `--max-ms` in all.
 *
 * Usage: `deno run --allow-all --unstable-net bench/native_recv.ts --io
 * native --group 239.255.78.1 --port 30001 [--count 0] [--idle-ms 200]
 * [--max-ms 10000]`; prints `{"event":"ready"}` once joined, then one JSON
 * line as `mmsg_recv` does: `{"event":"result","received":N,"bytes":B,
 * "seconds":S,"rate":R,"highest":H}`, seconds from the first datagram to
 * the last, rate = (N - 1) / S.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { Group } from "../lib/net/address.ts";
import type { ResolvedInterface } from "../lib/net/interfaces.ts";
import { openGroupSocket } from "../lib/net/socket.ts";
import type { DatagramEndpoint } from "../lib/net/socket.ts";
import { emit } from "./_worker.ts";
import { rateBetween } from "./stats.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    io: { type: "string", default: "native" },
    group: { type: "string" },
    port: { type: "string" },
    count: { type: "string", default: "0" },
    "idle-ms": { type: "string", default: "200" },
    "max-ms": { type: "string", default: "10000" },
  },
});

const io = values.io;
const address = values.group ?? "";
const port = Number(values.port);
const count = Number(values.count);
const idleMs = Number(values["idle-ms"]);
const maxMs = Number(values["max-ms"]);
if (
  (io !== "native" && io !== "deno") || !/^239\.255\./.test(address) ||
  !(port > 0 && port < 65536) || !(count >= 0) || !(idleMs > 0) ||
  !(maxMs > 0)
) {
  console.error(
    "usage: native_recv.ts --io native|deno --group 239.255.X.Y --port N [--count N] [--idle-ms MS] [--max-ms MS]",
  );
  Deno.exit(2);
}

const group: Group = { family: 4, address };
const iface: ResolvedInterface = { family: 4, address: "127.0.0.1", index: 0 };
const endpoint: DatagramEndpoint = io === "native"
  ? await (await import("../lib/net/native_socket.ts")).openNativeGroupSocket(
    group,
    iface,
    { port },
  )
  : await openGroupSocket(group, iface, { port });

let received = 0;
let bytes = 0;
let highest = -1;
let firstMs = 0;
let lastMs = 0;
const startMs = performance.now();
const timer = setInterval(() => {
  const now = performance.now();
  if (
    (received > 0 && now - lastMs > idleMs) || now - startMs > maxMs
  ) {
    endpoint.close();
  }
}, 10);
emit({ event: "ready", io });

try {
  for (;;) {
    const datagram = endpoint.tryReceive?.() ?? await endpoint.receive();
    if (datagram === null) break;
    const now = performance.now();
    if (received === 0) firstMs = now;
    lastMs = now;
    received += 1;
    const payload = datagram.payload;
    bytes += payload.length;
    if (payload.length >= 4) {
      const number = new DataView(
        payload.buffer,
        payload.byteOffset,
        payload.byteLength,
      ).getUint32(0);
      if (number > highest) highest = number;
    }
    if (count > 0 && received >= count) break;
  }
} finally {
  clearInterval(timer);
  endpoint.close();
}
emit({
  event: "result",
  io,
  received,
  bytes,
  seconds: (lastMs - firstMs) / 1000,
  rate: rateBetween(received, firstMs, lastMs),
  highest,
});
