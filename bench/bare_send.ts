/**
 * Benchmark worker: the bare Deno sender, the runtime's ceiling. A tight
 * `await conn.send()` loop on one `Deno.DatagramConn` bound to 127.0.0.1
 * (TTL 1), for a fixed time or count, flat out or paced. Every datagram
 * carries its number (u32 at offset 0) and, with `stamp`, the send time in
 * µs since the epoch (f64 at offset 8).
 *
 * Usage: `deno run --unstable-net --allow-all bench/bare_send.ts '<json>'`
 * with {@linkcode BareSendConfig}; prints one JSON result line.
 *
 * @module
 */

import { clockMicros, config, emit, memory, Pacer } from "./_worker.ts";

/** Configuration of the bare sender. */
export interface BareSendConfig {
  /** Multicast group (239.255.x.y). */
  group: string;
  /** UDP port. */
  port: number;
  /** Datagram size in bytes (at least 16). */
  size: number;
  /** Stop after this long (ms). */
  durationMs?: number;
  /** Stop after this many datagrams. */
  count?: number;
  /** Offered rate in datagrams/s; absent or 0 = as fast as possible. */
  rate?: number;
  /** Stamp the send time into each datagram. */
  stamp?: boolean;
}

const cfg = config<BareSendConfig>();
const conn = Deno.listenDatagram({
  transport: "udp",
  hostname: "127.0.0.1",
  port: 0,
  loopback: true,
});
// As lib/net/socket.ts does: the runtime sets the TTL through a membership only
// (224.0.0.1 is joined already by every host: no IGMP report).
const membership = await conn.joinMulticastV4("224.0.0.1", "127.0.0.1");
await membership.setTTL(1);

const payload = new Uint8Array(Math.max(16, cfg.size));
payload.fill(0x78);
const view = new DataView(payload.buffer);
const to = { transport: "udp" as const, hostname: cfg.group, port: cfg.port };
const count = cfg.count ?? Infinity;
const durationMs = cfg.durationMs ?? Infinity;
const pacer = cfg.rate ? new Pacer(cfg.rate) : undefined;
emit({ event: "ready" });

const start = performance.now();
const end = start + durationMs;
let sent = 0;
let errors = 0;
while (sent < count) {
  if (pacer) await pacer.wait(sent);
  if (performance.now() >= end) break;
  view.setUint32(0, sent);
  if (cfg.stamp) view.setFloat64(8, clockMicros());
  try {
    await conn.send(payload, to);
  } catch {
    errors += 1;
  }
  sent += 1;
}
const elapsedMs = performance.now() - start;
pacer?.close();
conn.close();
emit({
  event: "result",
  sent,
  errors,
  bytes: sent * payload.length,
  elapsedMs,
  pps: elapsedMs > 0 ? sent * 1000 / elapsedMs : 0,
  memory: memory(),
});
Deno.exit(0);
