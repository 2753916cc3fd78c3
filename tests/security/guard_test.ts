/**
 * In-process proofs of the frame guard's security claims (`lib/security/guard.ts`,
 * docs/protocol.md "Trailer: keys"): senders and receivers on a
 * {@linkcode MemoryNetwork}, attackers as further endpoints on it, every
 * drop counted exactly. docs/security.md cites these tests by name.
 *
 * Endpoints are stacked as the tools stack them, with taps that record the
 * sealed bytes on the wire: `GuardedEndpoint(faults?(Tap(MemoryEndpoint)))`.
 * The guard checks several datagrams at once, so a test waits until the
 * counters reach what it sent (bounded) and then asserts them exactly, once
 * everything has stopped: a count that goes on growing fails.
 *
 * Two tests at the end are left failing on purpose: they expose lib bugs
 * (see their comments, marked KNOWN LIB BUG).
 *
 * @module
 */

import assert from "node:assert/strict";
import { parseGroup, type Peer } from "../../lib/net/address.ts";
import type { ReceiverEvent, ReliableSenderEvent } from "../../lib/events.ts";
import {
  type FaultOptions,
  type FaultyEndpoint,
  seededRandom,
  withFaults,
} from "../../lib/net/fault.ts";
import {
  decodeFrame,
  encodeFrame,
  FLAGS,
  type Frame,
  FRAME_TYPES,
  type FrameTypeName,
  hasMagic,
  nowMicros,
} from "../../lib/wire/frame.ts";
import {
  DEFAULT_MAX_SKEW_MS,
  GuardedEndpoint,
  type GuardOptions,
} from "../../lib/security/guard.ts";
import { Journal } from "../../lib/reliable/journal.ts";
import {
  type MemoryEndpoint,
  MemoryNetwork,
} from "../../lib/net/memory_net.ts";
import { receiveBulletins } from "../../lib/receiver.ts";
import {
  sendReliable,
  type SendReliableOptions,
} from "../../lib/reliable/sender.ts";
import type { Datagram, DatagramEndpoint } from "../../lib/net/socket.ts";
import {
  type DropCounts,
  emptyDrops,
  type ReceiverStats,
  type SenderReport,
} from "../../lib/reliable/stats.ts";
import { groupKey, signingKey } from "../_fakes.ts";
import { bounded, type Gate, gate, until } from "../_wait.ts";

const GROUP = "239.42.9.1";
const PORT = 17900;
const group = parseGroup(GROUP);
const TO_GROUP: Peer = { address: GROUP, port: PORT };
const encoder = new TextEncoder();

/** A guard's options without the counters (each endpoint gets its own). */
type Keys = Omit<GuardOptions, "dropped">;

// ---- keys, bytes and frames ---------------------------------------------------

function u64(bytes: Uint8Array, at: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, 8);
  return view.getUint32(0) * 0x1_0000_0000 + view.getUint32(4);
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const TYPE_NAMES = new Map<number, FrameTypeName>(
  Object.entries(FRAME_TYPES).map(([name, code]) =>
    [code, name as FrameTypeName] as const
  ),
);

/** The type of a frame on the wire (sealed or not), or "plain". */
function typeOf(bytes: Uint8Array): string {
  if (!hasMagic(bytes) || bytes.length < 24) return "plain";
  return TYPE_NAMES.get(bytes[5]!) ?? `type ${bytes[5]}`;
}

function countTypes(datagrams: Uint8Array[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const bytes of datagrams) {
    const type = typeOf(bytes);
    counts[type] = (counts[type] ?? 0) + 1;
  }
  return counts;
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  const first = needle[0];
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    if (haystack[i] !== first) continue;
    for (let k = 1; k < needle.length; k++) {
      if (haystack[i + k] !== needle[k]) continue outer;
    }
    return true;
  }
  return false;
}

/** The non-zero drop counters, e.g. `auth 10, replay 3` (or `none`). */
function drops(dropped: DropCounts): string {
  const parts = Object.entries(dropped).filter(([, n]) => n > 0).map((
    [reason, n],
  ) => `${reason} ${n}`);
  return parts.length > 0 ? parts.join(", ") : "none";
}

/** Drop counters with exactly these non-zero entries. */
function only(counts: Partial<DropCounts>): DropCounts {
  return { ...emptyDrops(), ...counts };
}

/** A bulletin whose bytes say which it is and differ per offset. */
function bulletin(n: number, size: number, tag = "bulletin"): Uint8Array {
  const text = encoder.encode(`${tag} ${n} `);
  const bytes = new Uint8Array(Math.max(size, text.length));
  bytes.set(text);
  for (let k = text.length; k < bytes.length; k++) {
    bytes[k] = (n * 31 + k * 7) & 0xff;
  }
  return bytes;
}

/**
 * `count` bulletins of seeded sizes: most 20-900 bytes (several per
 * datagram), one in eight 1,500-6,000 bytes (fragmented over the 1,400-byte
 * MTU).
 */
function mixedBulletins(count: number, seed: number): Uint8Array[] {
  const random = seededRandom(seed);
  const list: Uint8Array[] = [];
  for (let n = 1; n <= count; n++) {
    const size = random() < 0.125
      ? 1500 + Math.floor(random() * 4500)
      : 20 + Math.floor(random() * 880);
    list.push(bulletin(n, size));
  }
  return list;
}

/** 1,000-byte bulletins: exactly one per datagram, so sequence n holds bulletin n. */
function wholeBulletins(first: number, last: number, tag = "bulletin") {
  const list: Uint8Array[] = [];
  for (let n = first; n <= last; n++) list.push(bulletin(n, 1000, tag));
  return list;
}

function range(first: number, last: number): number[] {
  const list: number[] = [];
  for (let n = first; n <= last; n++) list.push(n);
  return list;
}

function dataFrame(
  session: string,
  seq: number,
  payload: Uint8Array,
  options: { retransmit?: boolean; bulletin?: number } = {},
): Uint8Array {
  return encodeFrame({
    type: "data",
    session,
    seq,
    retransmit: options.retransmit ?? false,
    timestamp: nowMicros(),
    low: 1,
    records: [{
      bulletin: options.bulletin ?? seq,
      total: payload.length,
      offset: 0,
      data: payload,
    }],
  });
}

function heartbeat(session: string, seq: number): Uint8Array {
  return encodeFrame({
    type: "heartbeat",
    session,
    seq,
    final: false,
    timestamp: nowMicros(),
    low: 1,
  });
}

// ---- waiting -----------------------------------------------------------------------

async function* source(list: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const item of list) yield item;
}

/** Yields `parts[0]`, waits for `gates[0]`, yields `parts[1]`, and so on. */
async function* gated(
  parts: Uint8Array[][],
  gates: Gate[],
): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < parts.length; i++) {
    if (i > 0) await gates[i - 1]!.promise;
    yield* parts[i]!;
  }
}

// ---- endpoints ---------------------------------------------------------------------

/**
 * Records what passes through an endpoint, as bytes on the wire: every
 * datagram sent, and every datagram received (`drop` may discard some on
 * the way in, as a lossy link would).
 */
class Tap implements DatagramEndpoint {
  readonly inner: DatagramEndpoint;
  readonly sent: { payload: Uint8Array; to: Peer }[] = [];
  readonly received: Uint8Array[] = [];
  drop: (bytes: Uint8Array) => boolean = () => false;
  /**
   * Send a macrotask later, as a real socket's asynchronous send completes
   * (a memory endpoint sends at once).
   */
  slow = false;

  constructor(inner: DatagramEndpoint) {
    this.inner = inner;
  }

  get local(): Peer {
    return this.inner.local;
  }

  async send(payload: Uint8Array, to: Peer): Promise<void> {
    if (this.slow) await new Promise((resolve) => setTimeout(resolve, 0));
    this.sent.push({ payload: payload.slice(), to });
    return await this.inner.send(payload, to);
  }

  async receive(): Promise<Datagram | null> {
    for (;;) {
      const datagram = await this.inner.receive();
      if (datagram === null) return null;
      if (this.drop(datagram.payload)) continue;
      this.received.push(datagram.payload.slice());
      return datagram;
    }
  }

  close(): void {
    this.inner.close();
  }
}

/** An endpoint that keeps what is sent through it and receives nothing. */
class Recorder implements DatagramEndpoint {
  readonly local: Peer = { address: "127.0.0.1", port: 39999 };
  readonly sent: Uint8Array[] = [];

  send(payload: Uint8Array): Promise<void> {
    this.sent.push(payload.slice());
    return Promise.resolve();
  }

  receive(): Promise<Datagram | null> {
    return Promise.resolve(null);
  }

  close(): void {}
}

/**
 * Lets the receiver's feedback frames in flight (a guard seals them
 * asynchronously) leave before the endpoint below closes, and says when it
 * has: `closed`. It stands in for the fix of the farewell bug shown by the
 * "farewell" tests below, so that the other tests stop cleanly.
 */
class Settling implements DatagramEndpoint {
  readonly inner: DatagramEndpoint;
  closed: Promise<void> = Promise.resolve();
  #pending = new Set<Promise<void>>();
  #closing = false;

  constructor(inner: DatagramEndpoint) {
    this.inner = inner;
  }

  get local(): Peer {
    return this.inner.local;
  }

  send(payload: Uint8Array, to: Peer): Promise<void> {
    const sending = this.inner.send(payload, to);
    const settled = sending.catch(() => {});
    this.#pending.add(settled);
    settled.finally(() => this.#pending.delete(settled));
    return sending;
  }

  receive(): Promise<Datagram | null> {
    return this.inner.receive();
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.closed = Promise.allSettled([...this.#pending]).then(() =>
      this.inner.close()
    );
  }
}

/**
 * Aborts `controller` once armed, as the next datagram is handed over: the
 * moment a signal (SIGINT) meets a datagram that has just arrived.
 */
class AbortOnReceive implements DatagramEndpoint {
  readonly inner: DatagramEndpoint;
  readonly controller: AbortController;
  armed = false;

  constructor(inner: DatagramEndpoint, controller: AbortController) {
    this.inner = inner;
    this.controller = controller;
  }

  get local(): Peer {
    return this.inner.local;
  }

  send(payload: Uint8Array, to: Peer): Promise<void> {
    return this.inner.send(payload, to);
  }

  async receive(): Promise<Datagram | null> {
    const datagram = await this.inner.receive();
    if (datagram !== null && this.armed) {
      this.armed = false;
      this.controller.abort();
    }
    return datagram;
  }

  close(): void {
    this.inner.close();
  }
}

/**
 * Seals frames with a fresh guard holding `keys`, without sending them:
 * returns the sealed datagrams (`expected` of them: a signing guard may
 * add a signed copy of the last DATA frame).
 */
async function seal(
  keys: Keys,
  frames: Uint8Array[],
  expected = frames.length,
): Promise<Uint8Array[]> {
  const recorder = new Recorder();
  const guard = new GuardedEndpoint(recorder, {
    ...keys,
    dropped: emptyDrops(),
  });
  try {
    for (const frame of frames) await guard.send(frame, TO_GROUP);
    await until(
      () => recorder.sent.length >= expected,
      2_000,
      () => `${recorder.sent.length} of ${expected} sealed`,
    );
  } finally {
    guard.close();
  }
  assert.equal(recorder.sent.length, expected);
  return recorder.sent;
}

/** An endpoint on `network` from which an attacker sends raw datagrams. */
function attackerOn(network: MemoryNetwork): MemoryEndpoint {
  return network.open({ address: "127.0.0.1" });
}

interface ReceiverPlan {
  name: string;
  /** Without keys: a receiver of a build without the guard. */
  keys?: Keys;
  /** Stop after this many bulletins (default: run until stopped). */
  count?: number;
  /** Faults between the wire and the guard. */
  faults?: FaultOptions;
  /** The plain acknowledgement (default none). */
  ack?: Uint8Array | null;
  /** Seed of the protocol's timers' randomness. */
  seed?: number;
  onEvent?: (event: ReceiverEvent) => void;
  /** Hand the guard to the receiver as it is (no {@linkcode Settling}). */
  raw?: boolean;
  /** Put an {@linkcode AbortOnReceive} on top, aborting this controller. */
  abortOnReceive?: AbortController;
}

interface ReceiverRecord {
  name: string;
  endpoint: MemoryEndpoint;
  /** The wire side: sealed datagrams as they arrive and leave. */
  tap: Tap;
  faulty?: FaultyEndpoint;
  /** Between the fault shim and the guard: what the shim let through. */
  shim?: Tap;
  dropped: DropCounts;
  numbers: number[];
  payloads: Uint8Array[];
  /** Every event but `waiting` and `bulletin`. */
  events: ReceiverEvent[];
  stats?: ReceiverStats;
  trigger?: AbortOnReceive;
  /** Resolves once stopped and every frame it sent has left. */
  done: Promise<number>;
}

function startReceiver(
  network: MemoryNetwork,
  plan: ReceiverPlan,
  signal: AbortSignal,
): ReceiverRecord {
  const endpoint = network.open({ address: GROUP, port: PORT });
  endpoint.join(GROUP);
  const tap = new Tap(endpoint);
  const faulty = plan.faults ? withFaults(tap, plan.faults) : undefined;
  const shim = faulty ? new Tap(faulty) : undefined;
  const dropped = emptyDrops();
  const below: DatagramEndpoint = shim ?? tap;
  const guarded = plan.keys
    ? new GuardedEndpoint(below, { ...plan.keys, dropped })
    : below;
  const settling = plan.raw ? undefined : new Settling(guarded);
  const trigger = plan.abortOnReceive
    ? new AbortOnReceive(settling ?? guarded, plan.abortOnReceive)
    : undefined;
  const path = trigger ?? settling ?? guarded;
  const record: ReceiverRecord = {
    name: plan.name,
    endpoint,
    tap,
    faulty,
    shim,
    dropped,
    numbers: [],
    payloads: [],
    events: [],
    trigger,
    done: Promise.resolve(0),
  };
  const receiving = receiveBulletins(path, {
    group,
    port: PORT,
    ack: plan.ack ?? null,
    count: plan.count,
    signal,
    protocol: {
      name: plan.name,
      dropped,
      tuning: { random: seededRandom(plan.seed ?? 1) },
    },
    onEvent(event) {
      if (event.type === "bulletin") {
        record.numbers.push(event.number);
        record.payloads.push(event.payload);
      } else if (event.type !== "waiting") {
        record.events.push(event);
      }
      if (event.type === "stopped") record.stats = event.stats;
      plan.onEvent?.(event);
    },
  });
  record.done = receiving.then(async (count) => {
    await settling?.closed;
    return count;
  });
  return record;
}

interface SenderRecord {
  endpoint: MemoryEndpoint;
  tap: Tap;
  dropped: DropCounts;
  events: ReliableSenderEvent[];
  done: Promise<SenderReport>;
  /** The session id, once the `session` event was emitted. */
  session: () => string;
}

function startSender(
  network: MemoryNetwork,
  bulletins: AsyncIterable<Uint8Array>,
  keys: Keys | undefined,
  options: Partial<SendReliableOptions> & { signal: AbortSignal },
): SenderRecord {
  const endpoint = network.open({ address: "127.0.0.1" });
  const tap = new Tap(endpoint);
  const dropped = emptyDrops();
  const path = keys ? new GuardedEndpoint(tap, { ...keys, dropped }) : tap;
  const events: ReliableSenderEvent[] = [];
  const done = sendReliable(path, bulletins, {
    group,
    port: PORT,
    deadlineMs: 10_000,
    dropped,
    ...options,
    onEvent: (event) => events.push(event),
  });
  function session(): string {
    const event = events.find((e) => e.type === "session");
    assert.ok(event?.type === "session", "no session yet");
    return event.session;
  }
  return { endpoint, tap, dropped, events, done, session };
}

/** A member of the group that keeps every datagram sent to it. */
function listen(network: MemoryNetwork) {
  const endpoint = network.open({ address: GROUP, port: PORT });
  endpoint.join(GROUP);
  const captured: Uint8Array[] = [];
  const done = (async () => {
    for (;;) {
      const datagram = await endpoint.receive();
      if (datagram === null) return;
      captured.push(datagram.payload.slice());
    }
  })();
  return { endpoint, captured, done };
}

function assertDelivered(
  record: ReceiverRecord,
  bulletins: Uint8Array[],
): void {
  assert.deepEqual(
    record.numbers,
    range(1, bulletins.length),
    `${record.name}: numbers`,
  );
  record.payloads.forEach((payload, k) => {
    assert.deepEqual(
      payload,
      bulletins[k],
      `${record.name}: bulletin ${k + 1}`,
    );
  });
}

/** The sequence numbers of the signed DATA frames a tap saw leave. */
function signedBy(tap: Tap): number[] {
  return tap.sent.map((s) => s.payload).filter((b) =>
    b[5] === FRAME_TYPES.data && (b[6]! & FLAGS.signed) !== 0
  ).map((b) => u64(b, 16));
}

/** The trailer a sealed frame must carry, from its flags. */
function expectedTrailer(bytes: Uint8Array): number {
  let size = 24;
  if (bytes[5] === FRAME_TYPES.data) {
    if (bytes[6]! & FLAGS.encrypted) size += 16;
    if (bytes[6]! & FLAGS.chained) size += 32;
    if (bytes[6]! & FLAGS.signed) size += 64;
  }
  return size;
}

// ---- 1. a keyed session delivers ---------------------------------------------------

async function keyedSession(
  senderKeys: Keys,
  receiverKeys: Keys,
  bulletins: Uint8Array[],
) {
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const receivers = ["r1", "r2"].map((name, k) =>
    startReceiver(network, {
      name,
      keys: receiverKeys,
      count: bulletins.length,
      seed: 11 + k,
    }, stop.signal)
  );
  const sender = startSender(network, source(bulletins), senderKeys, {
    expect: 2,
    signal: stop.signal,
  });
  try {
    const report = await bounded(10_000, sender.done, () => stop.abort());
    await bounded(
      5_000,
      Promise.all(receivers.map((r) => r.done)),
      () => stop.abort(),
    );
    return { report, receivers, sender };
  } finally {
    stop.abort();
    await Promise.allSettled([sender.done, ...receivers.map((r) => r.done)]);
    network.close();
  }
}

Deno.test("guard: a keyed session delivers every bulletin exactly once, in order (HMAC, + encryption, + signatures)", async () => {
  const key = groupKey();
  const signer = await signingKey();
  const bulletins = mixedBulletins(300, 7);
  const fragmented = bulletins.filter((b) => b.length > 1400).length;
  assert.ok(fragmented >= 20, `fragmented ${fragmented}`);
  const variants: { name: string; sender: Keys; receiver: Keys }[] = [
    { name: "HMAC", sender: { key }, receiver: { key } },
    {
      name: "HMAC + AES-GCM",
      sender: { key, encrypt: true },
      receiver: { key },
    },
    {
      name: "HMAC + Ed25519",
      sender: { key, signingKey: signer },
      receiver: { key, trust: [signer.publicKey] },
    },
  ];
  for (const variant of variants) {
    const { report, receivers, sender } = await keyedSession(
      variant.sender,
      variant.receiver,
      bulletins,
    );
    assert.equal(report.delivered, true, JSON.stringify(report.receivers));
    assert.equal(report.reason, "complete");
    assert.equal(report.bulletins, 300);
    assert.deepEqual(
      report.receivers.map((r) => [r.name, r.status, r.bulletins]),
      [["r1", "complete", 300], ["r2", "complete", 300]],
    );
    for (const r of receivers) {
      assertDelivered(r, bulletins);
      assert.equal(r.stats!.failed, 0);
      assert.deepEqual(
        r.dropped,
        emptyDrops(),
        `${r.name}: ${drops(r.dropped)}`,
      );
    }
    assert.deepEqual(report.dropped, emptyDrops(), drops(report.dropped));
    // Every datagram on the wire, both ways, carries the trailer its flags
    // call for; DATA frames carry the variant's protection.
    const wire = [
      ...sender.tap.sent.map((s) => s.payload),
      ...receivers.flatMap((r) => r.tap.sent.map((s) => s.payload)),
    ];
    for (const bytes of wire) {
      assert.equal(bytes[7], expectedTrailer(bytes), typeOf(bytes));
    }
    const data = sender.tap.sent.map((s) => s.payload).filter((b) =>
      b[5] === FRAME_TYPES.data
    );
    const encrypted = data.filter((b) => b[6]! & FLAGS.encrypted).length;
    const chained = data.filter((b) => b[6]! & FLAGS.chained).length;
    const signed = data.filter((b) => b[6]! & FLAGS.signed).length;
    assert.equal(encrypted, variant.sender.encrypt ? data.length : 0);
    assert.equal(chained, variant.sender.signingKey ? data.length : 0);
    if (variant.sender.signingKey) {
      // At least one signature per 32 datagrams.
      assert.ok(signed >= Math.ceil(report.packets / 32), `signed ${signed}`);
    } else {
      assert.equal(signed, 0);
    }
    console.log(
      `  ${variant.name}: ${report.packets} packets, ${data.length} DATA datagrams ` +
        `(${encrypted} encrypted, ${chained} chained, ${signed} signed), ` +
        `${fragmented} fragmented bulletins, drops none`,
    );
  }
});

// ---- 2. under loss -------------------------------------------------------------------

Deno.test("guard: under loss, duplication and reordering a keyed, encrypted, signed session delivers everything exactly once", async () => {
  const key = groupKey();
  const signer = await signingKey();
  const bulletins = mixedBulletins(300, 21);
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const receivers = ["r1", "r2"].map((name, k) =>
    startReceiver(network, {
      name,
      keys: { key, trust: [signer.publicKey] },
      faults: { seed: 40 + k, loss: 0.1, duplicate: 0.05, reorder: 6 },
      seed: 50 + k,
    }, stop.signal)
  );
  const sender = startSender(
    network,
    source(bulletins),
    { key, encrypt: true, signingKey: signer },
    { expect: 2, signal: stop.signal },
  );
  try {
    const report = await bounded(12_000, sender.done, () => stop.abort());
    assert.equal(report.delivered, true, JSON.stringify(report.receivers));
    assert.equal(report.reason, "complete");
    assert.ok(report.retransmitted > 0, "repairs");
    // Everything the shims let through reaches the guards: each duplicate
    // a shim made is a replay of a datagram the guard already let through.
    await until(
      () =>
        receivers.every((r) => {
          const c = r.faulty!.counters;
          return r.shim!.received.length === c.passed + c.duplicated &&
            r.dropped.replay >= c.duplicated;
        }),
      3_000,
      () =>
        receivers.map((r) =>
          `${r.name}: ${JSON.stringify(r.faulty!.counters)} out ${
            r.shim!.received.length
          }, ${drops(r.dropped)}`
        ).join("; "),
    );
    stop.abort();
    await Promise.all(receivers.map((r) => r.done));
    for (const r of receivers) {
      assertDelivered(r, bulletins);
      const c = r.faulty!.counters;
      assert.ok(c.dropped > 0 && c.duplicated > 0 && c.reordered > 0);
      assert.deepEqual(
        r.dropped,
        only({ replay: c.duplicated }),
        `${r.name}: ${drops(r.dropped)}`,
      );
      assert.equal(r.stats!.unrecoverable, 0);
      assert.equal(r.stats!.failed, 0);
      console.log(
        `  ${r.name}: lost ${c.dropped}, duplicated ${c.duplicated}, reordered ${c.reordered}; ` +
          `repaired ${r.stats!.repaired}, nacks ${r.stats!.nacks}; drops ${
            drops(r.dropped)
          }`,
      );
    }
    console.log(
      `  sender: ${report.packets} packets, retransmitted ${report.retransmitted}, ` +
        `${report.elapsedMs} ms`,
    );
  } finally {
    stop.abort();
    await Promise.allSettled([sender.done, ...receivers.map((r) => r.done)]);
    network.close();
  }
});

// ---- 3. without the key ----------------------------------------------------------------

Deno.test("guard: a receiver without the key, or with another key, delivers nothing (dropped as tag / auth)", async () => {
  const key = groupKey();
  const bulletins = mixedBulletins(50, 3);
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const good = startReceiver(network, {
    name: "good",
    keys: { key },
    count: 50,
  }, stop.signal);
  const unkeyed = startReceiver(network, { name: "unkeyed" }, stop.signal);
  const other = startReceiver(network, {
    name: "other",
    keys: { key: groupKey() },
  }, stop.signal);
  const sender = startSender(network, source(bulletins), { key }, {
    expect: 1,
    lingerMs: 100,
    signal: stop.signal,
  });
  try {
    const report = await bounded(10_000, sender.done, () => stop.abort());
    assert.equal(report.delivered, true);
    await until(() => sender.endpoint.closed, 2_000, () => "sender closed");
    const sent = sender.tap.sent.length;
    await until(
      () => unkeyed.dropped.tag >= sent && other.dropped.auth >= sent,
      3_000,
      () => `sent ${sent}; ${drops(unkeyed.dropped)}; ${drops(other.dropped)}`,
    );
    stop.abort();
    await Promise.all([good.done, unkeyed.done, other.done]);
    assertDelivered(good, bulletins);
    // Every datagram of the session reached both, and every one was dropped.
    assert.equal(unkeyed.tap.received.length, sent);
    assert.equal(other.tap.received.length, sent);
    assert.deepEqual(unkeyed.dropped, only({ tag: sent }));
    assert.deepEqual(other.dropped, only({ auth: sent }));
    for (const r of [unkeyed, other]) {
      assert.deepEqual(r.numbers, [], r.name);
      assert.deepEqual(
        r.events.filter((e) => e.type !== "stopped"),
        [],
        r.name,
      );
      // Not even a HELLO: the sender never hears of them.
      assert.deepEqual(r.tap.sent, [], `${r.name} sent feedback`);
    }
    assert.deepEqual(report.receivers.map((r) => r.name), ["good"]);
    console.log(
      `  ${sent} datagrams: unkeyed ${drops(unkeyed.dropped)}; other key ${
        drops(other.dropped)
      }; good receiver delivered ${good.numbers.length}`,
    );
  } finally {
    stop.abort();
    await Promise.allSettled([
      sender.done,
      good.done,
      unkeyed.done,
      other.done,
    ]);
    network.close();
  }
});

// ---- 4. tampering ----------------------------------------------------------------------

Deno.test("guard: every single-bit flip of a sealed DATA frame, and a frame without a trailer, is dropped and never acknowledged", async () => {
  const key = groupKey();
  const signer = await signingKey();
  const session = "7a3c00ff12345678";
  const payload = encoder.encode("a bulletin the attacker would like to edit");
  // Sealed with everything: encrypted, chained and signed (a repair is
  // signed at once), so that every trailer field is flipped too.
  const [genuine] = await seal(
    { key, encrypt: true, signingKey: signer },
    [dataFrame(session, 1, payload, { retransmit: true })],
  );
  assert.ok(genuine);
  assert.equal(
    genuine[6]! & (FLAGS.encrypted | FLAGS.chained | FLAGS.signed),
    FLAGS.encrypted | FLAGS.chained | FLAGS.signed,
  );
  assert.equal(genuine[7], 16 + 32 + 64 + 8 + 16);
  const network = new MemoryNetwork();
  const stop = new AbortController();
  let delivered = (): void => {};
  const firstBulletin = new Promise<void>((resolve) => delivered = resolve);
  const receiver = startReceiver(network, {
    name: "desk-1",
    keys: { key, trust: [signer.publicKey] },
    onEvent(event) {
      if (event.type === "bulletin") delivered();
    },
  }, stop.signal);
  const attacker = attackerOn(network);
  try {
    let flips = 0;
    for (let at = 0; at < genuine.length; at++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = genuine.slice();
        copy[at]! ^= 1 << bit;
        await attacker.send(copy, TO_GROUP);
        flips += 1;
      }
    }
    // The same frame without a trailer (tag length 0): valid for the codec.
    await attacker.send(dataFrame(session, 1, payload), TO_GROUP);
    // The genuine frame, last.
    await attacker.send(genuine, TO_GROUP);
    await bounded(5_000, firstBulletin, () => stop.abort());
    // Magic flipped: no longer a frame (plain). Version flipped: the codec's
    // reason (version). Anything else: the MAC fails (auth). (The guard
    // checks several datagrams at once, and a signed frame may come out
    // before earlier ones are counted: wait for the counts.)
    const magic = 4 * 8;
    const version = 8;
    const afterTamper = only({
      plain: magic,
      version,
      auth: flips - magic - version + 1,
    });
    await until(
      () =>
        Object.values(receiver.dropped).reduce((a, b) => a + b, 0) >=
          flips + 1,
      3_000,
      () => drops(receiver.dropped),
    );
    assert.deepEqual(receiver.dropped, afterTamper, drops(receiver.dropped));
    assert.deepEqual(receiver.numbers, [1]);
    assert.deepEqual(receiver.payloads, [payload]);
    // Nothing answered any tampered frame: the first frame it sent (sealing
    // keeps the order) is the HELLO for the genuine one, and the only one.
    await until(
      () => receiver.tap.sent.length > 0,
      2_000,
      () => "HELLO on the wire",
    );
    assert.deepEqual(receiver.tap.sent.map((s) => typeOf(s.payload)), [
      "hello",
    ]);
    // Within the session now: unsealed DATA and HEARTBEAT that would make
    // it deliver bulletin 2 or ask for repairs are dropped too; a sealed
    // HEARTBEAT after them is answered with an ACK.
    await attacker.send(
      dataFrame(session, 2, encoder.encode("forged")),
      TO_GROUP,
    );
    await attacker.send(heartbeat(session, 5), TO_GROUP);
    const [marker] = await seal({ key }, [heartbeat(session, 1)]);
    await attacker.send(marker!, TO_GROUP);
    await until(
      () => receiver.tap.sent.some((s) => typeOf(s.payload) === "ack"),
      3_000,
      () => `sent ${receiver.tap.sent.map((s) => typeOf(s.payload))}`,
    );
    assert.deepEqual(
      receiver.dropped,
      { ...afterTamper, auth: afterTamper.auth + 2 },
      drops(receiver.dropped),
    );
    assert.deepEqual(receiver.numbers, [1]);
    assert.deepEqual(receiver.tap.sent.map((s) => typeOf(s.payload)), [
      "hello",
      "ack",
    ]);
    stop.abort();
    await receiver.done;
    assert.equal(receiver.stats!.nacks, 0);
    console.log(
      `  ${flips} single-bit flips of a ${genuine.length}-byte frame + 3 unsealed frames: ` +
        `${drops(receiver.dropped)}; delivered only the genuine frame`,
    );
  } finally {
    stop.abort();
    await receiver.done.catch(() => {});
    network.close();
  }
});

// ---- 5. forged acknowledgements ---------------------------------------------------------

Deno.test("guard: forged ACKs without the key never mark a receiver as served", async () => {
  const key = groupKey();
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const sender = startSender(
    network,
    source(wholeBulletins(1, 5)),
    { key },
    { receivers: ["desk-1"], deadlineMs: 600, signal: stop.signal },
  );
  const attacker = attackerOn(network);
  const wrongKey = new GuardedEndpoint(attackerOn(network), {
    key: groupKey(),
    dropped: emptyDrops(),
  });
  try {
    await until(
      () => sender.events.some((e) => e.type === "session"),
      2_000,
      () => "session event",
    );
    const session = sender.session();
    const to = sender.endpoint.local;
    // "desk-1 has everything": cumulative ACKs far past anything sent.
    const forged: Frame[] = [];
    for (let k = 0; k < 5; k++) {
      forged.push({
        type: "ack",
        session,
        seq: 1_000 + k,
        name: "desk-1",
        ranges: [],
      });
    }
    for (const frame of forged) await attacker.send(encodeFrame(frame), to);
    for (const frame of forged) await wrongKey.send(encodeFrame(frame), to);
    const report = await bounded(5_000, sender.done, () => stop.abort());
    assert.equal(sender.tap.received.length, 10);
    assert.deepEqual(report.dropped, only({ auth: 10 }), drops(report.dropped));
    assert.equal(report.delivered, false);
    assert.equal(report.reason, "roster");
    assert.equal(report.feedback, 0);
    assert.equal(report.acks, 0);
    assert.equal(report.bulletins, 0);
    assert.deepEqual(
      report.receivers.map((r) => [r.name, r.status, r.acked]),
      [["desk-1", "silent", 0]],
    );
    assert.ok(!sender.events.some((e) => e.type === "receiver"));
    console.log(
      `  5 unsealed + 5 wrong-key ACKs for desk-1: ${
        drops(report.dropped)
      }; report ${report.reason}, desk-1 ${report.receivers[0]!.status}`,
    );
  } finally {
    stop.abort();
    wrongKey.close();
    await sender.done.catch(() => {});
    network.close();
  }
});

Deno.test("guard: control: with the group key, a fake desk-1 is believed (the key is the trust boundary)", async () => {
  // The forged ACKs above fail for want of the key, not for being forged:
  // an insider holding the key can answer for desk-1.
  const key = groupKey();
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const insiderEndpoint = network.open({ address: GROUP, port: PORT });
  insiderEndpoint.join(GROUP);
  const insider = new GuardedEndpoint(insiderEndpoint, {
    key,
    dropped: emptyDrops(),
  });
  let answered = 0;
  const answering = (async () => {
    for (;;) {
      const datagram = await insider.receive();
      if (datagram === null) return;
      const decoded = decodeFrame(datagram.payload);
      if (decoded.kind !== "frame" || decoded.frame.type !== "heartbeat") {
        continue;
      }
      answered += 1;
      await insider.send(
        encodeFrame({
          type: "ack",
          session: decoded.frame.session,
          seq: decoded.frame.seq,
          name: "desk-1",
          ranges: [],
        }),
        datagram.from,
      );
    }
  })();
  const sender = startSender(
    network,
    source(wholeBulletins(1, 5)),
    { key },
    { receivers: ["desk-1"], deadlineMs: 3_000, signal: stop.signal },
  );
  try {
    const report = await bounded(5_000, sender.done, () => stop.abort());
    assert.equal(report.delivered, true);
    assert.deepEqual(
      report.receivers.map((r) => [r.name, r.status, r.acked]),
      [["desk-1", "complete", 5]],
    );
    assert.deepEqual(report.dropped, emptyDrops());
    console.log(`  insider answered ${answered} heartbeats as desk-1`);
  } finally {
    stop.abort();
    await sender.done.catch(() => {});
    insider.close();
    await answering;
    network.close();
  }
});

// ---- 6. replays ---------------------------------------------------------------------------

Deno.test("guard: frames replayed within a session are dropped as replay (DATA/HEARTBEAT at receivers, ACK/HELLO/BYE at the sender)", async () => {
  const key = groupKey();
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const wire = listen(network);
  const keys: Keys = { key };
  const r1 = startReceiver(network, { name: "r1", keys, seed: 5 }, stop.signal);
  const r2 = startReceiver(network, {
    name: "r2",
    keys,
    count: 10,
    seed: 6,
  }, stop.signal);
  const more = gate();
  const sender = startSender(
    network,
    gated([wholeBulletins(1, 10), []], [more]),
    { key, encrypt: true },
    { receivers: ["r1", "r2"], signal: stop.signal },
  );
  const attacker = attackerOn(network);
  try {
    // r2 has everything and left (its BYEs are in); r1 stays.
    await bounded(5_000, r2.done, () => stop.abort());
    await until(
      () => r1.numbers.length === 10,
      5_000,
      () => `r1 has ${r1.numbers.length}`,
    );
    // Replays to the receivers: every DATA and HEARTBEAT of the session
    // so far, as captured on the group.
    const toReceivers = wire.captured.slice();
    const types = countTypes(toReceivers);
    assert.ok(
      types.data! >= 10 && types.heartbeat! >= 1,
      JSON.stringify(types),
    );
    // Replays to the sender: everything both receivers sent, once it got
    // there.
    const feedback = [...r1.tap.sent, ...r2.tap.sent].map((s) => s.payload);
    await until(
      () => sender.tap.received.length >= feedback.length,
      3_000,
      () => `sender got ${sender.tap.received.length} of ${feedback.length}`,
    );
    const feedbackTypes = countTypes(feedback);
    assert.ok(
      feedbackTypes.hello === 2 && feedbackTypes.ack! >= 2 &&
        feedbackTypes.bye === 3,
      JSON.stringify(feedbackTypes),
    );
    const r2Drops = { ...r2.dropped };
    for (const bytes of toReceivers) await attacker.send(bytes, TO_GROUP);
    for (const bytes of feedback) {
      await attacker.send(bytes, sender.endpoint.local);
    }
    await until(
      () =>
        r1.dropped.replay >= toReceivers.length &&
        sender.dropped.replay >= feedback.length,
      3_000,
      () => `r1 ${drops(r1.dropped)}; sender ${drops(sender.dropped)}`,
    );
    more.open();
    const report = await bounded(5_000, sender.done, () => stop.abort());
    stop.abort();
    await r1.done;
    assert.equal(report.delivered, true, JSON.stringify(report.receivers));
    assert.deepEqual(r1.dropped, only({ replay: toReceivers.length }));
    assert.deepEqual(
      report.dropped,
      only({ replay: feedback.length }),
      drops(report.dropped),
    );
    // Not delivered twice; the replays never reached the state machine.
    assert.deepEqual(r1.numbers, range(1, 10));
    assert.equal(r1.stats!.duplicates, 0);
    // r2 had left: its counters did not move (its socket was closed).
    assert.deepEqual(r2.dropped, r2Drops);
    console.log(
      `  to r1: ${toReceivers.length} replays (${JSON.stringify(types)}) → ${
        drops(r1.dropped)
      }; to the sender: ${feedback.length} replays (${
        JSON.stringify(feedbackTypes)
      }) → ${drops(report.dropped)}`,
    );
  } finally {
    more.open();
    stop.abort();
    await Promise.allSettled([sender.done, r1.done, r2.done]);
    network.close();
    await wire.done;
  }
});

Deno.test("guard: frames older or newer than the clock-skew bound are dropped as stale", async () => {
  const key = groupKey();
  const skewUs = DEFAULT_MAX_SKEW_MS * 1000;
  // A real session's frames, as captured on the group.
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const wire = listen(network);
  const r1 = startReceiver(network, {
    name: "r1",
    keys: { key },
    count: 10,
  }, stop.signal);
  const sender = startSender(
    network,
    source(wholeBulletins(1, 10)),
    { key, encrypt: true },
    { expect: 1, signal: stop.signal },
  );
  let offset = 0;
  const dropped = emptyDrops();
  const victimEndpoint = network.open({ address: "127.0.0.2", port: PORT });
  const victim = new GuardedEndpoint(victimEndpoint, {
    key,
    dropped,
    nowMicros: () => nowMicros() + offset,
  });
  const attacker = attackerOn(network);
  try {
    const report = await bounded(10_000, sender.done, () => stop.abort());
    assert.equal(report.delivered, true);
    await r1.done;
    const frames = wire.captured.slice();
    assert.ok(frames.length >= 11, `${frames.length} frames`);
    const session = sender.session();
    // Control: a receiver that never saw them (just started) lets them
    // through while they are fresh.
    for (const bytes of frames) await attacker.send(bytes, victim.local);
    for (let k = 0; k < frames.length; k++) {
      const opened = await bounded(2_000, victim.receive(), () => {});
      assert.ok(opened !== null);
    }
    assert.deepEqual(dropped, emptyDrops());
    // Its clock moves past the skew bound: the same frames are stale. A
    // marker sealed at the new time shows they were all checked.
    offset = skewUs + 1_000;
    for (const bytes of frames) await attacker.send(bytes, victim.local);
    const [late] = await seal(
      { key, nowMicros: () => nowMicros() + offset },
      [heartbeat(session, 10)],
    );
    await attacker.send(late!, victim.local);
    const marker = await bounded(2_000, victim.receive(), () => {});
    assert.deepEqual(
      marker?.payload.subarray(0, 24),
      heartbeat(session, 10).subarray(0, 24),
    );
    assert.deepEqual(dropped, only({ stale: frames.length }));
    // Frames stamped beyond the bound either way, at the right clock; one
    // just inside it passes.
    offset = 0;
    const future = await seal(
      { key, nowMicros: () => nowMicros() + skewUs + 1_000_000 },
      [heartbeat(session, 11)],
    );
    const past = await seal(
      { key, nowMicros: () => nowMicros() - skewUs - 1_000_000 },
      [heartbeat(session, 12)],
    );
    const inside = await seal(
      { key, nowMicros: () => nowMicros() + skewUs - 1_000_000 },
      [heartbeat(session, 13)],
    );
    for (const bytes of [...future, ...past, ...inside]) {
      await attacker.send(bytes, victim.local);
    }
    const passed = await bounded(2_000, victim.receive(), () => {});
    assert.equal(passed && u64(passed.payload, 16), 13);
    assert.deepEqual(dropped, only({ stale: frames.length + 2 }));
    console.log(
      `  ${frames.length} captured frames: accepted fresh by a new receiver, ` +
        `stale ${frames.length} once its clock moved ${
          skewUs / 1e6 + 0.001
        } s; ` +
        `±${skewUs / 1e6 + 1} s stamps: stale 2; +${
          skewUs / 1e6 - 1
        } s: accepted`,
    );
  } finally {
    stop.abort();
    await Promise.allSettled([sender.done, r1.done]);
    victim.close();
    network.close();
    await wire.done;
  }
});

// ---- 7. encryption ------------------------------------------------------------------------

Deno.test("guard: with encryption no datagram carries a bulletin's plaintext", async () => {
  const key = groupKey();
  const secret = encoder.encode("ATTACK AT DAWN: the distinctive plaintext");
  const big = new Uint8Array(6000);
  for (let at = 0; at + secret.length <= big.length; at += secret.length) {
    big.set(secret, at);
  }
  const bulletins = [...mixedBulletins(40, 9), secret, big];
  const hits: Record<string, number> = {};
  for (const encrypt of [true, false]) {
    const network = new MemoryNetwork();
    const stop = new AbortController();
    const wire = listen(network);
    const receivers = ["r1", "r2"].map((name) =>
      startReceiver(network, {
        name,
        keys: { key },
        count: bulletins.length,
      }, stop.signal)
    );
    const sender = startSender(network, source(bulletins), {
      key,
      encrypt,
    }, { expect: 2, signal: stop.signal });
    try {
      const report = await bounded(10_000, sender.done, () => stop.abort());
      assert.equal(report.delivered, true);
      await Promise.all(receivers.map((r) => r.done));
      for (const r of receivers) assertDelivered(r, bulletins);
      // Everything on the wire: the group's traffic and all feedback.
      const datagrams = [
        ...wire.captured,
        ...receivers.flatMap((r) => r.tap.sent.map((s) => s.payload)),
      ];
      const data = datagrams.filter((b) => b[5] === FRAME_TYPES.data);
      assert.ok(data.length > 10);
      hits[encrypt ? "encrypted" : "plain"] = datagrams.filter((b) =>
        contains(b, secret)
      ).length;
      console.log(
        `  encrypt ${encrypt}: ${datagrams.length} datagrams searched, ` +
          `${hits[encrypt ? "encrypted" : "plain"]} contain the plaintext`,
      );
    } finally {
      stop.abort();
      await Promise.allSettled([sender.done, ...receivers.map((r) => r.done)]);
      network.close();
      await wire.done;
    }
  }
  assert.equal(hits.encrypted, 0);
  // Without encryption the search finds it: the small bulletin and the
  // fragments of the big one.
  assert.ok(hits.plain! >= 5, `plain hits ${hits.plain}`);
});

Deno.test("guard: a sequence number always encrypts to the same ciphertext, across repairs and a restart from the journal", async () => {
  const key = groupKey();
  const keys: Keys = { key, encrypt: true };
  const dir = await Deno.makeTempDir({ prefix: "mcast_guard_journal_" });
  const network = new MemoryNetwork();
  const wire = listen(network);
  const stopReceivers = new AbortController();
  const stopFirst = new AbortController();
  const stopSecond = new AbortController();
  const receivers = [
    startReceiver(network, { name: "r0", keys: { key } }, stopReceivers.signal),
    startReceiver(network, {
      name: "r1",
      keys: { key },
      faults: { seed: 77, loss: 0.1 },
      seed: 78,
    }, stopReceivers.signal),
  ];
  // r1 misses every DATA datagram after 40 while the first sender runs
  // (repairs too): the second sender repairs them from the journal.
  let firstRun = true;
  receivers[1]!.tap.drop = (bytes) =>
    firstRun && bytes[5] === FRAME_TYPES.data && u64(bytes, 16) > 40;
  let journal: Journal | undefined;
  let first: SenderRecord | undefined;
  let second: SenderRecord | undefined;
  try {
    journal = Journal.open(dir);
    first = startSender(network, source(wholeBulletins(1, 300)), keys, {
      expect: 2,
      journal,
      // Slow enough for heartbeats, NACKs and repairs before the stop.
      rate: { unit: "bulletins", perSecond: 400 },
      signal: stopFirst.signal,
    });
    // It stops mid-stream, once r0 has 60 bulletins and it has repaired
    // something (sealed frames keep the retransmit flag).
    const sender1 = first;
    await until(
      () =>
        receivers[0]!.numbers.length >= 60 &&
        sender1.tap.sent.some((s) =>
          s.payload[5] === FRAME_TYPES.data &&
          (s.payload[6]! & FLAGS.retransmit) !== 0
        ),
      5_000,
      () => `r0 has ${receivers[0]!.numbers.length}`,
    );
    stopFirst.abort();
    const firstReport = await bounded(10_000, first.done, () => {
      stopFirst.abort();
    });
    assert.equal(firstReport.reason, "signal");
    assert.ok(firstReport.bulletins < 300, `${firstReport.bulletins} sent`);
    await until(() => first!.endpoint.closed, 2_000, () => "first closed");
    firstRun = false;
    const restartAt = wire.captured.length;
    journal.close();
    journal = Journal.open(dir);
    const recovery = journal.recover();
    assert.ok(recovery !== null);
    const journaled = recovery.nextBulletin - 1;
    journal.close();
    journal = Journal.open(dir);
    const extra = wholeBulletins(journaled + 1, journaled + 40, "resumed");
    second = startSender(network, source(extra), keys, {
      expect: 2,
      journal,
      signal: stopSecond.signal,
    });
    const report = await bounded(10_000, second.done, () => {
      stopSecond.abort();
    });
    assert.equal(report.session, firstReport.session);
    assert.equal(report.delivered, true, JSON.stringify(report.receivers));
    const total = journaled + 40;
    await until(
      () => receivers.every((r) => r.numbers.length >= total),
      5_000,
      () => receivers.map((r) => r.numbers.length).join(", "),
    );
    stopReceivers.abort();
    await Promise.all(receivers.map((r) => r.done));
    const expected = [...wholeBulletins(1, journaled), ...extra];
    for (const r of receivers) assertDelivered(r, expected);
    // Every DATA datagram on the wire, grouped by (session, seq).
    const bySeq = new Map<string, { run: number; ciphertext: Uint8Array }[]>();
    let data = 0;
    wire.captured.forEach((bytes, index) => {
      if (bytes[5] !== FRAME_TYPES.data) return;
      data += 1;
      assert.ok(bytes[6]! & FLAGS.encrypted, "every DATA frame encrypted");
      const body = bytes.length - bytes[7]!;
      const id = `${hex(bytes.subarray(8, 16))}/${u64(bytes, 16)}`;
      const list = bySeq.get(id) ?? [];
      list.push({
        run: index < restartAt ? 1 : 2,
        ciphertext: bytes.slice(40, body + 16),
      });
      bySeq.set(id, list);
    });
    const packets = recovery.nextSeq - 1 + report.packets;
    assert.equal(bySeq.size, packets);
    assert.deepEqual(
      [...bySeq.keys()].sort(),
      range(1, packets).map((seq) => `${firstReport.session}/${seq}`).sort(),
    );
    let repeated = 0;
    let acrossRestart = 0;
    for (const [id, list] of bySeq) {
      for (const item of list) {
        assert.deepEqual(item.ciphertext, list[0]!.ciphertext, id);
      }
      if (list.length > 1) repeated += 1;
      if (list.some((i) => i.run === 1) && list.some((i) => i.run === 2)) {
        acrossRestart += 1;
      }
    }
    assert.ok(firstReport.retransmitted > 0, "repairs in the first run");
    assert.ok(report.retransmitted > 0, "repairs after the restart");
    assert.ok(acrossRestart >= 20, `sent by both runs: ${acrossRestart}`);
    console.log(
      `  ${data} encrypted DATA datagrams, ${bySeq.size} distinct seqs, ` +
        `${repeated} sent more than once, ${acrossRestart} by both runs ` +
        `(repairs: first run ${firstReport.retransmitted}, second ${report.retransmitted}); ` +
        `each seq: one ciphertext`,
    );
  } finally {
    stopFirst.abort();
    stopSecond.abort();
    stopReceivers.abort();
    await Promise.allSettled([
      first?.done,
      second?.done,
      ...receivers.map((r) => r.done),
    ]);
    journal?.close();
    network.close();
    await wire.done;
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- 8. source authentication -----------------------------------------------------------

Deno.test("guard: receivers that trust the signing key never deliver bulletins injected by a key holder", async () => {
  const key = groupKey();
  const signer = await signingKey();
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const trusting = ["t1", "t2"].map((name, k) =>
    startReceiver(network, {
      name,
      keys: { key, trust: [signer.publicKey] },
      count: 60,
      seed: 30 + k,
    }, stop.signal)
  );
  // Holds the key but trusts no signer: the control that shows the
  // injection works when signatures are not checked.
  const open = startReceiver(network, {
    name: "open",
    keys: { key },
    count: 60,
    seed: 33,
  }, stop.signal);
  const all = [...trusting, open];
  const gates = [gate(), gate()];
  const genuine = wholeBulletins(1, 60);
  const sender = startSender(
    network,
    gated(
      [genuine.slice(0, 20), genuine.slice(20, 40), genuine.slice(40)],
      gates,
    ),
    { key, encrypt: true, signingKey: signer },
    { expect: 3, signal: stop.signal },
  );
  // Insiders: the group key, no signing key; the second signs with a key
  // of its own, which nobody trusts.
  const insider = new GuardedEndpoint(attackerOn(network), {
    key,
    encrypt: true,
    dropped: emptyDrops(),
  });
  const ownKey = await signingKey();
  const insiderWire = new Tap(attackerOn(network));
  const signingInsider = new GuardedEndpoint(insiderWire, {
    key,
    encrypt: true,
    signingKey: ownKey,
    dropped: emptyDrops(),
  });
  const forgery = (n: number) => bulletin(n, 1000, "FORGED");
  try {
    const have = (count: number) => () =>
      all.every((r) => r.numbers.length >= count);
    await until(have(20), 5_000, () => "20 bulletins");
    const session = sender.session();
    // Sequences 21-25, before the sender sends them: plain HMAC-valid DATA.
    for (let seq = 21; seq <= 25; seq++) {
      await insider.send(dataFrame(session, seq, forgery(seq)), TO_GROUP);
    }
    await until(
      () =>
        open.numbers.length >= 25 &&
        trusting.every((r) => r.dropped.forged >= 5),
      5_000,
      () =>
        `open ${open.numbers.length}; ${trusting.map((r) => drops(r.dropped))}`,
    );
    gates[0]!.open();
    await until(have(40), 5_000, () => "40 bulletins");
    // Sequences 41-45, chained and signed with the insider's own key: the
    // last once it pauses (a copy of 45), others too if it paused between
    // them.
    for (let seq = 41; seq <= 45; seq++) {
      await signingInsider.send(
        dataFrame(session, seq, forgery(seq)),
        TO_GROUP,
      );
    }
    await until(
      () => signedBy(insiderWire).includes(45),
      2_000,
      () => "the insider's signature",
    );
    const signed = signedBy(insiderWire).length;
    await until(
      () =>
        open.numbers.length >= 45 &&
        trusting.every((r) => r.dropped.forged >= 5 + signed),
      5_000,
      () =>
        `open ${open.numbers.length}; ${trusting.map((r) => drops(r.dropped))}`,
    );
    gates[1]!.open();
    const report = await bounded(10_000, sender.done, () => stop.abort());
    await bounded(5_000, Promise.all(all.map((r) => r.done)), () => {
      stop.abort();
    });
    assert.equal(report.delivered, true, JSON.stringify(report.receivers));
    for (const r of trusting) {
      // Exactly the genuine bulletins. Forged: 5 unchained frames, and
      // those the insider signed; its unsigned ones were held, then
      // replaced by the genuine frames.
      assertDelivered(r, genuine);
      assert.deepEqual(
        r.dropped,
        only({ forged: 5 + signed }),
        drops(r.dropped),
      );
    }
    // The control delivered the forgeries in place of 21-25 and 41-45.
    const forged = new Set([...range(21, 25), ...range(41, 45)]);
    assert.deepEqual(open.numbers, range(1, 60));
    open.payloads.forEach((payload, k) => {
      const n = k + 1;
      assert.deepEqual(
        payload,
        forged.has(n) ? forgery(n) : genuine[k],
        `${n}`,
      );
    });
    assert.deepEqual(open.dropped, emptyDrops());
    console.log(
      `  insiders sent 5 unchained + 5 chained DATA (${signed} copies signed by their own key); ` +
        `trusting receivers: ${
          trusting.map((r) => drops(r.dropped)).join("; ")
        }, ` +
        `delivered 60 genuine; untrusting control delivered ${forged.size} forgeries`,
    );
  } finally {
    for (const g of gates) g.open();
    stop.abort();
    insider.close();
    signingInsider.close();
    await Promise.allSettled([sender.done, ...all.map((r) => r.done)]);
    network.close();
  }
});

Deno.test("guard: with trust configured an unsigned stream is never delivered", async () => {
  const key = groupKey();
  const signer = await signingKey();
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const receiver = startReceiver(network, {
    name: "t1",
    keys: { key, trust: [signer.publicKey] },
    count: 5,
  }, stop.signal);
  const sender = startSender(network, source(wholeBulletins(1, 5)), { key }, {
    expect: 1,
    deadlineMs: 400,
    signal: stop.signal,
  });
  try {
    const report = await bounded(5_000, sender.done, () => stop.abort());
    await until(() => sender.endpoint.closed, 2_000, () => "sender closed");
    const data = sender.tap.sent.filter((s) => typeOf(s.payload) === "data")
      .length;
    await until(
      () => receiver.dropped.forged >= data,
      3_000,
      () => `${data} DATA sent; ${drops(receiver.dropped)}`,
    );
    stop.abort();
    await receiver.done;
    assert.equal(report.delivered, false);
    assert.equal(report.reason, "deadline");
    assert.deepEqual(
      report.receivers.map((r) => [r.name, r.status, r.acked]),
      [["t1", "incomplete", 0]],
    );
    assert.ok(report.retransmitted > 0, "the receiver asked again");
    assert.deepEqual(receiver.numbers, []);
    assert.deepEqual(receiver.dropped, only({ forged: data }));
    console.log(
      `  ${data} unsigned DATA datagrams (${report.packets} + ${report.retransmitted} repairs): ${
        drops(receiver.dropped)
      }; delivered 0`,
    );
  } finally {
    stop.abort();
    await Promise.allSettled([sender.done, receiver.done]);
    network.close();
  }
});

// ---- 9. plain datagrams --------------------------------------------------------------------

Deno.test("guard: a keyed receiver ignores plain datagrams unless allowPlain, then answers them as the exercise does", async () => {
  const key = groupKey();
  const message = encoder.encode("very important data");
  const ack = encoder.encode("ack");
  const session = "0123456789abcdef";
  for (const allowPlain of [false, true]) {
    const network = new MemoryNetwork();
    const stop = new AbortController();
    const events: string[] = [];
    const receiver = startReceiver(network, {
      name: "desk-1",
      keys: { key, allowPlain },
      ack,
      count: allowPlain ? 3 : undefined,
      onEvent: (event) => events.push(event.type),
    }, stop.signal);
    const client = network.open({ address: "127.0.0.1" });
    try {
      if (!allowPlain) {
        for (let k = 0; k < 3; k++) await client.send(message, TO_GROUP);
        // A sealed HEARTBEAT after them: the receiver's HELLO is the first
        // thing the client gets back, so no acknowledgement went out.
        const [marker] = await seal({ key }, [heartbeat(session, 0)]);
        await client.send(marker!, TO_GROUP);
        const reply = await bounded(3_000, client.receive(), () => {});
        assert.ok(reply !== null);
        assert.equal(typeOf(reply.payload), "hello");
        assert.deepEqual(receiver.dropped, only({ plain: 3 }));
        assert.deepEqual(receiver.tap.sent.map((s) => typeOf(s.payload)), [
          "hello",
        ]);
        stop.abort();
        await receiver.done;
        assert.ok(!events.includes("message") && !events.includes("ack-sent"));
        console.log(`  without allowPlain: ${drops(receiver.dropped)}, no ack`);
        continue;
      }
      // A keyed receiver that allows plain datagrams speaks both: a sealed
      // HEARTBEAT first (its HELLO comes back sealed), then the exercise.
      const [hb] = await seal({ key }, [heartbeat(session, 0)]);
      await client.send(hb!, TO_GROUP);
      const hello = await bounded(3_000, client.receive(), () => {});
      assert.ok(hello !== null && typeOf(hello.payload) === "hello");
      for (let k = 0; k < 3; k++) await client.send(message, TO_GROUP);
      const received = await bounded(3_000, receiver.done, () => stop.abort());
      assert.equal(received, 3);
      const acks: Datagram[] = [];
      for (let k = 0; k < 3; k++) {
        const reply = await bounded(3_000, client.receive(), () => {});
        assert.ok(reply !== null);
        acks.push(reply);
      }
      // The exercise's answer: the bare text, unsealed, from the group's port.
      for (const reply of acks) {
        assert.deepEqual(reply.payload, ack);
        assert.deepEqual(reply.from, receiver.endpoint.local);
      }
      assert.deepEqual(events, [
        "waiting",
        "session",
        "message",
        "ack-sent",
        "waiting",
        "message",
        "ack-sent",
        "waiting",
        "message",
        "ack-sent",
        "stopped",
      ]);
      const messages = receiver.events.filter((e) => e.type === "message");
      for (const event of messages) {
        assert.ok(event.type === "message");
        assert.deepEqual(event.payload, message);
        assert.deepEqual(event.from, client.local);
      }
      assert.deepEqual(receiver.dropped, emptyDrops());
      console.log(`  with allowPlain: 3 messages, 3 plain "ack" replies`);
    } finally {
      stop.abort();
      await receiver.done.catch(() => {});
      network.close();
    }
  }
});

// ---- 10. a gap survives other sessions' DATA -----------------------------------------------

/**
 * A signed session, 1-32 then (after `gate`) 33-40, to one trusting
 * receiver whose link loses DATA 20 and its repairs until the receiver has
 * 21-32; then, if `inject`, one chained DATA frame of another session (from
 * a key holder signing with its own key) reaches the receiver before the
 * repairs get through.
 */
async function gapAcrossSessions(inject: boolean) {
  const key = groupKey();
  const signer = await signingKey();
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const receiver = startReceiver(network, {
    name: "t1",
    keys: { key, trust: [signer.publicKey] },
    count: 40,
    seed: 90,
  }, stop.signal);
  let lossy = true;
  receiver.tap.drop = (bytes) =>
    lossy && bytes[5] === FRAME_TYPES.data && u64(bytes, 16) === 20;
  const more = gate();
  const genuine = wholeBulletins(1, 40);
  const sender = startSender(
    network,
    gated([genuine.slice(0, 32), genuine.slice(32)], [more]),
    { key, signingKey: signer },
    { expect: 1, deadlineMs: 1_500, signal: stop.signal },
  );
  let insider: GuardedEndpoint | undefined;
  try {
    // The receiver has 21-32 (let through by the signature on 32, which
    // also told its guard the chain hash 20 must have), and not 20.
    await until(
      () =>
        receiver.tap.sent.some((s) => {
          // The codec reads a feedback frame without its trailer.
          const bytes = s.payload.slice(0, s.payload.length - s.payload[7]!);
          bytes[7] = 0;
          const decoded = decodeFrame(bytes);
          return decoded.kind === "frame" && decoded.frame.type === "ack" &&
            decoded.frame.seq < 20 &&
            decoded.frame.ranges.some((r) => r.first === 21 && r.last === 32);
        }),
      5_000,
      () => `numbers ${receiver.numbers}`,
    );
    if (inject) {
      insider = new GuardedEndpoint(attackerOn(network), {
        key,
        signingKey: await signingKey(),
        dropped: emptyDrops(),
      });
      await insider.send(
        dataFrame("00000000000000aa", 1, encoder.encode("other session")),
        TO_GROUP,
      );
      // Its signed copy (the insider's own key) is counted once checked.
      await until(
        () => receiver.dropped.forged >= 1,
        2_000,
        () => drops(receiver.dropped),
      );
    }
    lossy = false;
    more.open();
    const report = await bounded(10_000, sender.done, () => stop.abort());
    stop.abort();
    await receiver.done;
    return { report, receiver, genuine };
  } finally {
    more.open();
    stop.abort();
    insider?.close();
    await Promise.allSettled([sender.done, receiver.done]);
    network.close();
  }
}

Deno.test("guard: control: a trusting receiver repairs a lost datagram of a signed session", async () => {
  const { report, receiver, genuine } = await gapAcrossSessions(false);
  assert.equal(report.delivered, true, JSON.stringify(report.receivers));
  assertDelivered(receiver, genuine);
  assert.deepEqual(receiver.dropped, emptyDrops());
});

// KNOWN LIB BUG (left failing on purpose, see the report): GuardedEndpoint's
// #attest keeps the signature state (#held, #expect, #passed) of one session
// only and clears it whenever a chained DATA frame of another session
// arrives. The chain hash it expected for the lost sequence 20 (#expect) and
// the hashes of 21-32 (#passed) are forgotten; the repairs of 20 are
// unsigned and nothing signed will ever cover them again (21-32 are not
// sent again), so the receiver never gets past 19. One datagram from any
// key holder (or a second signed session on the group) stalls it for good.
Deno.test("guard: a trusting receiver still repairs a gap after a DATA frame of another session arrives", async () => {
  const { report, receiver, genuine } = await gapAcrossSessions(true);
  assert.equal(
    receiver.numbers.length,
    40,
    `delivered ${receiver.numbers.length} of 40; ${drops(receiver.dropped)}; ` +
      `sender ${report.reason}, retransmitted ${report.retransmitted}`,
  );
  assertDelivered(receiver, genuine);
  assert.equal(report.delivered, true, JSON.stringify(report.receivers));
  assert.deepEqual(receiver.dropped, only({ forged: 1 }));
});

// ---- 11. farewells ----------------------------------------------------------------------------

/**
 * A keyed receiver on a link whose sends complete a macrotask later (as a
 * socket's do) joins a session on a sealed HEARTBEAT; once its HELLO is on
 * the wire it is stopped by its signal: while nothing arrives, or
 * (`arrival`) as a second HEARTBEAT arrives (the signal aborts as the
 * endpoint hands it over). When `receiveBulletins` returns, its last ACK and
 * BYE must be on the wire: the CLI exits right after (`Deno.exit`).
 */
async function farewell(arrival: boolean) {
  const key = groupKey();
  const session = "00000000000000fa";
  const network = new MemoryNetwork();
  const stopReceiver = new AbortController();
  const receiver = startReceiver(network, {
    name: "desk-1",
    keys: { key },
    raw: true,
    abortOnReceive: stopReceiver,
  }, stopReceiver.signal);
  receiver.tap.slow = true;
  const sender = attackerOn(network);
  try {
    const heartbeats = await seal({ key }, [
      heartbeat(session, 0),
      heartbeat(session, 0),
    ]);
    await sender.send(heartbeats[0]!, TO_GROUP);
    await until(
      () => receiver.tap.sent.length === 1,
      2_000,
      () => "HELLO on the wire",
    );
    if (arrival) {
      receiver.trigger!.armed = true;
      await sender.send(heartbeats[1]!, TO_GROUP);
    } else {
      stopReceiver.abort();
    }
    await bounded(5_000, receiver.done, () => stopReceiver.abort());
    return receiver.tap.sent.map((s) => typeOf(s.payload));
  } finally {
    stopReceiver.abort();
    await receiver.done.catch(() => {});
    // Let frames still on their way leave before the test ends.
    await until(
      () => receiver.tap.sent.some((s) => typeOf(s.payload) === "bye"),
      1_000,
      () => "BYE",
    ).catch(() => {});
    network.close();
  }
}

Deno.test("guard: control: a keyed receiver stopped by its signal while nothing arrives has sent its last ACK and BYE when it returns", async () => {
  const sent = await farewell(false);
  assert.deepEqual(sent.slice(-2), ["ack", "bye"], sent.join(" "));
});

// KNOWN LIB BUG (left failing on purpose, see the report):
// ReliableReceiver.close() (lib/reliable/receiver.ts:262-263) returns at
// once when called a second time, without waiting for the farewells the
// first call started. receiveBulletins (lib/receiver.ts) calls it from
// stop() when the signal fires during a receive, and again in its finally
// block. When a datagram arrives between the signal and the moment the
// farewells have left (any heartbeat of a live session, while the guard
// seals them), the loop exits, the second close() returns, the endpoint is
// closed and receiveBulletins returns before the ACK and BYE are on the
// wire; the CLI then exits (Deno.exit) and they are lost. Keys widen the
// window (sealing is asynchronous); the race does not depend on them.
Deno.test("guard: a keyed receiver stopped by its signal as a datagram arrives has sent its last ACK and BYE when it returns", async () => {
  const sent = await farewell(true);
  assert.deepEqual(sent.slice(-2), ["ack", "bye"], sent.join(" "));
});
