/**
 * Tests of the Wireshark dissector `tools/mcast.lua`: traffic on loopback
 * is captured with `dumpcap -i lo` while the test sends it, and the capture
 * is read back with `tshark -r FILE -X lua_script:tools/mcast.lua -T
 * fields`; every field is compared with what was sent.
 *
 * - Every test vector of docs/protocol.md, sent as is: each frame's fields
 *   are its JSON, each invalid one has the reason the document gives, each
 *   plain one its text; and frames sealed by the frame guard with a fixed
 *   clock (encrypted, chained, signed): each trailer part is the bytes the
 *   guard produced.
 * - A session of `mcast-send --reliable` and `mcast-recv`: packed bulletins,
 *   a fragmented one with its SHA-256 digest, heartbeats, HELLO, ACK, BYE,
 *   and the plain exercise datagram and its answer.
 * - A keyed session (`--key-file`, `--encrypt`, `--sign-key`): tag lengths,
 *   trailers, ciphertext, and the signed repeat of the last datagram.
 * - Frames of mcast-bridge's udp:// tunnel, laid out by hand as
 *   docs/protocol.md "Bridge tunnel" (bridge branch) has them: a DATUM and
 *   the frame it carries, a HELD, a truncated DATUM, a REPORT and its ACK.
 *
 * Traffic is captured with `dumpcap -w -` (its packets arrive as it writes
 * them): the capture is known to run once a probe is in it, and to hold
 * everything sent once a last marker is.
 *
 * Skipped, with the reason printed, where tshark, its Lua or the right to
 * capture on lo is missing. Senders bind 127.0.0.1 and receivers join on
 * 127.0.0.1; every test uses its own ports and a 239.80.x.y group.
 *
 * @module
 */

import assert from "node:assert/strict";
import { encodeFrame, type Frame, FRAME_TYPES } from "../../lib/wire/frame.ts";
import {
  encodeTunnelFrame,
  type TunnelFrame,
} from "../../lib/bridge/tunnel.ts";
import { GuardedEndpoint } from "../../lib/security/guard.ts";
import { generateKeyFile } from "../../lib/security/keys.ts";
import { MemoryNetwork } from "../../lib/net/memory_net.ts";
import { emptyDrops } from "../../lib/reliable/stats.ts";
import { groupKey, signingKey, within } from "../_fakes.ts";
import { assertOk, WAITING } from "../_exercise.ts";
import { at, senderSession } from "../_reliable.ts";
import { ROOT, runTool, spawnTool, testPort, withTempDir } from "../_tools.ts";
import { until } from "../_wait.ts";

const SCRIPT = `${ROOT}/tools/mcast.lua`;
const PREFIX = "mcast_lua_test_";
const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** What tshark prints on stderr when run as root; nothing else may show. */
const ROOT_WARNING =
  /^Running as user "root" and group "root"\. This could be dangerous\.\n/;

/** Why the dissector cannot be tested here, or undefined. */
function unavailable(): string | undefined {
  let version: string;
  try {
    const out = new Deno.Command("tshark", {
      args: ["-v"],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    if (!out.success) return "tshark -v failed";
    version = decoder.decode(out.stdout);
  } catch {
    return "tshark is not installed";
  }
  if (!/\bwith Lua\b/.test(version)) return "tshark is built without Lua";
  let interfaces: string;
  try {
    const out = new Deno.Command("dumpcap", {
      args: ["-D"],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    interfaces = decoder.decode(out.stdout);
  } catch {
    return "dumpcap is not installed";
  }
  if (!/^[0-9]+\. lo\b/m.test(interfaces)) {
    return "dumpcap cannot capture on lo (not root, no capture rights)";
  }
  return undefined;
}

const UNAVAILABLE = unavailable();
if (UNAVAILABLE) console.log(`skipped dissector tests: ${UNAVAILABLE}`);

/** A group for one test: 239.80.N.M. */
function testGroup(last: number): string {
  return `239.80.${Deno.pid % 250}.${last}`;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function fromHex(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length / 2);
  for (let i = 0; i < bytes.length; i++) {
    bytes[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  }
  return bytes;
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

// ---------------------------------------------------------------------------
// Capturing and dissecting

/**
 * A running capture of some UDP ports on lo: `dumpcap -w -`, which writes
 * each packet to its standard output as it captures it, so that
 * {@linkcode Capture.stop} knows when everything sent has been captured.
 */
class Capture {
  readonly #child: Deno.ChildProcess;
  readonly #chunks: Uint8Array[] = [];
  readonly #output: Promise<void>;
  readonly #errors: Promise<void>;
  readonly #own: number;
  #stderr = "";
  #ended = false;

  private constructor(filter: string, own: number) {
    this.#own = own;
    const child = new Deno.Command("dumpcap", {
      args: ["-q", "-i", "lo", "-f", filter, "-w", "-"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#output = (async () => {
      for await (const chunk of child.stdout) this.#chunks.push(chunk);
    })();
    this.#errors = (async () => {
      const text = child.stderr.pipeThrough(new TextDecoderStream());
      for await (const chunk of text) this.#stderr += chunk;
    })();
    child.status.then(() => this.#ended = true);
  }

  /**
   * Starts capturing `ports` (and a port of its own for probes); resolves
   * once dumpcap captures: "Capturing on" comes before its filter is set,
   * and setting the filter drops what came before, so probes are sent
   * until one is captured.
   */
  static async start(ports: number[]): Promise<Capture> {
    const own = testPort();
    const filter = [...ports, own].map((p) => `udp port ${p}`).join(" or ");
    const capture = new Capture(filter, own);
    try {
      await until(
        () => capture.#stderr.includes("Capturing on ") || capture.#ended,
        15_000,
        () => `dumpcap to start:\n${capture.#stderr}`,
      );
      const end = Date.now() + 15_000;
      for (let probe = 1;; probe++) {
        assert.ok(!capture.#ended, `dumpcap ended:\n${capture.#stderr}`);
        assert.ok(Date.now() < end, `no probe captured:\n${capture.#stderr}`);
        const marker = await capture.#mark(`probe ${probe}`);
        const seen = () => indexOf(capture.#bytes(), marker) >= 0;
        try {
          await until(seen, 250, "a probe");
          break;
        } catch {
          // Not yet capturing: the next probe.
        }
      }
    } catch (error) {
      await capture[Symbol.asyncDispose]();
      throw error;
    }
    return capture;
  }

  /** Sends a plain datagram with `text` and a random tag to the own port. */
  async #mark(text: string): Promise<Uint8Array> {
    const random = hex(crypto.getRandomValues(new Uint8Array(8)));
    const marker = encoder.encode(`${text} ${random}`);
    await sendDatagrams(this.#own, [marker]);
    return marker;
  }

  /** Everything captured so far, as one pcapng file's bytes. */
  #bytes(): Uint8Array {
    const size = this.#chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const chunk of this.#chunks) {
      bytes.set(chunk, at);
      at += chunk.length;
    }
    return bytes;
  }

  /**
   * Sends a last datagram to the capture's own port, waits until dumpcap
   * wrote it (everything sent before it is then captured), stops dumpcap
   * with SIGINT and writes the capture to `path`.
   */
  async stop(path: string): Promise<void> {
    const marker = await this.#mark("end");
    await until(
      () => indexOf(this.#bytes(), marker) >= 0,
      10_000,
      () =>
        `dumpcap to capture the marker (${this.#bytes().length} bytes):\n${this.#stderr}`,
    );
    this.#child.kill("SIGINT");
    const status = await this.#child.status;
    await Promise.all([this.#output, this.#errors]);
    assert.equal(status.code, 0, `dumpcap exit:\n${this.#stderr}`);
    await Deno.writeFile(path, this.#bytes());
  }

  /** Stops dumpcap if it still runs. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#ended) this.#child.kill("SIGINT");
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Ended already.
      }
    }, 5_000);
    try {
      await this.#child.status;
      await Promise.all([this.#output, this.#errors]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Where `needle` starts in `haystack`, or -1. */
function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let k = 0; k < needle.length; k++) {
      if (haystack[i + k] !== needle[k]) continue outer;
    }
    return i;
  }
  return -1;
}

/** Sends datagrams from a socket on 127.0.0.1 to 127.0.0.1:`port`, in order. */
async function sendDatagrams(
  port: number,
  datagrams: Uint8Array[],
): Promise<void> {
  const socket = Deno.listenDatagram({
    transport: "udp",
    hostname: "127.0.0.1",
    port: 0,
  });
  try {
    for (const datagram of datagrams) {
      await socket.send(datagram, {
        transport: "udp",
        hostname: "127.0.0.1",
        port,
      });
    }
  } finally {
    socket.close();
  }
}

/** The fields the tests read; a row's keys drop the `mcast.` prefix. */
const FIELDS = [
  "udp.srcport",
  "udp.dstport",
  "mcast.type",
  "mcast.flags",
  "mcast.tag_length",
  "mcast.session",
  "mcast.seq",
  "mcast.timestamp",
  "mcast.low",
  "mcast.record_count",
  "mcast.record.bulletin",
  "mcast.record.total",
  "mcast.record.offset",
  "mcast.record.length",
  "mcast.record.reserved",
  "mcast.record.digest",
  "mcast.record.data",
  "mcast.record.text",
  "mcast.name_length",
  "mcast.name",
  "mcast.range_count",
  "mcast.range.first",
  "mcast.range.last",
  "mcast.ciphertext",
  "mcast.trailer.gcm_tag",
  "mcast.trailer.chain",
  "mcast.trailer.signature",
  "mcast.trailer.time",
  "mcast.trailer.mac",
  "mcast.plain",
  "mcast.invalid",
  "mcast.tunnel.type",
  "mcast.tunnel.hops",
  "mcast.tunnel.link",
  "mcast.tunnel.seq",
  "mcast.tunnel.low",
  "mcast.tunnel.id",
  "mcast.tunnel.datagram",
] as const;

/** One packet's fields; repeated ones are joined with `|`. */
type Row = Record<string, string>;

function key(field: string): string {
  return field.replace(/^mcast\./, "");
}

/** A row with every field empty but those given. */
function row(values: Row): Row {
  const result: Row = {};
  for (const field of FIELDS) result[key(field)] = "";
  for (const [name, value] of Object.entries(values)) {
    assert.ok(name in result, `no field ${name}`);
    result[name] = value;
  }
  return result;
}

/**
 * Reads a capture with the dissector (its port preference set to `port`)
 * and returns the fields of the packets `filter` selects.
 */
async function dissect(
  path: string,
  port: number,
  filter: string,
): Promise<Row[]> {
  const out = await new Deno.Command("tshark", {
    args: [
      "-r",
      path,
      "-X",
      `lua_script:${SCRIPT}`,
      "-o",
      `mcast.port:${port}`,
      "-Y",
      filter,
      "-T",
      "fields",
      "-E",
      "occurrence=a",
      "-E",
      "aggregator=|",
      ...FIELDS.flatMap((field) => ["-e", field]),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = decoder.decode(out.stderr).replace(ROOT_WARNING, "");
  assert.equal(stderr, "", "tshark -r stderr");
  assert.ok(out.success, "tshark -r failed");
  const text = decoder.decode(out.stdout);
  if (text === "") return [];
  assert.ok(text.endsWith("\n"), text);
  return text.slice(0, -1).split("\n").map((line) => {
    const values = line.split("\t");
    assert.equal(values.length, FIELDS.length, line);
    const result: Row = {};
    FIELDS.forEach((field, k) => result[key(field)] = values[k]!);
    return result;
  });
}

// ---------------------------------------------------------------------------
// The test vectors of docs/protocol.md

type Vector =
  & { name: string; bytes: Uint8Array }
  & (
    | { kind: "frame"; frame: Frame }
    | { kind: "invalid"; reason: string }
    | { kind: "plain"; text: string }
  );

/** The vectors of docs/protocol.md (the format is checked by tests/wire). */
async function loadVectors(): Promise<Vector[]> {
  const markdown = await Deno.readTextFile(`${ROOT}/docs/protocol.md`);
  const blocks = markdown.replaceAll("\r\n", "\n")
    .matchAll(/^```vector\n([\s\S]*?)\n```$/gm);
  return [...blocks].map((block) => {
    const lines = block[1]!.split("\n");
    const name = /^vector: (.*)$/.exec(lines[0]!)![1]!;
    const [, kind, value] = /^(frame|invalid|plain): (.*)$/.exec(lines[1]!)!;
    const bytes = fromHex(
      [lines[2]!.replace(/^hex:/, ""), ...lines.slice(3)]
        .map((line) => line.replace(/#.*$/, "").replace(/\s+/g, ""))
        .join(""),
    );
    if (kind === "invalid") return { name, bytes, kind, reason: value! };
    if (kind === "plain") {
      return { name, bytes, kind, text: JSON.parse(value!) as string };
    }
    const frame = JSON.parse(
      value!,
      (field, v) =>
        (field === "data" || field === "digest") && typeof v === "string"
          ? fromHex(v)
          : v,
    ) as Frame;
    return { name, bytes, kind: "frame", frame };
  });
}

/** The text of a record's bytes where they are UTF-8, as the dissector shows it. */
function textOf(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** The fields the dissector must show for a valid frame, from its JSON. */
function frameRow(frame: Frame, ports: Row): Row {
  let flags = 0;
  if ("retransmit" in frame && frame.retransmit) flags |= 0x01;
  if ("final" in frame && frame.final) flags |= 0x02;
  if ("fromStart" in frame && frame.fromStart) flags |= 0x04;
  const values: Row = {
    ...ports,
    type: `${FRAME_TYPES[frame.type]}`,
    flags: `0x${flags.toString(16).padStart(2, "0")}`,
    "tag_length": "0",
    session: frame.session,
    seq: `${frame.seq}`,
  };
  const join = (items: (string | undefined)[]) =>
    items.filter((item) => item !== undefined).join("|");
  if (frame.type === "data" || frame.type === "heartbeat") {
    values.timestamp = `${frame.timestamp}`;
    values.low = `${frame.low}`;
  }
  if (frame.type === "data") {
    const records = frame.records;
    values["record_count"] = `${records.length}`;
    values["record.bulletin"] = join(records.map((r) => `${r.bulletin}`));
    values["record.total"] = join(records.map((r) => `${r.total}`));
    values["record.offset"] = join(records.map((r) => `${r.offset}`));
    values["record.length"] = join(records.map((r) => `${r.data.length}`));
    values["record.reserved"] = join(records.map(() => "0"));
    values["record.digest"] = join(
      records.map((r) => r.digest && hex(r.digest)),
    );
    values["record.data"] = join(records.map((r) => hex(r.data)));
    values["record.text"] = join(records.map((r) => textOf(r.data)));
  }
  if (
    frame.type === "ack" || frame.type === "nack" || frame.type === "hello" ||
    frame.type === "bye"
  ) {
    values["name_length"] = `${encoder.encode(frame.name).length}`;
    values.name = frame.name;
  }
  if (frame.type === "ack" || frame.type === "nack" || frame.type === "gone") {
    values["range_count"] = `${frame.ranges.length}`;
    values["range.first"] = join(frame.ranges.map((r) => `${r.first}`));
    values["range.last"] = join(frame.ranges.map((r) => `${r.last}`));
  }
  return row(values);
}

/** Send time of the sealed frames (the guard's clock is fixed). */
const SEAL_TIME = 1_700_000_000_000_000;

/** The send time in a sealed frame's trailer (before the 16-byte MAC). */
function readTime(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const at = bytes.length - 24;
  return view.getUint32(at) * 0x1_0000_0000 + view.getUint32(at + 4);
}

/** A frame as the guard sealed it. */
interface Sealed {
  frame: Frame;
  bytes: Uint8Array;
}

/**
 * Seals a DATA frame and a HELLO with a guard that encrypts and signs, on
 * a memory network; returns what the guard sent, in order (the DATA frame,
 * chained; its signed repeat, sent before the HELLO; the HELLO).
 */
async function sealFrames(): Promise<Sealed[]> {
  const network = new MemoryNetwork();
  const sink = network.open({ address: "127.0.0.1", port: 5000 });
  const guard = new GuardedEndpoint(network.open({ address: "127.0.0.1" }), {
    key: groupKey(),
    encrypt: true,
    signingKey: await signingKey(),
    dropped: emptyDrops(),
    nowMicros: () => SEAL_TIME,
  });
  const data: Frame = {
    type: "data",
    session: "89abcdef01234567",
    seq: 7,
    retransmit: false,
    timestamp: 1_700_000_000_000_100,
    low: 5,
    records: [{
      bulletin: 3,
      total: 12,
      offset: 0,
      data: encoder.encode("sealed text!"),
    }],
  };
  const hello: Frame = {
    type: "hello",
    session: "89abcdef01234567",
    seq: 0,
    name: "keyed-1",
    fromStart: true,
  };
  try {
    await guard.send(encodeFrame(data), sink.local);
    await guard.send(encodeFrame(hello), sink.local);
    const sent: Uint8Array[] = [];
    for (let k = 0; k < 3; k++) {
      sent.push((await within(5_000, sink.receive()))!.payload);
    }
    return [
      { frame: data, bytes: sent[0]! },
      { frame: { ...data, retransmit: true }, bytes: sent[1]! },
      { frame: hello, bytes: sent[2]! },
    ];
  } finally {
    guard.close();
    sink.close();
    network.close();
  }
}

Deno.test({
  name:
    "dissector: every protocol.md vector and frames sealed by the guard show exactly their fields",
  ignore: UNAVAILABLE !== undefined,
  fn: async () => {
    const vectors = await loadVectors();
    const sealed = await sealFrames();
    const port = testPort();
    let rows: Row[] = [];
    await withTempDir(PREFIX, async (dir) => {
      await using capture = await Capture.start([port]);
      await sendDatagrams(port, [
        ...vectors.map((v) => v.bytes),
        ...sealed.map((s) => s.bytes),
      ]);
      await capture.stop(`${dir}/capture.pcapng`);
      rows = await dissect(
        `${dir}/capture.pcapng`,
        port,
        `udp.dstport == ${port}`,
      );
    });
    assert.equal(rows.length, vectors.length + sealed.length);
    const from = rows[0]!["udp.srcport"]!;
    const ports = { "udp.srcport": from, "udp.dstport": `${port}` };
    const invalid: string[] = [];
    for (const [k, vector] of vectors.entries()) {
      const got = rows[k]!;
      if (vector.kind === "frame") {
        assert.deepEqual(got, frameRow(vector.frame, ports), vector.name);
      } else if (vector.kind === "plain") {
        // UDP hands no empty payload to a dissector.
        assert.deepEqual(
          got,
          row({ ...ports, plain: vector.text }),
          vector.name,
        );
      } else {
        assert.equal(got.invalid, vector.reason, vector.name);
        invalid.push(vector.reason);
      }
    }
    assert.deepEqual(
      [...new Set(invalid)].sort(),
      ["malformed", "tag", "truncated", "type", "version"],
    );

    // The sealed frames: the header and body in the clear, records
    // encrypted; each trailer part exactly the guard's bytes.
    const [data, repeat, hello] = sealed.map((s, k) => ({
      ...s,
      got: rows[vectors.length + k]!,
    }));
    const part = (bytes: Uint8Array, from: number, size: number) =>
      hex(bytes.subarray(from, from + size));
    // The first transmission is chained; it is signed as well when the
    // guard's idle signature was made before it was sealed. Its repeat is
    // signed, a retransmission with the guard's clock as timestamp.
    const first = data!.bytes[6]!;
    assert.ok(first === 0x18 || first === 0x38, `flags ${first}`);
    const firstTag = first === 0x38 ? 136 : 72;
    const cases = [
      [data!, first, firstTag, "1700000000000100"],
      [repeat!, 0x39, 136, `${SEAL_TIME}`],
    ] as const;
    for (const [s, flags, tag, timestamp] of cases) {
      const b = s.bytes;
      const trailer = b.length - tag;
      assert.equal(b[7], tag);
      assert.deepEqual(
        s.got,
        row({
          ...ports,
          type: "1",
          flags: `0x${flags.toString(16)}`,
          "tag_length": `${tag}`,
          session: "89abcdef01234567",
          seq: "7",
          timestamp,
          low: "5",
          ciphertext: hex(b.subarray(40, trailer)),
          "trailer.gcm_tag": part(b, trailer, 16),
          // The first datagram of the chain: no previous hash.
          "trailer.chain": "00".repeat(32),
          "trailer.signature": tag === 136 ? part(b, trailer + 48, 64) : "",
          "trailer.time": `${readTime(b)}`,
          "trailer.mac": part(b, b.length - 16, 16),
        }),
        `sealed DATA, flags ${flags}`,
      );
      // Two bytes of record count and 20 of record header with the text.
      assert.equal(trailer - 40, 2 + 20 + 12);
    }
    // The guard's clock stands still: it counts on from it, one per frame.
    assert.deepEqual(
      sealed.map((s) => readTime(s.bytes)).sort(),
      [SEAL_TIME, SEAL_TIME + 1, SEAL_TIME + 2],
    );
    // The same records under the same nonce: the same ciphertext and tag.
    assert.equal(repeat!.got.ciphertext, data!.got.ciphertext);
    assert.equal(repeat!.got["trailer.gcm_tag"], data!.got["trailer.gcm_tag"]);
    const b = hello!.bytes;
    assert.deepEqual(
      hello!.got,
      row({
        ...frameRow(hello!.frame, ports),
        "tag_length": "24",
        "trailer.time": `${readTime(b)}`,
        "trailer.mac": part(b, b.length - 16, 16),
      }),
      "sealed HELLO",
    );
  },
});

// ---------------------------------------------------------------------------
// Sessions of the tools

/** A bulletin's records as the dissector shows them, in capture order. */
interface Shown {
  seq: number;
  bulletin: number;
  total: number;
  offset: number;
  data: string;
  digest?: string;
}

/** The fields of a row joined with `|`, split again (none: []). */
function list(value: string | undefined): string[] {
  return value ? value.split("|") : [];
}

/** The records of a DATA row (digests go to the first fragments, in order). */
function recordsOf(got: Row): Shown[] {
  const bulletins = list(got["record.bulletin"]);
  const totals = list(got["record.total"]).map(Number);
  const offsets = list(got["record.offset"]).map(Number);
  const lengths = list(got["record.length"]).map(Number);
  const data = list(got["record.data"]);
  const digests = list(got["record.digest"]);
  assert.equal(bulletins.length, Number(got["record_count"]), "records");
  assert.equal(data.length, bulletins.length, "no empty record here");
  const shown = bulletins.map((bulletin, k): Shown => {
    assert.equal(data[k]!.length, 2 * lengths[k]!, "length");
    const first = offsets[k] === 0 && lengths[k]! < totals[k]!;
    return {
      seq: Number(got.seq),
      bulletin: Number(bulletin),
      total: totals[k]!,
      offset: offsets[k]!,
      data: data[k]!,
      ...(first ? { digest: digests.shift() } : {}),
    };
  });
  assert.deepEqual(digests, [], "a digest for each first fragment only");
  assert.equal(got["record.reserved"], bulletins.map(() => "0").join("|"));
  return shown;
}

/** The `sent N bulletins in K datagrams` line's K. */
function datagramsSent(stdout: string): number {
  const match = /^sent [0-9]+ bulletins? in ([0-9]+) datagrams?, /m.exec(
    stdout,
  );
  assert.ok(match, stdout);
  return Number(match[1]);
}

/** Rows of one frame type (a name of FRAME_TYPES). */
function ofType(rows: Row[], type: keyof typeof FRAME_TYPES): Row[] {
  return rows.filter((got) => got.type === `${FRAME_TYPES[type]}`);
}

Deno.test({
  name:
    "dissector: a reliable session of the tools shows its packed and fragmented bulletins, digests, heartbeats, HELLO, ACK, BYE and plain datagrams",
  ignore: UNAVAILABLE !== undefined,
  fn: async () => {
    const group = testGroup(1);
    const port = testPort();
    const big = Array.from(
      { length: 40 },
      (_, k) => `line ${k + 1} of a bulletin cut in fragments;`,
    ).join(" ");
    const texts = ["first bulletin", "second: ünïcödé ✓", "third", big, "last"];
    let rows: Row[] = [];
    let session = "";
    let sent = 0;
    await withTempDir(PREFIX, async (dir) => {
      await using capture = await Capture.start([port]);
      await using receiver = spawnTool("recv", [
        ...at(group, port),
        "--name",
        "r1",
        "--count",
        `${texts.length + 1}`,
      ]);
      await receiver.waitForOutput(WAITING);
      const send = await runTool("send", [
        ...at(group, port),
        "--reliable",
        "--lines",
        "--expect",
        "1",
        "--mtu",
        "400",
      ], { stdin: texts.join("\n") + "\n" });
      assertOk(send, "sender");
      session = senderSession(send.stdout);
      sent = datagramsSent(send.stdout);
      await receiver.waitForOutput(`received bulletin ${texts.length} `);
      assertOk(
        await runTool("send", [...at(group, port), "-m", "hello"]),
        "plain",
      );
      assertOk(await receiver.finish(), "receiver");
      await capture.stop(`${dir}/capture.pcapng`);
      rows = await dissect(
        `${dir}/capture.pcapng`,
        port,
        `udp.port == ${port}`,
      );
    });

    const frames = rows.filter((got) => got.type !== "");
    for (const got of frames) {
      assert.equal(got.session, session, JSON.stringify(got));
      assert.equal(got["tag_length"], "0");
      assert.equal(got.invalid, "", JSON.stringify(got));
    }
    // The plain exercise datagram and the receiver's answer.
    assert.deepEqual(
      rows.filter((got) => got.type === "").map((got) => got.plain),
      ["hello", "ack"],
    );
    assert.equal(frames.length + 2, rows.length);

    // DATA: sequences 1..K, each first sent once, the bulletins whole again.
    const data = ofType(rows, "data");
    const firsts = data.filter((got) => got.flags === "0x00");
    assert.deepEqual(
      firsts.map((got) => Number(got.seq)),
      Array.from({ length: sent }, (_, k) => k + 1),
    );
    for (const repair of data.filter((got) => got.flags !== "0x00")) {
      assert.equal(repair.flags, "0x01", "a repair");
      const original = firsts[Number(repair.seq) - 1]!;
      assert.deepEqual(recordsOf(repair), recordsOf(original), "same records");
    }
    assert.ok(sent >= 6, `${sent} datagrams: the long bulletin is cut`);
    const records = firsts.flatMap(recordsOf);
    const bulletins = texts.map((text, k) => {
      const parts = records.filter((r) => r.bulletin === k + 1);
      assert.ok(parts.length > 0, `bulletin ${k + 1}`);
      const bytes = encoder.encode(text);
      let at = 0;
      for (const part of parts) {
        assert.equal(part.total, bytes.length, `bulletin ${k + 1} total`);
        assert.equal(part.offset, at, `bulletin ${k + 1} in order`);
        at += part.data.length / 2;
      }
      assert.equal(at, bytes.length, `bulletin ${k + 1} complete`);
      assert.equal(parts.map((p) => p.data).join(""), hex(bytes));
      return parts;
    });
    // Small bulletins share a datagram; the long one's first fragment
    // carries the SHA-256 of the whole bulletin, no other record does.
    assert.equal(bulletins[0]![0]!.seq, bulletins[2]![0]!.seq, "packed");
    const fragments = bulletins[3]!;
    assert.ok(fragments.length >= 5, `${fragments.length} fragments`);
    assert.equal(
      fragments[0]!.digest,
      await sha256(encoder.encode(big)),
      "digest",
    );
    assert.deepEqual(
      records.filter((r) => r.digest !== undefined),
      [fragments[0]],
    );
    // Each whole bulletin's text.
    const whole = firsts.flatMap((got) => list(got["record.text"]));
    for (const text of [texts[0], texts[1], texts[2], texts[4]]) {
      assert.ok(whole.includes(text!), `text ${text}`);
    }

    // HEARTBEATs: the final ones name the last sequence number.
    const finals = ofType(rows, "heartbeat").filter((got) =>
      got.flags === "0x02"
    );
    assert.ok(finals.length > 0, "a final heartbeat");
    for (const got of finals) assert.equal(got.seq, `${sent}`);
    // The receiver: HELLO, ACKs up to K, BYE at K, all named r1.
    const hello = ofType(rows, "hello");
    assert.ok(hello.length > 0, "HELLO");
    for (
      const got of [...hello, ...ofType(rows, "ack"), ...ofType(rows, "bye")]
    ) {
      assert.equal(got.name, "r1");
      assert.equal(got["name_length"], "2");
    }
    assert.ok(ofType(rows, "ack").some((got) => got.seq === `${sent}`), "ACK");
    const bye = ofType(rows, "bye");
    assert.ok(bye.length > 0, "BYE");
    for (const got of bye) assert.equal(got.seq, `${sent}`);
  },
});

Deno.test({
  name:
    "dissector: a keyed session (--key-file, --encrypt, --sign-key) shows tag lengths, trailers and ciphertext",
  ignore: UNAVAILABLE !== undefined,
  fn: async () => {
    const group = testGroup(2);
    const port = testPort();
    const texts = ["keyed one", "keyed two", "keyed three"];
    let rows: Row[] = [];
    let session = "";
    let sent = 0;
    const start = Date.now() * 1000;
    await withTempDir(PREFIX, async (dir) => {
      const key = `${dir}/group.key`;
      const sign = `${dir}/sign.key`;
      await generateKeyFile(key);
      await generateKeyFile(sign, { kind: "ed25519" });
      await using capture = await Capture.start([port]);
      await using receiver = spawnTool("recv", [
        ...at(group, port),
        "--key-file",
        key,
        "--trust",
        `${sign}.pub`,
        "--name",
        "r1",
        "--count",
        `${texts.length}`,
      ]);
      await receiver.waitForOutput(WAITING);
      const send = await runTool("send", [
        ...at(group, port),
        "--reliable",
        "--key-file",
        key,
        "--encrypt",
        "--sign-key",
        sign,
        "--lines",
        "--expect",
        "1",
      ], { stdin: texts.join("\n") + "\n" });
      assertOk(send, "sender");
      session = senderSession(send.stdout);
      sent = datagramsSent(send.stdout);
      assertOk(await receiver.finish(), "receiver");
      await capture.stop(`${dir}/capture.pcapng`);
      rows = await dissect(
        `${dir}/capture.pcapng`,
        port,
        `udp.port == ${port}`,
      );
    });
    const end = Date.now() * 1000;

    assert.ok(rows.length > 0);
    for (const got of rows) {
      const what = JSON.stringify(got);
      assert.equal(got.session, session, what);
      assert.equal(got.invalid, "", what);
      const flags = Number(got.flags);
      const isData = got.type === "1";
      let tag = 24;
      if (isData) {
        // Encrypted and chained always; signed now and then.
        assert.equal(flags & 0x18, 0x18, what);
        tag += 16 + 32 + (flags & 0x20 ? 64 : 0);
        assert.match(got.ciphertext!, /^[0-9a-f]+$/, what);
        assert.equal(got["record_count"], "", "records are not shown");
        assert.match(got["trailer.gcm_tag"]!, /^[0-9a-f]{32}$/, what);
        assert.match(got["trailer.chain"]!, /^[0-9a-f]{64}$/, what);
        assert.match(
          got["trailer.signature"]!,
          flags & 0x20 ? /^[0-9a-f]{128}$/ : /^$/,
          what,
        );
      } else {
        assert.equal(got.ciphertext, "", what);
        assert.equal(got["trailer.chain"], "", what);
      }
      assert.equal(got["tag_length"], `${tag}`, what);
      assert.match(got["trailer.mac"]!, /^[0-9a-f]{32}$/, what);
      const time = Number(got["trailer.time"]);
      assert.ok(start <= time && time <= end, `send time ${time}: ${what}`);
    }
    // Every transmission of a sequence number: the same ciphertext, GCM tag
    // and chain hash.
    const data = ofType(rows, "data");
    const bySeq = Map.groupBy(data, (got) => got.seq!);
    assert.deepEqual(
      [...bySeq.keys()].map(Number).sort((a, b) => a - b),
      Array.from({ length: sent }, (_, k) => k + 1),
    );
    for (const [seq, copies] of bySeq) {
      for (const field of ["ciphertext", "trailer.gcm_tag", "trailer.chain"]) {
        assert.equal(
          new Set(copies.map((got) => got[field])).size,
          1,
          `${field} of ${seq}`,
        );
      }
    }
    // The last datagram is sent once more, signed, as a repair.
    assert.ok(
      data.some((got) => got.flags === "0x39" && got.seq === `${sent}`),
      "a signed repeat of the last datagram",
    );
    // Receiver frames keep their names in the clear.
    for (const got of [...ofType(rows, "hello"), ...ofType(rows, "bye")]) {
      assert.equal(got.name, "r1");
    }
    assert.ok(
      ofType(rows, "hello").length > 0 && ofType(rows, "bye").length > 0,
    );
  },
});

// ---------------------------------------------------------------------------
// The bridge tunnel

/** A tunnel frame as lib/bridge/tunnel.ts lays it out, sealed. */
function tunnelFrame(
  type: number,
  header: { hops: number; link: string; seq: number; time: number },
  body: Uint8Array,
): Uint8Array {
  const bytes = new Uint8Array(24 + body.length + 24);
  const view = new DataView(bytes.buffer);
  bytes.set(encoder.encode("MCTN"), 0);
  bytes[4] = 1;
  bytes[5] = type;
  bytes[6] = header.hops;
  bytes[7] = 24;
  bytes.set(fromHex(header.link), 8);
  view.setBigUint64(16, BigInt(header.seq));
  bytes.set(body, 24);
  view.setBigUint64(24 + body.length, BigInt(header.time));
  bytes.fill(0xa5, bytes.length - 16);
  return bytes;
}

Deno.test({
  name:
    "dissector: bridge tunnel frames (DATUM with the datagram inside, HELD, REPORT with a far receiver's frame) show their fields and the frames they carry",
  ignore: UNAVAILABLE !== undefined,
  fn: async () => {
    const vectors = await loadVectors();
    const inner = vectors.find((v) => v.name === "data-packed-two")!;
    assert.equal(inner.kind, "frame");
    const id = encoder.encode("239.1.2.3:5000");
    const datum = tunnelFrame(
      1,
      { hops: 7, link: "0011223344556677", seq: 3, time: SEAL_TIME },
      new Uint8Array([
        ...fromHex("0000000000000002"),
        id.length,
        ...id,
        ...inner.bytes,
      ]),
    );
    const held = tunnelFrame(
      2,
      { hops: 0, link: "0011223344556677", seq: 4, time: SEAL_TIME + 1 },
      fromHex("0001" + "0000000000000006" + "0000000000000009"),
    );
    // A DATUM whose pipe id claims 30 bytes where 3 follow.
    const short = tunnelFrame(
      1,
      { hops: 8, link: "8899aabbccddeeff", seq: 2, time: SEAL_TIME + 2 },
      new Uint8Array([...fromHex("0000000000000001"), 30, 0x61, 0x62, 0x63]),
    );
    // A far receiver's ACK, reported back through the tunnel.
    const ack = vectors.find((v) => v.name === "ack-two-ranges")!;
    assert.equal(ack.kind, "frame");
    const report = tunnelFrame(
      3,
      { hops: 0, link: "0011223344556677", seq: 0, time: SEAL_TIME + 3 },
      ack.bytes,
    );
    // The frames laid out here are the bridge's own (its encoder writes
    // the tag length when it seals; the trailer follows the body).
    const laid: [Uint8Array, TunnelFrame][] = [
      [datum, {
        type: "datum",
        hops: 7,
        link: "0011223344556677",
        seq: 3,
        low: 2,
        id: "239.1.2.3:5000",
        bytes: inner.bytes,
      }],
      [held, {
        type: "held",
        link: "0011223344556677",
        seq: 4,
        ranges: [{ first: 6, last: 9 }],
      }],
      [report, { type: "report", link: "0011223344556677", frame: ack.bytes }],
    ];
    for (const [bytes, frame] of laid) {
      const encoded = encodeTunnelFrame(frame);
      const body = bytes.slice(0, encoded.length);
      body[7] = 0;
      assert.deepEqual(body, encoded, frame.type);
    }
    const port = testPort();
    let rows: Row[] = [];
    await withTempDir(PREFIX, async (dir) => {
      await using capture = await Capture.start([port]);
      await sendDatagrams(port, [datum, held, short, report]);
      await capture.stop(`${dir}/capture.pcapng`);
      rows = await dissect(
        `${dir}/capture.pcapng`,
        port,
        `udp.dstport == ${port}`,
      );
    });
    assert.equal(rows.length, 4);
    const ports = {
      "udp.srcport": rows[0]!["udp.srcport"]!,
      "udp.dstport": `${port}`,
    };
    const mac = "a5".repeat(16);
    const frame = (inner as { frame: Frame }).frame;
    assert.deepEqual(
      rows[0],
      row({
        ...frameRow(frame, ports),
        // The tunnel's trailer length, then the inner frame's.
        "tag_length": "24|0",
        "tunnel.type": "1",
        "tunnel.hops": "7",
        "tunnel.link": "0011223344556677",
        "tunnel.seq": "3",
        "tunnel.low": "2",
        "tunnel.id": "239.1.2.3:5000",
        "tunnel.datagram": hex(inner.bytes),
        "trailer.time": `${SEAL_TIME}`,
        "trailer.mac": mac,
      }),
      "DATUM",
    );
    assert.deepEqual(
      rows[1],
      row({
        ...ports,
        "tag_length": "24",
        "tunnel.type": "2",
        "tunnel.hops": "0",
        "tunnel.link": "0011223344556677",
        "tunnel.seq": "4",
        "range_count": "1",
        "range.first": "6",
        "range.last": "9",
        "trailer.time": `${SEAL_TIME + 1}`,
        "trailer.mac": mac,
      }),
      "HELD",
    );
    assert.deepEqual(
      rows[2],
      row({
        ...ports,
        "tag_length": "24",
        "tunnel.type": "1",
        "tunnel.hops": "8",
        "tunnel.link": "8899aabbccddeeff",
        "tunnel.seq": "2",
        "tunnel.low": "1",
        invalid: "truncated",
        "trailer.time": `${SEAL_TIME + 2}`,
        "trailer.mac": mac,
      }),
      "truncated DATUM",
    );
    assert.deepEqual(
      rows[3],
      row({
        ...frameRow((ack as { frame: Frame }).frame, ports),
        "tag_length": "24|0",
        "tunnel.type": "3",
        "tunnel.hops": "0",
        "tunnel.link": "0011223344556677",
        "tunnel.seq": "0",
        "trailer.time": `${SEAL_TIME + 3}`,
        "trailer.mac": mac,
      }),
      "REPORT",
    );
  },
});
