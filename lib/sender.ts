/**
 * The sender's logic: one datagram to the group, then acknowledgements until
 * the wait ends or enough have arrived.
 *
 * @module
 */

import type { Group } from "./net/address.ts";
import type { SenderEvent } from "./events.ts";
import type { DatagramEndpoint } from "./net/socket.ts";

/** Options of {@linkcode sendBulletin}. */
export interface SendBulletinOptions {
  /** The multicast group. */
  group: Group;
  /** The group's UDP port. */
  port: number;
  /** How long to wait for acknowledgements, in milliseconds. */
  waitMs: number;
  /** Stop as soon as this many acknowledgements arrived. */
  expect?: number;
  /** Receives every event, in order. */
  onEvent: (event: SenderEvent) => void;
  /** Ends the wait early (e.g. on SIGINT). */
  signal?: AbortSignal;
}

/** What {@linkcode sendBulletin} observed. */
export interface SendResult {
  /** Acknowledgements received. */
  acks: number;
  /** The expected count, when one was given. */
  expected?: number;
}

/**
 * Sends one datagram to the group from `endpoint`, then reports every
 * datagram that comes back until `waitMs` passed, `expect` acknowledgements
 * arrived, or `signal` aborted. Closes the endpoint in every case.
 *
 * @param endpoint A socket from {@linkcode openSenderSocket}.
 * @param payload The bulletin.
 * @param options Group, wait, expected count and the event sink.
 * @returns How many acknowledgements arrived.
 * @throws {NetworkError} When the send fails.
 */
export async function sendBulletin(
  endpoint: DatagramEndpoint,
  payload: Uint8Array,
  options: SendBulletinOptions,
): Promise<SendResult> {
  const { group, port, onEvent } = options;
  let acks = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stop = () => endpoint.close();
  try {
    options.signal?.throwIfAborted();
    onEvent({ type: "sending", group, port, payload });
    await endpoint.send(payload, { address: group.address, port });
    onEvent({ type: "waiting" });
    options.signal?.addEventListener("abort", stop, { once: true });
    if (options.signal?.aborted) stop();
    timer = setTimeout(stop, options.waitMs);
    while (options.expect === undefined || acks < options.expect) {
      const datagram = await endpoint.receive();
      if (datagram === null) break;
      acks += 1;
      onEvent({ type: "ack", from: datagram.from, payload: datagram.payload });
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", stop);
    endpoint.close();
  }
  const closing: SenderEvent = { type: "closing", acks };
  if (options.expect !== undefined) closing.expected = options.expect;
  onEvent(closing);
  return options.expect === undefined
    ? { acks }
    : { acks, expected: options.expect };
}
