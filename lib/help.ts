/**
 * The `--help` texts of the two tools.
 *
 * @module
 */

import { DEFAULTS, MAX_PAYLOAD } from "./options.ts";

const COMMON =
  `  -g, --group ADDR       multicast group: IPv4 224.0.0.0/4 or IPv6 ff00::/8
                         (default ${DEFAULTS.group})
  -p, --port N           UDP port of the group, 1-65535 (default ${DEFAULTS.port})
  -i, --interface IF     interface: an IPv4 address or a name (IPv4 groups);
                         a name, index or address (IPv6 groups)
                         (default ${DEFAULTS.interface}, loopback: traffic stays
                         on this host)
      --json             one JSON object per line and event, for scripts`;

const INFO = `  -h, --help             show this help and exit
  -V, --version          show the version and exit`;

/** Help text of `mcast-send`. */
export const SEND_HELP = `Usage: mcast-send [OPTIONS]

Send one datagram to a multicast group, then print every acknowledgement
that comes back until the wait ends.

Options:
${COMMON}
  -m, --message TEXT     payload (default "${DEFAULTS.message}")
  -f, --file PATH        payload from a file, or "-" for standard input
                         (at most ${MAX_PAYLOAD} bytes)
  -t, --ttl N            multicast TTL, 0-255 (default ${DEFAULTS.ttl}: the local
                         segment only; IPv6 groups always use hop limit 1)
  -w, --wait SECONDS     how long to wait for acknowledgements (default ${DEFAULTS.waitSeconds})
  -e, --expect N         stop as soon as N acknowledgements arrived; exit 1 if
                         the wait ends first
${INFO}

Exit status: 0 sent (and every expected acknowledgement arrived),
1 run-time failure or acknowledgements missing, 2 bad input.

Examples:
  mcast-send                                   the exercise, on loopback
  mcast-send -m "markets closed" -e 3 -w 5     wait for three terminals
  date | mcast-send -f - -g 239.1.2.3 -p 5000  payload from standard input
  mcast-send -i eth0 -t 4                      a real network, 4 hops
  mcast-send -g ff02::1:3 -i eth0              IPv6, link-local scope`;

/** Help text of `mcast-recv`. */
export const RECV_HELP = `Usage: mcast-recv [OPTIONS]

Join a multicast group, print every datagram that arrives and answer each
with a unicast acknowledgement, until interrupted (SIGINT/SIGTERM: leave the
group, exit 0).

Options:
${COMMON}
  -c, --count N          exit 0 after N messages
      --ack TEXT         acknowledgement payload (default "${DEFAULTS.ack}")
      --no-ack           send no acknowledgements
${INFO}

Exit status: 0 stopped or count reached, 1 run-time failure, 2 bad input.

Examples:
  mcast-recv                                   the exercise, on loopback
  mcast-recv -c 1 --json                       one message, as JSON
  mcast-recv -g 239.1.2.3 -p 5000 -i eth0      a real network
  mcast-recv -g ff02::1:3 -p 5000 -i eth0      IPv6, link-local scope`;
