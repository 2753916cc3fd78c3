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
} from "./errors.ts";
import type { ResolvedInterface } from "./interfaces.ts";

/** One received datagram. */
export interface Datagram {
  /** The payload, copied out of the receive buffer. */
  payload: Uint8Array;
  /** Where it came from. */
  from: Peer;
}

/** A bound UDP socket, as the sender and receiver logic use it. */
export interface DatagramEndpoint {
  /** The locally bound address and port. */
  readonly local: Peer;
  /** Sends one datagram. */
  send(payload: Uint8Array, to: Peer): Promise<void>;
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

function toPeer(addr: Deno.Addr): Peer {
  const net = addr as Deno.NetAddr;
  const [address, zone] = net.hostname.split("%");
  const peer: Peer = { address: address!, port: net.port };
  if (zone !== undefined && /^[0-9]+$/.test(zone)) peer.scopeId = Number(zone);
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
  #scope: string;

  constructor(conn: Deno.DatagramConn, scope: string) {
    this.#conn = conn;
    this.#scope = scope;
    this.local = toPeer(conn.addr);
  }

  async send(payload: Uint8Array, to: Peer): Promise<void> {
    const zone = to.scopeId !== undefined
      ? `%${to.scopeId}`
      : to.address.includes(":") && to.address.startsWith("ff")
      ? this.#scope
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

  async receive(): Promise<Datagram | null> {
    if (this.#closed) return null;
    try {
      const [data, addr] = await this.#conn.receive(this.#buffer);
      return { payload: data.slice(), from: toPeer(addr) };
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
 * host get the datagrams on any interface.
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
  const hostname = iface.family === 4 ? iface.address : "::";
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
  return new DenoEndpoint(conn, `%${iface.index}`);
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
  return new DenoEndpoint(conn, `%${iface.index}`);
}
