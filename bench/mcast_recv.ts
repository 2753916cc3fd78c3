/**
 * Benchmark worker: the mcast receiver, through the library's
 * {@linkcode receiveBulletins} on a socket from `openGroup` (the `io` path)
 * (joined on 127.0.0.1), with an event sink that only counts.
 *
 * - `plain`: `ack: null`; counts `message` events; ends `idleMs` after the
 *   last one.
 * - `reliable`: with protocol options (its `name`); counts `bulletin`
 *   events and checks that bulletins arrive exactly once and in order
 *   (numbers 1, 2, 3…, each payload carrying its own number and the expected
 *   size); ends after `count` bulletins or when the driver writes `stop`.
 *
 * With `latency`, one-way latency is the receive time minus the sender's
 * timestamp: the DATA frame's (`sentAt`) in reliable mode, the payload's in
 * plain mode (reliable mode also reports the payload's: the time the
 * bulletin was handed to the sender, so packing delay included).
 *
 * With `keys` (reliable), the socket is wrapped in the frame guard exactly
 * as `mcast-recv --key-file PATH [--trust PUB]` wraps it (see `_keys.ts`);
 * the result then carries the drop counters the guard and the protocol
 * share.
 *
 * Usage: `deno run --unstable-net --allow-all bench/mcast_recv.ts '<json>'`
 * with {@linkcode McastRecvConfig}; prints `{"event":"ready"}` once joined,
 * then one JSON result line.
 *
 * @module
 */

import { parseGroup } from "../lib/net/address.ts";
import type { ReceiverEvent } from "../lib/events.ts";
import { resolveInterface } from "../lib/net/interfaces.ts";
import { receiveBulletins } from "../lib/receiver.ts";
import { emptyDrops } from "../lib/reliable/stats.ts";
import { guardEndpoint } from "../lib/cli/cli.ts";
import type { IoChoice } from "../lib/net/io.ts";
import { chooseIo, openGroup } from "../lib/net/open.ts";
import { type BenchKeys, loadGuard } from "./_keys.ts";
import { config, emit, memory, onStopLine, Samples } from "./_worker.ts";
import { rateBetween } from "./stats.ts";

/** Configuration of the mcast receiver. */
export interface McastRecvConfig {
  /** `plain` datagrams or the `reliable` protocol. */
  mode: "plain" | "reliable";
  /** Multicast group (239.255.x.y). */
  group: string;
  /** UDP port. */
  port: number;
  /** Reliable: the receiver's name. */
  name?: string;
  /** Reliable: the expected bulletin size (checked when given). */
  size?: number;
  /** Return after this many datagrams or bulletins. */
  count?: number;
  /** Plain: end this long after the last datagram (ms). */
  idleMs?: number;
  /** End after this long in all (ms). */
  maxMs: number;
  /** Compute one-way latency. */
  latency?: boolean;
  /** Reliable: the group key and trusted signers, as the CLI takes them. */
  keys?: BenchKeys;
  /** `--io` of the sockets and keys (default `deno`: the runtime's). */
  io?: IoChoice;
}

const cfg = config<McastRecvConfig>();
const group = parseGroup(cfg.group);
const iface = resolveInterface("127.0.0.1", 4);
// As the CLI: the keys are read before the socket is opened, and the guard
// shares its drop counters with the protocol.
const dropped = emptyDrops();
const guard = cfg.keys
  ? await loadGuard({ ...cfg.keys, io: cfg.io ?? "deno" }, dropped)
  : undefined;
const opened = await openGroup(group, iface, {
  port: cfg.port,
  io: chooseIo(cfg.io ?? "deno"),
});
const endpoint = guardEndpoint(opened.endpoint, guard);
const controller = new AbortController();
const stop = () => controller.abort();
onStopLine(stop);

const wire = new Samples();
const app = new Samples();
let ready = false;
let count = 0;
let bytes = 0;
let firstMs = 0;
let lastMs = 0;
let next = 1;
let highest = -1;
let reordered = 0;
const problems: string[] = [];
let unrecoverable = 0;
let failed = 0;
let stats: unknown = null;

function problem(text: string): void {
  if (problems.length < 10) problems.push(text);
}

function received(payload: Uint8Array): number {
  const now = performance.now();
  if (count === 0) firstMs = now;
  lastMs = now;
  count += 1;
  bytes += payload.length;
  return now;
}

function stamp(payload: Uint8Array): DataView | undefined {
  if (payload.length < 16) return undefined;
  return new DataView(payload.buffer, payload.byteOffset, payload.length);
}

function onEvent(event: ReceiverEvent): void {
  switch (event.type) {
    case "waiting":
      if (!ready) {
        ready = true;
        emit({ event: "ready", memory: memory() });
      }
      break;
    case "message": {
      const now = received(event.payload);
      const view = stamp(event.payload);
      if (!view) break;
      const seq = view.getUint32(0);
      if (seq < highest) reordered += 1;
      else highest = seq;
      if (cfg.latency) {
        wire.push((performance.timeOrigin + now) * 1000 - view.getFloat64(8));
      }
      break;
    }
    case "bulletin": {
      const now = received(event.payload);
      if (event.number !== next) {
        problem(`bulletin ${event.number} arrived when ${next} was due`);
      }
      next = event.number + 1;
      if (cfg.size !== undefined && event.payload.length !== cfg.size) {
        problem(
          `bulletin ${event.number} has ${event.payload.length} bytes, not ${cfg.size}`,
        );
      }
      const view = stamp(event.payload);
      if (view && view.getUint32(0) !== event.number) {
        problem(
          `bulletin ${event.number} carries number ${view.getUint32(0)}`,
        );
      }
      if (cfg.latency) {
        const us = (performance.timeOrigin + now) * 1000;
        wire.push(us - event.sentAt);
        if (view) app.push(us - view.getFloat64(8));
      }
      break;
    }
    case "unrecoverable":
      unrecoverable += event.bulletins;
      problem(`unrecoverable: sequences ${event.first}-${event.last}`);
      break;
    case "bulletin-failed":
      failed += 1;
      problem(`bulletin ${event.number} failed: ${event.reason}`);
      break;
    case "stopped":
      stats = event.stats ?? null;
      break;
  }
}

const startMs = performance.now();
const timer = setInterval(() => {
  const now = performance.now();
  const idle = cfg.idleMs !== undefined && count > 0 &&
    now - lastMs > cfg.idleMs;
  if (idle || now - startMs > cfg.maxMs) stop();
}, 10);
try {
  await receiveBulletins(endpoint, {
    group,
    port: cfg.port,
    ack: null,
    count: cfg.count,
    onEvent,
    signal: controller.signal,
    protocol: cfg.mode === "reliable"
      ? { name: cfg.name ?? "bench", dropped }
      : undefined,
  });
} finally {
  clearInterval(timer);
}
emit({
  event: "result",
  name: cfg.name ?? null,
  received: count,
  bytes,
  reordered,
  highest,
  lastNumber: next - 1,
  problems,
  unrecoverable,
  failed,
  elapsedMs: lastMs - firstMs,
  pps: rateBetween(count, firstMs, lastMs),
  bytesPerSecond: count > 1
    ? (bytes - bytes / count) * 1000 / (lastMs - firstMs)
    : 0,
  latency: cfg.latency ? wire.summary() : null,
  appLatency: cfg.latency && cfg.mode === "reliable" ? app.summary() : null,
  stats,
  dropped: Object.fromEntries(
    Object.entries(dropped).filter(([, value]) => value !== 0),
  ),
  timedOut: performance.now() - startMs > cfg.maxMs,
  memory: memory(),
});
Deno.exit(0);
