import assert from "node:assert/strict";
import type { Group, Peer } from "../lib/net/address.ts";
import { NetworkError } from "../lib/errors.ts";
import type { SenderEvent } from "../lib/events.ts";
import { sendBulletin, type SendBulletinOptions } from "../lib/sender.ts";
import { FakeEndpoint, utf8, within } from "./_fakes.ts";

const LOCAL: Peer = { address: "127.0.0.1", port: 41000 };
const GROUP: Group = { family: 4, address: "239.12.0.1" };
const PORT = 10123;
const PAYLOAD = utf8("very important data");
const ACK = utf8("ack");
const R1: Peer = { address: "127.0.0.1", port: 10123 };
const R2: Peer = { address: "10.0.0.2", port: 10123 };
const R3: Peer = { address: "fe80::2", port: 10123, scopeId: 3 };

function options(
  events: SenderEvent[],
  extra: Partial<SendBulletinOptions> = {},
): SendBulletinOptions {
  return {
    group: GROUP,
    port: PORT,
    waitMs: 50,
    onEvent: (event) => events.push(event),
    ...extra,
  };
}

Deno.test("sends one datagram to the group and reports each ack", async () => {
  const endpoint = new FakeEndpoint(LOCAL, [
    { from: R1, payload: ACK },
    { from: R2, payload: utf8("ok") },
  ]);
  const events: SenderEvent[] = [];
  const result = await within(
    2000,
    sendBulletin(endpoint, PAYLOAD, options(events)),
  );
  assert.deepEqual(result, { acks: 2 });
  assert.deepEqual(events, [
    { type: "sending", group: GROUP, port: PORT, payload: PAYLOAD },
    { type: "waiting" },
    { type: "ack", from: R1, payload: ACK },
    { type: "ack", from: R2, payload: utf8("ok") },
    { type: "closing", acks: 2 },
  ]);
  assert.deepEqual(endpoint.sent, [
    { payload: PAYLOAD, to: { address: "239.12.0.1", port: PORT } },
  ]);
  assert.equal(endpoint.closed, true);
});

Deno.test("acks that arrive during the wait are all reported", async () => {
  const endpoint = new FakeEndpoint(LOCAL);
  const events: SenderEvent[] = [];
  const timers: ReturnType<typeof setTimeout>[] = [];
  const done = sendBulletin(
    endpoint,
    PAYLOAD,
    options(events, {
      waitMs: 300,
      onEvent(event) {
        events.push(event);
        if (event.type === "waiting") {
          // One ack while receive() is pending, two more a little later.
          queueMicrotask(() => endpoint.deliver({ from: R1, payload: ACK }));
          timers.push(setTimeout(() => {
            endpoint.deliver({ from: R2, payload: ACK });
            endpoint.deliver({ from: R3, payload: new Uint8Array([0xff]) });
          }, 10));
        }
      },
    }),
  );
  const result = await within(2000, done);
  timers.forEach(clearTimeout);
  assert.deepEqual(result, { acks: 3 });
  assert.deepEqual(events, [
    { type: "sending", group: GROUP, port: PORT, payload: PAYLOAD },
    { type: "waiting" },
    { type: "ack", from: R1, payload: ACK },
    { type: "ack", from: R2, payload: ACK },
    { type: "ack", from: R3, payload: new Uint8Array([0xff]) },
    { type: "closing", acks: 3 },
  ]);
  assert.equal(endpoint.closed, true);
});

Deno.test("the wait ends after waitMs when no ack arrives", async () => {
  const endpoint = new FakeEndpoint(LOCAL);
  const events: SenderEvent[] = [];
  const start = performance.now();
  const result = await within(
    2000,
    sendBulletin(endpoint, PAYLOAD, options(events, { waitMs: 50 })),
  );
  const elapsed = performance.now() - start;
  assert.deepEqual(result, { acks: 0 });
  assert.deepEqual(events, [
    { type: "sending", group: GROUP, port: PORT, payload: PAYLOAD },
    { type: "waiting" },
    { type: "closing", acks: 0 },
  ]);
  assert.ok(elapsed >= 45, `ended after ${elapsed} ms, before waitMs`);
  assert.ok(elapsed < 1500, `ended after ${elapsed} ms`);
  assert.equal(endpoint.closed, true);
  assert.equal(endpoint.receiveCalls, 1);
});

Deno.test("expect stops as soon as enough acks arrived", async () => {
  const endpoint = new FakeEndpoint(LOCAL, [
    { from: R1, payload: ACK },
    { from: R2, payload: ACK },
    { from: R3, payload: ACK },
  ]);
  const events: SenderEvent[] = [];
  const start = performance.now();
  const result = await within(
    2000,
    sendBulletin(
      endpoint,
      PAYLOAD,
      options(events, { waitMs: 60_000, expect: 2 }),
    ),
  );
  assert.ok(performance.now() - start < 1000);
  assert.deepEqual(result, { acks: 2, expected: 2 });
  assert.deepEqual(events, [
    { type: "sending", group: GROUP, port: PORT, payload: PAYLOAD },
    { type: "waiting" },
    { type: "ack", from: R1, payload: ACK },
    { type: "ack", from: R2, payload: ACK },
    { type: "closing", acks: 2, expected: 2 },
  ]);
  // The third datagram was never read.
  assert.equal(endpoint.receiveCalls, 2);
  assert.equal(endpoint.closed, true);
});

Deno.test("expect not met: the wait runs out and the count is reported", async () => {
  const endpoint = new FakeEndpoint(LOCAL, [{ from: R1, payload: ACK }]);
  const events: SenderEvent[] = [];
  const result = await within(
    2000,
    sendBulletin(endpoint, PAYLOAD, options(events, { waitMs: 50, expect: 3 })),
  );
  assert.deepEqual(result, { acks: 1, expected: 3 });
  assert.deepEqual(events, [
    { type: "sending", group: GROUP, port: PORT, payload: PAYLOAD },
    { type: "waiting" },
    { type: "ack", from: R1, payload: ACK },
    { type: "closing", acks: 1, expected: 3 },
  ]);
  assert.equal(endpoint.closed, true);
});

Deno.test("an abort signal ends the wait early", async () => {
  const endpoint = new FakeEndpoint(LOCAL, [{ from: R1, payload: ACK }]);
  const controller = new AbortController();
  const events: SenderEvent[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const start = performance.now();
  const result = await within(
    2000,
    sendBulletin(
      endpoint,
      PAYLOAD,
      options(events, {
        waitMs: 60_000,
        signal: controller.signal,
        onEvent(event) {
          events.push(event);
          if (event.type === "ack") {
            timer = setTimeout(() => controller.abort(), 20);
          }
        },
      }),
    ),
  );
  clearTimeout(timer);
  assert.ok(performance.now() - start < 1500);
  assert.deepEqual(result, { acks: 1 });
  assert.deepEqual(events, [
    { type: "sending", group: GROUP, port: PORT, payload: PAYLOAD },
    { type: "waiting" },
    { type: "ack", from: R1, payload: ACK },
    { type: "closing", acks: 1 },
  ]);
  assert.equal(endpoint.closed, true);
});

Deno.test(
  { name: "an abort during the send ends the wait at once" },
  async () => {
    const endpoint = new FakeEndpoint(LOCAL);
    const controller = new AbortController();
    endpoint.onSend = () => controller.abort();
    const events: SenderEvent[] = [];
    const start = performance.now();
    const result = await within(
      5000,
      sendBulletin(
        endpoint,
        PAYLOAD,
        options(events, { waitMs: 2000, signal: controller.signal }),
      ),
    );
    assert.ok(performance.now() - start < 1000, "waited for waitMs");
    assert.deepEqual(result, { acks: 0 });
    assert.equal(endpoint.closed, true);
  },
);

Deno.test("an already aborted signal sends nothing and closes", async () => {
  const endpoint = new FakeEndpoint(LOCAL, [{ from: R1, payload: ACK }]);
  const events: SenderEvent[] = [];
  await assert.rejects(
    within(
      2000,
      sendBulletin(
        endpoint,
        PAYLOAD,
        options(events, { signal: AbortSignal.abort() }),
      ),
    ),
    (error: unknown) => {
      assert.ok(error instanceof DOMException);
      assert.equal(error.name, "AbortError");
      return true;
    },
  );
  assert.deepEqual(events, []);
  assert.deepEqual(endpoint.sent, []);
  assert.equal(endpoint.receiveCalls, 0);
  assert.equal(endpoint.closed, true);
});

Deno.test("a failed send rejects and still closes the endpoint", async () => {
  const endpoint = new FakeEndpoint(LOCAL, [{ from: R1, payload: ACK }]);
  const failure = new NetworkError("Cannot send to 239.12.0.1:10123: no route");
  endpoint.onSend = () => {
    throw failure;
  };
  const events: SenderEvent[] = [];
  await assert.rejects(
    within(2000, sendBulletin(endpoint, PAYLOAD, options(events))),
    (error: unknown) => error === failure,
  );
  assert.deepEqual(events, [
    { type: "sending", group: GROUP, port: PORT, payload: PAYLOAD },
  ]);
  assert.equal(endpoint.receiveCalls, 0);
  assert.equal(endpoint.closed, true);
});

Deno.test("IPv6 groups are sent to the group address and port", async () => {
  const group: Group = { family: 6, address: "ff02::1:3" };
  const endpoint = new FakeEndpoint(LOCAL, [{ from: R3, payload: ACK }]);
  const events: SenderEvent[] = [];
  const result = await within(
    2000,
    sendBulletin(endpoint, PAYLOAD, {
      ...options(events, { expect: 1 }),
      group,
    }),
  );
  assert.deepEqual(result, { acks: 1, expected: 1 });
  assert.deepEqual(endpoint.sent, [
    { payload: PAYLOAD, to: { address: "ff02::1:3", port: PORT } },
  ]);
  assert.deepEqual(events.map((event) => event.type), [
    "sending",
    "waiting",
    "ack",
    "closing",
  ]);
});
