/**
 * Hot standby (`mcast-send --reliable --standby`): a second sender, on
 * another host with the same input, follows the primary's session on the
 * group without a word. It hears the primary's DATA frames and HEARTBEATs,
 * as every receiver does, and keeps the DATA datagrams (within `--buffer`)
 * to repair from. When the primary has been silent for `--takeover`, it
 * takes the session over: the same session id, the next sequence number,
 * and the first bulletin the primary did not complete in what it heard; it
 * skips that many bulletins of its input and sends the rest. Receivers see
 * the same session continue from another address and deliver nothing
 * twice: a bulletin is delivered once per number, whoever sent it.
 *
 * {@linkcode StandbyFollower} is the pure decide step (what the standby
 * knows, when to take over, from where); {@linkcode followSession} the thin
 * act step around a socket.
 *
 * @module
 */

import type { Group, Peer } from "../net/address.ts";
import type { ReliableSenderEvent } from "../events.ts";
import type { DatagramEndpoint } from "../net/socket.ts";
import {
  type DataFrame,
  decodeFrame,
  type Frame,
  nowMicros,
} from "../wire/frame.ts";
import type { DropCounts } from "./stats.ts";

/** Default of {@linkcode FollowSessionOptions.takeoverMs}. */
export const DEFAULT_TAKEOVER_MS = 1000;

/** What a standby learned of the primary's session, to take it over. */
export interface Handover {
  /** The session id. */
  session: string;
  /** Where the primary sent from. */
  from: Peer;
  /** The next sequence number: one past the highest the primary sent. */
  nextSeq: number;
  /**
   * The first bulletin the standby sends: one past the last bulletin
   * completed in the datagrams it holds without a gap (a bulletin the
   * primary left half sent is sent again whole, under its number).
   */
  nextBulletin: number;
  /** The primary's DATA datagrams it holds for repairs, by ascending sequence. */
  packets: Uint8Array[];
  /** The primary's latest send time heard, µs since the Unix epoch. */
  lastStamp: number;
  /** How long the primary had been silent when the standby took over, in ms. */
  silenceMs: number;
}

/**
 * The highest bulletin a DATA frame's records complete: that of the last
 * record that ends its bulletin (records go in bulletin order).
 *
 * @param frame A DATA frame.
 * @returns The bulletin number, or 0 when no record ends one.
 */
export function completedBulletin(frame: DataFrame): number {
  let completes = 0;
  for (const record of frame.records) {
    if (record.offset + record.data.length === record.total) {
      completes = record.bulletin;
    }
  }
  return completes;
}

/** Options of {@linkcode StandbyFollower}. */
export interface StandbyFollowerOptions {
  /** Bytes of the primary's datagrams kept for repairs (default 8 MiB). */
  bufferBytes?: number;
}

interface HeldDatagram {
  bytes: Uint8Array;
  /** The highest bulletin a record of it completes (0: none). */
  completes: number;
}

/**
 * What a standby knows of the primary's session, fed with the frames it
 * hears: the session (the first one heard), the highest sequence number,
 * the datagrams, the last send time, and when it last heard the primary.
 */
export class StandbyFollower {
  readonly #bufferBytes: number;
  #session: string | undefined;
  #from: Peer | undefined;
  #heardAt = 0;
  #high = 0;
  #lastStamp = 0;
  #held = new Map<number, HeldDatagram>();
  #heldBytes = 0;
  /** No held datagram is older: where {@linkcode #trim} looks first. */
  #oldest = Infinity;
  #low = 1;

  /**
   * Creates one that has heard nothing yet.
   *
   * @param options The buffer's size.
   */
  constructor(options: StandbyFollowerOptions = {}) {
    this.#bufferBytes = options.bufferBytes ?? 8 * 1024 * 1024;
  }

  /** The session followed, once one was heard. */
  get session(): string | undefined {
    return this.#session;
  }

  /** Datagrams held for repairs. */
  get held(): number {
    return this.#held.size;
  }

  /**
   * Takes in one frame heard on the group.
   *
   * @param frame The decoded frame.
   * @param bytes Its encoded bytes (kept, for a DATA frame: not to be reused).
   * @param from Where it came from.
   * @param now The clock, in ms.
   * @returns `joined` for the first frame of the session it then follows,
   * `heard` for a later one of that session, `ignored` for anything else
   * (another session, feedback, GONE).
   */
  observe(
    frame: Frame,
    bytes: Uint8Array,
    from: Peer,
    now: number,
  ): "joined" | "heard" | "ignored" {
    if (frame.type !== "data" && frame.type !== "heartbeat") return "ignored";
    let joined = false;
    if (this.#session === undefined) {
      this.#session = frame.session;
      joined = true;
    } else if (frame.session !== this.#session) {
      return "ignored";
    }
    this.#from = from;
    this.#heardAt = now;
    this.#high = Math.max(this.#high, frame.seq);
    this.#lastStamp = Math.max(this.#lastStamp, frame.timestamp);
    if (frame.type === "data" && frame.seq >= this.#low) {
      const old = this.#held.get(frame.seq);
      if (old === undefined) {
        const completes = completedBulletin(frame);
        this.#held.set(frame.seq, { bytes, completes });
        this.#heldBytes += bytes.length;
        this.#oldest = Math.min(this.#oldest, frame.seq);
        this.#trim();
      }
    }
    return joined ? "joined" : "heard";
  }

  /**
   * Forgets the oldest datagrams beyond the buffer: walks up from the
   * oldest, not through a sorted copy of every sequence held (that was a
   * sort of the whole buffer at every datagram once it was full).
   */
  #trim(): void {
    let seq = this.#oldest;
    while (this.#heldBytes > this.#bufferBytes) {
      const held = this.#held.get(seq);
      if (held !== undefined) {
        this.#heldBytes -= held.bytes.length;
        this.#held.delete(seq);
        this.#low = seq + 1;
      }
      seq++;
    }
    this.#oldest = seq;
  }

  /**
   * How long the followed session has been silent.
   *
   * @param now The clock, in ms.
   * @returns Milliseconds, or `undefined` before any session was heard.
   */
  silence(now: number): number | undefined {
    return this.#session === undefined ? undefined : now - this.#heardAt;
  }

  /**
   * Whether to take over: a session was heard, and nothing of it for
   * `takeoverMs`.
   *
   * @param now The clock, in ms.
   * @param takeoverMs The silence that makes the standby take over.
   * @returns Whether it is time.
   */
  due(now: number, takeoverMs: number): boolean {
    const silence = this.silence(now);
    return silence !== undefined && silence >= takeoverMs;
  }

  /**
   * What the standby takes over with: the next sequence number after the
   * highest heard, the first bulletin not completed in the datagrams held
   * without a gap from the oldest, and the datagrams to repair from.
   *
   * @param now The clock, in ms.
   * @returns The hand-over, or `undefined` before any session was heard.
   */
  handover(now: number): Handover | undefined {
    if (this.#session === undefined || this.#from === undefined) {
      return undefined;
    }
    const seqs = [...this.#held.keys()].sort((a, b) => a - b);
    let through = 0;
    let expect = seqs[0];
    for (const seq of seqs) {
      // A gap: what it held is unknown here, so the bulletins after it are
      // sent again (receivers that have them skip them by number).
      if (seq !== expect) break;
      through = Math.max(through, this.#held.get(seq)!.completes);
      expect = seq + 1;
    }
    return {
      session: this.#session,
      from: this.#from,
      nextSeq: this.#high + 1,
      nextBulletin: through + 1,
      packets: seqs.map((seq) => this.#held.get(seq)!.bytes),
      lastStamp: this.#lastStamp,
      silenceMs: Math.round(now - this.#heardAt),
    };
  }
}

/** Options of {@linkcode followSession}. */
export interface FollowSessionOptions {
  /** The group, for the events. */
  group: Group;
  /** The group's port, for the events. */
  port: number;
  /** The primary's silence that makes the standby take over (default 1000 ms). */
  takeoverMs?: number;
  /** Bytes of the primary's datagrams kept for repairs (default 8 MiB). */
  bufferBytes?: number;
  /** Receives the `standby` and `following` events. */
  onEvent: (event: ReliableSenderEvent) => void;
  /** Stops standing by. */
  signal?: AbortSignal;
  /** Drop counters (shared with a guard) for frames that do not decode. */
  dropped?: DropCounts;
  /** Clock for tests, in ms (default `performance.now`). */
  now?: () => number;
}

/**
 * Follows the first session heard on `endpoint` (a socket joined to the
 * group) until it has been silent for `takeoverMs`, and returns what it
 * takes over with; `null` when stopped first. Closes the endpoint in every
 * case. Before it returns, it waits until the local clock is past the
 * primary's last send time, so that the standby's send times continue the
 * session's increasing ones (receivers with keys reject a repeated one).
 *
 * @param endpoint A socket joined to the group, guarded when keys are used.
 * @param options Takeover delay, buffer, events and stop signal.
 * @returns The hand-over, or `null`.
 */
export async function followSession(
  endpoint: DatagramEndpoint,
  options: FollowSessionOptions,
): Promise<Handover | null> {
  const now = options.now ?? (() => performance.now());
  const takeoverMs = options.takeoverMs ?? DEFAULT_TAKEOVER_MS;
  const follower = new StandbyFollower(
    options.bufferBytes === undefined ? {} : {
      bufferBytes: options.bufferBytes,
    },
  );
  let due = false;
  const stop = (): void => endpoint.close();
  const timer = setInterval(() => {
    if (follower.due(now(), takeoverMs)) {
      due = true;
      clearInterval(timer);
      endpoint.close();
    }
  }, Math.max(5, Math.min(20, takeoverMs / 50)));
  options.signal?.addEventListener("abort", stop, { once: true });
  options.onEvent({
    type: "standby",
    group: options.group,
    port: options.port,
    takeoverMs,
  });
  try {
    while (!due && !options.signal?.aborted) {
      let datagram;
      try {
        datagram = await endpoint.receive();
      } catch {
        if (due || options.signal?.aborted) break;
        continue;
      }
      if (datagram === null) break;
      const decoded = decodeFrame(datagram.payload);
      if (decoded.kind === "invalid" && options.dropped) {
        options.dropped[decoded.reason] += 1;
      }
      if (decoded.kind !== "frame") continue;
      const seen = follower.observe(
        decoded.frame,
        datagram.payload.slice(),
        datagram.from,
        now(),
      );
      if (seen === "joined") {
        options.onEvent({
          type: "following",
          session: decoded.frame.session,
          from: datagram.from,
        });
      }
    }
  } finally {
    clearInterval(timer);
    options.signal?.removeEventListener("abort", stop);
    endpoint.close();
  }
  if (!due || options.signal?.aborted) return null;
  const handover = follower.handover(now())!;
  // Send times go on increasing from the primary's (a small margin over
  // its last datagram's stamp; at most the clock-skew bound).
  const lagMs = (handover.lastStamp - nowMicros()) / 1000 + 5;
  if (lagMs > 0) {
    await new Promise((resolve) =>
      setTimeout(resolve, Math.min(lagMs, 10_000))
    );
  }
  return handover;
}
