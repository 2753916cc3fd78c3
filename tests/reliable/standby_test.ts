/**
 * Tests of the hot standby: the pure decide step ({@linkcode StandbyFollower})
 * fed with frames, and end to end on a {@linkcode MemoryNetwork}: a primary
 * that dies mid-feed, a standby that takes its session over, receivers that
 * deliver every bulletin once and in order; and two senders on one group,
 * each receiver following both sessions at once.
 *
 * @module
 */

import assert from "node:assert/strict";
import { parseGroup, type Peer } from "../../lib/net/address.ts";
import {
  type DataFrame,
  type DataRecord,
  decodeFrame,
  encodeFrame,
  type Frame,
} from "../../lib/wire/frame.ts";
import type { ReceiverEvent, ReliableSenderEvent } from "../../lib/events.ts";
import { MemoryNetwork } from "../../lib/net/memory_net.ts";
import { receiveBulletins } from "../../lib/receiver.ts";
import { sendReliable } from "../../lib/reliable/sender.ts";
import {
  followSession,
  type Handover,
  StandbyFollower,
} from "../../lib/reliable/standby.ts";
import type { Datagram, DatagramEndpoint } from "../../lib/net/socket.ts";
import type { SenderReport } from "../../lib/reliable/stats.ts";
import { bounded, until } from "../_wait.ts";

const SESSION = "0123456789abcdef";
const OTHER = "fedcba9876543210";
const PRIMARY: Peer = { address: "127.0.0.1", port: 40000 };
const GROUP = "239.42.0.9";
const PORT = 17409;
const group = parseGroup(GROUP);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function whole(bulletin: number, text: string): DataRecord {
  const data = encoder.encode(text);
  return { bulletin, total: data.length, offset: 0, data };
}

function data(seq: number, records: DataRecord[], session = SESSION) {
  const frame: DataFrame = {
    type: "data",
    session,
    seq,
    retransmit: false,
    timestamp: 1_700_000_000_000_000 + seq,
    low: 1,
    records,
  };
  return frame;
}

function heartbeat(seq: number, session = SESSION): Frame {
  return {
    type: "heartbeat",
    session,
    seq,
    final: false,
    timestamp: 1_700_000_000_000_000 + 1000 + seq,
    low: 1,
  };
}

/** Feeds a frame as its wire bytes; returns what the follower said. */
function observe(
  follower: StandbyFollower,
  frame: Frame,
  now: number,
): string {
  const bytes = encodeFrame(frame);
  const decoded = decodeFrame(bytes);
  assert.equal(decoded.kind, "frame");
  return follower.observe(
    (decoded as { frame: Frame }).frame,
    bytes,
    PRIMARY,
    now,
  );
}

Deno.test("follower: follows the first session heard, ignores others and feedback, and is due after the silence", () => {
  const follower = new StandbyFollower();
  assert.equal(follower.due(0, 1000), false);
  assert.equal(follower.silence(0), undefined);
  assert.equal(follower.handover(0), undefined);
  assert.equal(observe(follower, heartbeat(0), 10), "joined");
  assert.equal(observe(follower, data(1, [whole(1, "a")]), 20), "heard");
  assert.equal(
    observe(follower, data(1, [whole(1, "x")], OTHER), 30),
    "ignored",
  );
  assert.equal(observe(follower, heartbeat(9, OTHER), 40), "ignored");
  assert.equal(
    observe(follower, {
      type: "ack",
      session: SESSION,
      seq: 1,
      name: "desk",
      ranges: [],
    }, 50),
    "ignored",
  );
  assert.equal(
    observe(
      follower,
      { type: "gone", session: SESSION, seq: 1, ranges: [] },
      60,
    ),
    "ignored",
  );
  assert.equal(follower.session, SESSION);
  // Only the followed session's frames count as hearing the primary.
  assert.equal(follower.silence(1019), 999);
  assert.equal(follower.due(1019, 1000), false);
  assert.equal(follower.due(1020, 1000), true);
});

Deno.test("follower: the hand-over continues after the highest sequence and the last bulletin completed", () => {
  const follower = new StandbyFollower();
  observe(follower, data(1, [whole(1, "a"), whole(2, "b")]), 0);
  observe(follower, data(2, [whole(3, "c")]), 1);
  // Bulletin 4 begun in datagram 3, never finished by the primary.
  observe(
    follower,
    data(3, [{
      bulletin: 4,
      total: 10,
      offset: 0,
      data: encoder.encode("dddd"),
      digest: new Uint8Array(32),
    }]),
    2,
  );
  // A repair of datagram 2 is not held twice.
  observe(follower, { ...data(2, [whole(3, "c")]), retransmit: true }, 3);
  // The heartbeat says 3 is the highest.
  observe(follower, heartbeat(3), 4);
  const handover = follower.handover(1004)!;
  assert.equal(handover.session, SESSION);
  assert.deepEqual(handover.from, PRIMARY);
  assert.equal(handover.nextSeq, 4);
  // Bulletin 4 is sent again, whole, by the standby.
  assert.equal(handover.nextBulletin, 4);
  assert.equal(handover.silenceMs, 1000);
  assert.equal(handover.lastStamp, 1_700_000_000_000_000 + 1000 + 3);
  assert.deepEqual(
    handover.packets.map((bytes) =>
      (decodeFrame(bytes) as { frame: DataFrame }).frame.seq
    ),
    [1, 2, 3],
  );
  assert.equal(follower.held, 3);
});

Deno.test("follower: after a gap in what it heard, the bulletins after it are sent again; a heartbeat ahead of the data moves the next sequence", () => {
  const follower = new StandbyFollower();
  observe(follower, data(1, [whole(1, "a")]), 0);
  observe(follower, data(2, [whole(2, "b")]), 0);
  // Datagram 3 (bulletin 3) was lost on the way to the standby.
  observe(follower, data(4, [whole(4, "d")]), 0);
  observe(follower, heartbeat(6), 0);
  const handover = follower.handover(0)!;
  assert.equal(handover.nextSeq, 7);
  assert.equal(handover.nextBulletin, 3);
  assert.equal(handover.packets.length, 3);
});

Deno.test("follower: keeps the newest datagrams within its buffer", () => {
  const follower = new StandbyFollower({ bufferBytes: 3 * 100 });
  const text = "x".repeat(40);
  for (let seq = 1; seq <= 10; seq++) {
    observe(follower, data(seq, [whole(seq, text)]), seq);
  }
  const handover = follower.handover(10)!;
  const seqs = handover.packets.map((bytes) =>
    (decodeFrame(bytes) as { frame: DataFrame }).frame.seq
  );
  assert.ok(seqs.length >= 2 && seqs.length <= 3, String(seqs));
  assert.equal(seqs.at(-1), 10);
  // A late repair of a datagram below the buffer is not taken back.
  observe(follower, { ...data(1, [whole(1, text)]), retransmit: true }, 11);
  assert.equal(follower.held, seqs.length);
  assert.equal(handover.nextBulletin, seqs.at(-1)! + 1);
});

// ---- end to end, in memory ----------------------------------------------

/**
 * An endpoint that can be killed: from then on it sends nothing and hears
 * nothing, as a process killed with SIGKILL.
 */
class Killable implements DatagramEndpoint {
  readonly inner: DatagramEndpoint;
  dead = false;

  constructor(inner: DatagramEndpoint) {
    this.inner = inner;
  }

  get local(): Peer {
    return this.inner.local;
  }

  send(payload: Uint8Array, to: Peer): Promise<void> {
    return this.dead ? Promise.resolve() : this.inner.send(payload, to);
  }

  async receive(): Promise<Datagram | null> {
    for (;;) {
      const datagram = await this.inner.receive();
      if (datagram === null || !this.dead) return datagram;
    }
  }

  close(): void {
    this.inner.close();
  }
}

async function* lines(count: number): AsyncGenerator<Uint8Array> {
  for (let n = 1; n <= count; n++) yield encoder.encode(`bulletin ${n}`);
}

function startReceiver(
  network: MemoryNetwork,
  name: string,
  signal: AbortSignal,
  count?: number,
) {
  const endpoint = network.open({ address: GROUP, port: PORT });
  endpoint.join(GROUP);
  const record = {
    bulletins: [] as {
      session: string;
      number: number;
      text: string;
      from: Peer;
    }[],
    events: [] as ReceiverEvent[],
    done: undefined as unknown as Promise<number>,
  };
  record.done = receiveBulletins(endpoint, {
    group,
    port: PORT,
    ack: null,
    ...(count === undefined ? {} : { count }),
    signal,
    protocol: { name },
    onEvent(event) {
      if (event.type === "bulletin") {
        record.bulletins.push({
          session: event.session,
          number: event.number,
          text: decoder.decode(event.payload),
          from: event.from,
        });
      } else if (event.type !== "waiting") {
        record.events.push(event);
      }
    },
  });
  return record;
}

function numbersFrom(count: number): number[] {
  return Array.from({ length: count }, (_, k) => k + 1);
}

Deno.test("standby: the primary dies mid-feed; the standby takes over the session and every receiver has 1..400 once, in order", async () => {
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const receivers = ["desk-1", "desk-2"].map((name) =>
    startReceiver(network, name, stop.signal, 400)
  );
  const standbyEvents: ReliableSenderEvent[] = [];
  const listening = network.open({ address: GROUP, port: PORT });
  listening.join(GROUP);
  const following = followSession(listening, {
    group,
    port: PORT,
    takeoverMs: 300,
    onEvent: (event) => standbyEvents.push(event),
    signal: stop.signal,
  });
  const primary = new Killable(network.open({ address: "127.0.0.1" }));
  const primaryRun = sendReliable(primary, lines(400), {
    group,
    port: PORT,
    deadlineMs: 10_000,
    expect: 2,
    // 1,000 bulletins a second: mid-feed after 150 of them.
    rate: { unit: "bulletins", perSecond: 1000 },
    onEvent: () => {},
    signal: stop.signal,
  });
  let standbyRun: Promise<SenderReport> | undefined;
  try {
    await until(
      () => receivers.every((r) => r.bulletins.length >= 150),
      10_000,
      "150 bulletins from the primary",
    );
    primary.dead = true;
    const diedAt = performance.now();
    const handover: Handover | null = await bounded(
      5_000,
      following,
      () => stop.abort(),
    );
    assert.ok(handover, "no takeover");
    const tookOverAfter = performance.now() - diedAt;
    standbyRun = sendReliable(
      network.open({ address: "127.0.0.2" }),
      lines(400),
      {
        group,
        port: PORT,
        deadlineMs: 10_000,
        expect: 2,
        takeover: handover,
        onEvent: (event) => standbyEvents.push(event),
        signal: stop.signal,
      },
    );
    const report = await bounded(10_000, standbyRun, () => stop.abort());
    for (const receiver of receivers) {
      await bounded(5_000, receiver.done, () => stop.abort());
      assert.deepEqual(
        receiver.bulletins.map((b) => b.number),
        numbersFrom(400),
      );
      assert.ok(
        receiver.bulletins.every((b) => b.text === `bulletin ${b.number}`),
      );
      assert.ok(
        receiver.bulletins.every((b) => b.session === handover.session),
      );
      // One session joined, once: the takeover is the same session.
      assert.equal(
        receiver.events.filter((e) => e.type === "session").length,
        1,
      );
      // The standby's bulletins come from its own address.
      const fromStandby: { number: number }[] = receiver.bulletins.filter((b) =>
        b.from.address === "127.0.0.2"
      );
      assert.equal(fromStandby[0]?.number, handover.nextBulletin);
      assert.equal(fromStandby.length, 401 - handover.nextBulletin);
    }
    const types = standbyEvents.map((e) => e.type);
    assert.deepEqual(types.slice(0, 3), ["standby", "following", "takeover"]);
    const takeover = standbyEvents[2] as Extract<
      ReliableSenderEvent,
      { type: "takeover" }
    >;
    assert.equal(takeover.session, handover.session);
    assert.equal(takeover.seq, handover.nextSeq);
    assert.equal(takeover.bulletin, handover.nextBulletin);
    assert.ok(takeover.bulletin > 150 && takeover.bulletin <= 400);
    assert.ok(handover.silenceMs >= 300 && handover.silenceMs < 1000);
    assert.equal(report.session, handover.session);
    assert.equal(report.delivered, true);
    assert.equal(report.bulletins, 401 - handover.nextBulletin);
    assert.deepEqual(
      report.receivers.map((r) => [r.name, r.status]),
      [["desk-1", "complete"], ["desk-2", "complete"]],
    );
    console.log(
      `  took over at sequence ${takeover.seq} (bulletin ${takeover.bulletin}) after ${
        handover.silenceMs.toFixed(0)
      } ms of silence, ${tookOverAfter.toFixed(0)} ms after the primary died`,
    );
  } finally {
    stop.abort();
    await Promise.allSettled([
      primaryRun,
      following,
      standbyRun,
      ...receivers.map((r) => r.done),
    ]);
    network.close();
  }
});

Deno.test("standby: killed in the middle of a fragmented bulletin, the primary's half is sent again whole by the standby, delivered once", async () => {
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const size = 20_000;
  const big = (n: number) => {
    const bytes = new Uint8Array(size);
    bytes.set(encoder.encode(`big ${n} `));
    for (let k = 8; k < size; k++) bytes[k] = (n * 7 + k) & 0xff;
    return bytes;
  };
  const feed = async function* (): AsyncGenerator<Uint8Array> {
    for (let n = 1; n <= 40; n++) yield big(n);
  };
  const receiver = startReceiver(network, "desk", stop.signal, 40);
  const listening = network.open({ address: GROUP, port: PORT });
  listening.join(GROUP);
  const following = followSession(listening, {
    group,
    port: PORT,
    takeoverMs: 200,
    onEvent: () => {},
    signal: stop.signal,
  });
  const primary = new Killable(network.open({ address: "127.0.0.1" }));
  let datagrams = 0;
  const inner = primary.send.bind(primary);
  primary.send = (payload, to) => {
    // Dies after the 7th datagram of bulletin 11 (15 datagrams each).
    const decoded = decodeFrame(payload);
    if (
      decoded.kind === "frame" && decoded.frame.type === "data" &&
      !decoded.frame.retransmit
    ) {
      datagrams += 1;
      if (datagrams === 10 * 15 + 8) primary.dead = true;
    }
    return inner(payload, to);
  };
  const primaryRun = sendReliable(primary, feed(), {
    group,
    port: PORT,
    deadlineMs: 10_000,
    expect: 1,
    rate: { unit: "bytes", perSecond: 2_000_000 },
    onEvent: () => {},
    signal: stop.signal,
  });
  let standbyRun: Promise<SenderReport> | undefined;
  try {
    const handover = await bounded(10_000, following, () => stop.abort());
    assert.ok(handover);
    assert.equal(handover.nextBulletin, 11);
    // The primary's last datagram holds a fragment of bulletin 11, not its end.
    const last = (decodeFrame(handover.packets.at(-1)!) as {
      frame: DataFrame;
    }).frame.records.at(-1)!;
    assert.equal(last.bulletin, 11);
    assert.ok(last.offset > 0 && last.offset + last.data.length < last.total);
    standbyRun = sendReliable(network.open({ address: "127.0.0.2" }), feed(), {
      group,
      port: PORT,
      deadlineMs: 10_000,
      expect: 1,
      takeover: handover,
      onEvent: () => {},
      signal: stop.signal,
    });
    const report = await bounded(10_000, standbyRun, () => stop.abort());
    await bounded(5_000, receiver.done, () => stop.abort());
    assert.equal(report.delivered, true);
    assert.equal(report.bulletins, 30);
    assert.deepEqual(receiver.bulletins.map((b) => b.number), numbersFrom(40));
    const payloads = receiver.bulletins.map((b) => b.text);
    for (const [k, text] of payloads.entries()) {
      assert.equal(text, decoder.decode(big(k + 1)), `bulletin ${k + 1}`);
    }
    assert.equal(receiver.bulletins[10]!.from.address, "127.0.0.2");
    assert.equal(receiver.bulletins[9]!.from.address, "127.0.0.1");
    assert.equal(
      receiver.events.filter((e) =>
        e.type === "unrecoverable" || e.type === "bulletin-failed"
      ).length,
      0,
    );
  } finally {
    stop.abort();
    await Promise.allSettled([
      primaryRun,
      following,
      standbyRun,
      receiver.done,
    ]);
    network.close();
  }
});

Deno.test("standby: its datagrams start above what a receiver's ACK shows the primary sent; a NACK for what it never heard gets GONE, one it holds is repaired", async () => {
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const follower = new StandbyFollower();
  const frames = [
    data(1, [whole(1, "a")]),
    data(2, [whole(2, "b")]),
    // 3 never heard.
    data(4, [whole(4, "d")]),
  ];
  for (const frame of frames) observe(follower, frame, 0);
  const handover = follower.handover(1000)!;
  assert.equal(handover.nextSeq, 5);
  const standby = network.open({ address: "127.0.0.2" });
  const rx = network.open({ address: "127.0.0.3" });
  // What the standby sends to the group.
  const tap = network.open({ address: GROUP, port: PORT });
  tap.join(GROUP);
  const events: ReliableSenderEvent[] = [];
  const run = sendReliable(standby, lines(5), {
    group,
    port: PORT,
    deadlineMs: 1_000,
    lingerMs: 100,
    takeover: handover,
    onEvent: (event) => events.push(event),
    signal: stop.signal,
  });
  try {
    // The receiver has 1-2 and 4-6: the primary sent 5 and 6, unheard by
    // the standby. (A claim a window beyond is not believed.)
    for (const last of [6, 5 + 4096]) {
      await rx.send(
        encodeFrame({
          type: "ack",
          session: SESSION,
          seq: 2,
          name: "desk",
          ranges: [{ first: 4, last }],
        }),
        standby.local,
      );
    }
    await until(
      () => events.some((e) => e.type === "takeover"),
      2000,
      "takeover",
    );
    const takeover = events.find((e) => e.type === "takeover") as Extract<
      ReliableSenderEvent,
      { type: "takeover" }
    >;
    assert.equal(takeover.seq, 7);
    assert.equal(takeover.bulletin, 3);
    await rx.send(
      encodeFrame({
        type: "nack",
        session: SESSION,
        seq: 2,
        name: "desk",
        ranges: [{ first: 3, last: 6 }],
      }),
      standby.local,
    );
    const report = await bounded(5_000, run, () => stop.abort());
    // Bulletins 3 (after the gap), 4 and 5 went out anew from sequence 7.
    assert.equal(report.bulletins, 3);
    assert.equal(report.retransmitted, 1);
    assert.equal(report.gone, 1);
    assert.deepEqual(report.receivers.map((r) => r.name), ["desk"]);
    const seen: [string, number, boolean][] = [];
    for (;;) {
      const datagram = await bounded(1000, tap.receive(), () => tap.close());
      if (datagram === null) break;
      const decoded = decodeFrame(datagram.payload);
      if (decoded.kind !== "frame") continue;
      const frame = decoded.frame;
      if (frame.type === "data") {
        seen.push([frame.type, frame.seq, frame.retransmit]);
      } else if (frame.type === "gone") {
        seen.push([
          frame.type,
          frame.ranges.map((r) => `${r.first}-${r.last}`).join(",") as never,
          false,
        ]);
      }
      if (tap.queued === 0) break;
    }
    assert.deepEqual(seen, [
      ["data", 7, false],
      ["gone", "3-3,5-6" as never, false],
      ["data", 4, true],
    ]);
  } finally {
    stop.abort();
    await Promise.allSettled([run]);
    rx.close();
    tap.close();
    network.close();
  }
});

Deno.test("two senders on one group: every receiver follows both sessions at once and delivers each in order exactly once", async () => {
  const network = new MemoryNetwork();
  const stop = new AbortController();
  const receivers = ["desk-1", "desk-2"].map((name) =>
    startReceiver(network, name, stop.signal, 600)
  );
  const feed = (prefix: string) =>
    (async function* (): AsyncGenerator<Uint8Array> {
      for (let n = 1; n <= 300; n++) yield encoder.encode(`${prefix} ${n}`);
    })();
  const runs = ["127.0.0.1", "127.0.0.2"].map((address, k) =>
    sendReliable(network.open({ address }), feed(k === 0 ? "a" : "b"), {
      group,
      port: PORT,
      deadlineMs: 10_000,
      expect: 2,
      rate: { unit: "bulletins", perSecond: 3000 },
      onEvent: () => {},
      signal: stop.signal,
    })
  );
  try {
    const reports = await bounded(
      15_000,
      Promise.all(runs),
      () => stop.abort(),
    );
    assert.ok(reports.every((r) => r.delivered));
    assert.notEqual(reports[0]!.session, reports[1]!.session);
    for (const receiver of receivers) {
      await bounded(5_000, receiver.done, () => stop.abort());
      for (const [k, report] of reports.entries()) {
        const mine = receiver.bulletins.filter((b) =>
          b.session === report.session
        );
        assert.deepEqual(mine.map((b) => b.number), numbersFrom(300));
        const prefix = k === 0 ? "a" : "b";
        assert.ok(mine.every((b) => b.text === `${prefix} ${b.number}`));
      }
      assert.equal(receiver.bulletins.length, 600);
      assert.equal(
        receiver.events.filter((e) => e.type === "session").length,
        2,
      );
    }
  } finally {
    stop.abort();
    await Promise.allSettled([...runs, ...receivers.map((r) => r.done)]);
    network.close();
  }
});
