/**
 * The relay core of `mcast-bridge`: takes a group's datagrams from one leg
 * and forwards them, verbatim, on the other. On a multicast leg upstream it
 * is a receiver of the sender's session at the datagram level (HELLO,
 * NACKs for gaps, ACKs in answer to heartbeats, up to what the downstream
 * leg holds); on a multicast leg downstream it is a repairing sender (it
 * holds what it forwarded, answers far receivers' NACKs itself, and
 * reports them upstream as `NAME via BRIDGE`). A pipe leg (`pipe.ts`) on
 * either side carries the datagrams to or from a far bridge or a broker.
 *
 * Data flows one way: socket → decide (`upstream.ts`, `downstream.ts`) →
 * act (sends, puts) → events.
 *
 * @module
 */

import type { Peer } from "../net/address.ts";
import type { Datagram, DatagramEndpoint } from "../net/socket.ts";
import {
  decodeFrame,
  encodeFrame,
  FLAGS,
  type Frame,
  hasMagic,
  type SeqRange,
} from "../wire/frame.ts";
import { toRanges } from "../wire/ranges.ts";
import { hexText, readU64 } from "../wire/bytes.ts";
import {
  type DropCounts,
  emptyDrops,
  type SessionPaths,
} from "../reliable/stats.ts";
import type { ReceiverState } from "../reliable/state.ts";
import { UpstreamTracker } from "./upstream.ts";
import {
  datagramKey,
  DownstreamHold,
  FarRoster,
  rangeNumbers,
  SeenSet,
} from "./downstream.ts";
import type { PipeDatagram, PipeSink, PipeSource } from "./pipe.ts";
import { errorLine } from "../errors.ts";
import { adaptPace } from "./pacer.ts";
import { Yielder } from "../reliable/schedule.ts";

/** A multicast leg, opened. */
export interface MulticastSide {
  /** The kind. */
  kind: "multicast";
  /**
   * The socket the protocol speaks through: frames it sends are sealed,
   * frames it receives opened (a guard made with `keepSealed`, when
   * keyed).
   */
  endpoint: DatagramEndpoint;
  /** The socket under the guard: verbatim datagrams go out through it. */
  raw: DatagramEndpoint;
  /** Downstream: the group and port to send to. */
  to?: Peer;
}

/** A pipe leg, opened. */
export interface PipeSide<T> {
  /** The kind. */
  kind: "pipe";
  /** The pipe's end. */
  pipe: T;
}

/** What a bridge counts; the statistics line and the `stopped` event. */
export interface BridgeStats {
  /** The bridge's name. */
  name: string;
  /** Datagrams forwarded for the first time, by kind. */
  forwarded: { data: number; heartbeat: number; gone: number; plain: number };
  /** DATA datagrams sent again downstream in answer to far NACKs. */
  repaired: number;
  /** Sequences asked for upstream on behalf of far receivers. */
  asked: number;
  /** GONE frames the bridge sent downstream itself. */
  gone: number;
  /** NACK frames sent upstream. */
  nacks: number;
  /** ACK frames sent upstream. */
  acks: number;
  /** Feedback frames from far receivers. */
  feedback: number;
  /** Duplicates received upstream. */
  duplicates: number;
  /** Datagrams not forwarded because of the loop rule or the hop budget. */
  loops: number;
  /** Why other datagrams were dropped. */
  dropped: DropCounts;
  /** The socket path of its multicast legs and, keyed, the crypto backend. */
  paths?: SessionPaths;
}

/** What a bridge reports as it runs. */
export type BridgeEvent =
  | {
    /** The bridge started. */
    type: "bridge-start";
    /** Its name. */
    name: string;
    /** The upstream leg, as written. */
    from: string;
    /** The downstream leg, as written. */
    to: string;
  }
  | {
    /** It follows a sender's session upstream. */
    type: "bridge-session";
    /** The session. */
    session: string;
    /** Where its datagrams come from. */
    from?: Peer;
    /** The first sequence it asks for. */
    start: number;
    /** Resumed from `--state`. */
    resumed: boolean;
  }
  | {
    /** A far receiver was heard for the first time. */
    type: "far-receiver";
    /** Its name. */
    name: string;
    /** The name it is reported under upstream. */
    via: string;
    /** Where it is. */
    from: Peer;
  }
  | {
    /** A far receiver said BYE. */
    type: "far-receiver-left";
    /** Its name. */
    name: string;
    /** Its cumulative acknowledgement. */
    acked: number;
  }
  | {
    /** A send or put failed (it is retried by the protocol). */
    type: "bridge-warning";
    /** What failed. */
    message: string;
  }
  | {
    /** The bridge stopped. */
    type: "bridge-stopped";
    /** What it counted. */
    stats: BridgeStats;
  };

/** Options of {@linkcode Relay}. */
export interface RelayOptions {
  /** The bridge's name in its feedback upstream. */
  name: string;
  /** Where datagrams come from. */
  upstream: MulticastSide | PipeSide<PipeSource>;
  /** Where they go. */
  downstream: MulticastSide | PipeSide<PipeSink>;
  /** The legs as written, for the start event. */
  legs: { from: string; to: string };
  /** Frames are keyed: held copies older than 1.5 s are asked for upstream. */
  keyed?: boolean;
  /** The saved position (`--state`). */
  state?: ReceiverState | null;
  /** Saves the position. */
  save?: (state: ReceiverState) => void;
  /** Hop budget of datagrams entering a pipe (default 8). */
  hops?: number;
  /** Bytes held for repairs downstream (default 8 MiB). */
  bufferBytes?: number;
  /** Receives every event. */
  onEvent: (event: BridgeEvent) => void;
  /** Drop counters shared with the guards. */
  dropped?: DropCounts;
  /** Most datagrams in flight on a pipe sink (default 512). */
  pipeWindow?: number;
  /** Random numbers in [0, 1) (default `Math.random`). */
  random?: () => number;
  /** The paths, for the statistics. */
  paths?: SessionPaths;
}

/** How often the NACK timer looks for gaps, in ms. */
const TICK_MS = 20;
/** A keyed receiver's replay window accepts a send time this old (less margin). */
const KEYED_FRESH_MS = 1500;
/** How long a plain datagram's fingerprint is kept for the loop rule. */
const PLAIN_LOOP_MS = 1000;
/** The pace adapts every this many ticks. */
const PACE_TICKS = 3;
/** A sequence repaired downstream is not repaired again this soon, in ms. */
const REPAIR_HOLDOFF_MS = 100;
/** How often the position is saved at most, in ms. */
const SAVE_MS = 50;

/** What is known about a datagram before it is forwarded. */
interface Item {
  /** The datagram as it arrived (sealed, when keyed). */
  bytes: Uint8Array;
  /** Its frame's type code (0: plain). */
  type: number;
  /** Its session and seq (frames). */
  session?: string;
  seq?: number;
  /** Its hop budget. */
  hops: number;
  /**
   * Called once the downstream leg holds it (sent on the far segment, or
   * confirmed by a pipe), or once it is dropped: a pipe source's `done`.
   */
  handled?: () => void;
}

/**
 * Reads a sealed frame's header: type, session and seq, and the frame
 * itself for any type but DATA (the trailer cut off; DATA records may be
 * encrypted).
 *
 * @param bytes A datagram as it crossed a pipe.
 * @returns The fields, or `undefined` for a plain datagram or an invalid
 * frame.
 */
export function peekSealed(
  bytes: Uint8Array,
): { type: number; session: string; seq: number; frame?: Frame } | undefined {
  if (!hasMagic(bytes) || bytes.length < 24 || bytes[4] !== 1) return undefined;
  const trailer = bytes[7]!;
  if (bytes.length < 24 + trailer) return undefined;
  const session = hexText(bytes.subarray(8, 16));
  const seq = readU64(bytes, 16);
  const type = bytes[5]!;
  if (type === 1) return { type, session, seq };
  const plain = bytes.slice(0, bytes.length - trailer);
  plain[6] = plain[6]! & ~0x38;
  plain[7] = 0;
  const decoded = decodeFrame(plain);
  if (decoded.kind !== "frame") return undefined;
  return { type, session, seq, frame: decoded.frame };
}

function peerKey(peer: Peer): string {
  return `${peer.address}:${peer.port}`;
}

/**
 * One bridge: run it with {@linkcode Relay.run}, stop it with an abort
 * signal.
 */
export class Relay {
  readonly #options: RelayOptions;
  /** What it counted so far. */
  readonly stats: BridgeStats;
  readonly #tracker = new UpstreamTracker();
  readonly #hold: DownstreamHold;
  readonly #roster: FarRoster;
  readonly #seenDown = new SeenSet();
  readonly #plainSeen = new Map<string, { source: string; at: number }>();
  #downQueue: { bytes: Uint8Array; sent?: () => void }[] = [];
  /** Repairs waiting for the pace, by sequence: each queued once. */
  #repairQueue = new Map<number, Uint8Array>();
  #draining = false;
  #pace = Infinity;
  #paceNext = 0;
  #sentInTick = 0;
  #lostInTick = 0;
  #tickCount = 0;
  readonly #yielder = new Yielder();
  /** When each sequence was last repaired downstream. */
  readonly #repairedAt = new Map<number, number>();
  /** Sequences far receivers wait for that the bridge asked for upstream. */
  readonly #wanted = new Map<number, number>();
  #sender: Peer | undefined;
  #plainSource: Peer | undefined;
  #ackTimer: ReturnType<typeof setTimeout> | undefined;
  #tick: ReturnType<typeof setInterval> | undefined;
  #savedAt = 0;
  #savedNext = 0;
  #saveTimer: ReturnType<typeof setTimeout> | undefined;
  #pipeInFlight = 0;
  #pipeRoom: (() => void)[] = [];
  #pending = new Set<Promise<unknown>>();
  /** With a pipe upstream: the highest DATA sequence forwarded, per session. */
  #pipeHigh = 0;
  #pipeSession: string | undefined;
  #stopped = false;
  /** The session whose frames were last forwarded downstream. */
  #downSession: string | undefined;
  readonly #ownSources = new Set<string>();

  /**
   * Creates one.
   *
   * @param options Legs, name, state and event sink.
   */
  constructor(options: RelayOptions) {
    this.#options = options;
    this.#hold = new DownstreamHold({
      ...(options.bufferBytes === undefined
        ? {}
        : { bufferBytes: options.bufferBytes }),
      ...(options.keyed ? { freshMs: KEYED_FRESH_MS } : {}),
    });
    this.#roster = new FarRoster(options.name);
    this.stats = {
      name: options.name,
      forwarded: { data: 0, heartbeat: 0, gone: 0, plain: 0 },
      repaired: 0,
      asked: 0,
      gone: 0,
      nacks: 0,
      acks: 0,
      feedback: 0,
      duplicates: 0,
      loops: 0,
      dropped: options.dropped ?? emptyDrops(),
      ...(options.paths ? { paths: options.paths } : {}),
    };
    for (const side of [options.upstream, options.downstream]) {
      if (side.kind === "multicast") {
        this.#ownSources.add(peerKey(side.raw.local));
      }
    }
  }

  /** The far receivers heard so far. */
  get farReceivers(): { name: string; via: string; acked: number }[] {
    return this.#roster.receivers.map(({ name, via, acked }) => ({
      name,
      via,
      acked,
    }));
  }

  /**
   * Runs until `signal` aborts or the upstream leg ends.
   *
   * @param signal Stops the bridge.
   */
  async run(signal: AbortSignal): Promise<void> {
    const { upstream, downstream } = this.#options;
    this.#options.onEvent({
      type: "bridge-start",
      name: this.#options.name,
      ...this.#options.legs,
    });
    const stop = new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
    this.#tick = setInterval(() => this.#onTick(), TICK_MS);
    if (downstream.kind === "pipe") {
      downstream.pipe.onReport = (bytes) => this.#onReport(bytes);
    }
    const loops: Promise<void>[] = [];
    loops.push(
      upstream.kind === "multicast"
        ? this.#readUpstream(upstream)
        : this.#readPipe(upstream.pipe),
    );
    if (downstream.kind === "multicast") {
      loops.push(this.#readDownstream(downstream));
    }
    await Promise.race([stop, Promise.all(loops)]);
    await this.#close();
    // Closing the sockets ends the loops.
    if (upstream.kind === "multicast") upstream.endpoint.close();
    else await upstream.pipe[Symbol.asyncDispose]();
    if (downstream.kind === "multicast") downstream.endpoint.close();
    else await downstream.pipe[Symbol.asyncDispose]();
    await Promise.allSettled(loops);
    this.#options.onEvent({ type: "bridge-stopped", stats: this.stats });
  }

  async #close(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#tick);
    this.#yielder.close();
    clearTimeout(this.#ackTimer);
    clearTimeout(this.#saveTimer);
    const upstream = this.#options.upstream;
    const session = this.#tracker.session;
    if (upstream.kind === "multicast" && session !== undefined) {
      this.#sendAck();
      this.#feedback(upstream, {
        type: "bye",
        session,
        seq: this.#tracker.next - 1,
        name: this.#options.name,
      });
      // Its far receivers leave with it: the sender must not wait for them
      // (they come back, by HELLO, through a bridge started again).
      for (const far of this.#roster.receivers) {
        if (far.left || this.#downSession !== session) continue;
        this.#feedback(upstream, {
          type: "bye",
          session,
          seq: far.acked,
          name: far.via,
        });
      }
    }
    this.#save(true);
    // Puts still in flight are abandoned: the sender still holds what was
    // not acknowledged.
    const pending = [...this.#pending];
    await Promise.race([
      Promise.allSettled(pending),
      new Promise((resolve) => {
        const timer = setTimeout(resolve, 200);
        Promise.allSettled(pending).then(() => clearTimeout(timer));
      }),
    ]);
  }

  #track<T>(promise: Promise<T>): void {
    const tracked = promise.catch(() => {});
    this.#pending.add(tracked);
    tracked.finally(() => this.#pending.delete(tracked));
  }

  // ---- upstream: a multicast leg ------------------------------------------

  /**
   * The next datagram on a multicast leg, or `null` once the leg or the
   * relay stopped. A failed receive is tried again.
   */
  async #receive(side: MulticastSide): Promise<Datagram | null> {
    for (;;) {
      let datagram;
      try {
        datagram = await side.endpoint.receive();
      } catch {
        if (this.#stopped) return null;
        continue;
      }
      return this.#stopped ? null : datagram;
    }
  }

  async #readUpstream(side: MulticastSide): Promise<void> {
    for (;;) {
      const datagram = await this.#receive(side);
      if (datagram === null) return;
      if (this.#ownSources.has(peerKey(datagram.from))) {
        this.stats.loops += 1;
        continue;
      }
      const bytes = datagram.sealed ?? datagram.payload;
      const decoded = decodeFrame(datagram.payload);
      if (decoded.kind === "plain") {
        this.#plainSource = datagram.from;
        if (this.#plainLoop(bytes, datagram.from)) continue;
        this.#forward({ bytes, type: 0, hops: this.#hops() });
        continue;
      }
      if (decoded.kind === "invalid") {
        this.stats.dropped[decoded.reason] += 1;
        continue;
      }
      this.#upstreamFrame(side, decoded.frame, bytes, datagram.from);
    }
  }

  #hops(): number {
    return this.#options.hops ?? 8;
  }

  /** A plain datagram seen lately from another source: a loop's echo. */
  #plainLoop(bytes: Uint8Array, from: Peer): boolean {
    const now = performance.now();
    const key = datagramKey(bytes);
    const seen = this.#plainSeen.get(key);
    const source = peerKey(from);
    if (seen && now - seen.at < PLAIN_LOOP_MS && seen.source !== source) {
      this.stats.loops += 1;
      return true;
    }
    this.#plainSeen.set(key, { source, at: now });
    if (this.#plainSeen.size > 4096) {
      for (const [old, entry] of this.#plainSeen) {
        if (now - entry.at >= PLAIN_LOOP_MS) this.#plainSeen.delete(old);
      }
      while (this.#plainSeen.size > 4096) {
        this.#plainSeen.delete(this.#plainSeen.keys().next().value!);
      }
    }
    return false;
  }

  #upstreamFrame(
    side: MulticastSide,
    frame: Frame,
    bytes: Uint8Array,
    from: Peer,
  ): void {
    if (
      frame.type !== "data" && frame.type !== "heartbeat" &&
      frame.type !== "gone"
    ) {
      this.stats.dropped.unexpected += 1;
      return;
    }
    const tracker = this.#tracker;
    if (frame.session !== tracker.session) {
      if (frame.type === "gone" || !tracker.canJoin(frame.session)) {
        this.stats.dropped.unexpected += 1;
        return;
      }
      this.#join(side, frame, from);
      this.#sender = from;
    }
    const item: Item = {
      bytes,
      type: frame.type === "data" ? 1 : frame.type === "heartbeat" ? 4 : 7,
      session: frame.session,
      seq: frame.seq,
      hops: this.#hops(),
    };
    switch (frame.type) {
      case "data": {
        const verdict = tracker.data(frame.session, frame.seq);
        if (verdict === "new") {
          // Feedback goes where new datagrams come from: a loop's echo (a
          // bridge sending them back) never brings a new one first.
          this.#sender = from;
          this.#forward(item);
        } else if (verdict === "duplicate") {
          this.stats.duplicates += 1;
          this.#repairFromUpstream(item);
        } else {
          this.stats.dropped.ahead += 1;
        }
        break;
      }
      case "heartbeat":
        tracker.see(frame.seq);
        this.#forward(item);
        this.#scheduleAck();
        break;
      case "gone":
        if (tracker.gone(frame.ranges)) this.#scheduleSave();
        for (const seq of rangeNumbers(frame.ranges)) this.#wanted.delete(seq);
        this.#forward(item);
        break;
    }
  }

  #join(
    side: MulticastSide,
    frame: Frame & { type: "data" | "heartbeat" },
    from: Peer,
  ): void {
    const saved = this.#options.state;
    const resumed = saved?.session === frame.session;
    // A bridge asks for everything the sender still holds: its far
    // receivers may need it.
    const start = resumed ? saved!.next : Math.max(1, frame.low);
    this.#tracker.join({ session: frame.session, next: start });
    this.#wanted.clear();
    this.#options.onEvent({
      type: "bridge-session",
      session: frame.session,
      from,
      start,
      resumed,
    });
    this.#feedback(side, {
      type: "hello",
      session: frame.session,
      seq: start - 1,
      name: this.#options.name,
      fromStart: !resumed,
    }, from);
  }

  /**
   * A DATA datagram already forwarded came again (a repair): keep the
   * fresher copy, and send it on if far receivers asked for it.
   */
  #repairFromUpstream(item: Item): void {
    const downstream = this.#options.downstream;
    const seq = item.seq!;
    if (downstream.kind === "pipe") {
      // A far bridge asked for it (it restarted and lost what it held), or
      // it is the sender's signed re-send (it signs when it pauses, and
      // every repair): trusting far receivers wait for it.
      const wanted = this.#wanted.delete(seq);
      const signed = (item.bytes[6]! & FLAGS.signed) !== 0;
      if ((wanted || signed) && item.hops > 0) {
        if (wanted) this.stats.repaired += 1;
        this.#put(downstream.pipe, {
          id: datagramKey(item.bytes),
          bytes: item.bytes,
          hops: item.hops - 1,
        }, item);
      }
      return;
    }
    const before = this.#hold.get(item.session!, seq);
    this.#hold.hold(item.session!, seq, {
      bytes: item.bytes,
      at: performance.now(),
    });
    // The sender signs the last datagram of a run when it pauses, sending
    // it once more: trusting far receivers wait for that signature.
    const signed = (item.bytes[6]! & FLAGS.signed) !== 0 &&
      before !== undefined && (before.bytes[6]! & FLAGS.signed) === 0;
    if (this.#wanted.delete(seq) || signed) {
      this.stats.repaired += 1;
      this.#sendDown(downstream, item.bytes);
    }
  }

  #scheduleAck(): void {
    if (this.#ackTimer !== undefined || this.#stopped) return;
    const random = this.#options.random ?? Math.random;
    this.#ackTimer = setTimeout(() => {
      this.#ackTimer = undefined;
      this.#sendAck();
    }, random() * 10);
  }

  #sendAck(): void {
    const upstream = this.#options.upstream;
    const session = this.#tracker.session;
    if (upstream.kind !== "multicast" || session === undefined) return;
    this.stats.acks += 1;
    this.#feedback(upstream, {
      type: "ack",
      session,
      seq: this.#tracker.next - 1,
      name: this.#options.name,
      ranges: this.#tracker.selective(),
    });
  }

  #onTick(): void {
    if (++this.#tickCount % PACE_TICKS === 0) {
      this.#pace = adaptPace(this.#pace, {
        sent: this.#sentInTick,
        lost: this.#lostInTick,
        intervalMs: PACE_TICKS * TICK_MS,
      });
      this.#sentInTick = 0;
      this.#lostInTick = 0;
    }
    const upstream = this.#options.upstream;
    const session = this.#tracker.session;
    if (upstream.kind !== "multicast" || session === undefined) return;
    const now = performance.now();
    const ranges: SeqRange[] = this.#tracker.gap ? this.#tracker.nack(now) : [];
    // What far receivers wait for below the position: asked again each
    // repeat interval, for five seconds at most.
    const wanted: number[] = [];
    for (const [seq, since] of this.#wanted) {
      if (now - since > 5000) this.#wanted.delete(seq);
      else wanted.push(seq);
    }
    if (wanted.length > 0 && now - this.#wantedAskedAt >= 60) {
      this.#wantedAskedAt = now;
      ranges.push(...toRanges(wanted.sort((a, b) => a - b), 64));
    }
    if (ranges.length === 0) return;
    this.stats.nacks += 1;
    this.#feedback(upstream, {
      type: "nack",
      session,
      seq: this.#tracker.next - 1,
      name: this.#options.name,
      ranges: ranges.slice(0, 256),
    });
  }

  #wantedAskedAt = 0;

  /** Sends a feedback frame upstream, to the sender. */
  #feedback(side: MulticastSide, frame: Frame, to = this.#sender): void {
    if (to === undefined) return;
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame(frame);
    } catch {
      return;
    }
    this.#track(side.endpoint.send(bytes, to));
  }

  // ---- forwarding -----------------------------------------------------------

  #forward(item: Item): void {
    const downstream = this.#options.downstream;
    const kind = item.type === 1
      ? "data"
      : item.type === 4
      ? "heartbeat"
      : item.type === 7
      ? "gone"
      : "plain";
    if (item.session !== undefined) this.#downSession = item.session;
    if (downstream.kind === "multicast") {
      // Plain datagrams are not tracked: no key (a hash of every byte) for them.
      if (item.type !== 0 && !this.#seenDown.add(datagramKey(item.bytes))) {
        this.stats.loops += 1;
        this.#confirm(item);
        item.handled?.();
        return;
      }
      if (item.type === 1) {
        this.#hold.hold(item.session!, item.seq!, {
          bytes: item.bytes,
          at: performance.now(),
        });
      }
      this.stats.forwarded[kind] += 1;
      // Acknowledged upstream (or done, for a pipe) once really sent: a
      // bridge killed with datagrams still queued has not passed them on.
      this.#sendDown(downstream, item.bytes, () => {
        this.#confirm(item);
        item.handled?.();
      });
      return;
    }
    if (item.hops <= 0) {
      this.stats.loops += 1;
      this.#confirm(item);
      item.handled?.();
      return;
    }
    this.stats.forwarded[kind] += 1;
    this.#put(downstream.pipe, {
      id: datagramKey(item.bytes),
      bytes: item.bytes,
      hops: item.hops - 1,
    }, item);
  }

  #put(sink: PipeSink, datagram: PipeDatagram, item: Item): void {
    const window = this.#options.pipeWindow ?? 512;
    const go = async () => {
      while (this.#pipeInFlight >= window && !this.#stopped) {
        await new Promise<void>((resolve) => this.#pipeRoom.push(resolve));
      }
      if (this.#stopped) return;
      this.#pipeInFlight += 1;
      try {
        await sink.put(datagram);
        this.#confirm(item);
        item.handled?.();
      } catch (error) {
        if (!this.#stopped) {
          this.#options.onEvent({
            type: "bridge-warning",
            message: `cannot put to ${sink.name}: ${errorLine(error)}`,
          });
        }
      } finally {
        this.#pipeInFlight -= 1;
        this.#pipeRoom.shift()?.();
      }
    };
    this.#track(go());
  }

  /** The downstream leg holds the item: it counts in the ACK upstream. */
  #confirm(item: Item): void {
    if (item.type !== 1 || this.#options.upstream.kind !== "multicast") return;
    if (item.session !== this.#tracker.session) return;
    if (this.#tracker.confirm(item.seq!)) this.#scheduleSave();
  }

  /** Queues a datagram for the far segment, sent at the pace. */
  #sendDown(
    side: MulticastSide,
    bytes: Uint8Array,
    sent?: () => void,
  ): void {
    this.#downQueue.push(sent ? { bytes, sent } : { bytes });
    if (!this.#draining) this.#track(this.#drain(side));
  }

  async #drain(side: MulticastSide): Promise<void> {
    this.#draining = true;
    const to = side.to!;
    try {
      while (
        (this.#downQueue.length > 0 || this.#repairQueue.size > 0) &&
        !this.#stopped
      ) {
        if (Number.isFinite(this.#pace)) {
          let now = performance.now();
          this.#paceNext = Math.max(this.#paceNext, now - 1) +
            1000 / this.#pace;
          while (this.#paceNext - now > 0.05 && !this.#stopped) {
            const wait = this.#paceNext - now;
            if (wait > 4) {
              await new Promise((resolve) => setTimeout(resolve, wait));
            } else await this.#yielder.yield();
            now = performance.now();
          }
        }
        let bytes: Uint8Array;
        let sent: (() => void) | undefined;
        const repair = this.#repairQueue.entries().next().value;
        if (repair) {
          // Repairs first: they unblock delivery.
          this.#repairQueue.delete(repair[0]);
          this.#repairedAt.set(repair[0], performance.now());
          this.stats.repaired += 1;
          bytes = repair[1];
        } else {
          ({ bytes, sent } = this.#downQueue.shift()!);
        }
        this.#sentInTick += 1;
        if (side.raw.trySend?.(bytes, to)) {
          sent?.();
          continue;
        }
        try {
          await side.raw.send(bytes, to);
          sent?.();
        } catch (error) {
          if (!this.#stopped) {
            this.#options.onEvent({
              type: "bridge-warning",
              message: `cannot send downstream: ${errorLine(error)}`,
            });
          }
        }
      }
    } finally {
      this.#draining = false;
    }
  }

  #scheduleSave(): void {
    if (!this.#options.save || this.#saveTimer !== undefined) return;
    const wait = Math.max(0, SAVE_MS - (performance.now() - this.#savedAt));
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      this.#save(false);
    }, wait);
  }

  #save(force: boolean): void {
    const session = this.#tracker.session;
    const save = this.#options.save;
    if (!save || session === undefined) return;
    const next = this.#tracker.next;
    if (!force && next === this.#savedNext) return;
    this.#savedNext = next;
    this.#savedAt = performance.now();
    try {
      save({
        version: 1,
        session,
        next,
        delivered: 0,
        name: this.#options.name,
      });
    } catch (error) {
      this.#options.onEvent({
        type: "bridge-warning",
        message: errorLine(error),
      });
    }
  }

  // ---- upstream: a pipe ---------------------------------------------------

  async #readPipe(source: PipeSource): Promise<void> {
    for (;;) {
      let datagram: PipeDatagram | undefined;
      try {
        datagram = await source.next();
      } catch (error) {
        if (this.#stopped) return;
        this.#options.onEvent({
          type: "bridge-warning",
          message: `cannot read ${source.name}: ${errorLine(error)}`,
        });
        return;
      }
      if (datagram === undefined || this.#stopped) return;
      const handled = datagram;
      this.#fromPipe(datagram, () => this.#track(source.done(handled)));
    }
  }

  /**
   * A datagram from a pipe: forwarded, then `handled` (the pipe's `done`)
   * once the downstream leg holds it, or at once when it is dropped.
   */
  #fromPipe(datagram: PipeDatagram, handled: () => void): void {
    if (datagram.hops <= 0 && this.#options.downstream.kind === "pipe") {
      this.stats.loops += 1;
      handled();
      return;
    }
    const head = peekSealed(datagram.bytes);
    if (!head) {
      if (hasMagic(datagram.bytes)) {
        this.stats.dropped.malformed += 1;
        handled();
        return;
      }
      this.#forward({
        bytes: datagram.bytes,
        type: 0,
        hops: datagram.hops,
        handled,
      });
      return;
    }
    if (![1, 4, 7].includes(head.type)) {
      this.stats.dropped.unexpected += 1;
      handled();
      return;
    }
    if (head.type === 1 || head.type === 4) {
      // How far the session got, from DATA and from the sender's
      // heartbeats (its highest sequence sent): a far receiver missing
      // anything up to there is asked for through the pipe.
      if (head.session !== this.#pipeSession) {
        this.#pipeSession = head.session;
        this.#pipeHigh = 0;
      }
      if (head.seq > this.#pipeHigh) this.#pipeHigh = head.seq;
    }
    const held = head.type === 1
      ? this.#hold.get(head.session, head.seq)
      : undefined;
    if (held) {
      // A signed copy of a datagram held unsigned (the sender's re-send
      // when it pauses) goes on: trusting far receivers wait for it. So
      // does a copy of one held too long for keyed receivers' replay
      // window: asked for through the pipe, it is the sender's repair.
      const downstream = this.#options.downstream;
      const signed = (datagram.bytes[6]! & FLAGS.signed) !== 0 &&
        (held.bytes[6]! & FLAGS.signed) === 0;
      const stale = this.#options.keyed === true &&
        performance.now() - held.at > KEYED_FRESH_MS;
      if (downstream.kind === "multicast" && (signed || stale)) {
        this.#hold.hold(head.session, head.seq, {
          bytes: datagram.bytes,
          at: performance.now(),
        });
        this.stats.repaired += 1;
        this.#sendDown(downstream, datagram.bytes);
      } else {
        this.stats.duplicates += 1;
      }
      handled();
      return;
    }
    this.#forward({
      bytes: datagram.bytes,
      type: head.type,
      session: head.session,
      seq: head.seq,
      hops: datagram.hops,
      handled,
    });
  }

  // ---- downstream: far receivers ------------------------------------------

  async #readDownstream(side: MulticastSide): Promise<void> {
    for (;;) {
      const datagram = await this.#receive(side);
      if (datagram === null) return;
      const decoded = decodeFrame(datagram.payload);
      if (decoded.kind === "plain") {
        // An exercise receiver's acknowledgement: to the plain sender.
        const upstream = this.#options.upstream;
        if (upstream.kind === "multicast" && this.#plainSource) {
          this.#track(upstream.raw.send(datagram.payload, this.#plainSource));
        }
        continue;
      }
      if (decoded.kind === "invalid") {
        this.stats.dropped[decoded.reason] += 1;
        continue;
      }
      this.#farFeedback(side, decoded.frame, datagram.from);
    }
  }

  #farFeedback(side: MulticastSide, frame: Frame, from: Peer): void {
    if (
      frame.type === "data" || frame.type === "heartbeat" ||
      frame.type === "gone" || frame.session !== this.#downSession
    ) {
      this.stats.dropped.unexpected += 1;
      return;
    }
    const update = this.#roster.feedback(frame, from);
    if (!update) {
      this.stats.dropped.roster += 1;
      return;
    }
    this.stats.feedback += 1;
    const { receiver, joined, left } = update;
    if (joined) {
      this.#options.onEvent({
        type: "far-receiver",
        name: receiver.name,
        via: receiver.via,
        from,
      });
    }
    if (frame.type === "nack") this.#repair(side, frame.session, frame.ranges);
    if (left) {
      this.#options.onEvent({
        type: "far-receiver-left",
        name: receiver.name,
        acked: receiver.acked,
      });
    }
    // Upstream, the far receiver's progress under its `via` name: a NACK
    // as an ACK of its position (the bridge repairs it itself).
    const via: Frame = frame.type === "nack"
      ? {
        type: "ack",
        session: frame.session,
        seq: frame.seq,
        name: receiver.via,
        ranges: [],
      }
      : { ...frame, name: receiver.via };
    // First heard by this bridge mid-session (it was restarted): a HELLO
    // first, so that a sender told it left counts it again.
    const frames: Frame[] = joined && frame.type !== "hello"
      ? [{
        type: "hello",
        session: frame.session,
        seq: frame.seq,
        name: receiver.via,
        fromStart: false,
      }, via]
      : [via];
    const upstream = this.#options.upstream;
    if (upstream.kind === "pipe") {
      // Behind a pipe: back to the near bridge, which tells the sender.
      if (!upstream.pipe.report) return;
      for (const one of frames) {
        try {
          upstream.pipe.report(encodeFrame(one));
        } catch {
          // A frame out of bounds: nothing to report.
        }
      }
      return;
    }
    if (frame.session !== this.#tracker.session) return;
    for (const one of frames) this.#feedback(upstream, one);
  }

  /** A far bridge's report of one of its far receivers: to the sender. */
  #onReport(bytes: Uint8Array): void {
    const upstream = this.#options.upstream;
    const decoded = decodeFrame(bytes);
    if (upstream.kind !== "multicast" || decoded.kind !== "frame") return;
    const frame = decoded.frame;
    if (
      frame.type === "data" || frame.type === "heartbeat" ||
      frame.type === "gone" || frame.session !== this.#tracker.session
    ) {
      this.stats.dropped.unexpected += 1;
      return;
    }
    this.stats.feedback += 1;
    if (frame.type !== "nack") {
      this.#feedback(upstream, frame);
      return;
    }
    // What the far bridge no longer holds: asked for upstream, put into
    // the pipe again when the sender's repair comes.
    const now = performance.now();
    for (const seq of rangeNumbers(frame.ranges)) {
      if (seq < this.#tracker.next && !this.#wanted.has(seq)) {
        this.stats.asked += 1;
        this.#wanted.set(seq, now);
      }
    }
  }

  #repair(side: MulticastSide, session: string, ranges: SeqRange[]): void {
    const upstream = this.#options.upstream.kind === "multicast";
    const plan = this.#hold.plan(session, ranges, {
      now: performance.now(),
      upstream,
      next: upstream ? this.#tracker.next : this.#pipeHigh + 1,
    });
    const now = performance.now();
    for (const { seq, bytes } of plan.resend) {
      // Several receivers (or one, repeating itself) ask for the same
      // datagram: one repair, queued once, answers them all for a while.
      const last = this.#repairedAt.get(seq);
      if (last !== undefined && now - last < REPAIR_HOLDOFF_MS) continue;
      if (this.#repairQueue.has(seq)) continue;
      this.#lostInTick += 1;
      this.#repairQueue.set(seq, bytes);
    }
    if (this.#repairQueue.size > 0 && !this.#draining) {
      this.#track(this.#drain(side));
    }
    if (this.#repairedAt.size > 65536) {
      for (const [seq, at] of this.#repairedAt) {
        if (now - at >= REPAIR_HOLDOFF_MS) this.#repairedAt.delete(seq);
      }
    }
    const source = this.#options.upstream;
    if (source.kind === "pipe") {
      // Behind a pipe: the near bridge asks the sender for them.
      if (plan.ask.length > 0 && source.pipe.report) {
        this.stats.asked += plan.ask.length;
        try {
          source.pipe.report(encodeFrame({
            type: "nack",
            session,
            seq: 0,
            name: this.#options.name,
            ranges: toRanges(plan.ask, 256),
          }));
        } catch {
          // Out of bounds: nothing to ask.
        }
      }
    } else {
      for (const seq of plan.ask) {
        if (!this.#wanted.has(seq)) {
          this.stats.asked += 1;
          this.#wanted.set(seq, now);
        }
      }
    }
    if (plan.gone.length > 0) {
      this.stats.gone += 1;
      try {
        const bytes = encodeFrame({
          type: "gone",
          session,
          seq: this.#hold.low,
          ranges: plan.gone,
        });
        this.#track(side.endpoint.send(bytes, side.to!));
      } catch {
        // A range out of bounds: nothing to say.
      }
    }
  }
}
