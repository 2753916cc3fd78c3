/**
 * The bridge's upstream side at the datagram level: which sequence numbers
 * of the followed session it holds (forwarded, and confirmed by the
 * downstream leg), which it misses, and what its ACK and NACK frames say.
 * Pure decide steps, no timers and no sockets: the relay (`relay.ts`) acts
 * on what they return.
 *
 * Unlike `ReliableReceiver`, which reassembles and delivers bulletins, the
 * tracker deals in whole datagrams: a bridge forwards datagrams verbatim and
 * never needs their records.
 *
 * @module
 */

import { MAX_RANGES, type SeqRange } from "../wire/frame.ts";
import { toRanges } from "../wire/ranges.ts";

/** Where a tracker starts when it meets a session. */
export interface TrackerStart {
  /** The session id. */
  session: string;
  /** The first sequence number to hold (1 or more). */
  next: number;
}

/** What {@linkcode UpstreamTracker.data} decided about a DATA datagram. */
export type DataVerdict =
  /** Not held yet: forward it, then {@linkcode UpstreamTracker.confirm}. */
  | "new"
  /** Held (or being forwarded) already. */
  | "duplicate"
  /** Too far ahead of what is held: dropped, asked for again later. */
  | "ahead"
  /** Of another session than the one followed: {@linkcode UpstreamTracker.join} first. */
  | "session";

/** Options of {@linkcode UpstreamTracker}. */
export interface UpstreamTrackerOptions {
  /** How far past its position a DATA frame may be (default 65536). */
  maxAhead?: number;
  /** Wait before asking again for a still-missing sequence, in ms (default 60). */
  nackRepeatMs?: number;
}

/** A sequence number's state above the cumulative position. */
const PENDING = 1;
const HELD = 2;

/**
 * One session's datagram-level receiver state, for a bridge: sequence
 * numbers move from missing to pending (forwarded, not yet confirmed by
 * the downstream leg) to held; the cumulative ACK covers what is held
 * without a gap.
 */
export class UpstreamTracker {
  readonly #maxAhead: number;
  readonly #repeatMs: number;
  #session: string | undefined;
  /** First sequence not held. */
  #next = 1;
  /** Highest sequence known to exist. */
  #high = 0;
  /** Sequences at or above `#next`: pending or held. */
  #state = new Map<number, number>();
  /** When each missing sequence was last asked for. */
  #asked = new Map<number, number>();
  /** Sessions followed before, newest last: never followed again. */
  #retired: string[] = [];

  /**
   * Creates one.
   *
   * @param options Limits and timers.
   */
  constructor(options: UpstreamTrackerOptions = {}) {
    this.#maxAhead = options.maxAhead ?? 65536;
    this.#repeatMs = options.nackRepeatMs ?? 60;
  }

  /** The followed session, if any. */
  get session(): string | undefined {
    return this.#session;
  }

  /** The first sequence not held: the cumulative ACK is one less. */
  get next(): number {
    return this.#next;
  }

  /** The highest sequence known to exist. */
  get high(): number {
    return this.#high;
  }

  /**
   * Whether a session may be joined: not one followed before.
   *
   * @param session A session id.
   * @returns False for a session this tracker moved on from.
   */
  canJoin(session: string): boolean {
    return session !== this.#session && !this.#retired.includes(session);
  }

  /**
   * Follows a session from `start.next` on, forgetting the previous one.
   *
   * @param start The session and where to start.
   */
  join(start: TrackerStart): void {
    if (this.#session !== undefined) {
      this.#retired.push(this.#session);
      if (this.#retired.length > 16) this.#retired.shift();
    }
    this.#session = start.session;
    this.#next = Math.max(1, start.next);
    this.#high = this.#next - 1;
    this.#state.clear();
    this.#asked.clear();
  }

  /**
   * Decides about a DATA datagram of `session`; a new one is marked
   * pending.
   *
   * @param session Its session.
   * @param seq Its sequence number.
   * @returns What to do with it.
   */
  data(session: string, seq: number): DataVerdict {
    if (session !== this.#session) return "session";
    if (seq < this.#next || this.#state.has(seq)) return "duplicate";
    if (seq > this.#next + this.#maxAhead) return "ahead";
    this.#state.set(seq, PENDING);
    this.#asked.delete(seq);
    this.see(seq);
    return "new";
  }

  /**
   * Sequence `seq` exists (a heartbeat's highest sent, a DATA frame).
   *
   * @param seq The sequence number.
   */
  see(seq: number): void {
    const high = Math.min(seq, this.#next + this.#maxAhead);
    if (high > this.#high) this.#high = high;
  }

  /**
   * The downstream leg holds `seq` (multicast and held, or confirmed by a
   * pipe): it counts in the ACK.
   *
   * @param seq A sequence number {@linkcode data} called new.
   * @returns Whether the cumulative position moved.
   */
  confirm(seq: number): boolean {
    if (!this.#state.has(seq)) return false;
    this.#state.set(seq, HELD);
    return this.#advance();
  }

  /**
   * The sender no longer holds these sequences: those missing are given
   * up (the far receivers learn it from the forwarded GONE frame).
   *
   * @param ranges The GONE frame's ranges.
   * @returns Whether the cumulative position moved.
   */
  gone(ranges: readonly SeqRange[]): boolean {
    for (const range of ranges) {
      const first = Math.max(range.first, this.#next);
      const last = Math.min(range.last, this.#high);
      for (let seq = first; seq <= last; seq++) {
        if (!this.#state.has(seq)) this.#state.set(seq, HELD);
      }
    }
    return this.#advance();
  }

  #advance(): boolean {
    const before = this.#next;
    while (this.#state.get(this.#next) === HELD) {
      this.#state.delete(this.#next);
      this.#asked.delete(this.#next);
      this.#next += 1;
    }
    return this.#next !== before;
  }

  /**
   * What a NACK asks for now: the sequences up to the highest known that
   * were never received, leaving out those asked for within the repeat
   * time; they are marked asked.
   *
   * @param now The clock, in ms.
   * @returns The ranges (at most `MAX_RANGES`), empty when nothing is due.
   */
  nack(now: number): SeqRange[] {
    const missing: number[] = [];
    for (let seq = this.#next; seq <= this.#high; seq++) {
      if (this.#state.has(seq)) continue;
      const last = this.#asked.get(seq);
      if (last !== undefined && now - last < this.#repeatMs) continue;
      missing.push(seq);
    }
    const ranges = toRanges(missing, MAX_RANGES);
    for (const range of ranges) {
      for (let seq = range.first; seq <= range.last; seq++) {
        this.#asked.set(seq, now);
      }
    }
    return ranges;
  }

  /** Whether any sequence up to the highest known was never received. */
  get gap(): boolean {
    for (let seq = this.#next; seq <= this.#high; seq++) {
      if (!this.#state.has(seq)) return true;
    }
    return false;
  }

  /**
   * The selective part of an ACK: held sequences above the cumulative
   * position.
   *
   * @returns The ranges (at most `MAX_RANGES`).
   */
  selective(): SeqRange[] {
    const held: number[] = [];
    for (const [seq, state] of this.#state) if (state === HELD) held.push(seq);
    held.sort((a, b) => a - b);
    return toRanges(held, MAX_RANGES);
  }
}
