/**
 * Entry point of `mcast-recv`: joins a multicast group, prints what arrives
 * and acknowledges it. See `mcast-recv --help`.
 *
 * @module
 */

import { recvMain } from "./lib/mod.ts";

if (import.meta.main) Deno.exit(await recvMain(Deno.args));
