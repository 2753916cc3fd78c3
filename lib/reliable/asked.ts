/**
 * The sequences a receiver has NACKed, and when each was asked for last:
 * disjoint ranges in order, each with one time. A NACK asks for whole
 * ranges at once, so ranges keep this small where a map of every sequence
 * would hold (and, as gaps open and close, rebuild) up to a window's width
 * of entries: a storm of made-up sequences opens such gaps all the time.
 *
 * @module
 */

import type { SeqRange } from "../wire/frame.ts";

/** A range of sequences last asked for at the same time. */
export interface AskedRange {
  /** First sequence. */
  first: number;
  /** Last sequence (inclusive). */
  last: number;
  /** When they were asked for, in milliseconds (`performance.now()`). */
  at: number;
}

/** Sequences asked for, with the time of the last request of each. */
export class AskedSequences {
  #ranges: AskedRange[] = [];
  #size = 0;

  /** How many sequences were asked for (and not yet dropped). */
  get size(): number {
    return this.#size;
  }

  /** The ranges, in order, disjoint. Not to be changed. */
  get ranges(): readonly AskedRange[] {
    return this.#ranges;
  }

  /** Forgets every sequence. */
  clear(): void {
    this.#ranges = [];
    this.#size = 0;
  }

  /**
   * Forgets every sequence up to `seq` (inclusive): the ones delivered.
   *
   * @param seq The last sequence to forget.
   */
  dropThrough(seq: number): void {
    const ranges = this.#ranges;
    let k = 0;
    while (k < ranges.length && ranges[k]!.last <= seq) {
      this.#size -= ranges[k]!.last - ranges[k]!.first + 1;
      k++;
    }
    if (k > 0) ranges.splice(0, k);
    const head = ranges[0];
    if (head !== undefined && head.first <= seq) {
      this.#size -= seq - head.first + 1;
      head.first = seq + 1;
    }
  }

  /**
   * Records that the sequences of `asked` were asked for at `at`.
   *
   * @param asked Ranges in order, disjoint.
   * @param at The time.
   */
  mark(asked: readonly SeqRange[], at: number): void {
    if (asked.length === 0) return;
    const old = this.#ranges;
    const merged: AskedRange[] = [];
    let size = 0;
    function push(range: AskedRange): void {
      merged.push(range);
      size += range.last - range.first + 1;
    }
    let k = 0;
    for (const range of asked) {
      // Old ranges before this one, or their parts before it.
      while (k < old.length && old[k]!.first < range.first) {
        const o = old[k]!;
        if (o.last < range.first) {
          push(o);
          k++;
          continue;
        }
        push({ first: o.first, last: range.first - 1, at: o.at });
        o.first = range.first;
        break;
      }
      push({ first: range.first, last: range.last, at });
      // Old ranges it covers, and the part of one it ends in.
      while (k < old.length && old[k]!.first <= range.last) {
        const o = old[k]!;
        if (o.last <= range.last) {
          k++;
          continue;
        }
        o.first = range.last + 1;
        break;
      }
    }
    while (k < old.length) push(old[k++]!);
    this.#ranges = merged;
    this.#size = size;
  }
}

/**
 * A set of sequences as disjoint ranges in order: the ones a receiver
 * learnt are lost for good. A GONE frame may name a window's width of
 * them at once.
 */
export class SequenceSet {
  #ranges: SeqRange[] = [];

  /** The ranges, in order, disjoint and not adjacent. Not to be changed. */
  get ranges(): readonly SeqRange[] {
    return this.#ranges;
  }

  /**
   * Tells whether `seq` is in the set.
   *
   * @param seq The sequence.
   * @returns True when a range holds it.
   */
  has(seq: number): boolean {
    const ranges = this.#ranges;
    let low = 0;
    let high = ranges.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const range = ranges[middle]!;
      if (seq < range.first) high = middle - 1;
      else if (seq > range.last) low = middle + 1;
      else return true;
    }
    return false;
  }

  /**
   * Adds the sequences from `first` to `last` (inclusive).
   *
   * @param first The first sequence.
   * @param last The last sequence.
   */
  add(first: number, last: number): void {
    const ranges = this.#ranges;
    // The first range that ends at or after first - 1 (may merge with it).
    let k = 0;
    while (k < ranges.length && ranges[k]!.last < first - 1) k++;
    let end = k;
    while (end < ranges.length && ranges[end]!.first <= last + 1) {
      first = Math.min(first, ranges[end]!.first);
      last = Math.max(last, ranges[end]!.last);
      end++;
    }
    ranges.splice(k, end - k, { first, last });
  }

  /**
   * Removes every sequence up to `seq` (inclusive).
   *
   * @param seq The last sequence to remove.
   */
  dropThrough(seq: number): void {
    const ranges = this.#ranges;
    let k = 0;
    while (k < ranges.length && ranges[k]!.last <= seq) k++;
    if (k > 0) ranges.splice(0, k);
    const head = ranges[0];
    if (head !== undefined && head.first <= seq) {
      ranges[0] = { first: seq + 1, last: head.last };
    }
  }

  /** Removes every sequence. */
  clear(): void {
    this.#ranges = [];
  }
}
