import assert from "node:assert/strict";
import { parseGroup } from "../../lib/net/address.ts";
import { MemoryNetwork } from "../../lib/net/memory_net.ts";
import { withFaults } from "../../lib/net/fault.ts";
import type { DatagramEndpoint } from "../../lib/net/socket.ts";
import { GuardedEndpoint } from "../../lib/security/guard.ts";
import { emptyDrops } from "../../lib/reliable/stats.ts";
import { receiveBulletins } from "../../lib/receiver.ts";
import { sendReliable } from "../../lib/reliable/sender.ts";
import {
  type BridgeEvent,
  type BridgeStats,
  peekSealed,
  Relay,
} from "../../lib/bridge/relay.ts";
import { decodeFrame, encodeFrame, type Frame } from "../../lib/wire/frame.ts";
import type { PipeDatagram, PipeSource } from "../../lib/bridge/pipe.ts";
import { datagramKey } from "../../lib/bridge/downstream.ts";
import { delay, until } from "../_wait.ts";
import type { SenderReport } from "../../lib/reliable/stats.ts";
import { groupKey, signingKey } from "../_fakes.ts";
import type { GroupKey, SigningKey } from "../../lib/security/keys.ts";

const NEAR = "239.42.10.1";
const FAR = "239.42.10.2";
const PORT = 17950;
const encoder = new TextEncoder();

interface Keys {
  key: GroupKey;
  signing: SigningKey;
}

/**
 * A sender on the near group, a bridge from it to the far group, a
 * receiver on the far group; seeded loss on the bridge's upstream socket
 * and on the receiver's.
 */
async function session(
  count: number,
  options: { loss: number; keys?: Keys },
): Promise<
  {
    numbers: number[];
    payloads: string[];
    report: SenderReport;
    stats: BridgeStats;
    events: BridgeEvent[];
  }
> {
  const network = new MemoryNetwork();
  const keys = options.keys;
  function guard(
    endpoint: DatagramEndpoint,
    extra: { keepSealed?: boolean; sign?: boolean; trust?: boolean } = {},
  ): DatagramEndpoint {
    if (!keys) return endpoint;
    return new GuardedEndpoint(endpoint, {
      key: keys.key,
      dropped: emptyDrops(),
      ...(extra.keepSealed ? { keepSealed: true } : {}),
      ...(extra.sign ? { encrypt: true, signingKey: keys.signing } : {}),
      ...(extra.trust ? { trust: [keys.signing.publicKey] } : {}),
    });
  }
  // The bridge.
  const up = network.open({ address: NEAR, port: PORT });
  up.join(NEAR);
  const upRaw = withFaults(up, { seed: 7, loss: options.loss });
  const down = network.open({ address: "127.0.0.2" });
  const events: BridgeEvent[] = [];
  let stats: BridgeStats | undefined;
  const relay = new Relay({
    name: "bridge-1",
    upstream: {
      kind: "multicast",
      endpoint: guard(upRaw, { keepSealed: true }),
      raw: upRaw,
    },
    downstream: {
      kind: "multicast",
      endpoint: guard(down, { keepSealed: true }),
      raw: down,
      to: { address: FAR, port: PORT },
    },
    legs: { from: "near", to: "far" },
    keyed: keys !== undefined,
    onEvent(event) {
      if (event.type === "bridge-stopped") stats = event.stats;
      else events.push(event);
    },
    random: () => 0.5,
  });
  const stop = new AbortController();
  const running = relay.run(stop.signal);
  // The far receiver.
  const far = network.open({ address: FAR, port: PORT });
  far.join(FAR);
  const numbers: number[] = [];
  const payloads: string[] = [];
  const receiving = receiveBulletins(
    guard(withFaults(far, { seed: 11, loss: options.loss }), { trust: true }),
    {
      group: parseGroup(FAR),
      port: PORT,
      ack: null,
      count,
      protocol: { name: "desk" },
      onEvent(event) {
        if (event.type === "bulletin") {
          numbers.push(event.number);
          payloads.push(new TextDecoder().decode(event.payload));
        }
      },
    },
  );
  // The sender.
  const sender = network.open({ address: "127.0.0.1" });
  async function* bulletins() {
    for (let n = 1; n <= count; n++) {
      yield encoder.encode(`bulletin ${n} ${"x".repeat(n % 300)}`);
    }
  }
  const report = await sendReliable(
    guard(sender, { sign: true }),
    bulletins(),
    {
      group: parseGroup(NEAR),
      port: PORT,
      receivers: ["bridge-1", "desk via bridge-1"],
      deadlineMs: 20_000,
      onEvent: () => {},
    },
  );
  await receiving;
  stop.abort();
  await running;
  network.close();
  assert.ok(stats);
  return { numbers, payloads, report, stats, events };
}

function assertSession(
  result: Awaited<ReturnType<typeof session>>,
  count: number,
): void {
  assert.deepEqual(
    result.numbers,
    Array.from({ length: count }, (_, k) => k + 1),
  );
  result.payloads.forEach((payload, k) => {
    assert.equal(payload, `bulletin ${k + 1} ${"x".repeat((k + 1) % 300)}`);
  });
  assert.equal(
    result.report.reason,
    "complete",
    JSON.stringify(result.report),
  );
  assert.deepEqual(
    result.report.receivers.map((r) => [r.name, r.status]),
    [["bridge-1", "complete"], ["desk via bridge-1", "complete"]],
  );
}

Deno.test("relay: 1,000 bulletins through a bridge with 10% loss on both segments", async () => {
  const result = await session(1000, { loss: 0.1 });
  assertSession(result, 1000);
  assert.ok(result.stats.nacks > 0, "the bridge asked the sender for repairs");
  assert.ok(result.stats.repaired > 0, "the bridge repaired the far receiver");
  assert.deepEqual(result.events.slice(0, 3).map((e) => e.type), [
    "bridge-start",
    "bridge-session",
    "far-receiver",
  ]);
});

Deno.test("relay: keyed, encrypted and signed frames cross sealed, with loss", async () => {
  const keys = { key: groupKey(), signing: await signingKey() };
  const result = await session(300, { loss: 0.05, keys });
  assertSession(result, 300);
  assert.equal(result.stats.dropped.auth, 0);
});

Deno.test("relay: peekSealed reads a sealed frame's header", () => {
  const gone = encodeFrame({
    type: "gone",
    session: "0123456789abcdef",
    seq: 3,
    ranges: [{ first: 1, last: 2 }],
  });
  // As a guard seals it: a 24-byte trailer named in byte 7.
  const sealed = new Uint8Array(gone.length + 24);
  sealed.set(gone);
  sealed[7] = 24;
  const head = peekSealed(sealed);
  assert.equal(head?.type, 7);
  assert.equal(head?.session, "0123456789abcdef");
  assert.equal(head?.seq, 3);
  assert.deepEqual(head?.frame, {
    type: "gone",
    session: "0123456789abcdef",
    seq: 3,
    ranges: [{ first: 1, last: 2 }],
  });
  assert.equal(peekSealed(encoder.encode("very important data")), undefined);
});

/** A pipe source fed by the test, keeping what the relay reports back. */
class FakeSource {
  readonly name = "fake://source";
  readonly reports: Frame[] = [];
  readonly done: PipeDatagram[] = [];
  #queue: PipeDatagram[] = [];
  #wake: (() => void) | undefined;
  #closed = false;

  push(bytes: Uint8Array): void {
    this.#queue.push({ id: datagramKey(bytes), bytes, hops: 8 });
    this.#wake?.();
  }

  async next(): Promise<PipeDatagram | undefined> {
    for (;;) {
      const next = this.#queue.shift();
      if (next) return next;
      if (this.#closed) return undefined;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  markDone(datagram: PipeDatagram): Promise<void> {
    this.done.push(datagram);
    return Promise.resolve();
  }

  report(frame: Uint8Array): void {
    const decoded = decodeFrame(frame);
    if (decoded.kind === "frame") this.reports.push(decoded.frame);
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    return Promise.resolve();
  }
}

/** Options of {@linkcode farReceiverNack}. */
interface FarNackOptions {
  /** The session the NACK answers. */
  session: string;
  /** The pipe source the relay reports through. */
  source: FakeSource;
  /** What the far receiver misses. */
  range: { first: number; last: number };
}

/**
 * A far receiver (127.0.0.3) NACKs `range` to the relay's downstream
 * endpoint; resolves once the relay reported a NACK through the pipe.
 */
async function farReceiverNack(
  network: MemoryNetwork,
  down: DatagramEndpoint,
  options: FarNackOptions,
): Promise<DatagramEndpoint> {
  const receiver = network.open({ address: "127.0.0.3" });
  await receiver.send(
    encodeFrame({
      type: "nack",
      session: options.session,
      seq: 0,
      name: "desk",
      ranges: [options.range],
    }),
    down.local,
  );
  await until(
    () => options.source.reports.some((f) => f.type === "nack"),
    2_000,
    "a NACK reported",
  );
  return receiver;
}

Deno.test("relay: behind a pipe, what a far receiver misses and the bridge never held is asked for through the pipe", async () => {
  const network = new MemoryNetwork();
  const source = new FakeSource();
  const pipe: PipeSource = {
    name: source.name,
    next: () => source.next(),
    done: (d) => source.markDone(d),
    report: (f) => source.report(f),
    [Symbol.asyncDispose]: () => source[Symbol.asyncDispose](),
  };
  const down = network.open({ address: "127.0.0.2" });
  const events: BridgeEvent[] = [];
  const relay = new Relay({
    name: "far",
    upstream: { kind: "pipe", pipe },
    downstream: {
      kind: "multicast",
      endpoint: down,
      raw: down,
      to: { address: FAR, port: PORT },
    },
    legs: { from: "fake://source", to: "far" },
    onEvent: (event) => events.push(event),
  });
  const stop = new AbortController();
  const running = relay.run(stop.signal);
  const session = "0123456789abcdef";
  // The sender's heartbeat says it sent 1-5; this (restarted) bridge holds
  // none of them.
  source.push(encodeFrame({
    type: "heartbeat",
    session,
    seq: 5,
    final: false,
    timestamp: 1,
    low: 1,
  }));
  await until(() => source.done.length === 1, 2_000, "heartbeat handled");
  const receiver = await farReceiverNack(network, down, {
    session,
    source,
    range: { first: 1, last: 5 },
  });
  const hello = source.reports.find((f) => f.type === "hello");
  assert.deepEqual(hello, {
    type: "hello",
    session,
    seq: 0,
    name: "desk via far",
    fromStart: false,
  });
  assert.deepEqual(source.reports.find((f) => f.type === "nack"), {
    type: "nack",
    session,
    seq: 0,
    name: "far",
    ranges: [{ first: 1, last: 5 }],
  });
  stop.abort();
  await running;
  receiver.close();
  network.close();
  assert.ok(events.some((e) => e.type === "far-receiver"));
});

Deno.test("relay: behind a pipe, a keyed copy held too long is asked for through the pipe and its repair sent on", async () => {
  const network = new MemoryNetwork();
  const source = new FakeSource();
  const pipe: PipeSource = {
    name: source.name,
    next: () => source.next(),
    done: (d) => source.markDone(d),
    report: (f) => source.report(f),
    [Symbol.asyncDispose]: () => source[Symbol.asyncDispose](),
  };
  const down = network.open({ address: "127.0.0.2" });
  const listener = network.open({ address: FAR, port: PORT });
  listener.join(FAR);
  const heard: Uint8Array[] = [];
  const listening = (async () => {
    for (;;) {
      const got = await listener.receive();
      if (got === null) return;
      heard.push(got.payload);
    }
  })();
  const relay = new Relay({
    name: "far",
    upstream: { kind: "pipe", pipe },
    downstream: {
      kind: "multicast",
      endpoint: down,
      raw: down,
      to: { address: FAR, port: PORT },
    },
    legs: { from: "fake://source", to: "far" },
    keyed: true,
    onEvent: () => {},
  });
  const stop = new AbortController();
  const running = relay.run(stop.signal);
  const session = "0123456789abcdef";
  const data = (timestamp: number) =>
    encodeFrame({
      type: "data",
      session,
      seq: 1,
      retransmit: timestamp > 1,
      timestamp,
      low: 1,
      records: [],
    });
  source.push(data(1));
  await until(() => heard.length === 1, 2_000, "sent downstream");
  assert.deepEqual(heard[0], data(1));
  // Older than a keyed receiver's replay window accepts: not sent again.
  await delay(1_600);
  const receiver = await farReceiverNack(network, down, {
    session,
    source,
    range: { first: 1, last: 1 },
  });
  assert.deepEqual(source.reports.find((f) => f.type === "nack"), {
    type: "nack",
    session,
    seq: 0,
    name: "far",
    ranges: [{ first: 1, last: 1 }],
  });
  // The sender's repair, through the pipe: sent on, though 1 is held.
  source.push(data(2));
  await until(() => heard.length >= 2, 2_000, "the repair sent downstream");
  assert.deepEqual(heard.slice(1), [data(2)]);
  assert.equal(relay.stats.repaired, 1);
  stop.abort();
  await running;
  receiver.close();
  listener.close();
  await listening;
  network.close();
});
