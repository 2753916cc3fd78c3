/**
 * What the reliable protocol counts: the receiver's statistics and the
 * sender's delivery report. Plain data, shared by the engines, the events
 * and the printers.
 *
 * @module
 */

import type { Peer } from "../net/address.ts";
import type { SeqRange } from "../wire/frame.ts";

/**
 * The paths a session's datagrams take, for the session events and the
 * statistics: `io` the sockets (`native`: libc through FFI; `deno`: the
 * runtime's), `crypto` the keys' backend when keys are used (`openssl`:
 * OpenSSL's libcrypto through FFI; `webcrypto`).
 */
export interface SessionPaths {
  /** The socket path. */
  io: "native" | "deno";
  /** The crypto backend, present when frames are keyed. */
  crypto?: "openssl" | "webcrypto";
}

/** Why datagrams were dropped without being used, by reason. */
export interface DropCounts {
  /** Unknown protocol version. */
  version: number;
  /** Unknown frame type. */
  type: number;
  /** Shorter than its fields say. */
  truncated: number;
  /** Impossible field values or trailing bytes. */
  malformed: number;
  /** Carries an authentication tag this build cannot check. */
  tag: number;
  /** Valid, but not for this side of the protocol or this session. */
  unexpected: number;
  /** Sequence too far ahead of what the receiver has. */
  ahead: number;
  /**
   * With a key: no tag, a tag that does not verify, or a payload that does
   * not decrypt.
   */
  auth: number;
  /** With a key: a frame that was already accepted once (a replay). */
  replay: number;
  /** With a key: sent longer ago (or further ahead) than the clock-skew bound. */
  stale: number;
  /** With a trusted signer: not signed, or not matching what was signed. */
  forged: number;
  /** With a key: a plain datagram, ignored without `--allow-plain`. */
  plain: number;
  /** Feedback from a receiver beyond the roster cap. */
  roster: number;
}

/** Returns a zeroed {@linkcode DropCounts}. */
export function emptyDrops(): DropCounts {
  return {
    version: 0,
    type: 0,
    truncated: 0,
    malformed: 0,
    tag: 0,
    unexpected: 0,
    ahead: 0,
    auth: 0,
    replay: 0,
    stale: 0,
    forged: 0,
    plain: 0,
    roster: 0,
  };
}

/** A receiver's protocol statistics. */
export interface ReceiverStats {
  /** The receiver's name. */
  name: string;
  /** The session it followed last, if any. */
  session?: string;
  /** DATA frames received (first transmissions and repairs). */
  data: number;
  /** Bulletins delivered. */
  bulletins: number;
  /** Payload bytes delivered. */
  bytes: number;
  /** Datagrams dropped as duplicates. */
  duplicates: number;
  /** Missing datagrams that a repair later filled. */
  repaired: number;
  /** Sequence numbers lost for good (the sender no longer held them). */
  unrecoverable: number;
  /** Bulletins discarded after reassembly (digest or size). */
  failed: number;
  /** NACK frames sent. */
  nacks: number;
  /** ACK frames sent. */
  acks: number;
  /** Datagrams dropped, by reason. */
  dropped: DropCounts;
  /** The paths its datagrams took, when the caller said. */
  paths?: SessionPaths;
}

/** What the sender knows about one receiver. */
export interface ReceiverReport {
  /** The receiver's name. */
  name: string;
  /** Where its feedback came from (absent if it never answered). */
  from?: Peer;
  /** Its cumulative acknowledgement: every sequence up to this. */
  acked: number;
  /** Bulletins it has acknowledged in full (the first `bulletins` of the session). */
  bulletins: number;
  /** Sequence ranges it does not have (up to the highest sent). */
  missing: SeqRange[];
  /** Bulletin numbers those ranges hold, as ranges. */
  missingBulletins: SeqRange[];
  /**
   * Where it stands: has everything (`complete`); still missing some
   * (`incomplete`); acknowledged everything but lost some for good, because
   * the sender no longer held it (`lost`); never answered (`silent`);
   * evicted by `--drop-slow` (`evicted`); left before it had everything
   * (`left`).
   */
  status: "complete" | "incomplete" | "lost" | "silent" | "evicted" | "left";
  /** NACK frames it sent. */
  nacks: number;
}

/** The sender's statistics and per-receiver delivery state. */
export interface SenderReport {
  /** The session id. */
  session: string;
  /** Every expected receiver has every bulletin. */
  delivered: boolean;
  /**
   * Why the session ended: everyone has everything (`complete`, or
   * `no-receivers` when nobody answered and nobody was expected); the
   * deadline passed (`deadline`), or passed before the expected receivers
   * answered so nothing was sent (`roster`); everyone left has everything
   * but some were evicted (`evicted`) or lost data the sender no longer held
   * (`lost`); interrupted (`signal`).
   */
  reason:
    | "complete"
    | "deadline"
    | "evicted"
    | "lost"
    | "roster"
    | "signal"
    | "no-receivers";
  /** Bulletins sent. */
  bulletins: number;
  /** DATA datagrams sent for the first time. */
  packets: number;
  /** Payload bytes sent. */
  bytes: number;
  /** DATA datagrams sent again as repairs. */
  retransmitted: number;
  /** NACK frames received. */
  nacks: number;
  /** ACK frames received. */
  acks: number;
  /** All feedback frames received (ACK, NACK, HELLO, BYE). */
  feedback: number;
  /** GONE notices sent (repairs asked for data no longer held). */
  gone: number;
  /** Datagrams dropped, by reason. */
  dropped: DropCounts;
  /** The paths its datagrams took, when the caller said. */
  paths?: SessionPaths;
  /** Milliseconds from the session's start to its end. */
  elapsedMs: number;
  /** Per receiver, sorted by name. */
  receivers: ReceiverReport[];
}
