/**
 * Scheduling helpers for long-running loops: yielding to the event loop
 * without the 4 ms clamp nested `setTimeout(0)` calls get, and a token
 * bucket for rate limits.
 *
 * @module
 */

/**
 * Lets a busy loop yield to the event loop (so that socket reads in the same
 * process are served) at the cost of one message-port round trip, about
 * 25 µs: nested `setTimeout(fn, 0)` calls are clamped to 4 ms.
 */
export class Yielder {
  #channel = new MessageChannel();
  #waiters: (() => void)[] = [];
  #closed = false;

  constructor() {
    this.#channel.port1.onmessage = () => this.#waiters.shift()?.();
  }

  /** Resolves on a later turn of the event loop. */
  yield(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      this.#channel.port2.postMessage(null);
    });
  }

  /** Releases the message port; pending and later yields resolve at once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const waiter of this.#waiters.splice(0)) waiter();
    this.#channel.port1.close();
    this.#channel.port2.close();
  }
}

/** Options of {@linkcode TokenBucket}. */
export interface TokenBucketOptions {
  /** Tokens added per second. */
  perSecond: number;
  /** Most tokens held (the largest burst); defaults to a tenth of a second's worth, at least `minBurst`. */
  burst?: number;
  /** Smallest burst, e.g. one datagram's bytes (default 1). */
  minBurst?: number;
  /** Clock in milliseconds; defaults to `performance.now`. */
  now?: () => number;
}

/** A token bucket: `take(n)` says how long to wait before spending `n`. */
export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  /**
   * Creates one.
   *
   * @param options Rate, burst and clock.
   */
  constructor(options: TokenBucketOptions) {
    this.#rate = options.perSecond;
    this.#burst = Math.max(
      options.burst ?? options.perSecond / 10,
      options.minBurst ?? 1,
    );
    this.#now = options.now ?? (() => performance.now());
    this.#tokens = this.#burst;
    this.#last = this.#now();
  }

  /**
   * Spends `count` tokens, going into debt if needed.
   *
   * @param count Tokens to spend.
   * @returns Milliseconds to wait before the next spend (0: none).
   */
  take(count: number): number {
    this.#refill();
    this.#tokens -= count;
    return this.#tokens >= 0 ? 0 : -this.#tokens * 1000 / this.#rate;
  }

  /**
   * Spends `count` tokens only when there are that many (never into debt).
   *
   * @param count Tokens to spend.
   * @returns Whether they were spent.
   */
  tryTake(count: number): boolean {
    this.#refill();
    if (this.#tokens < count) return false;
    this.#tokens -= count;
    return true;
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(
      this.#burst,
      this.#tokens + (now - this.#last) * this.#rate / 1000,
    );
    this.#last = now;
  }
}
