import assert from "node:assert/strict";
import { formatRanges, rangesSize, toRanges } from "../lib/ranges.ts";

Deno.test("toRanges collapses ascending numbers into inclusive ranges", () => {
  assert.deepEqual(toRanges([]), []);
  assert.deepEqual(toRanges([5]), [{ first: 5, last: 5 }]);
  assert.deepEqual(toRanges([1, 2, 3, 7, 9, 10]), [
    { first: 1, last: 3 },
    { first: 7, last: 7 },
    { first: 9, last: 10 },
  ]);
  assert.deepEqual(toRanges([0, 2, 4]), [
    { first: 0, last: 0 },
    { first: 2, last: 2 },
    { first: 4, last: 4 },
  ]);
});

Deno.test("toRanges takes any iterable, and sequence numbers up to 2^53-1", () => {
  assert.deepEqual(toRanges(new Set([4, 5, 6])), [{ first: 4, last: 6 }]);
  function* numbers(): Generator<number> {
    for (let n = 10; n < 20; n++) if (n !== 15) yield n;
  }
  assert.deepEqual(toRanges(numbers()), [
    { first: 10, last: 14 },
    { first: 16, last: 19 },
  ]);
  const max = Number.MAX_SAFE_INTEGER;
  assert.deepEqual(toRanges([max - 2, max - 1, max]), [
    { first: max - 2, last: max },
  ]);
});

Deno.test("toRanges stops at the limit; the last range still grows", () => {
  assert.deepEqual(toRanges([1, 2, 3, 7, 9, 10], 2), [
    { first: 1, last: 3 },
    { first: 7, last: 7 },
  ]);
  assert.deepEqual(toRanges([1, 2, 5, 6, 7, 9], 2), [
    { first: 1, last: 2 },
    { first: 5, last: 7 },
  ]);
  assert.deepEqual(toRanges([1, 3], 0), []);
  // A NACK carries at most 256 ranges: 300 gaps give 256.
  const odd = Array.from({ length: 300 }, (_, k) => 2 * k + 1);
  const ranges = toRanges(odd, 256);
  assert.equal(ranges.length, 256);
  assert.deepEqual(ranges.at(-1), { first: 511, last: 511 });
});

Deno.test("toRanges stops reading the iterable once the limit is reached", () => {
  let read = 0;
  function* counted(): Generator<number> {
    for (const n of [1, 3, 5, 7, 9]) {
      read += 1;
      yield n;
    }
  }
  assert.deepEqual(toRanges(counted(), 2), [
    { first: 1, last: 1 },
    { first: 3, last: 3 },
  ]);
  assert.equal(read, 3);
});

Deno.test("rangesSize counts the numbers in inclusive ranges", () => {
  assert.equal(rangesSize([]), 0);
  assert.equal(rangesSize([{ first: 4, last: 4 }]), 1);
  assert.equal(
    rangesSize([{ first: 1, last: 3 }, { first: 7, last: 7 }, {
      first: 9,
      last: 10,
    }]),
    6,
  );
  assert.equal(rangesSize(toRanges([2, 3, 4, 8, 9])), 5);
  assert.equal(
    rangesSize([{ first: 1, last: Number.MAX_SAFE_INTEGER }]),
    Number.MAX_SAFE_INTEGER,
  );
});

Deno.test("formatRanges writes ranges for people", () => {
  assert.equal(formatRanges([]), "none");
  assert.equal(formatRanges([{ first: 9, last: 9 }]), "9");
  assert.equal(formatRanges([{ first: 3, last: 5 }]), "3-5");
  assert.equal(
    formatRanges([{ first: 3, last: 5 }, { first: 9, last: 9 }, {
      first: 11,
      last: 20,
    }]),
    "3-5, 9, 11-20",
  );
  assert.equal(formatRanges(toRanges([1, 2, 3, 7, 9, 10])), "1-3, 7, 9-10");
});
