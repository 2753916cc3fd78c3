import assert from "node:assert/strict";
import { TokenBucket, Yielder } from "../../lib/reliable/schedule.ts";

/** A clock the test moves by hand, in milliseconds. */
function manualClock(start = 1000) {
  const clock = { now: start, read: () => clock.now };
  return clock;
}

Deno.test("Yielder.yield resolves after pending microtasks, in call order", async () => {
  const yielder = new Yielder();
  try {
    const order: string[] = [];
    const first = yielder.yield().then(() => order.push("yield 1"));
    const second = yielder.yield().then(() => order.push("yield 2"));
    queueMicrotask(() => order.push("microtask"));
    Promise.resolve().then(() => order.push("promise"));
    await Promise.all([first, second]);
    assert.deepEqual(order, ["microtask", "promise", "yield 1", "yield 2"]);
  } finally {
    yielder.close();
  }
});

Deno.test("Yielder lets timers run between yields, without a 4 ms clamp", async () => {
  const yielder = new Yielder();
  try {
    let fired = false;
    const timer = setTimeout(() => fired = true, 0);
    let turns = 0;
    while (!fired && turns < 100_000) {
      await yielder.yield();
      turns += 1;
    }
    clearTimeout(timer);
    assert.equal(fired, true, `timer never ran in ${turns} yields`);
    // 1,000 yields: clamped timeouts would take 4 s.
    const start = performance.now();
    for (let k = 0; k < 1000; k++) await yielder.yield();
    const elapsed = performance.now() - start;
    assert.ok(elapsed < 1000, `1,000 yields took ${elapsed.toFixed(0)} ms`);
  } finally {
    yielder.close();
  }
});

Deno.test("Yielder.close resolves pending yields", async () => {
  const yielder = new Yielder();
  let resolved = 0;
  const pending = [yielder.yield(), yielder.yield()].map((p) =>
    p.then(() => resolved += 1)
  );
  yielder.close();
  await Promise.all(pending);
  assert.equal(resolved, 2);
});

Deno.test("TokenBucket: a full burst, then waits of debt / rate", () => {
  const clock = manualClock();
  const bucket = new TokenBucket({
    perSecond: 100,
    burst: 10,
    now: clock.read,
  });
  assert.equal(bucket.take(10), 0);
  // 5 tokens short at 100 per second: 50 ms.
  assert.equal(bucket.take(5), 50);
  clock.now += 50;
  // Refilled to 0: spending 0 costs nothing, 1 more waits 10 ms.
  assert.equal(bucket.take(0), 0);
  assert.equal(bucket.take(1), 10);
  // In debt, another spend adds to the wait.
  assert.equal(bucket.take(2), 30);
});

Deno.test("TokenBucket refills at the rate, up to the burst", () => {
  const clock = manualClock();
  const bucket = new TokenBucket({
    perSecond: 1000,
    burst: 100,
    now: clock.read,
  });
  assert.equal(bucket.take(100), 0);
  clock.now += 25;
  assert.equal(bucket.take(25), 0);
  assert.equal(bucket.take(1), 1);
  // A long idle time refills the burst, no more.
  clock.now += 60_000;
  assert.equal(bucket.take(100), 0);
  assert.equal(bucket.take(50), 50);
});

Deno.test("TokenBucket burst: a tenth of a second by default, at least minBurst", () => {
  const clock = manualClock();
  // 1,000 per second: bursts of 100.
  const tenth = new TokenBucket({ perSecond: 1000, now: clock.read });
  assert.equal(tenth.take(100), 0);
  assert.equal(tenth.take(1), 1);
  // 10 bytes per second with datagrams of 1,400 bytes: one datagram may go.
  const small = new TokenBucket({
    perSecond: 10,
    minBurst: 1400,
    now: clock.read,
  });
  assert.equal(small.take(1400), 0);
  assert.equal(small.take(10), 1000);
  // Without minBurst the smallest burst is 1.
  const one = new TokenBucket({ perSecond: 5, now: clock.read });
  assert.equal(one.take(1), 0);
  assert.equal(one.take(1), 200);
});

Deno.test("TokenBucket paces a steady stream at the rate", () => {
  const clock = manualClock(0);
  const bucket = new TokenBucket({ perSecond: 200, burst: 1, now: clock.read });
  // Send 1,000 items, sleeping as told: it takes 5 s on the clock.
  for (let k = 0; k < 1000; k++) clock.now += bucket.take(1);
  assert.ok(Math.abs(clock.now - 4995) < 1e-6, `${clock.now} ms`);
});

Deno.test("TokenBucket uses performance.now without a clock", () => {
  const bucket = new TokenBucket({ perSecond: 1_000_000, burst: 10 });
  assert.equal(bucket.take(10), 0);
  const wait = bucket.take(1_000_000);
  assert.ok(wait > 900 && wait <= 1000, `${wait} ms`);
});

Deno.test("TokenBucket.tryTake spends only what there is, never into debt", () => {
  const clock = manualClock();
  const bucket = new TokenBucket({
    perSecond: 100,
    burst: 10,
    now: clock.read,
  });
  assert.equal(bucket.tryTake(4), true);
  assert.equal(bucket.tryTake(6), true);
  // Empty: refused, and nothing is spent (no debt to wait out).
  assert.equal(bucket.tryTake(1), false);
  assert.equal(bucket.tryTake(1), false);
  assert.equal(bucket.take(0), 0);
  // 10 ms at 100 per second: one token.
  clock.now += 10;
  assert.equal(bucket.tryTake(2), false);
  assert.equal(bucket.tryTake(1), true);
  assert.equal(bucket.tryTake(1), false);
  // Nothing costs nothing, even when empty.
  assert.equal(bucket.tryTake(0), true);
  // Refilled at the rate, up to the burst.
  clock.now += 35;
  assert.equal(bucket.tryTake(4), false);
  assert.equal(bucket.tryTake(3), true);
  clock.now += 60_000;
  assert.equal(bucket.tryTake(10), true);
  assert.equal(bucket.tryTake(1), false);
});

Deno.test("TokenBucket.tryTake never succeeds for more than the burst", () => {
  const clock = manualClock();
  const bucket = new TokenBucket({
    perSecond: 4096,
    minBurst: 1400,
    now: clock.read,
  });
  // 4 KiB/s with 1,400-byte datagrams: the burst is 1,400.
  clock.now += 3_600_000;
  assert.equal(bucket.tryTake(1401), false);
  assert.equal(bucket.tryTake(1400), true);
  assert.equal(bucket.tryTake(1), false);
});

Deno.test("TokenBucket.tryTake and take share the tokens", () => {
  const clock = manualClock();
  const bucket = new TokenBucket({
    perSecond: 100,
    burst: 10,
    now: clock.read,
  });
  // take goes 5 into debt (50 ms); tryTake refuses until it is paid.
  assert.equal(bucket.take(15), 50);
  clock.now += 40;
  assert.equal(bucket.tryTake(0), false);
  clock.now += 10;
  assert.equal(bucket.tryTake(0), true);
  assert.equal(bucket.tryTake(1), false);
  clock.now += 30;
  assert.equal(bucket.tryTake(3), true);
  // What tryTake spent, take waits for.
  assert.equal(bucket.take(1), 10);
});
