import { seededRandom } from "../../lib/net/fault.ts";
import assert from "node:assert/strict";
import {
  asRetransmission,
  type ByeFrame,
  DATA_FIXED_SIZE,
  type DataFrame,
  type DataRecord,
  type Decoded,
  decodeFrame,
  DIGEST_SIZE,
  encodeFragment,
  encodeFrame,
  FLAGS,
  type Frame,
  FRAME_TYPES,
  FrameError,
  type FrameTypeName,
  hasMagic,
  HEADER_SIZE,
  type HeartbeatFrame,
  type InvalidReason,
  MAGIC,
  MAX_NAME_BYTES,
  MAX_RANGES,
  MAX_RECORDS,
  MAX_SEQUENCE,
  newSessionId,
  nowMicros,
  peekData,
  PROTOCOL_VERSION,
  RECORD_HEADER_SIZE,
  recordSize,
  type SeqRange,
} from "../../lib/wire/frame.ts";

// ---------------------------------------------------------------------------
// Test vectors from docs/protocol.md

const PROTOCOL_DOC = new URL("../../docs/protocol.md", import.meta.url);
/** How many vectors docs/protocol.md holds at least; raise it when adding. */
const MIN_VECTORS = 36;
const REASONS: readonly InvalidReason[] = [
  "version",
  "type",
  "truncated",
  "malformed",
  "tag",
];

/** One vector block of the protocol document. */
type Vector =
  & { name: string; bytes: Uint8Array }
  & (
    | { kind: "frame"; frame: Frame }
    | { kind: "invalid"; reason: InvalidReason }
    | { kind: "plain"; text: string }
  );

function hexToBytes(hex: string): Uint8Array {
  assert.match(hex, /^(?:[0-9a-f]{2})*$/, `not hex bytes: ${hex}`);
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) {
    bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  }
  return bytes;
}

function bytesToHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Parses a vector's JSON: `data` and `digest` hold hex strings. */
function parseFrameJson(json: string): Frame {
  return JSON.parse(json, (key, value) => {
    if ((key === "data" || key === "digest") && typeof value === "string") {
      return hexToBytes(value);
    }
    return value;
  }) as Frame;
}

function parseVector(block: string): Vector {
  const lines = block.split("\n");
  const nameLine = /^vector: ([a-z0-9-]+)$/.exec(lines[0] ?? "");
  assert.ok(
    nameLine,
    `a vector block must start with "vector: NAME": ${block}`,
  );
  const name = nameLine[1]!;
  const outcome = /^(frame|invalid|plain): (.*)$/.exec(lines[1] ?? "");
  assert.ok(outcome, `${name}: second line must be frame:, invalid: or plain:`);
  const hexLine = /^hex:(.*)$/.exec(lines[2] ?? "");
  assert.ok(hexLine, `${name}: third line must be hex:`);
  const hex = [hexLine[1]!, ...lines.slice(3)]
    .map((line) => line.replace(/#.*$/, "").replace(/\s+/g, ""))
    .join("");
  const bytes = hexToBytes(hex);
  const value = outcome[2]!;
  switch (outcome[1]) {
    case "frame":
      return { name, bytes, kind: "frame", frame: parseFrameJson(value) };
    case "invalid":
      assert.ok(
        (REASONS as readonly string[]).includes(value),
        `${name}: unknown reason ${value}`,
      );
      return { name, bytes, kind: "invalid", reason: value as InvalidReason };
    default: {
      const text: unknown = JSON.parse(value);
      assert.equal(typeof text, "string", `${name}: plain takes a JSON string`);
      return { name, bytes, kind: "plain", text: text as string };
    }
  }
}

function loadVectors(markdown: string): Vector[] {
  const text = markdown.replaceAll("\r\n", "\n");
  const opened = text.match(/^```vector$/gm)?.length ?? 0;
  const blocks = [...text.matchAll(/^```vector\n([\s\S]*?)\n```$/gm)];
  assert.equal(blocks.length, opened, "every vector block must be closed");
  const vectors = blocks.map((match) => parseVector(match[1]!));
  assert.ok(
    vectors.length >= MIN_VECTORS,
    `found ${vectors.length} vectors in docs/protocol.md, expected at least ${MIN_VECTORS}`,
  );
  const names = new Set(vectors.map((vector) => vector.name));
  assert.equal(names.size, vectors.length, "vector names must be unique");
  return vectors;
}

const DOC_TEXT = await Deno.readTextFile(PROTOCOL_DOC);
const VECTORS = loadVectors(DOC_TEXT);

function vector(name: string): Vector {
  const found = VECTORS.find((v) => v.name === name);
  assert.ok(found, `no vector ${name} in docs/protocol.md`);
  return found;
}

function frameVector(name: string): { frame: Frame; bytes: Uint8Array } {
  const found = vector(name);
  assert.equal(found.kind, "frame", `${name} is not a frame vector`);
  return found as { frame: Frame; bytes: Uint8Array };
}

Deno.test("the protocol document has the required vectors", () => {
  for (
    const name of [
      "data-single",
      "data-packed-two",
      "data-first-fragment",
      "data-middle-fragment",
      "data-last-fragment",
      "data-retransmitted",
      "ack-two-ranges",
      "ack-cumulative",
      "nack-one-range",
      "heartbeat-idle",
      "heartbeat-final",
      "heartbeat-largest-sequence",
      "hello",
      "hello-from-start",
      "bye",
      "gone",
      "plain-exercise",
      "plain-empty",
      "invalid-version",
      "invalid-type-0",
      "invalid-type-8",
      "invalid-truncated-header",
      "invalid-record-length",
      "invalid-tag",
      "invalid-name-empty",
      "invalid-sequence-too-large",
    ]
  ) vector(name);
  const types = new Set<string>();
  const reasons = new Set<string>();
  for (const v of VECTORS) {
    if (v.kind === "frame") types.add(v.frame.type);
    if (v.kind === "invalid") reasons.add(v.reason);
  }
  assert.deepEqual([...types].sort(), Object.keys(FRAME_TYPES).sort());
  assert.deepEqual([...reasons].sort(), [...REASONS].sort());
});

Deno.test("every frame vector decodes to its JSON and encodes to its bytes", () => {
  let count = 0;
  for (const v of VECTORS) {
    if (v.kind !== "frame") continue;
    assert.deepEqual(
      decodeFrame(v.bytes),
      { kind: "frame", frame: v.frame },
      v.name,
    );
    assert.equal(bytesToHex(encodeFrame(v.frame)), bytesToHex(v.bytes), v.name);
    count++;
  }
  assert.ok(count >= 16, `only ${count} frame vectors`);
});

Deno.test("every invalid vector decodes as invalid with its reason", () => {
  let count = 0;
  for (const v of VECTORS) {
    if (v.kind !== "invalid") continue;
    assert.deepEqual(
      decodeFrame(v.bytes),
      { kind: "invalid", reason: v.reason },
      v.name,
    );
    assert.ok(hasMagic(v.bytes), v.name);
    count++;
  }
  assert.ok(count >= 6, `only ${count} invalid vectors`);
});

Deno.test("every plain vector is its text and decodes as plain", () => {
  let count = 0;
  for (const v of VECTORS) {
    if (v.kind !== "plain") continue;
    assert.deepEqual(v.bytes, new TextEncoder().encode(v.text), v.name);
    assert.deepEqual(decodeFrame(v.bytes), { kind: "plain" }, v.name);
    count++;
  }
  assert.ok(count >= 2, `only ${count} plain vectors`);
});

Deno.test("the fragment vectors reassemble to a bulletin matching its digest", async () => {
  const parts = [
    "data-first-fragment",
    "data-middle-fragment",
    "data-last-fragment",
  ]
    .map((name) => frameVector(name).frame)
    .map((frame) => {
      assert.equal(frame.type, "data");
      return frame.type === "data" ? frame.records[0]! : undefined!;
    });
  const total = parts[0]!.total;
  const bulletin = new Uint8Array(total);
  for (const part of parts) {
    assert.equal(part.bulletin, parts[0]!.bulletin);
    assert.equal(part.total, total);
    bulletin.set(part.data, part.offset);
  }
  assert.equal(parts.reduce((sum, part) => sum + part.data.length, 0), total);
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", bulletin),
  );
  assert.deepEqual(parts[0]!.digest, digest);
  assert.equal(parts[1]!.digest, undefined);
  assert.equal(parts[2]!.digest, undefined);
});

Deno.test("asRetransmission of data-single gives the data-retransmitted vector", () => {
  const original = frameVector("data-single");
  const repair = frameVector("data-retransmitted");
  assert.equal(repair.frame.type, "data");
  if (repair.frame.type !== "data") return;
  const out = asRetransmission(original.bytes, {
    timestamp: repair.frame.timestamp,
    low: repair.frame.low,
  });
  assert.equal(bytesToHex(out), bytesToHex(repair.bytes));
});

Deno.test("the document's type and flag tables match the code", () => {
  const types: Record<string, number> = {};
  for (
    const [, code, name] of DOC_TEXT.matchAll(
      /^\|\s+(\d)\s+\|\s+([A-Z]+)\s+\|/gm,
    )
  ) types[name!.toLowerCase()] = Number(code);
  assert.deepEqual(types, { ...FRAME_TYPES });
  const flags: Record<string, number> = {};
  for (
    const [, bit, name] of DOC_TEXT.matchAll(
      /^\|\s+`0x([0-9a-f]{2})`\s+\|\s+([a-z-]+)\s+\|/gm,
    )
  ) {
    flags[name!.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())] =
      parseInt(bit!, 16);
  }
  assert.deepEqual(flags, { ...FLAGS });
  assert.equal(HEADER_SIZE, 24);
  assert.equal(DATA_FIXED_SIZE, 18);
  assert.equal(RECORD_HEADER_SIZE, 20);
  assert.equal(DIGEST_SIZE, 32);
  assert.equal(MAX_RANGES, 256);
  assert.equal(MAX_RECORDS, 4096);
  assert.equal(MAX_NAME_BYTES, 64);
  assert.equal(MAX_SEQUENCE, 2 ** 53 - 1);
  assert.equal(PROTOCOL_VERSION, 1);
  assert.deepEqual([...MAGIC], [...new TextEncoder().encode("MCST")]);
});

// ---------------------------------------------------------------------------
// Random frames

/** The fault shim's seeded generator (mulberry32), so failures can be replayed. */
class Random {
  /** A float in [0, 1). */
  readonly next: () => number;
  constructor(seed: number) {
    this.next = seededRandom(seed);
  }
  /** An integer from `min` to `max` inclusive (both within 2^32). */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  bool(): boolean {
    return this.next() < 0.5;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }
  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.int(0, 255);
    return out;
  }
  /** A u64 value up to 2^53-1, often near an edge. */
  seq(): number {
    switch (this.int(0, 5)) {
      case 0:
        return this.pick([0, 1, 0xffff_ffff, 0x1_0000_0000, MAX_SEQUENCE]);
      case 1:
        return MAX_SEQUENCE - this.int(0, 1000);
      case 2:
        return this.int(0, 1000);
      case 3:
        return this.int(0, 0xffff_ffff);
      default:
        return this.int(0, 0x1f_ffff) * 0x1_0000_0000 +
          this.int(0, 0xffff_ffff);
    }
  }
}

const SEED = 0x5eed_0003;
const NAME_CHARS = ["a", "z", "0", "-", "_", ".", "é", "€", "😀", "Ω", " "];

function randomSession(random: Random): string {
  return bytesToHex(random.bytes(8));
}

function randomName(random: Random): string {
  const target = random.int(1, MAX_NAME_BYTES);
  let name = "";
  let size = 0;
  for (;;) {
    const char = random.pick(NAME_CHARS);
    const charSize = new TextEncoder().encode(char).length;
    if (size + charSize > target) break;
    name += char;
    size += charSize;
  }
  return name === "" ? "n" : name;
}

function randomRanges(random: Random): SeqRange[] {
  const count = random.int(0, 9) === 0
    ? random.int(0, MAX_RANGES)
    : random.int(0, 4);
  const ranges: SeqRange[] = [];
  for (let i = 0; i < count; i++) {
    const a = random.seq();
    const b = random.seq();
    ranges.push({ first: Math.min(a, b), last: Math.max(a, b) });
  }
  return ranges;
}

function randomRecord(random: Random): DataRecord {
  const bulletin = random.seq();
  const length = random.int(0, 9) === 0
    ? random.int(0, 2000)
    : random.int(0, 40);
  const data = random.bytes(length);
  switch (random.int(0, 2)) {
    case 0: // a whole bulletin
      return { bulletin, total: length, offset: 0, data };
    case 1: { // the first fragment
      const total = length + random.int(1, 100_000);
      return { bulletin, total, offset: 0, digest: random.bytes(32), data };
    }
    default: { // a later fragment
      const offset = random.int(1, 100_000);
      const total = offset + length + random.int(0, 3);
      return { bulletin, total, offset, data };
    }
  }
}

function randomFrame(random: Random, type: FrameTypeName): Frame {
  const session = randomSession(random);
  const seq = random.seq();
  switch (type) {
    case "data": {
      const records: DataRecord[] = [];
      const count = random.int(0, 5);
      for (let i = 0; i < count; i++) records.push(randomRecord(random));
      return {
        type,
        session,
        seq: Math.max(1, seq),
        retransmit: random.bool(),
        timestamp: random.seq(),
        low: random.seq(),
        records,
      };
    }
    case "ack":
    case "nack":
      return {
        type,
        session,
        seq,
        name: randomName(random),
        ranges: randomRanges(random),
      };
    case "heartbeat":
      return {
        type,
        session,
        seq,
        final: random.bool(),
        timestamp: random.seq(),
        low: random.seq(),
      };
    case "hello":
      return {
        type,
        session,
        seq,
        name: randomName(random),
        fromStart: random.bool(),
      };
    case "bye":
      return { type, session, seq, name: randomName(random) };
    case "gone":
      return { type, session, seq, ranges: randomRanges(random) };
  }
}

/** The size the layout tables in docs/protocol.md give a frame. */
function expectedSize(frame: Frame): number {
  const utf8 = (text: string) => new TextEncoder().encode(text).length;
  switch (frame.type) {
    case "data":
      return 42 + frame.records.reduce(
        (sum, r) => sum + 20 + (r.digest ? 32 : 0) + r.data.length,
        0,
      );
    case "ack":
    case "nack":
      return 24 + 1 + utf8(frame.name) + 2 + 16 * frame.ranges.length;
    case "heartbeat":
      return 40;
    case "hello":
    case "bye":
      return 24 + 1 + utf8(frame.name);
    case "gone":
      return 26 + 16 * frame.ranges.length;
  }
}

const TYPE_NAMES = Object.keys(FRAME_TYPES) as FrameTypeName[];
const PER_TYPE = 2000;

Deno.test(`${PER_TYPE} random frames of every type survive a round trip`, () => {
  const random = new Random(SEED);
  for (const type of TYPE_NAMES) {
    for (let i = 0; i < PER_TYPE; i++) {
      const frame = randomFrame(random, type);
      const what = `seed ${SEED}, ${type} #${i}`;
      const bytes = encodeFrame(frame);
      assert.equal(bytes.length, expectedSize(frame), what);
      assert.deepEqual([...bytes.subarray(0, 8)], [
        ...MAGIC,
        1,
        FRAME_TYPES[type],
        bytes[6],
        0,
      ], what);
      assert.equal(bytesToHex(bytes.subarray(8, 16)), frame.session, what);
      assert.deepEqual(decodeFrame(bytes), { kind: "frame", frame }, what);
      assert.deepEqual(encodeFrame(frame), bytes, what);
      if (frame.type === "data") {
        for (const record of frame.records) {
          assert.equal(
            recordSize(record),
            20 + (record.digest ? 32 : 0) + record.data.length,
          );
        }
      }
    }
  }
});

Deno.test("frames at the limits survive a round trip", () => {
  const random = new Random(SEED + 1);
  const frames: Frame[] = [
    {
      type: "ack",
      session: "ffffffffffffffff",
      seq: MAX_SEQUENCE,
      name: "x".repeat(MAX_NAME_BYTES),
      ranges: Array.from(
        { length: MAX_RANGES },
        (_, i) => ({ first: i, last: MAX_SEQUENCE }),
      ),
    },
    {
      type: "nack",
      session: "0000000000000000",
      seq: 0,
      name: "😀".repeat(MAX_NAME_BYTES / 4),
      ranges: [],
    },
    {
      type: "data",
      session: "0000000000000001",
      seq: MAX_SEQUENCE,
      retransmit: true,
      timestamp: MAX_SEQUENCE,
      low: MAX_SEQUENCE,
      records: Array.from(
        { length: MAX_RECORDS },
        (_, i) => ({
          bulletin: i,
          total: 0,
          offset: 0,
          data: new Uint8Array(),
        }),
      ),
    },
    {
      type: "data",
      session: "0000000000000001",
      seq: 1,
      retransmit: false,
      timestamp: 0,
      low: 0,
      records: [
        { bulletin: 1, total: 0xffff, offset: 0, data: random.bytes(0xffff) },
        {
          bulletin: MAX_SEQUENCE,
          total: 0xffff_ffff,
          offset: 0,
          digest: random.bytes(32),
          data: random.bytes(3),
        },
        {
          bulletin: 2,
          total: 0xffff_ffff,
          offset: 0xffff_ffff - 5,
          data: random.bytes(5),
        },
      ],
    },
    {
      type: "gone",
      session: "0123456789abcdef",
      seq: 5,
      ranges: [{ first: MAX_SEQUENCE, last: MAX_SEQUENCE }],
    },
  ];
  for (const frame of frames) {
    const bytes = encodeFrame(frame);
    assert.equal(bytes.length, expectedSize(frame), frame.type);
    assert.deepEqual(decodeFrame(bytes), { kind: "frame", frame }, frame.type);
  }
});

/** Valid frames to cut and mutate: the vectors and a few random ones. */
function sampleFrames(): Uint8Array[] {
  const random = new Random(SEED + 2);
  const samples = VECTORS.filter((v) => v.kind === "frame").map((v) => v.bytes);
  for (const type of TYPE_NAMES) {
    for (let i = 0; i < 3; i++) {
      samples.push(encodeFrame(randomFrame(random, type)));
    }
  }
  return samples.filter((bytes) => bytes.length <= 4000);
}

Deno.test("every truncation of a valid frame is invalid, truncated", () => {
  let count = 0;
  for (const bytes of sampleFrames()) {
    for (let length = 0; length < bytes.length; length++) {
      const cut = bytes.slice(0, length);
      const decoded = decodeFrame(cut);
      const expected: Decoded = length < 4
        ? { kind: "plain" }
        : { kind: "invalid", reason: "truncated" };
      assert.deepEqual(
        decoded,
        expected,
        `${bytesToHex(bytes)} cut to ${length}`,
      );
      // The same bytes inside a larger buffer decode the same way.
      const offset = new Uint8Array(length + 7);
      offset.set(cut, 3);
      assert.deepEqual(decodeFrame(offset.subarray(3, 3 + length)), expected);
      count++;
    }
  }
  assert.ok(count > 2000, `only ${count} truncations`);
});

Deno.test("a valid frame with bytes after its last field is malformed", () => {
  for (const bytes of sampleFrames()) {
    for (const extra of [[0], [1, 2, 3], new Array(32).fill(0)]) {
      const longer = new Uint8Array([...bytes, ...extra]);
      assert.deepEqual(
        decodeFrame(longer),
        { kind: "invalid", reason: "malformed" },
        bytesToHex(longer),
      );
    }
  }
});

/** The flags byte an encoder writes for what `frame` says. */
function canonicalFlags(frame: Frame): number {
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

Deno.test("each flag bit means something on its own frame type only", () => {
  const random = new Random(SEED + 5);
  for (const type of TYPE_NAMES) {
    const bytes = encodeFrame(randomFrame(random, type));
    for (let bit = 0; bit < 8; bit++) {
      const flagged = bytes.slice();
      flagged[6] = 1 << bit;
      const decoded = decodeFrame(flagged);
      assert.equal(decoded.kind, "frame", `${type} with flags ${1 << bit}`);
      if (decoded.kind !== "frame") continue;
      const frame = decoded.frame;
      const what = `${type} with flags 0x${(1 << bit).toString(16)}`;
      assert.equal(canonicalFlags(frame), flagged[6]! & flagsFor(type), what);
      if (frame.type === "data") {
        assert.equal(frame.retransmit, 1 << bit === FLAGS.retransmit, what);
      }
      if (frame.type === "heartbeat") {
        assert.equal(frame.final, 1 << bit === FLAGS.final, what);
      }
      if (frame.type === "hello") {
        assert.equal(frame.fromStart, 1 << bit === FLAGS.fromStart, what);
      }
    }
  }
});

function flagsFor(type: FrameTypeName): number {
  switch (type) {
    case "data":
      return FLAGS.retransmit;
    case "heartbeat":
      return FLAGS.final;
    case "hello":
      return FLAGS.fromStart;
    default:
      return 0;
  }
}

Deno.test("random mutations never throw, and whatever decodes re-encodes", () => {
  const random = new Random(SEED + 3);
  const samples = sampleFrames();
  const seen = { plain: 0, frame: 0, invalid: 0 };
  const reasons = new Set<string>();
  for (let i = 0; i < 20_000; i++) {
    const source = random.pick(samples);
    let bytes = Array.from(source);
    const edits = random.int(1, 4);
    for (let e = 0; e < edits; e++) {
      const at = random.int(0, Math.max(0, bytes.length - 1));
      switch (random.int(0, 4)) {
        case 0: { // flip a bit, often in the header and the first fields
          const bit = random.bool() ? random.int(0, Math.min(60, at)) : at;
          if (bit < bytes.length) {
            bytes[bit] = bytes[bit]! ^ (1 << random.int(0, 7));
          }
          break;
        }
        case 1: // a random byte
          bytes[at] = random.int(0, 255);
          break;
        case 2: // insert bytes
          bytes.splice(at, 0, ...random.bytes(random.int(1, 3)));
          break;
        case 3: // delete bytes
          bytes.splice(at, random.int(1, 3));
          break;
        default: // an extreme value in a length or count field
          bytes[at] = random.pick([0x00, 0x01, 0x7f, 0x80, 0xff]);
      }
    }
    if (random.int(0, 9) === 0) {
      bytes = bytes.slice(0, random.int(0, bytes.length));
    }
    const mutated = new Uint8Array(bytes);
    const what = `seed ${SEED + 3}, mutation #${i}: ${bytesToHex(mutated)}`;
    let decoded: Decoded;
    try {
      decoded = decodeFrame(mutated);
    } catch (error) {
      assert.fail(`${what}: decodeFrame threw ${error}`);
    }
    seen[decoded.kind]++;
    if (decoded.kind === "invalid") {
      assert.ok(REASONS.includes(decoded.reason), what);
      reasons.add(decoded.reason);
    }
    if (decoded.kind === "plain") assert.ok(!hasMagic(mutated), what);
    if (decoded.kind === "frame") {
      // Anything the decoder accepts, the encoder writes back the same,
      // except flag bits that mean nothing for the type.
      const again = encodeFrame(decoded.frame);
      const expected = mutated.slice();
      expected[6] = canonicalFlags(decoded.frame);
      assert.equal(bytesToHex(again), bytesToHex(expected), what);
    }
  }
  assert.ok(
    seen.frame > 100 && seen.invalid > 1000 && seen.plain > 10,
    JSON.stringify(seen),
  );
  assert.deepEqual([...reasons].sort(), [...REASONS].sort());
});

Deno.test("random datagrams that start with the magic never throw", () => {
  const random = new Random(SEED + 4);
  for (let i = 0; i < 5000; i++) {
    const bytes = random.bytes(random.int(4, 120));
    bytes.set(MAGIC, 0);
    if (random.int(0, 3) > 0) bytes[4] = 1;
    if (random.int(0, 3) > 0 && bytes.length > 5) bytes[5] = random.int(1, 7);
    if (random.int(0, 3) > 0 && bytes.length > 7) bytes[7] = 0;
    if (random.bool() && bytes.length > 16) bytes[16] = 0;
    const decoded = decodeFrame(bytes);
    assert.ok(
      decoded.kind === "frame" || decoded.kind === "invalid",
      `${bytesToHex(bytes)}: ${JSON.stringify(decoded)}`,
    );
  }
});

// ---------------------------------------------------------------------------
// Plain datagrams and helpers

Deno.test("datagrams without the magic are plain", () => {
  const utf8 = (text: string) => new TextEncoder().encode(text);
  for (
    const bytes of [
      utf8("very important data"),
      utf8("ack"),
      new Uint8Array(),
      utf8("M"),
      utf8("MCS"),
      utf8("mcst"),
      utf8("XMCST"),
      utf8("MCSt and more"),
      new Uint8Array(65_507),
    ]
  ) {
    assert.deepEqual(decodeFrame(bytes), { kind: "plain" }, bytesToHex(bytes));
  }
  // A text that happens to start with the magic is not plain.
  assert.deepEqual(decodeFrame(utf8("MCST")), {
    kind: "invalid",
    reason: "truncated",
  });
  assert.deepEqual(decodeFrame(utf8("MCST is a word")), {
    kind: "invalid",
    reason: "version",
  });
});

Deno.test("hasMagic looks at the first four bytes only", () => {
  const utf8 = (text: string) => new TextEncoder().encode(text);
  assert.equal(hasMagic(utf8("MCST")), true);
  assert.equal(hasMagic(utf8("MCST and anything")), true);
  assert.equal(hasMagic(frameVector("hello").bytes), true);
  assert.equal(hasMagic(utf8("MCS")), false);
  assert.equal(hasMagic(new Uint8Array()), false);
  assert.equal(hasMagic(utf8("mcst")), false);
  assert.equal(hasMagic(utf8(" MCST")), false);
  assert.equal(hasMagic(utf8("very important data")), false);
  const inside = utf8("xxMCSTyy");
  assert.equal(hasMagic(inside.subarray(2)), true);
});

Deno.test("newSessionId gives 16 lowercase hex digits, different each time", () => {
  const ids = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const id = newSessionId();
    assert.match(id, /^[0-9a-f]{16}$/);
    ids.add(id);
  }
  assert.equal(ids.size, 200);
  const id = newSessionId();
  const bytes = encodeFrame({ type: "bye", session: id, seq: 0, name: "r" });
  assert.equal(bytesToHex(bytes.subarray(8, 16)), id);
});

Deno.test("nowMicros is the wall clock in whole microseconds", () => {
  const before = Date.now() * 1000;
  const now = nowMicros();
  const after = Date.now() * 1000;
  assert.ok(Number.isSafeInteger(now));
  assert.ok(
    now >= before - 1000 && now <= after + 1000,
    `${before} ${now} ${after}`,
  );
});

Deno.test("asRetransmission sets the flag and fields and leaves its input alone", () => {
  const { frame, bytes } = frameVector("data-packed-two");
  assert.equal(frame.type, "data");
  if (frame.type !== "data") return;
  const before = bytes.slice();
  const fields = { timestamp: 1_700_000_123_456_789, low: 2 };
  const out = asRetransmission(bytes, fields);
  assert.deepEqual(bytes, before, "input changed");
  assert.notEqual(out.buffer, bytes.buffer);
  assert.deepEqual(decodeFrame(out), {
    kind: "frame",
    frame: { ...frame, retransmit: true, ...fields },
  });
  // Only the flags, the timestamp and the low sequence differ.
  const changed: number[] = [];
  for (let i = 0; i < out.length; i++) {
    if (out[i] !== before[i]) changed.push(i);
  }
  assert.ok(changed.every((i) => i === 6 || (i >= 24 && i < 40)), `${changed}`);
  assert.equal(out.length, before.length);
  // Again on a repair, and on a frame that sits inside a larger buffer.
  const twice = asRetransmission(out, { timestamp: 5, low: MAX_SEQUENCE });
  assert.equal(twice[6], FLAGS.retransmit);
  const framed = new Uint8Array(bytes.length + 10);
  framed.set(bytes, 5);
  const inner = framed.subarray(5, 5 + bytes.length);
  assert.deepEqual(asRetransmission(inner, fields), out);
  assert.deepEqual(inner, before);
});

// ---------------------------------------------------------------------------
// Values the encoder refuses

function assertFrameError(frame: Frame, message: RegExp): void {
  assert.throws(() => encodeFrame(frame), (error: unknown) => {
    assert.ok(error instanceof FrameError, `not a FrameError: ${error}`);
    assert.equal(error.name, "FrameError");
    assert.match(error.message, message);
    return true;
  });
}

const S = "0123456789abcdef";
const BYE: ByeFrame = { type: "bye", session: S, seq: 1, name: "desk-1" };

function dataWith(...records: DataRecord[]): DataFrame {
  return {
    type: "data",
    session: S,
    seq: 1,
    retransmit: false,
    timestamp: 0,
    low: 1,
    records,
  };
}

Deno.test("encodeFrame refuses a bad session id", () => {
  for (
    const session of [
      "",
      "0123456789abcde",
      "0123456789abcdef0",
      "0123456789ABCDEF",
      "0123456789abcdeg",
      " 123456789abcdef",
      "0x23456789abcdef",
    ]
  ) assertFrameError({ ...BYE, session }, /^session id must be 16 hex digits$/);
});

Deno.test("encodeFrame refuses sequence numbers outside 0 to 2^53-1", () => {
  for (const seq of [2 ** 53, MAX_SEQUENCE + 2, -1, 1.5, NaN, Infinity]) {
    assertFrameError(
      { ...BYE, seq },
      /^sequence number must be a whole number/,
    );
  }
  const heartbeat: HeartbeatFrame = {
    type: "heartbeat",
    session: S,
    seq: 1,
    final: false,
    timestamp: 0,
    low: 0,
  };
  assertFrameError({ ...heartbeat, timestamp: 2 ** 53 }, /^timestamp must/);
  assertFrameError({ ...heartbeat, low: -1 }, /^low sequence must/);
  assertFrameError({ ...dataWith(), timestamp: -5 }, /^timestamp must/);
  assertFrameError({ ...dataWith(), low: 2 ** 60 }, /^low sequence must/);
  assertFrameError(
    dataWith({
      bulletin: 2 ** 53,
      total: 1,
      offset: 0,
      data: new Uint8Array(1),
    }),
    /^bulletin number must/,
  );
  assertFrameError(
    { type: "gone", session: S, seq: 1, ranges: [{ first: 1, last: 2 ** 53 }] },
    /^range end must/,
  );
  assertFrameError(
    { type: "gone", session: S, seq: 1, ranges: [{ first: -1, last: 2 }] },
    /^range start must/,
  );
});

Deno.test("encodeFrame refuses names outside 1-64 bytes of UTF-8", () => {
  for (
    const name of [
      "",
      "x".repeat(65),
      "é".repeat(33),
      "😀".repeat(16) + "x",
    ]
  ) {
    assertFrameError(
      { ...BYE, name },
      /^receiver name must be 1-64 bytes of UTF-8/,
    );
    assertFrameError(
      { type: "hello", session: S, seq: 0, name, fromStart: false },
      /^receiver name must be 1-64 bytes/,
    );
    assertFrameError(
      { type: "ack", session: S, seq: 0, name, ranges: [] },
      /^receiver name must be 1-64 bytes/,
    );
  }
  // A lone surrogate would reach the wire as U+FFFD, another name.
  assertFrameError(
    { ...BYE, name: "desk-\ud800" },
    /^receiver name must be well-formed Unicode$/,
  );
  encodeFrame({ ...BYE, name: "é".repeat(32) });
});

Deno.test("encodeFrame refuses too many or reversed ranges", () => {
  const ranges = Array.from(
    { length: MAX_RANGES + 1 },
    () => ({ first: 1, last: 1 }),
  );
  assertFrameError(
    { type: "gone", session: S, seq: 0, ranges },
    /^too many ranges: 257$/,
  );
  assertFrameError(
    { type: "nack", session: S, seq: 0, name: "r", ranges },
    /^too many ranges: 257$/,
  );
  assertFrameError(
    {
      type: "ack",
      session: S,
      seq: 0,
      name: "r",
      ranges: [{ first: 5, last: 4 }],
    },
    /^range end before its start$/,
  );
});

Deno.test("encodeFrame refuses a digest anywhere but on a first fragment", () => {
  const digest = new Uint8Array(32);
  const ten = new Uint8Array(10);
  const wrongPlace =
    /^a digest belongs on the first fragment of a fragmented bulletin only$/;
  // On a whole bulletin.
  assertFrameError(
    dataWith({ bulletin: 1, total: 10, offset: 0, digest, data: ten }),
    wrongPlace,
  );
  // On a later fragment.
  assertFrameError(
    dataWith({ bulletin: 1, total: 30, offset: 10, digest, data: ten }),
    wrongPlace,
  );
  // Missing on a first fragment.
  assertFrameError(
    dataWith({ bulletin: 1, total: 30, offset: 0, data: ten }),
    wrongPlace,
  );
  // Of the wrong size.
  assertFrameError(
    dataWith({
      bulletin: 1,
      total: 30,
      offset: 0,
      digest: new Uint8Array(31),
      data: ten,
    }),
    /^digest must be 32 bytes$/,
  );
  // In the second record of a packed frame.
  assertFrameError(
    dataWith(
      { bulletin: 1, total: 10, offset: 0, data: ten },
      { bulletin: 2, total: 10, offset: 0, digest, data: ten },
    ),
    wrongPlace,
  );
});

Deno.test("encodeFrame refuses records that do not fit their bulletin", () => {
  const fit = /^record does not fit its bulletin$/;
  const ten = new Uint8Array(10);
  for (
    const record of [
      { bulletin: 1, total: 9, offset: 0, data: ten },
      { bulletin: 1, total: 15, offset: 6, data: ten },
      { bulletin: 1, total: 10, offset: -1, data: ten },
      { bulletin: 1, total: 10.5, offset: 0, data: ten },
      { bulletin: 1, total: 20, offset: 0.5, data: ten },
      { bulletin: 1, total: 2 ** 32, offset: 2 ** 32 - 10, data: ten },
      { bulletin: 1, total: 0x10000, offset: 0, data: new Uint8Array(0x10000) },
    ]
  ) assertFrameError(dataWith(record), fit);
  const records = Array.from(
    { length: MAX_RECORDS + 1 },
    (_, i) => ({ bulletin: i, total: 0, offset: 0, data: new Uint8Array() }),
  );
  assertFrameError(dataWith(...records), /^too many records: 4097$/);
});

// ---------------------------------------------------------------------------
// DATA sequence 0, and peekData

/** A copy of `bytes` with its 64-bit sequence number (bytes 16-23) set. */
function withSeq(bytes: Uint8Array, high: number, low: number): Uint8Array {
  const copy = bytes.slice();
  const view = new DataView(copy.buffer);
  view.setUint32(16, high);
  view.setUint32(20, low);
  return copy;
}

Deno.test("a DATA frame with sequence 0 decodes as invalid, malformed", () => {
  for (
    const name of ["data-single", "data-packed-two", "data-retransmitted"]
  ) {
    const zero = withSeq(frameVector(name).bytes, 0, 0);
    assert.deepEqual(
      decodeFrame(zero),
      { kind: "invalid", reason: "malformed" },
      name,
    );
  }
  // Control: sequence 1 in the same bytes is the vector itself.
  const one = withSeq(frameVector("data-single").bytes, 0, 1);
  assert.deepEqual(decodeFrame(one), {
    kind: "frame",
    frame: frameVector("data-single").frame,
  });
  // Sequence 0 still means "nothing" on the other types.
  const heartbeat = decodeFrame(encodeFrame({
    type: "heartbeat",
    session: S,
    seq: 0,
    final: false,
    timestamp: 0,
    low: 0,
  }));
  assert.equal(heartbeat.kind, "frame");
});

Deno.test("encodeFrame refuses a DATA frame with sequence 0", () => {
  assertFrameError(
    { ...dataWith(), seq: 0 },
    /^a DATA frame's sequence number starts at 1$/,
  );
  assertFrameError(
    {
      ...dataWith({
        bulletin: 1,
        total: 1,
        offset: 0,
        data: new Uint8Array(1),
      }),
      seq: 0,
    },
    /^a DATA frame's sequence number starts at 1$/,
  );
  // Other types take sequence 0.
  for (
    const frame of [
      { ...BYE, seq: 0 },
      { type: "hello", session: S, seq: 0, name: "r", fromStart: true },
      { type: "ack", session: S, seq: 0, name: "r", ranges: [] },
      { type: "gone", session: S, seq: 0, ranges: [] },
    ] satisfies Frame[]
  ) {
    assert.deepEqual(
      decodeFrame(encodeFrame(frame)),
      { kind: "frame", frame },
      frame.type,
    );
  }
});

Deno.test("peekData reads session, sequence and record count of valid DATA frames", () => {
  for (
    const name of [
      "data-single",
      "data-packed-two",
      "data-first-fragment",
      "data-middle-fragment",
      "data-last-fragment",
      "data-retransmitted",
    ]
  ) {
    const { frame, bytes } = frameVector(name);
    assert.ok(frame.type === "data");
    assert.deepEqual(peekData(bytes), {
      session: frame.session,
      seq: frame.seq,
      records: frame.records.length,
    }, name);
  }
  // The smallest DATA frame: no records, header and fixed part only.
  const empty = encodeFrame({ ...dataWith(), seq: 9 });
  assert.equal(empty.length, HEADER_SIZE + DATA_FIXED_SIZE);
  assert.deepEqual(peekData(empty), { session: S, seq: 9, records: 0 });
  // The largest sequence number there is.
  const largest = withSeq(frameVector("data-single").bytes, 0x1f_ffff, ~0);
  assert.deepEqual(peekData(largest), {
    session: "0123456789abcdef",
    seq: MAX_SEQUENCE,
    records: 1,
  });
  // A view into a larger buffer, at an odd offset.
  const single = frameVector("data-packed-two").bytes;
  const buffer = new Uint8Array(single.length + 7);
  buffer.set(single, 3);
  assert.deepEqual(peekData(buffer.subarray(3, 3 + single.length)), {
    session: "0123456789abcdef",
    seq: 2,
    records: 2,
  });
  // Another session id than the last one seen.
  const other = encodeFrame({ ...dataWith(), session: "fedcba9876543210" });
  assert.deepEqual(peekData(other), {
    session: "fedcba9876543210",
    seq: 1,
    records: 0,
  });
});

Deno.test("peekData is undefined for anything but a DATA frame with a valid header", () => {
  const single = frameVector("data-single").bytes;
  function changed(at: number, value: number): Uint8Array {
    const copy = single.slice();
    copy[at] = value;
    return copy;
  }
  const cases: [string, Uint8Array][] = [
    ["sequence 0", withSeq(single, 0, 0)],
    ["sequence 2^53", withSeq(single, 0x20_0000, 0)],
    ["sequence 2^64-1", withSeq(single, ~0, ~0)],
    ["tag length 16", changed(7, 16)],
    ["tag length 1", changed(7, 1)],
    ["version 0", changed(4, 0)],
    ["version 2", changed(4, PROTOCOL_VERSION + 1)],
    ["wrong magic", changed(3, 0x55)],
    ["type 0", changed(5, 0)],
    ["type 99", changed(5, 99)],
    ["too short by one", single.subarray(0, HEADER_SIZE + DATA_FIXED_SIZE - 1)],
    ["header only", single.subarray(0, HEADER_SIZE)],
    ["empty", new Uint8Array(0)],
  ];
  for (const [name, type] of Object.entries(FRAME_TYPES)) {
    if (name === "data") continue;
    // A DATA frame's bytes with another type: long enough, wrong type.
    cases.push([`type byte of ${name}`, changed(5, type)]);
  }
  for (const vector of VECTORS) {
    if (vector.kind === "frame" && vector.frame.type !== "data") {
      cases.push([vector.name, vector.bytes]);
    }
  }
  for (const [name, bytes] of cases) {
    assert.equal(peekData(bytes), undefined, name);
  }
  // The flags do not matter: a repair is peeked like a first transmission.
  assert.deepEqual(peekData(changed(6, 0xff)), {
    session: "0123456789abcdef",
    seq: 1,
    records: 1,
  });
});

Deno.test("encodeFragment encodes what encodeFrame does for one fragment, byte for byte", () => {
  const data = new Uint8Array(1300);
  for (let k = 0; k < data.length; k++) data[k] = (k * 7) & 0xff;
  const digest = new Uint8Array(32).map((_, k) => 255 - k);
  const cases = [
    { seq: 1, offset: 0, digest, total: 1_000_000, length: 1300 },
    { seq: 2 ** 40 + 3, offset: 1300, total: 1_000_000, length: 1300 },
    { seq: 77, offset: 4_000_000_000, total: 0xffff_ffff, length: 17 },
    { seq: 9, offset: 10, total: 10 + 65535, length: 0 },
  ];
  for (const c of cases) {
    const fragment = data.subarray(0, c.length);
    const record: DataRecord = {
      bulletin: 2 ** 35 + c.seq,
      total: c.total,
      offset: c.offset,
      data: fragment,
    };
    if (c.digest) record.digest = c.digest;
    const expected = encodeFrame({
      type: "data",
      session: "0123456789abcdef",
      seq: c.seq,
      retransmit: false,
      timestamp: 1_700_000_000_123_456,
      low: c.seq - 1 || 1,
      records: [record],
    });
    const into = new ArrayBuffer(1400).slice(0);
    new Uint8Array(into).fill(0xee);
    const got = encodeFragment(
      {
        session: "0123456789abcdef",
        seq: c.seq,
        timestamp: 1_700_000_000_123_456,
        low: c.seq - 1 || 1,
        bulletin: record.bulletin,
        total: c.total,
        offset: c.offset,
        ...(c.digest ? { digest: c.digest } : {}),
      },
      fragment,
      { into },
    );
    assert.deepEqual(got, expected);
    assert.equal(got.buffer, into);
  }
  assert.throws(
    () =>
      encodeFragment(
        {
          session: "0123456789abcdef",
          seq: 1,
          timestamp: 1,
          low: 1,
          bulletin: 1,
          total: 2000,
          offset: 0,
        },
        new Uint8Array(1400),
        { into: new ArrayBuffer(1400) },
      ),
    new FrameError("a fragment of 1400 bytes does not fit"),
  );
});
