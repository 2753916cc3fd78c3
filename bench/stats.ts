/**
 * The benchmark's arithmetic: percentiles, medians, rates. Pure functions,
 * unit-tested in `tests/bench_test.ts`.
 *
 * @module
 */

/**
 * The `p`-quantile of ascending samples, interpolating linearly between the
 * two closest ranks (Hyndman-Fan type 7, the default of NumPy and R).
 *
 * @param sorted Samples in ascending order.
 * @param p The quantile, 0..1 (0.5 = median, 0.999 = p99.9).
 * @returns The quantile, or NaN without samples.
 * @throws {RangeError} When `p` is outside 0..1.
 */
export function quantile(sorted: ArrayLike<number>, p: number): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`quantile ${p} not in 0..1`);
  const n = sorted.length;
  if (n === 0) return NaN;
  const h = (n - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (h - lo) * (b - a);
}

/**
 * The median of unsorted values (the mean of the middle two for an even
 * count).
 *
 * @param values The values.
 * @returns The median, or NaN without values.
 */
export function median(values: readonly number[]): number {
  return quantile([...values].sort((a, b) => a - b), 0.5);
}

/** One-way latency percentiles, in microseconds. */
export interface LatencySummary {
  /** Number of samples. */
  n: number;
  /** Median. */
  p50: number;
  /** 99th percentile. */
  p99: number;
  /** 99.9th percentile (meaningful from 1000 samples on). */
  p999: number;
  /** Largest sample. */
  max: number;
  /** Smallest sample. */
  min: number;
}

/**
 * Summarises latency samples (sorts a copy).
 *
 * @param samples Latencies in microseconds, in any order.
 * @returns Percentiles rounded to 0.1 µs, or null without samples.
 */
export function summarizeLatency(
  samples: ArrayLike<number>,
): LatencySummary | null {
  if (samples.length === 0) return null;
  const sorted = Float64Array.from(samples).sort();
  const round = (x: number) => Math.round(x * 10) / 10;
  return {
    n: sorted.length,
    p50: round(quantile(sorted, 0.5)),
    p99: round(quantile(sorted, 0.99)),
    p999: round(quantile(sorted, 0.999)),
    max: round(sorted[sorted.length - 1]!),
    min: round(sorted[0]!),
  };
}

/**
 * The rate of events seen at `first` and `last` (ms) over that interval:
 * `count - 1` gaps. Counting from the first event rather than from a start
 * signal keeps process start-up out of the figure.
 *
 * @param count Events seen.
 * @param firstMs Time of the first, ms.
 * @param lastMs Time of the last, ms.
 * @returns Events per second, 0 when fewer than two or no time passed.
 */
export function rateBetween(
  count: number,
  firstMs: number,
  lastMs: number,
): number {
  const span = lastMs - firstMs;
  if (count < 2 || !(span > 0)) return 0;
  return (count - 1) * 1000 / span;
}

/**
 * Loss in percent of `sent`.
 *
 * @param sent Items sent.
 * @param received Items received.
 * @returns 0..100 (0 when nothing was sent; negative never: duplicates count as none lost).
 */
export function lossPercent(sent: number, received: number): number {
  if (sent <= 0) return 0;
  return Math.max(0, (sent - received) * 100 / sent);
}
