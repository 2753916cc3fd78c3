/**
 * The receiving side of the reliable protocol: a state machine fed with the
 * frames of one sender's session. It delivers bulletins in order and
 * exactly once, repairs gaps by NACK (random back-off, suppressed by
 * overheard repairs), acknowledges cumulatively in answer to heartbeats, and
 * reports what can no longer be repaired.
 *
 * @module
 */

import type { Peer } from "./address.ts";
import type { ReceiverEvent } from "./events.ts";
import {
  type DataFrame,
  type DataRecord,
  type Frame,
  type InvalidReason,
  MAX_RANGES,
} from "./frame.ts";
import { toRanges } from "./ranges.ts";
import type { ReceiverState } from "./state.ts";
import { emptyDrops, type ReceiverStats } from "./stats.ts";

/** How a {@linkcode ReliableReceiver} sends its feedback frames. */
export type FrameSender = (frame: Frame, to: Peer) => Promise<void>;

/** Where delivered bulletins are persisted before they are reported. */
export interface DeliverySink {
  /** Writes a bulletin (e.g. to `--output DIR`); returns where it went. */
  write?: (session: string, number: number, payload: Uint8Array) => string;
  /** Saves the receiver's position (`--state FILE`). */
  save?: (state: ReceiverState) => void;
}

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
  /** Most payload bytes held out of order, waiting for a gap to fill (default 32 MiB). */
  maxHeldBytes?: number;
  /** Deliver at most this many bulletins (`--count`), then stop. */
  limit?: number;
  /** Random numbers in [0, 1); defaults to `Math.random`. */
  random?: () => number;
}

/** A gap marker: the sender no longer holds this sequence. */
const GONE = null;

interface Partial {
  bulletin: number;
  total: number;
  digest: Uint8Array;
  chunks: Uint8Array[];
  received: number;
}

interface Pending {
  bulletin: number;
  payload: Uint8Array;
  sentAt: number;
}

/**
 * One receiver's protocol state. Feed it with {@linkcode handle}; it emits
 * `session`, `bulletin`, `unrecoverable` and `bulletin-failed` events and
 * sends HELLO, ACK, NACK and BYE frames to the sender.
 */
export class ReliableReceiver {
  readonly #options: ReliableReceiverOptions;
  readonly #random: () => number;
  readonly #maxSize: number;
  readonly #maxAhead: number;
  #session: string | undefined;
  #sender: Peer | undefined;
  /** First sequence not yet processed. */
  #next = 0;
  /** Highest sequence known to exist. */
  #high = 0;
  /** Highest bulletin delivered; records at or below it are skipped. */
  #delivered = 0;
  /** First sequence of the bulletin being reassembled (resume point). */
  #resume = 0;
  #held = new Map<number, DataFrame | typeof GONE>();
  #heldBytes = 0;
  #partial: Partial | undefined;
  /** Skip fragments until the next bulletin starts. */
  #skipping = false;
  #lastNack = new Map<number, number>();
  #nackTimer: ReturnType<typeof setTimeout> | undefined;
  #nackRepeat = false;
  #ackTimer: ReturnType<typeof setTimeout> | undefined;
  #sends = new Set<Promise<void>>();
  #closed = false;
  readonly stats: ReceiverStats;

  /** @param options Name, feedback path, event sink and tuning. */
  constructor(options: ReliableReceiverOptions) {
    this.#options = options;
    this.#random = options.random ?? Math.random;
    this.#maxSize = options.maxSize ?? 16 * 1024 * 1024;
    this.#maxAhead = options.maxAhead ?? 65536;
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
      dropped: emptyDrops(),
    };
  }

  /** Bulletins delivered so far. */
  get delivered(): number {
    return this.stats.bulletins;
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
   * delivered (digests are checked asynchronously).
   *
   * @param frame A decoded frame.
   * @param from Where it came from.
   */
  async handle(frame: Frame, from: Peer): Promise<void> {
    if (this.#closed) return;
    if (
      frame.type !== "data" && frame.type !== "heartbeat" &&
      frame.type !== "gone"
    ) {
      this.stats.dropped.unexpected += 1;
      return;
    }
    if (frame.session !== this.#session) {
      if (frame.type === "gone") {
        this.stats.dropped.unexpected += 1;
        return;
      }
      this.#join(frame, from);
    }
    this.#sender = from;
    switch (frame.type) {
      case "data":
        this.#data(frame);
        break;
      case "heartbeat":
        this.#forget(frame.low);
        this.#see(frame.seq);
        this.#scheduleAck();
        break;
      case "gone":
        for (const range of frame.ranges) {
          const first = Math.max(range.first, this.#next);
          const last = Math.min(range.last, first + this.#maxAhead);
          for (let seq = first; seq <= last; seq++) {
            if (!this.#held.has(seq)) this.#held.set(seq, GONE);
          }
          this.#see(last);
        }
        break;
    }
    await this.#drain();
    if (this.#high >= this.#next) this.#armNack();
  }

  /**
   * Stops: cancels timers, tells the sender it leaves (ACK then BYE with its
   * position), and waits for those sends.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#nackTimer);
    clearTimeout(this.#ackTimer);
    if (this.#session !== undefined && this.#sender !== undefined) {
      this.#sendAck();
      this.#send({
        type: "bye",
        session: this.#session,
        seq: this.#next - 1,
        name: this.#options.name,
      });
    }
    await Promise.allSettled([...this.#sends]);
  }

  #join(frame: DataFrame | Frame & { type: "heartbeat" }, from: Peer): void {
    const saved = this.#options.state;
    const resumed = saved?.session === frame.session;
    let start: number;
    if (resumed) {
      start = saved!.next;
      this.#delivered = saved!.delivered;
    } else if (this.#options.fromStart) {
      start = Math.max(1, frame.low);
      this.#delivered = 0;
    } else {
      start = frame.type === "heartbeat" ? frame.seq + 1 : frame.seq;
      this.#delivered = 0;
    }
    this.#session = frame.session;
    this.stats.session = frame.session;
    this.#next = start;
    this.#resume = start;
    this.#high = start - 1;
    this.#held.clear();
    this.#heldBytes = 0;
    this.#lastNack.clear();
    this.#partial = undefined;
    // A bulletin that began before the start cannot be completed.
    this.#skipping = !resumed;
    this.#options.onEvent({
      type: "session",
      session: frame.session,
      from,
      start,
      resumed,
    });
    this.#send({
      type: "hello",
      session: frame.session,
      seq: start - 1,
      name: this.#options.name,
      fromStart: this.#options.fromStart === true,
    }, from);
  }

  #data(frame: DataFrame): void {
    this.stats.data += 1;
    const seq = frame.seq;
    if (seq < this.#next || this.#held.has(seq)) {
      this.stats.duplicates += 1;
      return;
    }
    const size = frameBytes(frame);
    if (
      seq > this.#next + this.#maxAhead ||
      (seq > this.#next &&
        this.#heldBytes + size > (this.#options.maxHeldBytes ?? 32 << 20))
    ) {
      // Too far ahead to hold: it is asked for again once the gap closes.
      this.stats.dropped.ahead += 1;
      return;
    }
    this.#heldBytes += size;
    if (seq <= this.#high) this.stats.repaired += 1;
    // Data arrives in a reused receive buffer upstream: keep a copy.
    this.#held.set(seq, frame);
    this.#forget(frame.low);
    this.#see(seq);
  }

  /** The sender holds nothing below `low`: what is missing there is gone. */
  #forget(low: number): void {
    const last = Math.min(low - 1, this.#next + this.#maxAhead);
    for (let seq = this.#next; seq <= last; seq++) {
      if (!this.#held.has(seq)) this.#held.set(seq, GONE);
    }
    if (last > this.#high) this.#high = last;
  }

  /** Sequence `seq` exists: anything missing up to it is a gap. */
  #see(seq: number): void {
    if (seq > this.#high) {
      this.#high = Math.min(seq, this.#next + this.#maxAhead);
    }
  }

  /**
   * There is a gap: NACK after a random back-off, unless a NACK is due
   * sooner. A repeat timer is cut short when a new gap appears.
   */
  #armNack(): void {
    if (this.#nackTimer !== undefined && !this.#nackRepeat) return;
    if (this.#nackRepeat) {
      let fresh = false;
      for (let seq = this.#next; seq <= this.#high && !fresh; seq++) {
        fresh = !this.#held.has(seq) && !this.#lastNack.has(seq);
      }
      if (!fresh) return;
    }
    this.#scheduleNack(
      this.#random() * (this.#options.nackBackoffMs ?? 10),
      false,
    );
  }

  #missing(now: number): number[] {
    const repeat = this.#options.nackRepeatMs ?? 60;
    const missing: number[] = [];
    for (let seq = this.#next; seq <= this.#high; seq++) {
      if (this.#held.has(seq)) continue;
      const last = this.#lastNack.get(seq);
      if (last !== undefined && now - last < repeat) continue;
      missing.push(seq);
    }
    return missing;
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
    if (this.#closed || this.#session === undefined) return;
    const now = performance.now();
    const missing = this.#missing(now);
    if (missing.length > 0) {
      const ranges = toRanges(missing, MAX_RANGES);
      for (const range of ranges) {
        for (let seq = range.first; seq <= range.last; seq++) {
          this.#lastNack.set(seq, now);
        }
      }
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
      gap = !this.#held.has(seq);
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
    if (this.#session === undefined) return;
    const above: number[] = [];
    for (const [seq, frame] of this.#held) {
      if (frame !== GONE && seq >= this.#next) above.push(seq);
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
    if (to === undefined) return;
    const sending = this.#options.send(frame, to).catch(() => {
      // Feedback is best effort: a lost frame is asked for again.
    });
    this.#sends.add(sending);
    sending.finally(() => this.#sends.delete(sending));
  }

  /** Processes every held sequence from the position on, in order. */
  async #drain(): Promise<void> {
    const ready: Pending[] = [];
    const session = this.#session!;
    let goneFirst = 0;
    let goneBulletins = 0;
    const gone: { first: number; last: number; bulletins: number }[] = [];
    const limit = this.#options.limit ?? Infinity;
    while (this.#held.has(this.#next)) {
      const seq = this.#next;
      if (this.stats.bulletins + ready.length >= limit) break;
      const frame = this.#held.get(seq)!;
      this.#held.delete(seq);
      if (frame !== GONE) this.#heldBytes -= frameBytes(frame);
      this.#lastNack.delete(seq);
      this.#next += 1;
      if (frame === GONE) {
        if (goneFirst === 0) goneFirst = seq;
        if (this.#partial) {
          goneBulletins += 1;
          this.#partial = undefined;
        }
        this.#skipping = true;
        this.stats.unrecoverable += 1;
        continue;
      }
      if (goneFirst !== 0) {
        gone.push({
          first: goneFirst,
          last: seq - 1,
          bulletins: goneBulletins,
        });
        goneFirst = 0;
        goneBulletins = 0;
      }
      for (const record of frame.records) {
        if (this.stats.bulletins + ready.length >= limit) {
          // Stop inside this datagram: a restart resumes at it and skips
          // what was delivered.
          this.#partial = undefined;
          this.#resume = seq;
          break;
        }
        await this.#record(record, frame, ready, seq);
      }
      if (this.stats.bulletins + ready.length >= limit) break;
      if (!this.#partial) this.#resume = this.#next;
    }
    if (goneFirst !== 0) {
      gone.push({
        first: goneFirst,
        last: this.#next - 1,
        bulletins: goneBulletins,
      });
    }
    if (!this.#partial && this.stats.bulletins + ready.length < limit) {
      this.#resume = this.#next;
    }
    for (const range of gone) {
      this.#options.onEvent({ type: "unrecoverable", session, ...range });
    }
    if (ready.length > 0 || gone.length > 0) this.#persist(ready);
  }

  async #record(
    record: DataRecord,
    frame: DataFrame,
    ready: Pending[],
    seq: number,
  ): Promise<void> {
    if (record.bulletin <= this.#delivered) return;
    if (record.offset === 0) {
      if (this.#partial) {
        // The previous bulletin never completed: its tail was lost.
        this.#partial = undefined;
      }
      this.#skipping = false;
      if (record.total > this.#maxSize) {
        this.#fail(record.bulletin, "too-large");
        this.#skipping = true;
        return;
      }
      if (record.data.length === record.total) {
        this.#ready(ready, record.bulletin, record.data.slice(), frame);
        return;
      }
      this.#partial = {
        bulletin: record.bulletin,
        total: record.total,
        digest: record.digest!.slice(),
        chunks: [record.data.slice()],
        received: record.data.length,
      };
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
    partial.chunks.push(record.data.slice());
    partial.received += record.data.length;
    if (partial.received < partial.total) return;
    this.#partial = undefined;
    const payload = new Uint8Array(partial.total);
    let at = 0;
    for (const chunk of partial.chunks) {
      payload.set(chunk, at);
      at += chunk.length;
    }
    const digest = new Uint8Array(
      await crypto.subtle.digest("SHA-256", payload),
    );
    if (!equalBytes(digest, partial.digest)) {
      this.#fail(partial.bulletin, "digest");
      return;
    }
    this.#ready(ready, partial.bulletin, payload, frame);
  }

  #ready(
    ready: Pending[],
    bulletin: number,
    payload: Uint8Array,
    frame: DataFrame,
  ): void {
    this.#delivered = bulletin;
    ready.push({ bulletin, payload, sentAt: frame.timestamp });
  }

  #fail(bulletin: number, reason: "digest" | "too-large"): void {
    this.stats.failed += 1;
    this.#delivered = bulletin;
    this.#options.onEvent({
      type: "bulletin-failed",
      session: this.#session!,
      number: bulletin,
      reason,
    });
  }

  /** Writes, saves the position, then reports: a crash repeats nothing. */
  #persist(ready: Pending[]): void {
    const session = this.#session!;
    const sink = this.#options.sink;
    const paths = ready.map((item) =>
      sink?.write?.(session, item.bulletin, item.payload)
    );
    sink?.save?.({
      version: 1,
      session,
      next: this.#resume,
      delivered: this.#delivered,
      name: this.#options.name,
    });
    const from = this.#sender!;
    ready.forEach((item, k) => {
      this.stats.bulletins += 1;
      this.stats.bytes += item.payload.length;
      const event: ReceiverEvent = {
        type: "bulletin",
        session,
        number: item.bulletin,
        from,
        payload: item.payload,
        sentAt: item.sentAt,
      };
      const path = paths[k];
      if (path !== undefined) event.path = path;
      this.#options.onEvent(event);
    });
  }
}

/** Payload bytes a held DATA frame keeps alive, plus its bookkeeping. */
function frameBytes(frame: DataFrame): number {
  let size = 64;
  for (const record of frame.records) size += 48 + record.data.length;
  return size;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}
