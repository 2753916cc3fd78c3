/**
 * Waiting in tests: bounded waits for promises and conditions, and gates a
 * test opens when it chooses. Every wait has a timeout.
 *
 * @module
 */

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `condition` every 2 ms until it holds; fails after `ms`.
 *
 * @param condition What to wait for.
 * @param ms The timeout.
 * @param what What is waited for, for the failure message.
 */
export async function until(
  condition: () => boolean,
  ms: number,
  what: string | (() => string),
): Promise<void> {
  const end = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > end) {
      throw new Error(`timed out: ${typeof what === "string" ? what : what()}`);
    }
    await delay(2);
  }
}

/**
 * Resolves `promise`, or calls `onTimeout` (to stop what runs) and fails
 * after `ms`; clears its timer in every case.
 *
 * @param ms The timeout.
 * @param promise What to wait for.
 * @param onTimeout Stops what runs, when the time is up.
 * @returns The promise's value.
 */
export async function bounded<T>(
  ms: number,
  promise: Promise<T>,
  onTimeout: () => void,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`not settled within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A promise and the function that resolves it. */
export interface Gate {
  /** Resolves once `open` is called. */
  promise: Promise<void>;
  /** Resolves `promise`. */
  open: () => void;
}

/** Returns a closed {@linkcode Gate}. */
export function gate(): Gate {
  let open = (): void => {};
  const promise = new Promise<void>((resolve) => open = resolve);
  return { promise, open };
}
