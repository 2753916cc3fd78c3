import assert from "node:assert/strict";
import type { Peer } from "../../lib/net/address.ts";
import { NetworkError } from "../../lib/errors.ts";
import { MemoryEndpoint, MemoryNetwork } from "../../lib/net/memory_net.ts";
import type { Datagram } from "../../lib/net/socket.ts";
import { within } from "../_fakes.ts";

const GROUP = "239.7.0.1";
const OTHER_GROUP = "239.7.0.2";
const PORT = 10400;

function bytes(...values: number[]): Uint8Array {
  return new Uint8Array(values);
}

/** A payload holding `n` as a 32-bit big-endian integer. */
function numbered(n: number): Uint8Array {
  const payload = new Uint8Array(4);
  new DataView(payload.buffer).setUint32(0, n);
  return payload;
}

function numberOf(datagram: Datagram | null): number {
  assert.ok(datagram, "expected a datagram, got null");
  assert.equal(datagram.payload.byteLength, 4);
  return new DataView(datagram.payload.buffer).getUint32(0);
}

/** Receives exactly `count` datagrams, failing after 2 s. */
async function receiveN(
  endpoint: MemoryEndpoint,
  count: number,
): Promise<Datagram[]> {
  const got: Datagram[] = [];
  await within(
    2000,
    (async () => {
      while (got.length < count) {
        const datagram = await endpoint.receive();
        assert.ok(datagram, `closed after ${got.length} of ${count}`);
        got.push(datagram);
      }
    })(),
  );
  return got;
}

/**
 * Resolves once everything sent so far has been delivered: a marker sent
 * last to a fresh endpoint arrives after every earlier datagram.
 */
async function settled(network: MemoryNetwork): Promise<void> {
  const probe = network.open({ address: "127.0.0.1" });
  try {
    await probe.send(bytes(0), probe.local);
    assert.ok(await within(2000, probe.receive()));
  } finally {
    probe.close();
  }
}

function assertNetworkError(error: unknown, message: string): true {
  assert.ok(error instanceof NetworkError, `not a NetworkError: ${error}`);
  assert.equal(error.message, message);
  assert.equal(error.exitCode, 1);
  return true;
}

Deno.test("multicast fans out one copy to each of 20 members, in order", async () => {
  using network = new MemoryNetwork();
  const sender = network.open({ address: "127.0.0.1" });
  assert.deepEqual(sender.local, { address: "127.0.0.1", port: 40000 });
  const members: MemoryEndpoint[] = [];
  for (let i = 0; i < 20; i++) {
    const member = network.open({ address: GROUP, port: PORT });
    member.join(GROUP);
    members.push(member);
  }
  for (let n = 0; n < 3; n++) {
    await sender.send(numbered(n), { address: GROUP, port: PORT });
  }
  assert.equal(sender.sent, 3);
  const payloads: Uint8Array[] = [];
  for (const member of members) {
    const got = await receiveN(member, 3);
    assert.deepEqual(got.map(numberOf), [0, 1, 2]);
    for (const datagram of got) {
      assert.deepEqual(datagram.from, { address: "127.0.0.1", port: 40000 });
      payloads.push(datagram.payload);
    }
    assert.equal(member.received, 3);
    assert.equal(member.queued, 0);
  }
  // Each member got its own copy.
  assert.equal(new Set(payloads).size, 60);
  payloads[0]![0] = 0xff;
  assert.equal(payloads[3]![0], 0);
  // The sender did not join: no loopback copy.
  assert.equal(sender.received, 0);
  assert.equal(network.dropped, 0);
});

Deno.test("a sender that joined its group gets its own datagrams (loopback)", async () => {
  using network = new MemoryNetwork();
  const sender = network.open({ address: GROUP, port: PORT });
  sender.join(GROUP);
  const member = network.open({ address: GROUP, port: PORT });
  member.join(GROUP);
  await sender.send(bytes(7), { address: GROUP, port: PORT });
  const [own] = await receiveN(sender, 1);
  const [other] = await receiveN(member, 1);
  assert.deepEqual(own, {
    payload: bytes(7),
    from: { address: GROUP, port: PORT },
  });
  assert.deepEqual(other, own);
});

Deno.test("groups and ports are isolated; leave stops delivery", async () => {
  using network = new MemoryNetwork();
  const sender = network.open({ address: "127.0.0.1" });
  const member = network.open({ address: GROUP, port: PORT });
  member.join(GROUP);
  const otherGroup = network.open({ address: OTHER_GROUP, port: PORT });
  otherGroup.join(OTHER_GROUP);
  const otherPort = network.open({ address: GROUP, port: PORT + 1 });
  otherPort.join(GROUP);
  const notJoined = network.open({ address: GROUP, port: PORT });
  const leaver = network.open({ address: GROUP, port: PORT });
  leaver.join(GROUP);
  leaver.join(GROUP);

  await sender.send(bytes(1), { address: GROUP, port: PORT });
  leaver.leave(GROUP);
  leaver.leave(OTHER_GROUP); // not joined: nothing happens
  await sender.send(bytes(2), { address: GROUP, port: PORT });
  await sender.send(bytes(3), { address: OTHER_GROUP, port: PORT });
  await sender.send(bytes(4), { address: GROUP, port: PORT + 1 });
  // Membership counts at delivery: a join right after send() still gets it.
  const sent = sender.send(bytes(5), { address: GROUP, port: PORT });
  notJoined.join(GROUP);
  await sent;
  await settled(network);

  assert.deepEqual(
    (await receiveN(member, 3)).map((d) => d.payload[0]),
    [1, 2, 5],
  );
  assert.deepEqual(
    (await receiveN(otherGroup, 1)).map((d) => d.payload[0]),
    [3],
  );
  assert.deepEqual(
    (await receiveN(otherPort, 1)).map((d) => d.payload[0]),
    [4],
  );
  assert.deepEqual(
    (await receiveN(leaver, 1)).map((d) => d.payload[0]),
    [1],
  );
  assert.deepEqual(
    (await receiveN(notJoined, 1)).map((d) => d.payload[0]),
    [5],
  );
  for (const endpoint of [member, otherGroup, otherPort, leaver, notJoined]) {
    assert.equal(endpoint.queued, 0);
  }
  assert.equal(
    member.received + otherGroup.received + otherPort.received +
      leaver.received + notJoined.received,
    7,
  );
});

Deno.test("IPv6 groups match in canonical form", async () => {
  using network = new MemoryNetwork();
  const sender = network.open({ address: "FE80::1" });
  assert.deepEqual(sender.local, { address: "fe80::1", port: 40000 });
  const member = network.open({ address: "ff02::1:3", port: PORT });
  member.join("FF02:0:0::1:3");
  await sender.send(bytes(6), { address: "ff02::0001:3", port: PORT });
  const [got] = await receiveN(member, 1);
  assert.deepEqual(got, {
    payload: bytes(6),
    from: { address: "fe80::1", port: 40000 },
  });
});

Deno.test("unicast goes to the bound address, the last bound, else the wildcard", async () => {
  using network = new MemoryNetwork();
  const sender = network.open({ address: "127.0.0.1" });
  const first = network.open({ address: "127.0.0.1", port: PORT });
  const last = network.open({ address: "127.0.0.1", port: PORT });
  const wildcard = network.open({ address: "0.0.0.0", port: PORT });
  const groupBound = network.open({ address: GROUP, port: PORT });
  groupBound.join(GROUP);
  const onlyWildcard = network.open({ address: "0.0.0.0", port: PORT + 1 });

  await sender.send(bytes(1), { address: "127.0.0.1", port: PORT });
  await sender.send(bytes(2), { address: "127.0.0.2", port: PORT });
  await sender.send(bytes(3), { address: "127.0.0.1", port: PORT + 1 });
  await sender.send(bytes(4), { address: "127.0.0.1", port: PORT + 2 });
  await sender.send(bytes(5), { address: "::1", port: PORT + 1 });
  await settled(network);

  assert.deepEqual((await receiveN(last, 1))[0]!.payload, bytes(1));
  assert.deepEqual((await receiveN(wildcard, 1))[0]!.payload, bytes(2));
  assert.deepEqual((await receiveN(onlyWildcard, 1))[0]!.payload, bytes(3));
  // 4: nobody on that port; 5: IPv6, no IPv6 wildcard. Dropped silently,
  // and not counted as queue drops.
  assert.equal(first.received, 0);
  assert.equal(groupBound.received, 0);
  assert.equal(wildcard.received + onlyWildcard.received + last.received, 3);
  assert.equal(network.dropped, 0);
  assert.equal(sender.sent, 5);

  // A reply to `from` reaches the sender.
  await sender.send(bytes(9), { address: "127.0.0.1", port: PORT });
  const [request] = await receiveN(last, 1);
  await last.send(bytes(10), request!.from);
  assert.deepEqual((await receiveN(sender, 1))[0], {
    payload: bytes(10),
    from: { address: "127.0.0.1", port: PORT },
  });
});

Deno.test("ephemeral ports count up from 40000 and skip ports in use", () => {
  using network = new MemoryNetwork();
  const a = network.open({ address: "127.0.0.1" });
  network.open({ address: "127.0.0.1", port: 40001 });
  const c = network.open({ address: "127.0.0.1", port: 0 });
  const d = network.open({ address: "::1" });
  assert.deepEqual(
    [a.local.port, c.local.port, d.local.port],
    [40000, 40002, 40003],
  );
  assert.equal(network.endpoints, 4);
});

Deno.test("delivery happens after send() returns, not during it", async () => {
  using network = new MemoryNetwork();
  const sender = network.open({ address: "127.0.0.1" });
  const receiver = network.open({ address: "127.0.0.1", port: PORT });
  const seen: (Datagram | null)[] = [];
  const pending = receiver.receive().then((datagram) => seen.push(datagram));
  const sent = sender.send(bytes(1), receiver.local);
  assert.equal(receiver.received, 0);
  await sent;
  assert.equal(seen.length, 0);
  await within(2000, pending);
  assert.equal(receiver.received, 1);
  assert.deepEqual(seen[0]?.payload, bytes(1));
});

Deno.test("a full queue drops new datagrams and counts them", async () => {
  using network = new MemoryNetwork({ queueLimit: 10 });
  assert.equal(network.queueLimit, 10);
  const sender = network.open({ address: "127.0.0.1" });
  const a = network.open({ address: GROUP, port: PORT });
  const b = network.open({ address: GROUP, port: PORT });
  a.join(GROUP);
  b.join(GROUP);
  for (let n = 0; n < 15; n++) {
    await sender.send(numbered(n), { address: GROUP, port: PORT });
  }
  await settled(network);
  assert.equal(a.queued, 10);
  assert.equal(a.received, 10);
  assert.equal(a.dropped, 5);
  assert.equal(b.dropped, 5);
  assert.equal(network.dropped, 10);
  // The oldest ten stay; the newest were dropped.
  assert.deepEqual(
    (await receiveN(a, 10)).map(numberOf),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  // Room again.
  await sender.send(numbered(15), { address: GROUP, port: PORT });
  assert.equal(numberOf((await receiveN(a, 1))[0]!), 15);
  assert.equal(a.dropped, 5);
  assert.equal(b.dropped, 6);
  assert.equal(network.dropped, 11);
});

Deno.test("a paused endpoint queues, drops beyond the limit, and resumes", async () => {
  using network = new MemoryNetwork({ queueLimit: 4 });
  const sender = network.open({ address: "127.0.0.1" });
  const slow = network.open({ address: GROUP, port: PORT });
  const fast = network.open({ address: GROUP, port: PORT });
  slow.join(GROUP);
  fast.join(GROUP);
  slow.pause();
  assert.equal(slow.paused, true);
  let resolved = false;
  const pending = slow.receive().then((datagram) => {
    resolved = true;
    return datagram;
  });
  const fastReading = receiveN(fast, 6);
  for (let n = 0; n < 6; n++) {
    await sender.send(numbered(n), { address: GROUP, port: PORT });
  }
  // The fast member has everything, so delivery has happened.
  assert.deepEqual((await fastReading).map(numberOf), [0, 1, 2, 3, 4, 5]);
  assert.equal(fast.dropped, 0);
  assert.equal(resolved, false);
  assert.equal(slow.queued, 4);
  assert.equal(slow.dropped, 2);
  assert.equal(network.dropped, 2);

  slow.resume();
  assert.equal(numberOf(await within(2000, pending)), 0);
  assert.deepEqual((await receiveN(slow, 3)).map(numberOf), [1, 2, 3]);
  assert.equal(slow.queued, 0);
  assert.equal(slow.received, 4);
});

Deno.test("several waiting receive() calls are served in call order", async () => {
  using network = new MemoryNetwork();
  const sender = network.open({ address: "127.0.0.1" });
  const receiver = network.open({ address: "127.0.0.1", port: PORT });
  const waits = [receiver.receive(), receiver.receive(), receiver.receive()];
  for (let n = 0; n < 3; n++) await sender.send(numbered(n), receiver.local);
  const got = await within(2000, Promise.all(waits));
  assert.deepEqual(got.map(numberOf), [0, 1, 2]);
});

Deno.test("close: waiting and later receive() give null, send rejects, in-flight datagrams are dropped", async () => {
  using network = new MemoryNetwork();
  const sender = network.open({ address: "127.0.0.1" });
  const receiver = network.open({ address: GROUP, port: PORT });
  receiver.join(GROUP);
  const waiting = receiver.receive();
  receiver.close();
  assert.equal(await within(2000, waiting), null);
  assert.equal(await receiver.receive(), null);
  assert.equal(receiver.closed, true);
  receiver.close(); // twice is fine

  await assert.rejects(
    receiver.send(bytes(1), { address: GROUP, port: PORT }),
    (error) =>
      assertNetworkError(
        error,
        "Cannot send to 239.7.0.1:10400: endpoint is closed",
      ),
  );
  assert.throws(
    () => receiver.join(GROUP),
    (error) =>
      assertNetworkError(error, "Cannot join 239.7.0.1: endpoint is closed"),
  );

  // Sent while open, closed before delivery: dropped.
  const late = network.open({ address: "127.0.0.1", port: PORT });
  const sent = sender.send(bytes(2), late.local);
  late.close();
  await sent;
  await settled(network);
  assert.equal(late.received, 0);
  assert.equal(await late.receive(), null);

  // Queued datagrams are discarded on close.
  const queued = network.open({ address: "127.0.0.1", port: PORT });
  await sender.send(bytes(3), queued.local);
  await settled(network);
  assert.equal(queued.queued, 1);
  queued.close();
  assert.equal(queued.queued, 0);
  assert.equal(await queued.receive(), null);

  assert.equal(network.endpoints, 1);
  network.close();
  assert.equal(network.endpoints, 0);
  assert.equal(sender.closed, true);
});

Deno.test("a paused endpoint's waiting receive() gives null on close", async () => {
  using network = new MemoryNetwork();
  const receiver = network.open({ address: "127.0.0.1", port: PORT });
  receiver.pause();
  const waiting = receiver.receive();
  receiver.close();
  assert.equal(await within(2000, waiting), null);
});

Deno.test("bad addresses, ports and sizes are NetworkErrors", async () => {
  using network = new MemoryNetwork();
  assert.throws(
    () => network.open({ address: "localhost", port: PORT }),
    (error) =>
      assertNetworkError(
        error,
        "Cannot bind localhost:10400: not an IP address",
      ),
  );
  assert.throws(
    () => network.open({ address: "127.0.0.1", port: 65536 }),
    (error) =>
      assertNetworkError(error, "Cannot bind 127.0.0.1:65536: invalid port"),
  );
  const endpoint = network.open({ address: "127.0.0.1" });
  assert.throws(
    () => endpoint.join("127.0.0.1"),
    (error) =>
      assertNetworkError(
        error,
        "Cannot join 127.0.0.1: not a multicast address",
      ),
  );
  const cases: [Peer, Uint8Array, string][] = [
    [
      { address: "example.org", port: PORT },
      bytes(1),
      "Cannot send to example.org:10400: not an IP address",
    ],
    [
      { address: "::1", port: 0 },
      bytes(1),
      "Cannot send to [::1]:0: invalid port",
    ],
    [
      { address: "127.0.0.1", port: PORT },
      new Uint8Array(65508),
      "Cannot send to 127.0.0.1:10400: message too long (65508 bytes, at most 65507)",
    ],
  ];
  for (const [to, payload, message] of cases) {
    await assert.rejects(
      endpoint.send(payload, to),
      (error) => assertNetworkError(error, message),
    );
  }
  assert.equal(endpoint.sent, 0);
  await endpoint.send(new Uint8Array(65507), { address: "127.0.0.1", port: 1 });
  assert.equal(endpoint.sent, 1);
  assert.throws(
    () => new MemoryNetwork({ queueLimit: 0 }),
    new RangeError("Invalid queueLimit 0: not a positive integer"),
  );
});

Deno.test("order is preserved for 10,000 datagrams per sender, interleaved", async () => {
  // Two senders that never wait deliver two datagrams per microtask turn,
  // while the reader takes one per turn: give it room for the backlog.
  using network = new MemoryNetwork({ queueLimit: 20_000 });
  const a = network.open({ address: "127.0.0.1" });
  const b = network.open({ address: "127.0.0.2" });
  const receiver = network.open({ address: GROUP, port: PORT });
  receiver.join(GROUP);
  const to = { address: GROUP, port: PORT };
  const total = 10_000;
  const reading = receiveN(receiver, 2 * total);
  async function run(sender: MemoryEndpoint): Promise<void> {
    for (let n = 0; n < total; n++) await sender.send(numbered(n), to);
  }
  await Promise.all([run(a), run(b)]);
  const got = await reading;
  const next = new Map([["127.0.0.1", 0], ["127.0.0.2", 0]]);
  let switches = 0;
  let previous = "";
  for (const datagram of got) {
    const from = datagram.from.address;
    if (from !== previous) switches++;
    previous = from;
    assert.equal(numberOf(datagram), next.get(from));
    next.set(from, next.get(from)! + 1);
  }
  assert.deepEqual([...next.values()], [total, total]);
  assert.ok(switches > 1000, `senders did not interleave: ${switches}`);
  assert.equal(receiver.received, 2 * total);
  assert.equal(network.dropped, 0);
});

Deno.test("order is preserved for 10,000 datagrams sent without waiting", async () => {
  using network = new MemoryNetwork({ queueLimit: 10_000 });
  const sender = network.open({ address: "127.0.0.1" });
  const receiver = network.open({ address: "127.0.0.1", port: PORT });
  const sends: Promise<void>[] = [];
  for (let n = 0; n < 10_000; n++) {
    sends.push(sender.send(numbered(n), receiver.local));
  }
  await Promise.all(sends);
  await settled(network);
  assert.equal(receiver.queued, 10_000);
  const got = await receiveN(receiver, 10_000);
  got.forEach((datagram, n) => assert.equal(numberOf(datagram), n));
  assert.equal(receiver.queued, 0);
});
