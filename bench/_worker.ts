/**
 * Helpers shared by the benchmark's worker processes (`bare_*.ts`,
 * `mcast_*.ts`): the JSON configuration they take as their one argument, the
 * JSON lines they print, a pacer for fixed offered loads, and the process's
 * own memory figures.
 *
 * @module
 */

import { Yielder } from "../lib/reliable/schedule.ts";
import { type LatencySummary, summarizeLatency } from "./stats.ts";

/**
 * Parses the worker's configuration: one JSON object as the first argument.
 *
 * @returns The configuration.
 */
export function config<T>(): T {
  const text = Deno.args[0];
  if (text === undefined) throw new Error("usage: worker.ts '<json config>'");
  return JSON.parse(text) as T;
}

/**
 * Prints one JSON line on standard output (the driver's only input).
 *
 * @param value The line's content.
 */
export function emit(value: Record<string, unknown>): void {
  console.log(JSON.stringify(value));
}

/**
 * The wall clock in microseconds since the epoch, unrounded: the same clock
 * as `nowMicros()` in `lib/wire/frame.ts` (`performance.timeOrigin +
 * performance.now()`), which stamps DATA frames.
 *
 * @returns Microseconds.
 */
export function clockMicros(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Paces a loop at a fixed rate: item `i` (from 0) is due `i / perSecond`
 * seconds after the first call. Waits longer than 2 ms use a timer; shorter
 * ones yield to the event loop until the item is due (so socket reads and the
 * reliable sender's flushes run meanwhile), which spaces items evenly instead
 * of in 1 ms bursts.
 */
export class Pacer {
  readonly #interval: number;
  readonly #yielder = new Yielder();
  #start: number | undefined;

  /** @param perSecond Items per second. */
  constructor(perSecond: number) {
    this.#interval = 1000 / perSecond;
  }

  /**
   * Resolves when item `index` is due.
   *
   * @param index The item's position, from 0.
   */
  async wait(index: number): Promise<void> {
    this.#start ??= performance.now();
    const due = this.#start + index * this.#interval;
    for (;;) {
      const ahead = due - performance.now();
      if (ahead <= 0) return;
      if (ahead > 2) await sleep(ahead - 1.5);
      else await this.#yielder.yield();
    }
  }

  /** Releases the pacer's message port. */
  close(): void {
    this.#yielder.close();
  }
}

/** A growable list of latency samples, in microseconds. */
export class Samples {
  #data = new Float64Array(4096);
  #length = 0;

  /** Adds one sample. */
  push(value: number): void {
    if (this.#length === this.#data.length) {
      const grown = new Float64Array(this.#data.length * 2);
      grown.set(this.#data);
      this.#data = grown;
    }
    this.#data[this.#length++] = value;
  }

  /** Number of samples. */
  get length(): number {
    return this.#length;
  }

  /** p50/p99/p99.9 and friends, or null without samples. */
  summary(): LatencySummary | null {
    return summarizeLatency(this.#data.subarray(0, this.#length));
  }
}

/** Resident memory of this process, from `/proc/self/status`. */
export interface Memory {
  /** Current resident set, KiB. */
  rssKiB: number;
  /** Peak resident set so far (VmHWM), KiB. */
  hwmKiB: number;
}

/**
 * Reads this process's resident memory (Linux only).
 *
 * @returns Current and peak RSS, or null where `/proc` is missing.
 */
export function memory(): Memory | null {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const rss = /^VmRSS:\s+(\d+)/m.exec(status);
    const hwm = /^VmHWM:\s+(\d+)/m.exec(status);
    if (!rss || !hwm) return null;
    return { rssKiB: Number(rss[1]), hwmKiB: Number(hwm[1]) };
  } catch {
    return null;
  }
}

/**
 * Calls `onStop` when the driver writes `stop` on standard input (or closes
 * it). The worker ends with `Deno.exit`, which abandons the pending read.
 *
 * @param onStop What to do.
 */
export function onStopLine(onStop: () => void): void {
  (async () => {
    const decoder = new TextDecoder();
    let text = "";
    for await (const chunk of Deno.stdin.readable) {
      text += decoder.decode(chunk, { stream: true });
      if (text.includes("stop")) break;
    }
    onStop();
  })().catch(onStop);
}

/**
 * True for the errors a pending `receive()` rejects with once its socket is
 * closed.
 */
export function isClosed(error: unknown): boolean {
  return error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.BadResource;
}
