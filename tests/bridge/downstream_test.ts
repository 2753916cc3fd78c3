import assert from "node:assert/strict";
import {
  datagramKey,
  DownstreamHold,
  FarRoster,
  SeenSet,
  viaName,
} from "../../lib/bridge/downstream.ts";
import { encodeFrame } from "../../lib/wire/frame.ts";

const S = "0123456789abcdef";
const FROM = { address: "198.51.100.130", port: 4000 };

function bytes(seq: number, size = 100): Uint8Array {
  return new Uint8Array(size).fill(seq);
}

Deno.test("downstream: NACKs are answered from the hold, asked upstream, or GONE", () => {
  const hold = new DownstreamHold();
  for (const seq of [3, 4, 6]) hold.hold(S, seq, { bytes: bytes(seq), at: 0 });
  const upstream = hold.plan(S, [{ first: 1, last: 8 }], {
    now: 10,
    upstream: true,
    next: 7,
  });
  assert.deepEqual(upstream.resend.map((r) => r.seq), [3, 4, 6]);
  assert.deepEqual(upstream.resend[0]!.bytes, bytes(3));
  // 1, 2, 5 were forwarded before and are not held: asked upstream; 7 and
  // 8 have not arrived yet.
  assert.deepEqual(upstream.ask, [1, 2, 5]);
  assert.deepEqual(upstream.gone, []);
  const piped = hold.plan(S, [{ first: 1, last: 8 }], {
    now: 10,
    upstream: false,
    next: 7,
  });
  // Never held, never dropped: asked for through the pipe.
  assert.deepEqual(piped.ask, [1, 2, 5]);
  assert.deepEqual(piped.gone, []);
  assert.deepEqual(
    hold.plan("fedcba9876543210", [{ first: 3, last: 3 }], {
      now: 10,
      upstream: true,
      next: 7,
    }),
    { resend: [], ask: [], gone: [] },
  );
});

Deno.test("downstream: keyed copies older than the replay window are asked upstream", () => {
  const hold = new DownstreamHold({ freshMs: 1500 });
  hold.hold(S, 1, { bytes: bytes(1), at: 0 });
  hold.hold(S, 2, { bytes: bytes(2), at: 1000 });
  const plan = hold.plan(S, [{ first: 1, last: 2 }], {
    now: 2000,
    upstream: true,
    next: 3,
  });
  assert.deepEqual(plan.resend.map((r) => r.seq), [2]);
  assert.deepEqual(plan.ask, [1]);
});

Deno.test("downstream: behind a pipe, keyed copies older than the replay window are asked for through it", () => {
  const hold = new DownstreamHold({ freshMs: 1500 });
  hold.hold(S, 1, { bytes: bytes(1), at: 0 });
  hold.hold(S, 2, { bytes: bytes(2), at: 1000 });
  const plan = hold.plan(S, [{ first: 1, last: 2 }], {
    now: 2000,
    upstream: false,
    next: 3,
  });
  // A far receiver drops 1's original send time, however often it comes.
  assert.deepEqual(plan.resend.map((r) => r.seq), [2]);
  assert.deepEqual(plan.ask, [1]);
  assert.deepEqual(plan.gone, []);
});

Deno.test("downstream: the hold keeps to its byte budget, oldest out first", () => {
  const hold = new DownstreamHold({ bufferBytes: 2048 });
  for (let seq = 1; seq <= 5; seq++) {
    hold.hold(S, seq, { bytes: bytes(seq, 600), at: 0 });
  }
  assert.equal(hold.size, 3);
  assert.equal(hold.low, 3);
  assert.equal(hold.get(S, 2), undefined);
  // Behind a pipe, what the budget dropped is gone; what never came waits.
  assert.deepEqual(
    hold.plan(S, [{ first: 1, last: 7 }], {
      now: 0,
      upstream: false,
      next: 9,
    }).gone,
    [{ first: 1, last: 2 }],
  );
  assert.deepEqual(hold.get(S, 5)?.bytes, bytes(5, 600));
  // A newer copy replaces the held one.
  hold.hold(S, 5, { bytes: bytes(9, 600), at: 1 });
  assert.deepEqual(hold.get(S, 5)?.bytes, bytes(9, 600));
  assert.equal(hold.size, 3);
});

Deno.test("downstream: far receivers are reported upstream as NAME via BRIDGE", () => {
  const roster = new FarRoster("bridge-1");
  const hello = roster.feedback(
    { session: S, seq: 0, name: "desk-b", type: "hello" },
    FROM,
  );
  assert.equal(hello?.joined, true);
  assert.equal(hello?.receiver.via, "desk-b via bridge-1");
  const ack = roster.feedback(
    { session: S, seq: 40, name: "desk-b", type: "ack" },
    FROM,
  );
  assert.equal(ack?.joined, false);
  assert.equal(ack?.receiver.acked, 40);
  const bye = roster.feedback(
    { session: S, seq: 41, name: "desk-b", type: "bye" },
    FROM,
  );
  assert.equal(bye?.left, true);
  const again = roster.feedback(
    { session: S, seq: 41, name: "desk-b", type: "bye" },
    FROM,
  );
  assert.equal(again?.left, false);
  assert.deepEqual(roster.receivers.map((r) => r.name), ["desk-b"]);
  const capped = new FarRoster("b", { max: 1 });
  capped.feedback({ session: S, seq: 0, name: "one", type: "hello" }, FROM);
  assert.equal(
    capped.feedback({ session: S, seq: 0, name: "two", type: "hello" }, FROM),
    undefined,
  );
});

Deno.test("downstream: via names fit the 64 bytes of a frame's name", () => {
  assert.equal(viaName("desk-3", "bridge-1"), "desk-3 via bridge-1");
  const long = viaName("d".repeat(64), "bridge-1");
  assert.equal(long, "d".repeat(51) + " via bridge-1");
  assert.equal(new TextEncoder().encode(long).length, 64);
  assert.equal(viaName("desk", "b".repeat(64)), "desk");
});

Deno.test("downstream: the loop rule forgets the oldest beyond its bound", () => {
  const seen = new SeenSet(2);
  assert.equal(seen.add("a"), true);
  assert.equal(seen.add("a"), false);
  seen.add("b");
  seen.add("c");
  assert.equal(seen.add("a"), true);
});

Deno.test("downstream: datagram keys name DATA by session and seq", () => {
  const data = encodeFrame({
    type: "data",
    session: S,
    seq: 42,
    retransmit: false,
    timestamp: 1,
    low: 1,
    records: [],
  });
  assert.equal(datagramKey(data), `${S}:42`);
  const heartbeat = encodeFrame({
    type: "heartbeat",
    session: S,
    seq: 42,
    final: false,
    timestamp: 7,
    low: 1,
  });
  assert.equal(
    datagramKey(heartbeat),
    `${S}:t4:42:00000000000000070000000000000001`,
  );
  const plain = new TextEncoder().encode("very important data");
  assert.match(datagramKey(plain), /^plain:19:[0-9a-f]{16}$/);
  assert.notEqual(
    datagramKey(plain),
    datagramKey(new TextEncoder().encode("very important date")),
  );
});
