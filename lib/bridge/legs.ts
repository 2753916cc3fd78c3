/**
 * The legs of `mcast-bridge`: where it takes a group's datagrams from
 * (`--from`) and where it puts them (`--to`). A leg is a multicast group on
 * an interface (`GROUP[:PORT]@IF`) or a pipe, named by a URL whose scheme
 * picks it from a small registry: `udp://` (the tunnel to another bridge,
 * `tunnel.ts`) is built in; other modules register theirs (a broker:
 * `nats://`) with {@linkcode registerPipeScheme}.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { type Group, parseGroup, type Peer } from "../net/address.ts";
import type { GroupKey } from "../security/keys.ts";
import type { CryptoBackend } from "../security/crypto.ts";
import type { PipeSink, PipeSource } from "./pipe.ts";

/** A multicast leg: a group and port, joined or sent to on an interface. */
export interface MulticastLeg {
  /** The kind. */
  kind: "multicast";
  /** The group. */
  group: Group;
  /** The UDP port. */
  port: number;
  /** The interface: a name or an address, as `--interface` takes it. */
  iface: string;
  /** The leg as written. */
  text: string;
}

/** A pipe leg: a tunnel or a broker, by URL. */
export interface PipeLeg {
  /** The kind. */
  kind: "pipe";
  /** The URL's scheme, without the colon: `udp`, `nats`. */
  scheme: string;
  /** The URL. */
  url: URL;
  /** The leg as written. */
  text: string;
}

/** Either kind of leg. */
export type Leg = MulticastLeg | PipeLeg;

/** What a pipe factory gets to open its end. */
export interface PipeContext {
  /** The leg's URL. */
  url: URL;
  /** The bridge's name. */
  name: string;
  /** The group key (`--key-file`), when given. */
  key?: GroupKey;
  /** The crypto backend the guard uses, when keyed. */
  crypto?: CryptoBackend;
  /** `--listen ADDR:PORT`: where a sink's socket binds, when given. */
  listen?: Peer;
  /** Clock-skew bound, in ms. */
  maxSkewMs?: number;
}

/** Opens the ends of one kind of pipe. */
export interface PipeScheme {
  /**
   * Checks a URL of this scheme at parse time.
   *
   * @param url The URL.
   * @returns A problem to report (a usage error), or `undefined`.
   */
  check?(url: URL): string | undefined;
  /** Opens the sending end (`--to`). */
  openSink?(context: PipeContext): Promise<PipeSink>;
  /** Opens the receiving end (`--from`). */
  openSource?(context: PipeContext): Promise<PipeSource>;
}

const schemes = new Map<string, PipeScheme>();

/**
 * Makes a pipe scheme available to `--from` and `--to` (e.g. `nats`).
 *
 * @param scheme The URL scheme, without the colon.
 * @param pipe How to open its ends.
 */
export function registerPipeScheme(scheme: string, pipe: PipeScheme): void {
  schemes.set(scheme.toLowerCase(), pipe);
}

/**
 * The registered pipe scheme, if any.
 *
 * @param scheme The URL scheme, without the colon.
 * @returns Its factory, or `undefined`.
 */
export function pipeScheme(scheme: string): PipeScheme | undefined {
  return schemes.get(scheme.toLowerCase());
}

/** The registered pipe schemes, sorted. */
export function pipeSchemes(): string[] {
  return [...schemes.keys()].sort();
}

/**
 * Parses a leg: `GROUP[:PORT]@IF` (an IPv6 group in brackets when it has a
 * port: `[ff02::1:3]:10000@veth-b`) or a URL of a registered scheme.
 *
 * @param option The option, for messages: `--from` or `--to`.
 * @param text The leg.
 * @param defaultPort The port when a multicast leg names none.
 * @returns The leg.
 * @throws {UsageError} When it is neither, or the scheme is unknown.
 */
export function parseLeg(
  option: string,
  text: string,
  defaultPort: number,
): Leg {
  const fail = (problem: string) =>
    new UsageError(`Invalid ${option} "${text}": ${problem}`);
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(text)?.[1];
  if (scheme !== undefined) {
    const pipe = pipeScheme(scheme);
    if (!pipe) {
      throw fail(
        `unknown scheme "${scheme}" (known: ${pipeSchemes().join(", ")})`,
      );
    }
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw fail("not a URL");
    }
    const problem = pipe.check?.(url);
    if (problem !== undefined) throw fail(problem);
    return { kind: "pipe", scheme: scheme.toLowerCase(), url, text };
  }
  const at = text.lastIndexOf("@");
  if (at <= 0 || at === text.length - 1) {
    throw fail("expected GROUP[:PORT]@INTERFACE or a URL (udp://HOST:PORT)");
  }
  const where = text.slice(0, at);
  const iface = text.slice(at + 1);
  let host = where;
  let port = defaultPort;
  const bracketed = /^\[([^\]]+)\](?::([0-9]+))?$/.exec(where);
  if (bracketed) {
    host = bracketed[1]!;
    if (bracketed[2] !== undefined) port = Number(bracketed[2]);
  } else if (!where.includes("::") && where.split(":").length === 2) {
    const [address, portText] = where.split(":") as [string, string];
    if (!/^[0-9]+$/.test(portText)) throw fail(`bad port "${portText}"`);
    host = address;
    port = Number(portText);
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw fail(`port must be 1-65535`);
  }
  let group: Group;
  try {
    group = parseGroup(host);
  } catch (error) {
    throw fail(error instanceof Error ? error.message : String(error));
  }
  return { kind: "multicast", group, port, iface, text };
}

/**
 * Parses `HOST:PORT` (an IPv6 host in brackets) into a peer.
 *
 * @param option The option, for messages.
 * @param text The address.
 * @returns The peer.
 * @throws {UsageError} When it is not one.
 */
export function parseHostPort(option: string, text: string): Peer {
  const match = /^(?:\[([^\]]+)\]|([^:\[\]]+)):([0-9]+)$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(
      `Invalid ${option} "${text}": expected ADDRESS:PORT (an IPv6 address in brackets)`,
    );
  }
  return { address: match[1] ?? match[2]!, port };
}
