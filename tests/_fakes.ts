/**
 * In-memory stand-ins for the socket layer, shared by the sender and receiver
 * unit tests, and fresh keys for the guard's tests.
 *
 * @module
 */

import type { Peer } from "../lib/net/address.ts";
import type { GroupKey, SigningKey } from "../lib/security/keys.ts";
import type { Datagram, DatagramEndpoint } from "../lib/net/socket.ts";

/**
 * An in-memory {@linkcode DatagramEndpoint}: `receive()` returns queued
 * datagrams, or waits for {@linkcode FakeEndpoint.deliver} or `close()` (which
 * resolves it with `null`).
 */
export class FakeEndpoint implements DatagramEndpoint {
  /** The local address it pretends to be bound to. */
  readonly local: Peer;
  /** Every datagram sent, in order. */
  readonly sent: { payload: Uint8Array; to: Peer }[] = [];
  /** How often `close()` was called. */
  closeCalls = 0;
  /** How often `receive()` was called. */
  receiveCalls = 0;
  /** Runs on each send; may throw to make the send fail. */
  onSend?: (payload: Uint8Array, to: Peer) => void;
  #queue: Datagram[];
  #waiter: ((datagram: Datagram | null) => void) | undefined;
  #closed = false;

  constructor(local: Peer, queued: Datagram[] = []) {
    this.local = local;
    this.#queue = [...queued];
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Hands a datagram to a pending `receive()`, or queues it. */
  deliver(datagram: Datagram): void {
    if (this.#closed) return;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter) waiter(datagram);
    else this.#queue.push(datagram);
  }

  send(payload: Uint8Array, to: Peer): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("endpoint is closed"));
    this.sent.push({ payload: payload.slice(), to });
    try {
      this.onSend?.(payload, to);
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.resolve();
  }

  receive(): Promise<Datagram | null> {
    this.receiveCalls += 1;
    if (this.#waiter) throw new Error("receive() called twice at once");
    if (this.#closed) return Promise.resolve(null);
    const next = this.#queue.shift();
    if (next) return Promise.resolve(next);
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  close(): void {
    this.closeCalls += 1;
    this.#closed = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.(null);
  }
}

/** Resolves `promise`, or fails the test after `ms` (no timer is left behind). */
export async function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`not settled within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Encodes text as UTF-8. */
export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** A fresh random group key, as a key file would hold. */
export function groupKey(): GroupKey {
  return { bytes: crypto.getRandomValues(new Uint8Array(32)) };
}

/** A fresh Ed25519 signing key and its public half. */
export async function signingKey(): Promise<SigningKey> {
  const pair = await crypto.subtle.generateKey(
    { name: "Ed25519" },
    true,
    ["sign", "verify"],
  ) as CryptoKeyPair;
  const publicKey = new Uint8Array(
    await crypto.subtle.exportKey("raw", pair.publicKey),
  );
  return { privateKey: pair.privateKey, publicKey };
}
