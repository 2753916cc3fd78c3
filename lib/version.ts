/**
 * The tools' version, kept equal to `version` in `deno.json` (a test checks).
 *
 * @module
 */

/** Version of mcast-send, mcast-recv and the library. */
export const VERSION = "0.1.0";
