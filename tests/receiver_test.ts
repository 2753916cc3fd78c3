import assert from "node:assert/strict";
import type { Group, Peer } from "../lib/net/address.ts";
import type { Datagram, DatagramEndpoint } from "../lib/net/socket.ts";
import { NetworkError } from "../lib/errors.ts";
import type { ReceiverEvent } from "../lib/events.ts";
import {
  type DataRecord,
  decodeFrame,
  encodeFrame,
  type Frame,
  hasMagic,
} from "../lib/wire/frame.ts";
import {
  receiveBulletins,
  type ReceiveBulletinsOptions,
} from "../lib/receiver.ts";
import type { ReceiverState } from "../lib/reliable/state.ts";
import { emptyDrops, type ReceiverStats } from "../lib/reliable/stats.ts";
import { FakeEndpoint, utf8, within } from "./_fakes.ts";

const LOCAL: Peer = { address: "239.12.0.2", port: 10124 };
const GROUP: Group = { family: 4, address: "239.12.0.2" };
const PORT = 10124;
const DATA = utf8("very important data");
const ACK = utf8("ack");
const S1: Peer = { address: "127.0.0.1", port: 41000 };
const S2: Peer = { address: "127.0.0.1", port: 41001 };
const S6: Peer = { address: "fe80::2", port: 41002, scopeId: 3 };

function waiting(messages: number): ReceiverEvent {
  return { type: "waiting", group: GROUP, port: PORT, messages };
}

function options(
  events: ReceiverEvent[],
  extra: Partial<ReceiveBulletinsOptions> = {},
): ReceiveBulletinsOptions {
  return {
    group: GROUP,
    port: PORT,
    ack: ACK,
    onEvent: (event) => events.push(event),
    ...extra,
  };
}

Deno.test("reports and acknowledges each datagram until stopped", async () => {
  const endpoint = new FakeEndpoint(LOCAL, [
    { from: S1, payload: DATA },
    { from: S2, payload: utf8("second") },
  ]);
  const controller = new AbortController();
  const events: ReceiverEvent[] = [];
  const messages = await within(
    2000,
    receiveBulletins(
      endpoint,
      options(events, {
        signal: controller.signal,
        onEvent(event) {
          events.push(event);
          // Stop once both are handled and the receiver waits again.
          if (event.type === "waiting" && event.messages === 2) {
            controller.abort();
          }
        },
      }),
    ),
  );
  assert.equal(messages, 2);
  assert.deepEqual(events, [
    waiting(0),
    { type: "message", from: S1, payload: DATA },
    { type: "ack-sent", to: S1, payload: ACK },
    waiting(1),
    { type: "message", from: S2, payload: utf8("second") },
    { type: "ack-sent", to: S2, payload: ACK },
    waiting(2),
    { type: "stopped", messages: 2, reason: "signal" },
  ]);
  assert.deepEqual(endpoint.sent, [
    { payload: ACK, to: S1 },
    { payload: ACK, to: S2 },
  ]);
  assert.equal(endpoint.closed, true);
});

Deno.test("datagrams that arrive while waiting are handled", async () => {
  const endpoint = new FakeEndpoint(LOCAL);
  const events: ReceiverEvent[] = [];
  const timers: ReturnType<typeof setTimeout>[] = [];
  const messages = await within(
    2000,
    receiveBulletins(
      endpoint,
      options(events, {
        count: 2,
        onEvent(event) {
          events.push(event);
          if (event.type === "waiting" && event.messages === 0) {
            queueMicrotask(() => endpoint.deliver({ from: S1, payload: DATA }));
          }
          if (event.type === "waiting" && event.messages === 1) {
            timers.push(
              setTimeout(
                () => endpoint.deliver({ from: S6, payload: DATA }),
                10,
              ),
            );
          }
        },
      }),
    ),
  );
  timers.forEach(clearTimeout);
  assert.equal(messages, 2);
  assert.deepEqual(events, [
    waiting(0),
    { type: "message", from: S1, payload: DATA },
    { type: "ack-sent", to: S1, payload: ACK },
    waiting(1),
    { type: "message", from: S6, payload: DATA },
    { type: "ack-sent", to: S6, payload: ACK },
    { type: "stopped", messages: 2, reason: "count" },
  ]);
  assert.deepEqual(endpoint.sent, [
    { payload: ACK, to: S1 },
    { payload: ACK, to: S6 },
  ]);
  assert.equal(endpoint.closed, true);
});

Deno.test("count stops after N messages without waiting again", async () => {
  const endpoint = new FakeEndpoint(LOCAL, [
    { from: S1, payload: DATA },
    { from: S2, payload: DATA },
    { from: S1, payload: utf8("third") },
  ]);
  const events: ReceiverEvent[] = [];
  const messages = await within(
    2000,
    receiveBulletins(endpoint, options(events, { count: 2 })),
  );
  assert.equal(messages, 2);
  assert.deepEqual(events, [
    waiting(0),
    { type: "message", from: S1, payload: DATA },
    { type: "ack-sent", to: S1, payload: ACK },
    waiting(1),
    { type: "message", from: S2, payload: DATA },
    { type: "ack-sent", to: S2, payload: ACK },
    { type: "stopped", messages: 2, reason: "count" },
  ]);
  assert.equal(endpoint.receiveCalls, 2);
  assert.equal(endpoint.sent.length, 2);
  assert.equal(endpoint.closed, true);
});

Deno.test("count 1 with the exercise's single message", async () => {
  const endpoint = new FakeEndpoint(LOCAL, [{ from: S1, payload: DATA }]);
  const events: ReceiverEvent[] = [];
  assert.equal(
    await within(
      2000,
      receiveBulletins(endpoint, options(events, { count: 1 })),
    ),
    1,
  );
  assert.deepEqual(events, [
    waiting(0),
    { type: "message", from: S1, payload: DATA },
    { type: "ack-sent", to: S1, payload: ACK },
    { type: "stopped", messages: 1, reason: "count" },
  ]);
  assert.equal(endpoint.closed, true);
});

Deno.test("an abort while waiting stops with reason signal", async () => {
  const endpoint = new FakeEndpoint(LOCAL);
  const controller = new AbortController();
  const events: ReceiverEvent[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const messages = await within(
    2000,
    receiveBulletins(
      endpoint,
      options(events, {
        signal: controller.signal,
        onEvent(event) {
          events.push(event);
          if (event.type === "waiting") {
            timer = setTimeout(() => controller.abort(), 20);
          }
        },
      }),
    ),
  );
  clearTimeout(timer);
  assert.equal(messages, 0);
  assert.deepEqual(events, [
    waiting(0),
    { type: "stopped", messages: 0, reason: "signal" },
  ]);
  assert.deepEqual(endpoint.sent, []);
  assert.equal(endpoint.closed, true);
});

Deno.test("an already aborted signal receives nothing and closes", async () => {
  const endpoint = new FakeEndpoint(LOCAL, [{ from: S1, payload: DATA }]);
  const events: ReceiverEvent[] = [];
  const messages = await within(
    2000,
    receiveBulletins(
      endpoint,
      options(events, { signal: AbortSignal.abort() }),
    ),
  );
  assert.equal(messages, 0);
  assert.deepEqual(events.filter((event) => event.type !== "stopped"), []);
  assert.equal(endpoint.receiveCalls, 0);
  assert.deepEqual(endpoint.sent, []);
  assert.equal(endpoint.closed, true);
});

Deno.test("an endpoint closed from elsewhere stops with reason signal", async () => {
  const endpoint = new FakeEndpoint(LOCAL, [{ from: S1, payload: DATA }]);
  const events: ReceiverEvent[] = [];
  const messages = await within(
    2000,
    receiveBulletins(
      endpoint,
      options(events, {
        onEvent(event) {
          events.push(event);
          if (event.type === "waiting" && event.messages === 1) {
            queueMicrotask(() => endpoint.close());
          }
        },
      }),
    ),
  );
  assert.equal(messages, 1);
  assert.deepEqual(events, [
    waiting(0),
    { type: "message", from: S1, payload: DATA },
    { type: "ack-sent", to: S1, payload: ACK },
    waiting(1),
    { type: "stopped", messages: 1, reason: "signal" },
  ]);
});

Deno.test("ack null sends nothing and emits no ack-sent", async () => {
  const endpoint = new FakeEndpoint(LOCAL, [
    { from: S1, payload: DATA },
    { from: S2, payload: DATA },
  ]);
  const events: ReceiverEvent[] = [];
  const messages = await within(
    2000,
    receiveBulletins(endpoint, options(events, { ack: null, count: 2 })),
  );
  assert.equal(messages, 2);
  assert.deepEqual(events, [
    waiting(0),
    { type: "message", from: S1, payload: DATA },
    waiting(1),
    { type: "message", from: S2, payload: DATA },
    { type: "stopped", messages: 2, reason: "count" },
  ]);
  assert.deepEqual(endpoint.sent, []);
  assert.equal(endpoint.closed, true);
});

Deno.test("a custom ack payload is sent as given", async () => {
  const endpoint = new FakeEndpoint(LOCAL, [{ from: S6, payload: DATA }]);
  const ack = new Uint8Array([0x00, 0xff, 0x41]);
  const events: ReceiverEvent[] = [];
  await within(
    2000,
    receiveBulletins(endpoint, options(events, { ack, count: 1 })),
  );
  assert.deepEqual(endpoint.sent, [{ payload: ack, to: S6 }]);
  assert.deepEqual(events[2], { type: "ack-sent", to: S6, payload: ack });
});

Deno.test("a failed ack is reported and the loop goes on", async () => {
  const endpoint = new FakeEndpoint(LOCAL, [
    { from: S1, payload: DATA },
    { from: S2, payload: DATA },
  ]);
  let sends = 0;
  endpoint.onSend = () => {
    sends += 1;
    if (sends === 1) {
      throw new Error("Network is unreachable\n(os error 101)");
    }
  };
  const events: ReceiverEvent[] = [];
  const messages = await within(
    2000,
    receiveBulletins(endpoint, options(events, { count: 2 })),
  );
  assert.equal(messages, 2);
  assert.deepEqual(events, [
    waiting(0),
    { type: "message", from: S1, payload: DATA },
    {
      type: "ack-failed",
      to: S1,
      reason: "Network is unreachable (os error 101)",
    },
    waiting(1),
    { type: "message", from: S2, payload: DATA },
    { type: "ack-sent", to: S2, payload: ACK },
    { type: "stopped", messages: 2, reason: "count" },
  ]);
  assert.equal(sends, 2);
  assert.equal(endpoint.closed, true);
});

Deno.test("a failing receive rejects and still closes the endpoint", async () => {
  const failure = new NetworkError("Cannot receive: connection reset");
  const endpoint = new FakeEndpoint(LOCAL);
  endpoint.receive = () => Promise.reject(failure);
  const events: ReceiverEvent[] = [];
  await assert.rejects(
    within(2000, receiveBulletins(endpoint, options(events))),
    (error: unknown) => error === failure,
  );
  assert.deepEqual(events, [waiting(0)]);
  assert.equal(endpoint.closed, true);
});

Deno.test("an abort while a datagram is handled still acknowledges it", async () => {
  const endpoint = new FakeEndpoint(LOCAL, [{ from: S1, payload: DATA }]);
  const controller = new AbortController();
  const events: ReceiverEvent[] = [];
  const messages = await within(
    2000,
    receiveBulletins(
      endpoint,
      options(events, {
        signal: controller.signal,
        onEvent(event) {
          events.push(event);
          if (event.type === "message") controller.abort();
        },
      }),
    ),
  );
  assert.equal(messages, 1);
  assert.deepEqual(events, [
    waiting(0),
    { type: "message", from: S1, payload: DATA },
    { type: "ack-sent", to: S1, payload: ACK },
    { type: "stopped", messages: 1, reason: "signal" },
  ]);
  assert.deepEqual(endpoint.sent, [{ payload: ACK, to: S1 }]);
  assert.equal(endpoint.closed, true);
});

// ---- protocol frames ---------------------------------------------------------

const SESSION = "0123456789abcdef";
/** Microseconds since the epoch, as DATA frames carry them. */
const SENT_AT = 1_700_000_000_123_456;
/** Protocol timers at their shortest and randomness fixed. */
const TUNING = {
  random: () => 0,
  nackBackoffMs: 0,
  ackJitterMs: 0,
};

function record(bulletin: number, text: string): DataRecord {
  const data = utf8(text);
  return { bulletin, total: data.length, offset: 0, data };
}

function dataFrame(
  seq: number,
  records: DataRecord[],
  low = 1,
): Uint8Array {
  return encodeFrame({
    type: "data",
    session: SESSION,
    seq,
    retransmit: false,
    timestamp: SENT_AT,
    low,
    records,
  });
}

function heartbeat(seq: number): Uint8Array {
  return encodeFrame({
    type: "heartbeat",
    session: SESSION,
    seq,
    final: false,
    timestamp: SENT_AT,
    low: 1,
  });
}

/** What the receiver sent: decoded frames, or plain payloads as text. */
function sentBy(
  endpoint: FakeEndpoint,
): ({ frame: Frame; to: Peer } | { plain: string; to: Peer })[] {
  return endpoint.sent.map(({ payload, to }) => {
    const decoded = decodeFrame(payload);
    if (decoded.kind === "frame") return { frame: decoded.frame, to };
    assert.equal(decoded.kind, "plain");
    return { plain: new TextDecoder().decode(payload), to };
  });
}

function session(from: Peer, start: number, resumed = false): ReceiverEvent {
  return { type: "session", session: SESSION, from, start, resumed };
}

function bulletin(
  number: number,
  text: string,
  from: Peer = S1,
): ReceiverEvent {
  return {
    type: "bulletin",
    session: SESSION,
    number,
    from,
    payload: utf8(text),
    sentAt: SENT_AT,
  };
}

function stats(fields: Partial<ReceiverStats>): ReceiverStats {
  return {
    name: "r1",
    session: SESSION,
    data: 0,
    bulletins: 0,
    bytes: 0,
    duplicates: 0,
    repaired: 0,
    unrecoverable: 0,
    failed: 0,
    nacks: 0,
    acks: 0,
    dropped: emptyDrops(),
    ...fields,
  };
}

/** The feedback a receiver sends when it joins and when it stops. */
function hello(seq: number, name = "r1", fromStart = false): Frame {
  return { type: "hello", session: SESSION, seq, name, fromStart };
}

function ack(seq: number, name = "r1"): Frame {
  return { type: "ack", session: SESSION, seq, name, ranges: [] };
}

function bye(seq: number, name = "r1"): Frame {
  return { type: "bye", session: SESSION, seq, name };
}

/** The last ACK and the BYE, sent three times by a receiver that stops on its own. */
function farewells(seq: number) {
  const pair = [{ frame: ack(seq), to: S1 }, { frame: bye(seq), to: S1 }];
  return [...pair, ...pair, ...pair];
}

Deno.test("a DATA frame goes to the protocol: session, bulletins, HELLO back", async () => {
  const endpoint = new FakeEndpoint(LOCAL, [
    { from: S1, payload: dataFrame(1, [record(1, "one"), record(2, "two")]) },
  ]);
  const events: ReceiverEvent[] = [];
  const received = await within(
    2000,
    receiveBulletins(
      endpoint,
      options(events, {
        count: 2,
        protocol: { name: "r1", tuning: TUNING },
      }),
    ),
  );
  assert.equal(received, 2);
  // No "message" or "ack-sent" for a frame, and no wait line between
  // bulletins.
  assert.deepEqual(events, [
    waiting(0),
    session(S1, 1),
    bulletin(1, "one"),
    bulletin(2, "two"),
    {
      type: "stopped",
      messages: 2,
      reason: "count",
      stats: stats({ data: 1, bulletins: 2, bytes: 6, acks: 3 }),
    },
  ]);
  // HELLO when it joins; a final ACK and a BYE, three times, when it stops
  // on its own; never the plain acknowledgement.
  assert.deepEqual(sentBy(endpoint), [
    { frame: hello(0), to: S1 },
    ...farewells(1),
  ]);
  assert.equal(endpoint.closed, true);
});

Deno.test("plain datagrams keep the exercise's events and ack among frames", async () => {
  const endpoint = new FakeEndpoint(LOCAL, [
    { from: S2, payload: DATA },
    { from: S1, payload: dataFrame(1, [record(1, "bulletin one")]) },
    { from: S2, payload: utf8("second") },
  ]);
  const events: ReceiverEvent[] = [];
  const received = await within(
    2000,
    receiveBulletins(
      endpoint,
      options(events, {
        count: 3,
        protocol: { name: "r1", tuning: TUNING },
      }),
    ),
  );
  assert.equal(received, 3);
  assert.deepEqual(events, [
    waiting(0),
    { type: "message", from: S2, payload: DATA },
    { type: "ack-sent", to: S2, payload: ACK },
    waiting(1),
    session(S1, 1),
    bulletin(1, "bulletin one"),
    { type: "message", from: S2, payload: utf8("second") },
    { type: "ack-sent", to: S2, payload: ACK },
    {
      type: "stopped",
      messages: 3,
      reason: "count",
      stats: stats({ data: 1, bulletins: 1, bytes: 12, acks: 3 }),
    },
  ]);
  assert.deepEqual(sentBy(endpoint), [
    { plain: "ack", to: S2 },
    { frame: hello(0), to: S1 },
    { plain: "ack", to: S2 },
    ...farewells(1),
  ]);
});

Deno.test("count counts plain messages plus delivered bulletins, never more", async () => {
  // One plain message, then two bulletins in one datagram: --count 2 stops
  // after the first bulletin.
  const endpoint = new FakeEndpoint(LOCAL, [
    { from: S2, payload: DATA },
    { from: S1, payload: dataFrame(1, [record(1, "one"), record(2, "two")]) },
  ]);
  const events: ReceiverEvent[] = [];
  const received = await within(
    2000,
    receiveBulletins(
      endpoint,
      options(events, {
        count: 2,
        protocol: { name: "r1", tuning: TUNING },
      }),
    ),
  );
  assert.equal(received, 2);
  assert.deepEqual(
    events.filter((event) => event.type === "bulletin"),
    [bulletin(1, "one")],
  );
  assert.deepEqual(events.at(-1), {
    type: "stopped",
    messages: 2,
    reason: "count",
    stats: stats({ data: 1, bulletins: 1, bytes: 3, acks: 3 }),
  });
});

Deno.test("invalid and unexpected frames are dropped and counted", async () => {
  const version2 = new Uint8Array(24);
  version2.set([0x4d, 0x43, 0x53, 0x54, 2, 4, 0, 0]);
  const unknownType = new Uint8Array(24);
  unknownType.set([0x4d, 0x43, 0x53, 0x54, 1, 99, 0, 0]);
  const truncated = new Uint8Array([0x4d, 0x43, 0x53, 0x54, 1, 1, 0, 0, 0, 0]);
  const tagged = heartbeat(5);
  tagged[7] = 16;
  const trailing = new Uint8Array([...heartbeat(5), 0]);
  // Another receiver's ACK: valid, but not for a receiver.
  const feedback = encodeFrame({
    type: "ack",
    session: SESSION,
    seq: 3,
    name: "other",
    ranges: [],
  });
  const endpoint = new FakeEndpoint(LOCAL, [
    { from: S1, payload: version2 },
    { from: S1, payload: unknownType },
    { from: S1, payload: truncated },
    { from: S1, payload: tagged },
    { from: S1, payload: trailing },
    { from: S2, payload: feedback },
    { from: S2, payload: DATA },
  ]);
  const events: ReceiverEvent[] = [];
  const received = await within(
    2000,
    receiveBulletins(endpoint, options(events, { count: 1 })),
  );
  assert.equal(received, 1);
  const expectedStats: ReceiverStats = {
    // The default name when no protocol options are given.
    name: "receiver",
    data: 0,
    bulletins: 0,
    bytes: 0,
    duplicates: 0,
    repaired: 0,
    unrecoverable: 0,
    failed: 0,
    nacks: 0,
    acks: 0,
    dropped: {
      version: 1,
      type: 1,
      truncated: 1,
      malformed: 1,
      tag: 1,
      unexpected: 1,
      ahead: 0,
      auth: 0,
      replay: 0,
      stale: 0,
      forged: 0,
      plain: 0,
      roster: 0,
    },
  };
  assert.deepEqual(events, [
    waiting(0),
    { type: "message", from: S2, payload: DATA },
    { type: "ack-sent", to: S2, payload: ACK },
    { type: "stopped", messages: 1, reason: "count", stats: expectedStats },
  ]);
  // Nothing was answered but the plain datagram.
  assert.deepEqual(sentBy(endpoint), [{ plain: "ack", to: S2 }]);
  assert.equal(endpoint.closed, true);
});

Deno.test("stopped carries statistics only when frames arrived", async () => {
  const endpoint = new FakeEndpoint(LOCAL, [{ from: S1, payload: DATA }]);
  const events: ReceiverEvent[] = [];
  await within(
    2000,
    receiveBulletins(
      endpoint,
      options(events, { count: 1, protocol: { name: "r1" } }),
    ),
  );
  const stopped = events.at(-1);
  assert.deepEqual(stopped, { type: "stopped", messages: 1, reason: "count" });
  assert.equal(stopped !== undefined && "stats" in stopped, false);
  // One invalid frame is enough to show them.
  const invalid = new Uint8Array(24);
  invalid.set([0x4d, 0x43, 0x53, 0x54, 9]);
  const other = new FakeEndpoint(LOCAL, [
    { from: S1, payload: invalid },
    { from: S1, payload: DATA },
  ]);
  const more: ReceiverEvent[] = [];
  await within(
    2000,
    receiveBulletins(
      other,
      options(more, { count: 1, protocol: { name: "r1" } }),
    ),
  );
  const last = more.at(-1);
  assert.equal(last?.type, "stopped");
  assert.deepEqual(
    last?.type === "stopped" ? last.stats?.dropped : undefined,
    { ...emptyDrops(), version: 1 },
  );
});

Deno.test("a HEARTBEAT joins the session after its highest sequence", async () => {
  const endpoint = new FakeEndpoint(LOCAL, [
    { from: S1, payload: heartbeat(41) },
  ]);
  const controller = new AbortController();
  const events: ReceiverEvent[] = [];
  const received = await within(
    2000,
    receiveBulletins(
      endpoint,
      options(events, {
        signal: controller.signal,
        protocol: { name: "r1", tuning: TUNING },
        onEvent(event) {
          events.push(event);
          if (event.type === "session") controller.abort();
        },
      }),
    ),
  );
  assert.equal(received, 0);
  assert.deepEqual(events, [
    waiting(0),
    session(S1, 42),
    {
      type: "stopped",
      messages: 0,
      reason: "signal",
      stats: stats({ acks: 1 }),
    },
  ]);
  assert.deepEqual(sentBy(endpoint), [
    { frame: hello(41), to: S1 },
    { frame: ack(41), to: S1 },
    { frame: bye(41), to: S1 },
  ]);
});

Deno.test("protocol options reach the engine: fromStart, state, sink, maxSize", async () => {
  // --from-start: start at the sender's oldest held sequence and say so.
  {
    const endpoint = new FakeEndpoint(LOCAL, [
      { from: S1, payload: dataFrame(5, [record(5, "five")], 2) },
    ]);
    const controller = new AbortController();
    const events: ReceiverEvent[] = [];
    await within(
      2000,
      receiveBulletins(
        endpoint,
        options(events, {
          signal: controller.signal,
          protocol: { name: "r1", fromStart: true, tuning: TUNING },
          onEvent(event) {
            events.push(event);
            if (event.type === "session") controller.abort();
          },
        }),
      ),
    );
    assert.deepEqual(events[1], session(S1, 2));
    assert.deepEqual(sentBy(endpoint)[0], {
      frame: hello(1, "r1", true),
      to: S1,
    });
  }
  // --state: resume the same session where it was; the sink writes and
  // saves before the bulletin is reported.
  {
    const state: ReceiverState = {
      version: 1,
      session: SESSION,
      next: 3,
      delivered: 2,
      name: "r1",
    };
    const endpoint = new FakeEndpoint(LOCAL, [
      {
        from: S1,
        payload: dataFrame(3, [record(2, "two"), record(3, "three")]),
      },
    ]);
    const saved: ReceiverState[] = [];
    const written: string[] = [];
    const events: ReceiverEvent[] = [];
    const controller = new AbortController();
    const received = await within(
      2000,
      receiveBulletins(
        endpoint,
        options(events, {
          signal: controller.signal,
          onEvent(event) {
            events.push(event);
            if (event.type === "bulletin") controller.abort();
          },
          protocol: {
            name: "r1",
            state,
            tuning: TUNING,
            sink: {
              write(session, number, payload) {
                written.push(`${session}/${number}`);
                assert.deepEqual(payload, utf8("three"));
                return `/out/${number}`;
              },
              save(position) {
                saved.push({ ...position });
              },
            },
          },
        }),
      ),
    );
    assert.equal(received, 1);
    assert.deepEqual(events.slice(1, 3), [
      session(S1, 3, true),
      { ...bulletin(3, "three"), path: "/out/3" },
    ]);
    assert.deepEqual(written, [`${SESSION}/3`]);
    assert.deepEqual(saved, [{ ...state, next: 4, delivered: 3 }]);
    assert.deepEqual(sentBy(endpoint)[0], { frame: hello(2), to: S1 });
  }
  // --max-size: a bulletin larger than that is discarded.
  {
    const endpoint = new FakeEndpoint(LOCAL, [
      { from: S1, payload: dataFrame(1, [record(1, "too large")]) },
      { from: S2, payload: DATA },
    ]);
    const events: ReceiverEvent[] = [];
    await within(
      2000,
      receiveBulletins(
        endpoint,
        options(events, {
          count: 1,
          protocol: { name: "r1", maxSize: 8, tuning: TUNING },
        }),
      ),
    );
    assert.deepEqual(events.slice(1, 3), [
      session(S1, 1),
      {
        type: "bulletin-failed",
        session: SESSION,
        number: 1,
        reason: "too-large",
      },
    ]);
  }
});

// ---- failing feedback and screening ------------------------------------------

/**
 * Wraps a {@linkcode FakeEndpoint}: `send` throws synchronously (no promise
 * at all) for protocol frames, and passes plain datagrams through.
 */
class ThrowingEndpoint implements DatagramEndpoint {
  readonly inner: FakeEndpoint;
  /** Frames whose send threw. */
  thrown = 0;

  constructor(inner: FakeEndpoint) {
    this.inner = inner;
  }

  get local(): Peer {
    return this.inner.local;
  }

  send(payload: Uint8Array, to: Peer): Promise<void> {
    if (hasMagic(payload)) {
      this.thrown += 1;
      throw new Error("Network is unreachable (os error 101)");
    }
    return this.inner.send(payload, to);
  }

  receive(): Promise<Datagram | null> {
    return this.inner.receive();
  }

  close(): void {
    this.inner.close();
  }
}

Deno.test("a send that throws synchronously for frames does not stop the loop", async () => {
  const one = dataFrame(1, [record(1, "one")]);
  const inner = new FakeEndpoint(LOCAL, [
    { from: S1, payload: one },
    { from: S1, payload: one },
    { from: S2, payload: DATA },
  ]);
  const endpoint = new ThrowingEndpoint(inner);
  const events: ReceiverEvent[] = [];
  const received = await within(
    2000,
    receiveBulletins(
      endpoint,
      options(events, {
        count: 2,
        protocol: { name: "r1", tuning: TUNING },
      }),
    ),
  );
  assert.equal(received, 2);
  assert.deepEqual(events, [
    waiting(0),
    session(S1, 1),
    bulletin(1, "one"),
    { type: "message", from: S2, payload: DATA },
    { type: "ack-sent", to: S2, payload: ACK },
    {
      type: "stopped",
      messages: 2,
      reason: "count",
      stats: stats({ data: 2, duplicates: 1, bulletins: 1, bytes: 3, acks: 3 }),
    },
  ]);
  // The HELLO and three pairs of farewells were tried and failed; the plain
  // acknowledgement went out.
  assert.equal(endpoint.thrown, 7);
  assert.deepEqual(sentBy(inner), [{ plain: "ack", to: S2 }]);
  assert.equal(inner.closed, true);
});

Deno.test("a frame that cannot be encoded is a failed send: the loop goes on", async () => {
  // A name of 65 bytes: every HELLO, ACK and BYE fails to encode.
  const name = "x".repeat(65);
  const endpoint = new FakeEndpoint(LOCAL, [
    { from: S1, payload: dataFrame(1, [record(1, "one")]) },
    { from: S2, payload: DATA },
  ]);
  const events: ReceiverEvent[] = [];
  const received = await within(
    2000,
    receiveBulletins(
      endpoint,
      options(events, { count: 2, protocol: { name, tuning: TUNING } }),
    ),
  );
  assert.equal(received, 2);
  assert.deepEqual(events, [
    waiting(0),
    session(S1, 1),
    bulletin(1, "one"),
    { type: "message", from: S2, payload: DATA },
    { type: "ack-sent", to: S2, payload: ACK },
    {
      type: "stopped",
      messages: 2,
      reason: "count",
      stats: stats({ name, data: 1, bulletins: 1, bytes: 3, acks: 3 }),
    },
  ]);
  assert.deepEqual(sentBy(endpoint), [{ plain: "ack", to: S2 }]);
  assert.equal(endpoint.closed, true);
});

Deno.test("duplicates and DATA too far ahead are dropped from the header, before the body is decoded", async () => {
  // Each of these has a body that does not decode (a byte too many): a
  // receiver that decoded it would count it malformed.
  function spoiled(bytes: Uint8Array): Uint8Array {
    return new Uint8Array([...bytes, 0]);
  }
  const endpoint = new FakeEndpoint(LOCAL, [
    // Before the session is joined nothing is screened: malformed.
    { from: S1, payload: spoiled(dataFrame(1, [record(1, "one")])) },
    { from: S1, payload: dataFrame(1, [record(1, "one")]) },
    // Delivered already: a duplicate.
    { from: S1, payload: spoiled(dataFrame(1, [record(1, "one")])) },
    // Past maxAhead (next 2 + 10): ahead.
    { from: S1, payload: spoiled(dataFrame(13, [record(13, "far")])) },
    // Within reach: decoded, and malformed.
    { from: S1, payload: spoiled(dataFrame(12, [record(12, "near")])) },
    { from: S2, payload: DATA },
  ]);
  const events: ReceiverEvent[] = [];
  const received = await within(
    2000,
    receiveBulletins(
      endpoint,
      options(events, {
        count: 2,
        protocol: { name: "r1", tuning: { ...TUNING, maxAhead: 10 } },
      }),
    ),
  );
  assert.equal(received, 2);
  assert.deepEqual(events.at(-1), {
    type: "stopped",
    messages: 2,
    reason: "count",
    stats: stats({
      data: 3,
      duplicates: 1,
      bulletins: 1,
      bytes: 3,
      acks: 3,
      dropped: { ...emptyDrops(), malformed: 2, ahead: 1 },
    }),
  });
});
