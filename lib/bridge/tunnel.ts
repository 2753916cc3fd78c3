/**
 * The unicast UDP tunnel between two bridges (`udp://HOST:PORT` legs): a
 * {@linkcode PipeSink} on the near bridge, a {@linkcode PipeSource} on the
 * far one. Each datagram crosses in a DATUM frame, numbered per link, and
 * is sent again until the far bridge answers with a HELD frame covering
 * it, which it sends once it multicast and holds the datagram. Frames are
 * authenticated with the group key (HMAC-SHA-256, like the guard's); the
 * format is in `docs/protocol.md`, section "Bridge tunnel".
 *
 * @module
 */

import type { PipeDatagram, PipeSink, PipeSource } from "./pipe.ts";
import type { Peer } from "../net/address.ts";
import { type DatagramEndpoint, openUnicastSocket } from "../net/socket.ts";
import { UsageError } from "../errors.ts";
import type { PipeContext, PipeScheme } from "./legs.ts";
import type { CryptoBackend, MacKey } from "../security/crypto.ts";
import { WEB_CRYPTO } from "../security/crypto.ts";
import type { GroupKey } from "../security/keys.ts";
import { MAC_SIZE, TIME_SIZE } from "../security/guard.ts";
import { MAX_RANGES, type SeqRange } from "../wire/frame.ts";
import { toRanges } from "../wire/ranges.ts";
import { hexText, readU64, writeU64 } from "../wire/bytes.ts";

/** The four bytes every tunnel frame starts with: ASCII `MCTN`. */
export const TUNNEL_MAGIC: readonly number[] = [0x4d, 0x43, 0x54, 0x4e];
/** The tunnel frame version. */
export const TUNNEL_VERSION = 1;
/** Size of a tunnel frame's header. */
export const TUNNEL_HEADER_SIZE = 24;
/** Size of the trailer: send time (8) and truncated HMAC (16). */
export const TUNNEL_TRAILER_SIZE: number = TIME_SIZE + MAC_SIZE;
/** Default hop budget of a datagram entering a tunnel. */
export const DEFAULT_HOPS = 8;

const DATUM = 1;
const HELD = 2;
const REPORT = 3;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const TUNNEL_INFO = encoder.encode("mcast-v1 tunnel authentication");

/** A decoded tunnel frame. */
export type TunnelFrame =
  | {
    /** A datagram crossing. */
    type: "datum";
    /** The sending link's id: 16 hex digits, new for each sink. */
    link: string;
    /** Its number on the link, from 1. */
    seq: number;
    /**
     * The lowest number the sink still waits on (not yet held): a far
     * bridge that meets the link mid-way (it restarted) starts there.
     */
    low: number;
    /** Hops it may still be relayed. */
    hops: number;
    /** The pipe id. */
    id: string;
    /** The datagram, verbatim. */
    bytes: Uint8Array;
  }
  | {
    /** A far receiver's report, far to near. */
    type: "report";
    /** The link it answers. */
    link: string;
    /** The feedback frame (HELLO, ACK, BYE), encoded without a trailer. */
    frame: Uint8Array;
  }
  | {
    /** The far side holds datagrams of a link. */
    type: "held";
    /** The link. */
    link: string;
    /** Everything up to this number is held. */
    seq: number;
    /** Numbers above `seq` held as well. */
    ranges: SeqRange[];
  };

function linkBytes(link: string): Uint8Array {
  const bytes = new Uint8Array(8);
  for (let k = 0; k < 8; k++) {
    bytes[k] = parseInt(link.slice(2 * k, 2 * k + 2), 16);
  }
  return bytes;
}

/**
 * Encodes a tunnel frame without its trailer.
 *
 * @param frame The frame.
 * @returns Its bytes.
 */
export function encodeTunnelFrame(frame: TunnelFrame): Uint8Array {
  let size = TUNNEL_HEADER_SIZE;
  let id: Uint8Array | undefined;
  if (frame.type === "datum") {
    id = encoder.encode(frame.id);
    if (id.length > 255) throw new RangeError("pipe id longer than 255 bytes");
    size += 8 + 1 + id.length + frame.bytes.length;
  } else if (frame.type === "report") {
    size += frame.frame.length;
  } else {
    size += 2 + 16 * frame.ranges.length;
  }
  const bytes = new Uint8Array(size);
  bytes.set(TUNNEL_MAGIC, 0);
  bytes[4] = TUNNEL_VERSION;
  bytes[5] = frame.type === "datum"
    ? DATUM
    : frame.type === "report"
    ? REPORT
    : HELD;
  bytes[6] = frame.type === "datum"
    ? Math.max(0, Math.min(255, frame.hops))
    : 0;
  bytes[7] = 0;
  bytes.set(linkBytes(frame.link), 8);
  writeU64(bytes, 16, frame.type === "report" ? 0 : frame.seq);
  let at = TUNNEL_HEADER_SIZE;
  if (frame.type === "datum") {
    writeU64(bytes, at, frame.low);
    at += 8;
    bytes[at] = id!.length;
    bytes.set(id!, at + 1);
    bytes.set(frame.bytes, at + 1 + id!.length);
  } else if (frame.type === "report") {
    bytes.set(frame.frame, at);
  } else {
    bytes[at] = frame.ranges.length >>> 8;
    bytes[at + 1] = frame.ranges.length & 0xff;
    at += 2;
    for (const range of frame.ranges) {
      writeU64(bytes, at, range.first);
      writeU64(bytes, at + 8, range.last);
      at += 16;
    }
  }
  return bytes;
}

/**
 * Decodes a tunnel frame (trailer already checked and removed).
 *
 * @param bytes The frame.
 * @returns It, or `undefined` when it is not a valid tunnel frame.
 */
export function decodeTunnelFrame(bytes: Uint8Array): TunnelFrame | undefined {
  if (
    bytes.length < TUNNEL_HEADER_SIZE || bytes[0] !== TUNNEL_MAGIC[0] ||
    bytes[1] !== TUNNEL_MAGIC[1] || bytes[2] !== TUNNEL_MAGIC[2] ||
    bytes[3] !== TUNNEL_MAGIC[3] || bytes[4] !== TUNNEL_VERSION
  ) {
    return undefined;
  }
  const link = hexText(bytes.subarray(8, 16));
  const seq = readU64(bytes, 16);
  if (!Number.isSafeInteger(seq)) return undefined;
  let at = TUNNEL_HEADER_SIZE;
  if (bytes[5] === DATUM) {
    if (seq < 1 || bytes.length < at + 9) return undefined;
    const low = readU64(bytes, at);
    if (low < 1 || low > seq) return undefined;
    at += 8;
    const length = bytes[at]!;
    if (bytes.length < at + 1 + length) return undefined;
    let id: string;
    try {
      id = decoder.decode(bytes.subarray(at + 1, at + 1 + length));
    } catch {
      return undefined;
    }
    return {
      type: "datum",
      link,
      seq,
      low,
      hops: bytes[6]!,
      id,
      bytes: bytes.slice(at + 1 + length),
    };
  }
  if (bytes[5] === REPORT) {
    return { type: "report", link, frame: bytes.slice(at) };
  }
  if (bytes[5] === HELD) {
    if (bytes.length < at + 2) return undefined;
    const count = (bytes[at]! << 8) | bytes[at + 1]!;
    if (count > MAX_RANGES || bytes.length !== at + 2 + 16 * count) {
      return undefined;
    }
    const ranges: SeqRange[] = [];
    for (let k = 0; k < count; k++) {
      const first = readU64(bytes, at + 2 + 16 * k);
      const last = readU64(bytes, at + 10 + 16 * k);
      if (!Number.isSafeInteger(last) || last < first) return undefined;
      ranges.push({ first, last });
    }
    return { type: "held", link, seq, ranges };
  }
  return undefined;
}

/** Seals and opens tunnel frames with the group key. */
export class TunnelAuth {
  readonly #mac: Promise<MacKey>;
  readonly #maxSkewUs: number;
  readonly #now: () => number;

  /**
   * Derives the tunnel's HMAC key from the group key.
   *
   * @param key The group key.
   * @param options The crypto backend, clock-skew bound and clock.
   */
  constructor(
    key: GroupKey,
    options: {
      crypto?: CryptoBackend;
      maxSkewMs?: number;
      nowMicros?: () => number;
    } = {},
  ) {
    const crypto = options.crypto ?? WEB_CRYPTO;
    this.#mac = crypto.hkdf(key.bytes, {
      salt: new Uint8Array(0),
      info: TUNNEL_INFO,
      length: 32,
    }).then((raw) => crypto.macKey(raw));
    this.#maxSkewUs = (options.maxSkewMs ?? 10_000) * 1000;
    this.#now = options.nowMicros ??
      (() => Math.round((performance.timeOrigin + performance.now()) * 1000));
  }

  /**
   * Appends the send time and the HMAC.
   *
   * @param frame An encoded frame.
   * @returns The sealed frame.
   */
  async seal(frame: Uint8Array): Promise<Uint8Array> {
    const out = new Uint8Array(frame.length + TUNNEL_TRAILER_SIZE);
    out.set(frame, 0);
    out[7] = TUNNEL_TRAILER_SIZE;
    writeU64(out, frame.length, this.#now());
    const tag = await (await this.#mac).sign(
      out.subarray(0, frame.length + TIME_SIZE),
    );
    out.set(tag.subarray(0, MAC_SIZE), frame.length + TIME_SIZE);
    return out;
  }

  /**
   * Checks a sealed frame's HMAC and send time.
   *
   * @param bytes What arrived.
   * @returns The frame without its trailer, or `undefined` (forged,
   * unauthenticated or stale).
   */
  async open(bytes: Uint8Array): Promise<Uint8Array | undefined> {
    if (
      bytes.length < TUNNEL_HEADER_SIZE + TUNNEL_TRAILER_SIZE ||
      bytes[7] !== TUNNEL_TRAILER_SIZE
    ) {
      return undefined;
    }
    const macAt = bytes.length - MAC_SIZE;
    const ok = await (await this.#mac).verify(
      bytes.subarray(0, macAt),
      bytes.subarray(macAt),
    );
    if (!ok) return undefined;
    const time = readU64(bytes, macAt - TIME_SIZE);
    if (Math.abs(this.#now() - time) > this.#maxSkewUs) return undefined;
    const frame = bytes.slice(0, macAt - TIME_SIZE);
    frame[7] = 0;
    return frame;
  }
}

/** A datagram that came in on a tunnel end's socket. */
interface Arrival {
  /** Its frame; `undefined` when it failed the trailer check or decoding. */
  frame: TunnelFrame | undefined;
  /** Who sent it. */
  from: Peer;
}

/**
 * Waits for the next datagram on a tunnel end's socket, checks its trailer
 * and decodes it. A failed receive is tried again unless `stopped()`.
 *
 * @returns The arrival, or `null` once the socket ended (or stopped).
 */
async function nextArrival(
  end: { endpoint: DatagramEndpoint; auth: TunnelAuth },
  stopped: () => boolean,
): Promise<Arrival | null> {
  for (;;) {
    let datagram;
    try {
      datagram = await end.endpoint.receive();
    } catch {
      if (stopped()) return null;
      continue;
    }
    if (datagram === null) return null;
    const opened = await end.auth.open(datagram.payload);
    return { frame: opened && decodeTunnelFrame(opened), from: datagram.from };
  }
}

/** What a tunnel end counts. */
export interface TunnelStats {
  /** DATUM frames sent (first transmissions and repeats) or received. */
  datums: number;
  /** DATUM frames sent again. */
  resent: number;
  /** HELD frames sent or received. */
  held: number;
  /** Frames dropped: not a tunnel frame, failed authentication, stale. */
  rejected: number;
}

/** Options of {@linkcode TunnelSink}. */
export interface TunnelSinkOptions {
  /** The socket it sends from (unicast); closed with the sink. */
  endpoint: DatagramEndpoint;
  /** The far bridge's tunnel address. */
  peer: Peer;
  /** Authentication. */
  auth: TunnelAuth;
  /** Resend a datagram not held after this long, in ms (default 100). */
  resendMs?: number;
  /** Most datagrams in flight; `put` waits beyond (default 1024). */
  window?: number;
}

interface InFlight {
  datagram: PipeDatagram;
  frame: Uint8Array;
  /** The `low` the frame carries. */
  low: number;
  sentAt: number;
  resolve: () => void;
}

/**
 * The near end of a tunnel: `put` resolves once the far bridge answered
 * that it holds the datagram.
 */
export class TunnelSink implements PipeSink {
  /** Its name for reports. */
  readonly name: string;
  /** What it counted. */
  readonly stats: TunnelStats = { datums: 0, resent: 0, held: 0, rejected: 0 };
  readonly #options: TunnelSinkOptions;
  readonly #link: string;
  #seq = 0;
  #inFlight = new Map<number, InFlight>();
  /** Numbers given out and not yet held, ascending. */
  #outstanding = new Set<number>();
  #room: (() => void)[] = [];
  #timer: ReturnType<typeof setInterval>;
  #reading: Promise<void>;
  #closed = false;
  /** Receives the far bridge's reports of its far receivers. */
  onReport?: (frame: Uint8Array) => void;

  /**
   * Starts one (its reader and resend timer run until it is disposed).
   *
   * @param name Its name for reports, e.g. `udp://198.51.100.2:7000`.
   * @param options Socket, peer, authentication and timers.
   */
  constructor(name: string, options: TunnelSinkOptions) {
    this.name = name;
    this.#options = options;
    this.#link = hexText(crypto.getRandomValues(new Uint8Array(8)));
    const resendMs = options.resendMs ?? 100;
    this.#timer = setInterval(() => this.#resend(resendMs), resendMs / 2);
    this.#reading = this.#read();
  }

  /** Datagrams sent and not yet held by the far side. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /**
   * Sends a datagram to the far bridge, again until it is held there.
   *
   * @param datagram The datagram.
   * @returns Once the far bridge holds it.
   */
  async put(datagram: PipeDatagram): Promise<void> {
    while (
      !this.#closed && this.#inFlight.size >= (this.#options.window ?? 1024)
    ) {
      await new Promise<void>((resolve) => this.#room.push(resolve));
    }
    if (this.#closed) throw new Error("tunnel closed");
    const seq = ++this.#seq;
    this.#outstanding.add(seq);
    const low = this.#outstanding.values().next().value!;
    const frame = await this.#options.auth.seal(encodeTunnelFrame({
      type: "datum",
      link: this.#link,
      seq,
      low,
      hops: datagram.hops,
      id: datagram.id,
      bytes: datagram.bytes,
    }));
    const held = new Promise<void>((resolve) => {
      this.#inFlight.set(seq, {
        datagram,
        frame,
        low,
        sentAt: performance.now(),
        resolve,
      });
    });
    this.#send(frame);
    await held;
  }

  #send(frame: Uint8Array): void {
    this.stats.datums += 1;
    this.#options.endpoint.send(frame, this.#options.peer).catch(() => {
      // A lost datum is sent again.
    });
  }

  #resend(afterMs: number): void {
    const now = performance.now();
    let budget = 256;
    for (const [seq, entry] of this.#inFlight) {
      if (budget <= 0) break;
      if (now - entry.sentAt < afterMs) continue;
      entry.sentAt = now;
      this.stats.resent += 1;
      budget -= 1;
      const low = this.#outstanding.values().next().value;
      if (low === undefined || low === entry.low) {
        this.#send(entry.frame);
        continue;
      }
      // Sealed again with the current low: a far end that restarted
      // starts there, not below what its predecessor already held.
      void this.#reseal(seq, entry, low);
    }
  }

  async #reseal(seq: number, entry: InFlight, low: number): Promise<void> {
    const frame = await this.#options.auth.seal(encodeTunnelFrame({
      type: "datum",
      link: this.#link,
      seq,
      low,
      hops: entry.datagram.hops,
      id: entry.datagram.id,
      bytes: entry.datagram.bytes,
    }));
    if (this.#closed || !this.#inFlight.has(seq)) return;
    entry.frame = frame;
    entry.low = low;
    this.#send(frame);
  }

  async #read(): Promise<void> {
    for (;;) {
      const arrival = await nextArrival(this.#options, () => this.#closed);
      if (arrival === null) return;
      const { frame } = arrival;
      if (!frame || frame.type === "datum" || frame.link !== this.#link) {
        this.stats.rejected += 1;
        continue;
      }
      if (frame.type === "report") {
        this.onReport?.(frame.frame);
        continue;
      }
      this.stats.held += 1;
      for (const [seq, entry] of this.#inFlight) {
        if (
          seq <= frame.seq ||
          frame.ranges.some((r) => r.first <= seq && seq <= r.last)
        ) {
          this.#inFlight.delete(seq);
          this.#outstanding.delete(seq);
          entry.resolve();
        }
      }
      for (const wake of this.#room.splice(0)) wake();
    }
  }

  /** Stops it and closes its socket. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    for (const wake of this.#room.splice(0)) wake();
    this.#options.endpoint.close();
    await this.#reading;
  }
}

/** Options of {@linkcode TunnelSource}. */
export interface TunnelSourceOptions {
  /** The socket it listens on; closed with the source. */
  endpoint: DatagramEndpoint;
  /** Authentication. */
  auth: TunnelAuth;
}

interface LinkState {
  /** Everything up to here was handed out by `next`. */
  delivered: number;
  /** Received above `delivered`, waiting for the gap to fill. */
  waiting: Map<number, PipeDatagram>;
  /** Everything up to here is done. */
  done: number;
  /** Done above `done`. */
  doneAbove: Set<number>;
  /** Where the sink is. */
  from: Peer;
}

/**
 * The far end of a tunnel: datagrams in the order the near bridge put
 * them, per link; `done` answers HELD.
 */
export class TunnelSource implements PipeSource {
  /** Its name for reports. */
  readonly name: string;
  /** What it counted. */
  readonly stats: TunnelStats = { datums: 0, resent: 0, held: 0, rejected: 0 };
  readonly #options: TunnelSourceOptions;
  #links = new Map<string, LinkState>();
  #ready: PipeDatagram[] = [];
  #wake: (() => void) | undefined;
  #origin = new WeakMap<PipeDatagram, { link: string; seq: number }>();
  #reading: Promise<void>;
  #ended = false;
  #heldPending = new Set<string>();
  #lastLink: string | undefined;

  /**
   * Starts one (its reader runs until it is disposed).
   *
   * @param name Its name for reports.
   * @param options Socket and authentication.
   */
  constructor(name: string, options: TunnelSourceOptions) {
    this.name = name;
    this.#options = options;
    this.#reading = this.#read();
  }

  /**
   * The next datagram, in the order the near bridge put them.
   *
   * @returns It, or `undefined` once the source is closed.
   */
  async next(): Promise<PipeDatagram | undefined> {
    for (;;) {
      const ready = this.#ready.shift();
      if (ready) return ready;
      if (this.#ended) return undefined;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  /**
   * Marks a datagram handled: the near bridge is told it is held.
   *
   * @param datagram A datagram {@linkcode TunnelSource.next} returned.
   * @returns At once (the HELD frame leaves shortly).
   */
  done(datagram: PipeDatagram): Promise<void> {
    const origin = this.#origin.get(datagram);
    if (!origin) return Promise.resolve();
    const state = this.#links.get(origin.link);
    if (!state) return Promise.resolve();
    if (origin.seq > state.done) state.doneAbove.add(origin.seq);
    while (state.doneAbove.delete(state.done + 1)) state.done += 1;
    this.#scheduleHeld(origin.link);
    return Promise.resolve();
  }

  /**
   * Sends a far receiver's report to the near bridge of the link heard
   * from last.
   *
   * @param frame A HELLO, ACK or BYE frame, encoded without a trailer.
   */
  report(frame: Uint8Array): void {
    const link = this.#lastLink;
    const state = link === undefined ? undefined : this.#links.get(link);
    if (link === undefined || !state) return;
    void this.#options.auth.seal(
      encodeTunnelFrame({ type: "report", link, frame }),
    ).then((sealed) => this.#options.endpoint.send(sealed, state.from))
      .catch(() => {});
  }

  #scheduleHeld(link: string): void {
    if (this.#heldPending.has(link)) return;
    this.#heldPending.add(link);
    queueMicrotask(() => {
      this.#heldPending.delete(link);
      void this.#sendHeld(link);
    });
  }

  async #sendHeld(link: string): Promise<void> {
    const state = this.#links.get(link);
    if (!state) return;
    const above = [...state.doneAbove].sort((a, b) => a - b);
    const frame = await this.#options.auth.seal(encodeTunnelFrame({
      type: "held",
      link,
      seq: state.done,
      ranges: toRanges(above, MAX_RANGES),
    }));
    this.stats.held += 1;
    await this.#options.endpoint.send(frame, state.from).catch(() => {});
  }

  async #read(): Promise<void> {
    for (;;) {
      const arrival = await nextArrival(this.#options, () => false);
      if (arrival === null) break;
      const { frame } = arrival;
      if (!frame || frame.type !== "datum") {
        this.stats.rejected += 1;
        continue;
      }
      this.stats.datums += 1;
      let state = this.#links.get(frame.link);
      if (!state) {
        if (this.#links.size >= 64) {
          this.#links.delete(this.#links.keys().next().value!);
        }
        state = {
          // A link met mid-way (this bridge restarted) starts at the
          // lowest datum the sink still waits on.
          delivered: frame.low - 1,
          waiting: new Map(),
          done: frame.low - 1,
          doneAbove: new Set(),
          from: arrival.from,
        };
        this.#links.set(frame.link, state);
      }
      state.from = arrival.from;
      this.#lastLink = frame.link;
      // Everything below the near end's low is held (by this end, or by
      // the one before it restarted): nothing there to wait for.
      if (frame.low - 1 > state.delivered) {
        for (let seq = state.delivered + 1; seq < frame.low; seq++) {
          const waiting = state.waiting.get(seq);
          if (waiting) this.#ready.push(waiting);
          state.waiting.delete(seq);
        }
        state.delivered = frame.low - 1;
        if (state.done < state.delivered) {
          for (const seq of state.doneAbove) {
            if (seq <= state.delivered) state.doneAbove.delete(seq);
          }
          state.done = Math.max(state.done, frame.low - 1);
        }
        // What waited on the gap below the low goes on now, not only when
        // the next new datum comes (none may: the sender may be idle).
        this.#release(state);
      }
      if (frame.seq <= state.delivered || state.waiting.has(frame.seq)) {
        // A repeat: the HELD was lost, or it is still being handled.
        if (frame.seq <= state.done || state.doneAbove.has(frame.seq)) {
          this.#scheduleHeld(frame.link);
        }
        continue;
      }
      const pipe: PipeDatagram = {
        id: frame.id,
        bytes: frame.bytes,
        hops: frame.hops,
      };
      this.#origin.set(pipe, { link: frame.link, seq: frame.seq });
      state.waiting.set(frame.seq, pipe);
      this.#release(state);
    }
    this.#ended = true;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Hands out what waited and follows `delivered` without a gap. */
  #release(state: LinkState): void {
    while (state.waiting.has(state.delivered + 1)) {
      state.delivered += 1;
      this.#ready.push(state.waiting.get(state.delivered)!);
      state.waiting.delete(state.delivered);
    }
    if (this.#ready.length === 0) return;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Stops it and closes its socket. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#options.endpoint.close();
    await this.#reading;
  }
}

/**
 * The `udp://HOST:PORT` pipe scheme: `--to udp://PEER:PORT` sends to the
 * far bridge (from `--listen ADDR:PORT` when given, else an ephemeral port
 * on loopback for a loopback peer and on every address otherwise);
 * `--from udp://ADDR:PORT` listens there. Both need the group key.
 */
export const UDP_SCHEME: PipeScheme = {
  check(url: URL): string | undefined {
    if (url.port === "" || url.hostname === "") {
      return "expected udp://HOST:PORT";
    }
    if (url.pathname !== "" && url.pathname !== "/") {
      return "a udp:// leg has no path";
    }
    return undefined;
  },
  openSink(context: PipeContext): Promise<PipeSink> {
    const auth = tunnelAuth(context);
    const peer = {
      address: bareHost(context.url),
      port: Number(context.url.port),
    };
    const local = context.listen ??
      { address: isLoopback(peer.address) ? "127.0.0.1" : "0.0.0.0", port: 0 };
    const endpoint = openUnicastSocket(local.address, local.port);
    return Promise.resolve(
      new TunnelSink(context.url.href.replace(/\/$/, ""), {
        endpoint,
        peer,
        auth,
      }),
    );
  },
  openSource(context: PipeContext): Promise<PipeSource> {
    const auth = tunnelAuth(context);
    const endpoint = openUnicastSocket(
      bareHost(context.url),
      Number(context.url.port),
    );
    return Promise.resolve(
      new TunnelSource(context.url.href.replace(/\/$/, ""), { endpoint, auth }),
    );
  },
};

function bareHost(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, "");
}

function isLoopback(address: string): boolean {
  return address.startsWith("127.") || address === "::1";
}

function tunnelAuth(context: PipeContext): TunnelAuth {
  if (!context.key) {
    throw new UsageError(
      `A udp:// leg needs --key-file: the tunnel is authenticated with the group key`,
    );
  }
  return new TunnelAuth(context.key, {
    ...(context.crypto ? { crypto: context.crypto } : {}),
    ...(context.maxSkewMs === undefined
      ? {}
      : { maxSkewMs: context.maxSkewMs }),
  });
}
