/**
 * `mcast-bridge`'s front end (placeholder until the tool is built).
 *
 * @module
 */

/**
 * Runs `mcast-bridge` with `args` and returns its exit status.
 *
 * @param _args The command-line arguments.
 * @returns The exit status.
 */
export function bridgeMain(_args: string[]): Promise<number> {
  console.error("mcast-bridge: not built yet");
  return Promise.resolve(2);
}
