/**
 * Entry point of `mcast-check`: probes every named peer by unicast and by
 * multicast and explains why multicast does not get through. See
 * `mcast-check --help`.
 *
 * @module
 */

import { checkMain } from "./lib/mod.ts";

if (import.meta.main) Deno.exit(await checkMain(Deno.args));
