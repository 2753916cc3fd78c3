/**
 * `mcast-check`'s front end (placeholder until the tool is built).
 *
 * @module
 */

/**
 * Runs `mcast-check` with `args` and returns its exit status.
 *
 * @param _args The command-line arguments.
 * @returns The exit status.
 */
export function checkMain(_args: string[]): Promise<number> {
  console.error("mcast-check: not built yet");
  return Promise.resolve(2);
}
