/**
 * `mcast-check` as a process on loopback: two instances on 127.0.0.1 with
 * their own unicast ports, on both socket paths (named explicitly, so one
 * test pass covers both), plus `--json`, a silent peer, usage errors and a
 * receive buffer the system caps (run as user nobody).
 *
 * @module
 */

import assert from "node:assert/strict";
import { nativeUnavailable } from "../../lib/mod.ts";
import {
  cappedUnavailable,
  type Finished,
  nobodyCommand,
  RunningProcess,
  runTool,
  spawnTool,
  testPort,
} from "../_tools.ts";
import { healthy, masked } from "./_check.ts";

function args(own: number, other: number, group: number, io: string): string[] {
  return [
    "-u",
    String(own),
    "-p",
    String(group),
    "-c",
    "3",
    "--interval",
    "0.05",
    "-w",
    "10",
    "--io",
    io,
    `127.0.0.1:${own}`,
    `127.0.0.1:${other}`,
  ];
}

/**
 * Runs two instances that name each other: `a` on path `io`, `b` on `ioB`
 * (default the same).
 */
async function pair(
  io: string,
  options: { extra?: string[]; ioB?: string } = {},
): Promise<{
  a: Finished;
  b: Finished;
  pa: number;
  pb: number;
}> {
  const { extra = [], ioB = io } = options;
  const [pa, pb, group] = [testPort(), testPort(), testPort()];
  await using first = spawnTool("check", [
    ...args(pa, pb, group, io),
    ...extra,
  ]);
  const b = await runTool("check", [...args(pb, pa, group, ioB), ...extra], {
    timeoutMs: 20_000,
  });
  const a = await first.finish(20_000);
  return { a, b, pa, pb };
}

const native = nativeUnavailable() === undefined;

Deno.test({
  name:
    "mcast-check on loopback (native): both peers reachable, hops 1, exit 0",
  ignore: !native,
  fn: async () => {
    const { a, b, pa, pb } = await pair("native");
    for (const [result, other] of [[a, pb], [b, pa]] as const) {
      assert.equal(result.stderr, "");
      assert.equal(
        masked(result.stdout),
        `${healthy(`127.0.0.1:${other}`)}multicast works with the 1 peer
`,
      );
      assert.equal(result.code, 0);
    }
  },
});

Deno.test("mcast-check on loopback (deno path): hops unknown, and it says so", async () => {
  const { a, pb } = await pair("deno");
  assert.equal(a.stderr, "");
  assert.equal(
    masked(a.stdout),
    `127.0.0.1:${pb} unicast: 3/3 answered, loss 0%, rtt X, dups 0, hops ?, heard 3/3
127.0.0.1:${pb} multicast: 3/3 answered, loss 0%, rtt X, dups 0, hops ?, heard 3/3
hop distance unknown ("hops ?"): the deno path cannot read received TTLs (use --io native)
multicast works with the 1 peer
`,
  );
  assert.equal(a.code, 0);
});

Deno.test({
  name:
    "mcast-check, one native and one deno instance: each knows the hops, from the native side's measurement",
  ignore: !native,
  fn: async () => {
    const { a, b, pa, pb } = await pair("native", { ioB: "deno" });
    for (const [result, other] of [[a, pb], [b, pa]] as const) {
      assert.equal(
        masked(result.stdout),
        `${healthy(`127.0.0.1:${other}`)}multicast works with the 1 peer
`,
      );
      assert.equal(result.code, 0);
    }
  },
});

Deno.test("mcast-check --json: one object per line, peer then summary", async () => {
  const { a, pb } = await pair("auto", { extra: ["--json"] });
  assert.equal(a.code, 0, a.stderr);
  const objects = a.stdout.trim().split("\n").map((line) => JSON.parse(line));
  const kinds = objects.map((o) => o.type);
  assert.equal(kinds[0], "peer");
  assert.equal(kinds.at(-1), "summary");
  const peer = objects[0];
  assert.equal(peer.peer, `127.0.0.1:${pb}`);
  assert.equal(peer.reachable, true);
  assert.equal(peer.multicast.answered, 3);
  assert.equal(peer.multicast.heard, 3);
  assert.equal(peer.unicast.loss, 0);
  assert.equal(typeof peer.multicast.rtt.avg, "number");
  assert.deepEqual(objects.at(-1), { type: "summary", peers: 1, reachable: 1 });
});

Deno.test("mcast-check with a peer that does not run: all lost, a line why, exit 1", async () => {
  const [own, other, group] = [testPort(), testPort(), testPort()];
  const result = await runTool("check", [
    "-u",
    String(own),
    "-p",
    String(group),
    "-c",
    "2",
    "--interval",
    "0.05",
    "-w",
    "1",
    `127.0.0.1:${other}`,
  ]);
  assert.equal(
    result.stdout.split("\n").filter((l) => !l.startsWith("hop distance"))
      .join("\n"),
    `127.0.0.1:${other} unicast: 0/2 answered, loss 100%, rtt -, dups 0, hops ?, heard 0/0
127.0.0.1:${other} multicast: 0/2 answered, loss 100%, rtt -, dups 0, hops ?, heard 0/0
no answer from 127.0.0.1:${other}: mcast-check does not run there, or unicast to it is blocked
multicast fails with the 1 peer: 127.0.0.1:${other}
`,
  );
  assert.equal(result.code, 1);
});

Deno.test("mcast-check usage errors: one line on stderr, exit 2", async () => {
  const cases: [string[], string][] = [
    [[], "No peers: name the hosts to check, e.g. mcast-check host-a host-b"],
    [
      ["127.0.0.1:4322"],
      "No peers besides this host (127.0.0.1:4322): name the other hosts",
    ],
    [
      ["-t", "0", "127.0.0.2"],
      'Invalid --ttl "0": expected a whole number from 1 to 255',
    ],
    [
      ["no-such-host-xyz"],
      'Unknown peer "no-such-host-xyz": not an IPv4 address nor a name in /etc/hosts',
    ],
    [
      ["-g", "ff02::1", "127.0.0.2"],
      'Invalid --group "ff02::1": mcast-check probes IPv4 groups only',
    ],
    [["--bogus"], 'Unknown option "--bogus"'],
    [
      ["-i", "10.255.255.1", "127.0.0.2"],
      'Unknown interface "10.255.255.1": no local interface has this address',
    ],
  ];
  for (const [argv, line] of cases) {
    const result = await runTool("check", argv);
    assert.equal(result.stderr, `mcast-check: ${line}\n`, argv.join(" "));
    assert.equal(result.stdout, "");
    assert.equal(result.code, 2, argv.join(" "));
  }
});

Deno.test("mcast-check --help and --version", async () => {
  const help = await runTool("check", ["--help"]);
  assert.equal(help.code, 0);
  assert.match(
    help.stdout,
    /^Usage: mcast-check \[OPTIONS\] HOST\[:PORT\]\.\.\.\n/,
  );
  assert.match(help.stdout, /default 239\.255\.43\.21/);
  const version = await runTool("check", ["-V"]);
  assert.equal(version.stdout, "mcast-check 0.1.0\n");
  assert.equal(version.code, 0);
});

Deno.test("mcast-check as a user the system caps: the capped receive buffer line", async () => {
  const reason = await cappedUnavailable("check.ts");
  if (reason !== undefined) {
    console.log(`skipped: ${reason}`);
    return;
  }
  const home = await Deno.makeTempDir({ prefix: "mcast_check_capped_" });
  try {
    await Deno.chmod(home, 0o777);
    const max = Number(await Deno.readTextFile("/proc/sys/net/core/rmem_max"));
    const [pa, pb, group] = [testPort(), testPort(), testPort()];
    await using capped = new RunningProcess(
      nobodyCommand("check", args(pa, pb, group, "native"), { home }),
    );
    const other = await runTool("check", args(pb, pa, group, "native"), {
      timeoutMs: 30_000,
    });
    assert.equal(other.code, 0, other.stdout + other.stderr);
    const result = await capped.finish(30_000);
    assert.equal(result.stderr, "");
    assert.equal(
      masked(result.stdout),
      `${
        healthy(`127.0.0.1:${pb}`)
      }receive buffer on lo capped at ${max} bytes, asked for 8388608: bursts overflow it (sysctl -w net.core.rmem_max=8388608)
multicast works with the 1 peer
`,
    );
    assert.equal(result.code, 0);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
