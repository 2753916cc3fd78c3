/**
 * Printers: the last stage of the data flow. They turn events into the
 * exercise's exact text lines, or into one JSON object per line.
 *
 * @module
 */

import { formatPeer, type Peer } from "../net/address.ts";
import type {
  McastEvent,
  ReceiverEvent,
  ReliableSenderEvent,
  SenderEvent,
} from "../events.ts";
import { formatRanges } from "../wire/ranges.ts";
import type {
  DropCounts,
  ReceiverStats,
  SenderReport,
  SessionPaths,
} from "../reliable/stats.ts";
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
      return [];
    case "stopped":
      return event.stats ? [receiverStatsLine(event.stats)] : [];
    case "session":
      return [
        `${
          event.resumed ? "resumed" : "joined"
        } session ${event.session} from ${
          formatPeer(event.from)
        } at sequence ${event.start}`,
      ];
    case "bulletin":
      return [
        event.path === undefined
          ? `received bulletin ${event.number}${ofSession(event)} (${
            count(event.payload.length, "byte")
          }) from ${formatPeer(event.from)} : ${escapeText(event.payload)}`
          : `received bulletin ${event.number}${ofSession(event)} (${
            count(event.size ?? event.payload.length, "byte")
          }) from ${formatPeer(event.from)} saved to ${
            escapeText(new TextEncoder().encode(event.path))
          }`,
      ];
    case "unrecoverable":
      return [
        `unrecoverable${ofSession(event)}: ${
          event.first === event.last
            ? `sequence ${event.first} is`
            : `sequences ${formatRanges([event])} are`
        } no longer held by the sender (${
          count(event.bulletins, "bulletin")
        } lost)`,
      ];
    case "bulletin-failed":
      return [
        `discarded bulletin ${event.number}${ofSession(event)}: ${
          event.reason === "digest"
            ? "digest mismatch"
            : "larger than --max-size"
        }`,
      ];
  }
}

/** ` of session X` when another session is followed at the same time. */
function ofSession(event: { session: string; concurrent?: boolean }): string {
  return event.concurrent ? ` of session ${event.session}` : "";
}

function nameText(name: string): string {
  return escapeText(new TextEncoder().encode(name));
}

/** `224.1.1.1:10000`, `[ff02::1:3]:10000`. */
function hostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * `1 bulletin`, `2 bulletins`.
 *
 * @param n How many.
 * @param noun The noun, singular.
 * @returns The count and the noun.
 */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/**
 * `0 dropped`, or `7 dropped (auth 5, replay 2)`: the reasons that occurred.
 *
 * @param dropped Datagrams dropped, by reason.
 * @returns The text.
 */
export function droppedText(dropped: DropCounts): string {
  const reasons = Object.entries(dropped).filter(([, n]) => n > 0);
  const total = reasons.reduce((sum, [, n]) => sum + n, 0);
  if (total === 0) return "0 dropped";
  return `${total} dropped (${
    reasons.map(([reason, n]) => `${reason} ${n}`).join(", ")
  })`;
}

function receiverStatsLine(stats: ReceiverStats): string {
  return `statistics: ${count(stats.bulletins, "bulletin")} (${
    count(stats.bytes, "byte")
  }), ${count(stats.data, "datagram")}, ${stats.repaired} repaired, ${
    count(stats.duplicates, "duplicate")
  }, ${stats.unrecoverable} unrecoverable, ${stats.failed} discarded, ${
    count(stats.nacks, "NACK")
  }, ${count(stats.acks, "ACK")}, ${droppedText(stats.dropped)}${
    pathsText(stats.paths)
  }`;
}

/** `, io native, crypto openssl`: the paths, when known. */
function pathsText(paths: SessionPaths | undefined): string {
  if (paths === undefined) return "";
  return `, io ${paths.io}${
    paths.crypto === undefined ? "" : `, crypto ${paths.crypto}`
  }`;
}

/** The paths as flat JSON fields, when known. */
function pathsJson(paths: SessionPaths | undefined): Record<string, string> {
  if (paths === undefined) return {};
  return paths.crypto === undefined
    ? { io: paths.io }
    : { io: paths.io, crypto: paths.crypto };
}

/**
 * Formats an event of `mcast-send --reliable` as text.
 *
 * @param event The event.
 * @returns The lines to print on standard output.
 */
export function reliableSenderText(event: ReliableSenderEvent): string[] {
  // Receiver names come from the wire: never print them raw.
  const name = "name" in event ? nameText(event.name) : "";
  switch (event.type) {
    case "session": {
      const to = hostPort(event.group.address, event.port);
      return [
        event.resumed
          ? `resumed session ${event.session} to ${to} from the journal (${
            count(event.recovered, "datagram")
          } held)`
          : `session ${event.session} to ${to}`,
      ];
    }
    case "standby":
      return [
        `standing by on ${
          hostPort(event.group.address, event.port)
        }: taking over after ${
          (event.takeoverMs / 1000).toFixed(1)
        } s of silence`,
      ];
    case "following":
      return [
        `following session ${event.session} from ${formatPeer(event.from)}`,
      ];
    case "takeover":
      return [
        `took over session ${event.session} at sequence ${event.seq} (bulletin ${event.bulletin}) after ${
          (event.silenceMs / 1000).toFixed(3)
        } s of silence, holding ${count(event.held, "datagram")} for repairs`,
      ];
    case "receiver":
      return [`receiver ${name} joined from ${formatPeer(event.from)}`];
    case "receiver-left":
      return [
        `receiver ${name} left (${event.complete ? "up to date" : "behind"})`,
      ];
    case "evicted":
      return [
        `evicted ${name}: it acknowledged ${event.acked} of ${
          count(event.high, "datagram")
        } and held the stream back (--drop-slow)`,
      ];
    case "progress":
      // A terminal shows it on stderr (lib/cli/progress.ts), JSON as a line.
      return [];
    case "sent":
      return [
        `sent ${count(event.bulletins, "bulletin")} in ${
          count(event.packets, "datagram")
        }, waiting for acknowledgements`,
      ];
    case "report":
      return reportText(event.report);
  }
}

/**
 * Formats a delivery report: a headline, one line per receiver, statistics.
 *
 * @param report The report.
 * @returns The lines.
 */
export function reportText(report: SenderReport): string[] {
  const seconds = (report.elapsedMs / 1000).toFixed(3);
  const outcome = report.delivered
    ? report.reason === "no-receivers"
      ? "no receiver answered"
      : "delivered to every receiver"
    : {
      complete: "delivered",
      deadline: "NOT delivered to every receiver by the deadline",
      evicted: "NOT delivered to every receiver (evicted)",
      lost: "NOT delivered to every receiver (data lost for good)",
      roster:
        "NOTHING sent: not every expected receiver answered by the deadline",
      signal: "NOT delivered to every receiver (interrupted)",
      "no-receivers": "no receiver answered",
    }[report.reason];
  const lines = [
    `delivery report for session ${report.session}: ${outcome} in ${seconds} s`,
  ];
  for (const r of report.receivers) {
    const where = r.from ? ` ${formatPeer(r.from)}` : "";
    const name = nameText(r.name);
    let line = `  ${name}${where}: ${r.status}, has ${
      count(r.bulletins, "bulletin")
    }`;
    if (r.missing.length > 0) {
      line += `, missing bulletins ${
        formatRanges(r.missingBulletins)
      } (datagrams ${formatRanges(r.missing)})`;
    }
    lines.push(line);
  }
  if (report.dropped.roster > 0) {
    lines.push(
      `roster full: ${
        count(report.dropped.roster, "feedback frame")
      } from receivers beyond the roster cap ignored`,
    );
  }
  lines.push(
    `statistics: ${count(report.bulletins, "bulletin")} (${
      count(report.bytes, "byte")
    }) in ${
      count(report.packets, "datagram")
    }, ${report.retransmitted} retransmitted, ${count(report.nacks, "NACK")}, ${
      count(report.acks, "ACK")
    }, ${count(report.feedback, "feedback frame")}, ${
      count(report.gone, "gone notice")
    }, ${droppedText(report.dropped)}${pathsText(report.paths)}`,
  );
  return lines;
}

/** Statistics or a report with its paths as flat `io`/`crypto` fields. */
function statsJson(
  stats: ReceiverStats | SenderReport,
): Record<string, unknown> {
  const { paths, ...rest } = stats;
  return { ...rest, ...pathsJson(paths) };
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
        ...(event.stats ? { stats: statsJson(event.stats) } : {}),
      });
    case "session":
      return "group" in event
        ? stringify({
          ...head,
          session: event.session,
          group: event.group.address,
          port: event.port,
          local: peerJson(event.local),
          resumed: event.resumed,
          recovered: event.recovered,
          ...pathsJson(event.paths),
        })
        : stringify({
          ...head,
          session: event.session,
          from: peerJson(event.from),
          start: event.start,
          resumed: event.resumed,
          ...pathsJson(event.paths),
        });
    case "bulletin":
      return stringify({
        ...head,
        session: event.session,
        number: event.number,
        from: peerJson(event.from),
        sentAt: event.sentAt,
        // Saved to a file, the bulletin is not repeated in the line.
        ...(event.path === undefined
          ? payloadJson(event.payload)
          : { path: event.path, bytes: event.size ?? event.payload.length }),
      });
    case "unrecoverable":
      return stringify({
        ...head,
        session: event.session,
        first: event.first,
        last: event.last,
        bulletins: event.bulletins,
      });
    case "bulletin-failed":
      return stringify({
        ...head,
        session: event.session,
        number: event.number,
        reason: event.reason,
      });
    case "standby":
      return stringify({
        ...head,
        group: event.group.address,
        port: event.port,
        takeoverMs: event.takeoverMs,
      });
    case "following":
      return stringify({
        ...head,
        session: event.session,
        from: peerJson(event.from),
      });
    case "takeover":
      return stringify({
        ...head,
        session: event.session,
        group: event.group.address,
        port: event.port,
        local: peerJson(event.local),
        seq: event.seq,
        bulletin: event.bulletin,
        silenceMs: event.silenceMs,
        held: event.held,
        ...pathsJson(event.paths),
      });
    case "receiver":
      return stringify({
        ...head,
        name: event.name,
        from: peerJson(event.from),
      });
    case "receiver-left":
      return stringify({ ...head, name: event.name, complete: event.complete });
    case "evicted":
      return stringify({
        ...head,
        name: event.name,
        acked: event.acked,
        high: event.high,
      });
    case "progress":
      return stringify({
        ...head,
        elapsedMs: event.elapsedMs,
        queuedBytes: event.queuedBytes,
        sentBytes: event.sentBytes,
        bytesPerSecond: event.bytesPerSecond,
        ...(event.etaSeconds === undefined
          ? {}
          : { etaSeconds: event.etaSeconds }),
        acknowledged: event.acknowledged,
        receivers: event.receivers,
      });
    case "sent":
      return stringify({
        ...head,
        bulletins: event.bulletins,
        packets: event.packets,
      });
    case "report":
      return stringify({
        ...head,
        ...statsJson(event.report),
        receivers: event.report.receivers.map((r) => ({
          ...r,
          ...(r.from ? { from: peerJson(r.from) } : {}),
        })),
      });
  }
}
