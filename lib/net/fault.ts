/**
 * A seeded fault shim for any {@linkcode DatagramEndpoint}: it loses,
 * duplicates and reorders datagrams on the receive path, reproducibly, so
 * that the reliable protocol can be tested against the faults of real UDP.
 * Sending passes through unchanged.
 *
 * The shim pulls from the wrapped endpoint only while a `receive()` call is
 * waiting, so the wrapped endpoint's own queue (and its limit) still apply.
 *
 * For each datagram that arrives, in arrival order, the shim draws exactly
 * six numbers from its PRNG: loss, duplication, and for the datagram and its
 * possible copy a hold decision and a hold length. So for one seed, which
 * datagrams are lost does not depend on the duplication or reordering
 * settings. A lost datagram goes no further. A duplicate is a second copy
 * that follows the original as if it had arrived right after it. Each
 * datagram (copies included) is then held back with probability
 * `reorderRate`, for 1 to `reorder` later datagrams (uniformly); datagrams
 * due at the same time are released latest first. No datagram is thus
 * overtaken by more than `reorder` datagrams, nor by one that arrived more
 * than `reorder` places after it, and none is released more than `reorder`
 * places before or after its arrival position.
 *
 * Held datagrams are also released, all at once and in the same order, when
 * a `receive()` call has waited `holdMs` milliseconds without a new arrival,
 * and when the wrapped endpoint closes, so nothing stays stuck at the end of
 * a stream. Same seed and same arrivals give the same output sequence,
 * except where that idle timer fires mid-stream.
 *
 * @example Twelve datagrams through a faulty receiver
 * ```ts
 * import assert from "node:assert/strict";
 * import { withFaults } from "./fault.ts";
 * import { MemoryNetwork } from "./memory_net.ts";
 *
 * const network = new MemoryNetwork();
 * const sender = network.open({ address: "127.0.0.1" });
 * const receiver = withFaults(
 *   network.open({ address: "127.0.0.1", port: 5000 }),
 *   { seed: 1, loss: 0.25, duplicate: 0.1, reorder: 2, reorderRate: 0.3 },
 * );
 * for (let i = 0; i < 12; i++) {
 *   await sender.send(new Uint8Array([i]), receiver.local);
 * }
 * const got: number[] = [];
 * for (let i = 0; i < 10; i++) got.push((await receiver.receive())!.payload[0]!);
 * // 2, 6 and 7 lost, 0 twice, 4, 8 and 10 overtaken (10 by the idle timer).
 * assert.deepEqual(got, [0, 0, 1, 3, 5, 4, 9, 8, 11, 10]);
 * assert.deepEqual(receiver.counters, {
 *   passed: 9,
 *   dropped: 3,
 *   duplicated: 1,
 *   reordered: 4,
 * });
 * receiver.close();
 * network.close();
 * ```
 *
 * @module
 */

import type { Peer } from "./address.ts";
import type { Datagram, DatagramEndpoint } from "./socket.ts";

/** Options of {@linkcode withFaults}. */
export interface FaultOptions {
  /** Seed of the PRNG ({@linkcode seededRandom}); taken as a 32-bit unsigned integer. */
  seed: number;
  /** Probability that a datagram is lost, 0-1 (default 0). */
  loss?: number;
  /** Probability that a datagram that was not lost arrives twice, 0-1 (default 0). */
  duplicate?: number;
  /**
   * Maximum displacement in datagrams: a datagram held back is released
   * after 1 to `reorder` later ones (default 0: no reordering).
   */
  reorder?: number;
  /**
   * Probability that a datagram is held back when `reorder` > 0, 0-1
   * (default 0.25).
   */
  reorderRate?: number;
  /**
   * Milliseconds a waiting `receive()` lets pass without a new arrival
   * before held datagrams are released (default 5).
   */
  holdMs?: number;
}

/** What a {@linkcode FaultyEndpoint} did to the datagrams it received. */
export interface FaultCounters {
  /** Datagrams received from the wrapped endpoint and not lost. */
  passed: number;
  /** Datagrams received from the wrapped endpoint and lost. */
  dropped: number;
  /** Extra copies made (each passed datagram at most once). */
  duplicated: number;
  /**
   * Datagrams (copies included) held back for reordering. The shim's
   * output holds `passed + duplicated` datagrams.
   */
  reordered: number;
}

/** Default of {@linkcode FaultOptions.reorderRate}. */
export const DEFAULT_REORDER_RATE = 0.25;

/** Default of {@linkcode FaultOptions.holdMs}. */
export const DEFAULT_HOLD_MS = 5;

/**
 * A deterministic pseudo-random generator (mulberry32): the same seed gives
 * the same sequence, on every platform.
 *
 * @param seed Any number; taken as a 32-bit unsigned integer (`seed >>> 0`).
 * @returns A function returning the next number in [0, 1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { seededRandom } from "./fault.ts";
 * const a = seededRandom(42);
 * const b = seededRandom(42);
 * const first = a();
 * assert.ok(first >= 0 && first < 1);
 * assert.equal(b(), first);
 * ```
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return function next(): number {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A datagram held back, with its arrival index and release index. */
interface Held {
  datagram: Datagram;
  index: number;
  due: number;
}

interface Waiter {
  resolve: (datagram: Datagram | null) => void;
  reject: (error: unknown) => void;
}

/** Release order: earliest due first; at the same due, latest arrival first. */
function releaseOrder(a: Held, b: Held): number {
  return a.due - b.due || b.index - a.index;
}

function probability(name: string, value: number | undefined): number {
  const p = value ?? 0;
  if (!(p >= 0 && p <= 1)) {
    throw new RangeError(`Invalid ${name} ${value}: not between 0 and 1`);
  }
  return p;
}

/**
 * A {@linkcode DatagramEndpoint} that wraps another and applies seeded loss,
 * duplication and reordering to what it receives (see the module
 * documentation for the exact model). Create one with {@linkcode withFaults}.
 */
export class FaultyEndpoint implements DatagramEndpoint {
  #inner: DatagramEndpoint;
  #random: () => number;
  #loss: number;
  #duplicate: number;
  #reorder: number;
  #reorderRate: number;
  #holdMs: number;
  #counters: FaultCounters = {
    passed: 0,
    dropped: 0,
    duplicated: 0,
    reordered: 0,
  };
  #ready: Datagram[] = [];
  #held: Held[] = [];
  #waiters: Waiter[] = [];
  #arrivals = 0;
  #pulling = false;
  #ended = false;
  #closed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Wraps `endpoint`; same as {@linkcode withFaults}.
   *
   * @param endpoint The endpoint to receive from and send through.
   * @param options Seed and fault rates.
   * @throws {RangeError} When a rate is outside 0-1, `reorder` is not a
   * non-negative integer or `holdMs` is negative.
   */
  constructor(endpoint: DatagramEndpoint, options: FaultOptions) {
    this.#loss = probability("loss", options.loss);
    this.#duplicate = probability("duplicate", options.duplicate);
    this.#reorderRate = probability(
      "reorderRate",
      options.reorderRate ?? DEFAULT_REORDER_RATE,
    );
    const reorder = options.reorder ?? 0;
    if (!Number.isInteger(reorder) || reorder < 0) {
      throw new RangeError(
        `Invalid reorder ${reorder}: not a non-negative integer`,
      );
    }
    this.#reorder = reorder;
    const holdMs = options.holdMs ?? DEFAULT_HOLD_MS;
    if (!(holdMs >= 0 && Number.isFinite(holdMs))) {
      throw new RangeError(`Invalid holdMs ${holdMs}: not a duration`);
    }
    this.#holdMs = holdMs;
    this.#inner = endpoint;
    this.#random = seededRandom(options.seed);
  }

  /** The wrapped endpoint's local address. */
  get local(): Peer {
    return this.#inner.local;
  }

  /** A snapshot of the counters. */
  get counters(): FaultCounters {
    return { ...this.#counters };
  }

  /**
   * Sends through the wrapped endpoint, unchanged.
   *
   * @param payload The bytes.
   * @param to The destination.
   * @returns The wrapped endpoint's result.
   */
  send(payload: Uint8Array, to: Peer): Promise<void> {
    return this.#inner.send(payload, to);
  }

  /**
   * Waits for the next datagram that survives the faults.
   *
   * @returns The datagram, or `null` once this endpoint or the wrapped one
   * is closed (after any datagrams still held).
   * @throws What the wrapped endpoint's `receive()` throws.
   */
  receive(): Promise<Datagram | null> {
    if (this.#closed) return Promise.resolve(null);
    if (this.#waiters.length === 0) {
      const next = this.#ready.shift();
      if (next) return Promise.resolve(next);
      if (this.#ended) return Promise.resolve(null);
    }
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#pull();
      if (this.#timer === undefined) this.#arm();
    });
  }

  /**
   * Closes the wrapped endpoint, discards held datagrams, resolves waiting
   * `receive()` calls with `null` and clears the release timer. Safe to
   * call more than once.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#ready = [];
    this.#held = [];
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.resolve(null);
    this.#inner.close();
  }

  /** Same as {@linkcode FaultyEndpoint.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #pull(): void {
    if (this.#pulling || this.#closed || this.#ended) return;
    if (this.#waiters.length === 0) return;
    this.#pulling = true;
    this.#inner.receive().then(
      (datagram) => this.#arrive(datagram),
      (error) => this.#fail(error),
    );
  }

  #arrive(datagram: Datagram | null): void {
    this.#pulling = false;
    if (this.#closed) return;
    if (datagram === null) {
      this.#ended = true;
      this.#releaseAll();
    } else {
      this.#admitArrival(datagram);
    }
    this.#serve();
    this.#pull();
    this.#arm();
  }

  #fail(error: unknown): void {
    this.#pulling = false;
    if (this.#closed) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.reject(error);
    this.#arm();
  }

  /** Applies loss and duplication to one arrival. */
  #admitArrival(datagram: Datagram): void {
    const random = this.#random;
    const lost = random() < this.#loss;
    const twice = random() < this.#duplicate;
    const hold1 = random();
    const length1 = random();
    const hold2 = random();
    const length2 = random();
    if (lost) {
      this.#counters.dropped += 1;
      return;
    }
    this.#counters.passed += 1;
    this.#admit(datagram, hold1, length1);
    if (twice) {
      this.#counters.duplicated += 1;
      const copy: Datagram = {
        payload: datagram.payload.slice(),
        from: { ...datagram.from },
      };
      this.#admit(copy, hold2, length2);
    }
  }

  /** Applies reordering to one datagram and releases what is due. */
  #admit(datagram: Datagram, hold: number, length: number): void {
    const index = this.#arrivals;
    this.#arrivals += 1;
    const entry: Held = { datagram, index, due: index };
    if (this.#reorder > 0 && hold < this.#reorderRate) {
      entry.due = index + 1 + Math.floor(length * this.#reorder);
      this.#counters.reordered += 1;
    }
    this.#held.push(entry);
    if (this.#held.every((held) => held.due > index)) return;
    const due = this.#held.filter((held) => held.due <= index);
    this.#held = this.#held.filter((held) => held.due > index);
    due.sort(releaseOrder);
    for (const held of due) this.#ready.push(held.datagram);
  }

  #releaseAll(): void {
    const held = this.#held;
    this.#held = [];
    held.sort(releaseOrder);
    for (const entry of held) this.#ready.push(entry.datagram);
  }

  #serve(): void {
    while (this.#waiters.length > 0 && this.#ready.length > 0) {
      this.#waiters.shift()!.resolve(this.#ready.shift()!);
    }
    if (this.#ended && this.#ready.length === 0) {
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const waiter of waiters) waiter.resolve(null);
    }
  }

  /** (Re)starts the idle timer while someone waits and datagrams are held. */
  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#closed) return;
    if (this.#held.length === 0 || this.#waiters.length === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#releaseAll();
      this.#serve();
    }, this.#holdMs);
  }
}

/**
 * Wraps an endpoint with seeded loss, duplication and reordering on its
 * receive path; `send()` passes through unchanged, `close()` closes the
 * wrapped endpoint.
 *
 * @param endpoint The endpoint to wrap (a socket or a memory endpoint).
 * @param options Seed and fault rates.
 * @returns The faulty endpoint, with its {@linkcode FaultCounters}.
 * @throws {RangeError} When an option is out of range.
 */
export function withFaults(
  endpoint: DatagramEndpoint,
  options: FaultOptions,
): FaultyEndpoint {
  return new FaultyEndpoint(endpoint, options);
}
