/**
 * The events the sender and receiver emit. The core logic only emits events;
 * printers turn them into the exercise's text or into JSON lines.
 *
 * @module
 */

import type { Group, Peer } from "./net/address.ts";
import type {
  ReceiverStats,
  SenderReport,
  SessionPaths,
} from "./reliable/stats.ts";

/** Emitted by {@linkcode sendBulletin} in order. */
export type SenderEvent =
  | {
    /** The datagram is about to be sent. */
    type: "sending";
    group: Group;
    port: number;
    payload: Uint8Array;
  }
  | {
    /** The datagram was sent; acknowledgements are awaited. */
    type: "waiting";
  }
  | {
    /** One acknowledgement (any datagram addressed to the sender) arrived. */
    type: "ack";
    from: Peer;
    payload: Uint8Array;
  }
  | {
    /** The wait ended; the socket is being closed. */
    type: "closing";
    acks: number;
    expected?: number;
  };

/** Emitted by {@linkcode receiveBulletins} in order. */
export type ReceiverEvent =
  | {
    /** The receiver is joined and waits; `messages` were received so far. */
    type: "waiting";
    group: Group;
    port: number;
    messages: number;
  }
  | {
    /** A datagram arrived on the group. */
    type: "message";
    from: Peer;
    payload: Uint8Array;
  }
  | {
    /** An acknowledgement was sent to the datagram's source. */
    type: "ack-sent";
    to: Peer;
    payload: Uint8Array;
  }
  | {
    /** Sending an acknowledgement failed; the receiver goes on. */
    type: "ack-failed";
    to: Peer;
    reason: string;
  }
  | {
    /** The receiver left the group and closed. */
    type: "stopped";
    messages: number;
    reason: "count" | "signal";
    /** Protocol statistics, when protocol frames arrived. */
    stats?: ReceiverStats;
  }
  | {
    /** The receiver heard a sender's session for the first time. */
    type: "session";
    session: string;
    from: Peer;
    /** The first sequence number it will deliver from. */
    start: number;
    /** Resumed from the state file. */
    resumed: boolean;
    /** The paths the datagrams take, when the caller said. */
    paths?: SessionPaths;
  }
  | {
    /** A bulletin was delivered, in order, exactly once. */
    type: "bulletin";
    session: string;
    /** The bulletin's number in its session. */
    number: number;
    from: Peer;
    /**
     * The bulletin; empty when it went straight to a file as it arrived
     * (a large one with `--output`: see `size` and `path`).
     */
    payload: Uint8Array;
    /** Its size in bytes, when `payload` does not hold it. */
    size?: number;
    /** When the sender sent its last datagram: microseconds since the epoch. */
    sentAt: number;
    /** Where it was written (`--output`). */
    path?: string;
    /**
     * Other sessions are followed at the same time and the sender's address
     * does not tell this one: the text names it.
     */
    concurrent?: boolean;
  }
  | {
    /** Sequence numbers the sender no longer holds: lost for good. */
    type: "unrecoverable";
    session: string;
    first: number;
    last: number;
    /** Bulletins lost with them, as far as the receiver can tell. */
    bulletins: number;
    /**
     * Other sessions are followed at the same time and the sender's address
     * does not tell this one: the text names it.
     */
    concurrent?: boolean;
  }
  | {
    /** A reassembled bulletin was discarded. */
    type: "bulletin-failed";
    session: string;
    number: number;
    reason: "digest" | "too-large";
    /**
     * Other sessions are followed at the same time and the sender's address
     * does not tell this one: the text names it.
     */
    concurrent?: boolean;
  };

/** Emitted by {@linkcode sendReliable} in order. */
export type ReliableSenderEvent =
  | {
    /** The session started (or resumed from a journal). */
    type: "session";
    session: string;
    group: Group;
    port: number;
    /** Where the sender's socket is bound: receivers answer there. */
    local: Peer;
    resumed: boolean;
    /** Sequence numbers recovered from the journal, still to deliver. */
    recovered: number;
    /** The paths the datagrams take, when the caller said. */
    paths?: SessionPaths;
  }
  | {
    /** A hot standby (`--standby`) listens for a primary's session. */
    type: "standby";
    group: Group;
    port: number;
    /** The primary's silence that makes it take over, in ms. */
    takeoverMs: number;
  }
  | {
    /** The standby heard the primary's session and follows it silently. */
    type: "following";
    session: string;
    /** Where the primary sends from. */
    from: Peer;
  }
  | {
    /** The standby took the session over; it sends from here on. */
    type: "takeover";
    session: string;
    group: Group;
    port: number;
    /** Where the standby's socket is bound: receivers answer there. */
    local: Peer;
    /** The first sequence number it sends. */
    seq: number;
    /** The first bulletin number it sends (the input's bulletins before it are skipped). */
    bulletin: number;
    /** How long the primary had been silent, in ms. */
    silenceMs: number;
    /** The primary's datagrams it holds for repairs. */
    held: number;
    /** The paths the datagrams take, when the caller said. */
    paths?: SessionPaths;
  }
  | {
    /** A receiver joined the roster (HELLO or first ACK). */
    type: "receiver";
    name: string;
    from: Peer;
  }
  | {
    /** A receiver left (BYE). */
    type: "receiver-left";
    name: string;
    /** It had everything sent so far. */
    complete: boolean;
  }
  | {
    /** A receiver that held the stream back too long was evicted (`--drop-slow`). */
    type: "evicted";
    name: string;
    /** Its cumulative acknowledgement when evicted. */
    acked: number;
    /** The highest sequence sent then. */
    high: number;
  }
  | {
    /**
     * Periodic progress of a session (only when asked for, e.g. `--json`
     * or a terminal on stderr).
     */
    type: "progress";
    /** Milliseconds since the session started. */
    elapsedMs: number;
    /** Bytes of the bulletins accepted so far (a whole file at once). */
    queuedBytes: number;
    /** Of those, bytes sent once so far. */
    sentBytes: number;
    /** Sent bytes per second since the first bulletin left. */
    bytesPerSecond: number;
    /** Seconds until the queued bytes are sent at that rate; absent while unknown. */
    etaSeconds?: number;
    /** Receivers that acknowledged everything sent so far. */
    acknowledged: number;
    /** Receivers expected (the roster), or heard from without one. */
    receivers: number;
  }
  | {
    /** Every bulletin was sent once; acknowledgements are awaited. */
    type: "sent";
    bulletins: number;
    packets: number;
  }
  | {
    /** The session ended: delivered to everyone expected, or not. */
    type: "report";
    report: SenderReport;
  };

/** Any event of either tool. */
export type McastEvent = SenderEvent | ReceiverEvent | ReliableSenderEvent;
