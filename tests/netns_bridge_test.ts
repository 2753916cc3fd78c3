/**
 * `mcast-bridge` across two segments with no route between them (see
 * `_segments.ts`): host A sends, the bridge host relays, host B receives.
 * Plain and reliable modes, a bridge killed and restarted mid-feed, only
 * the named group, keyed frames crossing sealed, the unicast tunnel
 * between two bridges, and (where the kernel routes multicast) smcroute.
 *
 * Runs only as root with `ip netns`; otherwise each test is skipped with
 * the reason printed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { inNs, ip, netnsUnavailable, tc } from "./_netns.ts";
import { until } from "./_wait.ts";
import { at, TEST_IO } from "./_reliable.ts";
import { createSegments, type Segments } from "./_segments.ts";
import { MESSAGE, WAITING } from "./_exercise.ts";
import {
  type RunningProcess,
  spawnTool,
  testPort,
  withTempDir,
} from "./_tools.ts";
import { multicastRoutingUnavailable } from "../lib/bridge/mroute.ts";

const skip = await netnsUnavailable();
if (skip !== undefined) console.log(`skipped: ${skip}`);

const BULLETINS = 1000;
const GROUP = "224.1.1.1";

function segmentsTest(
  name: string,
  body: (net: Segments) => Promise<void>,
): void {
  Deno.test({
    name,
    ignore: skip !== undefined,
    async fn() {
      await using net = await createSegments();
      await body(net);
    },
  });
}

function feed(pad = ""): string {
  return Array.from(
    { length: BULLETINS },
    (_, k) => `bulletin ${k + 1}${pad}\n`,
  )
    .join("");
}

/** Asserts every bulletin once, in order, from the bridge's far address. */
function assertBulletins(
  stdout: string,
  pad = "",
  from = "\\('198\\.51\\.100\\.129', [0-9]+\\)",
): void {
  const count = BULLETINS;
  const received = stdout.split("\n").filter((line) =>
    line.startsWith("received bulletin ")
  );
  const expected = Array.from({ length: count }, (_, k) => k + 1);
  const numbers = received.map((line) =>
    Number(/^received bulletin ([0-9]+) /.exec(line)?.[1])
  );
  assert.deepEqual(numbers, expected, "bulletins once each, in order");
  for (const [k, line] of received.entries()) {
    assert.match(
      line,
      new RegExp(
        `^received bulletin ${
          k + 1
        } \\([0-9]+ bytes\\) from ${from} : bulletin ${k + 1}${pad}$`,
      ),
    );
  }
}

function startBridge(net: Segments, args: string[]): RunningProcess {
  return spawnTool("bridge", args, inNs(net.bridge.ns));
}

function legs(port: number, group = GROUP): string[] {
  const at = group.includes(":") ? `[${group}]:${port}` : `${group}:${port}`;
  return ["--from", `${at}@veth-a`, "--to", `${at}@veth-b`];
}

/** Stops a bridge with SIGTERM and returns its statistics line. */
async function stopBridge(bridge: RunningProcess): Promise<string> {
  bridge.kill("SIGTERM");
  const done = await bridge.finish(5_000);
  assert.equal(done.stderr, "", "bridge stderr");
  assert.equal(done.code, 0, `bridge exit code:\n${done.stdout}`);
  const last = done.stdout.trimEnd().split("\n").at(-1)!;
  assert.match(last, /^statistics: forwarded /);
  return last;
}

segmentsTest(
  "bridge: plain datagrams cross, only the group named",
  async (net) => {
    // No route between the segments: A cannot reach B.
    const route = await new Deno.Command("ip", {
      args: ["-n", net.a.ns, "route", "get", "198.51.100.130"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(route.success, false);
    assert.match(new TextDecoder().decode(route.stderr), /unreachable/);

    const port = testPort();
    await using bridge = startBridge(net, [
      ...legs(port),
      "--name",
      "bridge-1",
    ]);
    await bridge.waitForOutput(
      `bridge bridge-1: ${GROUP}:${port}@veth-a -> ${GROUP}:${port}@veth-b\n`,
    );
    await using far = spawnTool("recv", [
      ...at(GROUP, port),
      "-i",
      "veth-b",
      "--count",
      "1",
    ], inNs(net.b.ns));
    await using other = spawnTool("recv", [
      ...at("224.1.1.2", port),
      "-i",
      "veth-b",
    ], inNs(net.b.ns));
    await far.waitForOutput(WAITING);
    await other.waitForOutput(WAITING);
    const sent = await spawnTool("send", [
      ...at(GROUP, port),
      "-i",
      "veth-a",
      "--expect",
      "1",
    ], inNs(net.a.ns)).finish(10_000);
    assert.equal(sent.stderr, "");
    assert.equal(sent.code, 0, sent.stdout);
    // The far receiver's acknowledgement comes back through the bridge.
    assert.equal(
      sent.stdout,
      `sending "${MESSAGE}"\nwaiting to receive\nreceived "ack" from ('198.51.100.2', ${port})\nclosing socket\n`,
    );
    const got = await far.finish(5_000);
    assert.equal(got.code, 0);
    assert.match(
      got.stdout,
      new RegExp(
        `^${WAITING}\nreceived 19 bytes from \\('198\\.51\\.100\\.129', ([0-9]+)\\) : ${MESSAGE}\nsending acknowledgement to \\('198\\.51\\.100\\.129', \\1\\)\n`,
      ),
    );
    // Another group on A's segment is not forwarded.
    const unrelayed = await spawnTool("send", [
      ...at("224.1.1.2", port),
      "-i",
      "veth-a",
      "--wait",
      "0.5",
    ], inNs(net.a.ns)).finish(10_000);
    assert.equal(
      unrelayed.stdout,
      `sending "${MESSAGE}"\nwaiting to receive\nclosing socket\n`,
    );
    other.kill("SIGTERM");
    const silent = await other.finish(5_000);
    assert.equal(silent.stdout, `${WAITING}\n`);
    assert.match(
      await stopBridge(bridge),
      /^statistics: forwarded 1 datagram \(0 DATA, 0 heartbeats, 0 GONE, 1 plain\), 0 repaired, /,
    );
  },
);

/** A reliable session from A to B through the bridge; returns the outputs. */
async function reliableSession(
  net: Segments,
  options: {
    sender?: string[];
    receiver?: string[];
    bridge?: string[];
    roster?: string;
    rate?: number;
    /** Appended to every bulletin. */
    pad?: string;
    during?: (far: RunningProcess) => Promise<void>;
    bridges?: (port: number) => RunningProcess[];
    /** The group (default 224.1.1.1) and how the far receiver shows the bridge. */
    group?: string;
    from?: string;
  } = {},
): Promise<
  { sender: string; receiver: string; port: number; bridges: string[] }
> {
  const port = testPort();
  const bridges = options.bridges?.(port) ??
    [startBridge(net, [
      ...legs(port, options.group),
      "--name",
      "bridge-1",
      ...(options.bridge ?? []),
    ])];
  try {
    for (const bridge of bridges) await bridge.waitForOutput("bridge ");
    await using far = spawnTool("recv", [
      ...at(options.group ?? GROUP, port),
      "-i",
      "veth-b",
      "--name",
      "desk-b",
      "--count",
      `${BULLETINS}`,
      ...(options.receiver ?? []),
    ], inNs(net.b.ns));
    await far.waitForOutput(WAITING);
    await using send = spawnTool("send", [
      ...at(options.group ?? GROUP, port),
      "-i",
      "veth-a",
      "--reliable",
      "--lines",
      "--receivers",
      options.roster ?? "bridge-1,desk-b via bridge-1",
      "--deadline",
      "20",
      ...(options.rate ? ["--rate", `${options.rate}`] : []),
      ...(options.sender ?? []),
    ], { ...inNs(net.a.ns), stdin: feed(options.pad) });
    await options.during?.(far);
    const sent = await send.finish(30_000);
    const got = await far.finish(10_000);
    assert.equal(got.stderr, "", "receiver stderr");
    assert.equal(got.code, 0, `receiver:\n${got.stdout}`);
    assert.equal(sent.stderr, "", `sender stderr:\n${sent.stdout}`);
    assert.equal(sent.code, 0, `sender:\n${sent.stdout}`);
    assertBulletins(got.stdout, options.pad, options.from);
    const stats: string[] = [];
    for (const bridge of bridges) {
      if (bridge.running) stats.push(await stopBridge(bridge));
    }
    return { sender: sent.stdout, receiver: got.stdout, port, bridges: stats };
  } finally {
    for (const bridge of bridges) await bridge[Symbol.asyncDispose]();
  }
}

function reportLines(
  sender: string,
  port: number,
  names: string[],
  from = `('198.51.100.2', ${port})`,
): void {
  for (const name of names) {
    assert.ok(
      sender.includes(
        `\n  ${name} ${from}: complete, has ${BULLETINS} bulletins\n`,
      ),
      `report line of ${name} in:\n${sender}`,
    );
  }
  assert.match(sender, /: delivered to every receiver in [0-9.]+ s\n/);
}

segmentsTest(
  "bridge: 1,000 bulletins cross exactly once, in order",
  async (net) => {
    const { sender, port } = await reliableSession(net);
    reportLines(sender, port, ["bridge-1", "desk-b via bridge-1"]);
  },
);

/** Generates a group key and a signing key in `dir`. */
async function makeKeys(dir: string): Promise<{ key: string; sign: string }> {
  const key = `${dir}/group.key`;
  const sign = `${dir}/sign.key`;
  for (const args of [["--gen-key", key], ["--gen-sign-key", sign]]) {
    const made = await spawnTool("send", args).finish(10_000);
    assert.equal(made.code, 0, made.stderr);
  }
  return { key, sign };
}

/** A session whose bridge is stopped at bulletin 300 and started again. */
async function restartSession(
  net: Segments,
  options: { keyed: boolean; signal: "SIGKILL" | "SIGTERM" },
): Promise<void> {
  const keyed = options.keyed;
  await withTempDir("mcast-bridge-", async (dir) => {
    const keys = keyed ? await makeKeys(dir) : undefined;
    const args = (port: number) => [
      ...legs(port),
      "--name",
      "bridge-1",
      "--state",
      `${dir}/bridge.state`,
      ...(keys ? ["--key-file", keys.key] : []),
    ];
    let restarted: RunningProcess | undefined;
    let first: RunningProcess | undefined;
    let port = 0;
    const { sender } = await reliableSession(net, {
      rate: 500,
      ...(keys
        ? {
          sender: [
            "--key-file",
            keys.key,
            "--encrypt",
            "--sign-key",
            keys.sign,
          ],
          receiver: ["--key-file", keys.key, "--trust", `${keys.sign}.pub`],
        }
        : {}),
      bridges(p) {
        port = p;
        first = startBridge(net, args(p));
        return [first];
      },
      async during(far) {
        await far.waitForOutput("received bulletin 300 ", {
          timeoutMs: 15_000,
        });
        // The first bridge is stopped (its process handle is disposed later).
        first!.kill(options.signal);
        assert.ok(await first!.waitForEnd(5_000), "the first bridge ended");
        const before = far.stdout.split("\nreceived bulletin ").length - 1;
        assert.ok(before < BULLETINS, `killed mid-feed: ${before} delivered`);
        restarted = startBridge(net, args(port));
        await restarted.waitForLine(
          /^resumed session [0-9a-f]{16} from \('198\.51\.100\.1', [0-9]+\) at sequence [0-9]+$/,
          { timeoutMs: 10_000 },
        );
      },
    });
    assert.ok(restarted);
    await using second = restarted;
    await second.waitForOutput("far receiver desk-b left");
    const stats = await stopBridge(second);
    assert.match(
      stats,
      /^statistics: forwarded [0-9]+ datagrams \([1-9][0-9]* DATA/,
    );
    reportLines(sender, port, ["bridge-1", "desk-b via bridge-1"]);
  });
}

segmentsTest(
  "bridge: killed and restarted mid-feed, nothing lost or repeated",
  (net) => restartSession(net, { keyed: false, signal: "SIGKILL" }),
);

segmentsTest(
  "bridge: keyed, killed and restarted mid-feed, nothing lost or repeated",
  (net) => restartSession(net, { keyed: true, signal: "SIGKILL" }),
);

segmentsTest(
  "bridge: stopped (SIGTERM) and restarted mid-feed, nothing lost or repeated",
  (net) => restartSession(net, { keyed: false, signal: "SIGTERM" }),
);

segmentsTest(
  "bridge: keyed, encrypted, signed frames cross sealed",
  async (net) => {
    await withTempDir("mcast-bridge-keys-", async (dir) => {
      const key = `${dir}/group.key`;
      const sign = `${dir}/sign.key`;
      for (const args of [["--gen-key", key], ["--gen-sign-key", sign]]) {
        const made = await spawnTool("send", args).finish(10_000);
        assert.equal(made.code, 0, made.stderr);
      }
      const { sender, port } = await reliableSession(net, {
        sender: ["--key-file", key, "--encrypt", "--sign-key", sign],
        receiver: ["--key-file", key, "--trust", `${sign}.pub`],
        bridge: ["--key-file", key],
      });
      reportLines(sender, port, ["bridge-1", "desk-b via bridge-1"]);
    });
  },
);

segmentsTest("bridge: two bridges joined by the udp:// tunnel", async (net) => {
  await withTempDir("mcast-bridge-tunnel-", async (dir) => {
    const key = `${dir}/group.key`;
    const made = await spawnTool("send", ["--gen-key", key]).finish(10_000);
    assert.equal(made.code, 0, made.stderr);
    const tunnel = testPort();
    const { sender, port } = await reliableSession(net, {
      sender: ["--key-file", key],
      receiver: ["--key-file", key],
      // The far bridge's receiver, reported back through the tunnel.
      roster: "near,desk-b via far",
      bridges: (p) => [
        startBridge(net, [
          "--from",
          `${GROUP}:${p}@veth-a`,
          "--to",
          `udp://127.0.0.1:${tunnel}`,
          "--name",
          "near",
          "--key-file",
          key,
        ]),
        startBridge(net, [
          "--from",
          `udp://127.0.0.1:${tunnel}`,
          "--to",
          `${GROUP}:${p}@veth-b`,
          "--name",
          "far",
          "--key-file",
          key,
        ]),
      ],
    });
    reportLines(sender, port, ["near", "desk-b via far"]);
  });
});

/** A session through a tunnel whose `end` is SIGKILLed at bulletin 300. */
async function tunnelRestart(
  net: Segments,
  end: "near" | "far",
): Promise<void> {
  if (end === "far") {
    // The far link drops what exceeds 4 Mbit/s: at the kill, the far
    // receiver misses datagrams the killed bridge had taken from the
    // tunnel; the new one asks for them through it.
    await tc(
      `-n ${net.bridge.ns} qdisc add dev veth-b root tbf rate 4mbit burst 4kb latency 20ms`,
    );
  }
  await withTempDir("mcast-bridge-tunnel-restart-", async (dir) => {
    const { key } = await makeKeys(dir);
    const tunnel = testPort();
    const args = {
      near: (p: number) => [
        "--from",
        `${GROUP}:${p}@veth-a`,
        "--to",
        `udp://127.0.0.1:${tunnel}`,
        "--name",
        "near",
        "--state",
        `${dir}/near.state`,
        "--key-file",
        key,
      ],
      far: (p: number) => [
        "--from",
        `udp://127.0.0.1:${tunnel}`,
        "--to",
        `${GROUP}:${p}@veth-b`,
        "--name",
        "far",
        "--key-file",
        key,
      ],
    };
    const started: Partial<Record<"near" | "far", RunningProcess>> = {};
    let restarted: RunningProcess | undefined;
    let port = 0;
    const { sender, bridges } = await reliableSession(net, {
      ...(end === "far"
        ? {
          pad: " " + "x".repeat(900),
          sender: ["--key-file", key, "--rate", "1MiB"],
        }
        : { rate: 500, sender: ["--key-file", key] }),
      receiver: ["--key-file", key],
      roster: "near,desk-b via far",
      bridges(p) {
        port = p;
        started.near = startBridge(net, args.near(p));
        started.far = startBridge(net, args.far(p));
        return [started.near, started.far];
      },
      async during(far) {
        await far.waitForOutput("received bulletin 300 ", {
          timeoutMs: 15_000,
        });
        const victim = started[end]!;
        victim.kill("SIGKILL");
        assert.ok(await victim.waitForEnd(5_000), `the ${end} bridge ended`);
        const before = far.stdout.split("\nreceived bulletin ").length - 1;
        assert.ok(before < BULLETINS, `killed mid-feed: ${before} delivered`);
        restarted = startBridge(net, args[end](port));
        await restarted.waitForOutput(`bridge ${end}: `);
        if (end === "near") {
          await restarted.waitForLine(/^resumed session /, {
            timeoutMs: 10_000,
          });
        }
      },
    });
    assert.ok(restarted);
    await using second = restarted;
    await stopBridge(second);
    reportLines(sender, port, ["near", "desk-b via far"]);
    // Whether the far receiver missed something the killed bridge had
    // sent (and the new one asked for through the tunnel) depends on the
    // moment; relay_test.ts tests that path.
    console.log(
      `tunnel, ${end} end restarted; the bridges still running:\n${
        bridges.join("\n")
      }`,
    );
  });
}

segmentsTest(
  "bridge: the near end of a tunnel killed and restarted mid-feed",
  (net) => tunnelRestart(net, "near"),
);

segmentsTest(
  "bridge: the far end of a tunnel killed and restarted mid-feed",
  (net) => tunnelRestart(net, "far"),
);

segmentsTest(
  "bridge: an IPv6 link-scope group crosses (ff02::1:3), 1,000 bulletins",
  async (net) => {
    const { sender, port } = await reliableSession(net, {
      group: "ff02::1:3",
      from: "\\('fe80::[0-9a-f:]+', [0-9]+, 0, [0-9]+\\)",
    });
    for (const name of ["bridge-1", "desk-b via bridge-1"]) {
      assert.match(
        sender,
        new RegExp(
          `\n  ${name} \\('fe80::[0-9a-f:]+', ${port}, 0, [0-9]+\\): complete, has ${BULLETINS} bulletins\n`,
        ),
      );
    }
  },
);

segmentsTest(
  "bridge: far receivers' losses are repaired by the bridge",
  async (net) => {
    // The bridge's link to B drops what exceeds 4 Mbit/s; A's segment loses
    // nothing, so every repair B needs comes from the bridge's hold.
    await tc(
      `-n ${net.bridge.ns} qdisc add dev veth-b root tbf rate 4mbit burst 4kb latency 20ms`,
    );
    const { sender, port, bridges } = await reliableSession(net, {
      pad: " " + "x".repeat(900),
      // A pace the bridge's upstream socket takes on either I/O path: what
      // is lost, is lost on the far link.
      sender: ["--rate", "2MiB"],
    });
    reportLines(sender, port, ["bridge-1", "desk-b via bridge-1"]);
    const figures =
      /^statistics: [0-9]+ bulletins \([0-9]+ bytes\) in [0-9]+ datagrams, ([0-9]+) retransmitted, /m
        .exec(sender);
    assert.ok(figures, sender);
    // On the native path the bridge's upstream socket keeps up (large
    // buffers, batched reads): the sender repairs nothing. The deno path's
    // socket overflows now and then while the bridge repairs, and the
    // bridge asks the sender for what it missed.
    if (TEST_IO === "native") {
      assert.equal(
        figures[1],
        "0",
        `the sender repaired nothing: ${bridges[0]}`,
      );
    }
    const repaired =
      /^statistics: forwarded [0-9]+ datagrams \(([0-9]+) DATA, .*\), ([0-9]+) repaired, 0 asked upstream, /
        .exec(bridges[0]!);
    assert.ok(repaired, bridges[0]);
    assert.ok(Number(repaired[2]) > 0, `the bridge repaired: ${bridges[0]}`);
    console.log(
      `shaped far link: ${repaired[1]} DATA forwarded, ${
        repaired[2]
      } repaired by the bridge, ${figures[1]} by the sender (io ${TEST_IO})`,
    );
  },
);

segmentsTest("bridge: a loop of two bridges ends", async (net) => {
  const port = testPort();
  // One bridge each way between the same group on both segments.
  await using forth = startBridge(net, [...legs(port), "--name", "forth"]);
  await using back = startBridge(net, [
    "--from",
    `${GROUP}:${port}@veth-b`,
    "--to",
    `${GROUP}:${port}@veth-a`,
    "--name",
    "back",
  ]);
  await forth.waitForOutput("bridge forth: ");
  await back.waitForOutput("bridge back: ");
  await using far = spawnTool("recv", [
    ...at(GROUP, port),
    "-i",
    "veth-b",
    "--no-ack",
  ], inNs(net.b.ns));
  await far.waitForOutput(WAITING);
  const sent = await spawnTool("send", [
    ...at(GROUP, port),
    "-i",
    "veth-a",
    "--wait",
    "0.5",
  ], inNs(net.a.ns)).finish(10_000);
  assert.equal(sent.code, 0, sent.stderr);
  // B got it once; A got it back once (through "back"); "forth" heard the
  // echo on A and stopped it.
  await far.waitForOutput(`: ${MESSAGE}\n`);
  const stats = {
    forth: await stopBridge(forth),
    back: await stopBridge(back),
  };
  assert.match(
    stats.forth,
    /^statistics: forwarded 1 datagram \(0 DATA, 0 heartbeats, 0 GONE, 1 plain\), .*, [1-9][0-9]* loops? stopped, /,
  );
  assert.match(
    stats.back,
    /^statistics: forwarded 1 datagram \(0 DATA, 0 heartbeats, 0 GONE, 1 plain\), /,
  );
  far.kill("SIGTERM");
  const got = await far.finish(5_000);
  assert.equal(got.stdout.split(`: ${MESSAGE}\n`).length - 1, 1, got.stdout);
});

segmentsTest(
  "bridge: forged frames are dropped, not forwarded",
  async (net) => {
    await withTempDir("mcast-bridge-forged-", async (dir) => {
      const key = `${dir}/group.key`;
      const other = `${dir}/other.key`;
      for (const path of [key, other]) {
        const made = await spawnTool("send", ["--gen-key", path]).finish(
          10_000,
        );
        assert.equal(made.code, 0, made.stderr);
      }
      const port = testPort();
      await using bridge = startBridge(net, [
        ...legs(port),
        "--name",
        "bridge-1",
        "--key-file",
        key,
      ]);
      await bridge.waitForOutput("bridge bridge-1: ");
      // A sender with another key: every frame fails authentication.
      const sent = await spawnTool("send", [
        ...at(GROUP, port),
        "-i",
        "veth-a",
        "--reliable",
        "--key-file",
        other,
        "-m",
        "forged",
        "--deadline",
        "0.5",
      ], inNs(net.a.ns)).finish(10_000);
      // Nobody answers: the bridge dropped every frame.
      assert.match(sent.stdout, /: no receiver answered in /);
      const stats = await stopBridge(bridge);
      assert.match(
        stats,
        /^statistics: forwarded 0 datagrams .* [1-9][0-9]* dropped \(auth [1-9][0-9]*\), io (native|deno), crypto (openssl|webcrypto)$/,
      );
    });
  },
);

segmentsTest(
  "bridge: a reliable session crosses a loop of two bridges once",
  async (net) => {
    const { sender, port, bridges } = await reliableSession(net, {
      roster: "forth,desk-b via forth",
      bridges: (p) => [
        startBridge(net, [...legs(p), "--name", "forth"]),
        startBridge(net, [
          "--from",
          `${GROUP}:${p}@veth-b`,
          "--to",
          `${GROUP}:${p}@veth-a`,
          "--name",
          "back",
        ]),
      ],
    });
    reportLines(sender, port, ["forth", "desk-b via forth"]);
    // "forth" stopped every datagram "back" sent round again.
    const loops = /, ([0-9]+) loops? stopped, /.exec(bridges[0]!);
    assert.ok(loops && Number(loops[1]) > 0, bridges[0]);
  },
);

/** Why the smcroute test cannot run here, or `undefined`. */
async function smcrouteUnavailable(): Promise<string | undefined> {
  if (skip !== undefined) return skip;
  const mroute = multicastRoutingUnavailable();
  if (mroute !== undefined) return mroute;
  try {
    await new Deno.Command("smcrouted", {
      args: ["-v"],
      stdout: "null",
      stderr: "null",
    }).output();
    return undefined;
  } catch {
    return "smcrouted is not installed";
  }
}

const mrouteSkip = await smcrouteUnavailable();
if (skip === undefined && mrouteSkip !== undefined) {
  console.log(`skipped: smcroute test: ${mrouteSkip}`);
}

Deno.test({
  name: "bridge: the routed way, smcroute: TTL 1 stays, TTL 2 crosses",
  ignore: mrouteSkip !== undefined,
  async fn() {
    await using net = await createSegments();
    await withTempDir("mcast-smcroute-", async (dir) => {
      const port = testPort();
      await ip(
        `netns exec ${net.bridge.ns} sysctl -q -w net.ipv4.ip_forward=1`,
      );
      await Deno.writeTextFile(
        `${dir}/smcroute.conf`,
        `phyint veth-a enable\nphyint veth-b enable\nmroute from veth-a group ${GROUP} to veth-b\n`,
      );
      const router = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          net.bridge.ns,
          "smcrouted",
          "-n",
          "-N",
          "-f",
          `${dir}/smcroute.conf`,
          "-u",
          `${dir}/smcroute.sock`,
        ],
        stdout: "null",
        stderr: "null",
      }).spawn();
      try {
        await until(
          () => {
            try {
              Deno.statSync(`${dir}/smcroute.sock`);
              return true;
            } catch {
              return false;
            }
          },
          5_000,
          "smcrouted's control socket",
        );
        await using far = spawnTool("recv", [
          ...at(GROUP, port),
          "-i",
          "veth-b",
          "--no-ack",
        ], inNs(net.b.ns));
        await far.waitForOutput(WAITING);
        for (const ttl of ["1", "2"]) {
          const sent = await spawnTool("send", [
            ...at(GROUP, port),
            "-i",
            "veth-a",
            "--ttl",
            ttl,
            "-m",
            `ttl ${ttl}`,
            "--wait",
            "0.5",
          ], inNs(net.a.ns)).finish(10_000);
          assert.equal(sent.code, 0, sent.stderr);
        }
        await far.waitForOutput(": ttl 2\n");
        assert.ok(!far.stdout.includes(": ttl 1\n"), far.stdout);
      } finally {
        router.kill("SIGTERM");
        await router.status;
      }
    });
  },
});
