/**
 * Whether this kernel routes multicast: `setsockopt(MRT_INIT)` on a raw
 * IGMP socket, as smcroute and pimd do first. Where it fails (a kernel
 * without `CONFIG_IP_MROUTE`: "Protocol not available"), no multicast
 * router can run, and `mcast-bridge` is the way across segments.
 *
 * @module
 */

import {
  acquireLibc,
  AF_INET,
  errno,
  errorText,
  releaseLibc,
} from "../native/libc.ts";

const SOCK_RAW = 3;
const IPPROTO_IGMP = 2;
const IPPROTO_IP = 0;
/** `linux/mroute.h`: MRT_BASE (200), MRT_INIT and MRT_DONE. */
const MRT_INIT = 200;
const MRT_DONE = 201;

/**
 * Probes multicast routing in the calling network namespace.
 *
 * @returns Why multicast routing is unavailable (e.g. `MRT_INIT failed:
 * Protocol not available`), or `undefined` when it works.
 */
export function multicastRoutingUnavailable(): string | undefined {
  if (Deno.build.os !== "linux") return "multicast routing probe needs Linux";
  let libc;
  try {
    libc = acquireLibc();
  } catch (error) {
    return `cannot load libc: ${
      error instanceof Error ? error.message : String(error)
    }`;
  }
  try {
    const fd = libc.socket(AF_INET, SOCK_RAW, IPPROTO_IGMP);
    if (fd < 0) return `raw IGMP socket: ${errorText(errno())}`;
    try {
      const one = new Int32Array([1]);
      const set = libc.setsockopt(
        fd,
        IPPROTO_IP,
        MRT_INIT,
        new Uint8Array(one.buffer),
        4,
      );
      if (set !== 0) return `MRT_INIT failed: ${errorText(errno())}`;
      libc.setsockopt(fd, IPPROTO_IP, MRT_DONE, new Uint8Array(4), 4);
      return undefined;
    } finally {
      libc.close(fd);
    }
  } finally {
    releaseLibc();
  }
}
