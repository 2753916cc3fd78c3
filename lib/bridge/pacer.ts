/**
 * The pace of a bridge's downstream sends: loss-driven like the sender's
 * (`lib/reliable/sender.ts`). Far receivers asking for repairs means
 * datagrams are dropped on the far segment (a slower link, full socket
 * buffers), so the pace falls to 70% of what was sent; without new loss it
 * grows by 25% (and 100 datagrams per second) per interval until pacing is
 * off again.
 *
 * @module
 */

/** Slowest pace, in datagrams per second. */
export const MIN_PACE = 200;
/** Above this pace, pacing is off. */
export const MAX_PACE = 200_000;

/** What one interval saw. */
export interface PaceInterval {
  /** Datagrams sent downstream in the interval. */
  sent: number;
  /** Datagrams far receivers newly asked for in the interval. */
  lost: number;
  /** The interval, in ms. */
  intervalMs: number;
}

/**
 * The next pace (a pure decide step).
 *
 * @param pace The current pace, datagrams per second (`Infinity`: off).
 * @param interval What the last interval saw.
 * @returns The new pace.
 */
export function adaptPace(pace: number, interval: PaceInterval): number {
  const { sent, lost, intervalMs } = interval;
  if (lost > Math.max(3, sent * 0.02)) {
    const measured = sent * 1000 / intervalMs;
    return Math.max(MIN_PACE, Math.min(pace, measured) * 0.7);
  }
  if (!Number.isFinite(pace)) return pace;
  const next = pace * 1.25 + 100;
  return next > MAX_PACE ? Infinity : next;
}
