/**
 * The socket layer: opening, joining, sending and receiving with
 * `Deno.listenDatagram`, with runtime errors mapped to the library's typed
 * errors. Everything above this module sees {@linkcode DatagramEndpoint}.
 *
 * @module
 */

import type { Group, Peer } from "./address.ts";
import {
  errorLine,
  McastError,
  NetworkError,
  PermissionError,
} from "../errors.ts";
import type { ResolvedInterface } from "./interfaces.ts";

/** One received datagram. */
export interface Datagram {
  /** The payload, copied out of the receive buffer. */
  payload: Uint8Array;
  /** Where it came from. */
  from: Peer;
  /**
   * The datagram exactly as it arrived, before a guard opened it (its
   * trailer removed, its records decrypted): set by a
   * `GuardedEndpoint` made with `keepSealed`, for a bridge that
   * checks frames but forwards them verbatim.
   */
  sealed?: Uint8Array;
}

/** A bound UDP socket, as the sender and receiver logic use it. */
export interface DatagramEndpoint {
  /** The locally bound address and port. */
  readonly local: Peer;
  /**
   * Bytes this endpoint adds to every frame it sends (a guard's trailer):
   * a sender packs that much less into each datagram. Absent: none.
   */
  readonly overhead?: number;
  /** Sends one datagram. */
  send(payload: Uint8Array, to: Peer): Promise<void>;
  /**
   * Takes one datagram for sending at once, without waiting, where the
   * endpoint can (a batching socket with room left): true when taken (the
   * payload is copied), false when the caller must use `send` instead. A
   * sender streaming datagrams saves a promise per datagram this way.
   */
  trySend?(payload: Uint8Array, to: Peer): boolean;
  /**
   * The next datagram if one is already here (a batching socket's batch
   * not yet handed out), else `null` without waiting: a loop drains a
   * batch without a promise per datagram, then calls `receive`.
   */
  tryReceive?(): Datagram | null;
  /** Waits for the next datagram; resolves `null` once the endpoint is closed. */
  receive(): Promise<Datagram | null>;
  /** Leaves any group and closes the socket; safe to call more than once. */
  close(): void;
}

/** Options of {@linkcode openSenderSocket}. */
export interface SenderSocketOptions {
  /** Multicast TTL, 0-255. */
  ttl: number;
}

/** Options of {@linkcode openGroupSocket}. */
export interface GroupSocketOptions {
  /** The group's UDP port. */
  port: number;
  /** Bind the wildcard address instead of the group's (default: only on Windows). */
  bindWildcard?: boolean;
}

/** Size of the one receive buffer each endpoint reuses (a UDP datagram's maximum). */
const RECEIVE_BUFFER_SIZE = 65536;

/** All-hosts groups: every host is a member already, joining them sends no report. */
const ALL_HOSTS = "224.0.0.1";

/**
 * Maps an error thrown by the runtime's socket API to a typed error.
 *
 * @param error What the runtime threw.
 * @param action What was being done, e.g. `Cannot bind 224.1.1.1:10000`.
 * @returns A {@linkcode PermissionError} or {@linkcode NetworkError}.
 */
export function socketError(error: unknown, action: string): McastError {
  if (error instanceof McastError) return error;
  const detail = errorLine(error).replace(/^./, (c) => c.toLowerCase());
  if (error instanceof Deno.errors.NotCapable) {
    return new PermissionError(`${action}: ${detail}`);
  }
  if (error instanceof Deno.errors.AddrInUse) {
    return new NetworkError(
      `${action}: address already in use (another socket holds the port without address reuse)`,
    );
  }
  return new NetworkError(`${action}: ${detail}`);
}

function hostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

// IPv6 on Deno 2.9.6 (Linux), measured in private network namespaces joined
// by veth pairs and a bridge (tests/netns_test.ts checks the outcome):
//
// - Hostnames go through getaddrinfo, so zones work in both listenDatagram()
//   and send(): `ff02::1:3%2`, `ff02::1:3%veth0`, `fe80::1%2` (a zone given
//   by name only for link-local-scoped addresses: `ff05::1%veth0` fails with
//   "failed to lookup address information"; a numeric zone always parses).
//   Binding a link-local unicast or link-local-scoped multicast address
//   without a zone fails with `TypeError: Invalid argument (os error 22)`, an
//   unknown zone with `No such device (os error 19)`. Binding one with a zone
//   ties the socket to that interface (the kernel's sk_bound_dev_if): a
//   receiver bound to `ff02::1:3%2` and joined on interfaces 2 and 3 hears
//   nothing sent on 3, and its unscoped sends leave by interface 2.
// - The zone of a multicast destination only counts for interface- and
//   link-local-scoped groups (ff01::/16, ff02::/16, ff12::/16...). For wider
//   scopes (ff05::, ff0e::) the kernel ignores it and takes the first
//   ff00::/8 route: 20 datagrams to `ff05::6d63:5%4` from a socket bound to
//   `::` all left by another link; from one bound to `fe80::…%4`, all left
//   by interface 4. So the sender binds the interface's link-local address
//   with its zone, which pins every group's egress to the interface. The
//   IPv6 hop limit stays 1 (the runtime has no setter), so a link-local
//   source address loses nothing.
// - Deno reports peer addresses without a zone (`fe80::…`, never
//   `fe80::…%2`): the scope id is dropped. Python prints a link-local source
//   as `('fe80::…', 41000, 0, 2)` (scope id = arrival interface; no `%`
//   since Python 3.7). A link-local source reaches our sockets over the
//   interface they are tied to (the sender's, a receiver's for ff01/ff02
//   groups) or joined on, so toPeer() restores the scope id from the
//   endpoint's interface index, and acknowledgements go back to
//   `fe80::…%index`. Other sources keep scope id 0, as in Python.
// - joinMulticastV6() takes the interface index; joining `lo` succeeds but
//   Linux never delivers IPv6 multicast over `lo`.

/** True for an IPv6 link-local unicast address (fe80::/10). */
function isLinkLocal(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address);
}

function toPeer(addr: Deno.Addr, index = 0): Peer {
  const net = addr as Deno.NetAddr;
  const [address, zone] = net.hostname.split("%");
  const peer: Peer = { address: address!, port: net.port };
  if (zone !== undefined && /^[0-9]+$/.test(zone)) peer.scopeId = Number(zone);
  else if (index > 0 && isLinkLocal(peer.address)) peer.scopeId = index;
  return peer;
}

function isClosedError(error: unknown): boolean {
  return error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.BadResource;
}

class DenoEndpoint implements DatagramEndpoint {
  readonly local: Peer;
  #conn: Deno.DatagramConn;
  #buffer = new Uint8Array(RECEIVE_BUFFER_SIZE);
  #closed = false;
  #index: number;
  #lastHost = "";
  #lastPeer: Peer | undefined;

  /**
   * @param conn The socket.
   * @param index IPv6: the interface index (0 for IPv4).
   */
  constructor(conn: Deno.DatagramConn, index: number) {
    this.#conn = conn;
    this.#index = index;
    this.local = toPeer(conn.addr, index);
  }

  async send(payload: Uint8Array, to: Peer): Promise<void> {
    const multicast6 = to.address.includes(":") && to.address.startsWith("ff");
    const zone = to.scopeId !== undefined
      ? `%${to.scopeId}`
      : multicast6 && this.#index > 0
      ? `%${this.#index}`
      : "";
    try {
      await this.#conn.send(payload, {
        transport: "udp",
        hostname: `${to.address}${zone}`,
        port: to.port,
      });
    } catch (error) {
      throw socketError(
        error,
        `Cannot send to ${hostPort(to.address, to.port)}`,
      );
    }
  }

  /** The source as a Peer; a stream from one source reuses one object. */
  #peer(addr: Deno.NetAddr): Peer {
    const last = this.#lastPeer;
    if (
      last && addr.hostname === this.#lastHost && addr.port === last.port
    ) {
      return last;
    }
    const peer = toPeer(addr, this.#index);
    Object.freeze(peer);
    this.#lastHost = addr.hostname;
    this.#lastPeer = peer;
    return peer;
  }

  async receive(): Promise<Datagram | null> {
    if (this.#closed) return null;
    try {
      const [data, addr] = await this.#conn.receive(this.#buffer);
      return { payload: data.slice(), from: this.#peer(addr as Deno.NetAddr) };
    } catch (error) {
      if (this.#closed || isClosedError(error)) return null;
      throw socketError(error, "Cannot receive");
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the runtime.
    }
  }
}

function listen(
  hostname: string,
  port: number,
  options: { reuseAddress: boolean; loopback: boolean },
): Deno.DatagramConn {
  try {
    return Deno.listenDatagram({
      transport: "udp",
      hostname,
      port,
      reuseAddress: options.reuseAddress,
      loopback: options.loopback,
    });
  } catch (error) {
    throw socketError(error, `Cannot bind ${hostPort(hostname, port)}`);
  }
}

/**
 * Opens the sender's socket: bound to the interface's address on an ephemeral
 * port (on Linux the bound address picks the interface multicast leaves by),
 * with the TTL set and multicast loopback on, so that receivers on the same
 * host get the datagrams on any interface. IPv6 binds the interface's
 * link-local address with its zone (`fe80::…%2`), which ties the socket, and
 * so every group's traffic, to the interface.
 *
 * @param iface The interface to send from.
 * @param options The TTL.
 * @returns The endpoint; IPv6 group destinations are scoped to the interface.
 * @throws {NetworkError} When binding or setting the TTL fails.
 * @throws {PermissionError} When network access is not granted.
 */
export async function openSenderSocket(
  iface: ResolvedInterface,
  options: SenderSocketOptions,
): Promise<DatagramEndpoint> {
  const hostname = iface.family === 4
    ? iface.address
    : `${iface.address}%${iface.index}`;
  const conn = listen(hostname, 0, { reuseAddress: false, loopback: true });
  try {
    if (iface.family === 4) {
      // The runtime sets the TTL through a membership object only.
      const membership = await conn.joinMulticastV4(ALL_HOSTS, iface.address);
      await membership.setTTL(options.ttl);
    }
  } catch (error) {
    conn.close();
    throw socketError(
      error,
      `Cannot set TTL ${options.ttl} on ${iface.address}`,
    );
  }
  return new DenoEndpoint(conn, iface.family === 4 ? 0 : iface.index);
}

/**
 * Opens a receiver's socket: bound to the group's port with address reuse
 * (every receiver on the host gets every datagram) and joined to the group on
 * the interface. It binds the group address itself, so that datagrams sent
 * to other groups on the same port never reach it (not possible on Windows,
 * where it binds the wildcard address).
 *
 * @param group The group to join.
 * @param iface The interface to join on.
 * @param options The port.
 * @returns The endpoint; closing it leaves the group.
 * @throws {NetworkError} When binding or joining fails.
 * @throws {PermissionError} When network access is not granted.
 */
export async function openGroupSocket(
  group: Group,
  iface: ResolvedInterface,
  options: GroupSocketOptions,
): Promise<DatagramEndpoint> {
  const wildcard = options.bindWildcard ?? Deno.build.os === "windows";
  const hostname = wildcard
    ? (group.family === 4 ? "0.0.0.0" : "::")
    : group.family === 4
    ? group.address
    : `${group.address}%${iface.index}`;
  const conn = listen(hostname, options.port, {
    reuseAddress: true,
    loopback: true,
  });
  try {
    if (group.family === 4) {
      await conn.joinMulticastV4(group.address, iface.address);
    } else {
      await conn.joinMulticastV6(group.address, iface.index);
    }
  } catch (error) {
    conn.close();
    const on = iface.name ?? iface.address;
    throw socketError(error, `Cannot join ${group.address} on ${on}`);
  }
  return new DenoEndpoint(conn, group.family === 4 ? 0 : iface.index);
}

/**
 * Opens a unicast UDP socket bound to `address:port` (port 0: an ephemeral
 * one), e.g. one end of a bridge's tunnel.
 *
 * @param address The local address to bind.
 * @param port The local port.
 * @returns The endpoint.
 * @throws {NetworkError} When binding fails.
 * @throws {PermissionError} When network access is not granted.
 */
export function openUnicastSocket(
  address: string,
  port: number,
): DatagramEndpoint {
  const conn = listen(address, port, { reuseAddress: false, loopback: false });
  return new DenoEndpoint(conn, 0);
}
