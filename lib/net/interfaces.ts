/**
 * Resolution of the `--interface` option: an address, an interface name or
 * (for IPv6) an interface index, checked against the system's interfaces.
 *
 * @module
 */

import { type Family, normalizeIPv6, parseIPv4 } from "./address.ts";
import { UsageError } from "../errors.ts";

/** An interface chosen for a group, ready for binding and joining. */
export interface ResolvedInterface {
  /** Family of the group the interface serves. */
  family: Family;
  /** IPv4: the address to bind and join on. IPv6: the interface's link-local address. */
  address: string;
  /** The interface's name, when known. */
  name?: string;
  /** IPv6: the interface index used to join and to scope sends; 0 for IPv4. */
  index: number;
}

/** One address of one interface, as `Deno.networkInterfaces()` reports it. */
export interface InterfaceAddress {
  /** Interface name, e.g. `lo`. */
  name: string;
  /** `IPv4` or `IPv6`. */
  family: "IPv4" | "IPv6";
  /** The address. */
  address: string;
  /** IPv6 scope id (the interface index for link-local addresses), else 0. */
  scopeid: number | null;
}

/** Options of {@linkcode resolveInterface}. */
export interface ResolveInterfaceOptions {
  /** The system's interface addresses; defaults to `Deno.networkInterfaces()`. */
  interfaces?: InterfaceAddress[];
}

/**
 * The IPv6 link-local address of an interface. Its scope id is the interface
 * index, which the runtime reports nowhere else (`/sys/class/net` would need
 * `--allow-all`). An interface without one (Linux's `lo`, point-to-point
 * tunnels) cannot carry IPv6 multicast here anyway.
 */
function linkLocalOf(
  name: string,
  interfaces: InterfaceAddress[],
): InterfaceAddress | undefined {
  return interfaces.find((entry) =>
    entry.name === name && entry.family === "IPv6" && (entry.scopeid ?? 0) > 0
  );
}

function resolveIPv4(
  spec: string,
  interfaces: InterfaceAddress[],
): ResolvedInterface {
  if (parseIPv4(spec)) {
    const entry = interfaces.find((e) =>
      e.family === "IPv4" && e.address === spec
    );
    if (!entry) {
      throw new UsageError(
        `Unknown interface "${spec}": no local interface has this address`,
      );
    }
    return { family: 4, address: spec, name: entry.name, index: 0 };
  }
  if (normalizeIPv6(spec) !== undefined) {
    throw new UsageError(
      `Invalid interface "${spec}": an IPv4 group needs an IPv4 interface address or name`,
    );
  }
  const named = interfaces.filter((e) => e.name === spec);
  if (named.length === 0) {
    throw new UsageError(`Unknown interface "${spec}"`);
  }
  const v4 = named.find((e) => e.family === "IPv4");
  if (!v4) {
    throw new UsageError(`Invalid interface "${spec}": it has no IPv4 address`);
  }
  return { family: 4, address: v4.address, name: spec, index: 0 };
}

function resolveIPv6(
  spec: string,
  interfaces: InterfaceAddress[],
): ResolvedInterface {
  if (parseIPv4(spec)) {
    throw new UsageError(
      `Invalid interface "${spec}": an IPv6 group needs an IPv6 interface name, index or address`,
    );
  }
  const names = [...new Set(interfaces.map((e) => e.name))];
  let name: string | undefined;
  if (/^[0-9]+$/.test(spec)) {
    const wanted = Number(spec);
    name = names.find((n) => linkLocalOf(n, interfaces)?.scopeid === wanted);
  } else {
    const literal = normalizeIPv6(spec);
    if (literal !== undefined) {
      name = interfaces.find((e) =>
        e.family === "IPv6" && normalizeIPv6(e.address) === literal
      )?.name;
    } else if (names.includes(spec)) {
      name = spec;
    }
  }
  if (name === undefined) throw new UsageError(`Unknown interface "${spec}"`);
  const linkLocal = linkLocalOf(name, interfaces);
  if (linkLocal === undefined) {
    throw new UsageError(
      `Invalid interface "${spec}": it has no IPv6 link-local address (IPv6 multicast needs one)`,
    );
  }
  return {
    family: 6,
    address: linkLocal.address,
    name,
    index: linkLocal.scopeid!,
  };
}

/**
 * Resolves an `--interface` value for a group of the given family.
 *
 * IPv4 takes an address that a local interface has, or an interface name
 * (its first IPv4 address is used). IPv6 takes an interface name, index or
 * address.
 *
 * @param spec The value given by the user.
 * @param family The family of the group.
 * @param options The system's interfaces, for tests.
 * @returns The interface with the address and index to use.
 * @throws {UsageError} When no interface matches or the family is wrong.
 */
export function resolveInterface(
  spec: string,
  family: Family,
  options: ResolveInterfaceOptions = {},
): ResolvedInterface {
  const interfaces = options.interfaces ??
    (Deno.networkInterfaces() as InterfaceAddress[]);
  return family === 4
    ? resolveIPv4(spec, interfaces)
    : resolveIPv6(spec, interfaces);
}
