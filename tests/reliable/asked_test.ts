import assert from "node:assert/strict";
import { AskedSequences, SequenceSet } from "../../lib/reliable/asked.ts";

Deno.test("AskedSequences keeps the last time each sequence was asked for, as ranges", () => {
  const asked = new AskedSequences();
  asked.mark([{ first: 10, last: 19 }, { first: 30, last: 30 }], 1);
  assert.equal(asked.size, 11);
  // A later NACK over part of a range splits it.
  asked.mark([{ first: 12, last: 14 }, { first: 18, last: 31 }], 2);
  assert.deepEqual(asked.ranges, [
    { first: 10, last: 11, at: 1 },
    { first: 12, last: 14, at: 2 },
    { first: 15, last: 17, at: 1 },
    { first: 18, last: 31, at: 2 },
  ]);
  assert.equal(asked.size, 22);
  // Delivered sequences are forgotten.
  asked.dropThrough(12);
  assert.deepEqual(asked.ranges[0], { first: 13, last: 14, at: 2 });
  assert.equal(asked.size, 19);
  asked.dropThrough(31);
  assert.deepEqual(asked.ranges, []);
  assert.equal(asked.size, 0);
  asked.mark([{ first: 40, last: 65_575 }], 3);
  assert.equal(asked.size, 65_536);
  assert.equal(asked.ranges.length, 1);
  asked.clear();
  assert.equal(asked.size, 0);
});

Deno.test("SequenceSet holds a window's width of sequences in one range", () => {
  const lost = new SequenceSet();
  lost.add(100, 65_635);
  lost.add(5, 7);
  lost.add(8, 9);
  lost.add(70_000, 70_000);
  assert.deepEqual(lost.ranges, [
    { first: 5, last: 9 },
    { first: 100, last: 65_635 },
    { first: 70_000, last: 70_000 },
  ]);
  assert.equal(lost.has(4), false);
  assert.equal(lost.has(5), true);
  assert.equal(lost.has(50), false);
  assert.equal(lost.has(65_635), true);
  assert.equal(lost.has(65_636), false);
  assert.equal(lost.has(70_000), true);
  // Overlapping and bridging ranges merge.
  lost.add(9, 100);
  assert.deepEqual(lost.ranges, [
    { first: 5, last: 65_635 },
    { first: 70_000, last: 70_000 },
  ]);
  lost.dropThrough(6);
  assert.deepEqual(lost.ranges[0], { first: 7, last: 65_635 });
  lost.dropThrough(69_999);
  assert.deepEqual(lost.ranges, [{ first: 70_000, last: 70_000 }]);
  lost.clear();
  assert.equal(lost.has(70_000), false);
});
