import assert from "node:assert/strict";
import {
  CHECK_MESSAGE_SIZE,
  type CheckMessage,
  type CheckOutgoing,
  CheckSession,
  type CheckSessionOptions,
  decodeCheckMessage,
  encodeCheckMessage,
  type Peer,
} from "../../lib/mod.ts";

const A: Peer = { address: "198.51.100.1", port: 4322 };
const B: Peer = { address: "198.51.100.2", port: 4322 };

function options(
  id: number,
  peer: Peer,
  extra: Partial<CheckSessionOptions> = {},
): CheckSessionOptions {
  return {
    id,
    peers: [peer],
    count: 3,
    intervalMs: 100,
    ttl: 1,
    unicastTtl: 64,
    timeoutMs: 5000,
    ...extra,
  };
}

interface Wire {
  /** Delivers unicast messages (and multicast when it passes). */
  multicast: boolean;
  /** TTL the receiver sees on every datagram. */
  ttl?: number;
  /** Simulated one-way delay, ms. */
  delay: number;
}

/**
 * Runs two sessions against each other on a simulated clock; returns the
 * end time. Messages travel through the codec.
 */
function simulate(
  a: CheckSession,
  b: CheckSession,
  wire: Wire,
  startB = 0,
): number {
  type Flight = {
    at: number;
    to: "a" | "b";
    message: CheckMessage;
    group: boolean;
  };
  let flights: Flight[] = [];
  function post(from: "a" | "b", now: number, out: CheckOutgoing[]): void {
    for (const { to, message } of out) {
      const group = !("peer" in to);
      if (group && !wire.multicast) continue;
      const bytes = encodeCheckMessage(message);
      assert.equal(bytes.byteLength, CHECK_MESSAGE_SIZE);
      flights.push({
        at: now + wire.delay,
        to: from === "a" ? "b" : "a",
        message: decodeCheckMessage(bytes)!,
        group,
      });
    }
  }
  for (let now = 0; now < 10_000; now += 1) {
    const due = flights.filter((f) => f.at <= now);
    flights = flights.filter((f) => f.at > now);
    for (const f of due) {
      const [session, from] = f.to === "a" ? [a, B] : [b, A];
      if (f.to === "b" && now < startB) continue; // b not running yet
      post(
        f.to,
        now,
        session.receive(f.message, {
          from,
          group: f.group,
          ...(wire.ttl === undefined ? {} : { ttl: wire.ttl }),
          now,
        }),
      );
    }
    if (!a.done(now)) post("a", now, a.tick(now));
    if (now >= startB && !b.done(now)) post("b", now, b.tick(now));
    if (a.done(now) && b.done(now)) return now;
  }
  throw new Error("the sessions never ended");
}

Deno.test("CheckSession: two instances measure every probe both ways, with RTT and hops", () => {
  const a = new CheckSession(options(1, B), 0);
  const b = new CheckSession(options(2, A), 0);
  const end = simulate(a, b, { multicast: true, ttl: 1, delay: 5 });
  for (const [session, peer] of [[a, B], [b, A]] as const) {
    const [result] = session.results();
    assert.deepEqual(result, {
      peer: `${peer.address}:${peer.port}`,
      up: true,
      reachable: true,
      unicast: {
        sent: 3,
        answered: 3,
        loss: 0,
        rtt: { min: 10, avg: 10, max: 10 },
        dups: 0,
        // Sent with 64, arrived with 1: the simulated wire says 64 hops.
        hops: 64,
        heard: 3,
        expected: 3,
      },
      multicast: {
        sent: 3,
        answered: 3,
        loss: 0,
        rtt: { min: 10, avg: 10, max: 10 },
        dups: 0,
        hops: 1,
        heard: 3,
        expected: 3,
      },
    });
  }
  // Hello (5 ms each way), three rounds 100 ms apart, last answers 10 ms later.
  assert.ok(end >= 210 && end < 300, `ended at ${end}`);
});

Deno.test("CheckSession: a peer that starts late is greeted first, so no probe is lost", () => {
  const a = new CheckSession(options(1, B), 0);
  const b = new CheckSession(options(2, A), 0);
  simulate(a, b, { multicast: true, delay: 1 }, 750);
  const [result] = a.results();
  assert.equal(result!.unicast.loss, 0);
  assert.equal(result!.multicast.loss, 0);
  assert.equal(result!.multicast.heard, 3);
  assert.equal(result!.unicast.hops, undefined, "no TTL known: hops unknown");
});

Deno.test("CheckSession: lost multicast shows as 100% multicast loss with unicast intact", () => {
  const a = new CheckSession(options(1, B), 0);
  const b = new CheckSession(options(2, A), 0);
  const end = simulate(a, b, { multicast: false, delay: 2 });
  const [result] = a.results();
  assert.equal(result!.unicast.answered, 3);
  assert.equal(result!.multicast.answered, 0);
  assert.equal(result!.multicast.loss, 100);
  assert.equal(result!.multicast.heard, 0);
  assert.equal(result!.reachable, false);
  assert.equal("rtt" in result!.multicast, false);
  // Waited 500 ms for the missing answers after the last round.
  assert.ok(end >= 700 && end < 900, `ended at ${end}`);
});

Deno.test("CheckSession: a silent peer ends the check at the timeout, all lost", () => {
  const a = new CheckSession(options(1, B, { timeoutMs: 1000 }), 0);
  let now = 0;
  let hellos = 0;
  for (; !a.done(now); now += 10) {
    for (const out of a.tick(now)) if (out.message.kind === "hello") hellos++;
  }
  assert.equal(now, 1000);
  assert.equal(hellos, 10, "greeted every 100 ms, probing or not");
  const [result] = a.results();
  assert.equal(result!.up, false);
  assert.equal(result!.unicast.sent, 3);
  assert.equal(result!.unicast.loss, 100);
});

Deno.test("CheckSession: duplicate answers are counted, strangers and own messages ignored", () => {
  const a = new CheckSession(options(7, B), 0);
  const out = a.tick(0);
  assert.deepEqual(out.map((o) => o.message.kind), ["hello"]);
  a.receive(
    {
      kind: "hello-answer",
      multicast: false,
      ttl: 0,
      id: 9,
      seq: 0,
      count: 3,
      time: 0,
    },
    { from: B, group: false, now: 1 },
  );
  const probes = a.tick(2);
  assert.deepEqual(probes.map((o) => "peer" in o.to ? "unicast" : "group"), [
    "unicast",
    "group",
  ]);
  const answer: CheckMessage = {
    kind: "answer",
    multicast: false,
    ttl: 1,
    id: 9,
    seq: 0,
    count: 0,
    time: 2,
  };
  a.receive(answer, { from: B, group: false, now: 4 });
  a.receive(answer, { from: B, group: false, now: 5 });
  // Our own multicast probe looped back, and a stranger's probe: no answer.
  assert.deepEqual(
    a.receive(probes[1]!.message, { from: A, group: true, now: 5 }),
    [],
  );
  assert.deepEqual(
    a.receive({ ...probes[1]!.message, id: 9 }, {
      from: { address: "203.0.113.9", port: 1 },
      group: true,
      now: 5,
    }),
    [],
  );
  const [result] = a.results();
  assert.equal(result!.unicast.answered, 1);
  assert.equal(result!.unicast.dups, 1);
  assert.deepEqual(result!.unicast.rtt, { min: 2, avg: 2, max: 2 });
});

Deno.test("CheckSession: the first round waits for phaseMs after the peers are up, then rounds keep the interval", () => {
  const a = new CheckSession(options(1, B, { phaseMs: 30 }), 0);
  const hello = a.tick(0);
  assert.deepEqual(hello.map((o) => o.message.kind), ["hello"]);
  a.receive({
    kind: "hello-answer",
    multicast: false,
    ttl: 0,
    id: 2,
    seq: 0,
    count: 3,
    time: 0,
  }, { from: B, group: false, now: 5 });
  // Up at 10: the first round is due at 40, not at once.
  assert.deepEqual(a.tick(10), []);
  assert.equal(a.nextWake(10), 40);
  assert.deepEqual(a.tick(39), []);
  const round = a.tick(40);
  assert.deepEqual(
    round.map((o) => [o.message.kind, o.message.multicast, o.message.seq]),
    [["probe", false, 0], ["probe", true, 0]],
  );
  assert.equal(a.nextWake(40), 140);
});
