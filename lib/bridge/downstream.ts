/**
 * The bridge's downstream side: what it holds to repair far receivers
 * itself (the datagrams as forwarded, bounded like a sender's `--buffer`),
 * who the far receivers are and how far they got, and which datagrams it
 * already forwarded on a leg (the loop rule). Pure decide steps: the relay
 * (`relay.ts`) sends what they return.
 *
 * @module
 */

import { MAX_NAME_BYTES, MAX_RANGES, type SeqRange } from "../wire/frame.ts";
import { toRanges } from "../wire/ranges.ts";
import { hexText, readU64 } from "../wire/bytes.ts";
import type { Peer } from "../net/address.ts";

/** One datagram held for repairs. */
export interface HeldDatagram {
  /** The bytes as forwarded (the sender's, verbatim). */
  bytes: Uint8Array;
  /** When the bridge received them, in ms (the relay's clock). */
  at: number;
}

/** What a NACK from a far receiver calls for. */
export interface RepairPlan {
  /** Held: send these bytes again. */
  resend: { seq: number; bytes: Uint8Array }[];
  /**
   * Not held (or held too long ago to be accepted again by a keyed
   * receiver's replay window): ask upstream for them (behind a pipe: ask
   * the near bridge, through the pipe's reports).
   */
  ask: number[];
  /** Older than anything held and not to be had upstream: tell GONE. */
  gone: SeqRange[];
}

/** Options of {@linkcode DownstreamHold}. */
export interface DownstreamHoldOptions {
  /** Most bytes held (default 8 MiB). */
  bufferBytes?: number;
  /**
   * A held copy older than this (ms) is not sent again but asked for
   * upstream (behind a pipe: through it): a keyed receiver's replay window
   * (2 s) would reject its original send time. Default: no limit (unkeyed
   * groups).
   */
  freshMs?: number;
  /** Most sequences one NACK may ask for (default 4096). */
  maxAsk?: number;
}

/**
 * The datagrams of one session the bridge forwarded downstream, held for
 * repairs within a byte budget: the oldest make room first.
 */
export class DownstreamHold {
  readonly #budget: number;
  readonly #freshMs: number;
  readonly #maxAsk: number;
  #session: string | undefined;
  #held = new Map<number, HeldDatagram>();
  #bytes = 0;
  /** Lowest sequence held (or the next one to be, when none is). */
  #low = 1;
  /** The highest sequence dropped to keep to the budget (0: none). */
  #evicted = 0;

  /**
   * Creates one.
   *
   * @param options The byte budget and freshness.
   */
  constructor(options: DownstreamHoldOptions = {}) {
    this.#budget = options.bufferBytes ?? 8 * 1024 * 1024;
    this.#freshMs = options.freshMs ?? Infinity;
    this.#maxAsk = options.maxAsk ?? 4096;
  }

  /** The session held. */
  get session(): string | undefined {
    return this.#session;
  }

  /** How many datagrams are held. */
  get size(): number {
    return this.#held.size;
  }

  /** The lowest sequence held, or the next expected when none is. */
  get low(): number {
    return this.#low;
  }

  /**
   * Holds a forwarded datagram (a newer copy replaces an older one); a new
   * session replaces the old one.
   *
   * @param session Its session.
   * @param seq Its sequence number.
   * @param held Its bytes and when they arrived.
   */
  hold(session: string, seq: number, held: HeldDatagram): void {
    if (session !== this.#session) {
      this.#session = session;
      this.#held.clear();
      this.#bytes = 0;
      this.#low = seq;
      this.#evicted = 0;
    }
    const old = this.#held.get(seq);
    if (old) this.#bytes -= old.bytes.length;
    this.#held.set(seq, held);
    this.#bytes += held.bytes.length;
    if (seq < this.#low || this.#held.size === 1) this.#low = seq;
    while (this.#bytes > this.#budget && this.#held.size > 1) {
      let oldest = Infinity;
      for (const key of this.#held.keys()) if (key < oldest) oldest = key;
      this.#bytes -= this.#held.get(oldest)!.bytes.length;
      this.#held.delete(oldest);
      if (oldest > this.#evicted) this.#evicted = oldest;
      this.#low = oldest + 1;
      while (!this.#held.has(this.#low) && this.#low <= this.#highest()) {
        this.#low += 1;
      }
    }
  }

  #highest(): number {
    let high = 0;
    for (const key of this.#held.keys()) if (key > high) high = key;
    return high;
  }

  /**
   * A held copy, if any.
   *
   * @param session The session.
   * @param seq The sequence number.
   * @returns It, or `undefined`.
   */
  get(session: string, seq: number): HeldDatagram | undefined {
    return session === this.#session ? this.#held.get(seq) : undefined;
  }

  /**
   * Decides how to answer a far receiver's NACK.
   *
   * @param session The NACK's session.
   * @param ranges The sequences it misses.
   * @param context The clock and what upstream can still give: `upstream`
   * is false when nothing can be asked for (a pipe leg), so what was held
   * and dropped for room is gone; `next` is the first sequence the bridge
   * has not received yet (asked for anyway, upstream, by the tracker).
   * @returns What to resend, ask upstream for, and answer GONE.
   */
  plan(
    session: string,
    ranges: readonly SeqRange[],
    context: { now: number; upstream: boolean; next: number },
  ): RepairPlan {
    const plan: RepairPlan = { resend: [], ask: [], gone: [] };
    // Another session than the one held; none held yet: nothing held.
    if (this.#session !== undefined && session !== this.#session) return plan;
    const gone: number[] = [];
    let budget = this.#maxAsk;
    for (const range of ranges) {
      for (let seq = range.first; seq <= range.last && budget > 0; seq++) {
        budget -= 1;
        const held = this.#held.get(seq);
        if (held && context.now - held.at <= this.#freshMs) {
          plan.resend.push({ seq, bytes: held.bytes });
        } else if (seq >= context.next) {
          // Not here yet: it is forwarded when it comes.
          continue;
        } else if (context.upstream) {
          plan.ask.push(seq);
        } else if (held || seq > this.#evicted) {
          // Behind a pipe: what never came here (this bridge restarted, or
          // a near bridge is still repairing its own gap), and a copy held
          // too long for keyed receivers' replay window (they drop it,
          // however often it is sent), are asked for through the pipe.
          plan.ask.push(seq);
        } else {
          // What the budget made room for is gone.
          gone.push(seq);
        }
      }
    }
    plan.gone = toRanges(gone, MAX_RANGES);
    return plan;
  }
}

/** One far receiver, as the bridge knows it. */
export interface FarReceiver {
  /** Its own name. */
  name: string;
  /** The name the bridge reports it under upstream. */
  via: string;
  /** Where its feedback comes from. */
  from: Peer;
  /** Its cumulative acknowledgement. */
  acked: number;
  /** It said BYE. */
  left: boolean;
}

/** What a far receiver's feedback frame changed. */
export interface FarUpdate {
  /** The receiver. */
  receiver: FarReceiver;
  /** First frame heard from it. */
  joined: boolean;
  /** This frame was its first BYE (since it last said HELLO). */
  left: boolean;
}

/**
 * The name a far receiver is reported under upstream: `NAME via BRIDGE`,
 * shortened (the far receiver's name first) to fit the 64 bytes a frame's
 * name holds.
 *
 * @param name The far receiver's name.
 * @param bridge The bridge's name.
 * @returns The upstream name.
 */
export function viaName(name: string, bridge: string): string {
  const encoder = new TextEncoder();
  const suffix = ` via ${bridge}`;
  let head = name;
  while (
    head.length > 1 &&
    encoder.encode(head + suffix).length > MAX_NAME_BYTES
  ) {
    head = [...head].slice(0, -1).join("");
  }
  const whole = head + suffix;
  if (encoder.encode(whole).length <= MAX_NAME_BYTES) return whole;
  // A bridge name near the limit: the far name alone, shortened.
  let alone = name;
  while (encoder.encode(alone).length > MAX_NAME_BYTES) {
    alone = [...alone].slice(0, -1).join("");
  }
  return alone;
}

/** The far receivers of the session being relayed, by name. */
export class FarRoster {
  readonly #bridge: string;
  readonly #max: number;
  #session: string | undefined;
  #receivers = new Map<string, FarReceiver>();

  /**
   * Creates one.
   *
   * @param bridge The bridge's name (for the `via` names).
   * @param options The most receivers kept (default 10,000).
   */
  constructor(bridge: string, options: { max?: number } = {}) {
    this.#bridge = bridge;
    this.#max = options.max ?? 10_000;
  }

  /** The far receivers, sorted by name. */
  get receivers(): FarReceiver[] {
    return [...this.#receivers.values()].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0
    );
  }

  /**
   * Takes note of a far receiver's HELLO, ACK, NACK or BYE.
   *
   * @param frame The frame's session, cumulative seq, name and type.
   * @param from Where it came from.
   * @returns What changed, or `undefined` when the frame is ignored (another
   * session, beyond the roster cap).
   */
  feedback(
    frame: { session: string; seq: number; name: string; type: string },
    from: Peer,
  ): FarUpdate | undefined {
    if (frame.session !== this.#session) {
      this.#session = frame.session;
      this.#receivers.clear();
    }
    let receiver = this.#receivers.get(frame.name);
    const joined = receiver === undefined;
    if (!receiver) {
      if (this.#receivers.size >= this.#max) return undefined;
      receiver = {
        name: frame.name,
        via: viaName(frame.name, this.#bridge),
        from,
        acked: 0,
        left: false,
      };
      this.#receivers.set(frame.name, receiver);
    }
    receiver.from = from;
    if (frame.seq > receiver.acked) receiver.acked = frame.seq;
    const left = frame.type === "bye" && !receiver.left;
    if (frame.type === "bye") receiver.left = true;
    else if (frame.type === "hello") receiver.left = false;
    return { receiver, joined, left };
  }
}

/**
 * Remembers what was forwarded on a leg, up to a bound (the oldest are
 * forgotten first): a bridge never forwards the same datagram twice, so a
 * loop of bridges ends.
 */
export class SeenSet {
  readonly #cap: number;
  #seen = new Set<string>();

  /**
   * Creates one.
   *
   * @param cap Most keys remembered (default 65536).
   */
  constructor(cap = 65536) {
    this.#cap = cap;
  }

  /**
   * Adds a key.
   *
   * @param key What identifies the datagram.
   * @returns False when it was there already (do not forward).
   */
  add(key: string): boolean {
    if (this.#seen.has(key)) return false;
    this.#seen.add(key);
    if (this.#seen.size > this.#cap) {
      this.#seen.delete(this.#seen.values().next().value!);
    }
    return true;
  }
}

/**
 * What identifies a datagram for the loop rule and a pipe's `id`: a DATA
 * frame by `<session>:<seq>`; another frame by its type and first 40
 * bytes' worth of header (session, seq, timestamp); a plain datagram by a
 * hash of its bytes.
 *
 * @param bytes The datagram (a frame as sent, or a plain datagram).
 * @returns The key.
 */
export function datagramKey(bytes: Uint8Array): string {
  const isFrame = bytes.length >= 24 && bytes[0] === 0x4d &&
    bytes[1] === 0x43 && bytes[2] === 0x53 && bytes[3] === 0x54;
  if (!isFrame) return `plain:${bytes.length}:${fnv(bytes)}`;
  const session = hexText(bytes.subarray(8, 16));
  const seq = readU64(bytes, 16);
  if (bytes[5] === 1) return `${session}:${seq}`;
  return `${session}:t${bytes[5]}:${seq}:${
    hexText(bytes.subarray(24, Math.min(bytes.length, 40)))
  }`;
}

/** 32-bit FNV-1a, twice (two seeds): a 64-bit fingerprint as hex. */
function fnv(bytes: Uint8Array): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (const byte of bytes) {
    a = Math.imul(a ^ byte, 0x01000193) >>> 0;
    b = Math.imul(b ^ byte, 0x01000193) >>> 0;
  }
  return a.toString(16).padStart(8, "0") + b.toString(16).padStart(8, "0");
}

/**
 * The sequence numbers of ranges, flattened, at most `limit`.
 *
 * @param ranges The ranges.
 * @param limit Most numbers.
 * @returns The numbers, ascending per range.
 */
export function rangeNumbers(
  ranges: readonly SeqRange[],
  limit = 4096,
): number[] {
  const out: number[] = [];
  for (const range of ranges) {
    for (let seq = range.first; seq <= range.last; seq++) {
      if (out.length >= limit) return out;
      out.push(seq);
    }
  }
  return out;
}
