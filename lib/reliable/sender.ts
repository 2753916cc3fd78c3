/**
 * The sending side of the reliable protocol (`mcast-send --reliable`):
 * numbers datagrams, packs small bulletins and fragments large ones, keeps a
 * bounded retransmission buffer, repairs on NACK within its own rate budget,
 * heartbeats so that receivers see tail loss, learns its roster from HELLOs
 * and ACKs, holds the stream within a window of the slowest receiver, and
 * reports who has what.
 *
 * @module
 */

import type { Group, Peer } from "../net/address.ts";
import { UsageError } from "../errors.ts";
import type { ReliableSenderEvent } from "../events.ts";
import {
  asRetransmission,
  DATA_FIXED_SIZE,
  type DataRecord,
  decodeFrame,
  DIGEST_SIZE,
  encodeFragment,
  encodeFrame,
  type Frame,
  HEADER_SIZE,
  MAX_RANGES,
  MAX_RECORDS,
  newSessionId,
  nowMicros,
  RECORD_HEADER_SIZE,
  type SeqRange,
  stampData,
} from "../wire/frame.ts";
import type { Journal, JournalRecovery } from "./journal.ts";
import { completedBulletin, type Handover } from "./standby.ts";
import type { Rate } from "../cli/options.ts";
import { mergeRanges } from "../wire/ranges.ts";
import { TokenBucket, Yielder } from "./schedule.ts";
import { type BulletinHasher, NODE_HASHER } from "./digest.ts";
import type { DatagramEndpoint } from "../net/socket.ts";
import {
  type DropCounts,
  emptyDrops,
  type ReceiverReport,
  type SenderReport,
  type SessionPaths,
} from "./stats.ts";

/** Options of {@linkcode sendReliable}. */
export interface SendReliableOptions {
  /** The multicast group. */
  group: Group;
  /** The group's UDP port. */
  port: number;
  /** Receives every event, in order. */
  onEvent: (event: ReliableSenderEvent) => void;
  /** Stops the session early (SIGINT); the report says so. */
  signal?: AbortSignal;
  /** Wait for this many receivers before sending, and for all to finish. */
  expect?: number;
  /** Wait for these receivers by name before sending, and for all to finish. */
  receivers?: string[];
  /** Give up this long after the last bulletin was sent (or after the start, while waiting for the roster). */
  deadlineMs: number;
  /** Without a roster: how long to wait for receivers to answer at the end. */
  lingerMs?: number;
  /** Largest UDP payload per datagram (default 1400). */
  mtu?: number;
  /** Largest bulletin (default 16 MiB). */
  maxSize?: number;
  /** Retransmission buffer, in bytes (default 8 MiB). */
  bufferBytes?: number;
  /** How many datagrams the sender may run ahead of the slowest receiver (default 4096). */
  window?: number;
  /** First-transmission rate limit. */
  rate?: Rate;
  /** Repair rate budget (default 16 MiB/s). */
  repairRate?: Rate;
  /** Evict a receiver that holds the stream back for `slowMs` instead of waiting. */
  dropSlow?: boolean;
  /** How long a receiver may hold the stream back before `dropSlow` evicts it (default 1000 ms). */
  slowMs?: number;
  /** Heartbeat interval in milliseconds (default 50). */
  heartbeatMs?: number;
  /** Ignore repeat NACKs for a sequence within this many ms of its repair (default 8). */
  repairHoldoffMs?: number;
  /** Most receivers in the roster (default 10,000); more are ignored and counted. */
  maxReceivers?: number;
  /**
   * Emit a `progress` event this often, in milliseconds, from the start
   * until the report (default: never).
   */
  progressMs?: number;
  /** How fragmented bulletins are hashed (default `node:crypto`'s SHA-256). */
  hasher?: BulletinHasher;
  /** The paths the datagrams take, named in the session event and report. */
  paths?: SessionPaths;
  /** The journal: packets are written to it before they are sent. */
  journal?: Journal;
  /**
   * A hot standby's takeover ({@linkcode followSession}): continue this
   * session where the primary stopped, at once, without waiting for the
   * roster; the source's first `nextBulletin - 1` bulletins were the
   * primary's and are skipped.
   */
  takeover?: Handover;
  /** Clock for tests, in milliseconds (default `performance.now`). */
  now?: () => number;
  /**
   * Drop counters to add to (shared with a {@linkcode GuardedEndpoint}, so
   * that the report counts frames that failed authentication too).
   */
  dropped?: DropCounts;
}

interface ReceiverEntry {
  name: string;
  from?: Peer;
  acked: number;
  selective: SeqRange[];
  status: "active" | "evicted" | "left";
  nacks: number;
  /** When its acknowledgement last advanced. */
  progressAt: number;
  heard: boolean;
  /**
   * Sequences it asked for that the sender no longer held (answered with
   * GONE): lost for good.
   */
  lost: SeqRange[];
}

/** Adds `seq` (or a range) to ascending, merged ranges. */
function addRange(ranges: SeqRange[], first: number, last: number): void {
  const tail = ranges.at(-1);
  if (tail && first <= tail.last + 1 && first >= tail.first) {
    tail.last = Math.max(tail.last, last);
    return;
  }
  ranges.push({ first, last });
  ranges.sort((a, b) => a.first - b.first);
  for (let k = ranges.length - 1; k > 0; k--) {
    const a = ranges[k - 1]!;
    const b = ranges[k]!;
    if (b.first <= a.last + 1) {
      a.last = Math.max(a.last, b.last);
      ranges.splice(k, 1);
    }
  }
}

const DEFAULT_MTU = 1400;
/** Smallest frame a datagram may carry before any trailer (`--mtu`'s minimum). */
const MIN_FRAME = 128;
/** Most sequence numbers one NACK queues for repair. */
const MAX_NACK_SPAN = 4096;
/** Slowest pace the loss-driven rate control falls to, in datagrams/s. */
const MIN_PACE = 500;
/** Above this pace, pacing is off. */
const MAX_PACE = 1_000_000;
const DEFAULT_REPAIR: Rate = { unit: "bytes", perSecond: 16 * 1024 * 1024 };

/**
 * Grows a Uint32Array-backed list indexed by sequence number (from 1).
 */
class SeqTable {
  #data = new Uint32Array(1024);
  get(seq: number): number {
    return this.#data[seq] ?? 0;
  }
  set(seq: number, value: number): void {
    if (seq >= this.#data.length) {
      let size = this.#data.length;
      while (seq >= size) size *= 2;
      const grown = new Uint32Array(size);
      grown.set(this.#data);
      this.#data = grown;
    }
    this.#data[seq] = value;
  }
  /** Sets every sequence from `first` to `last` (inclusive) to `value`. */
  fill(first: number, last: number, value: number): void {
    if (first > last) return;
    this.set(last, value);
    this.#data.fill(value, first, last);
  }
}

/**
 * The datagrams a sender holds for repairs, by sequence number: a ring
 * that grows by doubling, for the contiguous run the sender keeps (cheaper
 * per datagram than a `Map`, which costs a hash insert and delete each).
 */
class HeldRing {
  #slots: (Uint8Array | undefined)[] = new Array(1024);
  #mask = 1023;
  /** Lowest and highest sequence that may be held. */
  #low = 1;
  #high = 0;

  get(seq: number): Uint8Array | undefined {
    if (seq < this.#low || seq > this.#high) return undefined;
    return this.#slots[seq & this.#mask];
  }

  set(seq: number, bytes: Uint8Array): void {
    if (this.#high < this.#low) this.#low = this.#high = seq;
    if (seq < this.#low) {
      this.#fit(this.#high - seq + 1);
      this.#low = seq;
    } else if (seq > this.#high) {
      this.#fit(seq - this.#low + 1);
      this.#high = seq;
    }
    this.#slots[seq & this.#mask] = bytes;
  }

  delete(seq: number): void {
    if (seq < this.#low || seq > this.#high) return;
    this.#slots[seq & this.#mask] = undefined;
    while (this.#low <= this.#high && !this.#slots[this.#low & this.#mask]) {
      this.#low += 1;
    }
  }

  #fit(span: number): void {
    if (span <= this.#slots.length) return;
    let size = this.#slots.length;
    while (size < span) size *= 2;
    const slots: (Uint8Array | undefined)[] = new Array(size);
    for (let seq = this.#low; seq <= this.#high; seq++) {
      slots[seq & (size - 1)] = this.#slots[seq & this.#mask];
    }
    this.#slots = slots;
    this.#mask = size - 1;
  }
}

/**
 * Sends bulletins reliably to the group from `endpoint`, then waits until
 * every expected receiver acknowledged everything, the deadline passed, or
 * the signal aborted. Closes the endpoint in every case.
 *
 * @param endpoint A socket from {@linkcode openSenderSocket}.
 * @param source The bulletins, in order (a single one, or a stream).
 * @param options Group, roster, limits and the event sink.
 * @returns The delivery report (also emitted as a `report` event).
 * @throws {UsageError} When a bulletin is larger than `maxSize`.
 */
export async function sendReliable(
  endpoint: DatagramEndpoint,
  source: AsyncIterable<Uint8Array | BulletinBody>,
  options: SendReliableOptions,
): Promise<SenderReport> {
  try {
    checkMtu(endpoint, options);
  } catch (error) {
    endpoint.close();
    throw error;
  }
  const sender = new ReliableSender(endpoint, options);
  try {
    return await sender.run(source);
  } finally {
    await sender.close();
  }
}

/**
 * A bulletin read in pieces as it is sent (a large file): it is never held
 * whole in memory. The sender hashes it first, then reads it in order, a
 * piece of at most {@linkcode BODY_CHUNK} bytes at a time.
 */
export interface BulletinBody {
  /** Its size in bytes. */
  readonly size: number;
  /** Its SHA-256, from a first pass over it. */
  sha256(): Promise<Uint8Array>;
  /**
   * Fills `into` with the bytes from `offset` on (reads in order after the
   * hash; the last piece may be shorter than the buffer).
   */
  read(offset: number, into: Uint8Array): void;
}

/** How much of a {@linkcode BulletinBody} the sender reads at once. */
export const BODY_CHUNK = 1024 * 1024;

const EMPTY = new Uint8Array(0);

/** Refuses an mtu that leaves too little room once keys add their trailer. */
function checkMtu(
  endpoint: DatagramEndpoint,
  options: SendReliableOptions,
): void {
  const mtu = options.mtu ?? DEFAULT_MTU;
  const overhead = endpoint.overhead ?? 0;
  if (overhead > 0 && mtu - overhead < MIN_FRAME) {
    throw new UsageError(
      `--mtu ${mtu} is too small with keys: they add up to ${overhead} bytes to every datagram (use at least ${
        MIN_FRAME + overhead
      })`,
    );
  }
}

class ReliableSender {
  readonly #endpoint: DatagramEndpoint;
  readonly #options: SendReliableOptions;
  readonly #now: () => number;
  readonly #mtu: number;
  readonly #window: number;
  readonly #bufferBytes: number;
  readonly #heartbeatMs: number;
  readonly #destination: Peer;
  readonly #yielder = new Yielder();
  #session = "";
  #startedAt = 0;
  #nextSeq = 1;
  #sentHigh = 0;
  #nextBulletin = 1;
  /** Bulletins of the source still to skip (a standby's takeover). */
  #skip = 0;
  /**
   * While a standby takes over: the highest sequence number its receivers'
   * feedback shows to exist (datagrams the primary sent that the standby
   * did not hear); `undefined` once the takeover is settled.
   */
  #probe: number | undefined;
  /** Events held back until the takeover is settled. */
  #deferred: ReliableSenderEvent[] = [];
  /** Oldest sequence held. */
  #low = 1;
  #held = new HeldRing();
  #heldBytes = 0;
  /** Highest bulletin completed by the packets up to each sequence. */
  #complete = new SeqTable();
  /** Highest bulletin with a record in each sequence's packet. */
  #touches = new SeqTable();
  #receivers = new Map<string, ReceiverEntry>();
  #repairQueue = new Set<number>();
  /** The sequence the repair loop took off the queue and is about to send. */
  #repairing: number | undefined;
  #lastRepair = new Map<number, number>();
  #lastGone = -Infinity;
  #journalAcked = 0;
  /** Datagrams per second allowed by the loss-driven rate control. */
  #pace = Infinity;
  /** The sequence number after which a heartbeat last asked for ACKs. */
  #askedAt = 0;
  /** Datagrams between those heartbeats: a quarter of the window. */
  readonly #askEvery: number;
  #paceNext = 0;
  /** Sequences asked for again since the last tick: the loss signal. */
  #lost = 0;
  #sentInTick = 0;
  #idleTicks = 0;
  #journalMarkedAt = -Infinity;
  #repairBucket: TokenBucket;
  #rateBucket: TokenBucket | undefined;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #waiters = new Set<() => void>();
  #allSent = false;
  #reported = false;
  #stopped = false;
  #reader: Promise<void> | undefined;
  #repairer: Promise<void> | undefined;
  #sends = new Set<Promise<void>>();
  #closed = false;
  #dropped: DropCounts = emptyDrops();
  #stats = {
    bulletins: 0,
    packets: 0,
    bytes: 0,
    retransmitted: 0,
    nacks: 0,
    acks: 0,
    feedback: 0,
    gone: 0,
  };
  // The packet being filled.
  #records: DataRecord[] = [];
  #size = 0;
  #queued: { seq: number; bytes: Uint8Array; payload: number }[] = [];
  /** Payload bytes sent once, and when the first left. */
  #sentPayload = 0;
  #firstSentAt: number | undefined;
  #progressAt = 0;
  /** When the send loop last yielded to the event loop. */
  #yieldedAt = 0;
  /** Buffers of evicted datagrams, `mtu` bytes each, for the next ones. */
  #pool: ArrayBuffer[] = [];
  /** The named roster, when there is one. */
  readonly #named: ReadonlySet<string> | undefined;

  constructor(endpoint: DatagramEndpoint, options: SendReliableOptions) {
    this.#endpoint = endpoint;
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
    // The datagram's size on the wire stays within --mtu, trailer included.
    this.#mtu = (options.mtu ?? DEFAULT_MTU) - (endpoint.overhead ?? 0);
    this.#window = options.window ?? 4096;
    this.#bufferBytes = options.bufferBytes ?? 8 * 1024 * 1024;
    this.#heartbeatMs = options.heartbeatMs ?? 50;
    this.#askEvery = Math.max(16, Math.floor(this.#window / 4));
    this.#destination = { address: options.group.address, port: options.port };
    if (options.dropped) this.#dropped = options.dropped;
    const repair = options.repairRate ?? DEFAULT_REPAIR;
    this.#repairBucket = new TokenBucket({
      perSecond: repair.perSecond,
      minBurst: repair.unit === "bytes" ? this.#mtu : 1,
    });
    if (options.rate) {
      this.#rateBucket = new TokenBucket({
        perSecond: options.rate.perSecond,
        minBurst: 1,
      });
    }
    for (const name of options.receivers ?? []) this.#entry(name);
    this.#named = options.receivers?.length
      ? new Set(options.receivers)
      : undefined;
  }

  async run(
    source: AsyncIterable<Uint8Array | BulletinBody>,
  ): Promise<SenderReport> {
    const signal = this.#options.signal;
    signal?.addEventListener("abort", this.#onAbort);
    if (signal?.aborted) this.#onAbort();
    try {
      this.#start();
      this.#reader = this.#readFeedback();
      this.#repairer = this.#repairLoop();
      this.#heartbeat();
      this.#heartbeatTimer = setInterval(
        () => this.#tick(),
        this.#heartbeatMs,
      );
      const rosterDeadline = this.#startedAt + this.#options.deadlineMs;
      if (this.#options.takeover) {
        // The receivers are there already, in the session: go on once they
        // answered the first heartbeat, or a few heartbeats passed.
        await this.#settleTakeover(this.#options.takeover);
      } else if (this.#hasRoster()) {
        await this.#until(() => this.#rosterComplete(), rosterDeadline);
      } else {
        // Give receivers that are already listening a heartbeat to start on.
        const until = this.#now() + 2 * this.#heartbeatMs;
        await this.#until(() => false, until);
      }
      const ready = !this.#stopped &&
        (this.#options.takeover !== undefined || this.#rosterComplete() ||
          !this.#hasRoster());
      if (ready) {
        await this.#stream(source);
        this.#allSent = !this.#stopped;
        this.#options.onEvent({
          type: "sent",
          bulletins: this.#stats.bulletins,
          packets: this.#stats.packets,
        });
        this.#heartbeat();
      }
      const deadline = this.#now() + this.#options.deadlineMs;
      if (ready && !this.#stopped) {
        if (this.#hasRoster()) {
          await this.#until(() => this.#settled(), deadline);
        } else {
          // Without a roster: everyone heard from, after a linger for
          // receivers that have not answered yet.
          const linger = this.#now() + (this.#options.lingerMs ?? 1000);
          await this.#until(
            () => this.#now() >= linger && this.#settled(),
            Math.max(deadline, linger),
          );
        }
      }
      const report = this.#report();
      this.#reported = true;
      if (report.delivered) this.#options.journal?.finish();
      this.#heartbeat();
      this.#options.onEvent({ type: "report", report });
      return report;
    } finally {
      signal?.removeEventListener("abort", this.#onAbort);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopped = true;
    clearInterval(this.#heartbeatTimer);
    this.#notify();
    await Promise.allSettled([...this.#sends]);
    this.#endpoint.close();
    await this.#reader;
    await this.#repairer;
    this.#yielder.close();
  }

  #onAbort = (): void => {
    this.#stopped = true;
    this.#notify();
  };

  #start(): void {
    this.#startedAt = this.#now();
    this.#progressAt = this.#startedAt;
    const takeover = this.#options.takeover;
    if (takeover) {
      this.#takeOver(takeover);
      this.#probe = this.#sentHigh;
      return;
    }
    const journal = this.#options.journal;
    const recovery = journal?.recover() ?? null;
    if (recovery) {
      this.#resume(recovery);
    } else {
      this.#session = newSessionId();
      journal?.begin({
        session: this.#session,
        group: this.#options.group.address,
        port: this.#options.port,
      });
    }
    this.#options.onEvent({
      type: "session",
      session: this.#session,
      group: this.#options.group,
      port: this.#options.port,
      local: this.#endpoint.local,
      resumed: recovery !== null,
      recovered: recovery ? recovery.packets.length : 0,
      ...(this.#options.paths ? { paths: this.#options.paths } : {}),
    });
  }

  #resume(recovery: JournalRecovery): void {
    this.#session = recovery.meta.session;
    this.#nextSeq = recovery.nextSeq;
    this.#sentHigh = recovery.nextSeq - 1;
    this.#nextBulletin = recovery.nextBulletin;
    this.#low = recovery.nextSeq - recovery.packets.length;
    // Everything recovered was sent before the crash, or was about to be:
    // receivers ask for what they miss once a heartbeat tells them the
    // highest sequence.
    let through = 0;
    for (const bytes of recovery.packets) {
      const decoded = decodeFrame(bytes);
      if (decoded.kind !== "frame" || decoded.frame.type !== "data") continue;
      const frame = decoded.frame;
      this.#held.set(frame.seq, bytes);
      this.#heldBytes += this.#cost(bytes);
      through = completedBulletin(frame) || through;
      this.#touches.set(frame.seq, frame.records.at(-1)?.bulletin ?? through);
      this.#complete.set(frame.seq, through);
    }
  }

  /**
   * Continues a primary's session: its id, the next sequence and bulletin
   * numbers, and its datagrams (not necessarily without gaps) to repair
   * from.
   */
  #takeOver(handover: Handover): void {
    this.#session = handover.session;
    this.#nextSeq = handover.nextSeq;
    this.#sentHigh = handover.nextSeq - 1;
    this.#nextBulletin = handover.nextBulletin;
    this.#skip = handover.nextBulletin - 1;
    this.#low = handover.nextSeq;
    let through = 0;
    let previous = 0;
    for (const bytes of handover.packets) {
      const decoded = decodeFrame(bytes);
      if (decoded.kind !== "frame" || decoded.frame.type !== "data") continue;
      const frame = decoded.frame;
      if (frame.seq >= handover.nextSeq) continue;
      this.#low = Math.min(this.#low, frame.seq);
      this.#held.set(frame.seq, bytes);
      this.#heldBytes += this.#cost(bytes);
      // Sequences it never heard complete what the one before did.
      if (previous > 0) {
        this.#complete.fill(previous + 1, frame.seq - 1, through);
      }
      for (const record of frame.records) {
        if (record.offset + record.data.length === record.total) {
          through = Math.max(through, record.bulletin);
        }
      }
      this.#touches.set(frame.seq, frame.records.at(-1)?.bulletin ?? through);
      this.#complete.set(frame.seq, through);
      previous = frame.seq;
    }
    if (previous > 0) {
      this.#complete.fill(previous + 1, handover.nextSeq - 1, through);
    }
  }

  /**
   * A standby's first heartbeat asks the receivers where they are: their
   * ACKs and NACKs may name sequence numbers above the highest the standby
   * heard (the primary's last datagrams, lost on the way to the standby).
   * Its own datagrams start above them, so that no sequence number carries
   * two different datagrams (with `--encrypt`, a nonce two plaintexts);
   * whoever misses them is told they are gone, and the bulletins they held
   * are sent again from the standby's first one on.
   */
  async #settleTakeover(handover: Handover): Promise<void> {
    const until = this.#now() + 3 * this.#heartbeatMs;
    await this.#until(
      () => this.#hasRoster() && this.#rosterComplete(),
      until,
    );
    const high = this.#probe ?? this.#sentHigh;
    this.#probe = undefined;
    if (high > this.#sentHigh) {
      const through = this.#complete.get(this.#sentHigh);
      this.#complete.fill(this.#sentHigh + 1, high, through);
      this.#nextSeq = high + 1;
      this.#sentHigh = high;
      this.#heartbeat();
    }
    this.#options.onEvent({
      type: "takeover",
      session: this.#session,
      group: this.#options.group,
      port: this.#options.port,
      local: this.#endpoint.local,
      seq: this.#nextSeq,
      bulletin: this.#nextBulletin,
      silenceMs: handover.silenceMs,
      held: handover.packets.length,
      ...(this.#options.paths ? { paths: this.#options.paths } : {}),
    });
    for (const event of this.#deferred.splice(0)) this.#options.onEvent(event);
  }

  // ---- streaming ------------------------------------------------------

  async #stream(
    source: AsyncIterable<Uint8Array | BulletinBody>,
  ): Promise<void> {
    const iterator = source[Symbol.asyncIterator]();
    let pending: Promise<IteratorResult<Uint8Array | BulletinBody>> | undefined;
    try {
      while (!this.#stopped) {
        pending ??= iterator.next();
        let result = await this.#soon(pending);
        if (result === undefined) {
          // The source has nothing right now: send what is packed.
          await this.#flush();
          result = await pending;
        }
        pending = undefined;
        if (result.done) break;
        if (this.#skip > 0) {
          // The primary sent it: a standby that took over skips it.
          this.#skip -= 1;
          continue;
        }
        await this.#bulletin(result.value);
      }
      await this.#flush();
    } finally {
      if (this.#stopped) await iterator.return?.();
    }
  }

  /** Resolves with the promise's value if it settles within a turn, else undefined. */
  async #soon<T>(promise: Promise<T>): Promise<T | undefined> {
    let settled = false;
    let value: T | undefined;
    promise.then((v) => {
      settled = true;
      value = v;
    }, () => {
      settled = true;
    });
    for (let k = 0; k < 3 && !settled; k++) await Promise.resolve();
    if (!settled) await this.#yielder.yield();
    if (!settled) return undefined;
    return value ?? await promise;
  }

  async #bulletin(item: Uint8Array | BulletinBody): Promise<void> {
    const body = item instanceof Uint8Array ? undefined : item;
    const payload = item instanceof Uint8Array ? item : EMPTY;
    const total = body ? body.size : payload.length;
    const maxSize = this.#options.maxSize ?? 16 * 1024 * 1024;
    if (total > maxSize) {
      throw new UsageError(
        `Bulletin ${this.#nextBulletin} is too large: ${total} bytes (--max-size is ${maxSize})`,
      );
    }
    const empty = this.#mtu - HEADER_SIZE - DATA_FIXED_SIZE;
    const whole = RECORD_HEADER_SIZE + total;
    // A byte rate is charged a packet's worth at a time, so that a large
    // bulletin leaves at the rate rather than in a burst after a pause.
    const byBytes = this.#options.rate?.unit === "bytes";
    let charged = byBytes ? Math.min(total, empty) : total;
    if (this.#rateBucket) await this.#charge(byBytes ? charged : 1);
    const bulletin = this.#nextBulletin++;
    this.#stats.bulletins += 1;
    this.#stats.bytes += total;
    if (!body && whole <= empty) {
      if (
        HEADER_SIZE + DATA_FIXED_SIZE + this.#size + whole > this.#mtu ||
        this.#records.length >= MAX_RECORDS
      ) {
        if (!this.#flushNow()) await this.#flush();
      }
      this.#add({ bulletin, total, offset: 0, data: payload }, true);
      return;
    }
    const digest = body
      ? await body.sha256()
      : await (this.#options.hasher ?? NODE_HASHER).sha256(payload);
    // A body is read a piece at a time into one buffer: the records of the
    // piece before are sent (copied into their datagrams) before the next.
    const piece = body ? new Uint8Array(Math.min(BODY_CHUNK, total)) : EMPTY;
    let pieceAt = 0;
    let pieceEnd = 0;
    let offset = 0;
    while (offset < total) {
      if (this.#rateBucket && offset >= charged) {
        const cost = Math.min(empty, total - charged);
        await this.#charge(cost);
        charged += cost;
      }
      if (body && offset >= pieceEnd) {
        if (!this.#flushNow()) await this.#flush();
        const length = Math.min(piece.length, total - offset);
        body.read(offset, piece.subarray(0, length));
        pieceAt = offset;
        pieceEnd = offset + length;
      }
      let room = this.#mtu - HEADER_SIZE - DATA_FIXED_SIZE - this.#size -
        RECORD_HEADER_SIZE - (offset === 0 ? DIGEST_SIZE : 0);
      if (room < 64 || this.#records.length >= MAX_RECORDS) {
        if (!this.#flushNow()) await this.#flush();
        room = empty - RECORD_HEADER_SIZE - (offset === 0 ? DIGEST_SIZE : 0);
      }
      const length = Math.min(room, total - offset, 0xffff);
      const data = body
        ? piece.subarray(
          offset - pieceAt,
          Math.min(offset + length, pieceEnd) - pieceAt,
        )
        : payload.subarray(offset, offset + length);
      if (this.#records.length === 0 && offset + data.length < total) {
        // The hot path: a datagram of this fragment alone, encoded at once.
        this.#packFragment(bulletin, total, offset, data, digest);
        offset += data.length;
        if (!this.#sendQueuedNow()) await this.#flush();
        continue;
      }
      const record: DataRecord = { bulletin, total, offset, data };
      if (offset === 0) record.digest = digest;
      offset += record.data.length;
      this.#add(record, offset === total);
      if (offset < total && !this.#flushNow()) await this.#flush();
    }
  }

  /** Takes `cost` from the rate bucket, waiting (after a flush) when short. */
  async #charge(cost: number): Promise<void> {
    const wait = this.#rateBucket!.take(cost);
    if (wait > 0) {
      await this.#flush();
      await this.#sleep(wait);
    }
  }

  #add(record: DataRecord, completes: boolean): void {
    this.#records.push(record);
    this.#size += RECORD_HEADER_SIZE + (record.digest ? DIGEST_SIZE : 0) +
      record.data.length;
    if (completes) this.#complete.set(this.#nextSeq, record.bulletin);
  }

  /**
   * {@linkcode #flush} without a promise, for the common case: nothing else
   * queued, no journal, and the endpoint takes the datagram at once.
   * Returns false when the packet (if any) is left queued for `#flush`.
   */
  #flushNow(): boolean {
    if (this.#queued.length > 0 || this.#options.journal !== undefined) {
      return false;
    }
    this.#pack();
    return this.#queued.length === 0 || this.#sendQueuedNow();
  }

  /**
   * Sends the one queued packet without a promise when it can (no
   * journal, the endpoint takes it at once); false leaves it queued.
   */
  #sendQueuedNow(): boolean {
    const item = this.#queued[0];
    if (
      item === undefined || this.#queued.length > 1 ||
      this.#options.journal !== undefined ||
      !this.#transmitNow(item.seq, item.bytes)
    ) {
      return false;
    }
    this.#queued.length = 0;
    this.#sentPayload += item.payload;
    return true;
  }

  /**
   * Queues a datagram holding one fragment, not a bulletin's last, encoded
   * straight into a pooled buffer (what {@linkcode #add} then
   * {@linkcode #pack} make of it, without the objects).
   */
  #packFragment(
    bulletin: number,
    total: number,
    offset: number,
    data: Uint8Array,
    digest: Uint8Array,
  ): void {
    const seq = this.#nextSeq++;
    this.#touches.set(seq, bulletin);
    if (this.#complete.get(seq) === 0) {
      this.#complete.set(seq, this.#complete.get(seq - 1));
    }
    const into = this.#pool.pop() ?? new ArrayBuffer(this.#mtu);
    const bytes = encodeFragment(
      {
        session: this.#session,
        seq,
        timestamp: nowMicros(),
        low: this.#low,
        bulletin,
        total,
        offset,
        ...(offset === 0 ? { digest } : {}),
      },
      data,
      { into },
    );
    this.#queued.push({ seq, bytes, payload: data.length });
  }

  /** Closes the packet being filled and sends every queued one. */
  async #flush(): Promise<void> {
    this.#pack();
    if (this.#queued.length === 0) return;
    const batch = this.#queued;
    this.#queued = [];
    this.#options.journal?.append(batch.map((item) => item.bytes));
    for (const item of batch) {
      if (!this.#transmitNow(item.seq, item.bytes)) {
        await this.#transmit(item.seq, item.bytes);
      }
      this.#sentPayload += item.payload;
    }
  }

  /** Closes the packet being filled, if any, into the send queue. */
  #pack(): void {
    if (this.#records.length > 0) {
      const seq = this.#nextSeq++;
      const records = this.#records;
      this.#touches.set(seq, records[records.length - 1]!.bulletin);
      if (this.#complete.get(seq) === 0) {
        this.#complete.set(seq, this.#complete.get(seq - 1));
      }
      const into = this.#pool.pop() ?? new ArrayBuffer(this.#mtu);
      const bytes = encodeFrame({
        type: "data",
        session: this.#session,
        seq,
        retransmit: false,
        timestamp: nowMicros(),
        low: this.#low,
        records,
      }, { into });
      let payload = 0;
      for (const record of records) payload += record.data.length;
      this.#records = [];
      this.#size = 0;
      this.#queued.push({ seq, bytes, payload });
    }
  }

  /**
   * The hot path of {@linkcode #transmit}, without a promise: when the
   * window is open, nothing paces and the endpoint takes the datagram at
   * once. Returns false, having done nothing, otherwise.
   */
  #transmitNow(seq: number, bytes: Uint8Array): boolean {
    const endpoint = this.#endpoint;
    if (
      endpoint.trySend === undefined || this.#stopped || this.#closed ||
      Number.isFinite(this.#pace) || !this.#windowOpen(seq) ||
      (seq % 16 === 0 && this.#now() - this.#yieldedAt >= 1)
    ) {
      return false;
    }
    // The timestamp says when it left, not when it was packed.
    stampData(bytes, nowMicros());
    if (!endpoint.trySend(bytes, this.#destination)) return false;
    this.#sentInTick += 1;
    this.#record(seq, bytes);
    this.#askForAcks(seq);
    return true;
  }

  /** Bookkeeping of a first transmission. */
  #record(seq: number, bytes: Uint8Array): void {
    this.#hold(seq, bytes);
    this.#sentHigh = seq;
    this.#stats.packets += 1;
    this.#firstSentAt ??= this.#now();
  }

  /**
   * Receivers acknowledge heartbeats: one every quarter window keeps
   * acknowledgements coming at the pace of the data, not of the clock, so
   * the window slides before it fills.
   */
  #askForAcks(seq: number): void {
    if (seq - this.#askedAt >= this.#askEvery) {
      this.#askedAt = seq;
      this.#heartbeat();
    }
  }

  async #transmit(seq: number, bytes: Uint8Array): Promise<void> {
    // The common case (window open, no pacing) awaits nothing but the send.
    if (!this.#windowOpen(seq)) {
      await this.#until(() => this.#windowOpen(seq), Infinity);
    }
    if (this.#stopped) return;
    this.#sentInTick += 1;
    if (Number.isFinite(this.#pace)) await this.#pacing();
    this.#record(seq, bytes);
    // The timestamp says when it left, not when it was packed.
    stampData(bytes, nowMicros());
    await this.#sendNow(bytes);
    this.#askForAcks(seq);
    if (seq % 16 === 0) await this.#breathe();
  }

  /**
   * Yields to the event loop at least once a millisecond of sending, so
   * that feedback and timers are served while datagrams stream out (a send
   * that completes at once, as a batching socket's does, never yields).
   */
  async #breathe(): Promise<void> {
    const now = this.#now();
    if (now - this.#yieldedAt < 1) return;
    await this.#yielder.yield();
    this.#yieldedAt = this.#now();
  }

  /** Memory a held datagram takes: its whole buffer when pooled. */
  #cost(bytes: Uint8Array): number {
    return bytes.buffer.byteLength === this.#mtu && bytes.byteOffset === 0
      ? this.#mtu
      : bytes.length;
  }

  #hold(seq: number, bytes: Uint8Array): void {
    this.#held.set(seq, bytes);
    this.#heldBytes += this.#cost(bytes);
    while (this.#heldBytes > this.#bufferBytes && this.#low < seq) {
      const old = this.#held.get(this.#low);
      if (old) {
        this.#heldBytes -= this.#cost(old);
        this.#held.delete(this.#low);
        // Its buffer carries the next datagram: a long stream allocates
        // nothing per datagram.
        if (this.#cost(old) === this.#mtu && this.#pool.length < 64) {
          this.#pool.push(old.buffer as ArrayBuffer);
        }
      }
      if (this.#lastRepair.size > 0) this.#lastRepair.delete(this.#low);
      if (this.#repairQueue.size > 0) this.#repairQueue.delete(this.#low);
      this.#low += 1;
    }
  }

  /** The highest sequence sent (numbered packets may still wait). */
  get #high(): number {
    return this.#sentHigh;
  }

  #windowOpen(seq: number): boolean {
    if (this.#stopped) return true;
    let slowest = Infinity;
    let slow: ReceiverEntry | undefined;
    for (const entry of this.#receivers.values()) {
      if (entry.status !== "active" || !entry.heard) continue;
      // With a named roster, only the named receivers hold the stream back.
      if (this.#named && !this.#named.has(entry.name)) continue;
      if (entry.acked < slowest) {
        slowest = entry.acked;
        slow = entry;
      }
    }
    // Beyond the window, or beyond the buffer while the oldest datagram it
    // holds is still needed: evicting it would lose data the slowest
    // receiver has not acknowledged.
    const bufferFull = this.#heldBytes + this.#mtu > this.#bufferBytes &&
      this.#low > slowest;
    if (
      slow === undefined || (seq - slowest <= this.#window && !bufferFull)
    ) {
      return true;
    }
    const slowMs = this.#options.slowMs ?? 1000;
    // Never held back for good: a receiver that makes no progress for the
    // whole deadline is evicted even without --drop-slow.
    const stalled = this.#now() - slow.progressAt;
    if (
      (this.#options.dropSlow && stalled >= slowMs) ||
      stalled >= this.#options.deadlineMs
    ) {
      slow.status = "evicted";
      this.#options.onEvent({
        type: "evicted",
        name: slow.name,
        acked: slow.acked,
        high: this.#high,
      });
      return this.#windowOpen(seq);
    }
    return false;
  }

  // ---- waiting ----------------------------------------------------------

  /** Waits until `done()` holds, the deadline passes, or the sender stops. */
  async #until(done: () => boolean, deadline: number): Promise<void> {
    while (!this.#stopped && !done()) {
      const left = deadline - this.#now();
      if (left <= 0) return;
      await new Promise<void>((resolve) => {
        const waiters = this.#waiters;
        const timer = setTimeout(finish, Math.min(left, this.#heartbeatMs));
        function finish(): void {
          clearTimeout(timer);
          waiters.delete(finish);
          resolve();
        }
        waiters.add(finish);
      });
    }
  }

  #sleep(ms: number): Promise<void> {
    const until = this.#now() + ms;
    return this.#until(() => this.#now() >= until, until);
  }

  /** Wakes every waiter to check its condition again. */
  #notify(): void {
    for (const finish of [...this.#waiters]) finish();
  }

  // ---- roster -------------------------------------------------------------

  #hasRoster(): boolean {
    return this.#options.expect !== undefined ||
      (this.#options.receivers?.length ?? 0) > 0;
  }

  #heardCount(): number {
    let count = 0;
    for (const entry of this.#receivers.values()) if (entry.heard) count += 1;
    return count;
  }

  #rosterComplete(): boolean {
    const names = this.#options.receivers;
    if (names && names.length > 0) {
      return names.every((name) => this.#receivers.get(name)?.heard);
    }
    return this.#heardCount() >= (this.#options.expect ?? 0);
  }

  #hasAll(entry: ReceiverEntry): boolean {
    return entry.heard && entry.acked >= this.#high;
  }

  /** Has every bulletin: acknowledged everything and lost nothing. */
  #whole(entry: ReceiverEntry): boolean {
    return this.#hasAll(entry) && entry.lost.length === 0;
  }

  /** No longer waited for: has everything, or was evicted. */
  #finished(entry: ReceiverEntry | undefined): boolean {
    return entry !== undefined &&
      (this.#hasAll(entry) || entry.status === "evicted");
  }

  /** Every bulletin was sent and nobody is waited for any more. */
  #settled(): boolean {
    if (!this.#allSent) return false;
    const names = this.#options.receivers;
    if (names && names.length > 0) {
      return names.every((name) => this.#finished(this.#receivers.get(name)));
    }
    let finished = 0;
    let waiting = 0;
    for (const entry of this.#receivers.values()) {
      if (this.#finished(entry)) finished += 1;
      else if (entry.heard && entry.status === "active") waiting += 1;
    }
    if (this.#options.expect !== undefined) {
      return finished >= this.#options.expect;
    }
    return waiting === 0;
  }

  /** Every expected receiver has every bulletin. */
  #delivered(): boolean {
    if (!this.#allSent) return false;
    const names = this.#options.receivers;
    if (names && names.length > 0) {
      return names.every((name) => {
        const entry = this.#receivers.get(name);
        return entry !== undefined && this.#whole(entry);
      });
    }
    let complete = 0;
    let incomplete = 0;
    for (const entry of this.#receivers.values()) {
      if (this.#whole(entry)) complete += 1;
      else if (entry.heard) incomplete += 1;
    }
    if (this.#options.expect !== undefined) {
      return complete >= this.#options.expect;
    }
    return incomplete === 0;
  }

  #entry(name: string): ReceiverEntry | undefined {
    let entry = this.#receivers.get(name);
    if (entry) return entry;
    if (this.#receivers.size >= (this.#options.maxReceivers ?? 10_000)) {
      return undefined;
    }
    entry = {
      name,
      acked: 0,
      selective: [],
      status: "active",
      nacks: 0,
      progressAt: this.#now(),
      heard: false,
      lost: [],
    };
    this.#receivers.set(name, entry);
    return entry;
  }

  // ---- feedback -------------------------------------------------------------

  async #readFeedback(): Promise<void> {
    for (;;) {
      let datagram;
      try {
        datagram = await this.#endpoint.receive();
      } catch {
        continue;
      }
      if (datagram === null) return;
      const decoded = decodeFrame(datagram.payload);
      if (decoded.kind === "plain") {
        this.#dropped.unexpected += 1;
        continue;
      }
      if (decoded.kind === "invalid") {
        this.#dropped[decoded.reason] += 1;
        continue;
      }
      this.#feedback(decoded.frame, datagram.from);
    }
  }

  #feedback(frame: Frame, from: Peer): void {
    if (this.#reported) return;
    if (
      frame.session !== this.#session || frame.type === "data" ||
      frame.type === "heartbeat" || frame.type === "gone"
    ) {
      this.#dropped.unexpected += 1;
      return;
    }
    const entry = this.#entry(frame.name);
    if (!entry) {
      this.#dropped.roster += 1;
      return;
    }
    this.#stats.feedback += 1;
    const known = entry.heard;
    entry.heard = true;
    entry.from = from;
    if (!known) {
      const event: ReliableSenderEvent = {
        type: "receiver",
        name: entry.name,
        from,
      };
      // A standby says it took over before who answered it.
      if (this.#probe !== undefined) this.#deferred.push(event);
      else this.#options.onEvent(event);
    }
    // A receiver cannot have more than was sent.
    if (this.#probe !== undefined) this.#probed(frame);
    const acked = Math.min(frame.seq, this.#high);
    if (acked > entry.acked) {
      entry.acked = acked;
      entry.progressAt = this.#now();
    } else if (entry.acked === this.#high) {
      entry.progressAt = this.#now();
    }
    switch (frame.type) {
      case "hello":
        if (entry.status === "left") entry.status = "active";
        break;
      case "ack":
        this.#stats.acks += 1;
        // Only what was sent: claims beyond it would cost memory, and
        // later make a receiver look served for data it never had.
        entry.selective = [];
        for (const r of frame.ranges) {
          if (r.first > entry.acked && r.first <= this.#high) {
            entry.selective.push({
              first: r.first,
              last: Math.min(r.last, this.#high),
            });
          }
        }
        break;
      case "nack":
        this.#stats.nacks += 1;
        entry.nacks += 1;
        this.#queueRepairs(frame.ranges, entry);
        break;
      case "bye":
        if (entry.status === "active") {
          entry.status = "left";
          this.#options.onEvent({
            type: "receiver-left",
            name: entry.name,
            complete: entry.acked >= this.#high,
          });
        }
        break;
    }
    this.#markAcked();
    this.#notify();
  }

  /**
   * While a standby takes over: the highest sequence number a receiver's
   * frame shows to exist, within a window above what the standby heard (the
   * primary ran at most a window ahead; a claim beyond is not believed).
   */
  #probed(frame: Frame & { seq: number }): void {
    let claimed = frame.seq;
    if (frame.type === "ack" || frame.type === "nack") {
      for (const range of frame.ranges) claimed = Math.max(claimed, range.last);
    }
    if (claimed <= this.#sentHigh + this.#window) {
      this.#probe = Math.max(this.#probe!, claimed);
    }
  }

  #markAcked(): void {
    const journal = this.#options.journal;
    if (!journal) return;
    let slowest = Infinity;
    for (const entry of this.#receivers.values()) {
      if (entry.status === "active") slowest = Math.min(slowest, entry.acked);
    }
    // A mark is a disk write: at most one per heartbeat interval.
    const now = this.#now();
    if (
      Number.isFinite(slowest) && slowest > this.#journalAcked &&
      now - this.#journalMarkedAt >= this.#heartbeatMs
    ) {
      this.#journalAcked = slowest;
      this.#journalMarkedAt = now;
      journal.markAcked(slowest);
    }
  }

  #queueRepairs(ranges: SeqRange[], entry: ReceiverEntry): void {
    const now = this.#now();
    const holdoff = this.#options.repairHoldoffMs ?? 8;
    const gone: number[] = [];
    // However the ranges overlap, each sequence is looked at once, and at
    // most MAX_NACK_SPAN per NACK: a receiver missing more asks again.
    let span = MAX_NACK_SPAN;
    for (const range of mergeRanges(ranges, { first: 1, last: this.#high })) {
      const last = range.last;
      // Anything below the buffer is gone: one range for it.
      if (range.first < this.#low) {
        const goneLast = Math.min(last, this.#low - 1);
        gone.push(range.first, goneLast);
        if (range.first > entry.acked) {
          addRange(entry.lost, range.first, goneLast);
        }
      }
      for (
        let seq = Math.max(range.first, this.#low);
        seq <= last && span > 0;
        seq++, span--
      ) {
        if (this.#held.get(seq) === undefined) {
          // Never held (a standby that took over did not hear it): gone.
          const tail = gone.length;
          if (tail > 0 && gone[tail - 1] === seq - 1) gone[tail - 1] = seq;
          else gone.push(seq, seq);
          if (seq > entry.acked) addRange(entry.lost, seq, seq);
          continue;
        }
        const repaired = this.#lastRepair.get(seq);
        if (repaired !== undefined && now - repaired < holdoff) continue;
        // Taken off the queue and waiting for the budget: on its way.
        if (seq === this.#repairing) continue;
        if (!this.#repairQueue.has(seq)) this.#lost += 1;
        this.#repairQueue.add(seq);
      }
    }
    // GONE notices fit a datagram and come out of the repair budget too
    // (whose burst holds a datagram): a receiver told of the first ranges
    // asks again for the rest.
    const most = Math.min(
      MAX_RANGES,
      Math.floor((this.#mtu - HEADER_SIZE - 2) / 16),
      gone.length / 2,
    );
    const goneCost = this.#options.repairRate?.unit === "bulletins"
      ? 1
      : HEADER_SIZE + 2 + 16 * most;
    if (
      gone.length > 0 && now - this.#lastGone >= holdoff &&
      this.#repairBucket.tryTake(goneCost)
    ) {
      this.#lastGone = now;
      const goneRanges: SeqRange[] = [];
      for (let k = 0; k < gone.length && goneRanges.length < most; k += 2) {
        goneRanges.push({ first: gone[k]!, last: gone[k + 1]! });
      }
      this.#stats.gone += 1;
      void this.#send(encodeFrame({
        type: "gone",
        session: this.#session,
        seq: this.#low,
        ranges: goneRanges,
      }));
    }
    if (this.#repairQueue.size > 0) this.#notify();
  }

  async #repairLoop(): Promise<void> {
    while (!this.#stopped) {
      const seq = this.#repairQueue.values().next().value;
      if (seq === undefined) {
        await this.#until(() => this.#repairQueue.size > 0, Infinity);
        continue;
      }
      this.#repairQueue.delete(seq);
      const bytes = this.#held.get(seq);
      if (!bytes) continue;
      this.#repairing = seq;
      const unit = this.#options.repairRate?.unit ?? "bytes";
      const wait = this.#repairBucket.take(unit === "bytes" ? bytes.length : 1);
      if (wait > 0) await this.#sleep(wait);
      this.#sentInTick += 1;
      if (Number.isFinite(this.#pace)) await this.#pacing();
      this.#repairing = undefined;
      this.#lastRepair.set(seq, this.#now());
      this.#stats.retransmitted += 1;
      await this.#sendNow(
        asRetransmission(bytes, { timestamp: nowMicros(), low: this.#low }),
      );
      if (this.#stats.retransmitted % 16 === 0) await this.#breathe();
    }
  }

  // ---- heartbeats -----------------------------------------------------------

  #tick(): void {
    const busy = this.#sentInTick > 0 || this.#repairQueue.size > 0 ||
      !this.#caughtUp();
    this.#adapt();
    // An idle session stays visible with fewer heartbeats: every interval
    // for a few, then one in twenty (once a second by default).
    this.#idleTicks = busy ? 0 : this.#idleTicks + 1;
    if (this.#idleTicks < 4 || this.#idleTicks % 20 === 0) this.#heartbeat();
    this.#progress();
    this.#notify();
  }

  /** A progress event, when asked for and due (until the report). */
  #progress(): void {
    const every = this.#options.progressMs;
    const now = this.#now();
    if (
      every === undefined || this.#reported || now - this.#progressAt < every
    ) {
      return;
    }
    this.#progressAt = now;
    const sending = this.#firstSentAt === undefined
      ? 0
      : (now - this.#firstSentAt) / 1000;
    const rate = sending > 0 ? this.#sentPayload / sending : 0;
    const left = this.#stats.bytes - this.#sentPayload;
    let acknowledged = 0;
    let heard = 0;
    for (const entry of this.#receivers.values()) {
      if (!entry.heard) continue;
      heard += 1;
      if (entry.status === "active" && this.#hasAll(entry)) acknowledged += 1;
    }
    const receivers = this.#named?.size ?? this.#options.expect ?? heard;
    this.#options.onEvent({
      type: "progress",
      elapsedMs: Math.round(now - this.#startedAt),
      queuedBytes: this.#stats.bytes,
      sentBytes: this.#sentPayload,
      bytesPerSecond: Math.round(rate),
      ...(rate > 0 ? { etaSeconds: Math.round(left / rate * 10) / 10 } : {}),
      acknowledged,
      receivers,
    });
  }

  /** Every receiver heard from has everything sent so far. */
  #caughtUp(): boolean {
    for (const entry of this.#receivers.values()) {
      if (entry.heard && entry.status === "active" && !this.#hasAll(entry)) {
        return false;
      }
    }
    return true;
  }

  /**
   * Loss-driven rate control, once per heartbeat: receivers asking for
   * repairs means datagrams are dropped on the way (full socket buffers,
   * a slow link), so the pace falls to 70% of what was sent; without new
   * loss it grows by 15% per interval until pacing is off again.
   */
  #adapt(): void {
    const sent = this.#sentInTick;
    this.#sentInTick = 0;
    if (this.#lost > Math.max(3, sent * 0.02)) {
      const measured = sent * 1000 / this.#heartbeatMs;
      this.#pace = Math.max(MIN_PACE, Math.min(this.#pace, measured) * 0.7);
    } else if (Number.isFinite(this.#pace)) {
      this.#pace = this.#pace * 1.25 + 100;
      if (this.#pace > MAX_PACE) this.#pace = Infinity;
    }
    this.#lost = 0;
  }

  /** Waits for the pace: a datagram every 1/pace seconds, bursts of 1 ms. */
  async #pacing(): Promise<void> {
    let now = this.#now();
    this.#paceNext = Math.max(this.#paceNext, now - 1) + 1000 / this.#pace;
    // Timers cannot wait less than about 4 ms; shorter waits yield to the
    // event loop instead, so that datagrams leave evenly spaced rather than
    // in bursts that overflow a receiver's socket buffer.
    while (this.#paceNext - now > 0.05 && !this.#stopped) {
      if (this.#paceNext - now > 4) await this.#sleep(this.#paceNext - now);
      else await this.#yielder.yield();
      now = this.#now();
    }
  }

  #heartbeat(): void {
    if (this.#closed) return;
    void this.#send(encodeFrame({
      type: "heartbeat",
      session: this.#session,
      seq: this.#high,
      final: this.#allSent,
      timestamp: nowMicros(),
      low: this.#low,
    }));
  }

  /** Sends a datagram the caller waits for (the hot path: no tracking). */
  async #sendNow(bytes: Uint8Array): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#endpoint.send(bytes, this.#destination);
    } catch {
      // A failed send is a lost datagram: receivers NACK it.
    }
  }

  /** Sends a datagram nobody waits for; close() waits for it. */
  #send(bytes: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const sending = this.#endpoint.send(bytes, this.#destination).catch(
      () => {
        // A failed send is a lost datagram: receivers NACK it.
      },
    );
    this.#sends.add(sending);
    sending.finally(() => this.#sends.delete(sending));
    return sending;
  }

  // ---- report -------------------------------------------------------------

  #report(): SenderReport {
    const high = this.#high;
    const receivers: ReceiverReport[] = [];
    const names = [...this.#receivers.keys()].sort();
    for (const name of names) {
      const entry = this.#receivers.get(name)!;
      const missing = this.#missing(entry, high);
      const status: ReceiverReport["status"] = !entry.heard
        ? "silent"
        : entry.status === "evicted"
        ? "evicted"
        : missing.length === 0
        ? "complete"
        : this.#hasAll(entry)
        ? "lost"
        : entry.status === "left"
        ? "left"
        : "incomplete";
      let lostBulletins = 0;
      for (const range of this.#bulletinsOf(entry.lost)) {
        lostBulletins += range.last - range.first + 1;
      }
      const report: ReceiverReport = {
        name,
        acked: entry.acked,
        bulletins: Math.max(0, this.#complete.get(entry.acked) - lostBulletins),
        missing,
        missingBulletins: this.#bulletinsOf(missing),
        status,
        nacks: entry.nacks,
      };
      if (entry.from) report.from = entry.from;
      receivers.push(report);
    }
    const delivered = this.#delivered();
    const reason: SenderReport["reason"] = delivered
      ? (this.#heardCount() === 0 ? "no-receivers" : "complete")
      : this.#options.signal?.aborted
      ? "signal"
      : !this.#allSent && this.#hasRoster() && !this.#rosterComplete()
      ? "roster"
      : this.#settled()
      ? ([...this.#receivers.values()].some((e) => e.status === "evicted")
        ? "evicted"
        : "lost")
      : "deadline";
    return {
      session: this.#session,
      delivered,
      reason,
      ...this.#stats,
      dropped: this.#dropped,
      elapsedMs: Math.round(this.#now() - this.#startedAt),
      receivers,
      ...(this.#options.paths ? { paths: this.#options.paths } : {}),
    };
  }

  #missing(entry: ReceiverEntry, high: number): SeqRange[] {
    const missing: SeqRange[] = entry.lost.map((r) => ({ ...r }));
    let from = entry.acked + 1;
    for (const range of entry.selective) {
      if (range.first > from) {
        missing.push({ first: from, last: Math.min(range.first - 1, high) });
      }
      from = Math.max(from, range.last + 1);
    }
    if (from <= high) missing.push({ first: from, last: high });
    const merged: SeqRange[] = [];
    for (const range of missing.filter((r) => r.first <= r.last)) {
      addRange(merged, range.first, range.last);
    }
    return merged;
  }

  /** The bulletins that sequence ranges hold (merged ranges). */
  #bulletinsOf(ranges: SeqRange[]): SeqRange[] {
    const result: SeqRange[] = [];
    for (const range of ranges) {
      const first = this.#complete.get(range.first - 1) + 1;
      const last = Math.max(this.#touches.get(range.last), first);
      const previous = result.at(-1);
      if (previous && first <= previous.last + 1) {
        previous.last = Math.max(previous.last, last);
      } else {
        result.push({ first, last });
      }
    }
    return result;
  }
}
