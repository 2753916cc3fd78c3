/**
 * Keys for the benchmark's workers (`mcast_send.ts`, `mcast_recv.ts`): the
 * key options they take, turned into a guarded endpoint by the same code as
 * `--key-file`, `--encrypt`, `--sign-key` and `--trust` in `lib/cli/cli.ts`
 * (plain datagrams refused, the default clock-skew bound, and one
 * `DropCounts` shared by the guard and the protocol).
 *
 * @module
 */

import type { IoChoice } from "../lib/net/io.ts";
import { loadGuardOptions } from "../lib/cli/cli.ts";
import {
  DEFAULT_MAX_SKEW_MS,
  type GuardOptions,
} from "../lib/security/guard.ts";
import type { KeyOptions } from "../lib/cli/options.ts";
import type { DropCounts } from "../lib/reliable/stats.ts";

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
  /** `--io`: which crypto backend (default `auto`). */
  io?: IoChoice;
}

/**
 * Reads the keys the options name, with the command-line tools' own code:
 * plain datagrams refused, the default clock-skew bound.
 *
 * @param keys The key options.
 * @param dropped The drop counters the protocol shares.
 * @returns The guard's options.
 */
export function loadGuard(
  keys: BenchKeys,
  dropped: DropCounts,
): Promise<GuardOptions> {
  const options: KeyOptions = {
    keyFile: keys.keyFile,
    encrypt: keys.encrypt === true,
    trust: keys.trust ?? [],
    allowPlain: false,
    maxSkewMs: DEFAULT_MAX_SKEW_MS,
  };
  if (keys.signKey !== undefined) options.signKey = keys.signKey;
  return loadGuardOptions(options, dropped, { io: keys.io ?? "auto" });
}
