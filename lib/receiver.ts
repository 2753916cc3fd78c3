/**
 * The receiver's logic: wait for datagrams on the group, report each one and
 * answer it with a unicast acknowledgement, until a count is reached or the
 * receiver is stopped. Datagrams that are protocol frames go to the
 * reliable protocol's state machine instead.
 *
 * @module
 */

import type { Group } from "./net/address.ts";
import { errorLine } from "./errors.ts";
import type { ReceiverEvent } from "./events.ts";
import { decodeFrame, encodeFrame, peekData } from "./wire/frame.ts";
import {
  type DeliverySink,
  ReliableReceiver,
  type ReliableReceiverOptions,
} from "./reliable/receiver.ts";
import type { ReceiverState } from "./reliable/state.ts";
import type { DatagramEndpoint } from "./net/socket.ts";
import type { DropCounts, SessionPaths } from "./reliable/stats.ts";
import type { BulletinHasher } from "./reliable/digest.ts";

/** How the receiver takes part in the reliable protocol. */
export interface ProtocolOptions {
  /** The receiver's name in ACK and NACK frames. */
  name: string;
  /** Ask for everything the sender still holds. */
  fromStart?: boolean;
  /** Largest bulletin accepted, in bytes. */
  maxSize?: number;
  /** Most sessions followed at once (default 4). */
  maxSessions?: number;
  /** The saved position, from `--state`. */
  state?: ReceiverState | null;
  /** Persistence of bulletins and position. */
  sink?: DeliverySink;
  /** Drop counters shared with a {@linkcode GuardedEndpoint}. */
  dropped?: DropCounts;
  /** The paths the datagrams take, named in the session event and statistics. */
  paths?: SessionPaths;
  /** How fragmented bulletins are hashed (default `node:crypto`'s SHA-256). */
  hasher?: BulletinHasher;
  /** Protocol timers and randomness, for tests. */
  tuning?: Pick<
    ReliableReceiverOptions,
    "nackBackoffMs" | "nackRepeatMs" | "ackJitterMs" | "random" | "maxAhead"
  >;
}

/** Options of {@linkcode receiveBulletins}. */
export interface ReceiveBulletinsOptions {
  /** The joined group, for the events. */
  group: Group;
  /** The group's UDP port, for the events. */
  port: number;
  /** The acknowledgement payload, or `null` to send none. */
  ack: Uint8Array | null;
  /** Return after this many datagrams. */
  count?: number;
  /** Receives every event, in order. */
  onEvent: (event: ReceiverEvent) => void;
  /** Stops the receiver (e.g. on SIGINT or SIGTERM). */
  signal?: AbortSignal;
  /** The reliable protocol's settings (a default name when absent). */
  protocol?: ProtocolOptions;
}

/**
 * Receives datagrams on `endpoint` (a joined group socket) and acknowledges
 * each one from the same socket, so the sender sees the group's port as the
 * source. A failed acknowledgement is reported and does not stop the loop.
 * An abort ends the wait for the next datagram at once; a datagram already
 * received is reported and acknowledged first. Closes the endpoint (leaving
 * the group) in every case.
 *
 * @param endpoint A socket from {@linkcode openGroupSocket}.
 * @param options Group, acknowledgement, count and the event sink.
 * @returns The number of datagrams received.
 * @throws {NetworkError} When receiving fails for a reason other than closing.
 */
export async function receiveBulletins(
  endpoint: DatagramEndpoint,
  options: ReceiveBulletinsOptions,
): Promise<number> {
  const { group, port, onEvent } = options;
  let messages = 0;
  let reason: "count" | "signal" = "signal";
  let receiving = false;
  function stop(): void {
    // Closing the socket is the only way to end a pending receive: say
    // goodbye to a sender first (a last ACK and a BYE), then close.
    if (receiving) void engine.close().finally(() => endpoint.close());
  }
  const protocol = options.protocol;
  const engine = new ReliableReceiver({
    name: protocol?.name ?? "receiver",
    fromStart: protocol?.fromStart,
    maxSize: protocol?.maxSize,
    ...(protocol?.maxSessions === undefined
      ? {}
      : { maxSessions: protocol.maxSessions }),
    state: protocol?.state,
    sink: protocol?.sink,
    dropped: protocol?.dropped,
    paths: protocol?.paths,
    hasher: protocol?.hasher,
    ...protocol?.tuning,
    // --count counts plain messages and bulletins together.
    get limit(): number | undefined {
      return options.count === undefined ? undefined : options.count - messages;
    },
    onEvent,
    async send(frame, to) {
      // An encoding failure is a failed send, reported like one.
      await endpoint.send(encodeFrame(frame), to);
    },
  });
  let frames = false;
  function total(): number {
    return messages + engine.delivered;
  }
  let waiting = true;
  options.signal?.addEventListener("abort", stop, { once: true });
  try {
    while (!options.signal?.aborted) {
      if (waiting) onEvent({ type: "waiting", group, port, messages });
      waiting = false;
      if (options.signal?.aborted) break;
      receiving = true;
      const datagram = await endpoint.receive();
      receiving = false;
      if (datagram === null) break;
      const head = peekData(datagram.payload);
      if (head && engine.screen(head, datagram.payload.length)) {
        frames = true;
        continue;
      }
      const decoded = decodeFrame(datagram.payload);
      if (decoded.kind !== "plain") {
        frames = true;
        if (decoded.kind === "frame") {
          await engine.handle(decoded.frame, datagram.from);
        } else {
          engine.invalid(decoded.reason);
        }
        if (options.count !== undefined && total() >= options.count) {
          reason = "count";
          break;
        }
        continue;
      }
      messages += 1;
      waiting = true;
      onEvent({ type: "message", ...datagram });
      if (options.ack !== null) {
        try {
          await endpoint.send(options.ack, datagram.from);
          onEvent({
            type: "ack-sent",
            to: datagram.from,
            payload: options.ack,
          });
        } catch (error) {
          onEvent({
            type: "ack-failed",
            to: datagram.from,
            reason: errorLine(error),
          });
        }
      }
      if (options.count !== undefined && total() >= options.count) {
        reason = "count";
        break;
      }
    }
  } finally {
    options.signal?.removeEventListener("abort", stop);
    // Leaving on its own (--count), the socket is still open: say goodbye
    // three times, in case a farewell is lost.
    await engine.close({ farewells: reason === "count" ? 3 : 1 });
    endpoint.close();
  }
  const stopped: ReceiverEvent = { type: "stopped", messages: total(), reason };
  if (frames || Object.values(engine.stats.dropped).some((n) => n > 0)) {
    stopped.stats = engine.stats;
  }
  onEvent(stopped);
  return total();
}
