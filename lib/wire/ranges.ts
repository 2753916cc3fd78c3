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

/** Bounds of {@linkcode mergeRanges}. */
export interface RangeBounds {
  /** Lowest sequence number kept. */
  first: number;
  /** Highest sequence number kept. */
  last: number;
}

/**
 * Sorts ranges, merges those that overlap or touch, and clips them to
 * `bounds`: however a peer lists its ranges, the result covers each
 * sequence number once.
 *
 * @param ranges Ranges in any order, possibly overlapping.
 * @param bounds The sequence numbers that matter.
 * @returns Disjoint ascending ranges within the bounds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mergeRanges } from "./ranges.ts";
 * assert.deepEqual(
 *   mergeRanges([{ first: 5, last: 9 }, { first: 1, last: 6 }, { first: 20, last: 30 }], { first: 2, last: 25 }),
 *   [{ first: 2, last: 9 }, { first: 20, last: 25 }],
 * );
 * ```
 */
export function mergeRanges(
  ranges: readonly SeqRange[],
  bounds: RangeBounds,
): SeqRange[] {
  const clipped: SeqRange[] = [];
  for (const range of ranges) {
    const first = Math.max(range.first, bounds.first);
    const last = Math.min(range.last, bounds.last);
    if (first <= last) clipped.push({ first, last });
  }
  clipped.sort((a, b) => a.first - b.first);
  const merged: SeqRange[] = [];
  for (const range of clipped) {
    const tail = merged.at(-1);
    if (tail && range.first <= tail.last + 1) {
      tail.last = Math.max(tail.last, range.last);
    } else {
      merged.push(range);
    }
  }
  return merged;
}
