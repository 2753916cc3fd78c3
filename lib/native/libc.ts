/**
 * Every libc binding of the project, loaded on demand from `libc.so.6`
 * with `Deno.dlopen` (and closed when its last user is done), and the constants and struct layouts they take. Linux on
 * x86_64 and aarch64 only: both share the generic socket ABI (LP64, the same
 * option numbers and the same layouts for every struct used here; checked
 * with `offsetof` on x86_64 glibc).
 *
 * @module
 */

/** The symbols this module binds. */
const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  setsockopt: {
    parameters: ["i32", "i32", "i32", "buffer", "u32"],
    result: "i32",
  },
  getsockopt: {
    parameters: ["i32", "i32", "i32", "buffer", "buffer"],
    result: "i32",
  },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  sendmmsg: { parameters: ["i32", "pointer", "u32", "i32"], result: "i32" },
  recvmmsg: {
    parameters: ["i32", "pointer", "u32", "i32", "pointer"],
    result: "i32",
  },
  /** Runs on a worker thread: waiting never blocks the event loop. */
  poll: {
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  ["__errno_location"]: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded library's symbols. */
export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let library: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;
let users = 0;

/**
 * Loads `libc.so.6` (needs `--allow-ffi`), or counts one more user of the
 * loaded library. Every call needs its {@linkcode releaseLibc}: the library
 * is closed when its last user releases it, so a program (or a test under
 * the resource sanitizer) that closed every native socket holds no library.
 *
 * @returns The bound functions.
 * @throws {Error} What `Deno.dlopen` threw, when the library cannot load.
 */
export function acquireLibc(): Libc {
  library ??= Deno.dlopen("libc.so.6", SYMBOLS);
  users += 1;
  return library.symbols;
}

/** Ends one {@linkcode acquireLibc}; the last one closes the library. */
export function releaseLibc(): void {
  if (users === 0) return;
  users -= 1;
  if (users === 0) {
    library?.close();
    library = undefined;
  }
}

/**
 * The loaded library's functions, for code that holds an
 * {@linkcode acquireLibc}.
 *
 * @returns The bound functions.
 * @throws {Error} When nobody acquired the library.
 */
export function libc(): Libc {
  if (library === undefined) {
    throw new Error("libc.so.6 is not loaded (call acquireLibc() first)");
  }
  return library.symbols;
}

/**
 * Reads `errno`; call it right after a failing synchronous call (never after
 * a nonblocking one: those run on another thread).
 *
 * @returns The calling thread's errno.
 */
export function errno(): number {
  const pointer = libc().__errno_location();
  return pointer === null ? 0 : new Deno.UnsafePointerView(pointer).getInt32();
}

/**
 * The system's message for an error number, e.g. "Address already in use".
 *
 * @param code An errno value.
 * @returns The message, or `error N` when libc has none.
 */
export function errorText(code: number): string {
  const pointer = libc().strerror(code);
  if (pointer === null) return `error ${code}`;
  return new Deno.UnsafePointerView(pointer).getCString();
}

/** Address families. */
export const AF_INET = 2;
/** IPv6 address family. */
export const AF_INET6 = 10;

/** `SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC`. */
export const SOCK_DGRAM_NONBLOCK_CLOEXEC = 2 | 0o4000 | 0o2000000;
/** `SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC`. */
export const SOCK_RAW_NONBLOCK_CLOEXEC = 3 | 0o4000 | 0o2000000;
/** `O_RDONLY | O_CLOEXEC`, for `open`. */
export const O_RDONLY_CLOEXEC = 0o2000000;
/** `EFD_NONBLOCK | EFD_CLOEXEC`. */
export const EFD_NONBLOCK_CLOEXEC = 0o4000 | 0o2000000;

/** Socket option levels. */
export const SOL_SOCKET = 1;
/** IPv4 option level. */
export const IPPROTO_IP = 0;
/** IPv6 option level. */
export const IPPROTO_IPV6 = 41;
/** IGMP, the protocol of a raw socket that watches for queries. */
export const IPPROTO_IGMP = 2;

/** `SOL_SOCKET` options. */
export const SO_REUSEADDR = 2;
/** Send buffer, capped by `net.core.wmem_max`. */
export const SO_SNDBUF = 7;
/** Receive buffer, capped by `net.core.rmem_max`. */
export const SO_RCVBUF = 8;
/** Send buffer beyond the cap (needs CAP_NET_ADMIN). */
export const SO_SNDBUFFORCE = 32;
/** Ties a socket to one interface, by name (needs CAP_NET_RAW). */
export const SO_BINDTODEVICE = 25;
/** Receive buffer beyond the cap (needs CAP_NET_ADMIN). */
export const SO_RCVBUFFORCE = 33;

/** `IPPROTO_IP` options. */
export const IP_MULTICAST_IF = 32;
/** The ancillary data type carrying a received TTL. */
export const IP_TTL = 2;
/** Ask for the TTL of received datagrams as ancillary data. */
export const IP_RECVTTL = 12;
/** Multicast TTL. */
export const IP_MULTICAST_TTL = 33;
/** Multicast loopback. */
export const IP_MULTICAST_LOOP = 34;
/** Any-source join (`struct ip_mreq`). */
export const IP_ADD_MEMBERSHIP = 35;
/** Source-specific join (`struct ip_mreq_source`). */
export const IP_ADD_SOURCE_MEMBERSHIP = 39;
/** Whether a wildcard-bound socket hears groups it did not join. */
export const IP_MULTICAST_ALL = 49;

/** `IPPROTO_IPV6` options. */
export const IPV6_MULTICAST_IF = 17;
/** Multicast hop limit. */
export const IPV6_MULTICAST_HOPS = 18;
/** Multicast loopback. */
export const IPV6_MULTICAST_LOOP = 19;
/** Any-source join (`struct ipv6_mreq`). */
export const IPV6_JOIN_GROUP = 20;
/** Ask for the hop limit of received datagrams as ancillary data. */
export const IPV6_RECVHOPLIMIT = 51;
/** The ancillary data type carrying a received hop limit. */
export const IPV6_HOPLIMIT = 52;
/** Source-specific join (`struct group_source_req`), any family. */
export const MCAST_JOIN_SOURCE_GROUP = 46;

/** `send`/`recv` flag: never block. */
export const MSG_DONTWAIT = 0x40;

/** `poll` events. */
export const POLLIN = 1;
/** Writable. */
export const POLLOUT = 4;

/** errno values. */
export const EPERM = 1;
/** Interrupted system call. */
export const EINTR = 4;
/** Try again (would block). */
export const EAGAIN = 11;
/** Permission denied. */
export const EACCES = 13;
/** Address already in use. */
export const EADDRINUSE = 98;
/** No buffer space available. */
export const ENOBUFS = 105;

/** `struct sockaddr_in`: 16 bytes. */
export const SOCKADDR_IN = {
  size: 16,
  family: 0,
  /** Big-endian. */
  port: 2,
  address: 4,
} as const;

/** `struct sockaddr_in6`: 28 bytes. */
export const SOCKADDR_IN6 = {
  size: 28,
  family: 0,
  /** Big-endian. */
  port: 2,
  flowInfo: 4,
  address: 8,
  scopeId: 24,
} as const;

/** `struct iovec`: base pointer, length. */
export const IOVEC = { size: 16, base: 0, length: 8 } as const;

/** `struct mmsghdr`: a `struct msghdr` (56 bytes), then `msg_len`. */
export const MMSGHDR = {
  size: 64,
  name: 0,
  nameLength: 8,
  iov: 16,
  iovLength: 24,
  control: 32,
  controlLength: 40,
  flags: 48,
  /** Bytes sent or received (output). */
  length: 56,
} as const;

/** `struct cmsghdr`: length (size_t), level, type; data at 16. */
export const CMSGHDR = { size: 16, length: 0, level: 8, type: 12 } as const;

/** `struct pollfd`: fd, events, revents. */
export const POLLFD = { size: 8, fd: 0, events: 4, revents: 6 } as const;

/** `struct ip_mreq`: group, interface address. */
export const IP_MREQ = { size: 8, group: 0, interface: 4 } as const;

/** `struct ip_mreq_source` (Linux order): group, interface, source. */
export const IP_MREQ_SOURCE = {
  size: 12,
  group: 0,
  interface: 4,
  source: 8,
} as const;

/** `struct ipv6_mreq`: group, interface index. */
export const IPV6_MREQ = { size: 20, group: 0, interface: 16 } as const;

/**
 * `struct group_source_req` on 64-bit Linux: interface index (u32, then 4
 * bytes of padding), then two 128-byte `struct sockaddr_storage`.
 */
export const GROUP_SOURCE_REQ = {
  size: 264,
  interface: 0,
  group: 8,
  source: 136,
} as const;

/**
 * The address of a buffer's first byte, for pointer fields of structs.
 *
 * @param buffer Memory that stays alive while the kernel may use it.
 * @returns The address as a bigint.
 */
export function addressOf(buffer: BufferSource): bigint {
  const pointer = Deno.UnsafePointer.of(buffer);
  return BigInt(Deno.UnsafePointer.value(pointer));
}
