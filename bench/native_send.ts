/**
 * Benchmark program: the library's sender endpoint at full packet rate,
 * the counterpart of `bench/c/mmsg_send.c` in the packet-rate section
 * (`bench/c_pair.ts`). Sends `--count` datagrams of `--size` bytes to
 * `--group`:`--port` for at most `--seconds`, flat out or paced to `--rate`
 * datagrams per second, through the endpoint `--io` names:
 * `native` = `openNativeSenderSocket` (`lib/net/native_socket.ts`,
 * sendmmsg batches; flushed at the end), `deno` = `openSenderSocket`
 * (`lib/net/socket.ts`). Bound to 127.0.0.1, TTL 1. Every datagram carries
 * its number (u32, network order) at offset 0.
 *
 * Usage: `deno run --allow-all --unstable-net bench/native_send.ts --io
 * native --group 239.255.78.1 --port 30001 --size 64 --count 100000
 * --seconds 1 [--rate 200000]`; prints one JSON line as `mmsg_send` does:
 * `{"event":"result","sent":N,"errors":E,"seconds":S,"rate":R}`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { ResolvedInterface } from "../lib/net/interfaces.ts";
import { openSenderSocket } from "../lib/net/socket.ts";
import type { DatagramEndpoint } from "../lib/net/socket.ts";
import { Yielder } from "../lib/reliable/schedule.ts";
import { emit, sleep } from "./_worker.ts";

/** An endpoint that may queue datagrams (the native one does). */
type Flushable = DatagramEndpoint & { flush?: () => Promise<void> | void };

const { values } = parseArgs({
  args: Deno.args,
  options: {
    io: { type: "string", default: "native" },
    group: { type: "string" },
    port: { type: "string" },
    size: { type: "string", default: "64" },
    count: { type: "string" },
    seconds: { type: "string", default: "1" },
    rate: { type: "string", default: "0" },
  },
});

const io = values.io;
const group = values.group ?? "";
const port = Number(values.port);
const size = Number(values.size);
const count = values.count === undefined ? Infinity : Number(values.count);
const seconds = Number(values.seconds);
const rate = Number(values.rate);
if (
  (io !== "native" && io !== "deno") || !/^239\.255\./.test(group) ||
  !(port > 0 && port < 65536) || !(size >= 4 && size <= 65507) ||
  !(count > 0) || !(seconds > 0) || !(rate >= 0)
) {
  console.error(
    "usage: native_send.ts --io native|deno --group 239.255.X.Y --port N --size B --count N --seconds S [--rate R]",
  );
  Deno.exit(2);
}

const iface: ResolvedInterface = { family: 4, address: "127.0.0.1", index: 0 };
const endpoint: Flushable = io === "native"
  ? await (await import("../lib/net/native_socket.ts")).openNativeSenderSocket(
    iface,
    { ttl: 1 },
  )
  : await openSenderSocket(iface, { ttl: 1 });

const payload = new Uint8Array(size).fill(0x78);
const view = new DataView(payload.buffer);
const to = { address: group, port };
const yielder = new Yielder();
const interval = rate > 0 ? 1000 / rate : 0;

/**
 * Waits until `due` (ms): a timer when more than 2 ms ahead, else yielding
 * to the event loop (so queued sends flush meanwhile), as `Pacer` does.
 */
async function waitUntil(due: number): Promise<void> {
  for (;;) {
    const ahead = due - performance.now();
    if (ahead <= 0) return;
    if (ahead > 2) await sleep(ahead - 1.5);
    else await yielder.yield();
  }
}

const start = performance.now();
const end = start + seconds * 1000;
let sent = 0;
let errors = 0;
while (sent < count) {
  if (interval > 0) {
    // Datagram `sent` is due `sent / rate` s after the start; only a loop
    // ahead of that waits (no promise per datagram when behind).
    const now = performance.now();
    if (now >= end) break;
    const due = start + sent * interval;
    if (now < due) await waitUntil(due);
  } else if (sent % 64 === 0 && performance.now() >= end) {
    // Flat out: the clock once per 64 datagrams (mmsg_send: per batch).
    break;
  }
  view.setUint32(0, sent);
  try {
    await endpoint.send(payload, to);
  } catch {
    errors += 1;
  }
  sent += 1;
}
try {
  await endpoint.flush?.();
} catch {
  errors += 1;
}
const elapsed = (performance.now() - start) / 1000;
yielder.close();
endpoint.close();
emit({
  event: "result",
  io,
  sent,
  errors,
  seconds: elapsed,
  rate: elapsed > 0 ? sent / elapsed : 0,
});
