/**
 * The native Linux socket path: UDP sockets made through libc
 * (`lib/native/libc.ts`), batched with `sendmmsg`/`recvmmsg`, with large
 * buffers, IPv6 hop limits and source-specific joins, none of which the
 * runtime's `Deno.listenDatagram` offers. The endpoint behaves as the one of
 * `lib/net/socket.ts` ({@linkcode DatagramEndpoint}).
 *
 * FFI bypasses Deno's network sandbox, so this module asks
 * `Deno.permissions` itself before binding, joining or sending to a new
 * destination, and fails as the runtime would.
 *
 * @module
 */

import {
  addressFamily,
  type Family,
  type Group,
  normalizeIPv6,
  parseIPv4,
  type Peer,
} from "./address.ts";
import {
  errorLine,
  type McastError,
  NetworkError,
  PermissionError,
  UsageError,
} from "../errors.ts";
import type { ResolvedInterface } from "./interfaces.ts";
import type { Datagram, DatagramEndpoint } from "./socket.ts";
import {
  acquireLibc,
  addressOf,
  AF_INET,
  AF_INET6,
  CMSGHDR,
  EACCES,
  EADDRINUSE,
  EAGAIN,
  EFD_NONBLOCK_CLOEXEC,
  EINTR,
  ENOBUFS,
  EPERM,
  errno,
  errorText,
  GROUP_SOURCE_REQ,
  IOVEC,
  IP_ADD_MEMBERSHIP,
  IP_ADD_SOURCE_MEMBERSHIP,
  IP_MREQ,
  IP_MREQ_SOURCE,
  IP_MULTICAST_ALL,
  IP_MULTICAST_IF,
  IP_MULTICAST_LOOP,
  IP_MULTICAST_TTL,
  IP_RECVTTL,
  IP_TTL,
  IPPROTO_IP,
  IPPROTO_IPV6,
  IPV6_HOPLIMIT,
  IPV6_JOIN_GROUP,
  IPV6_MREQ,
  IPV6_MULTICAST_HOPS,
  IPV6_MULTICAST_IF,
  IPV6_MULTICAST_LOOP,
  IPV6_RECVHOPLIMIT,
  libc,
  MCAST_JOIN_SOURCE_GROUP,
  MMSGHDR,
  MSG_DONTWAIT,
  POLLFD,
  POLLIN,
  POLLOUT,
  releaseLibc,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_REUSEADDR,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
  SOCK_DGRAM_NONBLOCK_CLOEXEC,
  SOCKADDR_IN,
  SOCKADDR_IN6,
  SOL_SOCKET,
} from "../native/libc.ts";

/** Buffer sizes of a native socket. */
export interface NativeBuffers {
  /**
   * The receive buffer granted: what the kernel reports, halved (Linux
   * doubles the value it grants, the other half for its bookkeeping).
   */
  receive: number;
  /** The send buffer granted, the same way. */
  send: number;
  /** The receive buffer asked for. */
  requestedReceive: number;
  /** The send buffer asked for. */
  requestedSend: number;
  /** True when the effective receive buffer is below the one asked for. */
  capped: boolean;
}

/** What a native endpoint adds to {@linkcode DatagramEndpoint}. */
export interface NativeInfo {
  /** The path this endpoint takes. */
  readonly io: "native";
  /** Its buffer sizes. */
  readonly buffers: NativeBuffers;
  /**
   * Sends every queued datagram now, waiting for the socket to take them.
   *
   * @throws {NetworkError} When a queued datagram could not be sent.
   */
  flush(): Promise<void>;
}

/** Options of {@linkcode openNativeSenderSocket}. */
export interface NativeSenderOptions {
  /** Multicast TTL (IPv4) or hop limit (IPv6), 0-255. */
  ttl: number;
  /** Send buffer to ask for, bytes (default 4 MiB). */
  sendBuffer?: number;
  /** Receive buffer to ask for, bytes (default 8 MiB). */
  receiveBuffer?: number;
  /** The port to bind (default 0: an ephemeral one). */
  port?: number;
  /**
   * Report each received datagram's TTL or hop limit
   * ({@linkcode Datagram.ttl}), through `IP_RECVTTL`/`IPV6_RECVHOPLIMIT`.
   */
  receiveTtl?: boolean;
}

/** Options of {@linkcode openNativeGroupSocket}. */
export interface NativeGroupOptions {
  /** The group's UDP port. */
  port: number;
  /** Bind the wildcard address instead of the group's (default false). */
  bindWildcard?: boolean;
  /** Source-specific multicast: hear only this sender (an address of the group's family). */
  source?: string;
  /** Receive buffer to ask for, bytes (default 8 MiB). */
  receiveBuffer?: number;
  /** Send buffer to ask for, bytes (default 4 MiB). */
  sendBuffer?: number;
  /** Report each received datagram's TTL or hop limit. */
  receiveTtl?: boolean;
}

/** A native endpoint. */
export type NativeEndpoint = DatagramEndpoint & NativeInfo;

/** Receive buffer asked for by default. */
const DEFAULT_RECEIVE_BUFFER = 8 * 1024 * 1024;
/** Send buffer asked for by default. */
const DEFAULT_SEND_BUFFER = 4 * 1024 * 1024;
/** Datagrams per `sendmmsg`/`recvmmsg` call. */
const BATCH = 64;
/** Bytes of one datagram slot (a UDP datagram's maximum fits). */
const SLOT = 65536;
/** Bytes of one address slot (a `sockaddr_in6` fits). */
const NAME_SLOT = 32;
/** Bytes of one control slot (one `cmsghdr` with an int fits twice over). */
const CONTROL_SLOT = 64;
/** Longest single `poll` wait; waits loop, and `close()` cuts them short. */
const POLL_TIMEOUT_MS = 1000;

let unavailable: string | undefined | null = null;

/**
 * Tells whether the native path can be used here: Linux on x86_64 or
 * aarch64, FFI permitted (asked without prompting), `libc.so.6` loadable.
 * The answer is cached.
 *
 * @returns `undefined` when it can, else a short reason.
 */
export function nativeUnavailable(): string | undefined {
  if (unavailable === null) unavailable = findUnavailable();
  return unavailable;
}

function findUnavailable(): string | undefined {
  if (Deno.build.os !== "linux") return "not Linux";
  if (Deno.build.arch !== "x86_64" && Deno.build.arch !== "aarch64") {
    return `not x86_64 or aarch64 (${Deno.build.arch})`;
  }
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    return "FFI not permitted (run with --allow-ffi)";
  }
  try {
    acquireLibc();
  } catch (error) {
    return `cannot load libc.so.6: ${errorLine(error)}`;
  }
  releaseLibc();
  return undefined;
}

/**
 * Says when the system gave a smaller receive buffer than asked for.
 *
 * @param buffers What an endpoint reports.
 * @returns One line for stderr, or `undefined` when not capped.
 */
export function bufferWarning(buffers: NativeBuffers): string | undefined {
  if (!buffers.capped) return undefined;
  return `warning: receive buffer is ${buffers.receive} bytes, asked for ${buffers.requestedReceive} (the system caps it: sysctl -w net.core.rmem_max=${buffers.requestedReceive})`;
}

/**
 * Opens a sender's socket on the native path: bound to the interface's
 * address on an ephemeral port (IPv6: its link-local address with the
 * interface's scope id, as `openSenderSocket` does), multicast leaving by
 * the interface, TTL or hop limit set, multicast loopback on. It receives
 * too (acknowledgements come back to it).
 *
 * @param iface The interface to send from.
 * @param options The TTL and buffer sizes.
 * @returns The endpoint; IPv6 group destinations are scoped to the interface.
 * @throws {NetworkError} When a socket call fails or the native path is unavailable.
 * @throws {PermissionError} When network or FFI access is not granted.
 */
export function openNativeSenderSocket(
  iface: ResolvedInterface,
  options: NativeSenderOptions,
): Promise<NativeEndpoint> {
  try {
    return Promise.resolve(openSender(iface, options));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Opens a receiver's socket on the native path: address reuse, bound to the
 * group's address (or the wildcard), joined on the interface, to any source
 * or, with `source`, to that one sender only (source-specific multicast).
 *
 * @param group The group to join.
 * @param iface The interface to join on.
 * @param options The port, wildcard binding, a source, buffer sizes.
 * @returns The endpoint; closing it leaves the group.
 * @throws {UsageError} When the source is not an address of the group's family.
 * @throws {NetworkError} When a socket call fails or the native path is unavailable.
 * @throws {PermissionError} When network or FFI access is not granted.
 */
export function openNativeGroupSocket(
  group: Group,
  iface: ResolvedInterface,
  options: NativeGroupOptions,
): Promise<NativeEndpoint> {
  try {
    return Promise.resolve(openGroup(group, iface, options));
  } catch (error) {
    return Promise.reject(error);
  }
}

// ---------------------------------------------------------------------------
// Opening

function requireNative(): void {
  const reason = nativeUnavailable();
  if (reason === undefined) return;
  if (reason.startsWith("FFI")) {
    throw new PermissionError(`Cannot open a native socket: ${reason}`);
  }
  throw new NetworkError(`Cannot open a native socket: ${reason}`);
}

function openSender(
  iface: ResolvedInterface,
  options: NativeSenderOptions,
): NativeEndpoint {
  requireNative();
  const family = iface.family;
  const index = family === 6 ? iface.index : 0;
  const port = options.port ?? 0;
  const bindName = hostPort(iface.address, port);
  requireNet(`Cannot bind ${bindName}`, bindName);
  acquireLibc();
  let fd = -1;
  try {
    fd = openSocket(family);
    const buffers = setBuffers(fd, options);
    bindTo(fd, { address: iface.address, port, scopeId: index }, bindName);
    const ttlAction = `Cannot set TTL ${options.ttl} on ${iface.address}`;
    if (family === 4) {
      const address = new Uint8Array(4);
      address.set(ipv4Bytes(iface.address));
      setOption(fd, IPPROTO_IP, IP_MULTICAST_IF, address, ttlAction);
      setInt(fd, IPPROTO_IP, IP_MULTICAST_TTL, options.ttl, ttlAction);
      setInt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, 1, ttlAction);
    } else {
      setInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, index, ttlAction);
      setInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, options.ttl, ttlAction);
      setInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 1, ttlAction);
    }
    if (options.receiveTtl) receiveTtl(fd, family);
    return new NativeSocket(fd, index, buffers, options.receiveTtl === true);
  } catch (error) {
    if (fd >= 0) libc().close(fd);
    releaseLibc();
    throw error;
  }
}

function openGroup(
  group: Group,
  iface: ResolvedInterface,
  options: NativeGroupOptions,
): NativeEndpoint {
  requireNative();
  const source = options.source === undefined
    ? undefined
    : checkSource(options.source, group);
  const family = group.family;
  const index = family === 6 ? iface.index : 0;
  const wildcard = options.bindWildcard ?? false;
  const bindAddress = wildcard
    ? (family === 4 ? "0.0.0.0" : "::")
    : group.address;
  const bindName = hostPort(bindAddress, options.port);
  const on = iface.name ?? iface.address;
  const joinAction = source === undefined
    ? `Cannot join ${group.address} on ${on}`
    : `Cannot join ${group.address} from ${source} on ${on}`;
  requireNet(`Cannot bind ${bindName}`, bindName);
  requireNet(joinAction, hostPort(group.address, options.port));
  acquireLibc();
  let fd = -1;
  try {
    fd = openSocket(family);
    setInt(fd, SOL_SOCKET, SO_REUSEADDR, 1, `Cannot bind ${bindName}`);
    const buffers = setBuffers(fd, options);
    bindTo(fd, {
      address: bindAddress,
      port: options.port,
      scopeId: wildcard ? 0 : index,
    }, bindName);
    if (family === 4) {
      join4(fd, group.address, iface.address, source, joinAction);
      setInt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, 1, joinAction);
      // Off: a wildcard-bound socket would otherwise hear every group any
      // socket of the host joined on the port, not only its own.
      setInt(fd, IPPROTO_IP, IP_MULTICAST_ALL, 0, joinAction);
    } else {
      join6(fd, group.address, index, source, joinAction);
      setInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 1, joinAction);
    }
    if (options.receiveTtl) receiveTtl(fd, family);
    return new NativeSocket(fd, index, buffers, options.receiveTtl === true);
  } catch (error) {
    if (fd >= 0) libc().close(fd);
    releaseLibc();
    throw error;
  }
}

/** The source in canonical form; throws when it is not of the group's family. */
function checkSource(text: string, group: Group): string {
  const address = text.split("%")[0]!;
  const family = addressFamily(address);
  if (family !== group.family) {
    const want = group.family === 4 ? "an IPv4" : "an IPv6";
    throw new UsageError(
      `Invalid source "${text}" for group ${group.address}: not ${want} address`,
    );
  }
  return family === 6 ? normalizeIPv6(address)! : address;
}

function openSocket(family: Family): number {
  const fd = libc().socket(
    family === 4 ? AF_INET : AF_INET6,
    SOCK_DGRAM_NONBLOCK_CLOEXEC,
    0,
  );
  check(fd, "Cannot open a UDP socket");
  return fd;
}

/** Asks for each received datagram's TTL (IPv4) or hop limit (IPv6). */
function receiveTtl(fd: number, family: Family): void {
  const action = "Cannot ask for received TTLs";
  if (family === 4) setInt(fd, IPPROTO_IP, IP_RECVTTL, 1, action);
  else setInt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1, action);
}

/**
 * The TTL or hop limit in a slot's control messages, if the kernel put one
 * there (`IP_TTL` or `IPV6_HOPLIMIT`, an int each).
 */
function controlTtl(
  view: DataView,
  offset: number,
  length: number,
): number | undefined {
  let at = 0;
  while (at + CMSGHDR.size <= length) {
    const size = Number(view.getBigUint64(offset + at + CMSGHDR.length, true));
    if (size < CMSGHDR.size) return undefined;
    const level = view.getInt32(offset + at + CMSGHDR.level, true);
    const type = view.getInt32(offset + at + CMSGHDR.type, true);
    if (
      (level === IPPROTO_IP && type === IP_TTL) ||
      (level === IPPROTO_IPV6 && type === IPV6_HOPLIMIT)
    ) {
      return view.getInt32(offset + at + CMSGHDR.size, true);
    }
    at += (size + 7) & ~7;
  }
  return undefined;
}

function bindTo(fd: number, peer: Peer, name: string): void {
  const address = new Uint8Array(NAME_SLOT);
  const length = writeSockaddr(new DataView(address.buffer), 0, peer);
  check(libc().bind(fd, address, length), `Cannot bind ${name}`);
}

function join4(
  fd: number,
  group: string,
  iface: string,
  source: string | undefined,
  action: string,
): void {
  if (source === undefined) {
    const request = new Uint8Array(IP_MREQ.size);
    request.set(ipv4Bytes(group), IP_MREQ.group);
    request.set(ipv4Bytes(iface), IP_MREQ.interface);
    setOption(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, request, action);
    return;
  }
  const request = new Uint8Array(IP_MREQ_SOURCE.size);
  request.set(ipv4Bytes(group), IP_MREQ_SOURCE.group);
  request.set(ipv4Bytes(iface), IP_MREQ_SOURCE.interface);
  request.set(ipv4Bytes(source), IP_MREQ_SOURCE.source);
  setOption(fd, IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, request, action);
}

function join6(
  fd: number,
  group: string,
  index: number,
  source: string | undefined,
  action: string,
): void {
  if (source === undefined) {
    const request = new Uint8Array(IPV6_MREQ.size);
    request.set(ipv6Bytes(group), IPV6_MREQ.group);
    new DataView(request.buffer).setUint32(IPV6_MREQ.interface, index, true);
    setOption(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, request, action);
    return;
  }
  const request = new Uint8Array(GROUP_SOURCE_REQ.size);
  const view = new DataView(request.buffer);
  view.setUint32(GROUP_SOURCE_REQ.interface, index, true);
  writeSockaddr(view, GROUP_SOURCE_REQ.group, {
    address: group,
    port: 0,
    scopeId: index,
  });
  writeSockaddr(view, GROUP_SOURCE_REQ.source, {
    address: source,
    port: 0,
    scopeId: isLinkLocal(source) ? index : 0,
  });
  setOption(fd, IPPROTO_IPV6, MCAST_JOIN_SOURCE_GROUP, request, action);
}

/** Asks for large buffers (forced first, as root), reads back what the kernel gave. */
function setBuffers(
  fd: number,
  options: { receiveBuffer?: number; sendBuffer?: number },
): NativeBuffers {
  const requestedReceive = options.receiveBuffer ?? DEFAULT_RECEIVE_BUFFER;
  const requestedSend = options.sendBuffer ?? DEFAULT_SEND_BUFFER;
  const receive = setBuffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, requestedReceive);
  const send = setBuffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, requestedSend);
  return {
    receive,
    send,
    requestedReceive,
    requestedSend,
    capped: receive < requestedReceive,
  };
}

function setBuffer(
  fd: number,
  forced: number,
  plain: number,
  size: number,
): number {
  const value = new Int32Array([size]);
  const bytes = new Uint8Array(value.buffer);
  if (libc().setsockopt(fd, SOL_SOCKET, forced, bytes, 4) !== 0) {
    setOption(fd, SOL_SOCKET, plain, bytes, `Cannot set a buffer of ${size}`);
  }
  const length = new Uint32Array([4]);
  check(
    libc().getsockopt(
      fd,
      SOL_SOCKET,
      plain,
      bytes,
      new Uint8Array(length.buffer),
    ),
    "Cannot read the buffer size",
  );
  // Linux reports twice what it granted (room for its bookkeeping).
  return Math.floor(value[0]! / 2);
}

function setInt(
  fd: number,
  level: number,
  name: number,
  value: number,
  action: string,
): void {
  setOption(
    fd,
    level,
    name,
    new Uint8Array(new Int32Array([value]).buffer),
    action,
  );
}

function setOption(
  fd: number,
  level: number,
  name: number,
  value: Uint8Array,
  action: string,
): void {
  check(libc().setsockopt(fd, level, name, value, value.byteLength), action);
}

// ---------------------------------------------------------------------------
// Errors and permissions

/** Throws the typed error of `errno` when `result` is negative. */
function check(result: number, action: string): void {
  if (result < 0) throw systemError(action, errno());
}

function systemError(action: string, code: number): McastError {
  if (code === EADDRINUSE) {
    return new NetworkError(
      `${action}: address already in use (another socket holds the port without address reuse)`,
    );
  }
  const text = errorText(code).replace(/^./, (c) => c.toLowerCase());
  if (code === EPERM || code === EACCES) {
    return new PermissionError(`${action}: ${text}`);
  }
  return new NetworkError(`${action}: ${text}`);
}

/** Throws as the runtime would when net access to `host` is not granted. */
function requireNet(action: string, host: string): void {
  if (Deno.permissions.querySync({ name: "net", host }).state === "granted") {
    return;
  }
  throw new PermissionError(
    `${action}: requires net access to "${host}", run again with the --allow-net flag`,
  );
}

function hostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

// ---------------------------------------------------------------------------
// Addresses

function ipv4Bytes(address: string): number[] {
  const bytes = parseIPv4(address);
  if (bytes === undefined) {
    throw new NetworkError(`Invalid IPv4 address "${address}"`);
  }
  return bytes;
}

function ipv6Bytes(address: string): Uint8Array {
  const bytes = new Uint8Array(16);
  const canonical = normalizeIPv6(address.split("%")[0]!);
  if (canonical === undefined) {
    throw new NetworkError(`Invalid IPv6 address "${address}"`);
  }
  // The canonical form has no dotted quad except for IPv4-mapped addresses.
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(canonical);
  let text = canonical;
  if (dotted) {
    const [a, b, c, d] = ipv4Bytes(dotted[2]!);
    text = `${dotted[1]}${((a! << 8) | b!).toString(16)}:${
      ((c! << 8) | d!).toString(16)
    }`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = [
    ...headGroups,
    ...Array(8 - headGroups.length - tailGroups.length).fill("0"),
    ...tailGroups,
  ];
  const view = new DataView(bytes.buffer);
  groups.forEach((group, i) => view.setUint16(i * 2, parseInt(group, 16)));
  return bytes;
}

function ipv6Text(view: DataView, offset: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) {
    groups.push(view.getUint16(offset + i * 2).toString(16));
  }
  return normalizeIPv6(groups.join(":"))!;
}

/** True for an IPv6 link-local unicast address (fe80::/10). */
function isLinkLocal(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address);
}

/** Writes a `sockaddr_in` or `sockaddr_in6` at `offset`; returns its length. */
function writeSockaddr(view: DataView, offset: number, peer: Peer): number {
  const bytes = new Uint8Array(view.buffer, view.byteOffset + offset);
  if (!peer.address.includes(":")) {
    bytes.fill(0, 0, SOCKADDR_IN.size);
    view.setUint16(offset + SOCKADDR_IN.family, AF_INET, true);
    view.setUint16(offset + SOCKADDR_IN.port, peer.port);
    bytes.set(ipv4Bytes(peer.address), SOCKADDR_IN.address);
    return SOCKADDR_IN.size;
  }
  bytes.fill(0, 0, SOCKADDR_IN6.size);
  view.setUint16(offset + SOCKADDR_IN6.family, AF_INET6, true);
  view.setUint16(offset + SOCKADDR_IN6.port, peer.port);
  bytes.set(ipv6Bytes(peer.address), SOCKADDR_IN6.address);
  view.setUint32(offset + SOCKADDR_IN6.scopeId, peer.scopeId ?? 0, true);
  return SOCKADDR_IN6.size;
}

/**
 * Reads a `sockaddr_in` or `sockaddr_in6` as a Peer. IPv6 keeps the scope
 * id the kernel reports (it sets one for link-local sources: the arrival
 * interface); a link-local source without one gets `index`, as `toPeer` in
 * `socket.ts` does.
 */
function readSockaddr(view: DataView, offset: number, index: number): Peer {
  const port = view.getUint16(offset + SOCKADDR_IN.port);
  if (view.getUint16(offset, true) === AF_INET) {
    const a = offset + SOCKADDR_IN.address;
    const address = [0, 1, 2, 3].map((i) => view.getUint8(a + i)).join(".");
    return { address, port };
  }
  const address = ipv6Text(view, offset + SOCKADDR_IN6.address);
  const peer: Peer = { address, port };
  const scopeId = view.getUint32(offset + SOCKADDR_IN6.scopeId, true);
  if (scopeId !== 0) peer.scopeId = scopeId;
  else if (index > 0 && isLinkLocal(address)) peer.scopeId = index;
  return peer;
}

// ---------------------------------------------------------------------------
// The endpoint

/**
 * A batch of {@linkcode BATCH} message slots for `sendmmsg`/`recvmmsg`: the
 * `mmsghdr` array, each pointing at its own address slot and one `iovec`
 * that points at its own 64 KiB payload slot.
 */
class Batch {
  readonly headers = new Uint8Array(BATCH * MMSGHDR.size);
  readonly headerView = new DataView(this.headers.buffer);
  readonly names = new Uint8Array(BATCH * NAME_SLOT);
  readonly nameView = new DataView(this.names.buffer);
  readonly vectors = new Uint8Array(BATCH * IOVEC.size);
  readonly vectorView = new DataView(this.vectors.buffer);
  readonly payloads = new Uint8Array(BATCH * SLOT);
  /** Control-message slots, when received TTLs are asked for. */
  readonly controls: Uint8Array<ArrayBuffer> | undefined;
  readonly controlView: DataView | undefined;
  /** Pointer to each slot's header. */
  readonly pointers: Deno.PointerValue[] = [];

  /** @param control Give each slot room for control messages. */
  constructor(control = false) {
    if (control) {
      this.controls = new Uint8Array(BATCH * CONTROL_SLOT);
      this.controlView = new DataView(this.controls.buffer);
    }
    const controls = this.controls === undefined
      ? 0n
      : addressOf(this.controls);
    const names = addressOf(this.names);
    const vectors = addressOf(this.vectors);
    const payloads = addressOf(this.payloads);
    const base = Deno.UnsafePointer.of(this.headers);
    for (let i = 0; i < BATCH; i++) {
      const header = i * MMSGHDR.size;
      const vector = i * IOVEC.size;
      const h = this.headerView;
      h.setBigUint64(
        header + MMSGHDR.name,
        names + BigInt(i * NAME_SLOT),
        true,
      );
      h.setUint32(header + MMSGHDR.nameLength, NAME_SLOT, true);
      h.setBigUint64(header + MMSGHDR.iov, vectors + BigInt(vector), true);
      h.setBigUint64(header + MMSGHDR.iovLength, 1n, true);
      if (this.controls !== undefined) {
        h.setBigUint64(
          header + MMSGHDR.control,
          controls + BigInt(i * CONTROL_SLOT),
          true,
        );
        h.setBigUint64(
          header + MMSGHDR.controlLength,
          BigInt(CONTROL_SLOT),
          true,
        );
      }
      this.vectorView.setBigUint64(
        vector + IOVEC.base,
        payloads + BigInt(i * SLOT),
        true,
      );
      this.vectorView.setBigUint64(vector + IOVEC.length, BigInt(SLOT), true);
      this.pointers.push(Deno.UnsafePointer.offset(base!, header));
    }
  }
}

/** A `pollfd` pair: the socket with `events`, and the close eventfd. */
function pollSet(fd: number, eventFd: number, events: number): Uint8Array {
  const bytes = new Uint8Array(2 * POLLFD.size);
  const view = new DataView(bytes.buffer);
  view.setInt32(POLLFD.fd, fd, true);
  view.setInt16(POLLFD.events, events, true);
  view.setInt32(POLLFD.size + POLLFD.fd, eventFd, true);
  view.setInt16(POLLFD.size + POLLFD.events, POLLIN, true);
  return bytes;
}

/**
 * One callback run as a macrotask, through a `MessageChannel` of its own
 * (`setTimeout(0)` waits a millisecond or more, clamped to 4 ms when
 * nested). The channel is closed once the callback ran or was cancelled, so
 * nothing is left to keep the process alive or to leak.
 */
class Macrotask {
  #channel: MessageChannel | undefined = new MessageChannel();
  readonly #run: () => void;

  /** @param run What to run. */
  constructor(run: () => void) {
    this.#run = run;
    this.#channel!.port2.onmessage = this.fire.bind(this);
    this.#channel!.port1.postMessage(null);
  }

  /** Runs the callback now, unless it ran or was cancelled. */
  fire(): void {
    if (this.#channel === undefined) return;
    this.cancel();
    this.#run();
  }

  /** Drops the callback without running it. */
  cancel(): void {
    const channel = this.#channel;
    if (channel === undefined) return;
    this.#channel = undefined;
    channel.port1.close();
    channel.port2.close();
  }
}

class NativeSocket implements NativeEndpoint {
  readonly io = "native";
  readonly local: Peer;
  readonly buffers: NativeBuffers;
  readonly #fd: number;
  readonly #eventFd: number;
  readonly #index: number;
  readonly #control: boolean;
  #closed = false;
  #fdsClosed = false;
  /** Polls running on worker threads; the fds close after the last one. */
  #polls = 0;
  readonly #pollIn: Uint8Array;
  readonly #pollOut: Uint8Array;

  // Sending.
  #out: Batch | undefined;
  /** Slots filled. */
  #queued = 0;
  /** Slots of those already sent. */
  #sent = 0;
  /** Each slot's destination, for error messages. */
  readonly #labels: string[] = new Array(BATCH).fill("");
  /** The deferred flush of a batch that is not full. */
  #timer: Macrotask | undefined;
  /** {@linkcode NativeSocket.#onTimer}, bound once. */
  readonly #tick: () => void;
  #draining: Promise<void> | undefined;
  #writable: Promise<void> | undefined;
  /** A send error of a deferred flush, thrown by the next send(). */
  #error: McastError | undefined;
  readonly #allowed = new Set<string>();
  #lastTo: Peer | undefined;
  #lastAddress = "";
  #lastPort = -1;
  #lastScope: number | undefined;
  readonly #lastName = new Uint8Array(NAME_SLOT);
  #lastNameLength = 0;
  #lastLabel = "";

  // Receiving.
  #in: Batch | undefined;
  #count = 0;
  #next = 0;
  #yieldFirst = false;
  /** The fairness yield in progress; close() ends it at once. */
  #yield: Macrotask | undefined;
  #filling: Promise<void> | undefined;
  readonly #lastSource = new Uint32Array(6);
  #lastFrom: Peer | undefined;

  constructor(
    fd: number,
    index: number,
    buffers: NativeBuffers,
    control: boolean,
  ) {
    const eventFd = libc().eventfd(0, EFD_NONBLOCK_CLOEXEC);
    check(eventFd, "Cannot create an eventfd");
    this.#fd = fd;
    this.#eventFd = eventFd;
    this.#index = index;
    this.#control = control;
    this.buffers = Object.freeze(buffers);
    this.#pollIn = pollSet(fd, eventFd, POLLIN);
    this.#pollOut = pollSet(fd, eventFd, POLLOUT);
    this.local = Object.freeze(localPeer(fd, index));
    this.#tick = this.#onTimer.bind(this);
  }

  async send(payload: Uint8Array, to: Peer): Promise<void> {
    this.#throwPending();
    if (to !== this.#lastTo) this.#destination(to);
    if (this.#closed) {
      throw new NetworkError(
        `Cannot send to ${this.#lastLabel}: the socket is closed`,
      );
    }
    if (payload.byteLength > SLOT) {
      throw new NetworkError(
        `Cannot send to ${this.#lastLabel}: message too long`,
      );
    }
    this.#out ??= new Batch();
    while (this.#queued === BATCH) {
      if (!this.#flushNow()) await this.#waitWritable();
      this.#throwPending();
      if (this.#closed) {
        throw new NetworkError(
          `Cannot send to ${this.#lastLabel}: the socket is closed`,
        );
      }
    }
    this.#queue(this.#out, payload);
    this.#throwPending();
  }

  trySend(payload: Uint8Array, to: Peer): boolean {
    // Anything unusual (an error to report, a new destination to check,
    // a full batch the kernel will not take) goes through send().
    if (
      this.#error !== undefined || this.#closed || to !== this.#lastTo ||
      payload.byteLength > SLOT || this.#out === undefined
    ) {
      return false;
    }
    if (this.#queued === BATCH && !this.#flushNow()) return false;
    this.#queue(this.#out, payload);
    return true;
  }

  /**
   * Puts a datagram in the batch: sent at once when that fills it, else by
   * the deferred flush (an error is kept for the next send()).
   */
  #queue(batch: Batch, payload: Uint8Array): void {
    this.#put(batch, payload);
    if (this.#queued === BATCH) this.#flushNow();
    else if (this.#timer === undefined) this.#timer = new Macrotask(this.#tick);
  }

  async flush(): Promise<void> {
    this.#clearTimer();
    while (!this.#closed && this.#sent < this.#queued) {
      if (!this.#flushNow()) await this.#waitWritable();
    }
    this.#throwPending();
  }

  async receive(): Promise<Datagram | null> {
    while (true) {
      if (this.#closed) return null;
      if (this.#next < this.#count) return this.#take(this.#in!);
      this.#filling ??= this.#fill().finally(() => this.#filling = undefined);
      await this.#filling;
    }
  }

  tryReceive(): Datagram | null {
    if (this.#closed || this.#next >= this.#count) return null;
    return this.#take(this.#in!);
  }

  close(): void {
    if (this.#closed) return;
    this.#clearTimer();
    if (this.#out !== undefined) this.#flushNow();
    this.#closed = true;
    this.#error = undefined;
    this.#queued = this.#sent = 0;
    this.#count = this.#next = 0;
    const one = new Uint8Array(8);
    one[0] = 1;
    libc().write(this.#eventFd, one, 8n);
    this.#yield?.fire();
    if (this.#polls === 0) this.#closeFds();
  }

  #closeFds(): void {
    if (this.#fdsClosed) return;
    this.#fdsClosed = true;
    libc().close(this.#fd);
    libc().close(this.#eventFd);
    releaseLibc();
  }

  #throwPending(): void {
    const error = this.#error;
    if (error === undefined) return;
    this.#error = undefined;
    throw error;
  }

  /** Encodes a new destination (and checks permission once per host). */
  #destination(to: Peer): void {
    const multicast6 = to.address.includes(":") && to.address.startsWith("ff");
    const scope = to.scopeId ??
      (multicast6 && this.#index > 0 ? this.#index : undefined);
    if (
      to.address !== this.#lastAddress || to.port !== this.#lastPort ||
      scope !== this.#lastScope
    ) {
      const label = hostPort(to.address, to.port);
      if (!this.#allowed.has(label)) {
        requireNet(`Cannot send to ${label}`, label);
        this.#allowed.add(label);
      }
      const peer: Peer = { address: to.address, port: to.port };
      if (scope !== undefined) peer.scopeId = scope;
      try {
        this.#lastNameLength = writeSockaddr(
          new DataView(this.#lastName.buffer),
          0,
          peer,
        );
      } catch {
        throw new NetworkError(`Cannot send to ${label}: invalid address`);
      }
      this.#lastAddress = to.address;
      this.#lastPort = to.port;
      this.#lastScope = scope;
      this.#lastLabel = label;
    }
    this.#lastTo = to;
  }

  /** Copies a datagram and the current destination into the next slot. */
  #put(batch: Batch, payload: Uint8Array): void {
    const i = this.#queued++;
    batch.payloads.set(payload, i * SLOT);
    batch.names.set(this.#lastName, i * NAME_SLOT);
    const header = i * MMSGHDR.size;
    batch.headerView.setUint32(
      header + MMSGHDR.nameLength,
      this.#lastNameLength,
      true,
    );
    batch.vectorView.setUint32(
      i * IOVEC.size + IOVEC.length,
      payload.byteLength,
      true,
    );
    this.#labels[i] = this.#lastLabel;
  }

  /**
   * Sends queued slots without blocking. A hard error drops the datagram it
   * belongs to and is kept for the next send().
   *
   * @returns True when nothing is left queued.
   */
  #flushNow(): boolean {
    const batch = this.#out;
    if (batch === undefined || this.#fdsClosed) return true;
    while (this.#sent < this.#queued) {
      const sent = libc().sendmmsg(
        this.#fd,
        batch.pointers[this.#sent]!,
        this.#queued - this.#sent,
        MSG_DONTWAIT,
      );
      if (sent >= 0) {
        this.#sent += sent;
        continue;
      }
      const code = errno();
      if (code === EINTR) continue;
      if (code === EAGAIN || code === ENOBUFS) return false;
      this.#error ??= systemError(
        `Cannot send to ${this.#labels[this.#sent]}`,
        code,
      );
      this.#sent += 1;
    }
    this.#queued = this.#sent = 0;
    return true;
  }

  #onTimer(): void {
    this.#timer = undefined;
    if (this.#closed || this.#flushNow()) return;
    this.#draining ??= this.#drain().finally(() => this.#draining = undefined);
  }

  async #drain(): Promise<void> {
    while (!this.#closed && this.#sent < this.#queued) {
      await this.#waitWritable();
      this.#flushNow();
    }
  }

  #clearTimer(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  #waitWritable(): Promise<void> {
    this.#writable ??= this.#poll(this.#pollOut).finally(() =>
      this.#writable = undefined
    );
    return this.#writable;
  }

  /** Waits on a worker thread until the socket is ready or close() wakes it. */
  async #poll(set: Uint8Array): Promise<void> {
    this.#polls += 1;
    try {
      await libc().poll(set, 2n, POLL_TIMEOUT_MS);
    } finally {
      this.#polls -= 1;
      if (this.#closed && this.#polls === 0) this.#closeFds();
    }
  }

  /** Reads the next batch, waiting while there is none. */
  async #fill(): Promise<void> {
    if (this.#yieldFirst) {
      // Fairness: a full batch was just handed out; let timers run.
      this.#yieldFirst = false;
      await new Promise<void>((resolve) => {
        this.#yield = new Macrotask(resolve);
      });
      this.#yield = undefined;
    }
    const batch = this.#in ??= new Batch(this.#control);
    while (!this.#closed) {
      const view = batch.headerView;
      for (let i = 0; i < BATCH; i++) {
        view.setUint32(i * MMSGHDR.size + MMSGHDR.nameLength, NAME_SLOT, true);
        if (batch.controls !== undefined) {
          view.setBigUint64(
            i * MMSGHDR.size + MMSGHDR.controlLength,
            BigInt(CONTROL_SLOT),
            true,
          );
        }
      }
      const count = libc().recvmmsg(
        this.#fd,
        batch.pointers[0]!,
        BATCH,
        MSG_DONTWAIT,
        null,
      );
      if (count > 0) {
        this.#count = count;
        this.#next = 0;
        this.#yieldFirst = count === BATCH;
        return;
      }
      const code = count < 0 ? errno() : EAGAIN;
      if (code === EINTR) continue;
      if (code !== EAGAIN) throw systemError("Cannot receive", code);
      await this.#poll(this.#pollIn);
    }
  }

  #take(batch: Batch): Datagram {
    const i = this.#next++;
    const length = batch.headerView.getUint32(
      i * MMSGHDR.size + MMSGHDR.length,
      true,
    );
    const start = i * SLOT;
    const payload = batch.payloads.slice(start, start + length);
    const from = this.#source(batch.nameView, i * NAME_SLOT);
    if (batch.controlView === undefined) return { payload, from };
    const ttl = controlTtl(
      batch.controlView,
      i * CONTROL_SLOT,
      Number(batch.headerView.getBigUint64(
        i * MMSGHDR.size + MMSGHDR.controlLength,
        true,
      )),
    );
    return ttl === undefined ? { payload, from } : { payload, from, ttl };
  }

  /** The source as a Peer; a stream from one source reuses one frozen object. */
  #source(view: DataView, offset: number): Peer {
    const last = this.#lastSource;
    const v4 = view.getUint16(offset, true) === AF_INET;
    const w0 = view.getUint32(offset);
    const w1 = view.getUint32(offset + (v4 ? 4 : 8));
    const w2 = v4 ? 0 : view.getUint32(offset + 12);
    const w3 = v4 ? 0 : view.getUint32(offset + 16);
    const w4 = v4 ? 0 : view.getUint32(offset + 20);
    const w5 = v4 ? 0 : view.getUint32(offset + 24);
    if (
      this.#lastFrom !== undefined && w0 === last[0] && w1 === last[1] &&
      w2 === last[2] && w3 === last[3] && w4 === last[4] && w5 === last[5]
    ) {
      return this.#lastFrom;
    }
    last[0] = w0;
    last[1] = w1;
    last[2] = w2;
    last[3] = w3;
    last[4] = w4;
    last[5] = w5;
    this.#lastFrom = Object.freeze(readSockaddr(view, offset, this.#index));
    return this.#lastFrom;
  }
}

function localPeer(fd: number, index: number): Peer {
  const name = new Uint8Array(NAME_SLOT);
  const length = new Uint32Array([NAME_SLOT]);
  check(
    libc().getsockname(fd, name, new Uint8Array(length.buffer)),
    "Cannot read the socket's address",
  );
  return readSockaddr(new DataView(name.buffer), 0, index);
}
