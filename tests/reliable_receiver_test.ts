/**
 * Unit tests of the reliable receiver's state machine: frames are encoded,
 * decoded and fed to {@linkcode ReliableReceiver.handle} directly; a fake
 * send function records the HELLO, ACK, NACK and BYE frames it answers with.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Peer } from "../lib/address.ts";
import type { ReceiverEvent } from "../lib/events.ts";
import {
  type DataFrame,
  type DataRecord,
  decodeFrame,
  encodeFrame,
  type Frame,
  type HeartbeatFrame,
} from "../lib/frame.ts";
import {
  ReliableReceiver,
  type ReliableReceiverOptions,
} from "../lib/reliable_receiver.ts";
import type { ReceiverState } from "../lib/state.ts";

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

Deno.test("a frame of a new session (a restarted sender) is followed from where it starts", async () => {
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
    // A late repair or heartbeat of the old session does not pull it back.
    const dropped = h.rx.stats.dropped.unexpected;
    await h.feed(
      data(2, [whole(2, "late")], { session: SESSION, retransmit: true }),
    );
    await h.feed(heartbeat(9, 1, SESSION));
    assert.equal(h.rx.stats.session, OTHER);
    assert.equal(h.rx.stats.dropped.unexpected, dropped + 2);
    assert.deepEqual(h.bulletins(), [[1, "a"], [12, "x"]]);
    assert.equal(h.others().length, 2);
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
