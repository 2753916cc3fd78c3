/**
 * Hostile input, in process (no sockets): a flood of NACKs cannot make the
 * reliable sender send more than its repair budget; floods of HELLOs and
 * ACKs from made-up receivers cannot grow its roster past the cap; DATA
 * frames claiming huge or interleaved bulletins cannot make a receiver hold
 * more than its bounds; and bulletins and receiver names full of terminal
 * escape sequences are printed escaped. Section 5 holds the regressions of
 * fixed findings: NACK and GONE ranges that overlap cost the walk of their
 * union, a receiver not on a named roster never holds the window, a
 * stalled receiver is evicted at the deadline, fragments are copied, and
 * GONE notices are paid from the repair budget.
 *
 * Heap figures are taken after a full garbage collection (`gc`, exposed
 * through `node:v8` and `node:vm`) and count `heapUsed` plus `external`
 * (where ArrayBuffers live).
 *
 * @module
 */

import assert from "node:assert/strict";
import v8 from "node:v8";
import process from "node:process";
import vm from "node:vm";
import { parseGroup, type Peer } from "../lib/net/address.ts";
import type { ReceiverEvent, ReliableSenderEvent } from "../lib/events.ts";
import {
  type DataFrame,
  type DataRecord,
  decodeFrame,
  encodeFrame,
  type Frame,
} from "../lib/wire/frame.ts";
import { type MemoryEndpoint, MemoryNetwork } from "../lib/net/memory_net.ts";
import {
  eventJson,
  receiverText,
  reliableSenderText,
} from "../lib/cli/printer.ts";
import { receiveBulletins } from "../lib/receiver.ts";
import {
  ReliableReceiver,
  type ReliableReceiverOptions,
} from "../lib/reliable/receiver.ts";
import { sendReliable } from "../lib/reliable/sender.ts";
import type { Datagram, DatagramEndpoint } from "../lib/net/socket.ts";
import type { DropCounts } from "../lib/reliable/stats.ts";
import { bounded, delay, gate, until } from "./_wait.ts";

const GROUP = "239.42.5.1";
const PORT = 17450;
const group = parseGroup(GROUP);
const encoder = new TextEncoder();
const MIB = 1024 * 1024;
/** The sender's default datagram size. */
const MTU = 1400;
/** A bulletin that fills one datagram exactly: MTU - header - DATA fields - record header. */
const FULL = MTU - 24 - 18 - 20;

// ---- helpers -------------------------------------------------------------------

v8.setFlagsFromString("--expose-gc");
const gc: unknown = vm.runInNewContext("gc");

/** Bytes in use (heap and ArrayBuffers) after a full collection. */
function memoryInUse(): number {
  assert.equal(typeof gc, "function", "gc is not available");
  (gc as () => void)();
  const usage = Deno.memoryUsage();
  return usage.heapUsed + usage.external;
}

function mib(bytes: number): string {
  return `${(bytes / MIB).toFixed(1)} MiB`;
}

function bulletinsOf(count: number, size: number): Uint8Array[] {
  const list: Uint8Array[] = [];
  for (let n = 1; n <= count; n++) {
    const bytes = new Uint8Array(size);
    for (let k = 0; k < size; k++) bytes[k] = (n * 31 + k * 7) & 0xff;
    list.push(bytes);
  }
  return list;
}

/** Yields the bulletins, then keeps the session open until `end` resolves. */
async function* feed(
  bulletins: Uint8Array[],
  end: Promise<void>,
): AsyncGenerator<Uint8Array> {
  for (const bulletin of bulletins) yield bulletin;
  await end;
}

function range(first: number, last: number): number[] {
  const list: number[] = [];
  for (let n = first; n <= last; n++) list.push(n);
  return list;
}

function sessionOf(events: ReliableSenderEvent[]): string {
  const event = events.find((e) => e.type === "session");
  assert.ok(event?.type === "session", "no session event");
  return event.session;
}

/** Every drop counter but the named ones is zero. */
function assertOtherDropsZero(
  dropped: DropCounts,
  except: (keyof DropCounts)[],
): void {
  for (const [reason, count] of Object.entries(dropped)) {
    if (!except.includes(reason as keyof DropCounts)) {
      assert.equal(count, 0, `dropped.${reason}`);
    }
  }
}

/** A datagram the group listener saw, with when it arrived. */
interface Seen {
  at: number;
  bytes: number;
  frame: Frame;
}

/** A member of the group that records every frame sent to it. */
function listen(network: MemoryNetwork) {
  const endpoint = network.open({ address: GROUP, port: PORT });
  endpoint.join(GROUP);
  const record = {
    endpoint,
    seen: [] as Seen[],
    /** First transmissions of DATA seen. */
    firsts: 0,
    done: undefined as unknown as Promise<void>,
  };
  record.done = (async () => {
    for (;;) {
      const datagram = await endpoint.receive();
      if (datagram === null) return;
      const at = performance.now();
      const decoded = decodeFrame(datagram.payload);
      if (decoded.kind !== "frame") continue;
      const frame = decoded.frame;
      if (frame.type === "data" && !frame.retransmit) record.firsts += 1;
      record.seen.push({ at, bytes: datagram.payload.length, frame });
    }
  })();
  return record;
}

/**
 * Wraps an endpoint: counts the frames sent by type, and drops DATA frames
 * with chosen sequence numbers on the way in.
 */
class Tap implements DatagramEndpoint {
  readonly inner: DatagramEndpoint;
  readonly sentTypes = new Map<string, number>();
  readonly dropSeqs: Set<number>;

  constructor(inner: DatagramEndpoint, dropSeqs: number[] = []) {
    this.inner = inner;
    this.dropSeqs = new Set(dropSeqs);
  }

  get local(): Peer {
    return this.inner.local;
  }

  /** Frames sent, all types. */
  get sent(): number {
    let total = 0;
    for (const count of this.sentTypes.values()) total += count;
    return total;
  }

  async receive(): Promise<Datagram | null> {
    for (;;) {
      const datagram = await this.inner.receive();
      if (datagram === null) return null;
      const decoded = decodeFrame(datagram.payload);
      if (
        decoded.kind === "frame" && decoded.frame.type === "data" &&
        this.dropSeqs.has(decoded.frame.seq)
      ) {
        continue;
      }
      return datagram;
    }
  }

  send(payload: Uint8Array, to: Peer): Promise<void> {
    const decoded = decodeFrame(payload);
    if (decoded.kind === "frame") {
      const type = decoded.frame.type;
      this.sentTypes.set(type, (this.sentTypes.get(type) ?? 0) + 1);
    }
    return this.inner.send(payload, to);
  }

  close(): void {
    this.inner.close();
  }
}

/** A receiver on the group, through a {@linkcode Tap}. */
function startReceiver(
  network: MemoryNetwork,
  name: string,
  options: { signal: AbortSignal; count?: number; dropSeqs?: number[] },
) {
  const endpoint = network.open({ address: GROUP, port: PORT });
  endpoint.join(GROUP);
  const tap = new Tap(endpoint, options.dropSeqs);
  const record = {
    tap,
    numbers: [] as number[],
    events: [] as ReceiverEvent[],
    done: undefined as unknown as Promise<number>,
  };
  record.done = receiveBulletins(tap, {
    group,
    port: PORT,
    ack: null,
    count: options.count,
    signal: options.signal,
    protocol: { name, tuning: { random: () => 0 } },
    onEvent(event) {
      record.events.push(event);
      if (event.type === "bulletin") record.numbers.push(event.number);
    },
  });
  return record;
}

// ---- 1. NACK floods: no amplification ----------------------------------------------

/** The repair budget of the flood tests: 256 KiB/s. */
const REPAIR_RATE = 256 * 1024;
/**
 * The repair token bucket's burst (lib/reliable/schedule.ts): a tenth of a second's
 * worth, at least one datagram.
 */
const REPAIR_BURST = Math.max(REPAIR_RATE / 10, MTU);
/** Datagrams the sender holds during the NACK flood. */
const HELD = 64;
const FLOOD_MS = 1_500;
const ATTACKERS = ["mallory", "eve-1", "eve-2", "eve-3", "trudy"];

/**
 * Sends `frames` round robin from `attacker` to `to` for `ms`, in batches of
 * 40 per timer tick (several thousand frames a second).
 */
async function flood(
  attacker: MemoryEndpoint,
  to: Peer,
  frames: Uint8Array[],
  ms: number,
): Promise<{ count: number; bytes: number; perFrame: number[]; ms: number }> {
  const perFrame = frames.map(() => 0);
  let count = 0;
  let bytes = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    for (let k = 0; k < 40; k++) {
      const index = count % frames.length;
      await attacker.send(frames[index]!, to);
      perFrame[index]! += 1;
      count += 1;
      bytes += frames[index]!.length;
    }
    await delay(1);
  }
  return { count, bytes, perFrame, ms: performance.now() - start };
}

Deno.test("NACK flood: repairs stay within repairRate plus one burst, at every moment", async () => {
  const network = new MemoryNetwork({ queueLimit: 1 << 17 });
  const listener = listen(network);
  const end = gate();
  const stop = new AbortController();
  const endpoint = network.open({ address: "127.0.0.1" });
  const attacker = network.open({ address: "127.0.0.1" });
  const events: ReliableSenderEvent[] = [];
  // A feed that stays open: 64 full datagrams, then nothing for a while.
  const done = sendReliable(
    endpoint,
    feed(bulletinsOf(HELD, FULL), end.promise),
    {
      group,
      port: PORT,
      deadlineMs: 1_000,
      lingerMs: 0,
      repairRate: { unit: "bytes", perSecond: REPAIR_RATE },
      signal: stop.signal,
      onEvent: (event) => events.push(event),
    },
  );
  try {
    await until(() => listener.firsts === HELD, 5_000, "first transmissions");
    const session = sessionOf(events);
    // Valid NACKs for the real session from made-up receivers, each for
    // every held datagram: one range, and one range per datagram.
    const frames: Uint8Array[] = [];
    for (const name of ATTACKERS) {
      frames.push(encodeFrame({
        type: "nack",
        session,
        seq: 0,
        name,
        ranges: [{ first: 1, last: HELD }],
      }));
      frames.push(encodeFrame({
        type: "nack",
        session,
        seq: 0,
        name,
        ranges: range(1, HELD).map((seq) => ({ first: seq, last: seq })),
      }));
    }
    const start = performance.now();
    const attack = await flood(attacker, endpoint.local, frames, FLOOD_MS);
    end.open();
    const report = await bounded(10_000, done, () => stop.abort());

    const repairs = listener.seen.filter((s) =>
      s.frame.type === "data" && s.frame.retransmit
    );
    const repairBytes = repairs.reduce((sum, s) => sum + s.bytes, 0);
    const last = repairs.at(-1)!;
    const budget = (at: number) =>
      REPAIR_BURST + REPAIR_RATE * (at - start) / 1000;
    console.log(
      `  ${attack.count} NACKs (${mib(attack.bytes)}, ` +
        `${(attack.count / attack.ms * 1000).toFixed(0)}/s) in ` +
        `${attack.ms.toFixed(0)} ms; ${repairs.length} repairs, ` +
        `${repairBytes} bytes by ${(last.at - start).toFixed(0)} ms; ` +
        `budget then ${budget(last.at).toFixed(0)} bytes ` +
        `(${REPAIR_BURST} burst + ${REPAIR_RATE} B/s)`,
    );
    // Every NACK reached the sender and was counted.
    assert.equal(network.dropped, 0);
    assert.equal(report.nacks, attack.count);
    assert.deepEqual(
      report.receivers.map((r) => [r.name, r.nacks]),
      ATTACKERS.map((name, k) => [
        name,
        attack.perFrame[2 * k]! + attack.perFrame[2 * k + 1]!,
      ]).sort((a, b) => (a[0]! < b[0]! ? -1 : 1)),
    );
    assert.equal(report.reason, "deadline");
    assert.equal(report.packets, HELD);
    // Repairs are copies of held datagrams, nothing else.
    for (const seen of repairs) {
      assert.equal(seen.bytes, MTU);
      assert.ok(seen.frame.seq >= 1 && seen.frame.seq <= HELD);
    }
    assert.equal(report.retransmitted, repairs.length);
    // The bound: by any moment t after the flood started, the repairs
    // that reached the group total at most one burst (what the bucket may
    // hold at the start) plus the budget times the time since the start.
    // The sender sends a repair only once the bucket is out of debt, and a
    // repair arrives after it was sent, so the bound holds at each arrival.
    let total = 0;
    for (const seen of repairs) {
      total += seen.bytes;
      assert.ok(
        total <= budget(seen.at) + 1e-6,
        `${total} bytes by ${(seen.at - start).toFixed(1)} ms > ` +
          `${budget(seen.at).toFixed(0)}`,
      );
    }
    // And the sender did repair, near its budget (the flood kept every held
    // datagram queued): no starvation either.
    assert.ok(
      repairBytes >= 0.5 * REPAIR_RATE * attack.ms / 1000,
      `only ${repairBytes} bytes of repairs`,
    );
    // No amplification: less repair traffic than NACK traffic.
    assert.ok(repairBytes < attack.bytes);
  } finally {
    end.open();
    stop.abort();
    await Promise.allSettled([done]);
    attacker.close();
    listener.endpoint.close();
    network.close();
    await listener.done;
  }
});

Deno.test("NACK flood for evicted data: at most one GONE per holdoff, each smaller than the NACK", async () => {
  const network = new MemoryNetwork({ queueLimit: 1 << 17 });
  const listener = listen(network);
  const end = gate();
  const stop = new AbortController();
  const endpoint = network.open({ address: "127.0.0.1" });
  const attacker = network.open({ address: "127.0.0.1" });
  const events: ReliableSenderEvent[] = [];
  // 16 KiB hold 11 datagrams (a 1,400-byte buffer each): of 64 sent, 1-53
  // are gone.
  const done = sendReliable(
    endpoint,
    feed(bulletinsOf(HELD, FULL), end.promise),
    {
      group,
      port: PORT,
      deadlineMs: 300,
      lingerMs: 0,
      bufferBytes: 16 * 1024,
      repairRate: { unit: "bytes", perSecond: REPAIR_RATE },
      signal: stop.signal,
      onEvent: (event) => events.push(event),
    },
  );
  try {
    await until(() => listener.firsts === HELD, 5_000, "first transmissions");
    const session = sessionOf(events);
    // The largest NACK: 256 ranges, all of evicted datagrams.
    const frames = ATTACKERS.map((name) =>
      encodeFrame({
        type: "nack",
        session,
        seq: 0,
        name,
        ranges: range(0, 255).map((k) => ({
          first: 1 + k % 53,
          last: 1 + k % 53,
        })),
      })
    );
    const smallest = Math.min(...frames.map((f) => f.length));
    const start = performance.now();
    const attack = await flood(attacker, endpoint.local, frames, 1_000);
    end.open();
    const report = await bounded(10_000, done, () => stop.abort());

    const heartbeat = listener.seen.findLast((s) =>
      s.frame.type === "heartbeat"
    );
    assert.ok(heartbeat?.frame.type === "heartbeat");
    assert.equal(heartbeat.frame.low, 54);
    const gones = listener.seen.filter((s) => s.frame.type === "gone");
    const goneBytes = gones.reduce((sum, s) => sum + s.bytes, 0);
    const elapsed = gones.at(-1)!.at - start;
    // repairHoldoffMs (default 8): GONE notices are at least 8 ms apart.
    const most = Math.floor(elapsed / 8) + 1;
    console.log(
      `  ${attack.count} NACKs (${mib(attack.bytes)}) in ` +
        `${attack.ms.toFixed(0)} ms; ${gones.length} GONE ` +
        `(${goneBytes} bytes, at most ${most} allowed), no repairs`,
    );
    assert.equal(network.dropped, 0);
    assert.equal(report.nacks, attack.count);
    assert.equal(report.retransmitted, 0);
    assert.equal(
      listener.seen.filter((s) => s.frame.type === "data" && s.frame.retransmit)
        .length,
      0,
    );
    assert.equal(report.gone, gones.length);
    assert.ok(gones.length <= most, `${gones.length} GONE > ${most}`);
    assert.ok(
      gones.length >= 0.3 * attack.ms / 8,
      `only ${gones.length} GONE`,
    );
    for (const seen of gones) {
      assert.ok(seen.frame.type === "gone");
      assert.equal(seen.frame.seq, 54);
      // The NACK's 256 overlapping ranges merge into one before the sender
      // looks at them: 24-byte header + 2 + 16 for that range.
      assert.deepEqual(seen.frame.ranges, [{ first: 1, last: 53 }]);
      assert.equal(seen.bytes, 42);
      assert.ok(seen.bytes < smallest);
    }
  } finally {
    end.open();
    stop.abort();
    await Promise.allSettled([done]);
    attacker.close();
    listener.endpoint.close();
    network.close();
    await listener.done;
  }
});

// ---- 2. HELLO and ACK floods: the roster cap -----------------------------------------

/** Made-up receivers in the roster floods. */
const FLOOD_NAMES = 50_000;
/** The sender's default roster cap. */
const DEFAULT_MAX_RECEIVERS = 10_000;

/**
 * A HELLO and an ACK from each of `count` made-up receivers, in batches that
 * leave the sender time to read them; resolves once the sender's endpoint
 * has taken every frame from its queue.
 */
async function floodRoster(
  attacker: MemoryEndpoint,
  sender: MemoryEndpoint,
  session: string,
  count: number,
): Promise<number> {
  const before = sender.received;
  let frames = 0;
  for (let k = 0; k < count; k++) {
    const name = `fake-${k}`;
    await attacker.send(
      encodeFrame({ type: "hello", session, seq: 0, name, fromStart: false }),
      sender.local,
    );
    await attacker.send(
      encodeFrame({ type: "ack", session, seq: 0, name, ranges: [] }),
      sender.local,
    );
    frames += 2;
    if (k % 500 === 499) await delay(0);
  }
  await until(
    () => sender.received === before + frames && sender.queued === 0,
    10_000,
    "the sender reads the flood",
  );
  return frames;
}

Deno.test("HELLO flood: the roster stops at the cap, the rest is counted, a late receiver is ignored", async () => {
  const network = new MemoryNetwork({ queueLimit: 1 << 18 });
  const start = gate();
  const stop = new AbortController();
  const stopLate = new AbortController();
  const endpoint = network.open({ address: "127.0.0.1" });
  const attacker = network.open({ address: "127.0.0.1" });
  let session = "";
  const joined: string[] = [];
  // Five bulletins once the gate opens; no roster, default cap.
  async function* source(): AsyncGenerator<Uint8Array> {
    await start.promise;
    yield* bulletinsOf(5, 1000);
  }
  const done = sendReliable(endpoint, source(), {
    group,
    port: PORT,
    deadlineMs: 10_000,
    heartbeatMs: 20,
    signal: stop.signal,
    onEvent(event) {
      if (event.type === "session") session = event.session;
      if (event.type === "receiver") joined.push(event.name);
    },
  });
  let late: ReturnType<typeof startReceiver> | undefined;
  try {
    await until(() => session !== "", 5_000, "session");
    const before = memoryInUse();
    const t0 = performance.now();
    const frames = await floodRoster(attacker, endpoint, session, FLOOD_NAMES);
    const floodMs = performance.now() - t0;
    const growth = memoryInUse() - before;
    console.log(
      `  ${FLOOD_NAMES} names (${frames} frames) in ${
        floodMs.toFixed(0)
      } ms: ` +
        `roster ${joined.length}, heap growth ${mib(growth)}`,
    );
    assert.equal(joined.length, DEFAULT_MAX_RECEIVERS);
    assert.deepEqual(joined, range(0, 9_999).map((k) => `fake-${k}`));
    // 10,000 entries; 50,000 would take five times as much.
    assert.ok(growth < 16 * MIB, `heap growth ${mib(growth)}`);

    // A real receiver after the flood: beyond the cap, the sender ignores
    // it. It still hears the group (first transmissions), but its HELLO,
    // ACKs and NACKs are dropped and counted, so nothing it misses is
    // repaired: datagram 3 is lost on its way in, and stays lost.
    late = startReceiver(network, "late", {
      signal: stopLate.signal,
      dropSeqs: [3],
    });
    const tap = late.tap;
    start.open();
    await until(
      () => late!.numbers.length === 2 && (tap.sentTypes.get("nack") ?? 0) >= 2,
      5_000,
      "late receiver: two bulletins and two NACKs",
    );
    stopLate.abort();
    await bounded(5_000, late.done, () => {});
    await until(
      () => endpoint.received === frames + tap.sent && endpoint.queued === 0,
      5_000,
      "the sender reads the late receiver's frames",
    );
    stop.abort();
    const report = await bounded(5_000, done, () => {});

    assert.equal(report.reason, "signal");
    assert.equal(report.packets, 5);
    assert.equal(report.receivers.length, DEFAULT_MAX_RECEIVERS);
    assert.equal(report.receivers.some((r) => r.name === "late"), false);
    assert.equal(joined.includes("late"), false);
    // Accepted: a HELLO and an ACK from each of the first 10,000 names.
    assert.equal(report.feedback, 2 * DEFAULT_MAX_RECEIVERS);
    assert.equal(report.acks, DEFAULT_MAX_RECEIVERS);
    // Dropped: the other 40,000 names' frames, and every frame of the late
    // receiver (HELLO, ACKs, NACKs, BYE).
    assert.equal(
      report.dropped.roster,
      2 * (FLOOD_NAMES - DEFAULT_MAX_RECEIVERS) + tap.sent,
    );
    assertOtherDropsZero(report.dropped, ["roster"]);
    assert.equal(report.nacks, 0);
    assert.equal(report.retransmitted, 0);
    assert.deepEqual(late.numbers, [1, 2]);
    assert.equal(tap.sentTypes.get("hello"), 1);
    console.log(
      `  late receiver: ${tap.sent} frames ignored ` +
        `(${tap.sentTypes.get("nack")} NACKs), dropped.roster ` +
        `${report.dropped.roster}`,
    );
  } finally {
    start.open();
    stop.abort();
    stopLate.abort();
    await Promise.allSettled([done, late?.done]);
    attacker.close();
    network.close();
  }
});

Deno.test("HELLO flood: a named receiver is on the roster before the flood and is served", async () => {
  const network = new MemoryNetwork({ queueLimit: 1 << 18 });
  const stop = new AbortController();
  const endpoint = network.open({ address: "127.0.0.1" });
  const attacker = network.open({ address: "127.0.0.1" });
  let session = "";
  const bulletins = bulletinsOf(5, 1000);
  const done = sendReliable(endpoint, feed(bulletins, Promise.resolve()), {
    group,
    port: PORT,
    receivers: ["desk-1"],
    deadlineMs: 10_000,
    heartbeatMs: 20,
    signal: stop.signal,
    onEvent(event) {
      if (event.type === "session") session = event.session;
    },
  });
  let desk: ReturnType<typeof startReceiver> | undefined;
  try {
    await until(() => session !== "", 5_000, "session");
    const before = memoryInUse();
    await floodRoster(attacker, endpoint, session, FLOOD_NAMES);
    const growth = memoryInUse() - before;
    assert.ok(growth < 16 * MIB, `heap growth ${mib(growth)}`);
    desk = startReceiver(network, "desk-1", { signal: stop.signal, count: 5 });
    const report = await bounded(10_000, done, () => stop.abort());
    await bounded(5_000, desk.done, () => stop.abort());
    console.log(
      `  named roster: ${report.receivers.length} on the roster, ` +
        `dropped.roster ${report.dropped.roster}, heap growth ${mib(growth)}`,
    );
    assert.equal(report.delivered, true);
    assert.equal(report.reason, "complete");
    // desk-1 holds its place from the start: 9,999 made-up names fit.
    assert.equal(report.receivers.length, DEFAULT_MAX_RECEIVERS);
    assert.equal(
      report.dropped.roster,
      2 * (FLOOD_NAMES - (DEFAULT_MAX_RECEIVERS - 1)),
    );
    assertOtherDropsZero(report.dropped, ["roster"]);
    const entry = report.receivers.find((r) => r.name === "desk-1");
    assert.ok(entry);
    assert.equal(entry.status, "complete");
    assert.equal(entry.bulletins, 5);
    assert.deepEqual(desk.numbers, [1, 2, 3, 4, 5]);
  } finally {
    stop.abort();
    await Promise.allSettled([done, desk?.done]);
    attacker.close();
    network.close();
  }
});

// ---- 3. the receiver's bounds ---------------------------------------------------------

const SESSION = "0123456789abcdef";
const SENDER: Peer = { address: "127.0.0.1", port: 40000 };

/** Encodes and decodes `frame`: the receiver sees fresh wire bytes. */
function wire(frame: Frame): Frame {
  const decoded = decodeFrame(encodeFrame(frame));
  assert.equal(decoded.kind, "frame");
  return (decoded as { frame: Frame }).frame;
}

function dataFrame(seq: number, records: DataRecord[]): DataFrame {
  return {
    type: "data",
    session: SESSION,
    seq,
    retransmit: false,
    timestamp: 2_000_000 + seq,
    low: 1,
    records,
  };
}

/** A ReliableReceiver that joined SESSION at sequence 1. */
async function joinedReceiver(
  options: Partial<ReliableReceiverOptions> = {},
) {
  const events: ReceiverEvent[] = [];
  const rx = new ReliableReceiver({
    name: "rx",
    random: () => 0,
    send: () => Promise.resolve(),
    onEvent: (event) => events.push(event),
    ...options,
  });
  await rx.handle(
    wire({
      type: "heartbeat",
      session: SESSION,
      seq: 0,
      final: false,
      timestamp: 1_000_000,
      low: 1,
    }),
    SENDER,
  );
  return {
    rx,
    events,
    feed: (frame: Frame) => rx.handle(wire(frame), SENDER),
    /** Events other than the session's. */
    others: () => events.filter((e) => e.type !== "session"),
  };
}

async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes as BufferSource),
  );
}

Deno.test("reassembly: a 4 GiB bulletin is failed, not buffered; interleaved first fragments keep one partial", async () => {
  const h = await joinedReceiver();
  const chunk = bulletinsOf(1, 60_000)[0]!;
  const zeros = new Uint8Array(32);
  try {
    // Bulletin 1 claims 4 GiB - 1 (the largest total a record can say),
    // sent as 1,000 fragments of 60,000 bytes: 60 MB if it were buffered.
    let before = memoryInUse();
    const total = 0xffff_ffff;
    for (let seq = 1; seq <= 1_000; seq++) {
      const offset = (seq - 1) * chunk.length;
      await h.feed(dataFrame(seq, [{
        bulletin: 1,
        total,
        offset,
        data: chunk,
        ...(offset === 0 ? { digest: zeros } : {}),
      }]));
    }
    const hugeGrowth = memoryInUse() - before;
    assert.deepEqual(h.others(), [{
      type: "bulletin-failed",
      session: SESSION,
      number: 1,
      reason: "too-large",
    }]);
    assert.equal(h.rx.stats.failed, 1);
    assert.equal(h.rx.stats.data, 1_000);
    assert.ok(hugeGrowth < 8 * MIB, `4 GiB claim: growth ${mib(hugeGrowth)}`);
    // The receiver goes on with the next bulletin.
    await h.feed(dataFrame(1_001, [{
      bulletin: 2,
      total: 5,
      offset: 0,
      data: encoder.encode("after"),
    }]));
    assert.equal(h.rx.delivered, 1);

    // One partial reassembly at a time: a first fragment (offset 0) drops
    // the partial bulletin, if any; a later fragment extends the partial
    // only if it is the same bulletin, the same total, at the offset
    // received so far. The first fragments of 1,000 bulletins of 120,000
    // bytes (60 MB if all were kept) leave only the last one.
    const K = 1_000;
    const last = 2 + K;
    const payload = bulletinsOf(1, 120_000)[0]!;
    const digest = await sha256(payload);
    before = memoryInUse();
    for (let k = 0; k < K; k++) {
      const bulletin = 3 + k;
      await h.feed(dataFrame(1_002 + k, [{
        bulletin,
        total: payload.length,
        offset: 0,
        data: payload.subarray(0, 60_000),
        digest: bulletin === last ? digest : zeros,
      }]));
    }
    const partialGrowth = memoryInUse() - before;
    assert.ok(
      partialGrowth < 8 * MIB,
      `interleaved first fragments: growth ${mib(partialGrowth)}`,
    );
    // The rest of bulletin 3 is ignored: its partial is gone.
    await h.feed(dataFrame(1_002 + K, [{
      bulletin: 3,
      total: payload.length,
      offset: 60_000,
      data: payload.subarray(60_000),
    }]));
    // The rest of the last one completes it, digest checked.
    await h.feed(dataFrame(1_003 + K, [{
      bulletin: last,
      total: payload.length,
      offset: 60_000,
      data: payload.subarray(60_000),
    }]));
    const delivered = h.events.filter((e) => e.type === "bulletin");
    assert.deepEqual(delivered.map((e) => e.type === "bulletin" && e.number), [
      2,
      last,
    ]);
    const bulletin = delivered[1]!;
    assert.ok(bulletin.type === "bulletin");
    assert.deepEqual(bulletin.payload, payload);
    // Abandoned partials are not reported (a real sender never interleaves
    // bulletins); only the 4 GiB one failed.
    assert.equal(h.rx.stats.failed, 1);
    assert.equal(h.others().length, 3);
    console.log(
      `  4 GiB claim: growth ${mib(hugeGrowth)}; ` +
        `${K} interleaved first fragments: growth ${mib(partialGrowth)}`,
    );
  } finally {
    await h.rx.close();
  }
});

Deno.test("reassembly: frames held out of order stop at maxHeldBytes and maxAhead, exactly", async () => {
  // A held frame counts 256 bytes, the datagram its records are views of
  // (1,062 bytes for one 1,000-byte record) and 200 per record (400 with a
  // digest): 1,518 bytes, so 1 MiB holds 690 of them.
  const h = await joinedReceiver({ maxHeldBytes: MIB, maxAhead: 4096 });
  const payloads = bulletinsOf(2_001, 1_000);
  const frame = (seq: number) =>
    dataFrame(seq, [{
      bulletin: seq,
      total: 1_000,
      offset: 0,
      data: payloads[(seq - 1) % payloads.length]!,
    }]);
  try {
    // Sequence 1 is missing. Beyond next + maxAhead (1 + 4096): dropped.
    await h.feed(frame(4_098));
    assert.equal(h.rx.stats.dropped.ahead, 1);
    // At the edge: held.
    await h.feed(frame(4_097));
    assert.equal(h.rx.stats.dropped.ahead, 1);
    const before = memoryInUse();
    for (let seq = 2; seq <= 2_001; seq++) await h.feed(frame(seq));
    const growth = memoryInUse() - before;
    const cost = 256 + encodeFrame(frame(2)).length + 200;
    assert.equal(cost, 1_518);
    const held = Math.floor(MIB / cost);
    assert.equal(held, 690);
    // 4097 and 2-690 held (690 frames), 691-2001 dropped (1,311).
    assert.equal(h.rx.stats.dropped.ahead, 1 + 2_000 - (held - 1));
    assert.equal(h.rx.stats.data, 2 + 2_000);
    assertOtherDropsZero(h.rx.stats.dropped, ["ahead"]);
    assert.ok(growth < 2 * MIB, `held: growth ${mib(growth)}`);
    assert.deepEqual(h.others(), []);
    // The gap fills: 1-690 are delivered in order; 691 is asked for again.
    await h.feed(frame(1));
    await h.feed(frame(held + 1));
    const numbers = h.events.flatMap((e) =>
      e.type === "bulletin" ? [e.number] : []
    );
    assert.deepEqual(numbers, range(1, held + 1));
    console.log(`  ${held} frames held (limit 1 MiB): growth ${mib(growth)}`);
  } finally {
    await h.rx.close();
  }
});

Deno.test("reassembly: frames of empty records stay bounded (measured against maxHeldBytes)", async () => {
  // The worst case per byte on the wire: first-fragment records with no
  // data (20 + 32 bytes each), 1,258 to a datagram of 65,458 bytes, each
  // counted as 400 bytes: 256 + 65,458 + 400 x 1,258 = 568,914 per frame,
  // so 4 MiB hold 7 frames.
  const maxHeldBytes = 4 * MIB;
  const h = await joinedReceiver({ maxHeldBytes });
  const digest = new Uint8Array(32);
  const records: DataRecord[] = range(1, 1_258).map(() => ({
    bulletin: 1,
    total: 1,
    offset: 0,
    data: new Uint8Array(0),
    digest,
  }));
  try {
    assert.equal(encodeFrame(dataFrame(2, records)).length, 65_458);
    const before = memoryInUse();
    for (let seq = 2; seq <= 101; seq++) await h.feed(dataFrame(seq, records));
    const full = memoryInUse() - before;
    const held = Math.floor(maxHeldBytes / (256 + 65_458 + 400 * 1_258));
    assert.equal(held, 7);
    assert.equal(h.rx.stats.dropped.ahead, 100 - held);
    for (let seq = 102; seq <= 401; seq++) {
      await h.feed(dataFrame(seq, records));
    }
    const after = memoryInUse() - before;
    assert.equal(h.rx.stats.dropped.ahead, 400 - held);
    console.log(
      `  ${held} frames held: growth ${mib(full)} after 100 frames, ` +
        `${mib(after)} after 400 (${(after / maxHeldBytes).toFixed(1)}x ` +
        `maxHeldBytes)`,
    );
    // Once full, more frames hold nothing more.
    assert.ok(after - full < MIB, `grew ${mib(after - full)} once full`);
    // Held frames are counted at what they keep alive: the datagram and
    // the decoded records.
    assert.ok(after < 2 * maxHeldBytes, `growth ${mib(after)}`);
  } finally {
    await h.rx.close();
  }
});

// ---- 4. terminal safety -------------------------------------------------------------

/**
 * A bulletin that would clear the screen, set the window title, start a CSI
 * sequence (C1), reverse the text direction, and carry NUL, DEL, a line
 * separator, CR LF and bytes that are not UTF-8 (0x9b, a raw CSI).
 */
function hostileBulletin(): Uint8Array {
  const parts = [
    encoder.encode("\x1b[2J\x1b]0;pwned\x07 \u009b31m red \u202etxt.exe\0 end"),
    new Uint8Array([0x9b, 0x1b]),
    encoder.encode("\r\n\x7f\u2028"),
  ];
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

/** The bulletin as text: escapes shown literally, backslash and all. */
const HOSTILE_ESCAPED = String
  .raw`\x1b[2J\x1b]0;pwned\x07 \x9b31m red \u202etxt.exe\x00 end\x9b\x1b\r\n\x7f\u2028`;

/** Only printable ASCII: nothing a terminal acts on. */
function assertPrintable(line: string): void {
  for (const char of line) {
    const code = char.codePointAt(0)!;
    assert.ok(
      code >= 0x20 && code <= 0x7e,
      `U+${code.toString(16).padStart(4, "0")} in ${JSON.stringify(line)}`,
    );
  }
  const bytes = encoder.encode(line);
  for (const byte of [0x00, 0x07, 0x1b, 0x7f, 0x9b]) {
    assert.equal(bytes.includes(byte), false, `byte ${byte}`);
  }
}

Deno.test("terminal: a fragmented bulletin of escape sequences is printed escaped", async () => {
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const payload = hostileBulletin();
  assert.equal(payload.length, 48);
  const receiver = startReceiver(network, "desk", {
    signal: stop.signal,
    count: 1,
  });
  const endpoint = network.open({ address: "127.0.0.1" });
  assert.deepEqual(endpoint.local, { address: "127.0.0.1", port: 40000 });
  // 100-byte datagrams: the bulletin goes as three fragments, reassembled
  // and digest-checked.
  const done = sendReliable(endpoint, feed([payload], Promise.resolve()), {
    group,
    port: PORT,
    expect: 1,
    mtu: 100,
    deadlineMs: 5_000,
    signal: stop.signal,
    onEvent() {},
  });
  try {
    const report = await bounded(10_000, done, () => stop.abort());
    await bounded(5_000, receiver.done, () => stop.abort());
    assert.equal(report.delivered, true);
    assert.equal(report.packets, 3);
    const lines = receiver.events.flatMap((event) => receiverText(event));
    const line = lines.find((l) => l.startsWith("received bulletin"));
    assert.equal(
      line,
      `received bulletin 1 (48 bytes) from ('127.0.0.1', 40000) : ${HOSTILE_ESCAPED}`,
    );
    for (const each of lines) assertPrintable(each);
  } finally {
    stop.abort();
    await Promise.allSettled([done, receiver.done]);
    network.close();
  }
});

Deno.test("terminal: a bulletin of escape sequences as JSON is escaped and parses back", async () => {
  const h = await joinedReceiver();
  // Valid UTF-8, so JSON carries it as text (invalid UTF-8 goes as base64).
  const text = "\x1b[2J\x1b]0;pwned\x07 \u009b31m red \u202etxt.exe\0 end" +
    "\r\n\x7f\u2028";
  const payload = encoder.encode(text);
  try {
    await h.feed(dataFrame(1, [{
      bulletin: 1,
      total: payload.length,
      offset: 0,
      data: payload,
    }]));
    const event = h.events.find((e) => e.type === "bulletin");
    assert.ok(event);
    const line = eventJson(event, { now: () => 0 });
    assert.equal(
      line,
      String.raw`{"event":"bulletin","time":"1970-01-01T00:00:00.000Z",` +
        String.raw`"session":"0123456789abcdef","number":1,` +
        String.raw`"from":{"address":"127.0.0.1","port":40000},` +
        String
          .raw`"sentAt":2000001,"bytes":46,"text":"\u001b[2J\u001b]0;pwned\u0007 \u009b31m red \u202etxt.exe\u0000 end\r\n\u007f\u2028"}`,
    );
    assertPrintable(line);
    assert.equal(JSON.parse(line).text, text);
    assert.deepEqual(receiverText(event), [
      String
        .raw`received bulletin 1 (46 bytes) from ('127.0.0.1', 40000) : \x1b[2J\x1b]0;pwned\x07 \x9b31m red \u202etxt.exe\x00 end\r\n\x7f\u2028`,
    ]);
  } finally {
    await h.rx.close();
  }
});

Deno.test("terminal: a receiver name of escape sequences is printed escaped by the sender", async () => {
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const endpoint = network.open({ address: "127.0.0.1" });
  const attacker = network.open({ address: "127.0.0.1" });
  assert.deepEqual(attacker.local, { address: "127.0.0.1", port: 40001 });
  const name = "\x1b]0;pwned\x07\u202eevil\u009b";
  const events: ReliableSenderEvent[] = [];
  const done = sendReliable(endpoint, feed([], Promise.resolve()), {
    group,
    port: PORT,
    deadlineMs: 2_000,
    lingerMs: 50,
    signal: stop.signal,
    onEvent(event) {
      events.push(event);
      if (event.type === "session") {
        void attacker.send(
          encodeFrame({
            type: "hello",
            session: event.session,
            seq: 0,
            name,
            fromStart: false,
          }),
          endpoint.local,
        );
      }
    },
  });
  try {
    const report = await bounded(5_000, done, () => stop.abort());
    assert.deepEqual(report.receivers.map((r) => r.name), [name]);
    const lines = events.flatMap((event) => reliableSenderText(event));
    const escaped = String.raw`\x1b]0;pwned\x07\u202eevil\x9b`;
    assert.ok(
      lines.includes(`receiver ${escaped} joined from ('127.0.0.1', 40001)`),
      lines.join("\n"),
    );
    assert.ok(
      lines.includes(
        `  ${escaped} ('127.0.0.1', 40001): complete, has 0 bulletins`,
      ),
      lines.join("\n"),
    );
    for (const line of lines) assertPrintable(line);
    for (const event of events) assertPrintable(eventJson(event));
  } finally {
    stop.abort();
    await Promise.allSettled([done]);
    attacker.close();
    network.close();
  }
});

// ---- 5. regressions: overlapping ranges, the named roster, fragments, GONE pay --------

/** Datagrams held in the overlapping-NACK test: more than one NACK queues. */
const MANY = 5_000;
/** Most sequences one NACK queues (MAX_NACK_SPAN in lib/reliable/sender.ts). */
const NACK_SPAN = 4_096;
/** The largest sequence number the tests write into ranges (2^52). */
const WIDE = 2 ** 52;

/** `count` copies of the range `first`-`last`. */
function copies(count: number, first: number, last: number) {
  return Array.from({ length: count }, () => ({ first, last }));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * Wraps an endpoint and notes when each `receive()` is called: the sender
 * reads feedback in a loop, so the time between two calls is what one frame
 * cost it.
 */
class ReceiveTimes implements DatagramEndpoint {
  readonly inner: DatagramEndpoint;
  readonly calls: number[] = [];

  constructor(inner: DatagramEndpoint) {
    this.inner = inner;
  }

  get local(): Peer {
    return this.inner.local;
  }

  receive(): Promise<Datagram | null> {
    this.calls.push(performance.now());
    return this.inner.receive();
  }

  send(payload: Uint8Array, to: Peer): Promise<void> {
    return this.inner.send(payload, to);
  }

  close(): void {
    this.inner.close();
  }
}

Deno.test("overlapping NACKs: 50 of 256 ranges over 5,000 held datagrams cost the sender < 2 ms each; one queues 4,096", async () => {
  const network = new MemoryNetwork({ queueLimit: 1 << 17 });
  const listener = listen(network);
  const end = gate();
  const stop = new AbortController();
  const endpoint = network.open({ address: "127.0.0.1" });
  const timed = new ReceiveTimes(endpoint);
  const attacker = network.open({ address: "127.0.0.1" });
  const events: ReliableSenderEvent[] = [];
  // 5,000 full datagrams: 7 MB, within the default 8 MiB buffer, all held.
  const done = sendReliable(
    timed,
    feed(bulletinsOf(MANY, FULL), end.promise),
    {
      group,
      port: PORT,
      deadlineMs: 300,
      lingerMs: 0,
      // A sequence repaired is not queued again by a later NACK.
      repairHoldoffMs: 600_000,
      signal: stop.signal,
      onEvent: (event) => events.push(event),
    },
  );
  try {
    await until(() => listener.firsts === MANY, 10_000, "first transmissions");
    const session = sessionOf(events);
    // The largest NACK, each of its 256 ranges covering every held datagram
    // (and more): 1.28 million sequence numbers if walked range by range.
    const nack = encodeFrame({
      type: "nack",
      session,
      seq: 0,
      name: "mallory",
      ranges: copies(256, 0, WIDE),
    });
    assert.equal(nack.length, 24 + 1 + 7 + 2 + 256 * 16);
    // The listener reads nothing meanwhile: the timer measures the sender.
    listener.endpoint.pause();
    const before = endpoint.received;
    const calls = timed.calls.length;
    const start = performance.now();
    const cpuStart = process.cpuUsage();
    const fired = delay(0).then(() => {
      const cpu = process.cpuUsage(cpuStart);
      return {
        stall: performance.now() - start,
        cpu: (cpu.user + cpu.system) / 1000,
        taken: endpoint.received - before - endpoint.queued,
      };
    });
    const sends: Promise<void>[] = [];
    for (let k = 0; k < 50; k++) {
      sends.push(attacker.send(nack, endpoint.local));
    }
    await Promise.all(sends);
    // The 50 NACKs arrive in one batch and the sender reads them without
    // yielding: a timer set before them fires once they are handled.
    const { stall, cpu, taken } = await fired;
    listener.endpoint.resume();
    assert.equal(taken, 50, "the sender read the 50 NACKs before the timer");
    // The first call waited for the burst; the 49 gaps after it are what
    // NACKs 1-49 cost (the 50th ends at the next call, after the timer).
    const read = timed.calls.slice(calls - 1, calls + 50);
    assert.equal(read.length, 51);
    const each = read.slice(1, 50).map((at, k) => read[k + 2]! - at);
    const repairs = () =>
      listener.seen.flatMap((s) =>
        s.frame.type === "data" && s.frame.retransmit ? [s.frame.seq] : []
      );
    await until(() => repairs().length >= NACK_SPAN, 20_000, "4,096 repairs");
    // The sender waits for mallory until the deadline (300 ms): time for
    // any repair beyond 4,096 to show.
    end.open();
    const report = await bounded(10_000, done, () => stop.abort());
    const repaired = repairs();
    console.log(
      `  50 NACKs of ${nack.length} bytes (256 x 0-2^52): ` +
        `${median(each).toFixed(2)} ms each (median), the slowest ` +
        `${Math.max(...each).toFixed(1)} ms; the sender stalled ` +
        `${stall.toFixed(1)} ms (${cpu.toFixed(1)} ms of CPU); ` +
        `${repaired.length} repairs of ${new Set(repaired).size} sequences`,
    );
    // About 0.3 ms each, 25-160 ms in all on a busy 2-CPU host (the old
    // sender walked every range: 20-80 ms each, 1-5 s in all). The median
    // is the bound; the total only loosely, as other processes share the
    // CPUs.
    assert.ok(median(each) < 2, `${median(each).toFixed(1)} ms per NACK`);
    assert.ok(
      stall < 500,
      `50 NACKs stalled the sender ${stall.toFixed(0)} ms`,
    );
    assert.equal(network.dropped, 0);
    assert.equal(report.nacks, 50);
    assert.equal(report.packets, MANY);
    assert.equal(report.reason, "deadline");
    // One NACK queues at most 4,096 sequences, each once however often the
    // ranges name it, and the other 49 add none: not even the sequence the
    // repair loop has taken from the queue and is about to send.
    const once = [...new Set(repaired)].sort((a, b) => a - b);
    assert.deepEqual(once, range(1, NACK_SPAN));
    assert.equal(repaired.length, NACK_SPAN);
    assert.equal(report.retransmitted, repaired.length);
    assert.deepEqual(
      report.receivers.map((r) => [r.name, r.nacks, r.acked]),
      [["mallory", 50, 0]],
    );
  } finally {
    end.open();
    stop.abort();
    await Promise.allSettled([done]);
    attacker.close();
    listener.endpoint.resume();
    listener.endpoint.close();
    network.close();
    await listener.done;
  }
});

Deno.test("overlapping GONE: 256 wide ranges cost the receiver < 1 ms, and mark only what it asked for", async () => {
  // A receiver 65,537 sequences behind (2^52 is clipped to next + maxAhead)
  // that asked for nothing (its first NACK is 300 s away): 50 GONE frames
  // of 256 ranges 0-2^52, 16.8 million sequence numbers each if walked
  // range by range.
  const idle = await joinedReceiver({
    random: () => 0.5,
    nackBackoffMs: 600_000,
  });
  const gone = { type: "gone", session: SESSION, seq: 1 } as const;
  try {
    await idle.feed({
      type: "heartbeat",
      session: SESSION,
      seq: WIDE,
      final: false,
      timestamp: 1_000_001,
      low: 1,
    });
    const frame = wire({ ...gone, ranges: copies(256, 0, WIDE) });
    const times: number[] = [];
    for (let k = 0; k < 50; k++) {
      const start = performance.now();
      await idle.rx.handle(frame, SENDER);
      times.push(performance.now() - start);
    }
    const total = times.reduce((a, b) => a + b, 0);
    console.log(
      `  50 GONE of 256 x 0-2^52: ${median(times).toFixed(3)} ms each ` +
        `(median), the first ${times[0]!.toFixed(1)} ms, ` +
        `${total.toFixed(1)} ms in all`,
    );
    // About 0.02 ms each (the old receiver walked every range: 80-180 ms
    // each).
    assert.ok(median(times) < 1, `${median(times).toFixed(1)} ms per GONE`);
    assert.ok(total < 500, `50 GONE took ${total.toFixed(0)} ms`);
    assert.equal(idle.rx.stats.unrecoverable, 0);
    assert.deepEqual(idle.others(), []);
  } finally {
    await idle.rx.close();
  }

  // A receiver that asked for 3-5 and 9: a GONE marks those, whichever
  // way it is walked, and nothing else.
  const sent: Frame[] = [];
  const h = await joinedReceiver({
    nackBackoffMs: 0,
    nackRepeatMs: 600_000,
    send: (frame) => {
      sent.push(frame);
      return Promise.resolve();
    },
  });
  const one = (seq: number) =>
    dataFrame(seq, [{
      bulletin: seq,
      total: 1,
      offset: 0,
      data: new Uint8Array([seq]),
    }]);
  try {
    for (const seq of [1, 2, 6, 7, 8, 10]) await h.feed(one(seq));
    await until(
      () => sent.some((f) => f.type === "nack"),
      5_000,
      "the receiver's NACK",
    );
    const nack = sent.find((f) => f.type === "nack");
    assert.ok(nack?.type === "nack");
    assert.deepEqual(nack.ranges, [{ first: 3, last: 5 }, {
      first: 9,
      last: 9,
    }]);
    // Narrow ranges (2 sequences, fewer than the 4 asked for): walked range
    // by range. 4 and 9 are gone; 3 is still awaited, so nothing moves.
    await h.feed({
      ...gone,
      ranges: [...copies(255, 4, 4), { first: 9, last: 9 }],
    });
    assert.equal(h.rx.stats.unrecoverable, 0);
    assert.equal(h.rx.delivered, 2);
    // Wide ranges (3-10 after clipping, more than the 4 asked for): walked
    // by the asked-for sequences. 3 and 5 are gone too; 6, 7, 8 and 10,
    // which were received, stay.
    await h.feed({ ...gone, ranges: copies(256, 0, WIDE) });
    assert.deepEqual(
      h.others().map((e) =>
        e.type === "bulletin"
          ? e.number
          : e.type === "unrecoverable"
          ? `${e.first}-${e.last} (${e.bulletins})`
          : e.type
      ),
      [1, 2, "3-5 (3)", 6, 7, 8, "9-9 (1)", 10],
    );
    assert.equal(h.rx.stats.unrecoverable, 4);
  } finally {
    await h.rx.close();
  }
});

Deno.test("named roster: a forged HELLO from an unnamed receiver does not hold the window", async () => {
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const endpoint = network.open({ address: "127.0.0.1" });
  const attacker = network.open({ address: "127.0.0.1" });
  const desk = startReceiver(network, "desk-1", {
    signal: stop.signal,
    count: 500,
  });
  const events: ReliableSenderEvent[] = [];
  // probe6: window 64, 500 bulletins of 1,000 bytes (one per datagram), and
  // "mallory", not on the roster, says HELLO with nothing acknowledged.
  const deadlineMs = 2_000;
  const done = sendReliable(
    endpoint,
    feed(bulletinsOf(500, 1_000), Promise.resolve()),
    {
      group,
      port: PORT,
      receivers: ["desk-1"],
      window: 64,
      deadlineMs,
      signal: stop.signal,
      onEvent(event) {
        events.push(event);
        if (event.type === "session") {
          void attacker.send(
            encodeFrame({
              type: "hello",
              session: event.session,
              seq: 0,
              name: "mallory",
              fromStart: false,
            }),
            endpoint.local,
          );
        }
      },
    },
  );
  try {
    const report = await bounded(8_000, done, () => stop.abort());
    await bounded(5_000, desk.done, () => stop.abort());
    console.log(
      `  desk-1 has ${desk.numbers.length} bulletins in ${report.elapsedMs} ms`,
    );
    assert.equal(report.delivered, true);
    assert.equal(report.reason, "complete");
    assert.equal(report.packets, 500);
    assert.deepEqual(desk.numbers, range(1, 500));
    // Nobody was evicted to get there: mallory never held the stream back
    // (an eviction at the deadline would have freed it too, too late).
    assert.equal(events.some((e) => e.type === "evicted"), false);
    assert.ok(report.elapsedMs < deadlineMs, `${report.elapsedMs} ms`);
    assert.deepEqual(
      report.receivers.map((r) => [r.name, r.status, r.acked, r.bulletins]),
      [["desk-1", "complete", 500, 500], ["mallory", "incomplete", 0, 0]],
    );
    assert.equal(events.at(-1)?.type, "report");
  } finally {
    stop.abort();
    await Promise.allSettled([done, desk.done]);
    attacker.close();
    network.close();
  }
});

Deno.test("named roster: a receiver that stops acknowledging is evicted after deadlineMs, without dropSlow", async () => {
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const deskEndpoint = network.open({ address: GROUP, port: PORT });
  deskEndpoint.join(GROUP);
  const numbers: number[] = [];
  let pausedAt = 0;
  // desk-1 stops reading at bulletin 100 (its socket paused): it
  // acknowledges 100 at most, and nothing after.
  const desk = receiveBulletins(deskEndpoint, {
    group,
    port: PORT,
    ack: null,
    signal: stop.signal,
    protocol: { name: "desk-1", tuning: { random: () => 0 } },
    onEvent(event) {
      if (event.type !== "bulletin") return;
      numbers.push(event.number);
      if (event.number === 100) {
        deskEndpoint.pause();
        pausedAt = performance.now();
      }
    },
  });
  const endpoint = network.open({ address: "127.0.0.1" });
  const events: ReliableSenderEvent[] = [];
  let evictedAt = 0;
  const deadlineMs = 500;
  const heartbeatMs = 50;
  const done = sendReliable(
    endpoint,
    feed(bulletinsOf(500, 1_000), Promise.resolve()),
    {
      group,
      port: PORT,
      receivers: ["desk-1"],
      window: 64,
      deadlineMs,
      heartbeatMs,
      signal: stop.signal,
      onEvent(event) {
        events.push(event);
        if (event.type === "evicted") evictedAt = performance.now();
      },
    },
  );
  try {
    const report = await bounded(5_000, done, () => stop.abort());
    const returnedAt = performance.now();
    assert.ok(pausedAt > 0, "desk-1 never paused");
    const evictedAfter = evictedAt - pausedAt;
    const returnedAfter = returnedAt - pausedAt;
    console.log(
      `  paused at bulletin 100; evicted ${evictedAfter.toFixed(0)} ms ` +
        `later, sender returned ${returnedAfter.toFixed(0)} ms later ` +
        `(deadlineMs ${deadlineMs})`,
    );
    const evicted = events.filter((e) => e.type === "evicted");
    assert.equal(evicted.length, 1);
    const event = evicted[0]!;
    assert.ok(event.type === "evicted");
    // Held at the window: 64 datagrams past what it acknowledged.
    assert.equal(event.name, "desk-1");
    assert.ok(event.acked <= 100 && event.acked >= 100 - 64, `${event.acked}`);
    assert.equal(event.high, event.acked + 64);
    // Its last progress was its last ACK: at most a heartbeat (and the ACK
    // jitter, 0 here) before the pause, or just after it. The sender checks
    // the window at least once a heartbeat, then sends the rest at once.
    assert.ok(
      evictedAfter >= deadlineMs - heartbeatMs - 20,
      `evicted ${evictedAfter.toFixed(0)} ms after the pause`,
    );
    assert.ok(
      evictedAfter <= deadlineMs + heartbeatMs + 150,
      `evicted ${evictedAfter.toFixed(0)} ms after the pause`,
    );
    assert.ok(
      returnedAfter <= deadlineMs + heartbeatMs + 250,
      `returned ${returnedAfter.toFixed(0)} ms after the pause`,
    );
    assert.equal(report.delivered, false);
    assert.equal(report.reason, "evicted");
    assert.equal(report.packets, 500);
    assert.deepEqual(
      report.receivers.map((r) => [r.name, r.status, r.acked]),
      [["desk-1", "evicted", event.acked]],
    );
    assert.deepEqual(numbers, range(1, 100));
  } finally {
    stop.abort();
    await Promise.allSettled([done, desk]);
    deskEndpoint.close();
    network.close();
  }
});

Deno.test("reassembly: a partial bulletin keeps copies of its fragments, not the datagrams", async () => {
  // repro_partial: 1,000 datagrams of 60 KB, each with a 1-byte fragment of
  // bulletin 1 (the next one, in order) and a 60,000-byte record the
  // receiver ignores (an offset it is not at). Views would keep 60 MB.
  const h = await joinedReceiver();
  const K = 1_000;
  const pad = new Uint8Array(60_000);
  const total = K + 3 * 50_000;
  const payload = bulletinsOf(1, total)[0]!;
  const digest = await sha256(payload);
  try {
    const before = memoryInUse();
    for (let seq = 1; seq <= K; seq++) {
      await h.feed(dataFrame(seq, [
        {
          bulletin: 1,
          total,
          offset: seq - 1,
          data: payload.subarray(seq - 1, seq),
          ...(seq === 1 ? { digest } : {}),
        },
        { bulletin: 1, total, offset: total - pad.length, data: pad },
      ]));
    }
    const growth = memoryInUse() - before;
    console.log(
      `  ${K} one-byte fragments from ${K} datagrams of 60 KB: ` +
        `growth ${mib(growth)}`,
    );
    // 1,000 one-byte copies, each its own small ArrayBuffer.
    assert.ok(growth < 4 * MIB, `growth ${mib(growth)}`);
    assert.equal(h.rx.stats.data, K);
    assert.deepEqual(h.others(), []);
    // The copies are the bytes: the rest completes it, digest checked.
    for (let k = 0; k < 3; k++) {
      const offset = K + k * 50_000;
      await h.feed(dataFrame(K + 1 + k, [{
        bulletin: 1,
        total,
        offset,
        data: payload.subarray(offset, offset + 50_000),
      }]));
    }
    const delivered = h.others();
    assert.equal(delivered.length, 1);
    const bulletin = delivered[0]!;
    assert.ok(bulletin.type === "bulletin");
    assert.equal(bulletin.number, 1);
    assert.deepEqual(bulletin.payload, payload);
  } finally {
    await h.rx.close();
  }
});

/** The repair budget of the GONE-pay test: 4 KiB/s. */
const SLOW_REPAIR = 4 * 1024;
/** Its token bucket's burst: a tenth of a second, at least one datagram. */
const SLOW_BURST = Math.max(SLOW_REPAIR / 10, MTU);

Deno.test("NACK flood for evicted data: GONE notices are paid from the repair budget", async () => {
  const network = new MemoryNetwork({ queueLimit: 1 << 17 });
  const listener = listen(network);
  const end = gate();
  const stop = new AbortController();
  const endpoint = network.open({ address: "127.0.0.1" });
  const attacker = network.open({ address: "127.0.0.1" });
  const events: ReliableSenderEvent[] = [];
  // As above: of 64 sent, 16 KiB hold 54-64; 1-53 are gone.
  const done = sendReliable(
    endpoint,
    feed(bulletinsOf(HELD, FULL), end.promise),
    {
      group,
      port: PORT,
      deadlineMs: 300,
      lingerMs: 0,
      bufferBytes: 16 * 1024,
      repairRate: { unit: "bytes", perSecond: SLOW_REPAIR },
      signal: stop.signal,
      onEvent: (event) => events.push(event),
    },
  );
  try {
    await until(() => listener.firsts === HELD, 5_000, "first transmissions");
    const session = sessionOf(events);
    // NACKs for the odd evicted sequences, 27 ranges: each answer is a
    // GONE of 24 + 2 + 27 x 16 = 458 bytes. Without the budget, one per
    // holdoff (8 ms) would be 57 KB/s, 14 times the 4 KiB/s budget.
    const odd = range(0, 26).map((k) => ({
      first: 1 + 2 * k,
      last: 1 + 2 * k,
    }));
    const frames = ATTACKERS.map((name) =>
      encodeFrame({ type: "nack", session, seq: 0, name, ranges: odd })
    );
    const start = performance.now();
    const attack = await flood(attacker, endpoint.local, frames, 1_000);
    end.open();
    const report = await bounded(10_000, done, () => stop.abort());

    const gones = listener.seen.filter((s) => s.frame.type === "gone");
    const goneBytes = gones.reduce((sum, s) => sum + s.bytes, 0);
    const budget = (at: number) =>
      SLOW_BURST + SLOW_REPAIR * (at - start) / 1000;
    console.log(
      `  ${attack.count} NACKs in ${attack.ms.toFixed(0)} ms; ` +
        `${gones.length} GONE (${goneBytes} bytes); budget by the flood's ` +
        `end ${budget(start + attack.ms).toFixed(0)} bytes ` +
        `(${SLOW_BURST} burst + ${SLOW_REPAIR} B/s)`,
    );
    assert.equal(network.dropped, 0);
    assert.equal(report.nacks, attack.count);
    assert.equal(report.retransmitted, 0);
    assert.equal(report.gone, gones.length);
    for (const seen of gones) {
      assert.ok(seen.frame.type === "gone");
      assert.deepEqual(seen.frame.ranges, odd);
      assert.equal(seen.bytes, 458);
    }
    // At every moment, GONE bytes so far are within one burst plus the
    // budget times the time since the flood started.
    let sum = 0;
    for (const seen of gones) {
      sum += seen.bytes;
      assert.ok(
        sum <= budget(seen.at) + 1e-6,
        `${sum} GONE bytes by ${(seen.at - start).toFixed(1)} ms > ` +
          `${budget(seen.at).toFixed(0)}`,
      );
    }
    // And the budget is used: GONE notices still go out.
    assert.ok(
      goneBytes >= 0.5 * SLOW_REPAIR * attack.ms / 1000,
      `only ${gones.length} GONE`,
    );
  } finally {
    end.open();
    stop.abort();
    await Promise.allSettled([done]);
    attacker.close();
    listener.endpoint.close();
    network.close();
    await listener.done;
  }
});

Deno.test("NACK flood for evicted data: a GONE fits one datagram of --mtu, and names the first ranges", async () => {
  const network = new MemoryNetwork({ queueLimit: 1 << 17 });
  const listener = listen(network);
  const end = gate();
  const stop = new AbortController();
  const endpoint = network.open({ address: "127.0.0.1" });
  const attacker = network.open({ address: "127.0.0.1" });
  const events: ReliableSenderEvent[] = [];
  // One 300-byte bulletin per 400-byte datagram; 16 KiB hold the last 40
  // datagrams of 500, so 1-460 are gone.
  const sent = 500;
  const done = sendReliable(
    endpoint,
    feed(bulletinsOf(sent, 300), end.promise),
    {
      group,
      port: PORT,
      mtu: 400,
      deadlineMs: 300,
      lingerMs: 0,
      bufferBytes: 16 * 1024,
      signal: stop.signal,
      onEvent: (event) => events.push(event),
    },
  );
  try {
    await until(() => listener.firsts === sent, 5_000, "first transmissions");
    const session = sessionOf(events);
    // 200 ranges, all evicted: a GONE naming them all would be 3,226 bytes.
    const odd = range(0, 199).map((k) => ({
      first: 1 + 2 * k,
      last: 1 + 2 * k,
    }));
    const frames = [
      encodeFrame({ type: "nack", session, seq: 0, name: "desk", ranges: odd }),
    ];
    await flood(attacker, endpoint.local, frames, 200);
    end.open();
    await bounded(10_000, done, () => stop.abort());
    const gones = listener.seen.filter((s) => s.frame.type === "gone");
    assert.ok(gones.length > 0, "no GONE");
    // (400 - 24 - 2) / 16: 23 ranges, 24 + 2 + 23 x 16 = 394 bytes.
    for (const seen of gones) {
      assert.ok(seen.frame.type === "gone");
      assert.deepEqual(seen.frame.ranges, odd.slice(0, 23));
      assert.equal(seen.bytes, 394);
    }
  } finally {
    end.open();
    stop.abort();
    await Promise.allSettled([done]);
    attacker.close();
    listener.endpoint.close();
    network.close();
    await listener.done;
  }
});
