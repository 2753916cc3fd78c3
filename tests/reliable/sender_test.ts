/**
 * In-process tests of the reliable protocol end to end: `sendReliable` and
 * `receiveBulletins` on a {@linkcode MemoryNetwork}, with the seeded fault
 * shim, rosters, flow control, the bounded retransmission buffer and the
 * journal. No sockets.
 *
 * @module
 */

import assert from "node:assert/strict";
import { parseGroup, type Peer } from "../../lib/net/address.ts";
import { UsageError } from "../../lib/errors.ts";
import { decodeFrame, encodeFrame, type Frame } from "../../lib/wire/frame.ts";
import type { ReceiverEvent, ReliableSenderEvent } from "../../lib/events.ts";
import { seededRandom, withFaults } from "../../lib/net/fault.ts";
import { Journal } from "../../lib/reliable/journal.ts";
import {
  type MemoryEndpoint,
  MemoryNetwork,
} from "../../lib/net/memory_net.ts";
import { receiveBulletins } from "../../lib/receiver.ts";
import {
  BODY_CHUNK,
  type BulletinBody,
  sendReliable,
  type SendReliableOptions,
} from "../../lib/reliable/sender.ts";
import { createHash } from "node:crypto";
import type { Datagram, DatagramEndpoint } from "../../lib/net/socket.ts";
import type { ReceiverStats, SenderReport } from "../../lib/reliable/stats.ts";
import { bounded, delay, until } from "../_wait.ts";

const GROUP = "239.42.0.1";
const PORT = 17400;
const group = parseGroup(GROUP);
const encoder = new TextEncoder();

/** Faults on every endpoint's receive path. */
interface FaultPlan {
  loss: number;
  duplicate: number;
  reorder: number;
  /** Receiver r gets seed `seed + r`; the sender `seed + 1000`. */
  seed: number;
}

/** One in-process session: a sender and `receivers` receivers. */
interface SessionPlan {
  bulletins: Uint8Array[];
  receivers: number;
  faults?: FaultPlan;
  /** Receivers stop after all the bulletins (default true). */
  count?: boolean;
  sender?: Partial<SendReliableOptions>;
  /** Bound on the whole session, in ms (default 20,000). */
  timeoutMs?: number;
  network?: MemoryNetwork;
  /** Send each bulletin as a {@linkcode BulletinBody}, read in pieces. */
  bodies?: boolean;
}

/** What a session produced. */
interface SessionResult {
  report: SenderReport;
  senderEvents: ReliableSenderEvent[];
  /** Per receiver: delivered bulletins' numbers and payloads, in order. */
  numbers: number[][];
  payloads: Uint8Array[][];
  events: ReceiverEvent[][];
  stats: (ReceiverStats | undefined)[];
  endpoints: MemoryEndpoint[];
  /** Frames the sender sent, by type. */
  sentTypes: Map<string, number>;
  elapsedMs: number;
}

function bulletinsOf(count: number, size: number): Uint8Array[] {
  const list: Uint8Array[] = [];
  for (let n = 1; n <= count; n++) {
    const text = `bulletin ${n} `;
    const bytes = new Uint8Array(Math.max(size, text.length));
    bytes.set(encoder.encode(text));
    // The rest: a pattern that differs per bulletin and per offset.
    for (let k = text.length; k < bytes.length; k++) {
      bytes[k] = (n * 31 + k * 7) & 0xff;
    }
    list.push(bytes);
  }
  return list;
}

async function* source(
  bulletins: Uint8Array[],
  bodies = false,
): AsyncGenerator<Uint8Array | BulletinBody> {
  for (const bulletin of bulletins) {
    yield bodies ? new MemoryBody(bulletin) : bulletin;
  }
}

/** A body over a buffer that checks the sender reads it as it promises. */
class MemoryBody implements BulletinBody {
  readonly size: number;
  readonly reads: { offset: number; length: number }[] = [];
  readonly #bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.size = bytes.length;
  }

  sha256(): Promise<Uint8Array> {
    return Promise.resolve(
      new Uint8Array(createHash("sha256").update(this.#bytes).digest()),
    );
  }

  read(offset: number, into: Uint8Array): void {
    const last = this.reads.at(-1);
    assert.equal(offset, last ? last.offset + last.length : 0, "in order");
    assert.ok(into.length <= BODY_CHUNK, `a piece of ${into.length}`);
    this.reads.push({ offset, length: into.length });
    into.set(this.#bytes.subarray(offset, offset + into.length));
  }
}

/** What {@linkcode FrameFilter} does with a frame. */
type Verdict = "pass" | "drop" | "hold";

/**
 * Wraps an endpoint: counts the frame types sent, drops chosen frames on
 * the way in, and holds chosen frames on the way out until released.
 */
class FrameFilter implements DatagramEndpoint {
  readonly inner: DatagramEndpoint;
  readonly sentTypes = new Map<string, number>();
  readonly held: { payload: Uint8Array; to: Peer }[] = [];
  onSend: (frame: Frame) => Verdict = () => "pass";
  onReceive: (frame: Frame) => Verdict = () => "pass";
  #holding = true;

  constructor(inner: DatagramEndpoint) {
    this.inner = inner;
  }

  get local(): Peer {
    return this.inner.local;
  }

  async receive(): Promise<Datagram | null> {
    for (;;) {
      const datagram = await this.inner.receive();
      if (datagram === null) return null;
      const decoded = decodeFrame(datagram.payload);
      if (
        decoded.kind === "frame" && this.onReceive(decoded.frame) === "drop"
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
      const verdict = this.onSend(decoded.frame);
      if (verdict === "drop") return Promise.resolve();
      if (verdict === "hold" && this.#holding) {
        this.held.push({ payload: payload.slice(), to });
        return Promise.resolve();
      }
    }
    return this.inner.send(payload, to);
  }

  /** Sends what was held, and holds nothing from now on. */
  async release(): Promise<void> {
    this.#holding = false;
    for (const item of this.held.splice(0)) {
      // The network may be closed already when a test ends early.
      await this.inner.send(item.payload, item.to).catch(() => {});
    }
  }

  close(): void {
    this.inner.close();
  }
}

/** Starts receiver `name` on `network`; returns its promise and records. */
function startReceiver(
  network: MemoryNetwork,
  name: string,
  options: {
    count?: number;
    signal: AbortSignal;
    faults?: { loss: number; duplicate: number; reorder: number; seed: number };
    onEvent?: (event: ReceiverEvent) => void;
    /** Puts a FrameFilter between the receiver and its endpoint. */
    filter?: boolean;
  },
) {
  const endpoint = network.open({ address: GROUP, port: PORT });
  endpoint.join(GROUP);
  const filter = options.filter ? new FrameFilter(endpoint) : undefined;
  const path: DatagramEndpoint = options.faults
    ? withFaults(filter ?? endpoint, options.faults)
    : filter ?? endpoint;
  const record = {
    endpoint,
    filter,
    numbers: [] as number[],
    payloads: [] as Uint8Array[],
    events: [] as ReceiverEvent[],
    stats: undefined as ReceiverStats | undefined,
    done: undefined as unknown as Promise<number>,
  };
  record.done = receiveBulletins(path, {
    group,
    port: PORT,
    ack: null,
    count: options.count,
    signal: options.signal,
    protocol: {
      name,
      tuning: options.faults
        ? { random: seededRandom(options.faults.seed * 7 + 1) }
        : undefined,
    },
    onEvent(event) {
      if (event.type === "bulletin") {
        record.numbers.push(event.number);
        record.payloads.push(event.payload);
      } else if (event.type !== "waiting") {
        record.events.push(event);
      }
      if (event.type === "stopped") record.stats = event.stats;
      options.onEvent?.(event);
    },
  });
  return record;
}

type ReceiverRecord = ReturnType<typeof startReceiver>;

async function runSession(plan: SessionPlan): Promise<SessionResult> {
  const network = plan.network ?? new MemoryNetwork();
  const stopReceivers = new AbortController();
  const stopSender = new AbortController();
  const count = plan.count === false ? undefined : plan.bulletins.length;
  const records: ReceiverRecord[] = [];
  for (let r = 0; r < plan.receivers; r++) {
    const faults = plan.faults &&
      { ...plan.faults, seed: plan.faults.seed + r };
    records.push(
      startReceiver(network, `r${String(r).padStart(2, "0")}`, {
        count,
        signal: stopReceivers.signal,
        faults,
      }),
    );
  }
  const senderEndpoint = network.open({ address: "127.0.0.1" });
  const counter = new FrameFilter(senderEndpoint);
  const senderPath: DatagramEndpoint = plan.faults
    ? withFaults(counter, { ...plan.faults, seed: plan.faults.seed + 1000 })
    : counter;
  const senderEvents: ReliableSenderEvent[] = [];
  const started = performance.now();
  try {
    const report = await bounded(
      plan.timeoutMs ?? 20_000,
      sendReliable(senderPath, source(plan.bulletins, plan.bodies), {
        group,
        port: PORT,
        expect: plan.receivers,
        deadlineMs: 10_000,
        signal: stopSender.signal,
        onEvent: (event) => senderEvents.push(event),
        ...plan.sender,
      }),
      () => stopSender.abort(),
    );
    const elapsedMs = performance.now() - started;
    if (count === undefined) stopReceivers.abort();
    await bounded(
      5_000,
      Promise.all(records.map((record) => record.done)),
      () => stopReceivers.abort(),
    );
    return {
      report,
      senderEvents,
      numbers: records.map((record) => record.numbers),
      payloads: records.map((record) => record.payloads),
      events: records.map((record) => record.events),
      stats: records.map((record) => record.stats),
      endpoints: records.map((record) => record.endpoint),
      sentTypes: counter.sentTypes,
      elapsedMs,
    };
  } finally {
    stopSender.abort();
    stopReceivers.abort();
    await Promise.allSettled(records.map((record) => record.done));
    if (!plan.network) network.close();
  }
}

function range(first: number, last: number): number[] {
  const list: number[] = [];
  for (let n = first; n <= last; n++) list.push(n);
  return list;
}

function assertAllDelivered(result: SessionResult, bulletins: Uint8Array[]) {
  const expected = range(1, bulletins.length);
  result.numbers.forEach((numbers, r) => {
    assert.deepEqual(numbers, expected, `receiver ${r}: numbers`);
    const payloads = result.payloads[r]!;
    assert.equal(payloads.length, bulletins.length);
    payloads.forEach((payload, k) => {
      assert.deepEqual(
        payload,
        bulletins[k],
        `receiver ${r}: bulletin ${k + 1}`,
      );
    });
  });
}

function summary(result: SessionResult): string {
  const r = result.report;
  const rx = result.stats.map((s) =>
    s ? `${s.duplicates}/${s.repaired}/${s.nacks}` : "-"
  );
  return `bulletins ${r.bulletins}, packets ${r.packets}, retransmitted ${r.retransmitted}, ` +
    `nacks ${r.nacks}, acks ${r.acks}, feedback ${r.feedback}, gone ${r.gone}, ` +
    `elapsed ${
      result.elapsedMs.toFixed(0)
    } ms; receivers duplicates/repaired/nacks ${rx.join(" ")}`;
}

// ---- 1. the fault test ---------------------------------------------

const FAULTS: FaultPlan = { loss: 0.1, duplicate: 0.05, reorder: 8, seed: 3 };

async function faultRun(size: number): Promise<SessionResult> {
  const bulletins = bulletinsOf(1000, size);
  // The receivers run until stopped, answering heartbeats: a receiver that
  // stops at a count sends its last ACK and BYE once, and the sender's
  // lossy path may lose both (see the "tail" test).
  const result = await runSession({
    bulletins,
    receivers: 3,
    faults: FAULTS,
    count: false,
    // Under 10% loss the sender paces itself down to 500 datagrams/s.
    timeoutMs: 60_000,
  });
  console.log(`  ${size} B: ${summary(result)}`);
  assert.equal(
    result.report.delivered,
    true,
    `${summary(result)}\n${JSON.stringify(result.report.receivers)}\n` +
      JSON.stringify(result.stats),
  );
  assert.equal(result.report.reason, "complete");
  assert.equal(result.report.bulletins, 1000);
  assert.equal(
    result.report.bytes,
    bulletins.reduce((n, b) => n + b.length, 0),
  );
  assert.ok(result.report.retransmitted > 0, "retransmitted > 0");
  assert.ok(result.report.nacks > 0, "nacks > 0");
  assert.deepEqual(
    result.report.receivers.map((r) => [r.name, r.status, r.bulletins]),
    [["r00", "complete", 1000], ["r01", "complete", 1000], [
      "r02",
      "complete",
      1000,
    ]],
  );
  for (const receiver of result.report.receivers) {
    assert.deepEqual(receiver.missing, []);
    assert.equal(receiver.acked, result.report.packets);
  }
  assertAllDelivered(result, bulletins);
  for (const [r, events] of result.events.entries()) {
    const bad = events.filter((e) =>
      e.type === "unrecoverable" || e.type === "bulletin-failed"
    );
    assert.deepEqual(bad, [], `receiver ${r}`);
    const stats = result.stats[r]!;
    assert.equal(stats.bulletins, 1000);
    assert.equal(stats.failed, 0);
    assert.equal(stats.unrecoverable, 0);
  }
  // Every receiver's path loses and duplicates: gaps were repaired and
  // copies dropped (per receiver too when there are enough datagrams).
  const repaired = result.stats.map((stats) => stats!.repaired);
  const duplicates = result.stats.map((stats) => stats!.duplicates);
  assert.ok(repaired.reduce((a, b) => a + b) > 0, `repaired ${repaired}`);
  assert.ok(duplicates.reduce((a, b) => a + b) > 0, `dups ${duplicates}`);
  if (result.report.packets >= 1000) {
    assert.ok(repaired.every((n) => n > 0), `repaired ${repaired}`);
    assert.ok(duplicates.every((n) => n > 0), `duplicates ${duplicates}`);
  }
  return result;
}

Deno.test("faults: 1,000 small packed bulletins reach 3 receivers exactly once, in order", async () => {
  const result = await faultRun(60);
  // 60-byte bulletins, 80 bytes with their record header: 16 per datagram.
  assert.equal(result.report.packets, Math.ceil(1000 / 16));
});

Deno.test("faults: 1,000 bulletins of 1000 bytes (one per datagram)", async () => {
  const result = await faultRun(1000);
  assert.equal(result.report.packets, 1000);
});

Deno.test("faults: 1,000 fragmented bulletins of 5,000 bytes, bytes checked", async () => {
  const result = await faultRun(5000);
  // 5,000 bytes at 1400 bytes per datagram: 4 fragments, the last of which
  // shares its datagram with the start of the next bulletin.
  assert.ok(
    result.report.packets > 3700 && result.report.packets <= 4000,
    `packets ${result.report.packets}`,
  );
});

Deno.test("bodies: bulletins read in pieces of 1 MiB reach 3 receivers under loss, bytes checked", async () => {
  const bulletins = [
    bulletinsOf(1, 2 * BODY_CHUNK + 777)[0]!,
    bulletinsOf(1, 5000)[0]!,
    bulletinsOf(1, BODY_CHUNK)[0]!,
  ];
  const result = await runSession({
    bulletins,
    receivers: 3,
    bodies: true,
    faults: { loss: 0.02, duplicate: 0.01, reorder: 4, seed: 11 },
    count: false,
    timeoutMs: 60_000,
  });
  assert.equal(result.report.delivered, true, summary(result));
  assert.equal(
    result.report.bytes,
    bulletins.reduce((n, b) => n + b.length, 0),
  );
  assertAllDelivered(result, bulletins);
});

Deno.test("flow: a heartbeat every quarter window asks for ACKs, so the window slides without the clock", async () => {
  // 68 datagrams of one bulletin, a window of 64, heartbeats on the clock
  // only every 5 s: without the heartbeats after datagrams 16, 32, 48 and
  // 64 no receiver would acknowledge anything before the clock's.
  const bulletins = bulletinsOf(1, 70 * 1300);
  const result = await runSession({
    bulletins,
    receivers: 2,
    sender: { window: 64, heartbeatMs: 5_000 },
  });
  assert.equal(result.report.delivered, true, summary(result));
  assertAllDelivered(result, bulletins);
  const packets = result.report.packets;
  assert.ok(packets > 64 && packets < 72, `packets ${packets}`);
  // The clock's first heartbeat at the start, then one per 16 datagrams.
  const heartbeats = result.sentTypes.get("heartbeat") ?? 0;
  assert.ok(
    heartbeats >= 1 + Math.floor(packets / 16),
    `${heartbeats} heartbeats for ${packets} datagrams`,
  );
  assert.ok(result.elapsedMs < 5_000, `took ${result.elapsedMs} ms`);
});

Deno.test("faults: same seed, same result", async () => {
  const first = await faultRun(60);
  const second = await faultRun(60);
  for (let r = 0; r < 3; r++) {
    assert.deepEqual(second.numbers[r], first.numbers[r]);
    assert.deepEqual(second.payloads[r], first.payloads[r]);
  }
  assert.equal(second.report.packets, first.report.packets);
  assert.equal(second.report.bytes, first.report.bytes);
  console.log(
    `  run 1: retransmitted ${first.report.retransmitted}, nacks ${first.report.nacks}; ` +
      `run 2: retransmitted ${second.report.retransmitted}, nacks ${second.report.nacks}`,
  );
});

// ---- 2. feedback grows with receivers, not with packets ----------------------

Deno.test("feedback: grows with receivers, not with datagrams", async () => {
  const runs: {
    receivers: number;
    packets: number;
    feedback: number;
    heartbeats: number;
  }[] = [];
  for (
    const [receivers, count] of [[5, 1000], [20, 1000], [20, 4000]] as const
  ) {
    const bulletins = bulletinsOf(count, 1000);
    const result = await runSession({ bulletins, receivers });
    assert.equal(result.report.delivered, true, summary(result));
    assert.equal(result.report.packets, count);
    assert.equal(result.report.nacks, 0);
    assert.equal(result.report.retransmitted, 0);
    assertAllDelivered(result, bulletins);
    const feedback = result.report.feedback;
    const heartbeats = result.sentTypes.get("heartbeat") ?? 0;
    assert.equal(result.sentTypes.get("data"), count);
    // Each receiver: a HELLO, at most one ACK per heartbeat, and its last
    // ACK and BYE when it stops.
    assert.ok(feedback >= 3 * receivers, `feedback ${feedback}`);
    assert.ok(
      feedback <= receivers * (heartbeats + 3),
      `feedback ${feedback} > ${receivers} x (${heartbeats} heartbeats + 3)`,
    );
    assert.ok(
      feedback < receivers * count / 10,
      `feedback ${feedback} >= receivers x datagrams / 10`,
    );
    runs.push({ receivers, packets: count, feedback, heartbeats });
    console.log(
      `  ${receivers} receivers, ${count} datagrams: feedback ${feedback} ` +
        `(${(feedback / receivers).toFixed(1)} per receiver: ` +
        `acks ${result.report.acks}, nacks ${result.report.nacks}), ` +
        `heartbeats ${heartbeats}, ${result.elapsedMs.toFixed(0)} ms`,
    );
  }
  const perReceiver = runs.map((run) => run.feedback / run.receivers);
  console.log(
    `  per receiver: ${perReceiver[1]!.toFixed(1)} at 1,000 datagrams, ` +
      `${perReceiver[2]!.toFixed(1)} at 4,000 ` +
      `(${(perReceiver[2]! / perReceiver[1]!).toFixed(2)}x)`,
  );
  // 4x the receivers, 4x the feedback (within the heartbeats' jitter).
  assert.ok(runs[1]!.feedback > 2 * runs[0]!.feedback);
  // 4x the datagrams: the feedback follows the heartbeats (time), not the
  // datagrams: per receiver and heartbeat it stays about one.
  for (const run of runs) {
    const perHeartbeat = run.feedback / run.receivers / run.heartbeats;
    assert.ok(perHeartbeat < 2, `per receiver and heartbeat ${perHeartbeat}`);
  }
});

// ---- 3. bounded retransmission buffer -----------------------------------------

/** A sender on its own endpoint, its events recorded; stops on `signal`. */
function startSender(
  network: MemoryNetwork,
  bulletins: Uint8Array[],
  options: Partial<SendReliableOptions> & { signal: AbortSignal },
  onEvent?: (event: ReliableSenderEvent) => void,
) {
  const events: ReliableSenderEvent[] = [];
  const endpoint = network.open({ address: "127.0.0.1" });
  const done = sendReliable(endpoint, source(bulletins), {
    group,
    port: PORT,
    deadlineMs: 10_000,
    ...options,
    onEvent(event) {
      events.push(event);
      onEvent?.(event);
    },
  });
  return { events, done, endpoint };
}

Deno.test("buffer: a paused receiver whose data was evicted reports the lost range", async () => {
  // Receive queues of 32 datagrams: a paused endpoint drops the rest.
  const network = new MemoryNetwork({ queueLimit: 32 });
  const stop = new AbortController();
  const bulletins = bulletinsOf(300, 1000);
  const fast = startReceiver(network, "fast", {
    count: 300,
    signal: stop.signal,
  });
  const slow: ReceiverRecord = startReceiver(network, "slow", {
    signal: stop.signal,
  });
  // It stops reading before it hears the sender: the sender does not know
  // it, so nothing holds the stream for it, and the 64 KiB buffer lets go
  // of what it has not read. (A receiver the sender knows holds the stream
  // back instead: see the flow-control tests.)
  slow.endpoint.pause();
  const sender = startSender(network, bulletins, {
    deadlineMs: 5_000,
    lingerMs: 200,
    bufferBytes: 64 * 1024,
    window: 100_000,
    signal: stop.signal,
  }, (event) => {
    if (event.type === "sent") slow.endpoint.resume();
  });
  try {
    const report = await bounded(10_000, sender.done, () => stop.abort());
    await bounded(5_000, fast.done, () => stop.abort());
    stop.abort();
    await slow.done;
    assert.deepEqual(fast.numbers, range(1, 300));
    assert.equal(report.packets, 300);
    // The slow receiver got the start, lost a range and got the rest
    // repaired: one unrecoverable event names exactly what is missing.
    const lost = slow.events.filter((e) => e.type === "unrecoverable");
    assert.equal(lost.length, 1, JSON.stringify(lost));
    const gap = lost[0] as Extract<ReceiverEvent, { type: "unrecoverable" }>;
    assert.equal(gap.session, report.session);
    // One bulletin per datagram: sequence n holds bulletin n.
    assert.deepEqual(slow.numbers, [
      ...range(1, gap.first - 1),
      ...range(gap.last + 1, 300),
    ]);
    // What it read before its queue filled; 64 KiB hold 46 datagrams (each
    // takes a whole 1,400-byte buffer, reused once evicted).
    assert.ok(gap.first > 1 && gap.first <= 33, `first ${gap.first}`);
    assert.equal(gap.last, 300 - 46, JSON.stringify(gap));
    assert.equal(slow.stats!.unrecoverable, gap.last - gap.first + 1);
    console.log(
      `  lost ${gap.first}-${gap.last}; sender: retransmitted ${report.retransmitted}, ` +
        `gone ${report.gone}`,
    );
  } finally {
    stop.abort();
    await Promise.allSettled([fast.done, slow.done, sender.done]);
    network.close();
  }
});

Deno.test("buffer: the report does not claim delivery to a receiver that lost data", async () => {
  // As above; the sender let go of data this receiver never had, so it
  // cannot have "everything".
  const network = new MemoryNetwork({ queueLimit: 32 });
  const stop = new AbortController();
  const bulletins = bulletinsOf(300, 1000);
  const fast = startReceiver(network, "fast", {
    count: 300,
    signal: stop.signal,
  });
  const slow: ReceiverRecord = startReceiver(network, "slow", {
    signal: stop.signal,
  });
  slow.endpoint.pause();
  const sender = startSender(network, bulletins, {
    deadlineMs: 2_000,
    lingerMs: 200,
    bufferBytes: 64 * 1024,
    window: 100_000,
    signal: stop.signal,
  }, (event) => {
    if (event.type === "sent") slow.endpoint.resume();
  });
  try {
    const report = await bounded(10_000, sender.done, () => stop.abort());
    stop.abort();
    await Promise.allSettled([fast.done, slow.done]);
    const lost = slow.events.find((e) => e.type === "unrecoverable");
    assert.ok(lost?.type === "unrecoverable");
    const entry = report.receivers.find((r) => r.name === "slow")!;
    assert.equal(report.delivered, false, JSON.stringify(report.receivers));
    assert.notEqual(entry.status, "complete", JSON.stringify(entry));
    assert.deepEqual(entry.missingBulletins, [
      { first: lost.first, last: lost.last },
    ]);
  } finally {
    stop.abort();
    await Promise.allSettled([fast.done, slow.done, sender.done]);
    network.close();
  }
});

Deno.test("buffer: a NACK for data no longer held is answered with GONE", async () => {
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const bulletins = bulletinsOf(100, 1000);
  const fast = startReceiver(network, "fast", {
    count: 100,
    signal: stop.signal,
  });
  const slow = startReceiver(network, "slow", {
    signal: stop.signal,
    filter: true,
  });
  const filter = slow.filter!;
  let dropped = false;
  filter.onReceive = (frame) => {
    // Datagram 5 is lost on the way.
    if (frame.type === "data" && frame.seq === 5 && !dropped) {
      dropped = true;
      return "drop";
    }
    return "pass";
  };
  // Everything it says waits until the stream was sent: the sender does
  // not know it meanwhile, so nothing holds its 16 KiB buffer, which lets
  // go of datagram 5. (A receiver the sender knows holds the stream back
  // instead.)
  filter.onSend = () => "hold";
  const sender = startSender(network, bulletins, {
    deadlineMs: 5_000,
    lingerMs: 200,
    bufferBytes: 16 * 1024,
    signal: stop.signal,
  }, (event) => {
    if (event.type !== "sent") return;
    // Once the NACK for 5 is out (and held): let everything go.
    void until(
      () =>
        filter.held.some((item) => {
          const decoded = decodeFrame(item.payload);
          return decoded.kind === "frame" && decoded.frame.type === "nack";
        }),
      5_000,
      "a NACK",
    ).then(() => filter.release(), () => filter.release());
  });
  try {
    const report = await bounded(10_000, sender.done, () => stop.abort());
    await bounded(5_000, fast.done, () => stop.abort());
    await until(() => slow.numbers.length === 99, 5_000, "slow receiver");
    stop.abort();
    await slow.done;
    assert.ok(filter.sentTypes.get("nack")! >= 1);
    assert.ok(report.gone >= 1, `gone ${report.gone}`);
    assert.deepEqual(fast.numbers, range(1, 100));
    assert.deepEqual(slow.numbers, [...range(1, 4), ...range(6, 100)]);
    const lost = slow.events.filter((e) => e.type === "unrecoverable");
    assert.deepEqual(
      lost.map((e) => e.type === "unrecoverable" && [e.first, e.last]),
      [[5, 5]],
    );
  } finally {
    stop.abort();
    await Promise.allSettled([fast.done, slow.done, sender.done]);
    network.close();
  }
});

// ---- 4. flow control ------------------------------------------------------------

Deno.test("flow: a paused receiver on the roster holds the stream within the window", async () => {
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const bulletins = bulletinsOf(200, 1000);
  const fast = startReceiver(network, "fast", {
    count: 200,
    signal: stop.signal,
  });
  const slow: ReceiverRecord = startReceiver(network, "slow", {
    count: 200,
    signal: stop.signal,
    onEvent(event) {
      if (event.type === "session") slow.endpoint.pause();
    },
  });
  const sender = startSender(network, bulletins, {
    expect: 2,
    window: 32,
    signal: stop.signal,
  });
  try {
    // The window: 32 datagrams ahead of the slowest acknowledgement (0).
    await until(() => fast.numbers.length >= 32, 5_000, "fast receiver");
    await delay(300);
    assert.equal(fast.numbers.length, 32);
    assert.equal(slow.numbers.length, 0);
    assert.equal(sender.events.some((e) => e.type === "sent"), false);
    slow.endpoint.resume();
    const report = await bounded(10_000, sender.done, () => stop.abort());
    await bounded(
      5_000,
      Promise.all([fast.done, slow.done]),
      () => stop.abort(),
    );
    assert.equal(report.delivered, true);
    assert.equal(report.reason, "complete");
    assert.deepEqual(fast.numbers, range(1, 200));
    assert.deepEqual(slow.numbers, range(1, 200));
    assert.deepEqual(
      report.receivers.map((r) => [r.name, r.status, r.bulletins]),
      [["fast", "complete", 200], ["slow", "complete", 200]],
    );
    assert.equal(sender.events.some((e) => e.type === "evicted"), false);
  } finally {
    stop.abort();
    await Promise.allSettled([fast.done, slow.done, sender.done]);
    network.close();
  }
});

Deno.test("flow: a full buffer holds the stream for a known receiver instead of evicting its data", async () => {
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const bulletins = bulletinsOf(200, 1000);
  const fast = startReceiver(network, "fast", {
    count: 200,
    signal: stop.signal,
  });
  const slow: ReceiverRecord = startReceiver(network, "slow", {
    count: 200,
    signal: stop.signal,
    onEvent(event) {
      if (event.type === "session") slow.endpoint.pause();
    },
  });
  // A window far larger than the buffer: the buffer is what holds.
  const sender = startSender(network, bulletins, {
    expect: 2,
    window: 100_000,
    bufferBytes: 64 * 1024,
    signal: stop.signal,
  });
  try {
    await until(() => fast.numbers.length >= 30, 5_000, "fast receiver");
    await delay(300);
    // 64 KiB hold 46 datagrams (a 1,400-byte buffer each); nothing more is
    // sent.
    const held = fast.numbers.length;
    assert.ok(held >= 44 && held <= 47, `fast got ${held}`);
    assert.equal(sender.events.some((e) => e.type === "sent"), false);
    slow.endpoint.resume();
    const report = await bounded(10_000, sender.done, () => stop.abort());
    await bounded(
      5_000,
      Promise.all([fast.done, slow.done]),
      () => stop.abort(),
    );
    assert.equal(report.delivered, true);
    assert.equal(report.gone, 0);
    assert.deepEqual(fast.numbers, range(1, 200));
    assert.deepEqual(slow.numbers, range(1, 200));
    assert.deepEqual(
      slow.events.filter((e) => e.type === "unrecoverable"),
      [],
    );
  } finally {
    stop.abort();
    await Promise.allSettled([fast.done, slow.done, sender.done]);
    network.close();
  }
});

Deno.test("flow: with dropSlow a paused receiver is evicted and the rest get everything", async () => {
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const bulletins = bulletinsOf(200, 1000);
  const fast = startReceiver(network, "fast", {
    count: 200,
    signal: stop.signal,
  });
  const slow: ReceiverRecord = startReceiver(network, "slow", {
    signal: stop.signal,
    onEvent(event) {
      if (event.type === "session") slow.endpoint.pause();
    },
  });
  const sender = startSender(network, bulletins, {
    expect: 2,
    window: 32,
    dropSlow: true,
    slowMs: 200,
    signal: stop.signal,
  });
  try {
    const report = await bounded(10_000, sender.done, () => stop.abort());
    await bounded(5_000, fast.done, () => stop.abort());
    assert.deepEqual(fast.numbers, range(1, 200));
    assert.equal(slow.numbers.length, 0);
    const evicted = sender.events.filter((e) => e.type === "evicted");
    assert.equal(evicted.length, 1);
    const event = evicted[0]!;
    assert.ok(event.type === "evicted");
    assert.equal(event.name, "slow");
    assert.equal(event.acked, 0);
    // 32 sent; the 33rd waits for the window.
    assert.equal(event.high, 32);
    assert.equal(report.delivered, false);
    assert.equal(report.reason, "evicted");
    assert.deepEqual(
      report.receivers.map((r) => [r.name, r.status, r.bulletins]),
      [["fast", "complete", 200], ["slow", "evicted", 0]],
    );
    const entry = report.receivers.find((r) => r.name === "slow")!;
    assert.deepEqual(entry.missingBulletins, [{ first: 1, last: 200 }]);
  } finally {
    stop.abort();
    await Promise.allSettled([fast.done, slow.done, sender.done]);
    network.close();
  }
});

// ---- 5. roster ----------------------------------------------------------------

Deno.test("roster: no data before every named receiver answered", async () => {
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const bulletins = bulletinsOf(50, 100);
  let bJoinedFirst: boolean | undefined;
  const sender = startSender(network, bulletins, {
    receivers: ["a", "b"],
    signal: stop.signal,
  });
  const a = startReceiver(network, "a", {
    count: 50,
    signal: stop.signal,
    onEvent(event) {
      if (event.type === "bulletin" && bJoinedFirst === undefined) {
        bJoinedFirst = sender.events.some((e) =>
          e.type === "receiver" && e.name === "b"
        );
      }
    },
  });
  let b: ReceiverRecord | undefined;
  try {
    await until(
      () => sender.events.some((e) => e.type === "receiver" && e.name === "a"),
      5_000,
      "a joins",
    );
    // Heartbeats only, for a while.
    await delay(200);
    assert.equal(a.numbers.length, 0);
    assert.equal(a.events.filter((e) => e.type === "session").length, 1);
    b = startReceiver(network, "b", { count: 50, signal: stop.signal });
    const report = await bounded(10_000, sender.done, () => stop.abort());
    await bounded(5_000, Promise.all([a.done, b.done]), () => stop.abort());
    assert.equal(bJoinedFirst, true);
    assert.equal(report.delivered, true);
    assert.deepEqual(a.numbers, range(1, 50));
    assert.deepEqual(b.numbers, range(1, 50));
    assert.deepEqual(
      report.receivers.map((r) => [r.name, r.status, r.bulletins]),
      [["a", "complete", 50], ["b", "complete", 50]],
    );
  } finally {
    stop.abort();
    await Promise.allSettled([a.done, b?.done, sender.done]);
    network.close();
  }
});

Deno.test("roster: a named receiver that never answers is reported silent", async () => {
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const a = startReceiver(network, "a", { signal: stop.signal });
  const sender = startSender(network, bulletinsOf(5, 10), {
    receivers: ["a", "ghost"],
    deadlineMs: 300,
    signal: stop.signal,
  });
  try {
    const report = await bounded(5_000, sender.done, () => stop.abort());
    assert.equal(report.delivered, false);
    assert.equal(report.reason, "roster");
    // Nothing was sent: the roster never completed.
    assert.equal(report.packets, 0);
    assert.deepEqual(a.numbers, []);
    const ghost = report.receivers.find((r) => r.name === "ghost")!;
    assert.equal(ghost.status, "silent");
    assert.equal(ghost.from, undefined);
    assert.deepEqual(
      report.receivers.map((r) => r.name),
      ["a", "ghost"],
    );
    assert.ok(report.elapsedMs >= 300, `elapsed ${report.elapsedMs}`);
  } finally {
    stop.abort();
    await Promise.allSettled([a.done, sender.done]);
    network.close();
  }
});

// ---- a receiver that stops at its count --------------------------------------

Deno.test("tail: a receiver's last ACK and BYE lost, the sender still learns it finished", async () => {
  // A receiver with a count stops once it has them all, sending its last
  // ACK and its BYE once. When the sender does not hear them, it cannot
  // tell the receiver finished: it waits for the deadline and reports it
  // incomplete, although everything was delivered.
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const bulletins = bulletinsOf(20, 100);
  let closing = false;
  const r = startReceiver(network, "r", {
    count: 20,
    signal: stop.signal,
    filter: true,
    onEvent(event) {
      if (event.type === "bulletin" && event.number === 20) closing = true;
    },
  });
  let lostAck = false;
  let lostBye = false;
  r.filter!.onSend = (frame) => {
    // The first ACK after the last bulletin, and the first BYE, are lost
    // (one datagram each: what a retry sends again gets through).
    if (frame.type === "bye" && !lostBye) {
      lostBye = true;
      return "drop";
    }
    if (closing && frame.type === "ack" && !lostAck) {
      lostAck = true;
      return "drop";
    }
    return "pass";
  };
  const sender = startSender(network, bulletins, {
    expect: 1,
    deadlineMs: 1_000,
    heartbeatMs: 20,
    signal: stop.signal,
  });
  try {
    const report = await bounded(5_000, sender.done, () => stop.abort());
    await bounded(5_000, r.done, () => stop.abort());
    assert.deepEqual(r.numbers, range(1, 20));
    assert.ok(lostAck && lostBye);
    assert.equal(report.delivered, true, JSON.stringify(report.receivers));
  } finally {
    stop.abort();
    await Promise.allSettled([r.done, sender.done]);
    network.close();
  }
});

// ---- 7. journal ----------------------------------------------------------------

Deno.test("journal: a stopped sender's journal completes delivery in a second run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mcast-journal-" });
  const network = new MemoryNetwork();
  const stopReceivers = new AbortController();
  const stopFirst = new AbortController();
  const bulletins = bulletinsOf(500, 1000);
  const receivers = ["r0", "r1"].map((name) =>
    startReceiver(network, name, {
      signal: stopReceivers.signal,
      filter: true,
      onEvent(event) {
        // The first sender stops mid-stream.
        if (event.type === "bulletin" && event.number === 100) {
          stopFirst.abort();
        }
      },
    })
  );
  // r1 loses datagrams 61-100 as the first sender sends them (its NACKs
  // are lost too), so that the second sender has them to repair.
  let firstRun = true;
  receivers[1]!.filter!.onReceive = (frame) =>
    firstRun && frame.type === "data" && frame.seq > 60 ? "drop" : "pass";
  receivers[1]!.filter!.onSend = (frame) =>
    firstRun && frame.type === "nack" ? "drop" : "pass";
  let journal: Journal | undefined;
  try {
    journal = Journal.open(dir);
    const first = startSender(network, bulletins, {
      expect: 2,
      journal,
      signal: stopFirst.signal,
    });
    const firstReport = await bounded(
      10_000,
      first.done,
      () => stopFirst.abort(),
    );
    assert.equal(firstReport.reason, "signal");
    assert.equal(firstReport.delivered, false);
    assert.ok(firstReport.bulletins < 500, `${firstReport.bulletins} sent`);
    assert.deepEqual(receivers[0]!.numbers, range(1, 100));
    assert.deepEqual(receivers[1]!.numbers, range(1, 60));
    firstRun = false;
    journal.close();
    // What the journal holds: every bulletin it has a packet for.
    journal = Journal.open(dir);
    const recovery = journal.recover();
    assert.ok(recovery !== null);
    assert.equal(recovery.meta.session, firstReport.session);
    const journaled = recovery.nextBulletin - 1;
    assert.ok(journaled >= 100 && journaled < 500, `journaled ${journaled}`);
    assert.ok(journaled >= firstReport.packets);
    journal.close();
    journal = Journal.open(dir);
    const stopSecond = new AbortController();
    const second = startSender(network, [], {
      expect: 2,
      journal,
      signal: stopSecond.signal,
    });
    const report = await bounded(10_000, second.done, () => stopSecond.abort());
    assert.equal(report.session, firstReport.session);
    const session = second.events.find((e) => e.type === "session");
    assert.ok(session?.type === "session" && session.resumed);
    assert.equal(report.delivered, true, JSON.stringify(report.receivers));
    assert.equal(report.bulletins, 0);
    assert.equal(report.packets, 0);
    // r1's 40 and whatever the first run had not sent yet.
    assert.ok(report.retransmitted >= 40, `${report.retransmitted}`);
    await until(
      () => receivers.every((r) => r.numbers.length >= journaled),
      5_000,
      "receivers",
    );
    stopReceivers.abort();
    await Promise.all(receivers.map((r) => r.done));
    for (const r of receivers) {
      assert.deepEqual(r.numbers, range(1, journaled));
      assert.deepEqual(r.payloads, bulletins.slice(0, journaled));
      assert.equal(r.events.filter((e) => e.type === "session").length, 1);
    }
    // Delivered: the journal is finished, nothing left to recover.
    journal.close();
    journal = Journal.open(dir);
    assert.equal(journal.recover(), null);
    console.log(
      `  first run sent ${firstReport.packets} of ${journaled} journaled; ` +
        `second run retransmitted ${report.retransmitted}`,
    );
  } finally {
    stopFirst.abort();
    stopReceivers.abort();
    await Promise.allSettled(receivers.map((r) => r.done));
    journal?.close();
    network.close();
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- hostile feedback and trailer overhead -----------------------------------

Deno.test("hostile: selective ACK ranges above what was sent never make a receiver complete", async () => {
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const bulletins = bulletinsOf(5, 1000);
  const sender = startSender(network, bulletins, {
    receivers: ["real"],
    deadlineMs: 5_000,
    signal: stop.signal,
  });
  const attacker = network.open({ address: "127.0.0.1" });
  let real: ReceiverRecord | undefined;
  try {
    await until(
      () => sender.events.some((e) => e.type === "session"),
      2_000,
      "session starts",
    );
    const started = sender.events.find((e) => e.type === "session");
    assert.ok(started?.type === "session");
    // Before anything is sent: an ACK of nothing, claiming 1 to 2^40.
    await attacker.send(
      encodeFrame({
        type: "ack",
        session: started.session,
        seq: 0,
        name: "ghost",
        ranges: [{ first: 1, last: 2 ** 40 }],
      }),
      sender.endpoint.local,
    );
    await until(
      () =>
        sender.events.some((e) => e.type === "receiver" && e.name === "ghost"),
      2_000,
      "the sender hears ghost",
    );
    assert.ok(!sender.events.some((e) => e.type === "sent"));
    real = startReceiver(network, "real", { count: 5, signal: stop.signal });
    const report = await bounded(10_000, sender.done, () => stop.abort());
    await bounded(5_000, real.done, () => stop.abort());
    assert.deepEqual(real.numbers, range(1, 5));
    assert.equal(report.packets, 5);
    assert.equal(report.delivered, true);
    assert.equal(report.reason, "complete");
    assert.deepEqual(
      report.receivers.map((r) => [r.name, r.status, r.acked, r.bulletins]),
      [["ghost", "incomplete", 0, 0], ["real", "complete", 5, 5]],
    );
    const ghost = report.receivers.find((r) => r.name === "ghost")!;
    assert.deepEqual(ghost.missing, [{ first: 1, last: 5 }]);
    assert.deepEqual(ghost.missingBulletins, [{ first: 1, last: 5 }]);
    assert.deepEqual(ghost.from, attacker.local);
    const realEntry = report.receivers.find((r) => r.name === "real")!;
    assert.deepEqual(realEntry.missing, []);
  } finally {
    stop.abort();
    await Promise.allSettled([real?.done, sender.done]);
    network.close();
  }
});

Deno.test("hostile: a selective ACK range past what was sent is clamped to it", async () => {
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const bulletins = bulletinsOf(5, 1000);
  const attacker = network.open({ address: "127.0.0.1" });
  const endpoint = new FrameFilter(network.open({ address: "127.0.0.1" }));
  // Once DATA 2 has left (and the rate holds DATA 3 back for 100 ms):
  // ghost claims 2 to 2^40.
  let attacked = false;
  let attack: Promise<void> | undefined;
  endpoint.onSend = (frame) => {
    if (frame.type === "data" && frame.seq === 2 && !attacked) {
      attacked = true;
      attack = attacker.send(
        encodeFrame({
          type: "ack",
          session: frame.session,
          seq: 1,
          name: "ghost",
          ranges: [{ first: 2, last: 2 ** 40 }],
        }),
        endpoint.local,
      );
    }
    return "pass";
  };
  const events: ReliableSenderEvent[] = [];
  const real = startReceiver(network, "real", {
    count: 5,
    signal: stop.signal,
  });
  const done = sendReliable(endpoint, source(bulletins), {
    group,
    port: PORT,
    receivers: ["real"],
    rate: { unit: "bulletins", perSecond: 10 },
    deadlineMs: 5_000,
    signal: stop.signal,
    onEvent: (event) => events.push(event),
  });
  try {
    const report = await bounded(10_000, done, () => stop.abort());
    await bounded(5_000, real.done, () => stop.abort());
    await attack;
    assert.ok(attacked);
    assert.deepEqual(real.numbers, range(1, 5));
    assert.equal(report.packets, 5);
    assert.equal(report.delivered, true);
    // Ghost heard of 1 and 2 when it claimed them; 3 to 5 came later.
    const ghost = report.receivers.find((r) => r.name === "ghost")!;
    assert.equal(ghost.status, "incomplete");
    assert.equal(ghost.acked, 1);
    assert.equal(ghost.bulletins, 1);
    assert.deepEqual(ghost.missing, [{ first: 3, last: 5 }]);
    assert.deepEqual(ghost.missingBulletins, [{ first: 3, last: 5 }]);
    assert.equal(
      report.receivers.find((r) => r.name === "real")!.status,
      "complete",
    );
  } finally {
    stop.abort();
    await Promise.allSettled([real.done, done, attack]);
    network.close();
  }
});

/** An endpoint that says a guard adds `overhead` bytes to what it sends. */
class OverheadEndpoint implements DatagramEndpoint {
  readonly inner: MemoryEndpoint;
  readonly overhead: number;

  constructor(inner: MemoryEndpoint, overhead: number) {
    this.inner = inner;
    this.overhead = overhead;
  }

  get local(): Peer {
    return this.inner.local;
  }

  send(payload: Uint8Array, to: Peer): Promise<void> {
    return this.inner.send(payload, to);
  }

  receive(): Promise<Datagram | null> {
    return this.inner.receive();
  }

  close(): void {
    this.inner.close();
  }
}

Deno.test("overhead: the sender packs mtu minus the endpoint's overhead into each datagram", async () => {
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const bulletins = bulletinsOf(30, 1000);
  // A listener on the group: every datagram the sender sends, as sent.
  const listener = network.open({ address: GROUP, port: PORT });
  listener.join(GROUP);
  const sizes = new Map<string, number[]>();
  const listening = (async () => {
    for (;;) {
      const datagram = await listener.receive();
      if (datagram === null) return;
      const decoded = decodeFrame(datagram.payload);
      assert.equal(decoded.kind, "frame");
      const type = (decoded as { frame: Frame }).frame.type;
      sizes.set(type, [...sizes.get(type) ?? [], datagram.payload.length]);
    }
  })();
  const r = startReceiver(network, "r", { count: 30, signal: stop.signal });
  const endpoint = new OverheadEndpoint(
    network.open({ address: "127.0.0.1" }),
    100,
  );
  const done = sendReliable(endpoint, source(bulletins), {
    group,
    port: PORT,
    expect: 1,
    mtu: 600,
    deadlineMs: 5_000,
    signal: stop.signal,
    onEvent: () => {},
  });
  try {
    const report = await bounded(10_000, done, () => stop.abort());
    await bounded(5_000, r.done, () => stop.abort());
    assert.equal(report.delivered, true);
    assert.deepEqual(r.numbers, range(1, 30));
    r.payloads.forEach((payload, k) => assert.deepEqual(payload, bulletins[k]));
    listener.close();
    await listening;
    const data = sizes.get("data") ?? [];
    assert.ok(data.length >= report.packets, `${data.length} DATA datagrams`);
    // Fragments fill a datagram to the byte: exactly 600 - 100.
    assert.equal(Math.max(...data), 500);
    for (const [type, list] of sizes) {
      assert.ok(Math.max(...list) <= 500, `${type}: ${list.join(" ")}`);
    }
    // 1000-byte bulletins in 500-byte datagrams: more than two each.
    assert.ok(report.packets > 60, `${report.packets} packets`);
  } finally {
    stop.abort();
    listener.close();
    await Promise.allSettled([r.done, done, listening]);
    network.close();
  }
});

Deno.test({
  name:
    "overhead: an mtu that leaves less than 128 bytes is refused with UsageError",
  async fn() {
    const network = new MemoryNetwork();
    const endpoint = new OverheadEndpoint(
      network.open({ address: "127.0.0.1" }),
      100,
    );
    const events: ReliableSenderEvent[] = [];
    try {
      await assert.rejects(
        sendReliable(endpoint, source(bulletinsOf(1, 10)), {
          group,
          port: PORT,
          mtu: 200,
          deadlineMs: 1_000,
          onEvent: (event) => events.push(event),
        }),
        (error: unknown) => {
          assert.ok(error instanceof UsageError, `not a UsageError: ${error}`);
          assert.equal(
            error.message,
            "--mtu 200 is too small with keys: they add up to 100 bytes to every datagram (use at least 228)",
          );
          assert.equal(error.exitCode, 2);
          return true;
        },
      );
      // Refused before anything started, and the endpoint closed as in
      // every other case.
      assert.deepEqual(events, []);
      assert.equal(endpoint.inner.sent, 0);
      assert.equal(endpoint.inner.closed, true);
    } finally {
      network.close();
    }
  },
});

Deno.test("overhead: the smallest mtu that leaves 128 bytes is accepted", async () => {
  const network = new MemoryNetwork();
  // Nothing to send, nobody listening: it ends after two heartbeats.
  const endpoint = new OverheadEndpoint(
    network.open({ address: "127.0.0.1" }),
    100,
  );
  try {
    const report = await bounded(
      5_000,
      sendReliable(endpoint, source([]), {
        group,
        port: PORT,
        mtu: 228,
        heartbeatMs: 10,
        lingerMs: 0,
        deadlineMs: 1_000,
        onEvent: () => {},
      }),
      () => endpoint.close(),
    );
    assert.equal(report.reason, "no-receivers");
    assert.equal(report.packets, 0);
    assert.equal(endpoint.inner.closed, true);
    // Heartbeats went out: the sender ran.
    assert.ok(endpoint.inner.sent >= 2, `${endpoint.inner.sent} sent`);
  } finally {
    network.close();
  }
});

Deno.test("an already aborted signal stops the session at once, reason signal", async () => {
  const network = new MemoryNetwork();
  const endpoint = network.open({ address: "127.0.0.1" });
  const stop = new AbortController();
  stop.abort();
  const started = performance.now();
  try {
    const report = await sendReliable(endpoint, source(bulletinsOf(3, 10)), {
      group,
      port: PORT,
      deadlineMs: 5_000,
      signal: stop.signal,
      onEvent: () => {},
    });
    assert.equal(report.reason, "signal");
    assert.equal(report.packets, 0);
    assert.ok(performance.now() - started < 1_000, "ran on");
  } finally {
    network.close();
  }
});
