/**
 * The receiver's logic: wait for datagrams on the group, report each one and
 * answer it with a unicast acknowledgement, until a count is reached or the
 * receiver is stopped.
 *
 * @module
 */

import type { Group } from "./address.ts";
import { errorLine } from "./errors.ts";
import type { ReceiverEvent } from "./events.ts";
import type { DatagramEndpoint } from "./socket.ts";

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
    if (receiving) endpoint.close();
  }
  options.signal?.addEventListener("abort", stop, { once: true });
  try {
    while (!options.signal?.aborted) {
      onEvent({ type: "waiting", group, port, messages });
      if (options.signal?.aborted) break;
      receiving = true;
      const datagram = await endpoint.receive();
      receiving = false;
      if (datagram === null) break;
      messages += 1;
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
      if (options.count !== undefined && messages >= options.count) {
        reason = "count";
        break;
      }
    }
  } finally {
    options.signal?.removeEventListener("abort", stop);
    endpoint.close();
  }
  onEvent({ type: "stopped", messages, reason });
  return messages;
}
