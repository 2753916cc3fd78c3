/**
 * Unit tests of the reliable receiver's state machine: frames are encoded,
 * decoded and fed to {@linkcode ReliableReceiver.handle} directly; a fake
 * send function records the HELLO, ACK, NACK and BYE frames it answers with.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Peer } from "../../lib/net/address.ts";
import type { ReceiverEvent } from "../../lib/events.ts";
import {
  type DataFrame,
  type DataHeader,
  type DataRecord,
  decodeFrame,
  encodeFrame,
  type Frame,
  type HeartbeatFrame,
  peekData,
} from "../../lib/wire/frame.ts";
import {
  type BulletinWriter,
  type DeliverySink,
  ReliableReceiver,
  type ReliableReceiverOptions,
  STREAM_THRESHOLD,
} from "../../lib/reliable/receiver.ts";
import type { ReceiverState } from "../../lib/reliable/state.ts";

const SESSION = "0123456789abcdef";
const OTHER = "fedcba9876543210";
const SENDER: Peer = { address: "127.0.0.1", port: 40000 };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function text(value: string): Uint8Array {
  return encoder.encode(value);
}

/** Decodes what `encodeFrame` made of `frame`: the receiver sees wire frames. */
function wire(frame: Frame): Frame {
  const decoded = decodeFrame(encodeFrame(frame));
  assert.equal(decoded.kind, "frame");
  return (decoded as { frame: Frame }).frame;
}

function heartbeat(
  seq: number,
  low = 1,
  session = SESSION,
): HeartbeatFrame {
  return {
    type: "heartbeat",
    session,
    seq,
    final: false,
    timestamp: 1_000_000,
    low,
  };
}

function data(
  seq: number,
  records: DataRecord[],
  options: { low?: number; retransmit?: boolean; session?: string } = {},
): DataFrame {
  return {
    type: "data",
    session: options.session ?? SESSION,
    seq,
    retransmit: options.retransmit ?? false,
    timestamp: 2_000_000 + seq,
    low: options.low ?? 1,
    records,
  };
}

/** A whole bulletin in one record. */
function whole(bulletin: number, payload: string | Uint8Array): DataRecord {
  const bytes = typeof payload === "string" ? text(payload) : payload;
  return { bulletin, total: bytes.length, offset: 0, data: bytes };
}

/** A bulletin cut into records of `size` bytes, the digest on the first. */
async function fragments(
  bulletin: number,
  payload: Uint8Array,
  size: number,
): Promise<DataRecord[]> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", payload as BufferSource),
  );
  const records: DataRecord[] = [];
  for (let offset = 0; offset < payload.length; offset += size) {
    const record: DataRecord = {
      bulletin,
      total: payload.length,
      offset,
      data: payload.subarray(offset, offset + size),
    };
    if (offset === 0) record.digest = digest;
    records.push(record);
  }
  return records;
}

function pattern(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let k = 0; k < size; k++) bytes[k] = (k * 13 + seed * 101) & 0xff;
  return bytes;
}

/** A receiver with a recording send function and event list. */
function harness(options: Partial<ReliableReceiverOptions> = {}) {
  const sent: Frame[] = [];
  const to: Peer[] = [];
  const events: ReceiverEvent[] = [];
  const rx = new ReliableReceiver({
    name: "rx",
    // No back-off, no jitter: timers fire on the next turn.
    random: () => 0,
    nackRepeatMs: 10_000,
    send(frame, peer) {
      sent.push(frame);
      to.push(peer);
      return Promise.resolve();
    },
    onEvent: (event) => events.push(event),
    ...options,
  });
  return {
    rx,
    sent,
    to,
    events,
    /**
     * Joins on a heartbeat of sequence 0: the HELLO goes at once, the ACK
     * answering the heartbeat after the (zero) jitter.
     */
    async join(): Promise<void> {
      await rx.handle(wire(heartbeat(0)), SENDER);
      await this.sentCount(2);
      assert.deepEqual(sent, [hello(0), ack(0)]);
    },
    /** Feeds a frame as it would arrive from the wire. */
    feed(frame: Frame, from: Peer = SENDER): Promise<void> {
      return rx.handle(wire(frame), from);
    },
    /** Waits until `count` frames were sent (at most 2 s). */
    async sentCount(count: number): Promise<Frame[]> {
      const end = performance.now() + 2_000;
      while (sent.length < count) {
        if (performance.now() > end) {
          throw new Error(`${sent.length} frames sent, not ${count}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      return sent;
    },
    /** Delivered bulletins: [number, text]. */
    bulletins(): [number, string][] {
      return events.flatMap((e) =>
        e.type === "bulletin" ? [[e.number, decoder.decode(e.payload)]] : []
      );
    },
    /** Events other than bulletins. */
    others(): ReceiverEvent[] {
      return events.filter((e) => e.type !== "bulletin");
    },
  };
}

function hello(seq: number, fromStart = false, session = SESSION): Frame {
  return { type: "hello", session, seq, name: "rx", fromStart };
}

function ack(seq: number, ranges: { first: number; last: number }[] = []) {
  return { type: "ack", session: SESSION, seq, name: "rx", ranges } as Frame;
}

function gone(ranges: { first: number; last: number }[], seq = 4): Frame {
  return { type: "gone", session: SESSION, seq, ranges };
}

function nack(seq: number, ranges: { first: number; last: number }[]) {
  return { type: "nack", session: SESSION, seq, name: "rx", ranges } as Frame;
}

function sessionEvent(start: number, resumed = false, session = SESSION) {
  return { type: "session", session, from: SENDER, start, resumed };
}

Deno.test("joins on a heartbeat with a HELLO; delivers packed bulletins in order", async () => {
  const h = harness();
  try {
    await h.feed(heartbeat(0));
    assert.deepEqual(h.events, [sessionEvent(1)]);
    assert.deepEqual(h.sent, [hello(0)]);
    // The heartbeat is answered with an ACK after the jitter.
    await h.sentCount(2);
    assert.deepEqual(h.sent, [hello(0), ack(0)]);
    assert.deepEqual(h.to, [SENDER, SENDER]);
    await h.feed(data(1, [whole(1, "one"), whole(2, "two")]));
    await h.feed(data(2, [whole(3, "three")]));
    assert.deepEqual(h.bulletins(), [[1, "one"], [2, "two"], [3, "three"]]);
    const first = h.events[1]!;
    assert.deepEqual(first, {
      type: "bulletin",
      session: SESSION,
      number: 1,
      from: SENDER,
      payload: text("one"),
      sentAt: 2_000_001,
    });
    assert.equal(h.rx.delivered, 3);
    assert.equal(h.rx.stats.data, 2);
    assert.equal(h.rx.stats.bytes, 11);
    assert.equal(h.rx.stats.session, SESSION);
    // No gap: nothing more was sent.
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(h.sent, [hello(0), ack(0)]);
  } finally {
    await h.rx.close();
  }
});

Deno.test("duplicates are dropped and counted, before and after delivery", async () => {
  const h = harness();
  try {
    await h.join();
    await h.feed(data(1, [whole(1, "a")]));
    await h.feed(data(3, [whole(3, "c")]));
    // 1 was delivered, 3 is held: both again are duplicates.
    await h.feed(data(1, [whole(1, "a")], { retransmit: true }));
    await h.feed(data(3, [whole(3, "c")]));
    assert.equal(h.rx.stats.duplicates, 2);
    await h.feed(data(2, [whole(2, "b")], { retransmit: true }));
    await h.feed(data(2, [whole(2, "b")], { retransmit: true }));
    assert.equal(h.rx.stats.duplicates, 3);
    assert.equal(h.rx.stats.repaired, 1);
    assert.deepEqual(h.bulletins(), [[1, "a"], [2, "b"], [3, "c"]]);
    assert.equal(h.rx.stats.data, 6);
  } finally {
    await h.rx.close();
  }
});

Deno.test("a gap is NACKed after the back-off, acknowledged selectively, and repaired in order", async () => {
  const h = harness();
  try {
    await h.join();
    await h.feed(data(1, [whole(1, "a")]));
    await h.feed(data(3, [whole(3, "c")]));
    await h.feed(data(4, [whole(4, "d")]));
    await h.sentCount(3);
    assert.deepEqual(h.sent[2], nack(1, [{ first: 2, last: 2 }]));
    assert.equal(h.rx.stats.nacks, 1);
    // A heartbeat is answered with an ACK: cumulative 1, holding 3-4.
    await h.feed(heartbeat(4));
    await h.sentCount(4);
    assert.deepEqual(h.sent[3], ack(1, [{ first: 3, last: 4 }]));
    assert.deepEqual(h.bulletins(), [[1, "a"]]);
    await h.feed(data(2, [whole(2, "b")], { retransmit: true }));
    assert.deepEqual(h.bulletins(), [[1, "a"], [2, "b"], [3, "c"], [4, "d"]]);
    assert.equal(h.rx.stats.repaired, 1);
    // Tail loss: a heartbeat says 6 exists.
    await h.feed(heartbeat(6));
    await h.sentCount(6);
    assert.deepEqual(h.sent.slice(4), [
      ack(4),
      nack(4, [{ first: 5, last: 6 }]),
    ]);
    assert.equal(h.rx.stats.acks, 3);
    // Closing: a last ACK and a BYE with the position.
    await h.rx.close();
    assert.deepEqual(h.sent.slice(6), [
      ack(4),
      { type: "bye", session: SESSION, seq: 4, name: "rx" },
    ]);
  } finally {
    await h.rx.close();
  }
});

Deno.test("a still-missing sequence is asked for again after nackRepeatMs", async () => {
  const h = harness({ nackRepeatMs: 30 });
  try {
    await h.join();
    await h.feed(data(2, [whole(2, "b")]));
    await h.sentCount(3);
    const asked = performance.now();
    await h.sentCount(4);
    assert.ok(performance.now() - asked >= 25, "repeated too soon");
    assert.deepEqual(h.sent, [
      hello(0),
      ack(0),
      nack(0, [{ first: 1, last: 1 }]),
      nack(0, [{ first: 1, last: 1 }]),
    ]);
    // Repaired: the repeats stop.
    await h.feed(data(1, [whole(1, "a")], { retransmit: true }));
    const count = h.sent.length;
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.equal(h.sent.length, count);
    assert.deepEqual(h.bulletins(), [[1, "a"], [2, "b"]]);
  } finally {
    await h.rx.close();
  }
});

Deno.test("a fragmented bulletin is reassembled; a corrupted one fails its digest and the stream goes on", async () => {
  const h = harness();
  try {
    await h.join();
    const good = pattern(3000, 1);
    const parts = await fragments(1, good, 1000);
    await h.feed(data(1, [parts[0]!]));
    await h.feed(data(2, [parts[1]!]));
    assert.equal(h.rx.delivered, 0);
    await h.feed(data(3, [parts[2]!]));
    const delivered = h.events.find((e) => e.type === "bulletin");
    assert.ok(delivered?.type === "bulletin");
    assert.deepEqual(delivered.payload, good);
    // Bulletin 2: its second fragment has one data byte flipped in transit.
    const bad = await fragments(2, pattern(3000, 2), 1000);
    await h.feed(data(4, [bad[0]!]));
    const bytes = encodeFrame(data(5, [bad[1]!]));
    bytes[bytes.length - 10]! ^= 0x01;
    const decoded = decodeFrame(bytes);
    assert.ok(decoded.kind === "frame");
    await h.rx.handle(decoded.frame, SENDER);
    await h.feed(data(6, [bad[2]!, whole(3, "after")]));
    assert.deepEqual(h.others().slice(1), [{
      type: "bulletin-failed",
      session: SESSION,
      number: 2,
      reason: "digest",
    }]);
    assert.deepEqual(
      h.bulletins().map(([n]) => n),
      [1, 3],
    );
    assert.equal(h.rx.stats.failed, 1);
    assert.equal(h.rx.delivered, 2);
  } finally {
    await h.rx.close();
  }
});

Deno.test("a bulletin above maxSize fails as too-large and the stream goes on", async () => {
  const h = harness({ maxSize: 100 });
  try {
    await h.join();
    await h.feed(data(1, [whole(1, pattern(150, 1)), whole(2, "small")]));
    // Fragmented: all its fragments are skipped.
    const big = await fragments(3, pattern(300, 3), 120);
    await h.feed(data(2, [big[0]!]));
    await h.feed(data(3, [big[1]!]));
    await h.feed(data(4, [big[2]!, whole(4, "last")]));
    assert.deepEqual(h.others().slice(1), [
      {
        type: "bulletin-failed",
        session: SESSION,
        number: 1,
        reason: "too-large",
      },
      {
        type: "bulletin-failed",
        session: SESSION,
        number: 3,
        reason: "too-large",
      },
    ]);
    assert.deepEqual(h.bulletins(), [[2, "small"], [4, "last"]]);
    assert.equal(h.rx.stats.failed, 2);
  } finally {
    await h.rx.close();
  }
});

Deno.test("unexpected frame types, GONE of another session and invalid datagrams are counted", async () => {
  const h = harness();
  try {
    await h.join();
    await h.feed(ack(0));
    await h.feed(nack(0, [{ first: 1, last: 1 }]));
    await h.feed(hello(0));
    await h.feed({ type: "bye", session: SESSION, seq: 0, name: "x" });
    await h.feed({
      type: "gone",
      session: OTHER,
      seq: 5,
      ranges: [{ first: 1, last: 4 }],
    });
    assert.equal(h.rx.stats.dropped.unexpected, 5);
    // What decodeFrame rejects: another version, a tag, a short frame.
    const frame = encodeFrame(heartbeat(0));
    const version = frame.slice();
    version[4] = 2;
    const tagged = frame.slice();
    tagged[7] = 16;
    for (const bytes of [version, tagged, frame.subarray(0, 20)]) {
      const decoded = decodeFrame(bytes);
      assert.ok(decoded.kind === "invalid");
      h.rx.invalid(decoded.reason);
    }
    assert.deepEqual(h.rx.stats.dropped, {
      version: 1,
      type: 0,
      truncated: 1,
      malformed: 0,
      tag: 1,
      unexpected: 5,
      ahead: 0,
      auth: 0,
      replay: 0,
      stale: 0,
      forged: 0,
      plain: 0,
      roster: 0,
    });
    // Still in the session, nothing delivered, no answer to any of them.
    assert.deepEqual(h.events, [sessionEvent(1)]);
    assert.deepEqual(h.sent, [hello(0), ack(0)]);
    assert.equal(h.rx.stats.unrecoverable, 0);
  } finally {
    await h.rx.close();
  }
});

Deno.test("a DATA frame too far ahead is dropped and counted", async () => {
  const h = harness({ maxAhead: 100 });
  try {
    await h.join();
    await h.feed(data(102, [whole(102, "far")]));
    assert.equal(h.rx.stats.dropped.ahead, 1);
    await h.feed(data(101, [whole(101, "near")]));
    assert.equal(h.rx.stats.dropped.ahead, 1);
    assert.equal(h.rx.stats.data, 2);
  } finally {
    await h.rx.close();
  }
});

Deno.test("a frame of a new session (a restarted sender) is followed from where it starts, beside the old one", async () => {
  const h = harness();
  try {
    await h.join();
    await h.feed(data(1, [whole(1, "a")]));
    await h.feed(heartbeat(7, 1, OTHER));
    await h.feed(data(8, [whole(12, "x")], { session: OTHER }));
    assert.deepEqual(h.others(), [
      sessionEvent(1),
      sessionEvent(8, false, OTHER),
    ]);
    assert.deepEqual(h.bulletins(), [[1, "a"], [12, "x"]]);
    assert.deepEqual(
      h.sent.filter((frame) => frame.type === "hello"),
      [hello(0), hello(7, false, OTHER)],
    );
    assert.equal(h.rx.stats.session, OTHER);
    assert.deepEqual(h.rx.sessions, [SESSION, OTHER]);
    // The old session is still followed: its next bulletin is delivered in
    // it, once, and named (another session is followed at the same time).
    const dropped = h.rx.stats.dropped.unexpected;
    await h.feed(
      data(2, [whole(2, "late")], { session: SESSION, retransmit: true }),
    );
    await h.feed(data(2, [whole(2, "late")], { session: SESSION }));
    await h.feed(heartbeat(9, 1, SESSION));
    assert.equal(h.rx.stats.session, SESSION);
    assert.equal(h.rx.stats.dropped.unexpected, dropped);
    assert.equal(h.rx.stats.duplicates, 1);
    assert.deepEqual(h.bulletins(), [[1, "a"], [12, "x"], [2, "late"]]);
    const late = h.events.at(-1);
    assert.ok(late?.type === "bulletin");
    assert.equal(late.session, SESSION);
    assert.equal(late.concurrent, true);
    assert.equal(h.others().length, 2);
  } finally {
    await h.rx.close();
  }
});

Deno.test("two sessions at once: each in order exactly once, feedback to each session's sender", async () => {
  const h = harness();
  const second: Peer = { address: "127.0.0.1", port: 40001 };
  try {
    await h.feed(data(1, [whole(1, "a1")]));
    await h.feed(data(1, [whole(1, "b1")], { session: OTHER }), second);
    // Interleaved, out of order in each, with duplicates.
    await h.feed(data(3, [whole(3, "a3")]));
    await h.feed(
      data(2, [whole(2, "b2"), whole(3, "b3")], { session: OTHER }),
      second,
    );
    await h.feed(data(2, [whole(2, "a2")]));
    await h.feed(data(2, [whole(2, "a2")], { retransmit: true }));
    await h.feed(
      data(1, [whole(1, "b1")], { session: OTHER, retransmit: true }),
      second,
    );
    const of = (session: string) =>
      h.events.flatMap((e) =>
        e.type === "bulletin" && e.session === session
          ? [[e.number, decoder.decode(e.payload), e.concurrent]]
          : []
      );
    // Each sender's address tells its session: the lines need not.
    assert.deepEqual(of(SESSION), [[1, "a1", undefined], [2, "a2", undefined], [
      3,
      "a3",
      undefined,
    ]]);
    assert.deepEqual(of(OTHER), [[1, "b1", undefined], [2, "b2", undefined], [
      3,
      "b3",
      undefined,
    ]]);
    assert.equal(h.rx.delivered, 6);
    assert.equal(h.rx.stats.duplicates, 2);
    // HELLOs went to each session's sender.
    const hellos = h.sent.flatMap((frame, k) =>
      frame.type === "hello" ? [[frame.session, h.to[k]!.port]] : []
    );
    assert.deepEqual(hellos, [[SESSION, 40000], [OTHER, 40001]]);
    // SESSION now speaks from where OTHER does: its lines name it, and so
    // do OTHER's.
    await h.feed(data(4, [whole(4, "a4")]), second);
    await h.feed(data(3, [whole(4, "b4")], { session: OTHER }), second);
    assert.deepEqual(
      h.events.slice(-2).map((e) =>
        e.type === "bulletin" ? [e.session, e.number, e.concurrent] : []
      ),
      [[SESSION, 4, true], [OTHER, 4, true]],
    );
  } finally {
    await h.rx.close();
  }
  // Each session's sender is told goodbye.
  const byes = h.sent.flatMap((frame, k) =>
    frame.type === "bye" ? [[frame.session, frame.seq, h.to[k]!.port]] : []
  );
  assert.deepEqual(byes.toSorted(), [[SESSION, 4, 40001], [OTHER, 3, 40001]]);
});

Deno.test("a session that continues from another address (a standby took over) is the same session: feedback goes there", async () => {
  const h = harness();
  const standby: Peer = { address: "127.0.0.2", port: 41000 };
  try {
    await h.join();
    await h.feed(data(1, [whole(1, "a")]));
    await h.feed(data(2, [whole(2, "b")]));
    // The primary died; the standby continues the session.
    await h.feed(heartbeat(2), standby);
    await h.feed(data(4, [whole(4, "d")]), standby);
    const nacks = await h.sentCount(h.sent.length + 1);
    const last = nacks.at(-1)!;
    assert.equal(last.type, "nack");
    assert.equal(h.to.at(-1), standby);
    await h.feed(data(3, [whole(3, "c")], { retransmit: true }), standby);
    assert.deepEqual(h.bulletins(), [[1, "a"], [2, "b"], [3, "c"], [4, "d"]]);
    assert.deepEqual(h.others(), [sessionEvent(1)]);
    assert.ok(h.events.every((e) => !("concurrent" in e)));
  } finally {
    await h.rx.close();
  }
});

Deno.test("at most maxSessions sessions: the least recently heard makes room, and its frames are dropped after", async () => {
  const saved: ReceiverState[] = [];
  const h = harness({ maxSessions: 2, sink: { save: (s) => saved.push(s) } });
  const THIRD = "00000000000000aa";
  try {
    await h.feed(data(1, [whole(1, "a1")]));
    await h.feed(data(1, [whole(1, "b1")], { session: OTHER }));
    await h.feed(data(2, [whole(2, "a2")]));
    // Held out of order in OTHER: released when OTHER is dropped.
    await h.feed(data(5, [whole(5, "b5")], { session: OTHER }));
    assert.deepEqual(saved.at(-1), {
      version: 1,
      session: SESSION,
      next: 3,
      delivered: 2,
      name: "rx",
      sessions: [{ session: OTHER, next: 2, delivered: 1 }],
    });
    // OTHER was heard last... then SESSION again: OTHER is the oldest.
    await h.feed(heartbeat(2));
    await h.feed(data(1, [whole(1, "c1")], { session: THIRD }));
    assert.deepEqual(h.rx.sessions, [SESSION, THIRD]);
    const dropped = h.rx.stats.dropped.unexpected;
    await h.feed(data(2, [whole(2, "b2")], { session: OTHER }));
    await h.feed(heartbeat(5, 1, OTHER));
    assert.equal(h.rx.stats.dropped.unexpected, dropped + 2);
    assert.deepEqual(h.rx.sessions, [SESSION, THIRD]);
    assert.deepEqual(
      h.bulletins(),
      [[1, "a1"], [1, "b1"], [2, "a2"], [1, "c1"]],
    );
    assert.deepEqual(saved.at(-1)?.sessions, [
      { session: SESSION, next: 3, delivered: 2 },
    ]);
  } finally {
    await h.rx.close();
  }
});

Deno.test("a saved state with several sessions resumes each where it stopped", async () => {
  const state: ReceiverState = {
    version: 1,
    session: SESSION,
    next: 3,
    delivered: 2,
    name: "rx",
    sessions: [{ session: OTHER, next: 5, delivered: 9 }],
  };
  const h = harness({ state });
  try {
    await h.feed(data(3, [whole(3, "a3")]));
    await h.feed(
      data(4, [whole(9, "old"), whole(10, "b10")], { session: OTHER }),
    );
    await h.feed(data(5, [whole(11, "b11")], { session: OTHER }));
    assert.deepEqual(h.others(), [
      sessionEvent(3, true),
      sessionEvent(5, true, OTHER),
    ]);
    // OTHER resumes at 5: datagram 4 is before its position.
    assert.deepEqual(h.bulletins(), [[3, "a3"], [11, "b11"]]);
  } finally {
    await h.rx.close();
  }
});

Deno.test("limit stops exactly at the count inside a packed datagram, and saves where to resume", async () => {
  const saved: ReceiverState[] = [];
  const h = harness({ limit: 3, sink: { save: (state) => saved.push(state) } });
  try {
    await h.join();
    await h.feed(data(1, [1, 2, 3, 4, 5].map((n) => whole(n, `b${n}`))));
    assert.deepEqual(h.bulletins(), [[1, "b1"], [2, "b2"], [3, "b3"]]);
    assert.equal(h.rx.delivered, 3);
    // A restart resumes at datagram 1 and skips bulletins up to 3.
    assert.deepEqual(saved, [{
      version: 1,
      session: SESSION,
      next: 1,
      delivered: 3,
      name: "rx",
    }]);
    await h.feed(data(2, [whole(6, "b6")]));
    assert.equal(h.rx.delivered, 3);
    assert.equal(h.bulletins().length, 3);
  } finally {
    await h.rx.close();
  }
});

Deno.test("state: a receiver resumes its session at next, skipping what it delivered", async () => {
  const saved: ReceiverState[] = [];
  const written: [string, number, string][] = [];
  const h = harness({
    state: {
      version: 1,
      session: SESSION,
      next: 5,
      delivered: 7,
      name: "rx",
    },
    sink: {
      save: (state) => saved.push(state),
      write(session, number, payload) {
        written.push([session, number, decoder.decode(payload)]);
        return `/out/${number}`;
      },
    },
  });
  try {
    await h.feed(heartbeat(8));
    assert.deepEqual(h.events, [sessionEvent(5, true)]);
    await h.sentCount(3);
    assert.deepEqual(h.sent, [
      hello(4),
      ack(4),
      nack(4, [{ first: 5, last: 8 }]),
    ]);
    // Datagram 5 holds bulletins 6 and 7 (delivered before) and 8.
    await h.feed(data(5, [whole(6, "b6"), whole(7, "b7"), whole(8, "b8")]));
    await h.feed(data(6, [whole(9, "b9")]));
    await h.feed(data(7, [whole(10, "b10")]));
    await h.feed(data(8, [whole(11, "b11")]));
    assert.deepEqual(h.bulletins().map(([n]) => n), [8, 9, 10, 11]);
    assert.deepEqual(written.map(([, n]) => n), [8, 9, 10, 11]);
    assert.deepEqual(written[0], [SESSION, 8, "b8"]);
    const first = h.events[1]!;
    assert.ok(first.type === "bulletin");
    assert.equal(first.path, "/out/8");
    assert.deepEqual(saved.at(-1), {
      version: 1,
      session: SESSION,
      next: 9,
      delivered: 11,
      name: "rx",
    });
    assert.equal(h.rx.stats.duplicates, 0);
  } finally {
    await h.rx.close();
  }
});

Deno.test("state: a saved position for another session is ignored", async () => {
  const h = harness({
    state: { version: 1, session: OTHER, next: 5, delivered: 7, name: "rx" },
  });
  try {
    await h.feed(heartbeat(8));
    assert.deepEqual(h.events, [sessionEvent(9)]);
    assert.deepEqual(h.sent, [hello(8)]);
    await h.feed(data(9, [whole(1, "first")]));
    assert.deepEqual(h.bulletins(), [[1, "first"]]);
  } finally {
    await h.rx.close();
  }
});

Deno.test("fromStart: joins at the sender's oldest held sequence", async () => {
  const h = harness({ fromStart: true });
  try {
    await h.feed(heartbeat(10, 3));
    assert.deepEqual(h.events, [sessionEvent(3)]);
    await h.sentCount(3);
    assert.deepEqual(h.sent, [
      hello(2, true),
      ack(2),
      nack(2, [{ first: 3, last: 10 }]),
    ]);
  } finally {
    await h.rx.close();
  }
});

Deno.test("joining mid-bulletin skips the rest of it", async () => {
  const h = harness();
  try {
    const parts = await fragments(3, pattern(2000, 3), 1000);
    await h.feed(data(7, [parts[1]!]));
    assert.deepEqual(h.events, [sessionEvent(7)]);
    assert.deepEqual(h.sent, [hello(6)]);
    await h.feed(data(8, [whole(4, "four")]));
    assert.deepEqual(h.bulletins(), [[4, "four"]]);
    assert.equal(h.rx.stats.failed, 0);
  } finally {
    await h.rx.close();
  }
});

Deno.test("GONE: the receiver reports the unrecoverable range and moves on", async () => {
  const h = harness();
  try {
    await h.join();
    await h.feed(data(1, [whole(1, "a")]));
    await h.feed(data(4, [whole(4, "d")]));
    await h.sentCount(3);
    assert.deepEqual(h.sent[2], nack(1, [{ first: 2, last: 3 }]));
    await h.feed({
      type: "gone",
      session: SESSION,
      seq: 4,
      ranges: [{ first: 2, last: 3 }],
    });
    assert.deepEqual(h.bulletins(), [[1, "a"], [4, "d"]]);
    assert.equal(h.rx.stats.unrecoverable, 2);
    const lost = h.others().filter((e) => e.type === "unrecoverable");
    assert.equal(lost.length, 1);
    const event = lost[0]!;
    assert.ok(event.type === "unrecoverable");
    assert.deepEqual([event.first, event.last], [2, 3]);
    // Bulletins 2 and 3 (between 1 and 4) were in those datagrams.
    assert.equal(event.bulletins, 2, JSON.stringify(event));
  } finally {
    await h.rx.close();
  }
});

Deno.test("gaps below the sender's low sequence are asked for, and lost only when the sender says GONE", async () => {
  const h = harness();
  try {
    await h.join();
    await h.feed(data(1, [whole(1, "a")]));
    await h.feed(data(5, [whole(5, "e")], { low: 4 }));
    // The receiver asks, so that the sender knows what this receiver lost.
    await h.sentCount(3);
    assert.deepEqual(h.sent[2], nack(1, [{ first: 2, last: 4 }]));
    // A GONE for sequences it did not ask for is not taken.
    await h.feed(gone([{ first: 6, last: 9 }]));
    await h.feed(gone([{ first: 2, last: 3 }]));
    assert.equal(h.rx.stats.unrecoverable, 2);
    // Reported once the next datagram shows what the lost range held.
    assert.deepEqual(h.others().filter((e) => e.type === "unrecoverable"), []);
    await h.feed(data(4, [whole(4, "d")], { retransmit: true, low: 4 }));
    const lost = h.others().filter((e) => e.type === "unrecoverable");
    assert.equal(lost.length, 1);
    const event = lost[0]!;
    assert.ok(event.type === "unrecoverable");
    assert.deepEqual(
      [event.session, event.first, event.last, event.bulletins],
      [SESSION, 2, 3, 2],
    );
    assert.deepEqual(h.bulletins(), [[1, "a"], [4, "d"], [5, "e"]]);
  } finally {
    await h.rx.close();
  }
});

Deno.test("after close nothing is handled or sent", async () => {
  const h = harness();
  await h.feed(heartbeat(0));
  await h.rx.close();
  const count = h.sent.length;
  await h.feed(data(1, [whole(1, "late")]));
  await h.rx.close();
  assert.equal(h.sent.length, count);
  assert.deepEqual(h.bulletins(), []);
});

// ---- screen(): dropping DATA from its header alone -------------------------------

/** A DATA frame's header and size, as receiveBulletins peeks them. */
function peek(frame: DataFrame): { head: DataHeader; size: number } {
  const bytes = encodeFrame(frame);
  const head = peekData(bytes);
  assert.ok(head, `not a DATA header: seq ${frame.seq}`);
  return { head, size: bytes.length };
}

/** The counters screen() touches, to compare before and after. */
function counts(rx: ReliableReceiver) {
  return {
    data: rx.stats.data,
    duplicates: rx.stats.duplicates,
    ahead: rx.stats.dropped.ahead,
    unexpected: rx.stats.dropped.unexpected,
    repaired: rx.stats.repaired,
  };
}

Deno.test("screen: drops duplicates and DATA too far ahead, counted as handle counts them", async () => {
  const h = harness({ maxAhead: 100 });
  try {
    // Not joined yet: nothing is screened, whatever the sequence.
    const first = peek(data(1, [whole(1, "a")]));
    assert.equal(h.rx.screen(first.head, first.size), false);
    await h.join();
    await h.feed(data(1, [whole(1, "a")]));
    await h.feed(data(3, [whole(3, "c")]));
    // Delivered 1, holds 3; next expected is 2.
    const before = counts(h.rx);
    assert.deepEqual(before, {
      data: 2,
      duplicates: 0,
      ahead: 0,
      unexpected: 0,
      repaired: 0,
    });
    // Another session: left to handle (which follows it).
    const other = peek(data(1, [whole(1, "x")], { session: OTHER }));
    assert.equal(h.rx.screen(other.head, other.size), false);
    assert.deepEqual(counts(h.rx), before);
    // Below the position: a duplicate.
    const old = peek(data(1, [whole(1, "a")], { retransmit: true }));
    assert.equal(h.rx.screen(old.head, old.size), true);
    assert.deepEqual(counts(h.rx), { ...before, data: 3, duplicates: 1 });
    // Held already: a duplicate.
    const held = peek(data(3, [whole(3, "c")]));
    assert.equal(h.rx.screen(held.head, held.size), true);
    assert.deepEqual(counts(h.rx), { ...before, data: 4, duplicates: 2 });
    // The next expected, and one ahead within the limits: kept.
    const next = peek(data(2, [whole(2, "b")]));
    assert.equal(h.rx.screen(next.head, next.size), false);
    const within = peek(data(4, [whole(4, "d")]));
    assert.equal(h.rx.screen(within.head, within.size), false);
    // The last sequence within maxAhead (next 2 + 100), then one past it.
    const edge = peek(data(102, [whole(102, "e")]));
    assert.equal(h.rx.screen(edge.head, edge.size), false);
    assert.deepEqual(counts(h.rx), { ...before, data: 4, duplicates: 2 });
    const far = peek(data(103, [whole(103, "f")]));
    assert.equal(h.rx.screen(far.head, far.size), true);
    assert.deepEqual(counts(h.rx), {
      ...before,
      data: 5,
      duplicates: 2,
      ahead: 1,
    });
    // Screening delivers nothing and sends nothing.
    assert.deepEqual(h.bulletins(), [[1, "a"]]);
    assert.deepEqual(h.sent.slice(0, 2), [hello(0), ack(0)]);
    assert.equal(h.sent.filter((f) => f.type === "hello").length, 1);
    // Once closed, nothing is screened.
    await h.rx.close();
    assert.equal(h.rx.screen(old.head, old.size), false);
    assert.equal(h.rx.stats.data, 5);
  } finally {
    await h.rx.close();
  }
});

Deno.test("screen: a datagram that would hold more than maxHeldBytes is dropped as ahead, the next expected never", async () => {
  // A one-record frame of 1 byte is 63 bytes; held, it counts
  // 256 + 63 + 200 = 519 bytes.
  const h = harness({ maxHeldBytes: 1100 });
  try {
    await h.join();
    await h.feed(data(1, [whole(1, "a")]));
    await h.feed(data(3, [whole(3, "c")]));
    await h.feed(data(4, [whole(4, "d")]));
    // 1,038 bytes held: another 519 would be too many.
    const before = counts(h.rx);
    assert.deepEqual(before, {
      data: 3,
      duplicates: 0,
      ahead: 0,
      unexpected: 0,
      repaired: 0,
    });
    const fifth = peek(data(5, [whole(5, "e")]));
    assert.equal(fifth.size, 63);
    assert.equal(h.rx.screen(fifth.head, fifth.size), true);
    assert.deepEqual(counts(h.rx), { ...before, data: 4, ahead: 1 });
    // The datagram at the position is never dropped for its size, however
    // large: it is delivered at once rather than held.
    const big = peek(data(2, [whole(2, pattern(5000, 2))]));
    assert.equal(h.rx.screen(big.head, big.size), false);
    assert.deepEqual(counts(h.rx), { ...before, data: 4, ahead: 1 });
    // A datagram that alone exceeds the limit, ahead of the position.
    const h2 = harness({ maxHeldBytes: 1100 });
    try {
      await h2.join();
      const alone = peek(data(2, [whole(2, pattern(700, 1))]));
      // 256 + 762 + 200 = 1,218 > 1,100.
      assert.equal(alone.size, 762);
      assert.equal(h2.rx.screen(alone.head, alone.size), true);
      assert.equal(h2.rx.stats.dropped.ahead, 1);
      // 256 + 600 + 200 = 1,056: held.
      const fits = peek(data(2, [whole(2, pattern(538, 1))]));
      assert.equal(fits.size, 600);
      assert.equal(h2.rx.screen(fits.head, fits.size), false);
      assert.equal(h2.rx.stats.dropped.ahead, 1);
      assert.equal(h2.rx.stats.data, 1);
    } finally {
      await h2.rx.close();
    }
  } finally {
    await h.rx.close();
  }
});

Deno.test("screen: the default maxHeldBytes is 16 MiB", async () => {
  const h = harness();
  try {
    await h.join();
    // Nothing held: the least a datagram counts is 256 + size + 200 per
    // record, so a header that claims 4096 records (819,200 bytes) with a
    // size just under the rest of 16 MiB fits, one byte more does not.
    const head: DataHeader = { session: SESSION, seq: 2, records: 4096 };
    const limit = 16 * 1024 * 1024 - 256 - 200 * 4096;
    assert.equal(h.rx.screen(head, limit), false);
    assert.equal(h.rx.stats.dropped.ahead, 0);
    assert.equal(h.rx.screen(head, limit + 1), true);
    assert.equal(h.rx.stats.dropped.ahead, 1);
    assert.equal(h.rx.stats.data, 1);
  } finally {
    await h.rx.close();
  }
});

Deno.test("screen: screening then handling the rest counts exactly as handling everything", async () => {
  const options = { maxAhead: 100, maxHeldBytes: 2000 };
  const screened = harness(options);
  const handled = harness(options);
  const frames: DataFrame[] = [
    data(1, [whole(1, "a")]),
    data(3, [whole(3, "c")]),
    data(3, [whole(3, "c")], { retransmit: true }),
    data(1, [whole(1, "a")], { retransmit: true }),
    // Past maxAhead (next 2 + 100).
    data(103, [whole(103, "far")]),
    data(102, [whole(102, "edge")]),
    // 256 + 1,562 + 200 on top of 1,038 held: over maxHeldBytes.
    data(4, [whole(4, pattern(1500, 4))]),
    data(2, [whole(2, "b")], { retransmit: true }),
    data(2, [whole(2, "b")], { retransmit: true }),
    data(3, [whole(3, "c")], { retransmit: true }),
    // At the position now: delivered, whatever its size.
    data(4, [whole(4, pattern(1500, 4))], { retransmit: true }),
    data(5, [whole(5, "e")]),
    data(5, [whole(5, "e")]),
    // A restarted sender: a new session is never screened.
    data(7, [whole(1, "new")], { session: OTHER }),
    data(7, [whole(1, "new")], { session: OTHER }),
  ];
  let drops = 0;
  try {
    for (const frame of frames) {
      const bytes = encodeFrame(frame);
      const head = peekData(bytes);
      assert.ok(head);
      if (screened.rx.screen(head, bytes.length)) {
        drops += 1;
      } else {
        await screened.rx.handle(wire(frame), SENDER);
      }
      await handled.rx.handle(wire(frame), SENDER);
    }
    // Both were fed without a turn of the event loop between frames: no
    // timer fired in either.
    assert.equal(drops, 8);
    assert.deepEqual(screened.rx.stats, handled.rx.stats);
    assert.equal(screened.rx.stats.data, frames.length);
    assert.equal(screened.rx.stats.duplicates, 6);
    assert.equal(screened.rx.stats.dropped.ahead, 2);
    assert.deepEqual(screened.bulletins(), handled.bulletins());
    assert.deepEqual(
      screened.bulletins().map(([n]) => n),
      [1, 2, 3, 4, 5, 1],
    );
    assert.deepEqual(screened.events, handled.events);
    assert.deepEqual(screened.sent, handled.sent);
  } finally {
    await screened.rx.close();
    await handled.rx.close();
  }
});

Deno.test("close twice: the same promise, and one farewell", async () => {
  const h = harness();
  await h.feed(data(1, [whole(1, "a")]));
  assert.deepEqual(h.sent, [hello(0)]);
  const first = h.rx.close();
  // A signal, then the receive loop's own end: the second call, with other
  // options, waits for the first's farewells and adds none.
  const second = h.rx.close({ farewells: 3, intervalMs: 1 });
  assert.equal(second, first);
  await first;
  assert.equal(h.rx.close(), first);
  await h.rx.close();
  assert.deepEqual(h.sent, [hello(0), ack(1), {
    type: "bye",
    session: SESSION,
    seq: 1,
    name: "rx",
  }]);
});

Deno.test("close twice with farewells: the first call's count is sent, once", async () => {
  const h = harness();
  await h.feed(data(1, [whole(1, "a")]));
  const first = h.rx.close({ farewells: 2, intervalMs: 1 });
  const second = h.rx.close();
  assert.equal(second, first);
  await second;
  const bye: Frame = { type: "bye", session: SESSION, seq: 1, name: "rx" };
  assert.deepEqual(h.sent, [hello(0), ack(1), bye, ack(1), bye]);
});

Deno.test("fromStart with a sender's low of 0 starts at sequence 1, the HELLO carrying 0", async () => {
  const h = harness({ fromStart: true });
  try {
    await h.feed(data(3, [whole(3, "c")], { low: 0 }));
    assert.deepEqual(h.events, [sessionEvent(1)]);
    assert.deepEqual(h.sent[0], hello(0, true));
    // Sequences 1 and 2 are asked for, never 0.
    await h.sentCount(2);
    assert.deepEqual(h.sent, [
      hello(0, true),
      nack(0, [{ first: 1, last: 2 }]),
    ]);
    await h.feed(data(1, [whole(1, "a")]));
    await h.feed(data(2, [whole(2, "b")]));
    assert.deepEqual(h.bulletins(), [[1, "a"], [2, "b"], [3, "c"]]);
  } finally {
    await h.rx.close();
  }
});

Deno.test("fromStart: a heartbeat with low 0 and nothing sent starts at sequence 1", async () => {
  const h = harness({ fromStart: true });
  try {
    await h.feed(heartbeat(0, 0));
    assert.deepEqual(h.events, [sessionEvent(1)]);
    await h.sentCount(2);
    assert.deepEqual(h.sent, [hello(0, true), ack(0)]);
    await h.feed(data(1, [whole(1, "a")], { low: 0 }));
    assert.deepEqual(h.bulletins(), [[1, "a"]]);
  } finally {
    await h.rx.close();
  }
});

/** A sink whose writers record what they were given and how they ended. */
function writingSink() {
  const writers: {
    session: string;
    number: number;
    total: number;
    chunks: Uint8Array[];
    end?: "commit" | "abort";
  }[] = [];
  const sink: DeliverySink = {
    write: () => {
      throw new Error("a large bulletin goes to begin(), not write()");
    },
    begin(session, number, total): BulletinWriter {
      const writer = {
        session,
        number,
        total,
        chunks: [] as Uint8Array[],
        end: undefined as "commit" | "abort" | undefined,
      };
      writers.push(writer);
      return {
        write(data) {
          assert.equal(writer.end, undefined, "written after its end");
          writer.chunks.push(data.slice());
        },
        commit() {
          assert.equal(writer.end, undefined);
          writer.end = "commit";
          return `/out/${number}`;
        },
        abort() {
          writer.end ??= "abort";
        },
      };
    },
  };
  return { sink, writers };
}

function joined(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

Deno.test("a large bulletin streams to the sink's writer as it arrives, committed once it verifies", async () => {
  const { sink, writers } = writingSink();
  const h = harness({ sink });
  try {
    await h.join();
    const payload = pattern(STREAM_THRESHOLD + 5000, 3);
    const parts = await fragments(1, payload, 60_000);
    for (const [k, part] of parts.entries()) {
      await h.feed(data(k + 1, [part]));
      if (k === 0) {
        assert.equal(writers.length, 1);
        assert.equal(writers[0]!.total, payload.length);
      }
    }
    assert.equal(writers.length, 1);
    assert.equal(writers[0]!.end, "commit");
    assert.deepEqual(joined(writers[0]!.chunks), payload);
    const delivered = h.events.filter((e) => e.type === "bulletin");
    assert.deepEqual(delivered, [{
      type: "bulletin",
      session: SESSION,
      number: 1,
      from: SENDER,
      payload: new Uint8Array(0),
      size: payload.length,
      sentAt: 2_000_000 + parts.length,
      path: "/out/1",
    }]);
    assert.equal(h.rx.stats.bytes, payload.length);
  } finally {
    await h.rx.close();
  }
});

Deno.test("a streamed bulletin that fails its digest, or is cut short by close, is aborted", async () => {
  const { sink, writers } = writingSink();
  const h = harness({ sink });
  try {
    await h.join();
    const payload = pattern(STREAM_THRESHOLD, 4);
    const parts = await fragments(1, payload, 60_000);
    parts.at(-1)!.data = parts.at(-1)!.data.slice();
    parts.at(-1)!.data[0]! ^= 1;
    let seq = 1;
    for (const part of parts) await h.feed(data(seq++, [part]));
    assert.equal(writers[0]!.end, "abort");
    assert.deepEqual(h.others().slice(1), [{
      type: "bulletin-failed",
      session: SESSION,
      number: 1,
      reason: "digest",
    }]);
    // The next one is half received when the receiver closes.
    const next = await fragments(2, pattern(STREAM_THRESHOLD, 5), 60_000);
    await h.feed(data(seq++, [next[0]!]));
    await h.feed(data(seq++, [next[1]!]));
    assert.equal(writers[1]!.end, undefined);
    await h.rx.close();
    assert.equal(writers[1]!.end, "abort");
    assert.equal(h.events.filter((e) => e.type === "bulletin").length, 0);
  } finally {
    await h.rx.close();
  }
});

Deno.test("sessions share the bound on bytes held out of order; a dropped session's bytes are released; a flood of session ids keeps at most maxSessions", async () => {
  const h = harness({ maxSessions: 4, maxHeldBytes: 10_000 });
  const id = (k: number) => k.toString(16).padStart(16, "0");
  const big = "x".repeat(3000);
  try {
    // Each session starts at 1 and gets sequence 3 ahead of a gap: held.
    for (let k = 1; k <= 3; k++) {
      await h.feed(data(1, [whole(1, "a")], { session: id(k) }));
      await h.feed(data(3, [whole(3, big)], { session: id(k) }));
    }
    // About 3,500 bytes each: two fit 10,000, the third does not.
    assert.equal(h.rx.stats.dropped.ahead, 1);
    // A fourth and a fifth session: the fifth drops the least recently
    // heard (session 1), whose held frame no longer counts.
    await h.feed(data(1, [whole(1, "a")], { session: id(4) }));
    await h.feed(data(1, [whole(1, "a")], { session: id(5) }));
    assert.deepEqual(h.rx.sessions, [id(2), id(3), id(4), id(5)]);
    await h.feed(data(3, [whole(3, big)], { session: id(5) }));
    assert.equal(h.rx.stats.dropped.ahead, 1);
    // A flood of new session ids: never more than four followed.
    for (let k = 6; k < 1006; k++) {
      await h.feed(data(7, [whole(1, "z")], { session: id(k) }));
      assert.ok(h.rx.sessions.length <= 4);
    }
    assert.deepEqual(h.rx.sessions, [id(1002), id(1003), id(1004), id(1005)]);
    // Early sessions' frames are dropped; the last 64 dropped are known.
    const unexpected = h.rx.stats.dropped.unexpected;
    await h.feed(data(9, [whole(9, "late")], { session: id(1001) }));
    assert.equal(h.rx.stats.dropped.unexpected, unexpected + 1);
  } finally {
    await h.rx.close();
  }
});
