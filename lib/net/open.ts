/**
 * Which socket path an endpoint takes: the native Linux path
 * (`lib/net/native_socket.ts`: libc sockets through `Deno.dlopen`, batched
 * `sendmmsg`/`recvmmsg`, large buffers, IPv6 hop limits, source-specific
 * joins) or the runtime's `Deno.listenDatagram` (`lib/net/socket.ts`, every
 * platform). Both give the same {@linkcode DatagramEndpoint}.
 *
 * @module
 */

import type { Group } from "./address.ts";
import { UsageError } from "../errors.ts";
import type { IoChoice, IoPath } from "./io.ts";
import type { ResolvedInterface } from "./interfaces.ts";
import {
  bufferWarning,
  type NativeBuffers,
  type NativeEndpoint,
  nativeUnavailable,
  openNativeGroupSocket,
  openNativeSenderSocket,
} from "./native_socket.ts";
import {
  type DatagramEndpoint,
  openGroupSocket,
  openSenderSocket,
} from "./socket.ts";

/** An opened endpoint and what the system made of it. */
export interface OpenedEndpoint {
  /** The socket. */
  endpoint: DatagramEndpoint;
  /** The path it takes. */
  io: IoPath;
  /**
   * One-line warnings for stderr, e.g. a receive buffer the system capped
   * below what was asked for.
   */
  warnings: string[];
  /** The buffer sizes asked for and granted (native path only). */
  buffers?: NativeBuffers;
}

/** Options of {@linkcode chooseIo}. */
export interface ChooseIoOptions {
  /**
   * What needs the native path when `auto` has to fall back, e.g.
   * `--source` (falling back is then an error, not a silent downgrade).
   */
  needsNative?: string;
}

/**
 * Resolves `--io` to a path.
 *
 * @param choice What was asked for.
 * @param options What needs the native path, if anything.
 * @returns `native` or `deno`.
 * @throws {UsageError} When the native path is needed but cannot load here
 * (exit status 2), saying why.
 */
export function chooseIo(
  choice: IoChoice,
  options: ChooseIoOptions = {},
): IoPath {
  if (choice === "deno") return "deno";
  const reason = nativeUnavailable();
  if (reason === undefined) return "native";
  if (choice === "native") {
    throw new UsageError(`Option "--io native" cannot be used here: ${reason}`);
  }
  if (options.needsNative !== undefined) {
    throw new UsageError(
      `${options.needsNative} needs the native path, which cannot be used here: ${reason}`,
    );
  }
  return "deno";
}

/** Options of {@linkcode openSender}. */
export interface OpenSenderOptions {
  /** Multicast TTL or IPv6 hop limit, 0-255. */
  ttl: number;
  /** The path, from {@linkcode chooseIo}. */
  io: IoPath;
  /** The port to bind (default 0: an ephemeral one). */
  port?: number;
  /** Report received TTLs (native path only; ignored on the deno path). */
  receiveTtl?: boolean;
}

/**
 * Opens a sender's socket on the chosen path (see `openSenderSocket` and
 * `openNativeSenderSocket`).
 *
 * @param iface The interface to send from.
 * @param options The TTL and the path.
 * @returns The endpoint, its path and any warnings.
 * @throws {UsageError} When the deno path is asked for an IPv6 hop limit
 * other than 1, which the runtime cannot set.
 * @throws {NetworkError} When the socket cannot be opened.
 * @throws {PermissionError} When network access is not granted.
 */
export async function openSender(
  iface: ResolvedInterface,
  options: OpenSenderOptions,
): Promise<OpenedEndpoint> {
  if (options.io === "deno") {
    if (iface.family === 6 && options.ttl !== 1) {
      throw new UsageError(
        `Invalid --ttl "${options.ttl}" for an IPv6 group on the deno path: the runtime cannot set the hop limit, which stays 1 (the native path can)`,
      );
    }
    const endpoint = await openSenderSocket(iface, {
      ttl: options.ttl,
      ...(options.port === undefined ? {} : { port: options.port }),
    });
    return { endpoint, io: "deno", warnings: [] };
  }
  const endpoint = await openNativeSenderSocket(iface, {
    ttl: options.ttl,
    ...(options.port === undefined ? {} : { port: options.port }),
    ...(options.receiveTtl ? { receiveTtl: true } : {}),
  });
  return openedNative(endpoint);
}

/** Options of {@linkcode openGroup}. */
export interface OpenGroupOptions {
  /** The group's UDP port. */
  port: number;
  /** The path, from {@linkcode chooseIo}. */
  io: IoPath;
  /** Source-specific multicast: the one sender to hear (native path only). */
  source?: string;
  /** Report received TTLs (native path only; ignored on the deno path). */
  receiveTtl?: boolean;
}

/**
 * Opens a receiver's socket, joined to the group, on the chosen path (see
 * `openGroupSocket` and `openNativeGroupSocket`).
 *
 * @param group The group to join.
 * @param iface The interface to join on.
 * @param options The port, the path, and an optional source.
 * @returns The endpoint, its path and any warnings.
 * @throws {UsageError} When a source is given on the deno path.
 * @throws {NetworkError} When binding or joining fails.
 * @throws {PermissionError} When network access is not granted.
 */
export async function openGroup(
  group: Group,
  iface: ResolvedInterface,
  options: OpenGroupOptions,
): Promise<OpenedEndpoint> {
  if (options.io === "deno") {
    if (options.source !== undefined) {
      throw new UsageError(
        `Option "--source" needs the native path: the runtime's sockets cannot join a source-specific group`,
      );
    }
    const endpoint = await openGroupSocket(group, iface, {
      port: options.port,
    });
    return { endpoint, io: "deno", warnings: [] };
  }
  const endpoint = await openNativeGroupSocket(group, iface, {
    port: options.port,
    ...(options.source === undefined ? {} : { source: options.source }),
    ...(options.receiveTtl ? { receiveTtl: true } : {}),
  });
  return openedNative(endpoint);
}

/** A native endpoint with its buffers and the warning about them, if any. */
function openedNative(endpoint: NativeEndpoint): OpenedEndpoint {
  const warning = bufferWarning(endpoint.buffers);
  return {
    endpoint,
    io: "native",
    warnings: warning === undefined ? [] : [warning],
    buffers: endpoint.buffers,
  };
}
