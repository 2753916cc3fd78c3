/**
 * A helper process for the native socket tests, run inside a test network
 * namespace (`ip netns exec NS deno run --unstable-net --allow-all
 * tests/net/_native_fixture.ts JSON`). The one argument is a JSON job; every
 * result is one JSON line on stdout.
 *
 * - `recv`: opens a native group socket (optionally source-specific), prints
 *   `{"ready":true}`, then `{"from":PEER,"text":TEXT}` per datagram until
 *   `count` arrived or `timeoutMs` passed, then `{"done":true,"count":N}`.
 * - `send`: opens a native sender, sends each text (`repeat` times over,
 *   default once) to the group, flushes,
 *   closes, prints `{"sent":N,"local":PEER}`.
 * - `hops`: joins an IPv6 group on a plain libc socket with
 *   `IPV6_RECVHOPLIMIT`, prints `{"ready":true}`, then the hop limit of the
 *   first datagram: `{"hopLimit":H,"text":TEXT}`.
 * - `open`: opens a native group socket and prints `{"opened":true}` or
 *   `{"error":NAME,"message":MESSAGE}` (for permission tests).
 *
 * @module
 */

import type { Group, Peer } from "../../lib/net/address.ts";
import type { ResolvedInterface } from "../../lib/net/interfaces.ts";
import {
  openNativeGroupSocket,
  openNativeSenderSocket,
} from "../../lib/net/native_socket.ts";
import {
  acquireLibc,
  addressOf,
  AF_INET6,
  CMSGHDR,
  IOVEC,
  IPPROTO_IPV6,
  IPV6_HOPLIMIT,
  IPV6_JOIN_GROUP,
  IPV6_MREQ,
  IPV6_RECVHOPLIMIT,
  libc,
  MMSGHDR,
  MSG_DONTWAIT,
  POLLFD,
  POLLIN,
  releaseLibc,
  SO_REUSEADDR,
  SOCK_DGRAM_NONBLOCK_CLOEXEC,
  SOCKADDR_IN6,
  SOL_SOCKET,
} from "../../lib/native/libc.ts";

/** A job for this process. */
interface Job {
  mode: "recv" | "send" | "hops" | "open";
  group: Group;
  iface: ResolvedInterface;
  port: number;
  source?: string;
  count?: number;
  timeoutMs?: number;
  ttl?: number;
  texts?: string[];
  sendBuffer?: number;
  repeat?: number;
}

function print(value: unknown): void {
  console.log(JSON.stringify(value));
}

async function receive(job: Job): Promise<void> {
  const endpoint = await openNativeGroupSocket(job.group, job.iface, {
    port: job.port,
    ...(job.source === undefined ? {} : { source: job.source }),
  });
  print({ ready: true });
  const timer = setTimeout(() => endpoint.close(), job.timeoutMs ?? 5000);
  const decoder = new TextDecoder();
  let count = 0;
  while (count < (job.count ?? 1)) {
    const datagram = await endpoint.receive();
    if (datagram === null) break;
    count += 1;
    print({ from: datagram.from, text: decoder.decode(datagram.payload) });
  }
  clearTimeout(timer);
  endpoint.close();
  print({ done: true, count });
}

async function send(job: Job): Promise<void> {
  const endpoint = await openNativeSenderSocket(job.iface, {
    ttl: job.ttl ?? 1,
    ...(job.sendBuffer === undefined ? {} : { sendBuffer: job.sendBuffer }),
  });
  const to: Peer = { address: job.group.address, port: job.port };
  const encoder = new TextEncoder();
  for (const text of job.texts ?? []) {
    await endpoint.send(encoder.encode(text.repeat(job.repeat ?? 1)), to);
  }
  await endpoint.flush();
  endpoint.close();
  print({ sent: job.texts?.length ?? 0, local: endpoint.local });
}

function ipv6Bytes(address: string): Uint8Array {
  // Only the fixture's own groups: "ffXX::a:b" forms.
  const [head, tail] = address.split("::") as [string, string];
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  const first = head.split(":");
  const last = tail.split(":");
  first.forEach((g, i) => view.setUint16(i * 2, parseInt(g, 16)));
  last.forEach((g, i) =>
    view.setUint16(16 - (last.length - i) * 2, parseInt(g, 16))
  );
  return bytes;
}

function setInt(fd: number, level: number, name: number, value: number): void {
  const bytes = new Uint8Array(new Int32Array([value]).buffer);
  if (libc().setsockopt(fd, level, name, bytes, 4) !== 0) {
    throw new Error(`setsockopt ${level}/${name} failed`);
  }
}

/** Reads the hop limit of one datagram, on a socket of its own. */
async function hops(job: Job): Promise<void> {
  const c = acquireLibc();
  const fd = c.socket(AF_INET6, SOCK_DGRAM_NONBLOCK_CLOEXEC, 0);
  try {
    setInt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    const name = new Uint8Array(SOCKADDR_IN6.size);
    const nameView = new DataView(name.buffer);
    nameView.setUint16(SOCKADDR_IN6.family, AF_INET6, true);
    nameView.setUint16(SOCKADDR_IN6.port, job.port);
    name.set(ipv6Bytes(job.group.address), SOCKADDR_IN6.address);
    nameView.setUint32(SOCKADDR_IN6.scopeId, job.iface.index, true);
    if (c.bind(fd, name, name.byteLength) !== 0) throw new Error("bind");
    const request = new Uint8Array(IPV6_MREQ.size);
    request.set(ipv6Bytes(job.group.address), IPV6_MREQ.group);
    new DataView(request.buffer).setUint32(
      IPV6_MREQ.interface,
      job.iface.index,
      true,
    );
    if (c.setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, request, 20) !== 0) {
      throw new Error("join");
    }
    setInt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1);
    print({ ready: true });
    const payload = new Uint8Array(2048);
    const control = new Uint8Array(64);
    const vector = new Uint8Array(IOVEC.size);
    const vectorView = new DataView(vector.buffer);
    vectorView.setBigUint64(IOVEC.base, addressOf(payload), true);
    vectorView.setBigUint64(IOVEC.length, BigInt(payload.byteLength), true);
    const header = new Uint8Array(MMSGHDR.size);
    const h = new DataView(header.buffer);
    h.setBigUint64(MMSGHDR.iov, addressOf(vector), true);
    h.setBigUint64(MMSGHDR.iovLength, 1n, true);
    h.setBigUint64(MMSGHDR.control, addressOf(control), true);
    h.setBigUint64(MMSGHDR.controlLength, BigInt(control.byteLength), true);
    const pollSet = new Uint8Array(POLLFD.size);
    const p = new DataView(pollSet.buffer);
    p.setInt32(POLLFD.fd, fd, true);
    p.setInt16(POLLFD.events, POLLIN, true);
    const deadline = Date.now() + (job.timeoutMs ?? 5000);
    while (Date.now() < deadline) {
      await c.poll(pollSet, 1n, 200);
      const got = c.recvmmsg(
        fd,
        Deno.UnsafePointer.of(header),
        1,
        MSG_DONTWAIT,
        null,
      );
      if (got !== 1) continue;
      const length = h.getUint32(MMSGHDR.length, true);
      const text = new TextDecoder().decode(payload.subarray(0, length));
      const cmsg = new DataView(control.buffer);
      const used = Number(h.getBigUint64(MMSGHDR.controlLength, true));
      for (let offset = 0; offset + CMSGHDR.size <= used;) {
        const size = Number(cmsg.getBigUint64(offset + CMSGHDR.length, true));
        const level = cmsg.getInt32(offset + CMSGHDR.level, true);
        const type = cmsg.getInt32(offset + CMSGHDR.type, true);
        if (level === IPPROTO_IPV6 && type === IPV6_HOPLIMIT) {
          const hopLimit = cmsg.getInt32(offset + CMSGHDR.size, true);
          print({ hopLimit, text });
          return;
        }
        offset += (size + 7) & ~7;
      }
      print({ error: "no hop limit", text });
      return;
    }
    print({ error: "timed out" });
  } finally {
    c.close(fd);
    releaseLibc();
  }
}

async function open(job: Job): Promise<void> {
  try {
    const endpoint = await openNativeGroupSocket(job.group, job.iface, {
      port: job.port,
    });
    endpoint.close();
    print({ opened: true });
  } catch (error) {
    const e = error as Error;
    print({ error: e.name, message: e.message });
  }
}

const job = JSON.parse(Deno.args[0]!) as Job;
if (job.mode === "recv") await receive(job);
else if (job.mode === "send") await send(job);
else if (job.mode === "hops") await hops(job);
else await open(job);
