import assert from "node:assert/strict";
import {
  formatRanges,
  mergeRanges,
  rangesSize,
  toRanges,
} from "../../lib/wire/ranges.ts";

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

Deno.test("mergeRanges sorts, merges overlapping and touching ranges, and clips", () => {
  const all = { first: 0, last: Number.MAX_SAFE_INTEGER };
  assert.deepEqual(mergeRanges([], all), []);
  assert.deepEqual(mergeRanges([{ first: 4, last: 7 }], all), [
    { first: 4, last: 7 },
  ]);
  // Out of order, overlapping (5-9 and 1-6), contained (2-3 in 1-6),
  // touching (10-12 after 9) and apart (20-30).
  assert.deepEqual(
    mergeRanges([
      { first: 20, last: 30 },
      { first: 5, last: 9 },
      { first: 2, last: 3 },
      { first: 1, last: 6 },
      { first: 10, last: 12 },
    ], all),
    [{ first: 1, last: 12 }, { first: 20, last: 30 }],
  );
  // A gap of one number keeps two ranges.
  assert.deepEqual(
    mergeRanges([{ first: 1, last: 3 }, { first: 5, last: 6 }], all),
    [{ first: 1, last: 3 }, { first: 5, last: 6 }],
  );
  // Clipped at both ends; ranges outside the bounds are dropped.
  assert.deepEqual(
    mergeRanges([
      { first: 5, last: 9 },
      { first: 1, last: 6 },
      { first: 20, last: 30 },
      { first: 40, last: 50 },
    ], { first: 2, last: 25 }),
    [{ first: 2, last: 9 }, { first: 20, last: 25 }],
  );
  assert.deepEqual(
    mergeRanges([{ first: 1, last: 4 }], { first: 5, last: 10 }),
    [],
  );
  // Bounds of one number; a range reversed (first > last) is empty.
  assert.deepEqual(
    mergeRanges([{ first: 0, last: 100 }, { first: 9, last: 3 }], {
      first: 7,
      last: 7,
    }),
    [{ first: 7, last: 7 }],
  );
  assert.deepEqual(
    mergeRanges([{ first: 9, last: 3 }], all),
    [],
  );
});

Deno.test("mergeRanges: 256 copies of one wide range are one range within the bounds", () => {
  // A hostile NACK or GONE: 256 ranges, each 0-2^52.
  const wide = Array.from({ length: 256 }, () => ({ first: 0, last: 2 ** 52 }));
  assert.deepEqual(mergeRanges(wide, { first: 1, last: 5_000 }), [
    { first: 1, last: 5_000 },
  ]);
  assert.equal(rangesSize(mergeRanges(wide, { first: 1, last: 5_000 })), 5_000);
  // Sequence numbers up to 2^53-1.
  const max = Number.MAX_SAFE_INTEGER;
  assert.deepEqual(
    mergeRanges([{ first: max - 1, last: max }, {
      first: max - 5,
      last: max - 2,
    }], {
      first: 0,
      last: max,
    }),
    [{ first: max - 5, last: max }],
  );
  // 256 single numbers, every other one, given backwards: 256 ranges.
  const odd = Array.from({ length: 256 }, (_, k) => ({
    first: 511 - 2 * k,
    last: 511 - 2 * k,
  }));
  const merged = mergeRanges(odd, { first: 0, last: 1_000 });
  assert.equal(merged.length, 256);
  assert.deepEqual(merged[0], { first: 1, last: 1 });
  assert.deepEqual(merged.at(-1), { first: 511, last: 511 });
  // Filling the gaps merges them into one.
  const even = Array.from({ length: 255 }, (_, k) => ({
    first: 2 + 2 * k,
    last: 2 + 2 * k,
  }));
  assert.deepEqual(mergeRanges([...odd, ...even], { first: 0, last: 1_000 }), [
    { first: 1, last: 511 },
  ]);
});

Deno.test("mergeRanges leaves its input as it was", () => {
  const input = [
    { first: 5, last: 9 },
    { first: 1, last: 6 },
    { first: 7, last: 20 },
  ];
  const copy = structuredClone(input);
  const merged = mergeRanges(input, { first: 2, last: 15 });
  assert.deepEqual(merged, [{ first: 2, last: 15 }]);
  assert.deepEqual(input, copy);
  // The result shares no object with the input.
  for (const range of merged) assert.equal(input.includes(range), false);
});
