import assert from "node:assert/strict";
import type { Group, Peer } from "../lib/address.ts";
import { NetworkError } from "../lib/errors.ts";
import type { ReceiverEvent } from "../lib/events.ts";
import {
  receiveBulletins,
  type ReceiveBulletinsOptions,
} from "../lib/receiver.ts";
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
