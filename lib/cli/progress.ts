/**
 * The progress line `mcast-send --reliable` keeps up to date on a terminal
 * (stderr): bytes sent, rate, time left and receivers up to date. Pure
 * formatting here; the front end decides when a terminal is there.
 *
 * @module
 */

import type { ReliableSenderEvent } from "../events.ts";

/** A `progress` event of {@linkcode ReliableSenderEvent}. */
export type ProgressEvent = Extract<ReliableSenderEvent, { type: "progress" }>;

/** `0 B`, `512 B`, `1.5 kB`, `45.2 MB`, `1.1 GB` (1000-based, one decimal). */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 999.95 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** `0.4 s`, `12 s`, `3 min 05 s`. */
function formatSeconds(seconds: number): string {
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)} min ${
    String(whole % 60).padStart(2, "0")
  } s`;
}

/**
 * Formats a progress event as one line, e.g. `sent 45.2 MB of 100.0 MB (45%)
 * at 92.1 MB/s, 0.6 s left, 2 of 3 receivers up to date`.
 *
 * @param event The progress event.
 * @returns The line, without a line break.
 */
export function progressLine(event: ProgressEvent): string {
  const percent = event.queuedBytes > 0
    ? Math.floor(event.sentBytes * 100 / event.queuedBytes)
    : 0;
  const parts = [
    `sent ${formatBytes(event.sentBytes)} of ${
      formatBytes(event.queuedBytes)
    } (${percent}%)`,
    `at ${formatBytes(event.bytesPerSecond)}/s`,
  ];
  let line = parts.join(" ");
  if (event.etaSeconds !== undefined && event.sentBytes < event.queuedBytes) {
    line += `, ${formatSeconds(event.etaSeconds)} left`;
  }
  const noun = event.receivers === 1 ? "receiver" : "receivers";
  return `${line}, ${event.acknowledged} of ${event.receivers} ${noun} up to date`;
}
