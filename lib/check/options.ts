/**
 * `mcast-check`'s command line: parsing (pure, apart from reading
 * `/etc/hosts` for peer names) and its `--help` text.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type Group,
  parseGroup,
  parseIPv4,
  type Peer,
} from "../net/address.ts";
import { UsageError } from "../errors.ts";
import type { IoChoice } from "../net/io.ts";
import {
  type Command,
  COMMON_OPTIONS,
  parseInteger,
  parseIoChoice,
  parseSeconds,
  translateParseError,
} from "../cli/options.ts";

/**
 * `mcast-check`'s defaults. The group differs from the data tools'
 * 224.1.1.1:10000 (an administratively scoped address, omping's port), so
 * a check never disturbs a running `mcast-recv`.
 */
export const CHECK_DEFAULTS = {
  group: "239.255.43.21",
  port: 4321,
  unicastPort: 4322,
  interface: "127.0.0.1",
  count: 5,
  intervalMs: 200,
  ttl: 1,
  timeoutMs: 10_000,
} as const;

/** A peer as named on the command line, and where it is. */
export interface CheckPeer extends Peer {
  /** The name given (`host-b`, `198.51.100.2:4400`). */
  name: string;
}

/** Validated options of `mcast-check`. */
export interface CheckOptions {
  /** The group probes go to. */
  group: Group;
  /** The group's port. */
  port: number;
  /** This instance's unicast port (and the peers', unless named). */
  unicastPort: number;
  /** The `--interface` value, resolved later. */
  interface: string;
  /** The peers, in the order given (this host included, if named). */
  peers: CheckPeer[];
  /** Rounds of probes. */
  count: number;
  /** Time between rounds, ms. */
  intervalMs: number;
  /** Multicast TTL. */
  ttl: number;
  /** Longest the check may take, ms. */
  timeoutMs: number;
  /** One JSON object per line. */
  json: boolean;
  /** The socket path. */
  io: IoChoice;
}

const CHECK = {
  ...COMMON_OPTIONS,
  "unicast-port": { type: "string", short: "u" },
  peers: { type: "string" },
  count: { type: "string", short: "c" },
  interval: { type: "string" },
  ttl: { type: "string", short: "t" },
  timeout: { type: "string", short: "w" },
} as const;

/** Help text of `mcast-check`. */
export const CHECK_HELP = `Usage: mcast-check [OPTIONS] HOST[:PORT]...

Run the same command on every host: each instance probes the others by
unicast and by multicast, prints per peer the loss, round-trip times,
duplicates and hop distance of both, then one line for each problem found
(no multicast route, no MULTICAST flag, capped receive buffer, rp_filter,
TTL too small, firewall, IGMP snooping without a querier). Exit status 0
when every peer is reachable by multicast both ways, 1 otherwise, 2 on bad
input.

HOST is an IPv4 address or a name from /etc/hosts; PORT its unicast port
(default --unicast-port). The host's own entry is skipped.

Options:
  -g, --group ADDR       IPv4 multicast group of the probes
                         (default ${CHECK_DEFAULTS.group})
  -p, --port N           UDP port of the group (default ${CHECK_DEFAULTS.port})
  -u, --unicast-port N   this instance's unicast port, 1-65535
                         (default ${CHECK_DEFAULTS.unicastPort})
  -i, --interface IF     interface: an IPv4 address or a name
                         (default ${CHECK_DEFAULTS.interface}, loopback)
      --peers LIST       more peers, comma-separated HOST[:PORT]
  -c, --count N          probes per peer and channel, 1-10000
                         (default ${CHECK_DEFAULTS.count})
      --interval SECONDS time between probes (default ${
  CHECK_DEFAULTS.intervalMs / 1000
})
  -t, --ttl N            multicast TTL, 1-255 (default ${CHECK_DEFAULTS.ttl})
  -w, --timeout SECONDS  longest the check takes (default ${
  CHECK_DEFAULTS.timeoutMs / 1000
})
      --json             one JSON object per line: peers, findings, summary
      --io PATH          native (Linux: libc sockets; reads received TTLs,
                         so hop distances are known), deno (hops ?) or auto
                         (default)
  -h, --help             show this help and exit
  -V, --version          show the version and exit`;

/** Options of {@linkcode parseCheckArgs}. */
export interface ParseCheckOptions {
  /** The text of `/etc/hosts`, for names; read from the file by default. */
  hosts?: string;
}

function readHosts(): string {
  try {
    return Deno.readTextFileSync("/etc/hosts");
  } catch {
    return "";
  }
}

/**
 * The IPv4 address of a name in an `/etc/hosts` text.
 *
 * @param hosts The file's text.
 * @param name A host name.
 * @returns Its first IPv4 address, or `undefined`.
 */
export function lookupHost(hosts: string, name: string): string | undefined {
  for (const line of hosts.split("\n")) {
    const words = line.replace(/#.*/, "").trim().split(/\s+/);
    const [address, ...names] = words;
    if (address === undefined || parseIPv4(address) === undefined) continue;
    if (names.includes(name)) return address;
  }
  return undefined;
}

function parsePeer(
  text: string,
  defaultPort: number,
  hosts: () => string,
): CheckPeer {
  const match = /^([^:\s]+)(?::([0-9]+))?$/.exec(text);
  if (!match) {
    throw new UsageError(
      `Invalid peer "${text}": expected HOST or HOST:PORT (IPv4)`,
    );
  }
  const host = match[1]!;
  const port = match[2] === undefined ? defaultPort : parseInteger(
    "unicast-port",
    match[2],
    { min: 1, max: 65535 },
  );
  let address = parseIPv4(host) === undefined ? undefined : host;
  address ??= lookupHost(hosts(), host);
  if (address === undefined) {
    throw new UsageError(
      `Unknown peer "${host}": not an IPv4 address nor a name in /etc/hosts`,
    );
  }
  return { name: text, address, port };
}

/**
 * Parses the arguments of `mcast-check`.
 *
 * @param args The command-line arguments, without the program name.
 * @param options The hosts file's text, for tests.
 * @returns Help, version, or validated options.
 * @throws {UsageError} On any invalid option or value.
 */
export function parseCheckArgs(
  args: string[],
  options: ParseCheckOptions = {},
): Command<CheckOptions> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: CHECK,
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw translateParseError(error, CHECK);
  }
  const { values, positionals } = parsed;
  if (values.help) return { action: "help" };
  if (values.version) return { action: "version" };
  const group = parseGroup(values.group ?? CHECK_DEFAULTS.group);
  if (group.family !== 4) {
    throw new UsageError(
      `Invalid --group "${values.group}": mcast-check probes IPv4 groups only`,
    );
  }
  const port = values.port === undefined
    ? CHECK_DEFAULTS.port
    : parseInteger("port", values.port, { min: 1, max: 65535 });
  const unicastPort = values["unicast-port"] === undefined
    ? CHECK_DEFAULTS.unicastPort
    : parseInteger("unicast-port", values["unicast-port"], {
      min: 1,
      max: 65535,
    });
  const iface = values.interface ?? CHECK_DEFAULTS.interface;
  if (iface === "") throw new UsageError(`Invalid --interface "": empty`);
  let hostsText: string | undefined = options.hosts;
  const hosts = () => hostsText ??= readHosts();
  const names = [
    ...positionals,
    ...(values.peers === undefined ? [] : values.peers.split(",")),
  ];
  if (names.length === 0) {
    throw new UsageError(
      `No peers: name the hosts to check, e.g. mcast-check host-a host-b`,
    );
  }
  const peers = names.map((name) => parsePeer(name, unicastPort, hosts));
  const io = parseIoChoice(values.io);
  const intervalMs = values.interval === undefined
    ? CHECK_DEFAULTS.intervalMs
    : parseSeconds("interval", values.interval);
  if (intervalMs < 10) {
    throw new UsageError(
      `Invalid --interval "${values.interval}": at least 0.01 seconds`,
    );
  }
  const timeoutMs = values.timeout === undefined
    ? CHECK_DEFAULTS.timeoutMs
    : parseSeconds("timeout", values.timeout);
  if (timeoutMs === 0) {
    throw new UsageError(`Invalid --timeout "${values.timeout}": zero`);
  }
  return {
    action: "run",
    options: {
      group,
      port,
      unicastPort,
      interface: iface,
      peers,
      count: values.count === undefined
        ? CHECK_DEFAULTS.count
        : parseInteger("count", values.count, { min: 1, max: 10_000 }),
      intervalMs,
      ttl: values.ttl === undefined
        ? CHECK_DEFAULTS.ttl
        : parseInteger("ttl", values.ttl, { min: 1, max: 255 }),
      timeoutMs,
      json: values.json === true,
      io,
    },
  };
}
