/**
 * Benchmark worker: the mcast sender, through the library.
 *
 * - `plain`: `openSender` (the `io` path) and an `endpoint.send()` loop, the
 *   exercise's datagrams (no frame, no acknowledgements awaited).
 * - `reliable`: {@linkcode sendReliable} fed by an async generator of
 *   bulletins, waiting for `receivers` receivers (`expect`).
 *
 * Every datagram (plain) or bulletin (reliable) carries its number (u32 at
 * offset 0) and, with `stamp`, the time it was handed over in µs since the
 * epoch (f64 at offset 8).
 *
 * With `keys` (reliable), the socket is wrapped in the frame guard exactly
 * as `mcast-send --key-file PATH [--encrypt] [--sign-key PATH]` wraps it
 * (see `_keys.ts`).
 *
 * Usage: `deno run --unstable-net --allow-all bench/mcast_send.ts '<json>'`
 * with {@linkcode McastSendConfig}; prints `{"event":"ready"}` once its socket
 * is open, then one JSON result line.
 *
 * @module
 */

import { parseGroup } from "../lib/net/address.ts";
import type { ReliableSenderEvent } from "../lib/events.ts";
import { resolveInterface } from "../lib/net/interfaces.ts";
import { sendReliable } from "../lib/reliable/sender.ts";
import { emptyDrops } from "../lib/reliable/stats.ts";
import { guardEndpoint } from "../lib/cli/cli.ts";
import type { IoChoice } from "../lib/net/io.ts";
import { chooseIo, openSender } from "../lib/net/open.ts";
import { type BenchKeys, loadGuard } from "./_keys.ts";
import { clockMicros, config, emit, memory, Pacer, sleep } from "./_worker.ts";

/** Configuration of the mcast sender. */
export interface McastSendConfig {
  /** `plain` datagrams or the `reliable` protocol. */
  mode: "plain" | "reliable";
  /** Multicast group (239.255.x.y). */
  group: string;
  /** UDP port. */
  port: number;
  /** Datagram (plain) or bulletin (reliable) size in bytes, at least 16. */
  size: number;
  /** Stop handing over data after this long (ms). */
  durationMs?: number;
  /** Stop after this many datagrams or bulletins. */
  count?: number;
  /** Offered rate, datagrams or bulletins per second; absent = flat out. */
  rate?: number;
  /** Stamp the hand-over time into each. */
  stamp?: boolean;
  /** Reliable: receivers to wait for. */
  receivers?: number;
  /** Reliable: largest datagram (default: the library's 1400). */
  mtu?: number;
  /** Reliable: datagrams ahead of the slowest receiver (default 4096). */
  window?: number;
  /** Reliable: give up this long after the last bulletin (ms). */
  deadlineMs?: number;
  /** Wait this long after `ready` before sending (idle memory baseline). */
  holdMs?: number;
  /**
   * Reliable, diagnostic: hand over one shared, never-modified buffer
   * instead of a fresh one per bulletin (no number or stamp then), to tell
   * the sender's own memory from the garbage of the bulletins.
   */
  reuse?: boolean;
  /** Reliable: the group key, encryption and signing key, as the CLI takes them. */
  keys?: BenchKeys;
  /** `--io` of the sockets and keys (default `deno`: the runtime's). */
  io?: IoChoice;
}

const cfg = config<McastSendConfig>();
const group = parseGroup(cfg.group);
const iface = resolveInterface("127.0.0.1", 4);
// As the CLI: the keys are read before the socket is opened, and the guard
// shares its drop counters with the protocol.
const dropped = emptyDrops();
const guard = cfg.keys
  ? await loadGuard({ ...cfg.keys, io: cfg.io ?? "deno" }, dropped)
  : undefined;
const opened = await openSender(iface, {
  ttl: 1,
  io: chooseIo(cfg.io ?? "deno"),
});
const endpoint = guardEndpoint(opened.endpoint, guard);
const size = Math.max(16, cfg.size);
const count = cfg.count ?? Infinity;
const durationMs = cfg.durationMs ?? Infinity;
const pacer = cfg.rate ? new Pacer(cfg.rate) : undefined;
emit({ event: "ready", memory: memory() });
if (cfg.holdMs) {
  await sleep(cfg.holdMs);
  emit({ event: "idle", memory: memory() });
}

/** Plain mode: `endpoint.send()` in a loop. */
async function runPlain(): Promise<void> {
  const payload = new Uint8Array(size).fill(0x78);
  const view = new DataView(payload.buffer);
  const to = { address: group.address, port: cfg.port };
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
      await endpoint.send(payload, to);
    } catch {
      errors += 1;
    }
    sent += 1;
  }
  const elapsedMs = performance.now() - start;
  endpoint.close();
  emit({
    event: "result",
    sent,
    errors,
    bytes: sent * size,
    elapsedMs,
    pps: elapsedMs > 0 ? sent * 1000 / elapsedMs : 0,
    memory: memory(),
  });
}

let firstPull: number | undefined;
let sentAt: number | undefined;
let reportAt: number | undefined;
let handed = 0;

/** The bulletins: fresh buffers, numbered, optionally stamped and paced. */
async function* bulletins(): AsyncGenerator<Uint8Array> {
  firstPull = performance.now();
  const end = firstPull + durationMs;
  const shared = new Uint8Array(size);
  for (let n = 1; n <= count; n++) {
    if (pacer) await pacer.wait(n - 1);
    if (performance.now() >= end) return;
    handed = n;
    if (cfg.reuse) {
      yield shared;
      continue;
    }
    // A fresh buffer each time: the sender may hold it until it flushes.
    const payload = new Uint8Array(size);
    const view = new DataView(payload.buffer);
    view.setUint32(0, n);
    if (cfg.stamp) view.setFloat64(8, clockMicros());
    yield payload;
  }
}

function onEvent(event: ReliableSenderEvent): void {
  if (event.type === "sent") sentAt = performance.now();
  if (event.type === "report") reportAt = performance.now();
}

/** The counters that are not zero. */
function nonZero(counts: object): Record<string, number> {
  return Object.fromEntries(
    Object.entries(counts).filter(([, value]) => value !== 0),
  );
}

/** Reliable mode: `sendReliable()` fed by {@linkcode bulletins}. */
async function runReliable(): Promise<void> {
  const report = await sendReliable(endpoint, bulletins(), {
    group,
    port: cfg.port,
    onEvent,
    expect: cfg.receivers ?? 1,
    deadlineMs: cfg.deadlineMs ?? 20_000,
    mtu: cfg.mtu,
    window: cfg.window,
    dropped,
  });
  const streamMs = firstPull !== undefined && reportAt !== undefined
    ? reportAt - firstPull
    : 0;
  emit({
    event: "result",
    handed,
    delivered: report.delivered,
    reason: report.reason,
    bulletins: report.bulletins,
    packets: report.packets,
    bytes: report.bytes,
    retransmitted: report.retransmitted,
    nacks: report.nacks,
    acks: report.acks,
    gone: report.gone,
    elapsedMs: report.elapsedMs,
    streamMs,
    sendMs: firstPull !== undefined && sentAt !== undefined
      ? sentAt - firstPull
      : 0,
    bulletinsPerSecond: streamMs > 0 ? report.bulletins * 1000 / streamMs : 0,
    bytesPerSecond: streamMs > 0 ? report.bytes * 1000 / streamMs : 0,
    receivers: report.receivers.map((r) => ({
      name: r.name,
      status: r.status,
      bulletins: r.bulletins,
      nacks: r.nacks,
    })),
    dropped: nonZero(dropped),
    memory: memory(),
  });
}

if (cfg.mode === "plain") await runPlain();
else await runReliable();
pacer?.close();
Deno.exit(0);
