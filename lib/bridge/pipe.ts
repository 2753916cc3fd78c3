/**
 * The contract between the relay core of `mcast-bridge` (which speaks the
 * reliable protocol on a multicast leg: a receiver upstream, a repairing
 * sender downstream) and the legs that carry a group's frames to a far
 * site: a unicast tunnel to another bridge, or a broker (NATS, JetStream).
 *
 * What crosses a pipe is the sender's datagrams, verbatim: DATA, HEARTBEAT
 * and GONE frames as sealed by the sender when the group is keyed, so a far
 * site's receivers check the original tags and signatures and nothing in
 * between (a tunnel, a broker) ever sees plaintext of an encrypted group.
 * Plain datagrams (not frames) cross as they are.
 *
 * @module
 */

/** One datagram crossing a pipe. */
export interface PipeDatagram {
  /**
   * Identifies the datagram for deduplication across restarts: for a DATA
   * frame `<session>:<seq>` (16 hex digits, a colon, the decimal sequence
   * number); for other frames and plain datagrams any string unique
   * within a few minutes (a pipe may deduplicate on it).
   */
  id: string;
  /** The datagram, verbatim. */
  bytes: Uint8Array;
  /** Hops this datagram may still be relayed; a bridge never sends one on at 0. */
  hops: number;
}

/**
 * The sending end of a pipe. `put` resolves once the far side (the peer
 * bridge, the broker) holds the datagram durably; only then may the relay
 * core acknowledge it upstream.
 */
export interface PipeSink extends AsyncDisposable {
  /** A name for reports: `nats://127.0.0.1:4222/mcast.news`, `udp://…`. */
  readonly name: string;
  /**
   * Hands one datagram to the pipe.
   *
   * @param datagram The datagram.
   * @returns Once the far side holds it durably.
   */
  put(datagram: PipeDatagram): Promise<void>;
  /**
   * Optional: receives the far bridge's reports of its far receivers
   * (HELLO, ACK and BYE frames named `NAME via BRIDGE`, encoded without a
   * trailer), for the near bridge to pass upstream to the sender. Set by
   * the relay core; a pipe that carries no reports never calls it.
   */
  onReport?: (frame: Uint8Array) => void;
}

/**
 * The receiving end of a pipe: datagrams in the order they were put.
 * A datagram is redelivered after a restart until it is `done`.
 */
export interface PipeSource extends AsyncDisposable {
  /** A name for reports. */
  readonly name: string;
  /**
   * The next datagram, waiting for one; `undefined` once the pipe closed.
   *
   * @returns The datagram, or `undefined`.
   */
  next(): Promise<PipeDatagram | undefined>;
  /**
   * Marks a datagram handled (multicast on the far group and held for
   * repairs): a restarted source does not deliver it again.
   *
   * @param datagram A datagram this source returned.
   * @returns Once recorded.
   */
  done(datagram: PipeDatagram): Promise<void>;
  /**
   * Optional: sends a report of a far receiver back to the near bridge
   * (see {@linkcode PipeSink.onReport}); best effort.
   *
   * @param frame A HELLO, ACK or BYE frame, encoded without a trailer.
   */
  report?(frame: Uint8Array): void;
}
