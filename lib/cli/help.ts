/**
 * The `--help` texts of the two tools.
 *
 * @module
 */

import {
  DEFAULTS,
  formatSize,
  MAX_PAYLOAD,
  MAX_RECEIVERS,
  RELIABLE_DEFAULTS,
} from "./options.ts";
import { DEFAULT_MAX_SKEW_MS } from "../security/guard.ts";
import { DEFAULT_MAX_SESSIONS } from "../reliable/receiver.ts";
import { DEFAULT_TAKEOVER_MS } from "../reliable/standby.ts";
import { MAX_STATE_SESSIONS } from "../reliable/state.ts";

/** `--takeover`'s default, in the option's unit. */
const TAKEOVER_SECONDS = DEFAULT_TAKEOVER_MS / 1000;

const COMMON =
  `  -g, --group ADDR       multicast group: IPv4 224.0.0.0/4 or IPv6 ff00::/8
                         (default ${DEFAULTS.group})
  -p, --port N           UDP port of the group, 1-65535 (default ${DEFAULTS.port})
  -i, --interface IF     interface: an IPv4 address or a name (IPv4 groups);
                         a name, index or address (IPv6 groups)
                         (default ${DEFAULTS.interface}, loopback: traffic stays
                         on this host)
      --json             one JSON object per line and event, for scripts
      --io PATH          sockets and crypto: native (Linux: libc sockets with
                         batched system calls, OpenSSL's libcrypto), deno (the
                         runtime's, on every platform) or auto (native where
                         it loads, else deno; default)`;

const SIZES =
  `SIZE is a number of bytes, optionally with a unit: K, M, G (1000-based) or
Ki, Mi, Gi (1024-based), B optional (500KB, 64KiB, 8MiB).`;

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
  -t, --ttl N            multicast TTL or IPv6 hop limit, 0-255
                         (default ${DEFAULTS.ttl}: the local segment only; IPv6
                         groups with --io deno: 1 only)
  -w, --wait SECONDS     how long to wait for acknowledgements (default ${DEFAULTS.waitSeconds})
  -e, --expect N         stop as soon as N acknowledgements arrived; exit 1 if
                         the wait ends first
${INFO}

Reliable mode:
      --reliable         deliver every bulletin to every receiver exactly once
                         and in order (numbered packets, repairs on request,
                         cumulative acknowledgements); exit 1 with a delivery
                         report if the deadline passes first
  -l, --lines            each input line is one bulletin: a stream from
                         standard input, or from --file
      --deadline SECONDS
                         how long to wait for the receivers before the first
                         bulletin and for acknowledgements after the last
                         (default ${RELIABLE_DEFAULTS.deadlineSeconds})
      --receivers NAMES  the receivers by name, comma-separated; each must
                         acknowledge everything (excludes --expect)
      --rate RATE        send at most RATE: bulletins per second (100) or
                         bytes per second with a unit (500KB, 2MiB, 100B)
                         (default: no limit)
      --repair-rate RATE
                         budget for retransmissions, same units
                         (default 16MiB per second)
      --buffer SIZE      retransmission buffer, ${formatSize(64 * 1024)}-${
  formatSize(1024 ** 3)
} (default ${formatSize(RELIABLE_DEFAULTS.bufferBytes)})
      --window PACKETS   run at most PACKETS ahead of the slowest receiver,
                         16-1000000 (default ${RELIABLE_DEFAULTS.window})
      --drop-slow        evict a receiver that falls a window behind, with a
                         report line, instead of slowing down for it
      --max-size SIZE    largest bulletin, up to 4294967295 bytes
                         (default ${formatSize(RELIABLE_DEFAULTS.maxSize)})
      --mtu BYTES        UDP payload per packet, 128-${MAX_PAYLOAD} (default ${RELIABLE_DEFAULTS.mtu})
      --journal DIR      write bulletins to DIR before sending them; a sender
                         restarted with the same DIR resumes the session
      --standby          hot standby, on a second host with the same input:
                         follow the primary's session silently and take it
                         over (same session, next sequence and bulletin)
                         when its heartbeats stop
      --takeover SECONDS the primary's silence that makes a standby take
                         over, at least 0.1 (default ${TAKEOVER_SECONDS})
With --reliable, --expect N waits for N receivers (1-${MAX_RECEIVERS}), and
--message or --file may be up to --max-size bytes.
${SIZES}

Keys (with --reliable; see docs/security.md):
      --gen-key PATH     write a new 256-bit group key to PATH (mode 0600)
                         and exit
      --gen-sign-key PATH
                         write a new Ed25519 signing key to PATH (mode 0600)
                         and its public key to PATH.pub, and exit
      --key-file PATH    authenticate every frame with the group key in PATH
                         (a key file others can read is refused)
      --encrypt          encrypt bulletins too (AES-256-GCM)
      --sign-key PATH    sign bulletins, so that receivers that --trust the
                         public key accept them from this sender only
      --max-skew SECONDS frames sent longer ago than this are replays
                         (default ${DEFAULT_MAX_SKEW_MS / 1000})

Exit status: 0 sent (and every expected acknowledgement arrived),
1 run-time failure or acknowledgements missing, 2 bad input.

Examples:
  mcast-send                                   the exercise, on loopback
  mcast-send -m "markets closed" -e 3 -w 5     wait for three terminals
  date | mcast-send -f - -g 239.1.2.3 -p 5000  payload from standard input
  mcast-send -i eth0 -t 4                      a real network, 4 hops
  mcast-send -g ff02::1:3 -i eth0              IPv6, link-local scope
  mcast-send --reliable --expect 3 -m "flash"  three terminals, for sure
  tail -f news | mcast-send --reliable -l --receivers desk-1,desk-2  a feed
  mcast-send --gen-key agency.key                  a group key, once
  mcast-send --reliable --key-file agency.key --encrypt -m "flash"  sealed`;

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
      --source ADDR      source-specific multicast: join for datagrams from
                         ADDR only (IGMPv3/MLDv2; the native path)
${INFO}

Reliable mode (frames from mcast-send --reliable are recognised by
themselves; plain datagrams are answered as above):
      --name NAME        this receiver's name, 1-64 bytes of UTF-8 without
                         commas (default: the host name and a short random
                         suffix)
      --output DIR       write each delivered bulletin to a file in DIR
      --state FILE       remember what was delivered; restarted with the same
                         FILE, it neither repeats nor misses a bulletin
      --from-start       ask for every bulletin the sender still holds
      --max-size SIZE    largest bulletin accepted, up to 4294967295 bytes
                         (default ${formatSize(RELIABLE_DEFAULTS.maxSize)})
      --max-sessions N   follow at most N senders' sessions at once, 1-${MAX_STATE_SESSIONS};
                         the least recently heard makes room (default ${DEFAULT_MAX_SESSIONS})
${SIZES}

Keys (see docs/security.md):
      --key-file PATH    accept only frames authenticated with the group key
                         in PATH, and authenticate every answer
      --trust KEY        show only bulletins signed by KEY: 64 hex digits or
                         a .pub file from mcast-send --gen-sign-key
                         (repeatable)
      --allow-plain      with a key, still answer plain datagrams
      --max-skew SECONDS frames sent longer ago than this are replays
                         (default ${DEFAULT_MAX_SKEW_MS / 1000})

Exit status: 0 stopped or count reached, 1 run-time failure, 2 bad input.

Examples:
  mcast-recv                                   the exercise, on loopback
  mcast-recv -c 1 --json                       one message, as JSON
  mcast-recv -g 239.1.2.3 -p 5000 -i eth0      a real network
  mcast-recv -g ff02::1:3 -p 5000 -i eth0      IPv6, link-local scope
  mcast-recv --name desk-1 --state desk-1.state --output inbox/  one terminal
  mcast-recv --key-file agency.key --trust agency-sign.key.pub  signed only`;
