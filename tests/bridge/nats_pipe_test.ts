/**
 * The NATS pipe against a real `nats-server` (started by the test on
 * 127.0.0.1, a free port; skipped with a printed reason when it is not
 * installed): core NATS and JetStream, order, ids, hops and bytes, the
 * server's deduplication of re-puts, a durable consumer resuming where it
 * stopped, puts that wait for the broker's acknowledgement.
 *
 * @module
 */

import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import {
  openNatsSink,
  openNatsSource,
  reportSubject,
} from "../../lib/bridge/nats_pipe.ts";
import { TunnelAuth } from "../../lib/bridge/tunnel.ts";
import { encodeFrame } from "../../lib/wire/frame.ts";
import type { PipeDatagram, PipeSource } from "../../lib/bridge/pipe.ts";
import { NetworkError, UsageError } from "../../lib/errors.ts";
import { type NatsServer, natsUnavailable, startNats } from "../_nats.ts";
import { bounded, delay, until } from "../_wait.ts";

const skip = natsUnavailable();
if (skip !== undefined) console.log(`skipped: ${skip}`);

/** Registers a test that needs `nats-server`; ignored without it. */
function natsTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: skip !== undefined, fn });
}

const SESSION = "0123456789abcdef";

/** Datagram `seq`: a DATA-like id, hops 3, bytes that differ per datagram. */
function datagram(seq: number, size = 40): PipeDatagram {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (seq * 31 + i * 7) & 0xff;
  return { id: `${SESSION}:${seq}`, bytes, hops: 3 };
}

/** The next datagram, failing after 5 s. */
function nextOf(source: PipeSource): Promise<PipeDatagram | undefined> {
  return bounded(5_000, source.next(), () => {});
}

/** What `next()` gives within `ms`: a datagram, `undefined`, or "nothing". */
async function nothingWithin(
  source: PipeSource,
  ms: number,
): Promise<PipeDatagram | undefined | "nothing"> {
  const next = source.next();
  const result = await Promise.race([
    next,
    delay(ms).then(() => "nothing" as const),
  ]);
  if (result === "nothing") {
    // Leave nothing pending: closing the source ends the wait.
    await source[Symbol.asyncDispose]();
    assert.equal(await next, undefined);
  }
  return result;
}

/** Reads `count` datagrams, marking each done. */
async function readDone(
  source: PipeSource,
  count: number,
): Promise<PipeDatagram[]> {
  const got: PipeDatagram[] = [];
  for (let i = 0; i < count; i++) {
    const d = await nextOf(source);
    assert.ok(d !== undefined, `the source ended after ${i} datagrams`);
    await source.done(d);
    got.push(d);
  }
  return got;
}

/** How many messages the stream holds. */
async function streamMessages(
  server: NatsServer,
  stream: string,
): Promise<number> {
  const nc = await connect({ servers: `127.0.0.1:${server.port}` });
  try {
    const jsm = await jetstreamManager(nc);
    return (await jsm.streams.info(stream)).state.messages;
  } finally {
    await nc.close();
  }
}

Deno.test("openNatsSink: a broker that is not there is a NetworkError", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await assert.rejects(
    openNatsSink(`nats://127.0.0.1:${port}/a`, { timeoutMs: 2_000 }),
    (error: unknown) =>
      error instanceof NetworkError &&
      error.message.startsWith(
        `cannot reach the broker at nats://127.0.0.1:${port}: `,
      ),
  );
});

natsTest(
  "core NATS: datagrams arrive in order, ids, hops and bytes intact",
  async () => {
    await using server = await startNats();
    const url = `${server.url}/mcast.core`;
    await using source = await openNatsSource(url);
    await using sink = await openNatsSink(url);
    assert.equal(sink.name, url);
    const sent = [
      ...Array.from({ length: 200 }, (_, i) => datagram(i)),
      { id: "heartbeat-1", bytes: new Uint8Array(0), hops: 0 },
      datagram(200, 65_000),
    ];
    for (const d of sent) await sink.put(d);
    const got = await readDone(source, sent.length);
    assert.deepEqual(got, sent);
  },
);

natsTest(
  "JetStream: 1,000 datagrams in order, bytes identical, each once",
  async () => {
    await using server = await startNats({ jetstream: true });
    const url = `${server.url}/mcast.js?stream=MCAST`;
    {
      await using sink = await openNatsSink(url);
      const sent = Array.from({ length: 1_000 }, (_, i) => datagram(i, 1_200));
      // Puts in flight together, as a relay may have them: order is kept.
      await Promise.all(sent.map((d) => sink.put(d)));
      await using source = await openNatsSource(url, { durable: "far" });
      assert.equal(source.name, `${url}&durable=far`);
      const got = await readDone(source, 1_000);
      assert.deepEqual(got, sent);
      assert.equal(await nothingWithin(source, 300), "nothing");
    }
    assert.equal(await streamMessages(server, "MCAST"), 1_000);
  },
);

natsTest(
  "JetStream: a re-put with the same id is dropped by the server",
  async () => {
    await using server = await startNats({ jetstream: true });
    const url = `${server.url}/mcast.dup?stream=DUP`;
    {
      await using sink = await openNatsSink(url);
      for (const seq of [1, 2, 3]) await sink.put(datagram(seq));
    }
    {
      // A restarted bridge publishes 2 and 3 again, then 4.
      await using sink = await openNatsSink(url);
      for (const seq of [2, 3, 4]) await sink.put(datagram(seq));
    }
    assert.equal(await streamMessages(server, "DUP"), 4);
    await using source = await openNatsSource(url, { durable: "far" });
    const got = await readDone(source, 4);
    assert.deepEqual(
      got.map((d) => d.id),
      [1, 2, 3, 4].map((s) => `${SESSION}:${s}`),
    );
    assert.equal(await nothingWithin(source, 300), "nothing");
  },
);

natsTest(
  "JetStream: a datagram that is not DATA crosses each time it is put",
  async () => {
    await using server = await startNats({ jetstream: true });
    const url = `${server.url}/mcast.plain?stream=PLAIN`;
    await using sink = await openNatsSink(url);
    // The exercise's sender, run twice: the same bytes, the same id.
    const plain = {
      id: "plain:19:0123456789abcdef",
      bytes: new TextEncoder().encode("very important data"),
      hops: 8,
    };
    await sink.put(plain);
    await sink.put(plain);
    assert.equal(await streamMessages(server, "PLAIN"), 2);
    await using source = await openNatsSource(url, { durable: "far" });
    assert.deepEqual(await readDone(source, 2), [plain, plain]);
  },
);

natsTest(
  "JetStream: the signed re-send of a DATA datagram is not taken for a copy",
  async () => {
    await using server = await startNats({ jetstream: true });
    const url = `${server.url}/mcast.signed?stream=SIGNED`;
    await using sink = await openNatsSink(url);
    // A DATA frame's header: magic, version, type 1, flags, trailer size.
    const frame = (flags: number): PipeDatagram => {
      const bytes = new Uint8Array(40);
      bytes.set([0x4d, 0x43, 0x53, 0x54, 1, 1, flags, 0]);
      return { id: `${SESSION}:5`, bytes, hops: 3 };
    };
    await sink.put(frame(0x10)); // chained, unsigned
    await sink.put(frame(0x30)); // chained and signed: the pause's re-send
    await sink.put(frame(0x30)); // the same again: a copy
    await sink.put(frame(0x10));
    assert.equal(await streamMessages(server, "SIGNED"), 2);
  },
);

natsTest(
  "JetStream: a durable consumer resumes at its first datagram not done (no replay)",
  async () => {
    await using server = await startNats({ jetstream: true });
    const url = `${server.url}/mcast.resume?stream=RESUME`;
    await using sink = await openNatsSink(url);
    for (let seq = 0; seq < 10; seq++) await sink.put(datagram(seq));
    {
      await using source = await openNatsSource(url, {
        durable: "far",
        replay: 0,
      });
      assert.deepEqual(
        (await readDone(source, 4)).map((d) => d.id),
        [0, 1, 2, 3].map((s) => `${SESSION}:${s}`),
      );
      // Received, never done: the far bridge died with it.
      assert.equal((await nextOf(source))?.id, `${SESSION}:4`);
    }
    // Published while no far bridge ran.
    for (let seq = 10; seq < 15; seq++) await sink.put(datagram(seq));
    {
      // At once (not after the server's 60 s acknowledgement wait): 4 first.
      await using source = await openNatsSource(url, {
        durable: "far",
        replay: 0,
      });
      const got = await readDone(source, 11);
      assert.deepEqual(
        got,
        Array.from({ length: 11 }, (_, i) => datagram(i + 4)),
      );
      assert.equal(await nothingWithin(source, 300), "nothing");
    }
    {
      // Everything was done: a third run gets nothing.
      await using source = await openNatsSource(url, {
        durable: "far",
        replay: 0,
      });
      assert.equal(await nothingWithin(source, 300), "nothing");
    }
    {
      // Another far site (its own consumer) gets everything from the start.
      await using source = await openNatsSource(url, { durable: "other" });
      assert.deepEqual(
        await readDone(source, 15),
        Array.from({ length: 15 }, (_, i) => datagram(i)),
      );
    }
  },
);

natsTest(
  "JetStream: a restarted source first reads its last datagrams again (replay)",
  async () => {
    await using server = await startNats({ jetstream: true });
    const url = `${server.url}/mcast.replay?stream=REPLAY`;
    await using sink = await openNatsSink(url);
    for (let seq = 0; seq < 10; seq++) await sink.put(datagram(seq));
    {
      await using source = await openNatsSource(url, { durable: "far" });
      await readDone(source, 10);
    }
    await sink.put(datagram(10));
    {
      // The last three done, again (to hold for repairs), then the new one.
      await using source = await openNatsSource(url, {
        durable: "far",
        replay: 3,
      });
      assert.deepEqual(
        await readDone(source, 4),
        [7, 8, 9, 10].map((s) => datagram(s)),
      );
      assert.equal(await nothingWithin(source, 300), "nothing");
    }
    {
      // The default replays up to 1,024: here all 11.
      await using source = await openNatsSource(url, { durable: "far" });
      assert.deepEqual(
        await readDone(source, 11),
        Array.from({ length: 11 }, (_, i) => datagram(i)),
      );
      assert.equal(await nothingWithin(source, 300), "nothing");
    }
  },
);

natsTest(
  "JetStream: a restarted source replays only what was stored within replayMs",
  async () => {
    await using server = await startNats({ jetstream: true });
    const url = `${server.url}/mcast.recent?stream=RECENT`;
    await using sink = await openNatsSink(url);
    for (let seq = 0; seq < 5; seq++) await sink.put(datagram(seq));
    await delay(2_000);
    for (let seq = 5; seq < 10; seq++) await sink.put(datagram(seq));
    {
      await using source = await openNatsSource(url, { durable: "far" });
      await readDone(source, 10);
    }
    // 0-4 are two seconds old: past the 1.5 s, not read again.
    await using source = await openNatsSource(url, {
      durable: "far",
      replayMs: 1_500,
    });
    assert.deepEqual(
      await readDone(source, 5),
      [5, 6, 7, 8, 9].map((s) => datagram(s)),
    );
    assert.equal(await nothingWithin(source, 300), "nothing");
  },
);

natsTest("JetStream: put resolves only on the acknowledgement", async () => {
  await using server = await startNats({ jetstream: true });
  const url = `${server.url}/mcast.ack?stream=ACK`;
  await using sink = await openNatsSink(url, { timeoutMs: 3_000 });
  await sink.put(datagram(0));
  await server.pause();
  let settled = "no";
  const put = sink.put(datagram(1)).then(
    () => settled = "resolved",
    (error) => settled = `rejected: ${error}`,
  );
  try {
    await delay(500);
    assert.equal(settled, "no", "put settled while the broker was frozen");
  } finally {
    server.resume();
  }
  await put;
  assert.equal(settled, "resolved");
  assert.equal(await streamMessages(server, "ACK"), 2);
});

natsTest(
  "JetStream: with retryMs 0, put rejects within its timeout while the broker is down, and works once it is back",
  async () => {
    await using server = await startNats({ jetstream: true });
    const url = `${server.url}/mcast.down?stream=DOWN`;
    await using sink = await openNatsSink(url, { timeoutMs: 700, retryMs: 0 });
    await sink.put(datagram(0));
    await server.stop();
    const started = performance.now();
    await assert.rejects(
      sink.put(datagram(1)),
      (error: unknown) =>
        error instanceof NetworkError &&
        error.message.startsWith(`${url}: put ${SESSION}:1: `),
    );
    const took = performance.now() - started;
    assert.ok(took < 2_000, `put took ${took} ms to fail`);
    await server.restart();
    // The client reconnects on its own; the retried put is stored once.
    await bounded(10_000, retry(() => sink.put(datagram(1))), () => {});
    await sink.put(datagram(2));
    await using source = await openNatsSource(url, { durable: "far" });
    assert.deepEqual(
      await readDone(source, 3),
      [0, 1, 2].map((s) => datagram(s)),
    );
    assert.equal(await nothingWithin(source, 300), "nothing");
  },
);

natsTest(
  "JetStream: put waits while the broker is down and resolves once it is back, stored once",
  async () => {
    await using server = await startNats({ jetstream: true });
    const url = `${server.url}/mcast.wait?stream=WAIT`;
    await using sink = await openNatsSink(url, { timeoutMs: 500 });
    await sink.put(datagram(0));
    await server.stop();
    let settled = "no";
    const put = sink.put(datagram(1)).then(
      () => settled = "resolved",
      (error) => settled = `rejected: ${error}`,
    );
    // Several tries (500 ms each) go unanswered.
    await delay(1_500);
    assert.equal(settled, "no");
    await server.restart();
    await bounded(10_000, put, () => {});
    assert.equal(settled, "resolved");
    assert.equal(await streamMessages(server, "WAIT"), 2);
    await using source = await openNatsSource(url, { durable: "far" });
    assert.deepEqual(await readDone(source, 2), [datagram(0), datagram(1)]);
    assert.equal(await nothingWithin(source, 300), "nothing");
  },
);

natsTest(
  "JetStream: closing the sink ends a put that waits for the broker",
  async () => {
    await using server = await startNats({ jetstream: true });
    const url = `${server.url}/mcast.close?stream=CLOSE`;
    const sink = await openNatsSink(url, { timeoutMs: 300 });
    await sink.put(datagram(0));
    await server.stop();
    const put = sink.put(datagram(1));
    await delay(500);
    const started = performance.now();
    await sink[Symbol.asyncDispose]();
    await assert.rejects(
      bounded(2_000, put, () => {}),
      (error: unknown) => error instanceof NetworkError,
    );
    assert.ok(performance.now() - started < 1_000);
  },
);

/** Calls `fn` until it resolves (the broker reconnects meanwhile). */
async function retry(fn: () => Promise<void>): Promise<void> {
  for (let attempt = 0;; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= 20) throw error;
      await delay(100);
    }
  }
}

natsTest(
  "JetStream: a stream that does not take the subject is a UsageError",
  async () => {
    await using server = await startNats({ jetstream: true });
    {
      await using _sink = await openNatsSink(`${server.url}/a.b?stream=S`);
    }
    await assert.rejects(
      openNatsSink(`${server.url}/c.d?stream=S`),
      (error: unknown) =>
        error instanceof UsageError &&
        error.message ===
          `stream S on ${server.url} does not take subject c.d (it takes a.b)`,
    );
  },
);

natsTest("a datagram without the bridge's headers is skipped", async () => {
  await using server = await startNats({ jetstream: true });
  const url = `${server.url}/mcast.foreign?stream=FOREIGN`;
  await using sink = await openNatsSink(url);
  const nc = await connect({ servers: `127.0.0.1:${server.port}` });
  try {
    const js = (await jetstreamManager(nc)).jetstream();
    await js.publish("mcast.foreign", new Uint8Array([1, 2, 3]));
  } finally {
    await nc.close();
  }
  await sink.put(datagram(7));
  await using source = await openNatsSource(url, { durable: "far" });
  assert.deepEqual(await readDone(source, 1), [datagram(7)]);
});

natsTest(
  "reports: a far bridge's sealed report reaches the near bridge; a forged one does not",
  async () => {
    await using server = await startNats();
    const url = `${server.url}/mcast.report`;
    const auth = new TunnelAuth({ bytes: new Uint8Array(32).fill(7) });
    await using sink = await openNatsSink(url, { reportAuth: auth });
    await using source = await openNatsSource(url, { reportAuth: auth });
    const got: Uint8Array[] = [];
    sink.onReport = (frame) => got.push(frame);
    // A core put waits for the server: the sink's subscription is in place.
    await sink.put(datagram(0));
    const hello = (name: string) =>
      encodeFrame({
        type: "hello",
        session: SESSION,
        seq: 0,
        name,
        fromStart: false,
      });
    // Someone who may publish on the broker, without the group key.
    const nc = await connect({ servers: `127.0.0.1:${server.port}` });
    try {
      nc.publish(reportSubject("mcast.report"), hello("forged via far"));
      await nc.flush();
    } finally {
      await nc.close();
    }
    source.report!(hello("desk-1 via far"));
    source.report!(hello("desk-2 via far"));
    await until(() => got.length >= 2, 5_000, "two reports");
    assert.deepEqual(got, [hello("desk-1 via far"), hello("desk-2 via far")]);
  },
);

natsTest(
  "reports: without an authenticator they travel as they are",
  async () => {
    await using server = await startNats({ jetstream: true });
    const url = `${server.url}/mcast.plainreport?stream=PR`;
    await using sink = await openNatsSink(url);
    await using source = await openNatsSource(url, { durable: "far" });
    const got: Uint8Array[] = [];
    sink.onReport = (frame) => got.push(frame);
    await sink.put(datagram(0));
    const frame = encodeFrame({
      type: "ack",
      session: SESSION,
      seq: 1,
      name: "desk-1 via far",
      ranges: [],
    });
    source.report!(frame);
    await until(() => got.length >= 1, 5_000, "a report");
    assert.deepEqual(got, [frame]);
    // Reports are not datagrams: the stream holds the one put only.
    assert.equal(await streamMessages(server, "PR"), 1);
  },
);
