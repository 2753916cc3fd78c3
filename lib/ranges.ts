/**
 * Inclusive ranges of sequence numbers: building them from numbers and
 * reading them back, as ACK, NACK and GONE frames carry them.
 *
 * @module
 */

import type { SeqRange } from "./frame.ts";

/**
 * Collapses ascending numbers into inclusive ranges.
 *
 * @param numbers Ascending, without repeats.
 * @param limit Most ranges to return (the rest is left out).
 * @returns The ranges.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toRanges } from "./ranges.ts";
 * assert.deepEqual(toRanges([1, 2, 3, 7, 9, 10]), [
 *   { first: 1, last: 3 }, { first: 7, last: 7 }, { first: 9, last: 10 },
 * ]);
 * ```
 */
export function toRanges(
  numbers: Iterable<number>,
  limit = Infinity,
): SeqRange[] {
  const ranges: SeqRange[] = [];
  let current: SeqRange | undefined;
  for (const n of numbers) {
    if (current && n === current.last + 1) {
      current.last = n;
      continue;
    }
    if (ranges.length >= limit) break;
    current = { first: n, last: n };
    ranges.push(current);
  }
  return ranges;
}

/**
 * Counts the numbers in a list of inclusive ranges.
 *
 * @param ranges The ranges.
 * @returns How many numbers they hold.
 */
export function rangesSize(ranges: readonly SeqRange[]): number {
  let size = 0;
  for (const range of ranges) size += range.last - range.first + 1;
  return size;
}

/**
 * Formats ranges for people: `3-5, 9`.
 *
 * @param ranges The ranges.
 * @returns The text, or `none`.
 */
export function formatRanges(ranges: readonly SeqRange[]): string {
  if (ranges.length === 0) return "none";
  return ranges.map((r) =>
    r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`
  ).join(", ");
}
