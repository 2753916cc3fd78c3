/**
 * Benchmark worker: the bare Deno receiver. One `Deno.DatagramConn` bound to
 * the group with address reuse, joined on 127.0.0.1, reading into one reused
 * buffer; counts datagrams and bytes and, with `latency`, computes one-way
 * latency from the send time stamped at offset 8. Ends `idleMs` after the
 * last datagram (or after `maxMs` in all).
 *
 * Usage: `deno run --unstable-net --allow-all bench/bare_recv.ts '<json>'`
 * with {@linkcode BareRecvConfig}; prints `{"event":"ready"}` once joined,
 * then one JSON result line.
 *
 * @module
 */

import { config, emit, isClosed, memory, Samples } from "./_worker.ts";
import { rateBetween } from "./stats.ts";

/** Configuration of the bare receiver. */
export interface BareRecvConfig {
  /** Multicast group (239.255.x.y). */
  group: string;
  /** UDP port. */
  port: number;
  /** End this long after the last datagram (ms). */
  idleMs: number;
  /** End after this long in all (ms). */
  maxMs: number;
  /** Compute one-way latency from the stamped send time. */
  latency?: boolean;
}

const cfg = config<BareRecvConfig>();
const conn = Deno.listenDatagram({
  transport: "udp",
  hostname: cfg.group,
  port: cfg.port,
  reuseAddress: true,
  loopback: true,
});
await conn.joinMulticastV4(cfg.group, "127.0.0.1");

const buffer = new Uint8Array(65536);
const view = new DataView(buffer.buffer);
const samples = new Samples();
let received = 0;
let bytes = 0;
let firstMs = 0;
let lastMs = 0;
let highest = -1;
let reordered = 0;
const startMs = performance.now();
const timer = setInterval(() => {
  const now = performance.now();
  if (
    (received > 0 && now - lastMs > cfg.idleMs) || now - startMs > cfg.maxMs
  ) {
    conn.close();
  }
}, 10);
emit({ event: "ready" });

try {
  for (;;) {
    const [data] = await conn.receive(buffer);
    const now = performance.now();
    if (received === 0) firstMs = now;
    lastMs = now;
    received += 1;
    bytes += data.length;
    if (data.length >= 16) {
      const seq = view.getUint32(0);
      if (seq < highest) reordered += 1;
      else highest = seq;
      if (cfg.latency) {
        samples.push(
          (performance.timeOrigin + now) * 1000 - view.getFloat64(8),
        );
      }
    }
  }
} catch (error) {
  if (!isClosed(error)) throw error;
} finally {
  clearInterval(timer);
}
emit({
  event: "result",
  received,
  bytes,
  reordered,
  highest,
  elapsedMs: lastMs - firstMs,
  pps: rateBetween(received, firstMs, lastMs),
  bytesPerSecond: received > 1
    ? (bytes - bytes / received) * 1000 / (lastMs - firstMs)
    : 0,
  latency: cfg.latency ? samples.summary() : null,
  memory: memory(),
});
Deno.exit(0);
