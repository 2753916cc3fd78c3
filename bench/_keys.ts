/**
 * Keys for the benchmark's workers (`mcast_send.ts`, `mcast_recv.ts`): the
 * key options they take, turned into a {@linkcode GuardedEndpoint} the way
 * `lib/cli.ts` does for `--key-file`, `--encrypt`, `--sign-key` and
 * `--trust` (the key files read with `readGroupKey`, `readSigningKey` and
 * `readPublicKey`, plain datagrams refused, the default clock-skew bound,
 * and one `DropCounts` shared by the guard and the protocol).
 *
 * @module
 */

import { DEFAULT_MAX_SKEW_MS, GuardedEndpoint } from "../lib/guard.ts";
import type { GuardOptions } from "../lib/guard.ts";
import { readGroupKey, readPublicKey, readSigningKey } from "../lib/keys.ts";
import type { DatagramEndpoint } from "../lib/socket.ts";
import type { DropCounts } from "../lib/stats.ts";

/** A worker's key options, as the command-line flags give them. */
export interface BenchKeys {
  /** `--key-file`: the group key file. */
  keyFile: string;
  /** `--encrypt` (sender). */
  encrypt?: boolean;
  /** `--sign-key` (sender): the Ed25519 private key file. */
  signKey?: string;
  /** `--trust` (receiver): public keys (hex) or `.pub` files. */
  trust?: string[];
}

/**
 * Reads the keys the options name, as `lib/cli.ts` does.
 *
 * @param keys The key options.
 * @param dropped The drop counters the protocol shares.
 * @returns The guard's options.
 */
export async function loadGuard(
  keys: BenchKeys,
  dropped: DropCounts,
): Promise<GuardOptions> {
  const guard: GuardOptions = {
    key: readGroupKey(keys.keyFile),
    encrypt: keys.encrypt === true,
    allowPlain: false,
    maxSkewMs: DEFAULT_MAX_SKEW_MS,
    dropped,
  };
  if (keys.signKey !== undefined) {
    guard.signingKey = await readSigningKey(keys.signKey);
  }
  const trust = keys.trust ?? [];
  if (trust.length > 0) guard.trust = trust.map(readPublicKey);
  return guard;
}

/**
 * Wraps a socket in a guard when keys are configured (as `lib/cli.ts`
 * does).
 *
 * @param endpoint The socket.
 * @param guard The guard's options, or undefined without keys.
 * @returns The endpoint to hand to the protocol.
 */
export function guarded(
  endpoint: DatagramEndpoint,
  guard: GuardOptions | undefined,
): DatagramEndpoint {
  return guard ? new GuardedEndpoint(endpoint, guard) : endpoint;
}
