/**
 * The reliable protocol's wire format, version 1 (`docs/protocol.md`):
 * encoding and decoding of every frame type. Pure: bytes in, values out.
 *
 * Every frame starts with the same 24-byte header: the magic `MCST`, the
 * version, the type, flags, the length of an authentication tag at the end
 * of the datagram (0 in version 1 without keys), the sender's 64-bit session
 * id and a 64-bit sequence number. All integers are big-endian.
 *
 * @module
 */

import { writeU32, writeU64 } from "./bytes.ts";

/** The four bytes every frame starts with: ASCII `MCST`. */
export const MAGIC: readonly number[] = [0x4d, 0x43, 0x53, 0x54];
/** The protocol version this module speaks. */
export const PROTOCOL_VERSION = 1;
/** Size of the common header. */
export const HEADER_SIZE = 24;
/** Fixed part of a DATA body: timestamp, low sequence, record count. */
export const DATA_FIXED_SIZE = 18;
/** Size of a record's header inside a DATA frame. */
export const RECORD_HEADER_SIZE = 20;
/** Size of the SHA-256 digest the first fragment of a fragmented bulletin carries. */
export const DIGEST_SIZE = 32;
/** Longest receiver name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 64;
/** Most sequence ranges one ACK, NACK or GONE frame carries. */
export const MAX_RANGES = 256;
/** Most records one DATA frame carries. */
export const MAX_RECORDS = 4096;
/** Largest sequence number (JavaScript integers are exact up to 2^53 - 1). */
export const MAX_SEQUENCE: number = Number.MAX_SAFE_INTEGER;

/** Frame type codes on the wire. */
export const FRAME_TYPES = {
  data: 1,
  ack: 2,
  nack: 3,
  heartbeat: 4,
  hello: 5,
  bye: 6,
  gone: 7,
} as const;

/** The name of a frame type. */
export type FrameTypeName = keyof typeof FRAME_TYPES;

/** Flag bits of the header's flags byte. */
export const FLAGS = {
  /** DATA: this is a repair, not the first transmission. */
  retransmit: 0x01,
  /** HEARTBEAT: the sender has nothing more to send in this session. */
  final: 0x02,
  /** HELLO: the receiver asks for everything the sender still holds. */
  fromStart: 0x04,
  /** DATA, with a key: the records are encrypted (AES-256-GCM). */
  encrypted: 0x08,
  /** DATA, with a key: the trailer links it to the previous datagram. */
  chained: 0x10,
  /** DATA, with a key: the trailer carries the sender's signature. */
  signed: 0x20,
} as const;

/** An inclusive range of sequence numbers. */
export interface SeqRange {
  /** First sequence number in the range. */
  first: number;
  /** Last sequence number in the range (>= first). */
  last: number;
}

/** One bulletin, or one fragment of a bulletin, inside a DATA frame. */
export interface DataRecord {
  /** The bulletin's number in its session, from 1. */
  bulletin: number;
  /** The whole bulletin's size in bytes. */
  total: number;
  /** Where this fragment starts in the bulletin. */
  offset: number;
  /**
   * SHA-256 of the whole bulletin: present on the first fragment (offset 0)
   * of a bulletin that spans more than one record, absent otherwise.
   */
  digest?: Uint8Array;
  /** The fragment's bytes. */
  data: Uint8Array;
}

/** Fields every frame has. */
export interface FrameHeader {
  /** The sender's session id: 16 lowercase hex digits. */
  session: string;
  /** The sequence number; its meaning depends on the type. */
  seq: number;
}

/** DATA: one datagram of the stream; `seq` is its sequence number. */
export interface DataFrame extends FrameHeader {
  /** The type. */
  type: "data";
  /** A repair rather than a first transmission. */
  retransmit: boolean;
  /** When the sender sent it: microseconds since the Unix epoch. */
  timestamp: number;
  /** The oldest sequence number the sender still holds. */
  low: number;
  /** Bulletins and fragments, in bulletin order. */
  records: DataRecord[];
}

/** ACK: receiver `name` has every sequence up to `seq` (cumulative). */
export interface AckFrame extends FrameHeader {
  /** The type. */
  type: "ack";
  /** The receiver's name. */
  name: string;
  /** Sequence ranges above `seq` that it holds as well (selective). */
  ranges: SeqRange[];
}

/** NACK: receiver `name` (cumulative `seq`) misses `ranges`. */
export interface NackFrame extends FrameHeader {
  /** The type. */
  type: "nack";
  /** The receiver's name. */
  name: string;
  /** The missing ranges. */
  ranges: SeqRange[];
}

/** HEARTBEAT: `seq` is the highest sequence sent so far (0: none yet). */
export interface HeartbeatFrame extends FrameHeader {
  /** The type. */
  type: "heartbeat";
  /** The sender has nothing more to send in this session. */
  final: boolean;
  /** When the sender sent it: microseconds since the Unix epoch. */
  timestamp: number;
  /** The oldest sequence number the sender still holds. */
  low: number;
}

/** HELLO: receiver `name` joins the session; `seq` is its cumulative ack. */
export interface HelloFrame extends FrameHeader {
  /** The type. */
  type: "hello";
  /** The receiver's name. */
  name: string;
  /** The receiver asks for everything the sender still holds. */
  fromStart: boolean;
}

/** BYE: receiver `name` leaves; `seq` is its cumulative ack. */
export interface ByeFrame extends FrameHeader {
  /** The type. */
  type: "bye";
  /** The receiver's name. */
  name: string;
}

/** GONE: the sender no longer holds `ranges`; `seq` is its oldest held. */
export interface GoneFrame extends FrameHeader {
  /** The type. */
  type: "gone";
  /** Ranges that cannot be repaired. */
  ranges: SeqRange[];
}

/** Any frame of protocol version 1. */
export type Frame =
  | DataFrame
  | AckFrame
  | NackFrame
  | HeartbeatFrame
  | HelloFrame
  | ByeFrame
  | GoneFrame;

/** Why a datagram that starts with the magic was dropped. */
export type InvalidReason =
  | "version"
  | "type"
  | "truncated"
  | "malformed"
  | "tag";

/** What {@linkcode decodeFrame} found in a datagram. */
export type Decoded =
  | {
    /** Not a frame: a plain datagram, as in the exercise. */
    kind: "plain";
  }
  | {
    /** A valid frame. */
    kind: "frame";
    /** The frame. */
    frame: Frame;
  }
  | {
    /** A frame that cannot be used: to be dropped and counted. */
    kind: "invalid";
    /** Why. */
    reason: InvalidReason;
  };

/** A frame that cannot be encoded (a value out of range). */
export class FrameError extends Error {
  /**
   * Creates one.
   *
   * @param message What was out of range.
   */
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

class Invalid extends Error {
  readonly reason: InvalidReason;
  constructor(reason: InvalidReason) {
    super(reason);
    this.reason = reason;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const TYPE_NAMES: (FrameTypeName | undefined)[] = [];
for (const [name, code] of Object.entries(FRAME_TYPES)) {
  TYPE_NAMES[code] = name as FrameTypeName;
}
const SESSION_PATTERN = /^[0-9a-f]{16}$/;

/**
 * Returns true when `bytes` starts with the protocol's magic, whatever the
 * rest holds.
 *
 * @param bytes A datagram.
 * @returns Whether the datagram claims to be a frame.
 */
export function hasMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === MAGIC[0] &&
    bytes[1] === MAGIC[1] && bytes[2] === MAGIC[2] && bytes[3] === MAGIC[3];
}

/**
 * Creates a random session id (64 bits from the system's secure generator).
 *
 * @returns 16 lowercase hex digits.
 */
export function newSessionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Returns the encoded size of a DATA frame's record.
 *
 * @param record The record (only `offset`, `total`, `digest` presence and
 * the data length matter).
 * @returns Bytes on the wire.
 */
export function recordSize(record: DataRecord): number {
  return RECORD_HEADER_SIZE + (record.digest ? DIGEST_SIZE : 0) +
    record.data.length;
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new FrameError(what);
}

function checkSeq(value: number, what: string): void {
  // The message is built only on failure: this runs for every field sent.
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new FrameError(
      `${what} must be a whole number from 0 to 2^53-1: ${value}`,
    );
  }
}

function nameBytes(name: string): Uint8Array {
  // A lone surrogate would be sent as U+FFFD: another name.
  check(name.isWellFormed(), "receiver name must be well-formed Unicode");
  const bytes = encoder.encode(name);
  check(
    bytes.length >= 1 && bytes.length <= MAX_NAME_BYTES,
    `receiver name must be 1-${MAX_NAME_BYTES} bytes of UTF-8: ${bytes.length}`,
  );
  return bytes;
}

function checkRanges(ranges: SeqRange[]): void {
  if (ranges.length > MAX_RANGES) {
    throw new FrameError(`too many ranges: ${ranges.length}`);
  }
  for (const range of ranges) {
    checkSeq(range.first, "range start");
    checkSeq(range.last, "range end");
    check(range.first <= range.last, "range end before its start");
  }
}

function bodySize(frame: Frame): number {
  switch (frame.type) {
    case "data": {
      let size = DATA_FIXED_SIZE;
      for (const record of frame.records) size += recordSize(record);
      return size;
    }
    case "ack":
    case "nack":
      return 1 + encoder.encode(frame.name).length + 2 +
        16 * frame.ranges.length;
    case "heartbeat":
      return 16;
    case "hello":
    case "bye":
      return 1 + encoder.encode(frame.name).length;
    case "gone":
      return 2 + 16 * frame.ranges.length;
  }
}

function flagsOf(frame: Frame): number {
  switch (frame.type) {
    case "data":
      return frame.retransmit ? FLAGS.retransmit : 0;
    case "heartbeat":
      return frame.final ? FLAGS.final : 0;
    case "hello":
      return frame.fromStart ? FLAGS.fromStart : 0;
    default:
      return 0;
  }
}

function setU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, Math.floor(value / 0x1_0000_0000));
  view.setUint32(at + 4, value >>> 0);
}

function getU64(view: DataView, at: number): number {
  const high = view.getUint32(at);
  if (high > 0x1f_ffff) throw new Invalid("malformed");
  return high * 0x1_0000_0000 + view.getUint32(at + 4);
}

/** Options of {@linkcode encodeFrame}. */
export interface EncodeOptions {
  /**
   * Write into this buffer (from its start) when the frame fits, instead of
   * allocating one: a sender reuses the buffers of datagrams it no longer
   * holds.
   */
  into?: ArrayBuffer;
}

/**
 * Encodes a frame into a new datagram.
 *
 * @param frame The frame.
 * @param options A buffer to write into.
 * @returns The datagram's bytes (a view of `into` when given and big
 * enough).
 * @throws {FrameError} When a field is out of range.
 */
export function encodeFrame(
  frame: Frame,
  options: EncodeOptions = {},
): Uint8Array {
  check(
    SESSION_PATTERN.test(frame.session),
    "session id must be 16 hex digits",
  );
  checkSeq(frame.seq, "sequence number");
  check(
    frame.type !== "data" || frame.seq >= 1,
    "a DATA frame's sequence number starts at 1",
  );
  const size = HEADER_SIZE + bodySize(frame);
  const into = options.into;
  const bytes = into && into.byteLength >= size
    ? new Uint8Array(into, 0, size)
    : new Uint8Array(size);
  const view = new DataView(bytes.buffer, 0, size);
  bytes.set(MAGIC, 0);
  bytes[4] = PROTOCOL_VERSION;
  bytes[5] = FRAME_TYPES[frame.type];
  bytes[6] = flagsOf(frame);
  bytes[7] = 0;
  bytes.set(sessionBytes(frame.session), 8);
  setU64(view, 16, frame.seq);
  let at = HEADER_SIZE;
  function putName(name: string): void {
    const name8 = nameBytes(name);
    bytes[at] = name8.length;
    bytes.set(name8, at + 1);
    at += 1 + name8.length;
  }
  function putRanges(ranges: SeqRange[]): void {
    checkRanges(ranges);
    view.setUint16(at, ranges.length);
    at += 2;
    for (const range of ranges) {
      setU64(view, at, range.first);
      setU64(view, at + 8, range.last);
      at += 16;
    }
  }
  switch (frame.type) {
    case "data": {
      checkSeq(frame.timestamp, "timestamp");
      checkSeq(frame.low, "low sequence");
      if (frame.records.length > MAX_RECORDS) {
        throw new FrameError(`too many records: ${frame.records.length}`);
      }
      setU64(view, at, frame.timestamp);
      setU64(view, at + 8, frame.low);
      view.setUint16(at + 16, frame.records.length);
      at += DATA_FIXED_SIZE;
      for (const record of frame.records) {
        checkSeq(record.bulletin, "bulletin number");
        check(
          Number.isInteger(record.offset) && record.offset >= 0 &&
            Number.isInteger(record.total) && record.total <= 0xffff_ffff &&
            record.data.length <= 0xffff &&
            record.offset + record.data.length <= record.total,
          "record does not fit its bulletin",
        );
        const fragmented = record.data.length < record.total;
        check(
          (record.digest !== undefined) === (record.offset === 0 && fragmented),
          "a digest belongs on the first fragment of a fragmented bulletin only",
        );
        setU64(view, at, record.bulletin);
        view.setUint32(at + 8, record.total);
        view.setUint32(at + 12, record.offset);
        view.setUint16(at + 16, record.data.length);
        view.setUint16(at + 18, 0);
        at += RECORD_HEADER_SIZE;
        if (record.digest) {
          check(
            record.digest.length === DIGEST_SIZE,
            "digest must be 32 bytes",
          );
          bytes.set(record.digest, at);
          at += DIGEST_SIZE;
        }
        bytes.set(record.data, at);
        at += record.data.length;
      }
      break;
    }
    case "ack":
    case "nack":
      putName(frame.name);
      putRanges(frame.ranges);
      break;
    case "heartbeat":
      checkSeq(frame.timestamp, "timestamp");
      checkSeq(frame.low, "low sequence");
      setU64(view, at, frame.timestamp);
      setU64(view, at + 8, frame.low);
      at += 16;
      break;
    case "hello":
    case "bye":
      putName(frame.name);
      break;
    case "gone":
      putRanges(frame.ranges);
      break;
  }
  return bytes;
}

/**
 * Decodes a datagram. Never throws: a datagram without the magic is
 * `plain`; one with the magic but an unknown version or type, a wrong
 * length or an impossible field is `invalid` with the reason.
 *
 * @param bytes A received datagram.
 * @returns What the datagram is.
 */
export function decodeFrame(bytes: Uint8Array): Decoded {
  if (!hasMagic(bytes)) return { kind: "plain" };
  try {
    return { kind: "frame", frame: decodeValid(bytes) };
  } catch (error) {
    if (error instanceof Invalid) {
      return { kind: "invalid", reason: error.reason };
    }
    if (error instanceof RangeError) {
      return { kind: "invalid", reason: "truncated" };
    }
    return { kind: "invalid", reason: "malformed" };
  }
}

function hex8(view: DataView, at: number): string {
  return view.getUint32(at).toString(16).padStart(8, "0");
}

// Every frame of a session carries the same id: remember the last one in
// both forms instead of converting it for each frame.
let lastSessionText = "";
let lastSessionBytes = new Uint8Array(8);

function sessionBytes(session: string): Uint8Array {
  if (session !== lastSessionText) {
    const bytes = new Uint8Array(8);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, parseInt(session.slice(0, 8), 16));
    view.setUint32(4, parseInt(session.slice(8), 16));
    lastSessionText = session;
    lastSessionBytes = bytes;
  }
  return lastSessionBytes;
}

function sessionText(bytes: Uint8Array, view: DataView): string {
  const last = lastSessionBytes;
  for (let k = 0; k < 8; k++) {
    if (bytes[8 + k] !== last[k]) {
      const text = hex8(view, 8) + hex8(view, 12);
      lastSessionText = text;
      lastSessionBytes = bytes.slice(8, 16);
      return text;
    }
  }
  return lastSessionText;
}

function decodeValid(bytes: Uint8Array): Frame {
  if (bytes.length < 6) throw new Invalid("truncated");
  if (bytes[4] !== PROTOCOL_VERSION) throw new Invalid("version");
  const type = TYPE_NAMES[bytes[5]!];
  if (type === undefined) throw new Invalid("type");
  if (bytes.length < HEADER_SIZE) throw new Invalid("truncated");
  const flags = bytes[6]!;
  // Keys come with a later version of the tools: a tagged frame cannot be
  // checked here, so it is never trusted.
  if (bytes[7] !== 0) throw new Invalid("tag");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const session = sessionText(bytes, view);
  const seq = getU64(view, 16);
  const end = bytes.length;
  let at = HEADER_SIZE;
  function need(count: number): void {
    if (at + count > end) throw new Invalid("truncated");
  }
  function getName(): string {
    need(1);
    const length = bytes[at]!;
    if (length < 1 || length > MAX_NAME_BYTES) throw new Invalid("malformed");
    need(1 + length);
    const name = decoder.decode(bytes.subarray(at + 1, at + 1 + length));
    at += 1 + length;
    return name;
  }
  function getRanges(): SeqRange[] {
    need(2);
    const count = view.getUint16(at);
    at += 2;
    if (count > MAX_RANGES) throw new Invalid("malformed");
    need(16 * count);
    const ranges: SeqRange[] = [];
    for (let i = 0; i < count; i++) {
      const first = getU64(view, at);
      const last = getU64(view, at + 8);
      if (first > last) throw new Invalid("malformed");
      ranges.push({ first, last });
      at += 16;
    }
    return ranges;
  }
  function done(): void {
    if (at !== end) throw new Invalid("malformed");
  }
  const header = { session, seq };
  switch (type) {
    case "data": {
      // Sequence numbers of DATA start at 1 (0 says "nothing" elsewhere).
      if (seq === 0) throw new Invalid("malformed");
      need(DATA_FIXED_SIZE);
      const timestamp = getU64(view, at);
      const low = getU64(view, at + 8);
      const count = view.getUint16(at + 16);
      at += DATA_FIXED_SIZE;
      if (count > MAX_RECORDS) throw new Invalid("malformed");
      const records: DataRecord[] = [];
      for (let i = 0; i < count; i++) {
        need(RECORD_HEADER_SIZE);
        const bulletin = getU64(view, at);
        const total = view.getUint32(at + 8);
        const offset = view.getUint32(at + 12);
        const length = view.getUint16(at + 16);
        if (view.getUint16(at + 18) !== 0) throw new Invalid("malformed");
        at += RECORD_HEADER_SIZE;
        if (offset + length > total) throw new Invalid("malformed");
        const record: DataRecord = {
          bulletin,
          total,
          offset,
          data: new Uint8Array(0),
        };
        if (offset === 0 && length < total) {
          need(DIGEST_SIZE);
          record.digest = bytes.subarray(at, at + DIGEST_SIZE);
          at += DIGEST_SIZE;
        }
        need(length);
        record.data = bytes.subarray(at, at + length);
        at += length;
        records.push(record);
      }
      done();
      return {
        type,
        ...header,
        retransmit: (flags & FLAGS.retransmit) !== 0,
        timestamp,
        low,
        records,
      };
    }
    case "ack":
    case "nack": {
      const name = getName();
      const ranges = getRanges();
      done();
      return { type, ...header, name, ranges };
    }
    case "heartbeat": {
      need(16);
      const timestamp = getU64(view, at);
      const low = getU64(view, at + 8);
      at += 16;
      done();
      return {
        type,
        ...header,
        final: (flags & FLAGS.final) !== 0,
        timestamp,
        low,
      };
    }
    case "hello": {
      const name = getName();
      done();
      return {
        type,
        ...header,
        name,
        fromStart: (flags & FLAGS.fromStart) !== 0,
      };
    }
    case "bye": {
      const name = getName();
      done();
      return { type, ...header, name };
    }
    case "gone": {
      const ranges = getRanges();
      done();
      return { type, ...header, ranges };
    }
  }
}

/** A DATA frame's header, read without decoding its records. */
export interface DataHeader {
  /** The session id. */
  session: string;
  /** The sequence number. */
  seq: number;
  /** How many records the body says it carries. */
  records: number;
}

/**
 * Reads the header of a DATA frame without decoding its body: a receiver
 * drops duplicates and datagrams too far ahead from the header alone.
 *
 * @param bytes A received datagram.
 * @returns The session and sequence number, or `undefined` when it is not
 * a DATA frame with a valid header (decode it to learn why).
 */
export function peekData(bytes: Uint8Array): DataHeader | undefined {
  if (
    bytes.length < HEADER_SIZE + DATA_FIXED_SIZE || !hasMagic(bytes) ||
    bytes[4] !== PROTOCOL_VERSION || bytes[5] !== FRAME_TYPES.data ||
    bytes[7] !== 0
  ) {
    return undefined;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(16) > 0x1f_ffff) return undefined;
  const seq = view.getUint32(16) * 0x1_0000_0000 + view.getUint32(20);
  if (seq === 0) return undefined;
  const records = view.getUint16(HEADER_SIZE + 16);
  return { session: sessionText(bytes, view), seq, records };
}

/**
 * Returns a copy of an encoded DATA frame marked as a retransmission, with a
 * new timestamp and low sequence (fixed offsets, so no re-encoding).
 *
 * @param datagram An encoded DATA frame from {@linkcode encodeFrame}.
 * @param fields The new timestamp and low sequence.
 * @returns The repair datagram.
 */
export function asRetransmission(
  datagram: Uint8Array,
  fields: { timestamp: number; low: number },
): Uint8Array {
  const copy = datagram.slice();
  const view = new DataView(copy.buffer);
  copy[6] = copy[6]! | FLAGS.retransmit;
  setU64(view, HEADER_SIZE, fields.timestamp);
  setU64(view, HEADER_SIZE + 8, fields.low);
  return copy;
}

/**
 * Sets the timestamp of an encoded DATA frame in place (fixed offset), so
 * that it says when the datagram was really sent.
 *
 * @param datagram An encoded DATA frame from {@linkcode encodeFrame}.
 * @param timestamp Microseconds since the Unix epoch.
 */
export function stampData(datagram: Uint8Array, timestamp: number): void {
  writeU64(datagram, HEADER_SIZE, timestamp);
}

/** The fields of a DATA frame that carries one fragment of a bulletin. */
export interface FragmentFields {
  /** The session id, 16 hex digits. */
  session: string;
  /** The frame's sequence number (at least 1). */
  seq: number;
  /** Send time, µs since the Unix epoch. */
  timestamp: number;
  /** The sender's lowest held sequence number. */
  low: number;
  /** The bulletin's number. */
  bulletin: number;
  /** The bulletin's size in bytes. */
  total: number;
  /** Where this fragment starts in it. */
  offset: number;
  /** SHA-256 of the whole bulletin: on the first fragment only. */
  digest?: Uint8Array;
}

/** Options of {@linkcode encodeFragment}. */
export interface EncodeFragmentOptions {
  /** The buffer to encode into (large enough: checked). */
  into: ArrayBuffer;
}

/**
 * Encodes a first transmission of one fragment, as {@linkcode encodeFrame}
 * would encode a DATA frame with that one record, byte for byte, but
 * without building the frame and its record as objects or checking what
 * the sender made itself: the bulk sender's hot path (a 100 MB file is
 * some 75,000 of them).
 *
 * @param fields The frame's and the record's fields.
 * @param data The fragment's bytes (at most 65,535).
 * @param options The buffer to encode into.
 * @returns A view of the encoded frame at the start of `into`.
 * @throws {FrameError} When it does not fit `into`, or the data or digest
 * has the wrong size.
 */
export function encodeFragment(
  fields: FragmentFields,
  data: Uint8Array,
  options: EncodeFragmentOptions,
): Uint8Array {
  const digest = fields.digest;
  const size = HEADER_SIZE + DATA_FIXED_SIZE + RECORD_HEADER_SIZE +
    (digest ? DIGEST_SIZE : 0) + data.length;
  if (
    size > options.into.byteLength || data.length > 0xffff ||
    (digest !== undefined && digest.length !== DIGEST_SIZE)
  ) {
    throw new FrameError(`a fragment of ${data.length} bytes does not fit`);
  }
  const bytes = new Uint8Array(options.into, 0, size);
  bytes.set(MAGIC, 0);
  bytes[4] = PROTOCOL_VERSION;
  bytes[5] = FRAME_TYPES.data;
  bytes[6] = 0;
  bytes[7] = 0;
  bytes.set(sessionBytes(fields.session), 8);
  writeU64(bytes, 16, fields.seq);
  writeU64(bytes, 24, fields.timestamp);
  writeU64(bytes, 32, fields.low);
  bytes[40] = 0;
  bytes[41] = 1;
  writeU64(bytes, 42, fields.bulletin);
  writeU32(bytes, 50, fields.total);
  writeU32(bytes, 54, fields.offset);
  bytes[58] = data.length >>> 8;
  bytes[59] = data.length & 0xff;
  bytes[60] = 0;
  bytes[61] = 0;
  let at = 62;
  if (digest) {
    bytes.set(digest, at);
    at += DIGEST_SIZE;
  }
  bytes.set(data, at);
  return bytes;
}

/**
 * Returns the current time in microseconds since the Unix epoch, as DATA and
 * HEARTBEAT frames carry it.
 *
 * @returns Microseconds.
 */
export function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}
