/**
 * The native socket path (`lib/net/native_socket.ts`): IPv4 on loopback,
 * and, in private network namespaces (root only; otherwise ignored with a
 * printed reason), source-specific joins for IPv4 and IPv6 and the IPv6 hop
 * limit. Processes in the namespaces run `tests/net/_native_fixture.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Group, Peer } from "../../lib/net/address.ts";
import type { ResolvedInterface } from "../../lib/net/interfaces.ts";
import {
  bufferWarning,
  nativeUnavailable,
  openNativeGroupSocket,
  openNativeSenderSocket,
} from "../../lib/net/native_socket.ts";
import {
  type DatagramEndpoint,
  openGroupSocket,
  openSenderSocket,
} from "../../lib/net/socket.ts";
import { NetworkError, PermissionError, UsageError } from "../../lib/errors.ts";
import { bounded } from "../_wait.ts";
import { testPort } from "../_tools.ts";
import {
  createLab,
  type Host,
  type Lab,
  listNamespaces,
  netnsUnavailable,
  tc,
} from "../_netns.ts";

const LO: ResolvedInterface = {
  family: 4,
  address: "127.0.0.1",
  name: "lo",
  index: 0,
};

const FIXTURE = new URL("./_native_fixture.ts", import.meta.url).pathname;

/** Longest any single wait of these tests. */
const WAIT_MS = 10_000;

function group(last: number): Group {
  return { family: 4, address: `239.255.91.${last}` };
}

/** A payload of `size` bytes that differs per `seed`. */
function pattern(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 7 + seed * 13) & 0xff;
  return bytes;
}

/** Receives `count` datagrams; closes the endpoint and fails after WAIT_MS. */
async function collect(
  endpoint: DatagramEndpoint,
  count: number,
): Promise<{ payload: Uint8Array; from: Peer }[]> {
  const got: { payload: Uint8Array; from: Peer }[] = [];
  await bounded(
    WAIT_MS,
    (async () => {
      while (got.length < count) {
        const datagram = await endpoint.receive();
        if (datagram === null) break;
        got.push(datagram);
      }
    })(),
    () => endpoint.close(),
  );
  return got;
}

function assertFails(
  error: unknown,
  type: typeof NetworkError | typeof PermissionError | typeof UsageError,
  message: string,
): true {
  assert.ok(error instanceof type, `not a ${type.name}: ${error}`);
  assert.equal(error.message, message);
  return true;
}

Deno.test("the native path is available here", () => {
  assert.equal(nativeUnavailable(), undefined);
});

Deno.test("native sender to native group: 1001 datagrams, exact bytes, in order", async () => {
  const port = testPort();
  const g = group(1);
  const receiver = await openNativeGroupSocket(g, LO, { port });
  const sender = await openNativeSenderSocket(LO, { ttl: 1 });
  try {
    assert.equal(receiver.io, "native");
    assert.deepEqual(receiver.local, { address: g.address, port });
    assert.equal(sender.local.address, "127.0.0.1");
    assert.ok(sender.local.port > 0);
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 1000; i++) sent.push(pattern((i % 1472) + 1, i));
    sent.push(pattern(65507, 1000));
    const receiving = collect(receiver, sent.length);
    const to: Peer = { address: g.address, port };
    for (const payload of sent) await sender.send(payload, to);
    await sender.flush();
    const got = await receiving;
    assert.equal(got.length, sent.length);
    for (const [i, datagram] of got.entries()) {
      assert.deepEqual(datagram.payload, sent[i], `datagram ${i}`);
      assert.deepEqual(datagram.from, sender.local);
    }
    // One source: one frozen Peer for the whole stream.
    assert.ok(got.every((d) => d.from === got[0]!.from));
    assert.ok(Object.isFrozen(got[0]!.from));
  } finally {
    sender.close();
    receiver.close();
  }
});

Deno.test("the caller may reuse its buffer once send() resolved", async () => {
  const port = testPort();
  const g = group(2);
  const receiver = await openNativeGroupSocket(g, LO, { port });
  const sender = await openNativeSenderSocket(LO, { ttl: 1 });
  try {
    const receiving = collect(receiver, 3);
    const buffer = new Uint8Array(4);
    for (let i = 1; i <= 3; i++) {
      buffer.fill(i);
      await sender.send(buffer, { address: g.address, port });
    }
    const got = await receiving;
    assert.deepEqual(got.map((d) => [...d.payload]), [
      [1, 1, 1, 1],
      [2, 2, 2, 2],
      [3, 3, 3, 3],
    ]);
  } finally {
    sender.close();
    receiver.close();
  }
});

Deno.test("native and Deno endpoints exchange identical bytes both ways", async () => {
  const port = testPort();
  const g = group(3);
  const payloads = [1, 100, 1472, 9000, 65507].map((size) =>
    pattern(size, size)
  );
  const to: Peer = { address: g.address, port };
  {
    const receiver = await openGroupSocket(g, LO, { port });
    const sender = await openNativeSenderSocket(LO, { ttl: 1 });
    try {
      const receiving = collect(receiver, payloads.length);
      for (const payload of payloads) await sender.send(payload, to);
      await sender.flush();
      const got = await receiving;
      assert.deepEqual(got.map((d) => d.payload), payloads);
      assert.deepEqual(got[0]!.from, sender.local);
    } finally {
      sender.close();
      receiver.close();
    }
  }
  {
    const receiver = await openNativeGroupSocket(g, LO, { port });
    const sender = await openSenderSocket(LO, { ttl: 1 });
    try {
      const receiving = collect(receiver, payloads.length);
      for (const payload of payloads) await sender.send(payload, to);
      const got = await receiving;
      assert.deepEqual(got.map((d) => d.payload), payloads);
      assert.deepEqual(got[0]!.from, sender.local);
    } finally {
      sender.close();
      receiver.close();
    }
  }
});

Deno.test("the group socket replies by unicast to the sender's local address", async () => {
  const port = testPort();
  const g = group(4);
  const receiver = await openNativeGroupSocket(g, LO, { port });
  const sender = await openNativeSenderSocket(LO, { ttl: 1 });
  try {
    const [question] = await Promise.all([
      collect(receiver, 1),
      sender.send(new TextEncoder().encode("ping"), {
        address: g.address,
        port,
      }),
    ]);
    assert.deepEqual(question[0]!.from, sender.local);
    const answering = collect(sender, 1);
    await receiver.send(new TextEncoder().encode("pong"), sender.local);
    const [answer] = await answering;
    assert.equal(new TextDecoder().decode(answer!.payload), "pong");
    assert.deepEqual(answer!.from, { address: "127.0.0.1", port });
  } finally {
    sender.close();
    receiver.close();
  }
});

Deno.test("close() resolves a pending receive() with null at once, twice is safe", async () => {
  const receiver = await openNativeGroupSocket(group(5), LO, {
    port: testPort(),
  });
  const pending = receiver.receive();
  // Let the receive reach its poll on the worker thread.
  await new Promise((resolve) => setTimeout(resolve, 20));
  const start = performance.now();
  receiver.close();
  receiver.close();
  const result = await bounded(2000, pending, () => {});
  assert.equal(result, null);
  assert.ok(performance.now() - start < 500, "close() did not wake the poll");
  assert.equal(await receiver.receive(), null);
  await assert.rejects(
    receiver.send(new Uint8Array(1), { address: "127.0.0.1", port: 9 }),
    (error) =>
      assertFails(
        error,
        NetworkError,
        "Cannot send to 127.0.0.1:9: the socket is closed",
      ),
  );
});

Deno.test("buffers: what the kernel reports, and the warning when capped", async () => {
  const receiver = await openNativeGroupSocket(group(6), LO, {
    port: testPort(),
  });
  const sender = await openNativeSenderSocket(LO, {
    ttl: 1,
    receiveBuffer: 1 << 20,
    sendBuffer: 1 << 19,
  });
  try {
    const rmemMax = Number(
      await Deno.readTextFile("/proc/sys/net/core/rmem_max"),
    );
    const wmemMax = Number(
      await Deno.readTextFile("/proc/sys/net/core/wmem_max"),
    );
    const root = Deno.uid() === 0;
    // What was granted (Linux reports twice that); without privilege the
    // system's maximum caps it.
    const receive = root ? 8 << 20 : Math.min(8 << 20, rmemMax);
    const send = root ? 4 << 20 : Math.min(4 << 20, wmemMax);
    assert.deepEqual(receiver.buffers, {
      receive,
      send,
      requestedReceive: 8 << 20,
      requestedSend: 4 << 20,
      capped: receive < 8 << 20,
    });
    assert.deepEqual(sender.buffers, {
      receive: 1 << 20,
      send: 1 << 19,
      requestedReceive: 1 << 20,
      requestedSend: 1 << 19,
      capped: false,
    });
    assert.equal(bufferWarning(sender.buffers), undefined);
  } finally {
    sender.close();
    receiver.close();
  }
  assert.equal(
    bufferWarning({
      receive: 4194304,
      send: 8388608,
      requestedReceive: 8388608,
      requestedSend: 4194304,
      capped: true,
    }),
    "warning: receive buffer is 4194304 bytes, asked for 8388608 (the system caps it: sysctl -w net.core.rmem_max=8388608)",
  );
});

Deno.test("a port held without address reuse: one-line NetworkError", async () => {
  const port = testPort();
  const g = group(7);
  const holder = Deno.listenDatagram({
    transport: "udp",
    hostname: g.address,
    port,
    reuseAddress: false,
  });
  try {
    await assert.rejects(
      openNativeGroupSocket(g, LO, { port }),
      (error) =>
        assertFails(
          error,
          NetworkError,
          `Cannot bind ${g.address}:${port}: address already in use (another socket holds the port without address reuse)`,
        ),
    );
  } finally {
    holder.close();
  }
});

Deno.test("a source of the other family: one-line UsageError", async () => {
  await assert.rejects(
    openNativeGroupSocket(group(8), LO, {
      port: testPort(),
      source: "fe80::1",
    }),
    (error) =>
      assertFails(
        error,
        UsageError,
        'Invalid source "fe80::1" for group 239.255.91.8: not an IPv4 address',
      ),
  );
});

Deno.test("a hard send error is thrown by the send() that flushed it, or by flush()", async () => {
  const port = testPort();
  const g = group(9);
  const receiver = await openNativeGroupSocket(g, LO, { port });
  const sender = await openNativeSenderSocket(LO, { ttl: 1 });
  const wrong: Peer = { address: "::1", port };
  const message =
    `Cannot send to [::1]:${port}: address family not supported by protocol`;
  try {
    const receiving = collect(receiver, 63 + 2);
    const to: Peer = { address: g.address, port };
    for (let i = 0; i < 63; i++) await sender.send(pattern(10, i), to);
    // The 64th datagram fills the batch and flushes it at once.
    await assert.rejects(
      sender.send(new Uint8Array(1), wrong),
      (error) => assertFails(error, NetworkError, message),
    );
    await sender.send(pattern(10, 63), to);
    await sender.send(new Uint8Array(1), wrong);
    await sender.send(pattern(10, 64), to);
    await assert.rejects(
      sender.flush(),
      (error) => assertFails(error, NetworkError, message),
    );
    const got = await receiving;
    assert.deepEqual(
      got.map((d) => d.payload),
      Array.from({ length: 65 }, (_, i) => pattern(10, i)),
    );
  } finally {
    sender.close();
    receiver.close();
  }
});

/** Output of a fixture process, one JSON object a line. */
type Line = Record<string, unknown>;

/** A `_native_fixture.ts` process, optionally inside a namespace. */
class Fixture implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #reader: ReadableStreamDefaultReader<string>;
  readonly #stderr: Promise<string>;
  #buffer = "";

  constructor(job: object, options: { ns?: string; flags?: string[] } = {}) {
    const deno = [
      Deno.execPath(),
      "run",
      "--unstable-net",
      ...(options.flags ?? ["--allow-all"]),
      FIXTURE,
      JSON.stringify(job),
    ];
    const [program, ...args] = options.ns === undefined
      ? deno
      : ["ip", "netns", "exec", options.ns, ...deno];
    this.#child = new Deno.Command(program!, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#reader = this.#child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    this.#stderr = new Response(this.#child.stderr).text();
  }

  /** The next line; fails (and kills the process) after `ms`. */
  async line(ms = 20_000): Promise<Line> {
    const line = await bounded(ms, this.#readLine(), () => this.#kill());
    if (line === null) {
      throw new Error(`fixture ended early: ${await this.#stderr}`);
    }
    return line;
  }

  async #readLine(): Promise<Line | null> {
    while (true) {
      const end = this.#buffer.indexOf("\n");
      if (end >= 0) {
        const text = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 1);
        return JSON.parse(text) as Line;
      }
      const { value, done } = await this.#reader.read();
      if (done) return null;
      this.#buffer += value;
    }
  }

  #kill(): void {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await bounded(20_000, this.#rest(), () => this.#kill());
    await this.#child.status;
    await this.#stderr;
  }

  async #rest(): Promise<void> {
    while (!(await this.#reader.read()).done) {
      // Discard.
    }
  }
}

Deno.test("without net access: the runtime's PermissionError wording", async () => {
  const port = testPort();
  await using fixture = new Fixture({
    mode: "open",
    group: group(10),
    iface: LO,
    port,
  }, { flags: ["--allow-ffi"] });
  assert.deepEqual(await fixture.line(), {
    error: "PermissionError",
    message:
      `Cannot bind 239.255.91.10:${port}: requires net access to "239.255.91.10:${port}", run again with the --allow-net flag`,
  });
});

Deno.test("without FFI access: a PermissionError naming --allow-ffi", async () => {
  await using fixture = new Fixture({
    mode: "open",
    group: group(11),
    iface: LO,
    port: testPort(),
  }, { flags: ["--allow-net"] });
  assert.deepEqual(await fixture.line(), {
    error: "PermissionError",
    message:
      "Cannot open a native socket: FFI not permitted (run with --allow-ffi)",
  });
});

// ---------------------------------------------------------------------------
// Several hosts

const skip = await netnsUnavailable();
if (skip !== undefined) console.log(`skipped: ${skip}`);

function labTest(name: string, body: (lab: Lab) => Promise<void>): void {
  Deno.test({
    name,
    ignore: skip !== undefined,
    async fn() {
      let namespaces: string[] = [];
      {
        await using lab = await createLab();
        namespaces = lab.namespaces;
        await body(lab);
      }
      const left = (await listNamespaces()).filter((n) =>
        namespaces.includes(n)
      );
      assert.deepEqual(left, [], "the test's namespaces were not deleted");
    },
  });
}

function iface(host: Host, family: 4 | 6): ResolvedInterface {
  return family === 4
    ? { family, address: host.ipv4, name: host.link, index: 0 }
    : { family, address: host.ipv6, name: host.link, index: host.index };
}

/** Sends `texts` from `host` to the group; returns the sender's local port. */
async function sendFrom(
  host: Host,
  family: 4 | 6,
  job: {
    group: Group;
    port: number;
    texts: string[];
    ttl?: number;
    sendBuffer?: number;
    repeat?: number;
  },
): Promise<number> {
  await using sender = new Fixture({
    mode: "send",
    iface: iface(host, family),
    ...job,
  }, { ns: host.ns });
  const line = await sender.line();
  assert.equal(line.sent, job.texts.length, JSON.stringify(line));
  return (line.local as Peer).port;
}

/**
 * In r1: a receiver joined to `source` = the sender's address, and one
 * joined to any source. r2 sends B's datagrams first, then the sender A's.
 * The any-source receiver hears all ten (so B's reached r1); the
 * source-specific one hears exactly A's five.
 */
async function sourceSpecific(
  lab: Lab,
  family: 4 | 6,
  g: Group,
): Promise<void> {
  const [r1, r2] = lab.receivers;
  const a = lab.sender;
  const port = testPort();
  const address = (host: Host) => family === 4 ? host.ipv4 : host.ipv6;
  const base = { mode: "recv", group: g, iface: iface(r1, family), port };
  await using ssm = new Fixture({
    ...base,
    source: address(a),
    count: 5,
    timeoutMs: 15_000,
  }, { ns: r1.ns });
  await using asm = new Fixture({ ...base, count: 10, timeoutMs: 15_000 }, {
    ns: r1.ns,
  });
  assert.deepEqual(await ssm.line(), { ready: true });
  assert.deepEqual(await asm.line(), { ready: true });
  const texts = (who: string) => [0, 1, 2, 3, 4].map((i) => `${who}${i}`);
  const portB = await sendFrom(r2, family, {
    group: g,
    port,
    texts: texts("B"),
  });
  const portA = await sendFrom(a, family, {
    group: g,
    port,
    texts: texts("A"),
  });
  const from = (host: Host, sourcePort: number): Peer =>
    family === 4
      ? { address: host.ipv4, port: sourcePort }
      : { address: host.ipv6, port: sourcePort, scopeId: r1.index };
  const heard = async (fixture: Fixture, count: number) => {
    const lines: Line[] = [];
    for (let i = 0; i <= count; i++) lines.push(await fixture.line());
    return lines;
  };
  assert.deepEqual(await heard(asm, 10), [
    ...texts("B").map((text) => ({ from: from(r2, portB), text })),
    ...texts("A").map((text) => ({ from: from(a, portA), text })),
    { done: true, count: 10 },
  ]);
  assert.deepEqual(await heard(ssm, 5), [
    ...texts("A").map((text) => ({ from: from(a, portA), text })),
    { done: true, count: 5 },
  ]);
}

labTest(
  "IPv4 source-specific join hears only the chosen sender",
  async (lab) => {
    await sourceSpecific(lab, 4, { family: 4, address: "232.1.1.7" });
  },
);

labTest(
  "IPv6 source-specific join hears only the chosen sender",
  async (lab) => {
    await sourceSpecific(lab, 6, { family: 6, address: "ff32::8000:1" });
  },
);

labTest("IPv6 hop limit 5 arrives as 5", async (lab) => {
  const r1 = lab.receivers[0];
  const port = testPort();
  const g: Group = { family: 6, address: "ff02::6d63:9" };
  await using hops = new Fixture({
    mode: "hops",
    group: g,
    iface: iface(r1, 6),
    port,
    timeoutMs: 15_000,
  }, { ns: r1.ns });
  assert.deepEqual(await hops.line(), { ready: true });
  await sendFrom(lab.sender, 6, { group: g, port, texts: ["hop"], ttl: 5 });
  assert.deepEqual(await hops.line(), { hopLimit: 5, text: "hop" });
});

labTest(
  "a full send buffer holds datagrams back, never drops them",
  async (lab) => {
    // A slow queue on the sender's link keeps sent datagrams charged to the
    // socket's small send buffer, so sendmmsg() soon reports EAGAIN and the
    // endpoint must wait for writability.
    await tc(
      `-n ${lab.sender.ns} qdisc add dev ${lab.sender.link} root tbf rate 8mbit burst 4kb limit 1mb`,
    );
    const r1 = lab.receivers[0];
    const port = testPort();
    const g: Group = { family: 4, address: "239.255.91.12" };
    // 300 datagrams of 1000 bytes: "0000" 250 times, "0001" 250 times...
    const texts = Array.from(
      { length: 300 },
      (_, i) => `${i}`.padStart(4, "0"),
    );
    await using receiver = new Fixture({
      mode: "recv",
      group: g,
      iface: iface(r1, 4),
      port,
      count: texts.length,
      timeoutMs: 15_000,
    }, { ns: r1.ns });
    assert.deepEqual(await receiver.line(), { ready: true });
    await sendFrom(lab.sender, 4, {
      group: g,
      port,
      texts,
      repeat: 250,
      sendBuffer: 4096,
    });
    const heard: unknown[] = [];
    for (let i = 0; i < texts.length; i++) {
      heard.push((await receiver.line()).text);
    }
    assert.deepEqual(heard, texts.map((text) => text.repeat(250)));
    assert.deepEqual(await receiver.line(), {
      done: true,
      count: texts.length,
    });
  },
);
