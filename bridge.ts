/**
 * Entry point of `mcast-bridge`: relays a group's traffic to another group,
 * through a unicast tunnel or through a broker. See `mcast-bridge --help`.
 *
 * @module
 */

import { bridgeMain, registerPipeScheme } from "./lib/mod.ts";
import { NATS_SCHEME } from "./lib/bridge/nats_leg.ts";

// Registered here, not in lib/: only the bridge loads the NATS client.
registerPipeScheme("nats", NATS_SCHEME);

if (import.meta.main) Deno.exit(await bridgeMain(Deno.args));
