/**
 * A seeded generator of hostile datagrams for the fuzz tests: pure random
 * bytes, plain (non-`MCST`) datagrams, valid frames of every type
 * ({@linkcode encodeFrame}) and those frames mutated: bits flipped, cut
 * short at every kind of field boundary, extended with junk, length fields
 * that lie, extreme and absurd sequence numbers, unknown versions and types,
 * a tag length with a garbage trailer. A flood phase targets the state
 * machine's memory: for a receiver, DATA frames packed with thousands of
 * records held out of order; for a sender, ACKs with 256 ranges from
 * thousands of made-up names.
 *
 * Everything comes from one seed ({@linkcode seededRandom}): the same
 * options (with the same `nowMicros`) give the same datagrams, byte for
 * byte.
 *
 * @module
 */

import { seededRandom } from "../lib/net/fault.ts";
import {
  type DataRecord,
  DIGEST_SIZE,
  encodeFrame,
  type Frame,
  type FrameTypeName,
  HEADER_SIZE,
  MAX_NAME_BYTES,
  MAX_RANGES,
  MAX_SEQUENCE,
  RECORD_HEADER_SIZE,
  type SeqRange,
} from "../lib/wire/frame.ts";

/** Largest UDP payload over IPv4. */
export const MAX_DATAGRAM = 65507;

/** The kinds of datagrams the generator makes, in the order it reports them. */
export const FUZZ_CATEGORIES = [
  "random",
  "plain",
  "valid",
  "bitflip",
  "truncated",
  "extended",
  "lying",
  "sequence",
  "version",
  "tag",
  "flood",
] as const;

/** One kind of datagram. */
export type FuzzCategory = typeof FUZZ_CATEGORIES[number];

/** Datagrams made so far, per kind. */
export type FuzzCounts = Record<FuzzCategory, number>;

/** Options of {@linkcode fuzzDatagrams}. */
export interface FuzzOptions {
  /** Seed of the generator (taken as a 32-bit unsigned integer). */
  seed: number;
  /** How many datagrams to make, flood included. */
  count: number;
  /**
   * Whose input the datagrams are: a receiver's (the group: mostly DATA,
   * HEARTBEAT and GONE) or a sender's (its feedback port: mostly ACK, NACK,
   * HELLO and BYE).
   */
  target: "receiver" | "sender";
  /**
   * The real session id (16 hex digits): the one the target follows, so that
   * its state machine sees the frames, not only its decoder.
   */
  session?: string;
  /**
   * How many made-up receiver names `fuzz-N` (default 12,000); frames carry
   * 209 other names as well (one of 64 bytes, 8 with control characters
   * and the like, 200 of random text), and bit flips make more.
   */
  names?: number;
  /**
   * Datagrams of the flood phase (default: 600 for a receiver, `names` for a
   * sender); 0 for none.
   */
  flood?: number;
  /** Datagrams per block (default 1000); blocks alternate focus. */
  blockSize?: number;
  /** Filled in as datagrams are made (see {@linkcode emptyCounts}). */
  counts?: FuzzCounts;
  /**
   * The time frames that look current carry, in µs since the epoch
   * (default: now).
   */
  nowMicros?: number;
}

/** Returns counts of zero for every category. */
export function emptyCounts(): FuzzCounts {
  const counts = {} as FuzzCounts;
  for (const category of FUZZ_CATEGORIES) counts[category] = 0;
  return counts;
}

/** Formats counts as `random 8000, plain 4000, ...` (every category). */
export function formatCounts(counts: FuzzCounts): string {
  return FUZZ_CATEGORIES.map((c) => `${c} ${counts[c]}`).join(", ");
}

/** The bytes as lowercase hex, cut after `max` bytes with an ellipsis. */
export function toHex(bytes: Uint8Array, max = 96): string {
  const shown = Array.from(
    bytes.subarray(0, max),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  return bytes.length > max ? `${shown}… (${bytes.length} bytes)` : shown;
}

/** Sequence-like values that break naive arithmetic. */
const EXTREMES = [
  0,
  1,
  2,
  0x7fff_ffff,
  0x8000_0000,
  0xffff_ffff,
  2 ** 32,
  2 ** 40,
  MAX_SEQUENCE - 1,
  MAX_SEQUENCE,
];

/** Relative weights of the mutation categories (the flood is a phase). */
const WEIGHTS: [FuzzCategory, number][] = [
  ["random", 4],
  ["plain", 2],
  ["valid", 20],
  ["bitflip", 16],
  ["truncated", 14],
  ["extended", 10],
  ["lying", 14],
  ["sequence", 12],
  ["version", 4],
  ["tag", 4],
];

const TYPE_WEIGHTS: Record<"receiver" | "sender", [FrameTypeName, number][]> = {
  receiver: [
    ["data", 35],
    ["heartbeat", 20],
    ["gone", 15],
    ["ack", 8],
    ["nack", 8],
    ["hello", 7],
    ["bye", 7],
  ],
  sender: [
    ["ack", 25],
    ["nack", 25],
    ["hello", 20],
    ["bye", 15],
    ["data", 5],
    ["heartbeat", 5],
    ["gone", 5],
  ],
};

const encoder = new TextEncoder();

/** Where each field of a valid frame starts (and its end), for cuts. */
interface Built {
  type: FrameTypeName;
  bytes: Uint8Array;
  /** Offsets of field boundaries in the body. */
  bounds: number[];
  /** Offsets of one-byte name lengths. */
  nameAt: number[];
  /** Offsets of u16 range or record counts. */
  countAt: number[];
  /** Offsets of records (DATA). */
  recordAt: number[];
}

/** A session the generator follows: where its sequence numbers are. */
interface Track {
  session: string;
  seq: number;
  bulletin: number;
}

/** The generator's state: the PRNG and the sessions it follows. */
class Maker {
  readonly random: () => number;
  readonly target: "receiver" | "sender";
  readonly names: number;
  track: Track;
  /** Timestamps of frames that look current, in µs since the epoch. */
  readonly now: number;
  #last: { session: string; built: Built } | undefined;
  constructor(
    seed: number,
    target: "receiver" | "sender",
    names: number,
    now: number,
  ) {
    this.now = now;
    this.random = seededRandom(seed);
    this.target = target;
    this.names = names;
    this.track = { session: "0000000000000000", seq: 1, bulletin: 1 };
  }

  /** A whole number from `lo` to `hi`, inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.random() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.random() < p;
  }

  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.random() * list.length)]!;
  }

  weighted<T>(list: readonly [T, number][]): T {
    let total = 0;
    for (const [, w] of list) total += w;
    let x = this.random() * total;
    for (const [value, w] of list) {
      x -= w;
      if (x < 0) return value;
    }
    return list[list.length - 1]![0];
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let k = 0;
    for (; k + 4 <= n; k += 4) {
      const word = (this.random() * 0x1_0000_0000) >>> 0;
      out[k] = word;
      out[k + 1] = word >>> 8;
      out[k + 2] = word >>> 16;
      out[k + 3] = word >>> 24;
    }
    for (; k < n; k++) out[k] = this.int(0, 255);
    return out;
  }

  session(): string {
    const hi = this.int(0, 0xffff_ffff).toString(16).padStart(8, "0");
    const lo = this.int(0, 0xffff_ffff).toString(16).padStart(8, "0");
    return hi + lo;
  }

  /** A u64 value: near `around` mostly, sometimes extreme or random. */
  u64(around: number): number {
    const r = this.random();
    if (r < 0.7) return Math.max(0, around + this.int(-4, 40));
    if (r < 0.9) return this.pick(EXTREMES);
    return this.int(0, MAX_SEQUENCE);
  }

  length(): number {
    // Mostly small, some up to an Ethernet frame, a few up to the maximum.
    const r = this.random();
    if (r < 0.7) return this.int(0, 100);
    if (r < 0.95) return this.int(101, 1472);
    if (r < 0.99) return this.int(1473, MAX_DATAGRAM - 1);
    return MAX_DATAGRAM;
  }

  name(): string {
    const r = this.random();
    if (r < 0.85) return `fuzz-${this.int(0, this.names - 1)}`;
    if (r < 0.9) return "x".repeat(MAX_NAME_BYTES);
    if (r < 0.95) {
      // Control characters, escapes, a comma, non-ASCII: printed escaped.
      return this.pick([
        "\x1b[31mred\x1b[0m",
        "a,b",
        "tab\there",
        "new\nline",
        "caf\u00e9-\u2603",
        "\u202egnp.exe",
        "\u0000nul",
        "\u{1f600}",
      ]);
    }
    // Well-formed text of 1-64 bytes, one of 200 (a bounded roster).
    const random = seededRandom(this.int(1, 200));
    const pick = (lo: number, hi: number) =>
      lo + Math.floor(random() * (hi - lo + 1));
    let name = "";
    const length = pick(1, 20);
    for (let k = 0; k < length; k++) {
      const plane = pick(0, 3);
      name += String.fromCodePoint(
        plane === 0
          ? pick(0x20, 0x7e)
          : plane === 1
          ? pick(0xa0, 0x7ff)
          : plane === 2
          ? pick(0x800, 0xd7ff)
          : pick(0x10000, 0x10ffff),
      );
    }
    while (encoder.encode(name).length > MAX_NAME_BYTES) {
      name = Array.from(name).slice(0, -1).join("");
    }
    return name.length === 0 ? "n" : name;
  }

  ranges(around: number): SeqRange[] {
    const r = this.random();
    const count = r < 0.6
      ? this.int(0, 3)
      : r < 0.97
      ? this.int(4, 40)
      : this.int(200, MAX_RANGES);
    const ranges: SeqRange[] = [];
    for (let k = 0; k < count; k++) {
      if (this.chance(0.05)) {
        ranges.push({ first: 0, last: MAX_SEQUENCE });
        continue;
      }
      const first = this.u64(around);
      const last = this.chance(0.1)
        ? MAX_SEQUENCE
        : Math.min(MAX_SEQUENCE, first + this.int(0, 70_000));
      ranges.push({ first, last });
    }
    return ranges;
  }

  record(bulletin: number): DataRecord {
    const r = this.random();
    if (r < 0.5) {
      // A whole bulletin, usually short.
      const data = this.bytes(
        this.chance(0.95) ? this.int(0, 48) : this.int(0, 1300),
      );
      return { bulletin, total: data.length, offset: 0, data };
    }
    if (r < 0.7) {
      // The first fragment of a bulletin, up to one claiming ~4 GiB.
      const data = this.bytes(this.int(0, 64));
      const total = this.pick([
        data.length + 1,
        data.length + this.int(1, 100_000),
        16 * 1024 * 1024,
        16 * 1024 * 1024 + 1,
        0xffff_ffff,
      ]);
      return {
        bulletin,
        total,
        offset: 0,
        digest: this.bytes(DIGEST_SIZE),
        data,
      };
    }
    // A later fragment.
    const data = this.bytes(this.int(0, 64));
    const total = this.pick([200, 70_000, 0xffff_ffff]);
    const offset = this.int(1, total - data.length);
    return { bulletin, total, offset, data };
  }

  frame(type: FrameTypeName, session: string): Frame {
    const t = this.track;
    if (this.chance(0.3)) t.seq += 1;
    if (this.chance(0.3)) t.bulletin += 1;
    const seq = this.u64(t.seq);
    switch (type) {
      case "data": {
        const r = this.random();
        const count = r < 0.95
          ? this.int(1, 3)
          : r < 0.99
          ? 0
          : this.int(4, 200);
        let bulletin = this.u64(t.bulletin);
        const records: DataRecord[] = [];
        for (let k = 0; k < count; k++) {
          records.push(this.record(bulletin));
          if (this.chance(0.7)) bulletin = Math.min(MAX_SEQUENCE, bulletin + 1);
        }
        return {
          type,
          session,
          seq,
          retransmit: this.chance(0.2),
          timestamp: this.pick([this.now, 0, MAX_SEQUENCE]),
          low: Math.max(
            0,
            Math.min(
              MAX_SEQUENCE,
              this.pick([1, seq, seq + 1, 0, MAX_SEQUENCE, t.seq - 3]),
            ),
          ),
          records,
        } as Frame;
      }
      case "heartbeat":
        return {
          type,
          session,
          seq,
          final: this.chance(0.2),
          timestamp: this.pick([this.now, 0, MAX_SEQUENCE]),
          low: this.pick([1, seq, Math.max(0, seq - 10), 0, MAX_SEQUENCE]),
        };
      case "gone":
        return { type, session, seq, ranges: this.ranges(t.seq) };
      case "ack":
      case "nack":
        return {
          type,
          session,
          seq,
          name: this.name(),
          ranges: this.ranges(t.seq),
        };
      case "hello":
        return {
          type,
          session,
          seq,
          name: this.name(),
          fromStart: this.chance(0.3),
        };
      case "bye":
        return { type, session, seq, name: this.name() };
    }
  }

  /** Encodes a valid frame and notes where its fields are. */
  build(frame: Frame): Built {
    // Keep frames within one datagram: drop records until it fits.
    if (frame.type === "data") {
      let size = HEADER_SIZE + 18;
      const kept: DataRecord[] = [];
      for (const record of frame.records) {
        const cost = RECORD_HEADER_SIZE + (record.digest ? DIGEST_SIZE : 0) +
          record.data.length;
        if (size + cost > MAX_DATAGRAM) break;
        size += cost;
        kept.push(record);
      }
      frame.records = kept;
    }
    // DATA with sequence 0 cannot be encoded (it is invalid on the wire):
    // encode it as 1, then write the 0 in.
    const zero = frame.type === "data" && frame.seq === 0;
    const bytes = encodeFrame(zero ? { ...frame, seq: 1 } : frame);
    if (zero) bytes.fill(0, 16, 24);
    const built: Built = {
      type: frame.type,
      bytes,
      bounds: [HEADER_SIZE],
      nameAt: [],
      countAt: [],
      recordAt: [],
    };
    let at = HEADER_SIZE;
    const mark = (size: number) => {
      at += size;
      built.bounds.push(at);
    };
    switch (frame.type) {
      case "data":
        mark(8);
        mark(8);
        built.countAt.push(at);
        mark(2);
        for (const record of frame.records) {
          built.recordAt.push(at);
          mark(8);
          mark(4);
          mark(4);
          mark(2);
          mark(2);
          if (record.digest) mark(DIGEST_SIZE);
          mark(record.data.length);
        }
        break;
      case "ack":
      case "nack":
      case "hello":
      case "bye": {
        built.nameAt.push(at);
        mark(1);
        mark(encoder.encode(frame.name).length);
        if (frame.type === "ack" || frame.type === "nack") {
          built.countAt.push(at);
          mark(2);
          for (let k = 0; k < frame.ranges.length; k++) {
            mark(8);
            mark(8);
          }
        }
        break;
      }
      case "heartbeat":
        mark(8);
        mark(8);
        break;
      case "gone":
        built.countAt.push(at);
        mark(2);
        for (let k = 0; k < frame.ranges.length; k++) {
          mark(8);
          mark(8);
        }
        break;
    }
    return built;
  }

  /** A valid frame to mutate: often the last one of the session again. */
  base(session: string): Built {
    const last = this.#last;
    if (last && last.session === session && this.chance(0.6)) {
      return last.built;
    }
    const built = this.valid(session);
    this.#last = { session, built };
    return built;
  }

  valid(session: string): Built {
    const type = this.weighted(TYPE_WEIGHTS[this.target]);
    return this.build(this.frame(type, session));
  }

  /** Flips 1-8 bits; with `keepSession`, never in the session id. */
  bitflip(built: Built, keepSession: boolean): Uint8Array {
    const bytes = built.bytes.slice();
    const flips = this.int(1, 8);
    for (let k = 0; k < flips; k++) {
      let at = this.int(0, bytes.length - 1);
      if (keepSession && at >= 8 && at < 16) at = this.pick([5, 6, 7, 16, 23]);
      if (at >= bytes.length) continue;
      bytes[at] = bytes[at]! ^ (1 << this.int(0, 7));
    }
    return bytes;
  }

  truncated(built: Built): Uint8Array {
    const n = built.bytes.length;
    const r = this.random();
    let cut: number;
    if (r < 0.3) cut = this.int(0, HEADER_SIZE); // inside the magic or header
    else if (r < 0.8) cut = this.pick(built.bounds) + this.pick([-1, 0, 0, 1]);
    else cut = this.int(0, n - 1);
    cut = Math.max(0, Math.min(n - 1, cut));
    return built.bytes.slice(0, cut);
  }

  extended(built: Built): Uint8Array {
    const room = MAX_DATAGRAM - built.bytes.length;
    const extra = this.chance(0.01)
      ? room
      : Math.min(room, this.chance(0.8) ? this.int(1, 16) : this.int(17, 2000));
    const bytes = new Uint8Array(built.bytes.length + extra);
    bytes.set(built.bytes);
    bytes.set(
      this.chance(0.5) ? this.bytes(extra) : new Uint8Array(extra),
      built.bytes.length,
    );
    return bytes;
  }

  /** A length, count, offset or total that does not match what follows. */
  lying(session: string): Uint8Array {
    const type = this.pick<FrameTypeName>([
      "data",
      "data",
      "ack",
      "nack",
      "hello",
      "bye",
      "gone",
    ]);
    const built = this.build(this.frame(type, session));
    const bytes = built.bytes.slice();
    const view = new DataView(bytes.buffer);
    if (
      built.nameAt.length > 0 &&
      (this.chance(0.5) || built.countAt.length === 0)
    ) {
      const at = built.nameAt[0]!;
      const n = bytes[at]!;
      bytes[at] = this.pick([
        0,
        65,
        255,
        n + 1,
        Math.max(1, n - 1),
        this.int(0, 255),
      ]);
      return bytes;
    }
    if (type === "data" && built.recordAt.length > 0 && this.chance(0.6)) {
      const at = this.pick(built.recordAt);
      const total = view.getUint32(at + 8);
      const offset = view.getUint32(at + 12);
      const length = view.getUint16(at + 16);
      switch (this.int(0, 4)) {
        case 0:
          view.setUint16(
            at + 16,
            this.pick([length + 1, 0xffff, this.int(0, 0xffff)]),
          );
          break;
        case 1:
          view.setUint32(
            at + 8,
            this.pick([
              0,
              Math.max(0, offset + length - 1),
              0xffff_ffff,
              this.int(0, 0xffff_ffff),
            ]),
          );
          break;
        case 2:
          view.setUint32(
            at + 12,
            this.pick([0xffff_ffff, total, this.int(0, 0xffff_ffff)]),
          );
          break;
        case 3:
          view.setUint16(at + 18, this.int(1, 0xffff)); // reserved
          break;
        default:
          view.setUint32(at + 8, 0xffff_ffff); // a 4 GiB bulletin
          view.setUint32(at + 12, 0);
          break;
      }
      return bytes;
    }
    if (built.countAt.length > 0) {
      const at = built.countAt[0]!;
      const count = view.getUint16(at);
      view.setUint16(
        at,
        this.pick([
          MAX_RANGES + 1,
          4097,
          0xffff,
          (count + 1) & 0xffff,
          Math.max(0, count - 1),
          this.int(0, 0xffff),
        ]),
      );
      return bytes;
    }
    return this.extended(built);
  }

  /** Sequence numbers far ahead, far behind, absurd `low`, or invalid u64s. */
  sequence(session: string): Uint8Array {
    const type = this.weighted(TYPE_WEIGHTS[this.target]);
    const frame = this.frame(type, session);
    frame.seq = this.pick([
      ...EXTREMES,
      this.track.seq + 65536,
      this.track.seq + 65537,
    ]);
    if (frame.type === "data" || frame.type === "heartbeat") {
      frame.low = this.pick([0, 1, frame.seq, MAX_SEQUENCE, 2 ** 40]);
    }
    const bytes = this.build(frame).bytes;
    if (this.chance(0.2)) {
      // A u64 above 2^53-1: the high word beyond 0x001fffff.
      const view = new DataView(bytes.buffer);
      const at = this.pick([16, 24, 32].filter((o) => o + 8 <= bytes.length));
      view.setUint32(
        at,
        this.pick([
          0x0020_0000,
          0xffff_ffff,
          this.int(0x0020_0000, 0xffff_ffff),
        ]),
      );
    }
    return bytes;
  }

  version(built: Built): Uint8Array {
    const bytes = built.bytes.slice();
    if (this.chance(0.5)) bytes[4] = this.pick([0, 2, 3, 0x7f, 0xff]);
    else bytes[5] = this.pick([0, 8, 9, 0x7f, 0x80, 0xff]);
    return bytes;
  }

  tag(built: Built): Uint8Array {
    const length = this.pick([1, 16, 32, 64, 255, this.int(1, 255)]);
    const trailer = this.chance(0.8) ? length : this.int(0, 300);
    const bytes = new Uint8Array(
      Math.min(MAX_DATAGRAM, built.bytes.length + trailer),
    );
    bytes.set(built.bytes);
    bytes.set(
      this.bytes(bytes.length - built.bytes.length),
      built.bytes.length,
    );
    bytes[7] = length;
    return bytes;
  }

  plain(): Uint8Array {
    const r = this.random();
    if (r < 0.2) return encoder.encode("very important data");
    if (r < 0.3) return new Uint8Array(0);
    if (r < 0.5) {
      return encoder.encode(
        this.pick(["M", "MC", "MCS", "MCSt", "mcst", "MCS\u0000", "TSCM"]),
      );
    }
    if (r < 0.7) {
      // A frame whose magic is one byte off.
      const bytes = this.valid(this.track.session).bytes.slice();
      const at = this.int(0, 3);
      bytes[at] = bytes[at]! ^ (1 << this.int(0, 7));
      return bytes;
    }
    // Printable text.
    const text = Array.from(
      { length: this.int(1, 200) },
      () => String.fromCharCode(this.int(0x20, 0x7e)),
    ).join("");
    return encoder.encode(text);
  }

  /** One mutated or valid datagram of `category`. */
  make(
    category: FuzzCategory,
    session: string,
    keepSession: boolean,
  ): Uint8Array {
    switch (category) {
      case "random":
        return this.bytes(this.length());
      case "plain":
        return this.plain();
      case "valid":
        return this.valid(session).bytes;
      case "bitflip":
        return this.bitflip(this.base(session), keepSession);
      case "truncated":
        return this.truncated(this.base(session));
      case "extended":
        return this.extended(this.base(session));
      case "lying":
        return this.lying(session);
      case "sequence":
        return this.sequence(session);
      case "version":
        return this.version(this.base(session));
      case "tag":
        return this.tag(this.base(session));
      case "flood":
        throw new Error("the flood is a phase");
    }
  }
}

/**
 * DATA frames of at most `MAX_DATAGRAM` bytes, each packed with as many
 * empty records as fit, one frame per sequence number.
 */
function* floodData(
  session: string,
  seqs: Iterable<number>,
  now: number,
): Generator<Uint8Array> {
  const count = Math.floor(
    (MAX_DATAGRAM - HEADER_SIZE - 18) / RECORD_HEADER_SIZE,
  );
  const records: DataRecord[] = [];
  const empty = new Uint8Array(0);
  for (let k = 0; k < count; k++) {
    records.push({ bulletin: 1 + k, total: 0, offset: 0, data: empty });
  }
  const template = encodeFrame({
    type: "data",
    session,
    seq: 1,
    retransmit: false,
    timestamp: now,
    low: 1,
    records,
  });
  for (const seq of seqs) {
    // The same records under another sequence number, with bulletin
    // numbers of their own (the sequence number in the high word).
    const bytes = template.slice();
    const view = new DataView(bytes.buffer);
    view.setUint32(20, seq);
    for (let k = 0; k < count; k++) {
      view.setUint32(HEADER_SIZE + 18 + k * RECORD_HEADER_SIZE, seq);
    }
    yield bytes;
  }
}

/**
 * An ACK with 256 selective ranges far above anything sent (values above
 * 2^31 cost the most to keep: boxed numbers), written directly: the same as
 * {@linkcode encodeFrame} makes, faster.
 */
function floodAck(session: string, name: string, maker: Maker): Uint8Array {
  const name8 = encoder.encode(name);
  const bytes = new Uint8Array(
    HEADER_SIZE + 3 + name8.length + 16 * MAX_RANGES,
  );
  const view = new DataView(bytes.buffer);
  bytes.set([0x4d, 0x43, 0x53, 0x54, 1, 2, 0, 0]);
  view.setUint32(8, parseInt(session.slice(0, 8), 16));
  view.setUint32(12, parseInt(session.slice(8), 16));
  let at = HEADER_SIZE;
  bytes[at] = name8.length;
  bytes.set(name8, at + 1);
  at += 1 + name8.length;
  view.setUint16(at, MAX_RANGES);
  at += 2;
  for (let r = 0; r < MAX_RANGES; r++) {
    const first = r * 1_000_000 + maker.int(0, 999);
    // first and last: 2^32 + (a few million), high word 1.
    view.setUint32(at, 1);
    view.setUint32(at + 4, first);
    view.setUint32(at + 8, 1);
    view.setUint32(at + 12, first + maker.int(0, 999));
    at += 16;
  }
  return bytes;
}

/**
 * Yields `options.count` hostile datagrams, deterministic from the seed and
 * `nowMicros`, and counts them per category in `options.counts`.
 *
 * The stream is cut into blocks. A receiver's first block is about the real
 * session (`options.session`, which it follows); after that, blocks
 * alternate between a mix of sessions (the real one and random ones) and a
 * block about a fresh session that starts with a HEARTBEAT, so that the
 * receiver joins it and its state machine sees the whole block. Halfway
 * through comes the flood: a HEARTBEAT (three times), then DATA frames of
 * the maximum size packed with empty records, for every other sequence
 * number, all held out of order. A sender's blocks are about its real
 * session, every other one mixed with random sessions; its flood is one ACK
 * with 256 ranges from each made-up name.
 *
 * @param options Seed, count, target, real session and sizes.
 * @returns The datagrams.
 */
export function* fuzzDatagrams(options: FuzzOptions): Generator<Uint8Array> {
  const counts = options.counts ?? emptyCounts();
  const names = options.names ?? 12_000;
  const maker = new Maker(
    options.seed,
    options.target,
    names,
    options.nowMicros ?? Date.now() * 1000,
  );
  const real = options.session ?? maker.session();
  const blockSize = options.blockSize ?? 1000;
  const flood = Math.min(
    options.count,
    options.flood ?? (options.target === "receiver" ? 600 : names),
  );
  const floodAt = Math.floor((options.count - flood) / 2);
  const tracks = new Map<string, Track>();
  function follow(session: string, seq = 1): Track {
    let track = tracks.get(session);
    if (!track) {
      track = { session, seq, bulletin: 1 };
      tracks.set(session, track);
    }
    return track;
  }
  let made = 0;
  let block = -1;
  let focus = follow(real);
  let mixed = false;
  function* emit(category: FuzzCategory, bytes: Uint8Array) {
    counts[category] += 1;
    made += 1;
    yield bytes;
  }
  while (made < options.count) {
    if (made === floodAt && flood > 0) {
      if (options.target === "receiver") {
        // Join a fresh session at 1000, then every other sequence from
        // 1002 on: whichever frame the receiver joins on, a gap stays open
        // below each later one, so it holds them all (up to its limit).
        const session = maker.session();
        const heartbeat = encodeFrame({
          type: "heartbeat",
          session,
          seq: 999,
          final: false,
          timestamp: maker.now,
          low: 1,
        });
        for (let k = 0; k < Math.min(3, flood); k++) {
          yield* emit("flood", heartbeat);
        }
        const seqs: number[] = [];
        for (let k = 1; k <= flood - 3; k++) seqs.push(1000 + 2 * k);
        for (const bytes of floodData(session, seqs, maker.now)) {
          yield* emit("flood", bytes);
        }
      } else {
        for (let k = 0; k < flood; k++) {
          yield* emit("flood", floodAck(real, `fuzz-${k % names}`, maker));
        }
      }
      continue;
    }
    const index = Math.floor(made / blockSize);
    if (index !== block) {
      block = index;
      if (options.target === "sender") {
        mixed = block % 2 === 1;
        focus = follow(real);
      } else if (block === 0) {
        mixed = false;
        focus = follow(real);
      } else {
        mixed = block % 2 === 1;
        if (!mixed) {
          // A fresh session, joined by its first HEARTBEAT.
          focus = follow(maker.session(), maker.int(0, 5000));
          const heartbeat = encodeFrame({
            type: "heartbeat",
            session: focus.session,
            seq: focus.seq,
            final: false,
            timestamp: maker.now,
            low: 1,
          });
          focus.seq += 1;
          yield* emit("valid", heartbeat);
          continue;
        }
      }
    }
    maker.track = focus;
    if (mixed && maker.chance(0.5)) {
      // The real session, or one nobody follows (not remembered).
      maker.track = maker.chance(0.5)
        ? follow(real)
        : { session: maker.session(), seq: maker.int(0, 100), bulletin: 1 };
    }
    const session = maker.track.session;
    const category = maker.weighted(WEIGHTS);
    yield* emit(category, maker.make(category, session, !mixed));
  }
}
