import assert from "node:assert/strict";
import type { Peer } from "../../lib/net/address.ts";
import {
  type FaultOptions,
  type FaultyEndpoint,
  seededRandom,
  withFaults,
} from "../../lib/net/fault.ts";
import { MemoryNetwork } from "../../lib/net/memory_net.ts";
import type { Datagram, DatagramEndpoint } from "../../lib/net/socket.ts";
import { within } from "../_fakes.ts";

const LOCAL: Peer = { address: "127.0.0.1", port: 10500 };
const SOURCE: Peer = { address: "127.0.0.1", port: 41000 };

/** A payload holding `n` as a 32-bit big-endian integer. */
function numbered(n: number): Uint8Array {
  const payload = new Uint8Array(4);
  new DataView(payload.buffer).setUint32(0, n);
  return payload;
}

function numberOf(datagram: Datagram): number {
  return new DataView(datagram.payload.buffer).getUint32(0);
}

/**
 * Resolves once every microtask queued so far, and every one those queue,
 * has run: memory delivery and the shim's pulls are microtasks only.
 */
function microtasksDrained(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * An endpoint that yields datagrams numbered 0 to count - 1, then `null`
 * (as if closed), so that a stream has a definite end.
 */
class CountingEndpoint implements DatagramEndpoint {
  readonly local: Peer = LOCAL;
  readonly sent: { payload: Uint8Array; to: Peer }[] = [];
  closed = false;
  #next = 0;
  #count: number;

  constructor(count: number) {
    this.#count = count;
  }

  send(payload: Uint8Array, to: Peer): Promise<void> {
    this.sent.push({ payload, to });
    return Promise.resolve();
  }

  receive(): Promise<Datagram | null> {
    if (this.closed || this.#next >= this.#count) return Promise.resolve(null);
    const n = this.#next++;
    return Promise.resolve({ payload: numbered(n), from: SOURCE });
  }

  close(): void {
    this.closed = true;
  }
}

/** Runs `count` numbered datagrams through a shim; returns the output numbers. */
async function run(
  count: number,
  options: FaultOptions,
): Promise<{ output: number[]; endpoint: FaultyEndpoint }> {
  const endpoint = withFaults(new CountingEndpoint(count), options);
  const output: number[] = [];
  await within(
    10_000,
    (async () => {
      for (;;) {
        const datagram = await endpoint.receive();
        if (datagram === null) break;
        output.push(numberOf(datagram));
      }
    })(),
  );
  endpoint.close();
  return { output, endpoint };
}

/**
 * For each output position: how many datagrams that arrived later were
 * output before it, and how far it moved from its arrival position.
 */
function displacement(output: number[]): { overtaken: number; moved: number } {
  let overtaken = 0;
  let moved = 0;
  output.forEach((n, position) => {
    moved = Math.max(moved, Math.abs(position - n));
    let later = 0;
    for (let p = Math.max(0, position - 64); p < position; p++) {
      if (output[p]! > n) later++;
    }
    overtaken = Math.max(overtaken, later);
  });
  return { overtaken, moved };
}

Deno.test("seededRandom is mulberry32: fixed values, in [0, 1), uniform", () => {
  const random = seededRandom(42);
  const first = [random(), random(), random()];
  assert.deepEqual(first, [
    0.6011037519201636,
    0.44829055899754167,
    0.8524657934904099,
  ]);
  const again = seededRandom(42);
  assert.deepEqual([again(), again(), again()], first);
  assert.notEqual(seededRandom(43)(), first[0]);
  // The seed is taken as a 32-bit unsigned integer.
  assert.equal(seededRandom(42 + 2 ** 32)(), first[0]);
  let sum = 0;
  let low = 1;
  let high = 0;
  for (let i = 0; i < 100_000; i++) {
    const value = random();
    sum += value;
    low = Math.min(low, value);
    high = Math.max(high, value);
  }
  assert.ok(low >= 0 && high < 1, `${low} ${high}`);
  assert.ok(Math.abs(sum / 100_000 - 0.5) < 0.005, `mean ${sum / 100_000}`);
});

Deno.test("10% loss over 100,000 datagrams: exact count for the seed, near the rate", async () => {
  const { output, endpoint } = await run(100_000, { seed: 1, loss: 0.1 });
  assert.deepEqual(endpoint.counters, {
    passed: 89_984,
    dropped: 10_016,
    duplicated: 0,
    reordered: 0,
  });
  assert.ok(Math.abs(10_016 / 100_000 - 0.1) < 0.005);
  assert.equal(output.length, 89_984);
  // Without duplication or reordering the survivors keep their order.
  for (let i = 1; i < output.length; i++) {
    assert.ok(output[i]! > output[i - 1]!, `out of order at ${i}`);
  }
});

Deno.test("5% duplication: copies follow their original, exact count", async () => {
  const { output, endpoint } = await run(100_000, { seed: 2, duplicate: 0.05 });
  assert.deepEqual(endpoint.counters, {
    passed: 100_000,
    dropped: 0,
    duplicated: 5_101,
    reordered: 0,
  });
  assert.equal(output.length, 105_101);
  let expected = 0;
  let copies = 0;
  for (let i = 0; i < output.length; i++) {
    if (i > 0 && output[i] === output[i - 1]) {
      copies++;
      continue;
    }
    assert.equal(output[i], expected);
    expected++;
  }
  assert.equal(expected, 100_000);
  assert.equal(copies, 5_101);
});

Deno.test("a duplicate is a separate copy of the payload", async () => {
  const inner = new CountingEndpoint(1);
  using endpoint = withFaults(inner, { seed: 3, duplicate: 1 });
  const a = await within(2000, endpoint.receive());
  const b = await within(2000, endpoint.receive());
  assert.ok(a && b);
  assert.deepEqual(a, b);
  assert.notEqual(a.payload, b.payload);
  a.payload[0] = 0xff;
  assert.equal(b.payload[0], 0);
  assert.equal(await endpoint.receive(), null);
});

Deno.test("reordering never displaces a datagram by more than `reorder`", async () => {
  const { output, endpoint } = await run(10_000, {
    seed: 4,
    reorder: 8,
    reorderRate: 0.5,
  });
  assert.deepEqual(endpoint.counters, {
    passed: 10_000,
    dropped: 0,
    duplicated: 0,
    reordered: 4_952,
  });
  assert.deepEqual(
    [...output].sort((a, b) => a - b),
    Array.from({ length: 10_000 }, (_, i) => i),
  );
  // The bound is reached, never exceeded.
  assert.deepEqual(displacement(output), { overtaken: 8, moved: 8 });
  let inversions = 0;
  for (let i = 1; i < output.length; i++) {
    if (output[i]! < output[i - 1]!) inversions++;
  }
  assert.equal(inversions, 3_990);
});

Deno.test("reorder 1 swaps neighbours only; the default rate holds a quarter back", async () => {
  const { output, endpoint } = await run(10_000, { seed: 5, reorder: 1 });
  assert.equal(endpoint.counters.reordered, 2_448);
  assert.deepEqual(displacement(output), { overtaken: 1, moved: 1 });
});

Deno.test("loss, duplication and reordering together stay within bounds", async () => {
  const { output, endpoint } = await run(10_000, {
    seed: 6,
    loss: 0.1,
    duplicate: 0.05,
    reorder: 8,
  });
  const { passed, dropped, duplicated, reordered } = endpoint.counters;
  assert.deepEqual([passed, dropped, duplicated, reordered], [
    9_055,
    945,
    466,
    2_384,
  ]);
  assert.equal(output.length, passed + duplicated);
  assert.equal(new Set(output).size, passed);
  // The reordering stage sees the stream after loss and duplication: each
  // survivor, then its copy if it was duplicated. Map the output onto
  // positions in that stream (a value's occurrences in order).
  const stream = [...output].sort((a, b) => a - b);
  const places = new Map<number, number[]>();
  stream.forEach((n, place) => {
    const list = places.get(n);
    if (list) list.push(place);
    else places.set(n, [place]);
  });
  const positions = output.map((n) => places.get(n)!.shift()!);
  assert.deepEqual(displacement(positions), { overtaken: 8, moved: 8 });
});

Deno.test("same seed and input, same output; another seed, another output", async () => {
  const options = { loss: 0.1, duplicate: 0.05, reorder: 8 };
  const a = await run(5_000, { seed: 7, ...options });
  const b = await run(5_000, { seed: 7, ...options });
  const c = await run(5_000, { seed: 8, ...options });
  assert.deepEqual(a.output, b.output);
  assert.deepEqual(a.endpoint.counters, b.endpoint.counters);
  assert.notDeepEqual(a.output, c.output);
  // Which datagrams are lost depends on the seed only.
  const lossOnly = await run(5_000, { seed: 7, loss: 0.1 });
  assert.deepEqual(
    lossOnly.output,
    [...new Set(a.output)].sort((x, y) => x - y),
  );
});

Deno.test("held datagrams are released when the stream stops", async () => {
  using network = new MemoryNetwork();
  const sender = network.open({ address: "127.0.0.1" });
  using receiver = withFaults(
    network.open({ address: "127.0.0.1", port: 10500 }),
    { seed: 9, reorder: 8, reorderRate: 1, holdMs: 5 },
  );
  for (let n = 0; n < 3; n++) await sender.send(numbered(n), receiver.local);
  // All three are held for 1-8 later datagrams, which never come: the idle
  // timer releases them.
  const got: number[] = [];
  for (let n = 0; n < 3; n++) {
    const datagram = await within(2000, receiver.receive());
    assert.ok(datagram);
    got.push(numberOf(datagram));
  }
  assert.deepEqual(got, [1, 0, 2]);
  assert.equal(receiver.counters.reordered, 3);

  // The stream goes on afterwards.
  await sender.send(numbered(3), receiver.local);
  const next = await within(2000, receiver.receive());
  assert.ok(next);
  assert.equal(numberOf(next), 3);
});

Deno.test("held datagrams are released when the wrapped endpoint closes", async () => {
  const { output, endpoint } = await run(3, {
    seed: 9,
    reorder: 8,
    reorderRate: 1,
    holdMs: 60_000,
  });
  assert.deepEqual(output, [1, 0, 2]);
  assert.equal(endpoint.counters.reordered, 3);
});

Deno.test("close releases a waiting receive() with null, clears the timer, closes the inner endpoint", async () => {
  using network = new MemoryNetwork();
  const sender = network.open({ address: "127.0.0.1" });
  const inner = network.open({ address: "127.0.0.1", port: 10500 });
  const receiver = withFaults(inner, {
    seed: 9,
    reorder: 8,
    reorderRate: 1,
    holdMs: 60_000,
  });
  await sender.send(numbered(0), receiver.local);
  // The datagram is held and the 60 s timer armed while this call waits;
  // the sanitizers fail the test if close() leaves the timer behind.
  const waiting = receiver.receive();
  await sender.send(numbered(1), receiver.local);
  await sender.send(numbered(2), receiver.local);
  await microtasksDrained();
  assert.equal(receiver.counters.passed, 3);
  receiver.close();
  assert.equal(await within(2000, waiting), null);
  assert.equal(inner.closed, true);
  assert.equal(await receiver.receive(), null);
  receiver.close();
});

Deno.test("send passes through unchanged, even with 100% loss", async () => {
  using network = new MemoryNetwork();
  const peer = network.open({ address: "127.0.0.1", port: 10501 });
  const inner = network.open({ address: "127.0.0.1", port: 10500 });
  using faulty = withFaults(inner, {
    seed: 10,
    loss: 1,
    duplicate: 1,
    reorder: 8,
  });
  assert.deepEqual(faulty.local, inner.local);
  for (let n = 0; n < 100; n++) await faulty.send(numbered(n), peer.local);
  const got: number[] = [];
  for (let n = 0; n < 100; n++) {
    const datagram = await within(2000, peer.receive());
    assert.ok(datagram);
    assert.deepEqual(datagram.from, { address: "127.0.0.1", port: 10500 });
    got.push(numberOf(datagram));
  }
  assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => i));
  assert.equal(inner.sent, 100);
  assert.deepEqual(faulty.counters, {
    passed: 0,
    dropped: 0,
    duplicated: 0,
    reordered: 0,
  });
  // And the receive path drops everything.
  await peer.send(numbered(0), faulty.local);
  await peer.send(numbered(1), faulty.local);
  const waiting = faulty.receive();
  await microtasksDrained();
  assert.equal(faulty.counters.dropped, 2);
  faulty.close();
  assert.equal(await waiting, null);
  const inner2 = new CountingEndpoint(0);
  await withFaults(inner2, { seed: 1 }).send(numbered(5), SOURCE);
  assert.deepEqual(inner2.sent, [{ payload: numbered(5), to: SOURCE }]);
});

Deno.test("an error from the wrapped receive() reaches the caller", async () => {
  const inner = new CountingEndpoint(0);
  inner.receive = () => Promise.reject(new Error("boom"));
  using endpoint = withFaults(inner, { seed: 1 });
  await assert.rejects(endpoint.receive(), new Error("boom"));
});

Deno.test("out-of-range options are RangeErrors", () => {
  const inner = new CountingEndpoint(0);
  const cases: [Partial<FaultOptions>, string][] = [
    [{ loss: 1.5 }, "Invalid loss 1.5: not between 0 and 1"],
    [{ duplicate: -0.1 }, "Invalid duplicate -0.1: not between 0 and 1"],
    [{ reorderRate: NaN }, "Invalid reorderRate NaN: not between 0 and 1"],
    [{ reorder: 2.5 }, "Invalid reorder 2.5: not a non-negative integer"],
    [{ holdMs: -1 }, "Invalid holdMs -1: not a duration"],
  ];
  for (const [options, message] of cases) {
    assert.throws(
      () => withFaults(inner, { seed: 1, ...options }),
      new RangeError(message),
    );
  }
});

Deno.test("1,000 multicast datagrams to 3 faulty receivers match their seeds", async () => {
  using network = new MemoryNetwork();
  const sender = network.open({ address: "127.0.0.1" });
  const group = { address: "239.7.0.3", port: 10502 };
  const options = { loss: 0.1, duplicate: 0.05, reorder: 8 };
  const receivers = [11, 12, 13].map((seed) => {
    const inner = network.open(group);
    inner.join(group.address);
    return withFaults(inner, { seed, ...options });
  });
  for (let n = 0; n < 1000; n++) await sender.send(numbered(n), group);
  for (const [i, receiver] of receivers.entries()) {
    // The same seed over a counting source gives the expected sequence.
    const { output: expected } = await run(1000, { seed: 11 + i, ...options });
    const got: number[] = [];
    for (let n = 0; n < expected.length; n++) {
      const datagram = await within(2000, receiver.receive());
      assert.ok(datagram);
      assert.deepEqual(datagram.from, sender.local);
      got.push(numberOf(datagram));
    }
    assert.deepEqual(got, expected);
    const { passed, dropped, duplicated } = receiver.counters;
    assert.equal(passed + dropped, 1000);
    assert.equal(passed + duplicated, expected.length);
    receiver.close();
  }
});
