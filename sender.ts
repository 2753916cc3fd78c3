/**
 * Entry point of `mcast-send`: sends one datagram to a multicast group and
 * prints the acknowledgements. See `mcast-send --help`.
 *
 * @module
 */

import { sendMain } from "./lib/mod.ts";

if (import.meta.main) Deno.exit(await sendMain(Deno.args));
