/**
 * An in-process network of {@linkcode DatagramEndpoint}s, so that a sender
 * and many receivers can run in one process without sockets: for the
 * reliable protocol's tests and benchmarks.
 *
 * It models what the protocol relies on from UDP on one host: multicast
 * fan-out to the members of a group on a port (the sender too when it is a
 * member: multicast loopback on), unicast to the endpoint bound to an
 * address and port, address reuse (several endpoints on one address and
 * port), and a bounded receive queue per endpoint that drops new datagrams
 * when full, like a full kernel receive buffer. It does not lose, duplicate
 * or reorder anything by itself; wrap endpoints with `withFaults()`
 * (`fault.ts`) for that.
 *
 * Delivery is asynchronous: `send()` puts the datagram on the network's
 * in-flight queue and schedules one microtask that delivers everything in
 * flight, in send order, so per-sender (and overall) order is preserved.
 * Microtasks rather than timers because they leave nothing behind for the
 * test sanitizers (no timer, no resource, even with datagrams in flight
 * when a test ends), are not clamped to 4 ms when nested, and keep the order
 * of delivery deterministic. Which endpoints get a datagram is decided at
 * delivery time, from the memberships and bindings of that moment.
 *
 * @example Two members of a group
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryNetwork } from "./memory_net.ts";
 *
 * const network = new MemoryNetwork();
 * const sender = network.open({ address: "127.0.0.1" });
 * const a = network.open({ address: "239.1.2.3", port: 5000 });
 * const b = network.open({ address: "239.1.2.3", port: 5000 });
 * a.join("239.1.2.3");
 * b.join("239.1.2.3");
 * await sender.send(new Uint8Array([1, 2, 3]), { address: "239.1.2.3", port: 5000 });
 * const got = await a.receive();
 * assert.deepEqual(got?.payload, new Uint8Array([1, 2, 3]));
 * assert.deepEqual(got?.from, { address: "127.0.0.1", port: 40000 });
 * assert.deepEqual((await b.receive())?.payload, new Uint8Array([1, 2, 3]));
 * network.close();
 * ```
 *
 * @module
 */

import {
  addressFamily,
  type Family,
  normalizeIPv6,
  type Peer,
} from "./address.ts";
import { NetworkError } from "../errors.ts";
import type { Datagram, DatagramEndpoint } from "./socket.ts";

/** Options of {@linkcode MemoryNetwork}. */
export interface MemoryNetworkOptions {
  /**
   * Datagrams queued per endpoint before new ones are dropped, like a full
   * kernel receive buffer (default 4096). A datagram handed straight to a
   * pending `receive()` is not queued.
   */
  queueLimit?: number;
}

/** Options of {@linkcode MemoryNetwork.open}. */
export interface MemoryOpenOptions {
  /**
   * The address to bind: a unicast address, a group's address (as
   * receivers bind), or the wildcard `0.0.0.0` / `::`.
   */
  address: string;
  /** The port; 0 or absent: a fresh ephemeral port, from 40000 up. */
  port?: number;
}

/** The default of {@linkcode MemoryNetworkOptions.queueLimit}. */
export const DEFAULT_QUEUE_LIMIT = 4096;

/** Largest UDP payload the network carries (as IPv4 sockets). */
export const MAX_DATAGRAM_SIZE = 65507;

const FIRST_EPHEMERAL_PORT = 40000;
const LAST_PORT = 65535;

/** A first-in first-out queue with O(1) shift. */
class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head += 1;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

/** What the network knows about an address literal. */
interface AddressInfo {
  /** Canonical form (IPv6 lower case, compressed). */
  address: string;
  family: Family;
  multicast: boolean;
  wildcard: boolean;
}

const addressCache = new Map<string, AddressInfo | null>();

/** Parses an address literal, with a small cache (the same few recur). */
function addressInfo(text: string): AddressInfo | null {
  const cached = addressCache.get(text);
  if (cached !== undefined) return cached;
  let info: AddressInfo | null = null;
  const family = addressFamily(text);
  if (family === 4) {
    const first = Number(text.slice(0, text.indexOf(".")));
    info = {
      address: text,
      family,
      multicast: first >= 224 && first <= 239,
      wildcard: text === "0.0.0.0",
    };
  } else if (family === 6) {
    const address = normalizeIPv6(text)!;
    info = {
      address,
      family,
      multicast: address.startsWith("ff"),
      wildcard: address === "::",
    };
  }
  if (addressCache.size >= 1024) addressCache.clear();
  addressCache.set(text, info);
  return info;
}

function hostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/** The network's view of one endpoint: its binding, queue and waiters. */
class Socket {
  readonly local: Peer;
  readonly info: AddressInfo;
  readonly groups = new Set<string>();
  readonly queue = new Fifo<Datagram>();
  waiters: ((datagram: Datagram | null) => void)[] = [];
  paused = false;
  closed = false;
  sent = 0;
  received = 0;
  dropped = 0;

  constructor(info: AddressInfo, port: number) {
    this.info = info;
    this.local = { address: info.address, port };
  }
}

/** One datagram on its way. */
interface InFlight {
  payload: Uint8Array;
  from: Peer;
  to: AddressInfo;
  port: number;
}

/** The network proper: bindings, the in-flight queue and delivery. */
class Router {
  readonly queueLimit: number;
  readonly endpoints = new Set<MemoryEndpoint>();
  dropped = 0;
  #ports = new Map<number, Socket[]>();
  #nextPort = FIRST_EPHEMERAL_PORT;
  #inFlight: InFlight[] = [];
  #scheduled = false;

  constructor(queueLimit: number) {
    this.queueLimit = queueLimit;
  }

  bind(options: MemoryOpenOptions): Socket {
    const requested = options.port ?? 0;
    const info = addressInfo(options.address);
    if (info === null) {
      throw new NetworkError(
        `Cannot bind ${
          hostPort(options.address, requested)
        }: not an IP address`,
      );
    }
    if (
      !Number.isInteger(requested) || requested < 0 || requested > LAST_PORT
    ) {
      throw new NetworkError(
        `Cannot bind ${hostPort(info.address, requested)}: invalid port`,
      );
    }
    const port = requested === 0 ? this.#ephemeralPort(info) : requested;
    const socket = new Socket(info, port);
    const bound = this.#ports.get(port);
    if (bound) bound.push(socket);
    else this.#ports.set(port, [socket]);
    return socket;
  }

  unbind(socket: Socket): void {
    const port = socket.local.port;
    const bound = this.#ports.get(port);
    if (!bound) return;
    const rest = bound.filter((other) => other !== socket);
    if (rest.length === 0) this.#ports.delete(port);
    else this.#ports.set(port, rest);
  }

  transmit(
    from: Socket,
    payload: Uint8Array,
    to: AddressInfo,
    port: number,
  ): void {
    this.#inFlight.push({
      payload: payload.slice(),
      from: from.local,
      to,
      port,
    });
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  #ephemeralPort(info: AddressInfo): number {
    const span = LAST_PORT - FIRST_EPHEMERAL_PORT + 1;
    for (let tries = 0; tries < span; tries++) {
      const port = this.#nextPort;
      this.#nextPort = port === LAST_PORT ? FIRST_EPHEMERAL_PORT : port + 1;
      if (!this.#ports.has(port)) return port;
    }
    throw new NetworkError(
      `Cannot bind ${hostPort(info.address, 0)}: no free ephemeral port`,
    );
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#inFlight;
    this.#inFlight = [];
    for (const datagram of batch) this.#route(datagram);
  }

  #route(datagram: InFlight): void {
    const bound = this.#ports.get(datagram.port);
    if (!bound) return;
    const { to } = datagram;
    if (to.multicast) {
      let first = true;
      for (const socket of bound) {
        if (!socket.groups.has(to.address)) continue;
        const payload = first ? datagram.payload : datagram.payload.slice();
        first = false;
        this.#deliver(socket, payload, datagram.from);
      }
      return;
    }
    // Unicast with address reuse goes to the last bound endpoint, as on
    // Linux; an exact address beats the wildcard.
    let exact: Socket | undefined;
    let wildcard: Socket | undefined;
    for (const socket of bound) {
      if (socket.info.address === to.address) exact = socket;
      else if (socket.info.wildcard && socket.info.family === to.family) {
        wildcard = socket;
      }
    }
    const target = exact ?? wildcard;
    if (target) this.#deliver(target, datagram.payload, datagram.from);
  }

  #deliver(socket: Socket, payload: Uint8Array, from: Peer): void {
    if (socket.closed) return;
    const datagram: Datagram = { payload, from: { ...from } };
    if (!socket.paused && socket.waiters.length > 0) {
      socket.received += 1;
      socket.waiters.shift()!(datagram);
      return;
    }
    if (socket.queue.length >= this.queueLimit) {
      socket.dropped += 1;
      this.dropped += 1;
      return;
    }
    socket.received += 1;
    socket.queue.push(datagram);
  }
}

/** Reads a network's router (set in MemoryNetwork's static block). */
let routerOf: (network: MemoryNetwork) => Router;

/**
 * An in-process network: endpoints opened on it exchange datagrams by
 * address and port, with multicast groups, as on one host's loopback.
 */
export class MemoryNetwork {
  #router: Router;

  static {
    routerOf = (network) => network.#router;
  }

  /**
   * Creates an empty network.
   *
   * @param options The per-endpoint queue limit.
   * @throws {RangeError} When `queueLimit` is not a positive integer.
   */
  constructor(options: MemoryNetworkOptions = {}) {
    const limit = options.queueLimit ?? DEFAULT_QUEUE_LIMIT;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(
        `Invalid queueLimit ${limit}: not a positive integer`,
      );
    }
    this.#router = new Router(limit);
  }

  /** The per-endpoint queue limit in force. */
  get queueLimit(): number {
    return this.#router.queueLimit;
  }

  /** Datagrams dropped because an endpoint's queue was full, network-wide. */
  get dropped(): number {
    return this.#router.dropped;
  }

  /**
   * Opens an endpoint bound to `address:port`. Several endpoints may share
   * an address and port (address reuse, as receivers on one host do); each
   * member of a group among them gets its own copy of the group's datagrams.
   *
   * @param options The address, and the port (0 or absent: a fresh
   * ephemeral port from 40000 up, one no open endpoint uses).
   * @returns The endpoint; close it when done.
   * @throws {NetworkError} When the address is not an IP address, the port
   * is out of range, or no ephemeral port is free.
   */
  open(options: MemoryOpenOptions): MemoryEndpoint {
    return new MemoryEndpoint(this, options);
  }

  /** Endpoints open on this network. */
  get endpoints(): number {
    return this.#router.endpoints.size;
  }

  /** Closes every endpoint open on this network. */
  close(): void {
    for (const endpoint of [...this.#router.endpoints]) endpoint.close();
  }

  /** Same as {@linkcode MemoryNetwork.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * An endpoint of a {@linkcode MemoryNetwork}: a {@linkcode DatagramEndpoint}
 * with group membership, a pause switch for slow-receiver tests, and
 * counters. Obtain one with {@linkcode MemoryNetwork.open}.
 */
export class MemoryEndpoint implements DatagramEndpoint {
  /** The bound address (canonical form) and port. */
  readonly local: Peer;
  #socket: Socket;
  #router: Router;

  /**
   * Binds an endpoint on `network`, as {@linkcode MemoryNetwork.open} does.
   *
   * @param network The network to attach to.
   * @param options The address and port.
   * @throws {NetworkError} As {@linkcode MemoryNetwork.open}.
   */
  constructor(network: MemoryNetwork, options: MemoryOpenOptions) {
    this.#router = routerOf(network);
    this.#socket = this.#router.bind(options);
    this.local = { ...this.#socket.local };
    this.#router.endpoints.add(this);
  }

  /** Datagrams this endpoint has sent. */
  get sent(): number {
    return this.#socket.sent;
  }

  /** Datagrams that reached this endpoint (queued or handed to a waiting `receive()`). */
  get received(): number {
    return this.#socket.received;
  }

  /** Datagrams dropped at this endpoint because its queue was full. */
  get dropped(): number {
    return this.#socket.dropped;
  }

  /** Datagrams waiting in the queue. */
  get queued(): number {
    return this.#socket.queue.length;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#socket.closed;
  }

  /** True while paused. */
  get paused(): boolean {
    return this.#socket.paused;
  }

  /**
   * Joins a group: from now on the endpoint gets the datagrams sent to
   * `group` on its port. Joining twice is harmless.
   *
   * @param group An IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) group address.
   * @throws {NetworkError} When `group` is not a multicast address or the
   * endpoint is closed.
   */
  join(group: string): void {
    const info = addressInfo(group);
    if (info === null || !info.multicast) {
      throw new NetworkError(`Cannot join ${group}: not a multicast address`);
    }
    if (this.#socket.closed) {
      throw new NetworkError(`Cannot join ${group}: endpoint is closed`);
    }
    this.#socket.groups.add(info.address);
  }

  /**
   * Leaves a group; datagrams still in flight to it are not delivered here.
   * Leaving a group not joined does nothing.
   *
   * @param group The group address.
   */
  leave(group: string): void {
    const info = addressInfo(group);
    if (info !== null) this.#socket.groups.delete(info.address);
  }

  /**
   * Pauses the endpoint: `receive()` does not return until
   * {@linkcode MemoryEndpoint.resume}; datagrams queue meanwhile, and are
   * dropped beyond the network's queue limit.
   */
  pause(): void {
    this.#socket.paused = true;
  }

  /** Resumes a paused endpoint: waiting `receive()` calls get queued datagrams. */
  resume(): void {
    const socket = this.#socket;
    socket.paused = false;
    while (socket.waiters.length > 0 && socket.queue.length > 0) {
      socket.waiters.shift()!(socket.queue.shift()!);
    }
  }

  /**
   * Sends one datagram; it is delivered after `send()` returns (in a
   * microtask), in send order. A datagram to a unicast address nobody is
   * bound to is dropped silently, as UDP does.
   *
   * @param payload The bytes (copied).
   * @param to A group, unicast address or wildcard, and a port.
   * @returns Resolves once the datagram is in flight.
   * @throws {NetworkError} (as a rejection) When the endpoint is closed, the
   * destination is not an IP address and port 1-65535, or the payload is
   * larger than 65,507 bytes.
   */
  send(payload: Uint8Array, to: Peer): Promise<void> {
    const socket = this.#socket;
    const where = hostPort(to.address, to.port);
    if (socket.closed) {
      return Promise.reject(
        new NetworkError(`Cannot send to ${where}: endpoint is closed`),
      );
    }
    const info = addressInfo(to.address);
    if (info === null) {
      return Promise.reject(
        new NetworkError(`Cannot send to ${where}: not an IP address`),
      );
    }
    if (!Number.isInteger(to.port) || to.port < 1 || to.port > LAST_PORT) {
      return Promise.reject(
        new NetworkError(`Cannot send to ${where}: invalid port`),
      );
    }
    if (payload.byteLength > MAX_DATAGRAM_SIZE) {
      return Promise.reject(
        new NetworkError(
          `Cannot send to ${where}: message too long (${payload.byteLength} bytes, at most ${MAX_DATAGRAM_SIZE})`,
        ),
      );
    }
    socket.sent += 1;
    this.#router.transmit(socket, payload, info, to.port);
    return Promise.resolve();
  }

  /**
   * Waits for the next datagram. Several calls may wait at once; they are
   * served in call order.
   *
   * @returns The datagram, or `null` once the endpoint is closed (a waiting
   * call too).
   */
  receive(): Promise<Datagram | null> {
    const socket = this.#socket;
    if (socket.closed) return Promise.resolve(null);
    if (!socket.paused && socket.waiters.length === 0) {
      const next = socket.queue.shift();
      if (next) return Promise.resolve(next);
    }
    return new Promise((resolve) => socket.waiters.push(resolve));
  }

  /**
   * Closes the endpoint: it leaves its groups, its queue is discarded,
   * waiting `receive()` calls resolve `null`, and datagrams still in flight
   * to it are dropped. Safe to call more than once.
   */
  close(): void {
    const socket = this.#socket;
    if (socket.closed) return;
    socket.closed = true;
    socket.groups.clear();
    socket.queue.clear();
    this.#router.unbind(socket);
    this.#router.endpoints.delete(this);
    const waiters = socket.waiters;
    socket.waiters = [];
    for (const waiter of waiters) waiter(null);
  }

  /** Same as {@linkcode MemoryEndpoint.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
