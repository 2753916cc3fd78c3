/**
 * `mcast-bridge` through a NATS broker, end to end, with the real tools:
 * two sites with no multicast path between them (`_sites.ts`), a JetStream
 * broker in a third namespace routed to both. Site A runs `mcast-send
 * --reliable` and the near bridge (`--to nats://…`), site B the far bridge
 * (`--from nats://…`) and two receivers. Runs only as root with `ip netns`
 * and `nats-server`; otherwise each test is ignored with a printed reason.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { inNs, listNamespaces, netnsUnavailable } from "../_netns.ts";
import { type NatsServer, natsUnavailable, startNats } from "../_nats.ts";
import {
  ROOT,
  type RunningProcess,
  spawnTool,
  testPort,
  withTempDir,
} from "../_tools.ts";
import { delay } from "../_wait.ts";
import { at } from "../_reliable.ts";
import { createSites, type Sites } from "./_sites.ts";

const skip = await netnsUnavailable() ?? natsUnavailable();
if (skip !== undefined) console.log(`skipped: ${skip}`);

/** Bulletins of one run. */
const COUNT = 1_000;

/** The group, on each site's own loopback. */
const GROUP = "239.255.77.31";

/** The feed: line `i` is bulletin `i`. */
function feed(tag: string): string[] {
  return Array.from(
    { length: COUNT },
    (_, i) => `${tag} bulletin ${i + 1} of ${COUNT}`,
  );
}

/** Runs `body` with the sites and a JetStream broker; checks cleanup. */
async function withBroker(
  body: (sites: Sites, server: NatsServer, dir: string) => Promise<void>,
): Promise<void> {
  let namespaces: string[] = [];
  {
    await using sites = await createSites();
    namespaces = sites.namespaces;
    await using server = await startNats({
      jetstream: true,
      ...inNs(sites.broker),
      host: sites.brokerAddress,
    });
    await withTempDir("mcast-nats-sites-", (dir) => body(sites, server, dir));
  }
  const left = (await listNamespaces()).filter((n) => namespaces.includes(n));
  assert.deepEqual(left, [], "the test's namespaces were not deleted");
}

/** What the receivers showed: bulletin numbers and texts, in order. */
function bulletins(stdout: string): { number: number; text: string }[] {
  const shown: { number: number; text: string }[] = [];
  for (const line of stdout.split("\n")) {
    const match = /^received bulletin ([0-9]+) \([0-9]+ bytes\) from .* : (.*)$/
      .exec(line);
    if (match) shown.push({ number: Number(match[1]), text: match[2]! });
  }
  return shown;
}

/** Asserts that a receiver showed the feed, each bulletin once, in order. */
function assertFeed(receiver: string, stdout: string, lines: string[]): void {
  const shown = bulletins(stdout);
  assert.equal(
    shown.length,
    lines.length,
    `${receiver} showed ${shown.length} bulletins:\n${stdout.slice(-2000)}`,
  );
  assert.deepEqual(
    shown,
    lines.map((text, i) => ({ number: i + 1, text })),
    `${receiver} showed the feed out of order or changed`,
  );
}

/** The payloads the broker's stream holds (read inside its namespace). */
async function storedPayloads(
  sites: Sites,
  server: NatsServer,
  stream: string,
): Promise<Uint8Array[]> {
  const output = await new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      sites.broker,
      Deno.execPath(),
      "run",
      "--allow-net",
      "--config",
      `${ROOT}deno.json`,
      `${ROOT}tests/bridge/_nats_dump.ts`,
      server.url,
      stream,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const decoder = new TextDecoder();
  assert.ok(output.success, decoder.decode(output.stderr));
  return decoder.decode(output.stdout).split("\n").filter((l) => l !== "")
    .map((line) => new Uint8Array(Buffer.from(line, "base64")));
}

/** Whether `needle` occurs in `haystack`. */
function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack).includes(Buffer.from(needle));
}

/** Starts a bridge and waits for its start line. */
async function startBridge(
  ns: string,
  args: string[],
  name: string,
): Promise<RunningProcess> {
  const bridge = spawnTool("bridge", [...args, "--name", name], inNs(ns));
  try {
    await bridge.waitForOutput(`bridge ${name}: `, { timeoutMs: 20_000 });
  } catch (error) {
    await bridge[Symbol.asyncDispose]();
    throw error;
  }
  return bridge;
}

interface Run {
  /** Extra options of every tool (keys). */
  keyed: string[];
  /** Extra options of the sender. */
  sender: string[];
  /** Extra options of the receivers. */
  receivers?: string[];
  /** The sender's `--receivers` (default `near`). */
  expect?: string;
  /**
   * Kill this bridge with SIGKILL mid-stream and restart it (the far one
   * once the sender is done: it catches up from the stream).
   */
  kill?: "near" | "far" | "broker";
  /** Core NATS instead of the JetStream stream `NEWS`. */
  core?: boolean;
  /** Bulletin text tag. */
  tag: string;
}

/**
 * One run: far bridge and two receivers in B, near bridge and a reliable
 * sender of {@linkcode COUNT} bulletins in A; returns when every receiver
 * has them all (asserted).
 *
 * @returns The sender's standard output.
 */
async function relayFeed(
  sites: Sites,
  server: NatsServer,
  dir: string,
  run: Run,
): Promise<string> {
  const port = testPort();
  const local = [...at(GROUP, port), "-i", "127.0.0.1"];
  const leg = `${GROUP}:${port}@127.0.0.1`;
  const url = run.core
    ? `${server.url}/mcast.core`
    : `${server.url}/mcast.news?stream=NEWS`;
  const farArgs = [
    "--from",
    url,
    "--to",
    leg,
    "--state",
    `${dir}/far.state`,
    ...run.keyed,
  ];
  let far = await startBridge(sites.b, farArgs, "far");
  const receivers: RunningProcess[] = [];
  try {
    for (const name of ["desk-1", "desk-2"]) {
      const receiver = spawnTool("recv", [
        ...local,
        "--name",
        name,
        "--count",
        `${COUNT}`,
        "--state",
        `${dir}/${name}.state`,
        ...run.keyed,
        ...run.receivers ?? [],
      ], inNs(sites.b));
      receivers.push(receiver);
      await receiver.waitForOutput("waiting to receive message");
    }
    const nearArgs = [
      "--from",
      leg,
      "--to",
      url,
      "--state",
      `${dir}/near.state`,
      ...run.keyed,
    ];
    let near = await startBridge(sites.a, nearArgs, "near");
    try {
      const lines = feed(run.tag);
      await using sender = spawnTool("send", [
        ...local,
        "--reliable",
        "--lines",
        "--receivers",
        run.expect ?? "near",
        "--deadline",
        "30",
        ...run.sender,
        ...run.keyed,
      ], { ...inNs(sites.a), stdin: lines.join("\n") + "\n" });
      if (run.kill !== undefined) {
        // Mid-stream: the far site has shown some, the sender is not done.
        await receivers[0]!.waitForOutput(`bulletin 200 of ${COUNT}`, {
          timeoutMs: 30_000,
        });
      }
      if (run.kill === "far") {
        far.kill("SIGKILL");
        assert.equal((await far.finish()).signal, "SIGKILL");
      }
      if (run.kill === "broker") {
        // Two seconds without a broker: the near bridge's puts wait.
        await server.stop();
        await delay(2_000);
        assert.ok(sender.running, "the sender ended without the broker");
        await server.restart();
      }
      if (run.kill === "near") {
        near.kill("SIGKILL");
        const ended = await near.finish();
        assert.equal(ended.signal, "SIGKILL");
        assert.ok(sender.running, "the sender ended before the kill");
        near = await startBridge(sites.a, nearArgs, "near");
        // It resumes where its state file left off (it heard more).
        await near.waitForLine(/^resumed session [0-9a-f]{16} /, {
          timeoutMs: 10_000,
        });
      }
      const sent = await sender.finish(60_000);
      assert.equal(sent.code, 0, `sender:\n${sent.stdout}\n${sent.stderr}`);
      assert.match(sent.stdout, /delivered to every receiver/);
      if (run.kill === "far") {
        // Everything is in the stream; the far site has not seen it all.
        for (const receiver of receivers) {
          assert.ok(receiver.running, "a far receiver got everything");
        }
        far = await startBridge(sites.b, farArgs, "far");
      }
      for (const [i, receiver] of receivers.entries()) {
        assert.ok(
          await receiver.waitForEnd(30_000),
          `desk-${i + 1} did not get ${COUNT}:\n${
            receiver.stdout.split("\n").filter((l) =>
              !l.startsWith("received bulletin")
            ).join("\n")
          }\n${receiver.stderr}\nfar bridge:\n${far.stdout}\n${far.stderr}`,
        );
        const done = await receiver.finish();
        assert.equal(done.code, 0, done.stderr);
        assertFeed(`desk-${i + 1}`, done.stdout, lines);
      }
      return sent.stdout;
    } finally {
      await near[Symbol.asyncDispose]();
    }
  } finally {
    for (const receiver of receivers) await receiver[Symbol.asyncDispose]();
    await far[Symbol.asyncDispose]();
  }
}

Deno.test({
  name:
    "bridge through JetStream: 1,000 bulletins reach two far receivers once and in order; the near bridge is killed mid-stream and restarted",
  ignore: skip !== undefined,
  fn: () =>
    withBroker(async (sites, server, dir) => {
      const sent = await relayFeed(sites, server, dir, {
        keyed: [],
        sender: ["--rate", "400"],
        kill: "near",
        tag: "open",
      });
      // The near bridge missed what was sent while it was down: the
      // sender repaired it, after newer datagrams.
      const retransmitted = Number(/ ([0-9]+) retransmitted,/.exec(sent)?.[1]);
      assert.ok(retransmitted > 0, sent);
      const datagrams = Number(
        / bulletins in ([0-9]+) datagrams,/.exec(sent)?.[1],
      );
      // The stream holds every DATA datagram of the session once: the
      // restarted bridge's re-puts were dropped by the server.
      const stored = await storedPayloads(sites, server, "NEWS");
      const seqs = stored.filter((p) => p[0] === 0x4d && p[5] === 1).map((p) =>
        Number(new DataView(p.buffer, p.byteOffset).getBigUint64(16))
      );
      assert.deepEqual(
        [...seqs].sort((x, y) => x - y),
        Array.from({ length: datagrams }, (_, i) => i + 1),
      );
      // The broker holds the bulletins as the sender sent them (plain
      // here): the search below finds plaintext where there is some.
      const needle = new TextEncoder().encode(`open bulletin 500 of ${COUNT}`);
      assert.ok(stored.some((p) => contains(p, needle)));
      assert.ok(await storeHas(server, needle), "the store on disk has it");
    }),
});

Deno.test({
  name:
    "bridge through JetStream, keyed and encrypted: the broker never holds plaintext",
  ignore: skip !== undefined,
  fn: () =>
    withBroker(async (sites, server, dir) => {
      const key = `${dir}/group.key`;
      const made = await spawnTool("send", ["--gen-key", key]).finish();
      assert.equal(made.code, 0, made.stderr);
      await relayFeed(sites, server, dir, {
        keyed: ["--key-file", key],
        sender: ["--encrypt"],
        tag: "secret",
      });
      const stored = await storedPayloads(sites, server, "NEWS");
      assert.ok(stored.length > 0);
      const encoder = new TextEncoder();
      for (const text of ["secret", "bulletin", "of 1000"]) {
        const needle = encoder.encode(text);
        assert.equal(
          stored.filter((p) => contains(p, needle)).length,
          0,
          `the broker holds "${text}" in plaintext`,
        );
      }
      // Nor does its store on disk.
      assert.equal(
        await storeHas(server, encoder.encode("secret bulletin")),
        false,
      );
    }),
});

Deno.test({
  name:
    "bridge through JetStream, keyed and signed: far receivers that trust the signer get everything",
  ignore: skip !== undefined,
  fn: () =>
    withBroker(async (sites, server, dir) => {
      // The sender signs the last datagram of a run once more when it
      // pauses: that signed re-send has to cross the broker too.
      const key = `${dir}/group.key`;
      const signKey = `${dir}/sign.key`;
      for (const args of [["--gen-key", key], ["--gen-sign-key", signKey]]) {
        const made = await spawnTool("send", args).finish();
        assert.equal(made.code, 0, made.stderr);
      }
      await relayFeed(sites, server, dir, {
        keyed: ["--key-file", key],
        sender: ["--encrypt", "--sign-key", signKey],
        receivers: ["--trust", `${signKey}.pub`],
        tag: "signed",
      });
    }),
});

/** Whether a file of the broker's JetStream store contains `needle`. */
async function storeHas(
  server: NatsServer,
  needle: Uint8Array,
): Promise<boolean> {
  for await (const path of walk(server.storeDir!)) {
    if (contains(await Deno.readFile(path), needle)) return true;
  }
  return false;
}

/** Every file under `dir`. */
async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* walk(path);
    else if (entry.isFile) yield path;
  }
}

Deno.test({
  name:
    "bridge through JetStream: the far bridge killed mid-stream catches up from the stream once restarted, nothing lost or twice",
  ignore: skip !== undefined,
  fn: () =>
    withBroker(async (sites, server, dir) => {
      await relayFeed(sites, server, dir, {
        keyed: [],
        sender: ["--rate", "400"],
        kill: "far",
        tag: "late",
      });
    }),
});

Deno.test({
  name:
    "bridge through core NATS: 1,000 bulletins reach two far receivers once and in order",
  ignore: skip !== undefined,
  fn: () =>
    withBroker(async (sites, server, dir) => {
      await relayFeed(sites, server, dir, {
        keyed: [],
        sender: [],
        core: true,
        tag: "core",
      });
    }),
});

Deno.test({
  name:
    "bridge through JetStream: the broker stopped mid-stream and restarted, nothing lost or twice",
  ignore: skip !== undefined,
  fn: () =>
    withBroker(async (sites, server, dir) => {
      await relayFeed(sites, server, dir, {
        keyed: [],
        sender: ["--rate", "400"],
        kill: "broker",
        tag: "outage",
      });
    }),
});

Deno.test({
  name:
    "bridge through JetStream: the exercise's plain datagram crosses each time it is sent",
  ignore: skip !== undefined,
  fn: () =>
    withBroker(async (sites, server) => {
      const port = testPort();
      const leg = `${GROUP}:${port}@127.0.0.1`;
      const url = `${server.url}/mcast.plain?stream=PLAIN`;
      await using _far = await startBridge(sites.b, [
        "--from",
        url,
        "--to",
        leg,
      ], "far");
      await using receiver = spawnTool("recv", [
        ...at(GROUP, port),
        "--count",
        "2",
      ], inNs(sites.b));
      await receiver.waitForOutput("waiting to receive message");
      await using _near = await startBridge(sites.a, [
        "--from",
        leg,
        "--to",
        url,
      ], "near");
      // More than a second apart: within one, the near bridge takes the
      // same bytes from another source (port) for a loop's echo.
      for (let i = 0; i < 2; i++) {
        const sent = await spawnTool("send", [
          ...at(GROUP, port),
          "--wait",
          "1.2",
        ], inNs(sites.a)).finish();
        assert.equal(sent.code, 0, sent.stderr);
      }
      assert.ok(await receiver.waitForEnd(10_000), receiver.stdout);
      const done = await receiver.finish();
      assert.equal(
        done.stdout.split("\n").filter((l) => / : very important data$/.test(l))
          .length,
        2,
        done.stdout,
      );
    }),
});

Deno.test({
  name:
    "bridge through JetStream, keyed: the far receivers' reports come back through the broker to the sender's report",
  ignore: skip !== undefined,
  fn: () =>
    withBroker(async (sites, server, dir) => {
      const key = `${dir}/group.key`;
      const made = await spawnTool("send", ["--gen-key", key]).finish();
      assert.equal(made.code, 0, made.stderr);
      const sent = await relayFeed(sites, server, dir, {
        keyed: ["--key-file", key],
        sender: ["--encrypt"],
        expect: "near,desk-1 via far,desk-2 via far",
        tag: "reported",
      });
      for (const name of ["near", "desk-1 via far", "desk-2 via far"]) {
        assert.match(
          sent,
          new RegExp(
            `^  ${name} \\(.*\\): complete, has ${COUNT} bulletins$`,
            "m",
          ),
        );
      }
    }),
});
