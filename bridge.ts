/**
 * Entry point of `mcast-bridge`: relays a group's traffic to another group,
 * through a unicast tunnel or through a broker. See `mcast-bridge --help`.
 *
 * @module
 */

import { bridgeMain } from "./lib/mod.ts";

if (import.meta.main) Deno.exit(await bridgeMain(Deno.args));
