/**
 * The events the sender and receiver emit. The core logic only emits events;
 * printers turn them into the exercise's text or into JSON lines.
 *
 * @module
 */

import type { Group, Peer } from "./address.ts";

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
  };

/** Any event of either tool. */
export type McastEvent = SenderEvent | ReceiverEvent;
