/**
 * The local facts `mcast-check` explains its measurements with, read from
 * `/proc` and `/sys`: routes, the interface's flags, `rp_filter`, buffer
 * limits and the kernel's counters. Parsers are pure (and tested on sample
 * text); {@linkcode readSystemFile} is the one reader.
 *
 * Deno refuses reads under `/proc` and `/sys` without `--allow-all`, so the
 * reader goes through libc's `open`/`read` when FFI is permitted (the tool
 * has `--allow-ffi` for its native sockets), then tries the runtime.
 *
 * @module
 */

import { parseIPv4 } from "../net/address.ts";
import { errorLine, NetworkError } from "../errors.ts";
import {
  acquireLibc,
  AF_INET,
  EAGAIN,
  errno,
  errorText,
  IPPROTO_IGMP,
  libc,
  MSG_DONTWAIT,
  O_RDONLY_CLOEXEC,
  releaseLibc,
  SO_BINDTODEVICE,
  SOCK_RAW_NONBLOCK_CLOEXEC,
  SOL_SOCKET,
} from "../native/libc.ts";
import { nativeUnavailable } from "../net/native_socket.ts";
import { concatBytes } from "../security/crypto.ts";

/** One IPv4 route of `/proc/net/route`. */
export interface RouteEntry {
  /** The interface it leaves by. */
  iface: string;
  /** Destination network, dotted. */
  destination: string;
  /** Prefix length. */
  prefix: number;
  /** Gateway, dotted (`0.0.0.0`: directly connected). */
  gateway: string;
}

/** The kernel counters the diagnosis compares before and after probing. */
export interface Counters {
  /** `IpExt: InMcastPkts`: multicast datagrams IP accepted. */
  inMcastPkts?: number;
  /** `TcpExt: IPReversePathFilter`: datagrams rp_filter dropped. */
  reversePathFilter?: number;
  /** `Udp: RcvbufErrors`: datagrams dropped on a full receive buffer. */
  rcvbufErrors?: number;
}

/** What the system says about the interface the check runs on. */
export interface LocalFacts {
  /** The interface's name. */
  iface: string;
  /** True for a loopback interface. */
  loopback: boolean;
  /** Whether the interface has the MULTICAST flag; absent when unknown. */
  multicastFlag?: boolean;
  /** The IPv4 routes; absent when unknown. */
  routes?: RouteEntry[];
  /** The effective `rp_filter` of the interface: max(all, interface). */
  rpFilter?: number;
  /** `net.core.rmem_max`. */
  rmemMax?: number;
  /** `net.ipv4.ip_default_ttl`: the TTL unicast datagrams leave with. */
  defaultTtl?: number;
}

/** Flag of `/sys/class/net/IF/flags`: the interface does multicast. */
export const IFF_MULTICAST = 0x1000;
/** Flag of `/sys/class/net/IF/flags`: a loopback interface. */
export const IFF_LOOPBACK = 0x8;

/**
 * Reads a small file under `/proc` or `/sys`.
 *
 * @param path The file.
 * @returns Its text, or `undefined` when it cannot be read here.
 */
export function readSystemFile(path: string): string | undefined {
  if (nativeUnavailable() === undefined) {
    const text = readWithLibc(path);
    if (text !== undefined) return text;
  }
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

function readWithLibc(path: string): string | undefined {
  const c = acquireLibc();
  try {
    const name = new TextEncoder().encode(`${path}\0`);
    const fd = c.open(name, O_RDONLY_CLOEXEC);
    if (fd < 0) return undefined;
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(65536);
    try {
      while (true) {
        const got = Number(c.read(fd, buffer, BigInt(buffer.byteLength)));
        if (got <= 0) break;
        chunks.push(buffer.slice(0, got));
      }
    } finally {
      c.close(fd);
    }
    return new TextDecoder().decode(concatBytes(chunks));
  } finally {
    releaseLibc();
  }
}

function hexAddress(hex: string): string {
  // /proc/net/route prints the address in host (little-endian) order.
  const value = parseInt(hex, 16);
  return [0, 8, 16, 24].map((shift) => (value >>> shift) & 0xff).join(".");
}

function prefixOf(mask: string): number {
  const value = parseInt(mask, 16) >>> 0;
  let bits = 0;
  for (let v = value; v !== 0; v >>>= 1) bits += v & 1;
  return bits;
}

/**
 * Parses `/proc/net/route`.
 *
 * @param text The file's text.
 * @returns The routes, in file order.
 */
export function parseRouteTable(text: string): RouteEntry[] {
  const routes: RouteEntry[] = [];
  for (const line of text.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8) continue;
    routes.push({
      iface: fields[0]!,
      destination: hexAddress(fields[1]!),
      gateway: hexAddress(fields[2]!),
      prefix: prefixOf(fields[7]!),
    });
  }
  return routes;
}

function toNumber(address: string): number {
  const [a, b, c, d] = parseIPv4(address) ?? [0, 0, 0, 0];
  return ((a! << 24) | (b! << 16) | (c! << 8) | d!) >>> 0;
}

function covers(route: RouteEntry, address: string): boolean {
  if (route.prefix === 0) return true;
  const mask = (0xffff_ffff << (32 - route.prefix)) >>> 0;
  return ((toNumber(address) & mask) >>> 0) ===
    ((toNumber(route.destination) & mask) >>> 0);
}

/**
 * The route the kernel's main table picks for an address (longest prefix;
 * `/proc/net/route` shows no metrics that would break ties among equals,
 * so the first wins).
 *
 * @param routes The routes.
 * @param address An IPv4 address.
 * @returns The route, or `undefined` when none covers the address.
 */
export function routeFor(
  routes: RouteEntry[],
  address: string,
): RouteEntry | undefined {
  let best: RouteEntry | undefined;
  for (const route of routes) {
    if (!covers(route, address)) continue;
    if (best === undefined || route.prefix > best.prefix) best = route;
  }
  return best;
}

/**
 * Reads one counter of a `/proc/net/snmp` or `/proc/net/netstat` text:
 * pairs of lines, a header naming the fields and one of values.
 *
 * @param text The file's text.
 * @param section E.g. `IpExt`.
 * @param field E.g. `InMcastPkts`.
 * @returns The value, or `undefined` when absent.
 */
export function parseCounter(
  text: string,
  section: string,
  field: string,
): number | undefined {
  const lines = text.split("\n").filter((l) => l.startsWith(`${section}:`));
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = lines[i]!.trim().split(/\s+/).slice(1);
    const values = lines[i + 1]!.trim().split(/\s+/).slice(1);
    const at = names.indexOf(field);
    if (at >= 0 && values[at] !== undefined) return Number(values[at]);
  }
  return undefined;
}

/**
 * Reads the counters now.
 *
 * @returns What could be read.
 */
export function readCounters(): Counters {
  const counters: Counters = {};
  const snmp = readSystemFile("/proc/net/snmp") ?? "";
  const netstat = readSystemFile("/proc/net/netstat") ?? "";
  const mcast = parseCounter(netstat, "IpExt", "InMcastPkts");
  if (mcast !== undefined) counters.inMcastPkts = mcast;
  const rp = parseCounter(netstat, "TcpExt", "IPReversePathFilter");
  if (rp !== undefined) counters.reversePathFilter = rp;
  const rcvbuf = parseCounter(snmp, "Udp", "RcvbufErrors");
  if (rcvbuf !== undefined) counters.rcvbufErrors = rcvbuf;
  return counters;
}

/**
 * What grew between two readings; a counter missing from either is absent.
 *
 * @param before The first reading.
 * @param after The second.
 * @returns The differences.
 */
export function counterDelta(before: Counters, after: Counters): Counters {
  const delta: Counters = {};
  for (const key of Object.keys(after) as (keyof Counters)[]) {
    const a = after[key];
    const b = before[key];
    if (a !== undefined && b !== undefined) delta[key] = a - b;
  }
  return delta;
}

function readInt(path: string): number | undefined {
  const text = readSystemFile(path)?.trim();
  if (text === undefined || !/^(0x)?[0-9a-f]+$/i.test(text)) return undefined;
  return Number(text);
}

/**
 * Reads the facts about an interface.
 *
 * @param iface The interface's name.
 * @returns What could be read.
 */
export function readLocalFacts(iface: string): LocalFacts {
  const facts: LocalFacts = { iface, loopback: iface === "lo" };
  const flags = readInt(`/sys/class/net/${iface}/flags`);
  if (flags !== undefined) {
    facts.multicastFlag = (flags & IFF_MULTICAST) !== 0;
    facts.loopback = (flags & IFF_LOOPBACK) !== 0;
  }
  const routes = readSystemFile("/proc/net/route");
  if (routes !== undefined) facts.routes = parseRouteTable(routes);
  const all = readInt("/proc/sys/net/ipv4/conf/all/rp_filter");
  const own = readInt(`/proc/sys/net/ipv4/conf/${iface}/rp_filter`);
  if (all !== undefined && own !== undefined) {
    facts.rpFilter = Math.max(all, own);
  }
  const rmem = readInt("/proc/sys/net/core/rmem_max");
  if (rmem !== undefined) facts.rmemMax = rmem;
  const ttl = readInt("/proc/sys/net/ipv4/ip_default_ttl");
  if (ttl !== undefined) facts.defaultTtl = ttl;
  return facts;
}

/**
 * Watches an interface for IGMP membership queries: a raw IGMP socket tied
 * to the interface (needs the native path and CAP_NET_RAW). The kernel
 * queues what arrives; {@linkcode IgmpWatch.queries} counts the queries.
 */
export class IgmpWatch {
  #fd: number;
  #queries = 0;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /**
   * Starts watching.
   *
   * @param iface The interface's name.
   * @returns The watch, or a reason why there is none.
   */
  static open(iface: string): IgmpWatch | string {
    const reason = nativeUnavailable();
    if (reason !== undefined) return reason;
    const c = acquireLibc();
    const fd = c.socket(AF_INET, SOCK_RAW_NONBLOCK_CLOEXEC, IPPROTO_IGMP);
    if (fd < 0) {
      const text = errorText(errno()).toLowerCase();
      releaseLibc();
      return `cannot open a raw IGMP socket: ${text}`;
    }
    const name = new TextEncoder().encode(`${iface}\0`);
    if (c.setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, name.length) < 0) {
      const text = errorText(errno()).toLowerCase();
      c.close(fd);
      releaseLibc();
      return `cannot watch ${iface}: ${text}`;
    }
    return new IgmpWatch(fd);
  }

  /**
   * Counts the queries that arrived so far.
   *
   * @returns How many membership queries arrived since the watch opened.
   * @throws {NetworkError} When reading the socket fails.
   */
  queries(): number {
    if (this.#fd < 0) return this.#queries;
    const buffer = new Uint8Array(2048);
    while (true) {
      const got = Number(libc().recv(this.#fd, buffer, 2048n, MSG_DONTWAIT));
      if (got < 0) {
        const code = errno();
        if (code === EAGAIN) break;
        throw new NetworkError(
          `Cannot watch for IGMP queries: ${errorLine(errorText(code))}`,
        );
      }
      const headerLength = (buffer[0]! & 0x0f) * 4;
      if (got > headerLength && buffer[headerLength] === 0x11) {
        this.#queries += 1;
      }
    }
    return this.#queries;
  }

  /** Stops watching. */
  close(): void {
    if (this.#fd < 0) return;
    libc().close(this.#fd);
    this.#fd = -1;
    releaseLibc();
  }
}
