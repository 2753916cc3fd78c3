/**
 * Printers: the last stage of the data flow. They turn events into the
 * exercise's exact text lines, or into one JSON object per line.
 *
 * @module
 */

import { formatPeer, type Peer } from "./address.ts";
import type { McastEvent, ReceiverEvent, SenderEvent } from "./events.ts";
import { decodeUtf8, escapeText } from "./text.ts";

/**
 * Formats a sender event as the exercise prints it.
 *
 * @param event The event.
 * @returns The lines to print on standard output (possibly none).
 *
 * @example The first line of a send
 * ```ts
 * import assert from "node:assert/strict";
 * import { senderText } from "./printer.ts";
 * const payload = new TextEncoder().encode("very important data");
 * const group = { family: 4, address: "224.1.1.1" } as const;
 * assert.deepEqual(
 *   senderText({ type: "sending", group, port: 10000, payload }),
 *   ['sending "very important data"'],
 * );
 * ```
 */
export function senderText(event: SenderEvent): string[] {
  switch (event.type) {
    case "sending":
      return [`sending "${escapeText(event.payload, { quoted: true })}"`];
    case "waiting":
      return ["waiting to receive"];
    case "ack":
      return [
        `received "${escapeText(event.payload, { quoted: true })}" from ${
          formatPeer(event.from)
        }`,
      ];
    case "closing":
      return ["closing socket"];
  }
}

/**
 * Formats a receiver event as the exercise prints it. A failed
 * acknowledgement yields no output line here: it is a warning for stderr.
 *
 * @param event The event.
 * @returns The lines to print on standard output (possibly none).
 */
export function receiverText(event: ReceiverEvent): string[] {
  switch (event.type) {
    case "waiting":
      return event.messages === 0
        ? ["waiting to receive message"]
        : ["", "waiting to receive message"];
    case "message":
      return [
        `received ${event.payload.length} bytes from ${
          formatPeer(event.from)
        } : ${escapeText(event.payload)}`,
      ];
    case "ack-sent":
      return [`sending acknowledgement to ${formatPeer(event.to)}`];
    case "ack-failed":
    case "stopped":
      return [];
  }
}

function peerJson(peer: Peer): Record<string, string | number> {
  return peer.scopeId === undefined
    ? { address: peer.address, port: peer.port }
    : { address: peer.address, port: peer.port, scopeId: peer.scopeId };
}

function payloadJson(payload: Uint8Array): Record<string, string | number> {
  const text = decodeUtf8(payload);
  if (text !== undefined) return { bytes: payload.length, text };
  let binary = "";
  for (const byte of payload) binary += String.fromCharCode(byte);
  return { bytes: payload.length, base64: btoa(binary) };
}

// Characters JSON.stringify leaves raw but a terminal must never see: DEL and
// C1 controls, format characters (bidirectional overrides, zero-width
// joiners), line and paragraph separators, private-use and unassigned code
// points. JSON.stringify already escapes C0 controls and lone surrogates.
const JSON_UNSAFE = /[\x7f-\x9f\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cn}]/gu;

function escapeUnit(char: string): string {
  let out = "";
  for (let k = 0; k < char.length; k++) {
    out += `\\u${char.charCodeAt(k).toString(16).padStart(4, "0")}`;
  }
  return out;
}

function stringify(value: Record<string, unknown>): string {
  return JSON.stringify(value).replace(JSON_UNSAFE, escapeUnit);
}

/** Options of {@linkcode eventJson}. */
export interface EventJsonOptions {
  /** Clock for the `time` field, in epoch milliseconds; defaults to `Date.now`. */
  now?: () => number;
}

/**
 * Formats any event as one line of JSON: `{"event": TYPE, "time": ISO, ...}`.
 * Payloads appear as `bytes` plus `text` (valid UTF-8) or `base64`. Control,
 * format and other invisible characters in strings are written as `\uXXXX`
 * escapes, so the line is terminal-safe and still parses to the same value.
 *
 * @param event The event.
 * @param options The clock, for tests.
 * @returns One line of JSON.
 */
export function eventJson(
  event: McastEvent,
  options: EventJsonOptions = {},
): string {
  const time = new Date((options.now ?? Date.now)()).toISOString();
  const head = { event: event.type, time };
  switch (event.type) {
    case "sending":
      return stringify({
        ...head,
        group: event.group.address,
        port: event.port,
        ...payloadJson(event.payload),
      });
    case "waiting":
      return stringify(
        "group" in event
          ? {
            ...head,
            group: event.group.address,
            port: event.port,
            messages: event.messages,
          }
          : head,
      );
    case "ack":
    case "message":
      return stringify({
        ...head,
        from: peerJson(event.from),
        ...payloadJson(event.payload),
      });
    case "ack-sent":
      return stringify({
        ...head,
        to: peerJson(event.to),
        bytes: event.payload.length,
      });
    case "ack-failed":
      return stringify({
        ...head,
        to: peerJson(event.to),
        error: event.reason,
      });
    case "closing":
      return stringify(
        event.expected === undefined ? { ...head, acks: event.acks } : {
          ...head,
          acks: event.acks,
          expected: event.expected,
          missing: Math.max(0, event.expected - event.acks),
        },
      );
    case "stopped":
      return stringify({
        ...head,
        messages: event.messages,
        reason: event.reason,
      });
  }
}
