/**
 * The receiving side of the reliable protocol: a state machine fed with the
 * frames of the senders' sessions. It follows several sessions at once (a
 * bounded number: the least recently heard one is dropped to make room),
 * and in each it delivers bulletins in order and exactly once, repairs gaps
 * by NACK (random back-off, suppressed by overheard repairs), acknowledges
 * cumulatively in answer to heartbeats, and reports what can no longer be
 * repaired. A session that continues from another source address (a hot
 * standby that took over) is the same session: its feedback goes to the
 * address the session's frames now come from.
 *
 * @module
 */

import type { Peer } from "../net/address.ts";
import type { ReceiverEvent } from "../events.ts";
import {
  type DataFrame,
  type DataHeader,
  type DataRecord,
  type Frame,
  type InvalidReason,
  MAX_RANGES,
  type SeqRange,
} from "../wire/frame.ts";
import { mergeRanges, toRanges } from "../wire/ranges.ts";
import { AskedSequences, SequenceSet } from "./asked.ts";
import type { ReceiverState, SessionPosition } from "./state.ts";
import {
  type BulletinHasher,
  NODE_HASHER,
  type Sha256Stream,
} from "./digest.ts";
import {
  type DropCounts,
  emptyDrops,
  type ReceiverStats,
  type SessionPaths,
} from "./stats.ts";

/** How a {@linkcode ReliableReceiver} sends its feedback frames. */
export type FrameSender = (frame: Frame, to: Peer) => Promise<void>;

/** Where delivered bulletins are persisted before they are reported. */
export interface DeliverySink {
  /** Writes a bulletin (e.g. to `--output DIR`); returns where it went. */
  write?: (session: string, number: number, payload: Uint8Array) => string;
  /**
   * Starts writing a large bulletin as its fragments arrive, where the sink
   * can (a file beside its final name); used when the hasher is incremental,
   * so that a bulletin is never held whole in memory.
   */
  begin?: (session: string, number: number, total: number) => BulletinWriter;
  /** Saves the receiver's position (`--state FILE`). */
  save?: (state: ReceiverState) => void;
}

/** A bulletin being written as it arrives ({@linkcode DeliverySink.begin}). */
export interface BulletinWriter {
  /** Adds the next bytes. */
  write(data: Uint8Array): void;
  /** Completes it (it verified): moves it where it belongs; returns where. */
  commit(): string;
  /** Gives it up (lost, failed or closed): removes what was written. */
  abort(): void;
}

/** Bulletins at least this large stream to a {@linkcode BulletinWriter}. */
export const STREAM_THRESHOLD = 1024 * 1024;

/** Options of {@linkcode ReliableReceiver}. */
export interface ReliableReceiverOptions {
  /** The receiver's name, as ACK and NACK frames carry it. */
  name: string;
  /** Sends a feedback frame to the sender. */
  send: FrameSender;
  /** Receives every event, in order. */
  onEvent: (event: ReceiverEvent) => void;
  /** Ask for everything the sender still holds when joining a session. */
  fromStart?: boolean;
  /** Largest bulletin accepted, in bytes (default 16 MiB). */
  maxSize?: number;
  /** The saved position, to resume the same session after a restart. */
  state?: ReceiverState | null;
  /** Persistence of delivered bulletins and position. */
  sink?: DeliverySink;
  /** Longest random wait before a NACK, in ms (default 10). */
  nackBackoffMs?: number;
  /** Wait before asking again for a still-missing sequence, in ms (default 60). */
  nackRepeatMs?: number;
  /** Longest random wait before answering a heartbeat, in ms (default 10). */
  ackJitterMs?: number;
  /** How far past its position a DATA frame may be (default 65536 datagrams). */
  maxAhead?: number;
  /**
   * Most bytes held out of order, waiting for a gap to fill, counted at
   * what the held frames keep alive (default 16 MiB: twice what a sender's
   * default retransmission buffer lets it run ahead).
   */
  maxHeldBytes?: number;
  /** How fragmented bulletins are hashed (default `node:crypto`'s SHA-256). */
  hasher?: BulletinHasher;
  /** The paths the datagrams take, named in the session event and statistics. */
  paths?: SessionPaths;
  /** Deliver at most this many bulletins (`--count`), then stop. */
  limit?: number;
  /** Random numbers in [0, 1); defaults to `Math.random`. */
  random?: () => number;
  /**
   * Most sessions followed at once (default
   * {@linkcode DEFAULT_MAX_SESSIONS}); the least recently heard one makes
   * room for a new one and is not followed again.
   */
  maxSessions?: number;
  /**
   * Drop counters to add to (shared with a {@linkcode GuardedEndpoint}, so
   * that the statistics count frames that failed authentication too).
   */
  dropped?: DropCounts;
}

/** Options of {@linkcode ReliableReceiver.close}. */
export interface ReceiverCloseOptions {
  /**
   * How many times to send the last ACK and the BYE (default 1): a receiver
   * that leaves on its own sends them more than once, so that the sender
   * learns it has everything even if one pair is lost.
   */
  farewells?: number;
  /** Milliseconds between them (default 20). */
  intervalMs?: number;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A gap marker: the sender no longer holds this sequence. */
const GONE = null;

interface Partial {
  bulletin: number;
  total: number;
  digest: Uint8Array;
  /**
   * The bulletin so far, filled in order as fragments arrive, grown by
   * doubling up to `total`: a first fragment that claims a large total
   * costs memory only as data really arrives (a zeroed allocation of the
   * whole claim is not free: the allocator may clear reused memory).
   */
  bytes: Uint8Array<ArrayBuffer>;
  /** Where it goes instead of `bytes` (then empty), as it arrives. */
  writer?: BulletinWriter;
  /** The hash so far, when the hasher is incremental. */
  hash?: Sha256Stream;
  received: number;
}

/** Appends a fragment to a partial bulletin. */
function append(partial: Partial, data: Uint8Array): void {
  partial.hash?.update(data);
  if (partial.writer) {
    partial.writer.write(data);
  } else {
    const needed = partial.received + data.length;
    if (needed > partial.bytes.length) {
      const grown = new Uint8Array(
        Math.min(partial.total, Math.max(needed, 2 * partial.bytes.length)),
      );
      grown.set(partial.bytes.subarray(0, partial.received));
      partial.bytes = grown;
    }
    partial.bytes.set(data, partial.received);
  }
  partial.received += data.length;
}

/** What a partial bulletin's buffer starts at, before it grows. */
const FIRST_BUFFER = 64 * 1024;

/** What a drain produced, reported in order once persisted. */
type Outcome =
  | {
    kind: "bulletin";
    bulletin: number;
    payload: Uint8Array;
    /** A bulletin already written: committed when persisted. */
    written?: { writer: BulletinWriter; size: number };
    sentAt: number;
  }
  | { kind: "event"; event: ReceiverEvent };

/** What the sessions of one receiver share. */
interface Shared {
  options: ReliableReceiverOptions;
  stats: ReceiverStats;
  /** Bytes held out of order by all sessions together. */
  budget: { held: number };
  /** Passes an event on (naming the session where that is needed). */
  emit: (event: ReceiverEvent) => void;
  /** Saves the receiver's position after this session's has changed. */
  save: (position: SessionPosition) => void;
}

/**
 * How a session starts being followed: its first frame heard, where that
 * came from, and the position saved in it (`--state`), if any.
 */
interface SessionStart {
  frame: DataFrame | Frame & { type: "heartbeat" };
  from: Peer;
  saved: SessionPosition | undefined;
}

/**
 * One session's protocol state: ordering, gaps, NACKs, reassembly. It
 * joins its session when made (a `session` event and a HELLO), emits
 * `bulletin`, `unrecoverable` and `bulletin-failed` events and sends ACK,
 * NACK and BYE frames to the address the session's frames come from.
 */
class SessionReceiver {
  readonly #options: ReliableReceiverOptions;
  readonly #shared: Shared;
  readonly #random: () => number;
  readonly #maxSize: number;
  readonly #maxAhead: number;
  #session: string;
  #sender: Peer;
  /** Where its first frame came from, as the `session` event says. */
  joinedFrom: Peer;
  /** First sequence not yet processed. */
  #next = 0;
  /** Highest sequence known to exist. */
  #high = 0;
  /** Highest bulletin delivered; records at or below it are skipped. */
  #delivered = 0;
  /** First sequence of the bulletin being reassembled (resume point). */
  #resume = 0;
  /** Frames held out of order, by sequence. */
  #held = new Map<number, DataFrame>();
  /**
   * Sequences a GONE frame said are lost, that were asked for (ranges: a
   * gap may be a window wide). A sequence held as well is delivered.
   */
  #lost = new SequenceSet();
  /** Bulletins made ready in the current drain. */
  #batch = 0;
  #heldBytes = 0;
  #partial: Partial | undefined;
  /** When it was last heard, by the receiver's frame count. */
  heard = 0;
  /** A run of sequences lost for good, reported when the next one arrives. */
  #gone: { first: number; last: number } | undefined;
  /** Skip fragments until the next bulletin starts. */
  #skipping = false;
  /** What was NACKed and when (ranges: a gap may be a window wide). */
  #asked = new AskedSequences();
  #nackTimer: ReturnType<typeof setTimeout> | undefined;
  #nackRepeat = false;
  /** A gap appeared since the last NACK was scheduled. */
  #freshGap = false;
  #ackTimer: ReturnType<typeof setTimeout> | undefined;
  #sends = new Set<Promise<void>>();
  #closed = false;
  #closing: Promise<void> | undefined;
  /** The receiver's statistics, shared by its sessions. */
  readonly stats: ReceiverStats;

  /**
   * Joins a session at its first frame.
   *
   * @param shared What the receiver's sessions share.
   * @param first The session's first frame heard, and where it came from.
   */
  constructor(shared: Shared, first: SessionStart) {
    const options = shared.options;
    this.#options = options;
    this.#shared = shared;
    this.stats = shared.stats;
    this.#random = options.random ?? Math.random;
    this.#maxSize = options.maxSize ?? 16 * 1024 * 1024;
    this.#maxAhead = options.maxAhead ?? 65536;
    this.#session = first.frame.session;
    this.#sender = first.from;
    this.joinedFrom = first.from;
    this.#join(first.frame, first.from, first.saved);
  }

  /**
   * Follows another session instead, after {@linkcode drop}: the same
   * object, its maps emptied, so that a flood of new session ids costs no
   * allocation per session.
   *
   * @param first The new session's first frame heard, and where it came from.
   */
  restart(first: SessionStart): void {
    this.#closed = false;
    this.#closing = undefined;
    this.#session = first.frame.session;
    this.#sender = first.from;
    this.joinedFrom = first.from;
    this.#batch = 0;
    this.#gone = undefined;
    this.#nackRepeat = false;
    this.#freshGap = false;
    this.#nackTimer = undefined;
    this.#ackTimer = undefined;
    this.#join(first.frame, first.from, first.saved);
  }

  /** The session id. */
  get session(): string {
    return this.#session;
  }

  /** Where the session's frames come from now. */
  get sender(): Peer {
    return this.#sender;
  }

  /** Where a restart resumes this session. */
  get position(): SessionPosition {
    return {
      session: this.#session,
      next: this.#resume,
      delivered: this.#delivered,
    };
  }

  /**
   * Processes one frame of this session. Resolves once any bulletins it
   * completed were delivered.
   *
   * @param frame A DATA, HEARTBEAT or GONE frame of this session.
   * @param from Where it came from.
   */
  async handle(
    frame: DataFrame | Frame & { type: "heartbeat" | "gone" },
    from: Peer,
  ): Promise<void> {
    if (this.#closed) return;
    // The session's sender now speaks from here (a standby that took over
    // speaks from another address): feedback goes there.
    this.#sender = from;
    switch (frame.type) {
      case "data":
        this.#data(frame);
        break;
      case "heartbeat":
        this.#see(frame.seq);
        this.#scheduleAck();
        break;
      case "gone":
        // Only what this receiver asked for: the sender then knows exactly
        // what each receiver lost. Other receivers ask, and are told.
        this.#markGone(frame.ranges);
        break;
    }
    await this.#drain();
    if (this.#high >= this.#next) this.#armNack();
  }

  /**
   * Marks as gone the sequences a GONE frame names that this receiver asked
   * for: by walking where its ranges and the NACKed ranges overlap, so a
   * GONE with wide ranges costs no more than either.
   */
  #markGone(ranges: SeqRange[]): void {
    const merged = mergeRanges(ranges, { first: this.#next, last: this.#high });
    const asked = this.#asked.ranges;
    let k = 0;
    for (const range of merged) {
      while (k < asked.length && asked[k]!.last < range.first) k++;
      for (let j = k; j < asked.length && asked[j]!.first <= range.last; j++) {
        const first = Math.max(range.first, asked[j]!.first);
        const last = Math.min(range.last, asked[j]!.last);
        this.#lost.add(first, last);
      }
    }
  }

  /**
   * Stops following the session without a word (the receiver makes room
   * for another): cancels timers, gives up a partial bulletin and releases
   * the bytes it held.
   */
  drop(): void {
    this.#closed = true;
    clearTimeout(this.#nackTimer);
    clearTimeout(this.#ackTimer);
    this.#dropPartial();
    this.#shared.budget.held -= this.#heldBytes;
    this.#heldBytes = 0;
    this.#held.clear();
    this.#lost.clear();
    this.#asked.clear();
  }

  /**
   * Stops: cancels timers, tells the sender it leaves (ACK then BYE with its
   * position), and waits for those sends.
   */
  close(options: ReceiverCloseOptions = {}): Promise<void> {
    // A second call (a signal, then the receive loop's own end) waits for
    // the same farewells.
    return this.#closing ??= this.#close(options);
  }

  async #close(options: ReceiverCloseOptions): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#nackTimer);
    clearTimeout(this.#ackTimer);
    // A bulletin half written to a file goes with the receiver.
    this.#dropPartial();
    if (this.#gone) {
      const out: Outcome[] = [];
      this.#closeGone(out, undefined);
      for (const item of out) {
        if (item.kind === "event") this.#shared.emit(item.event);
      }
    }
    const farewells = options.farewells ?? 1;
    for (let k = 0; k < farewells; k++) {
      if (k > 0) await delay(options.intervalMs ?? 20);
      this.#sendAck();
      this.#send({
        type: "bye",
        session: this.#session,
        seq: this.#next - 1,
        name: this.#options.name,
      });
    }
    await Promise.allSettled([...this.#sends]);
    this.#shared.budget.held -= this.#heldBytes;
    this.#heldBytes = 0;
  }

  #join(
    frame: DataFrame | Frame & { type: "heartbeat" },
    from: Peer,
    saved: SessionPosition | undefined,
  ): void {
    const resumed = saved !== undefined;
    let start: number;
    if (saved) {
      start = saved.next;
      this.#delivered = saved.delivered;
    } else if (this.#options.fromStart) {
      start = Math.max(1, frame.low);
      this.#delivered = 0;
    } else {
      start = frame.type === "heartbeat" ? frame.seq + 1 : frame.seq;
      this.#delivered = 0;
    }
    start = Math.max(1, start);
    this.stats.session = frame.session;
    this.#next = start;
    this.#resume = start;
    this.#high = start - 1;
    // A bulletin that began before the start cannot be completed.
    this.#skipping = !resumed;
    this.#shared.emit({
      type: "session",
      session: frame.session,
      from,
      start,
      resumed,
      ...(this.#options.paths ? { paths: this.#options.paths } : {}),
    });
    this.#send({
      type: "hello",
      session: frame.session,
      seq: start - 1,
      name: this.#options.name,
      fromStart: this.#options.fromStart === true,
    }, from);
  }

  /**
   * Drops a DATA datagram of the followed session from its header alone
   * when it is a duplicate or too far ahead to hold, counted as
   * {@linkcode handle} would count it: decoding its records would be
   * wasted work (a flood of large datagrams would otherwise cost memory and
   * time to decode and then drop).
   *
   * @param head The datagram's session and sequence number.
   * @param size The datagram's size in bytes.
   * @returns Whether it was dropped.
   */
  screen(head: DataHeader, size: number): boolean {
    if (this.#closed) return false;
    const seq = head.seq;
    if (seq < this.#next || this.#has(seq)) {
      this.stats.data += 1;
      this.stats.duplicates += 1;
      return true;
    }
    // What frameBytes() will count, at the least (digests add to it).
    const least = 256 + size + 200 * head.records;
    if (
      seq > this.#next + this.#maxAhead ||
      (seq > this.#next &&
        this.#shared.budget.held + least >
          (this.#options.maxHeldBytes ?? DEFAULT_MAX_HELD))
    ) {
      this.stats.data += 1;
      this.stats.dropped.ahead += 1;
      return true;
    }
    return false;
  }

  #data(frame: DataFrame): void {
    this.stats.data += 1;
    const seq = frame.seq;
    if (seq < this.#next || this.#has(seq)) {
      this.stats.duplicates += 1;
      return;
    }
    const size = frameBytes(frame);
    if (
      seq > this.#next + this.#maxAhead ||
      (seq > this.#next &&
        this.#shared.budget.held + size >
          (this.#options.maxHeldBytes ?? DEFAULT_MAX_HELD))
    ) {
      // Too far ahead to hold: it is asked for again once the gap closes.
      this.stats.dropped.ahead += 1;
      return;
    }
    this.#heldBytes += size;
    this.#shared.budget.held += size;
    if (seq <= this.#high) this.stats.repaired += 1;
    this.#held.set(seq, frame);
    this.#see(seq);
  }

  /** Sequence `seq` exists: anything missing up to it is a gap. */
  #see(seq: number): void {
    if (seq > this.#high) {
      const high = Math.min(seq, this.#next + this.#maxAhead);
      // Sequences between the old and the new high were never seen: a new
      // gap, unless only `seq` itself is new.
      if (high > this.#high + 1 || !this.#has(high)) this.#freshGap = true;
      this.#high = high;
    }
  }

  /**
   * There is a gap: NACK after a random back-off, unless a NACK is due
   * sooner. A repeat timer is cut short when a new gap appears.
   */
  #armNack(): void {
    if (this.#nackTimer !== undefined && !this.#nackRepeat) return;
    if (this.#nackRepeat && !this.#freshGap) return;
    this.#freshGap = false;
    this.#scheduleNack(
      this.#random() * (this.#options.nackBackoffMs ?? 10),
      false,
    );
  }

  /**
   * The sequences to NACK now, as at most {@linkcode MAX_RANGES} ranges:
   * those not held and not asked for within the repeat interval. The
   * sequences are yielded to {@linkcode toRanges} as they are walked, not
   * gathered in a list of every one: a gap may be
   * {@linkcode ReliableReceiverOptions.maxAhead} wide, and a storm of
   * made-up sequences would otherwise leave a list that long as garbage at
   * every NACK.
   */
  #missing(now: number): SeqRange[] {
    return toRanges(this.#unasked(now), MAX_RANGES);
  }

  /** The sequences not held and not asked for lately, in order. */
  *#unasked(now: number): Generator<number> {
    const repeat = this.#options.nackRepeatMs ?? 60;
    const asked = this.#asked.ranges;
    let k = 0;
    for (let seq = this.#next; seq <= this.#high; seq++) {
      if (this.#has(seq)) continue;
      while (k < asked.length && asked[k]!.last < seq) k++;
      const last = k < asked.length && asked[k]!.first <= seq
        ? asked[k]!.at
        : undefined;
      if (last !== undefined && now - last < repeat) continue;
      yield seq;
    }
  }

  #scheduleNack(delay: number, repeat: boolean): void {
    clearTimeout(this.#nackTimer);
    this.#nackRepeat = repeat;
    this.#nackTimer = setTimeout(() => {
      this.#nackTimer = undefined;
      this.#nack();
    }, delay);
  }

  #nack(): void {
    if (this.#closed) return;
    const now = performance.now();
    const ranges = this.#missing(now);
    if (ranges.length > 0) {
      this.#asked.mark(ranges, now);
      this.stats.nacks += 1;
      this.#send({
        type: "nack",
        session: this.#session,
        seq: this.#next - 1,
        name: this.#options.name,
        ranges,
      });
    }
    // Still missing: look again once a repair had time to arrive.
    let gap = false;
    for (let seq = this.#next; seq <= this.#high && !gap; seq++) {
      gap = !this.#has(seq);
    }
    if (gap) this.#scheduleNack(this.#options.nackRepeatMs ?? 60, true);
  }

  #scheduleAck(): void {
    if (this.#ackTimer !== undefined) return;
    this.#ackTimer = setTimeout(() => {
      this.#ackTimer = undefined;
      this.#sendAck();
    }, this.#random() * (this.#options.ackJitterMs ?? 10));
  }

  #sendAck(): void {
    const above: number[] = [];
    for (const seq of this.#held.keys()) {
      if (seq >= this.#next) above.push(seq);
    }
    above.sort((a, b) => a - b);
    this.stats.acks += 1;
    this.#send({
      type: "ack",
      session: this.#session,
      seq: this.#next - 1,
      name: this.#options.name,
      ranges: toRanges(above, MAX_RANGES),
    });
  }

  #send(frame: Frame, to = this.#sender): void {
    const sending = this.#options.send(frame, to).catch(() => {
      // Feedback is best effort: a lost frame is asked for again.
    });
    this.#sends.add(sending);
    sending.finally(() => this.#sends.delete(sending));
  }

  /** Whether `seq` is held, or known to be lost. */
  #has(seq: number): boolean {
    return this.#held.has(seq) || this.#lost.has(seq);
  }

  /** Processes every held sequence from the position on, in order. */
  async #drain(): Promise<void> {
    const out: Outcome[] = [];
    const limit = this.#options.limit ?? Infinity;
    this.#batch = 0;
    const full = () => this.stats.bulletins + this.#batch >= limit;
    while (this.#has(this.#next)) {
      const seq = this.#next;
      if (full()) break;
      const frame = this.#held.get(seq) ?? GONE;
      this.#held.delete(seq);
      this.#lost.dropThrough(seq);
      if (frame !== GONE) {
        const size = frameBytes(frame);
        this.#heldBytes -= size;
        this.#shared.budget.held -= size;
      }
      this.#asked.dropThrough(seq);
      this.#next += 1;
      if (frame === GONE) {
        if (this.#gone) this.#gone.last = seq;
        else this.#gone = { first: seq, last: seq };
        this.#dropPartial();
        this.#skipping = true;
        this.stats.unrecoverable += 1;
        continue;
      }
      this.#closeGone(out, frame.records[0]);
      for (const record of frame.records) {
        if (full()) {
          // Stop inside this datagram: a restart resumes at it and skips
          // what was delivered, and the last ACK does not claim it.
          this.#dropPartial();
          this.#resume = seq;
          this.#next = seq;
          break;
        }
        await this.#record(record, frame, out, seq);
      }
      if (full()) break;
      if (!this.#partial) this.#resume = this.#next;
    }
    if (!this.#partial && !full()) this.#resume = this.#next;
    if (out.length > 0) this.#persist(out);
  }

  /**
   * A lost range ends where the next datagram starts: every bulletin after
   * the last delivered one up to the next datagram's first (itself too if
   * it starts mid-bulletin) is lost.
   */
  #closeGone(out: Outcome[], next: DataRecord | undefined): void {
    const gone = this.#gone;
    if (!gone) return;
    this.#gone = undefined;
    let bulletins = 0;
    if (next) {
      const last = next.offset === 0 ? next.bulletin - 1 : next.bulletin;
      bulletins = Math.max(0, last - this.#delivered);
      // Skipped for good: a restart must not wait for them.
      if (last > this.#delivered) this.#delivered = last;
    }
    out.push({
      kind: "event",
      event: {
        type: "unrecoverable",
        session: this.#session,
        first: gone.first,
        last: gone.last,
        bulletins,
      },
    });
  }

  /** An incremental hash for a new partial bulletin, when there is one. */
  #hashStream(): { hash?: Sha256Stream } {
    const stream = (this.#options.hasher ?? NODE_HASHER).sha256Stream?.();
    return stream ? { hash: stream } : {};
  }

  /** Forgets an incomplete bulletin (releasing its hash). */
  #dropPartial(): void {
    this.#partial?.hash?.digest();
    this.#partial?.writer?.abort();
    this.#partial = undefined;
  }

  async #record(
    record: DataRecord,
    frame: DataFrame,
    out: Outcome[],
    seq: number,
  ): Promise<void> {
    if (record.bulletin <= this.#delivered) return;
    if (record.offset === 0) {
      if (this.#partial) {
        // The previous bulletin never completed: its tail was lost.
        this.#dropPartial();
      }
      this.#skipping = false;
      if (record.total > this.#maxSize) {
        this.#fail(out, record.bulletin, "too-large");
        this.#skipping = true;
        return;
      }
      if (record.data.length === record.total) {
        this.#ready(out, record.bulletin, record.data, frame);
        return;
      }
      // Copies: a view would keep the whole datagram alive.
      const hashing = this.#hashStream();
      const begin = this.#options.sink?.begin;
      const writer = hashing.hash && begin && record.total >= STREAM_THRESHOLD
        ? begin(this.#session, record.bulletin, record.total)
        : undefined;
      this.#partial = {
        bulletin: record.bulletin,
        total: record.total,
        digest: record.digest!,
        bytes: new Uint8Array(
          writer ? 0 : Math.min(record.total, FIRST_BUFFER),
        ),
        ...(writer ? { writer } : {}),
        ...hashing,
        received: 0,
      };
      append(this.#partial, record.data);
      this.#resume = seq;
      return;
    }
    const partial = this.#partial;
    if (
      this.#skipping || !partial || partial.bulletin !== record.bulletin ||
      partial.received !== record.offset || partial.total !== record.total
    ) {
      return;
    }
    append(partial, record.data);
    if (partial.received < partial.total) return;
    this.#partial = undefined;
    const payload = partial.bytes;
    const digest = partial.hash
      ? partial.hash.digest()
      : await (this.#options.hasher ?? NODE_HASHER).sha256(payload);
    if (!equalBytes(digest, partial.digest)) {
      partial.writer?.abort();
      this.#fail(out, partial.bulletin, "digest");
      return;
    }
    const written = partial.writer
      ? { writer: partial.writer, size: partial.total }
      : undefined;
    this.#ready(out, partial.bulletin, payload, frame, written);
  }

  #ready(
    out: Outcome[],
    bulletin: number,
    payload: Uint8Array,
    frame: DataFrame,
    written?: { writer: BulletinWriter; size: number },
  ): void {
    this.#delivered = bulletin;
    this.#batch += 1;
    out.push({
      kind: "bulletin",
      bulletin,
      payload,
      ...(written ? { written } : {}),
      sentAt: frame.timestamp,
    });
  }

  #fail(
    out: Outcome[],
    bulletin: number,
    reason: "digest" | "too-large",
  ): void {
    this.stats.failed += 1;
    this.#delivered = bulletin;
    out.push({
      kind: "event",
      event: {
        type: "bulletin-failed",
        session: this.#session,
        number: bulletin,
        reason,
      },
    });
  }

  /** Writes, saves the position, then reports: a crash repeats nothing. */
  #persist(out: Outcome[]): void {
    const session = this.#session;
    const sink = this.#options.sink;
    const paths = out.map((item) =>
      item.kind !== "bulletin"
        ? undefined
        : item.written
        ? item.written.writer.commit()
        : sink?.write?.(session, item.bulletin, item.payload)
    );
    this.#shared.save(this.position);
    const from = this.#sender;
    out.forEach((item, k) => {
      if (item.kind === "event") {
        this.#shared.emit(item.event);
        return;
      }
      this.stats.bulletins += 1;
      this.stats.bytes += item.written?.size ?? item.payload.length;
      const event: ReceiverEvent = {
        type: "bulletin",
        session,
        number: item.bulletin,
        from,
        payload: item.payload,
        ...(item.written ? { size: item.written.size } : {}),
        sentAt: item.sentAt,
      };
      const path = paths[k];
      if (path !== undefined) event.path = path;
      this.#shared.emit(event);
    });
  }
}

/** What {@linkcode ReliableReceiver.handle} returns when it has nothing to wait for. */
const DONE: Promise<void> = Promise.resolve();

/** Default of {@linkcode ReliableReceiverOptions.maxSessions}. */
export const DEFAULT_MAX_SESSIONS = 4;
/** Sessions dropped to make room whose frames are still recognised. */
const RETIRED = 64;

/**
 * One receiver's protocol state: the sessions it follows, each with its
 * own ordering, gaps, NACKs and reassembly, within shared bounds (at most
 * `maxSessions` sessions; `maxHeldBytes` held out of order by all of them
 * together). Feed it with {@linkcode handle}; it emits `session`,
 * `bulletin`, `unrecoverable` and `bulletin-failed` events and sends HELLO,
 * ACK, NACK and BYE frames to each session's sender.
 */
export class ReliableReceiver {
  readonly #options: ReliableReceiverOptions;
  readonly #shared: Shared;
  readonly #maxSessions: number;
  readonly #sessions = new Map<string, SessionReceiver>();
  /** Sessions dropped to make room, newest last: never followed again. */
  readonly #retired: string[] = [];
  /** Saved positions of sessions not (yet) followed in this run. */
  readonly #saved = new Map<string, SessionPosition>();
  /** Frames handled: the clock of "least recently heard". */
  #clock = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** What it counted so far: the statistics line and `stopped` event. */
  readonly stats: ReceiverStats;

  /**
   * Creates one.
   *
   * @param options Name, feedback path, event sink and tuning.
   */
  constructor(options: ReliableReceiverOptions) {
    this.#options = options;
    this.#maxSessions = Math.max(
      1,
      options.maxSessions ?? DEFAULT_MAX_SESSIONS,
    );
    this.stats = {
      name: options.name,
      data: 0,
      bulletins: 0,
      bytes: 0,
      duplicates: 0,
      repaired: 0,
      unrecoverable: 0,
      failed: 0,
      nacks: 0,
      acks: 0,
      dropped: options.dropped ?? emptyDrops(),
    };
    if (options.paths) this.stats.paths = options.paths;
    const state = options.state;
    if (state) {
      for (const position of [state, ...(state.sessions ?? [])]) {
        if (this.#saved.size >= this.#maxSessions) break;
        this.#saved.set(position.session, {
          session: position.session,
          next: position.next,
          delivered: position.delivered,
        });
      }
    }
    this.#shared = {
      options,
      stats: this.stats,
      budget: { held: 0 },
      emit: (event) => this.#emit(event),
      save: (position) => this.#save(position),
    };
  }

  /** Bulletins delivered so far, in all sessions. */
  get delivered(): number {
    return this.stats.bulletins;
  }

  /** The sessions followed now, least recently heard first. */
  get sessions(): string[] {
    return [...this.#sessions.values()]
      .sort((a, b) => a.heard - b.heard)
      .map((session) => session.session);
  }

  /**
   * Counts a datagram that carried the magic but could not be decoded.
   *
   * @param reason Why it was dropped.
   */
  invalid(reason: InvalidReason): void {
    this.stats.dropped[reason] += 1;
  }

  /**
   * Processes one frame. Resolves once any bulletins it completed were
   * delivered (digests are checked asynchronously). The frame's bytes are
   * kept (held out of order, delivered as payloads): they must not be
   * reused by the caller.
   *
   * @param frame A decoded frame.
   * @param from Where it came from.
   */
  handle(frame: Frame, from: Peer): Promise<void> {
    // Not async: the session's promise is returned as it is, without one
    // more per frame (a storm of datagrams makes garbage enough).
    if (this.#closed) return DONE;
    if (
      frame.type !== "data" && frame.type !== "heartbeat" &&
      frame.type !== "gone"
    ) {
      this.stats.dropped.unexpected += 1;
      return DONE;
    }
    let session = this.#sessions.get(frame.session);
    if (session === undefined) {
      // A session dropped to make room never comes back (a late repair
      // must not pull it back), and a GONE answers someone else's NACK.
      if (frame.type === "gone" || this.#retired.includes(frame.session)) {
        this.stats.dropped.unexpected += 1;
        return DONE;
      }
      session = this.#follow(frame, from);
    }
    session.heard = ++this.#clock;
    this.stats.session = frame.session;
    return session.handle(frame, from);
  }

  /** Joins a new session, dropping the least recently heard when full. */
  #follow(
    frame: DataFrame | Frame & { type: "heartbeat" },
    from: Peer,
  ): SessionReceiver {
    const saved = this.#saved.get(frame.session);
    this.#saved.delete(frame.session);
    let session: SessionReceiver;
    if (this.#sessions.size >= this.#maxSessions) {
      let oldest: SessionReceiver | undefined;
      for (const candidate of this.#sessions.values()) {
        if (oldest === undefined || candidate.heard < oldest.heard) {
          oldest = candidate;
        }
      }
      session = oldest!;
      session.drop();
      this.#sessions.delete(session.session);
      this.#retired.push(session.session);
      if (this.#retired.length > RETIRED) this.#retired.shift();
      session.restart({ frame, from, saved });
    } else {
      session = new SessionReceiver(this.#shared, { frame, from, saved });
    }
    this.#sessions.set(frame.session, session);
    return session;
  }

  /**
   * Drops a DATA datagram of a followed session from its header alone
   * when it is a duplicate or too far ahead to hold, counted as
   * {@linkcode handle} would count it: decoding its records would be
   * wasted work (a flood of large datagrams would otherwise cost memory and
   * time to decode and then drop).
   *
   * @param head The datagram's session and sequence number.
   * @param size The datagram's size in bytes.
   * @returns Whether it was dropped.
   */
  screen(head: DataHeader, size: number): boolean {
    if (this.#closed) return false;
    return this.#sessions.get(head.session)?.screen(head, size) ?? false;
  }

  /**
   * Stops: cancels timers, tells each session's sender it leaves (ACK then
   * BYE with its position), and waits for those sends.
   */
  close(options: ReceiverCloseOptions = {}): Promise<void> {
    // A second call (a signal, then the receive loop's own end) waits for
    // the same farewells.
    return this.#closing ??= this.#close(options);
  }

  async #close(options: ReceiverCloseOptions): Promise<void> {
    this.#closed = true;
    await Promise.all(
      this.sessions.map((id) => this.#sessions.get(id)!.close(options)),
    );
  }

  /**
   * Passes an event on. A bulletin's, a loss's or a discard's event says
   * when its sender's address does not tell its session, with others
   * followed at the same time: another session speaks from the same
   * address, or this one moved (a standby took it over) from the address
   * it was joined from. The text names the session then.
   */
  #emit(event: ReceiverEvent): void {
    if (
      (event.type === "bulletin" || event.type === "unrecoverable" ||
        event.type === "bulletin-failed") && this.#sessions.size > 1
    ) {
      const session = this.#sessions.get(event.session);
      if (session && this.#ambiguous(session)) event.concurrent = true;
    }
    this.#options.onEvent(event);
  }

  #ambiguous(session: SessionReceiver): boolean {
    const from = session.sender;
    if (!samePeer(from, session.joinedFrom)) return true;
    for (const other of this.#sessions.values()) {
      if (other !== session && samePeer(other.sender, from)) return true;
    }
    return false;
  }

  /**
   * Saves the position: that of the session that just delivered, with
   * those of the others it follows (or has saved and not heard yet).
   */
  #save(position: SessionPosition): void {
    const save = this.#options.sink?.save;
    if (!save) return;
    const others: SessionPosition[] = [];
    for (const session of this.#sessions.values()) {
      if (session.session !== position.session) others.push(session.position);
    }
    for (const saved of this.#saved.values()) {
      if (others.length + 1 >= this.#maxSessions) break;
      others.push(saved);
    }
    const state: ReceiverState = {
      version: 1,
      session: position.session,
      next: position.next,
      delivered: position.delivered,
      name: this.#options.name,
    };
    if (others.length > 0) state.sessions = others;
    save(state);
  }
}

function samePeer(a: Peer, b: Peer): boolean {
  return a.address === b.address && a.port === b.port &&
    a.scopeId === b.scopeId;
}

/** Default of {@linkcode ReliableReceiverOptions.maxHeldBytes}. */
const DEFAULT_MAX_HELD = 16 * 1024 * 1024;

/**
 * Memory a held DATA frame keeps alive: the datagram its records are views
 * of, and the decoded records (measured at about 190 bytes each, 370 with a
 * digest).
 */
function frameBytes(frame: DataFrame): number {
  let size = 256 + (frame.records[0]?.data.buffer.byteLength ?? 0);
  for (const record of frame.records) size += record.digest ? 400 : 200;
  return size;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}
