/**
 * IP address parsing and formatting: multicast group validation and the
 * Python-style peer tuples the exercise prints.
 *
 * @module
 */

import { UsageError } from "../errors.ts";

/** Address family of a group, interface or peer. */
export type Family = 4 | 6;

/** A validated multicast group address. */
export interface Group {
  /** 4 for IPv4 (224.0.0.0/4), 6 for IPv6 (ff00::/8). */
  family: Family;
  /** The address in canonical form (IPv6 lower case and compressed). */
  address: string;
}

/** A remote or local UDP endpoint. */
export interface Peer {
  /** IP address without brackets or zone. */
  address: string;
  /** UDP port. */
  port: number;
  /** IPv6 scope id (interface index) of a link-local address, else absent. */
  scopeId?: number;
}

const IPV4_PATTERN = /^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$/;

/**
 * Parses a dotted-quad IPv4 address strictly (four decimal parts 0-255, no
 * leading zeros).
 *
 * @param text The candidate address.
 * @returns The four bytes, or `undefined` when `text` is not one.
 */
export function parseIPv4(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  if (!parts.every((part) => IPV4_PATTERN.test(part))) return undefined;
  return parts.map(Number);
}

/**
 * Normalises an IPv6 address (no zone, no brackets) to its canonical lower
 * case, compressed form.
 *
 * @param text The candidate address.
 * @returns The canonical form, or `undefined` when `text` is not one.
 */
export function normalizeIPv6(text: string): string | undefined {
  if (!text.includes(":") || !/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  try {
    const host = new URL(`http://[${text}]/`).hostname;
    return host.slice(1, -1);
  } catch {
    return undefined;
  }
}

/**
 * Tells the family of an IP address literal.
 *
 * @param text The candidate address.
 * @returns 4 or 6, or `undefined` when `text` is not an address.
 */
export function addressFamily(text: string): Family | undefined {
  if (parseIPv4(text)) return 4;
  if (normalizeIPv6(text) !== undefined) return 6;
  return undefined;
}

/**
 * Validates a multicast group address: IPv4 in 224.0.0.0/4 or IPv6 in
 * ff00::/8.
 *
 * @param text The address given by the user.
 * @returns The group with its family and canonical address.
 * @throws {UsageError} When `text` is not a multicast address.
 *
 * @example Parse the exercise's group
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseGroup } from "./address.ts";
 * assert.deepEqual(parseGroup("224.1.1.1"), { family: 4, address: "224.1.1.1" });
 * assert.deepEqual(parseGroup("FF02::1:2"), { family: 6, address: "ff02::1:2" });
 * ```
 */
export function parseGroup(text: string): Group {
  const v4 = parseIPv4(text);
  if (v4) {
    if (v4[0]! >= 224 && v4[0]! <= 239) return { family: 4, address: text };
    throw new UsageError(
      `Invalid group "${text}": not a multicast address (IPv4 224.0.0.0/4 or IPv6 ff00::/8)`,
    );
  }
  const v6 = normalizeIPv6(text);
  if (v6 !== undefined) {
    if (v6.startsWith("ff")) return { family: 6, address: v6 };
    throw new UsageError(
      `Invalid group "${text}": not a multicast address (IPv4 224.0.0.0/4 or IPv6 ff00::/8)`,
    );
  }
  throw new UsageError(
    `Invalid group "${text}": not an IP address (expected e.g. 224.1.1.1 or ff02::1:2)`,
  );
}

/**
 * Formats an endpoint the way Python prints a socket address, which is what
 * the exercise's expected output shows: `('127.0.0.1', 41000)` for IPv4 and
 * `('ff02::1', 41000, 0, 2)` for IPv6.
 *
 * @param peer The endpoint; an IPv6 scope id is shown as the fourth item.
 * @returns The tuple as text.
 */
export function formatPeer(peer: Peer): string {
  if (peer.address.includes(":")) {
    return `('${peer.address}', ${peer.port}, 0, ${peer.scopeId ?? 0})`;
  }
  return `('${peer.address}', ${peer.port})`;
}
