/**
 * Unit tests of the benchmark's namespace helpers (`bench/_netns.ts`): the
 * `/proc/net/igmp` reader, `ip netns list` parsing, which namespaces count
 * as stale, the command words, colour stripping, and `BenchProcess` on a
 * short shell script (lines collected and cut, exit status, a bounded wait,
 * kill). No namespace is created here.
 */

import assert from "node:assert/strict";
import {
  BenchProcess,
  igmpJoined,
  inNamespace,
  parseNetnsList,
  staleNamespaces,
  stripAnsi,
} from "../../bench/_netns.ts";

/** `/proc/net/igmp` of a namespace with 239.255.77.10 joined on lo. */
const IGMP = [
  "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter",
  "1\tlo        :     2      V3",
  "\t\t\t\t0A4DFFEF     1 0:00000000\t\t0",
  "\t\t\t\t010000E0     1 0:00000000\t\t0",
  "2\tveth-r1   :     1      V3",
  "\t\t\t\t014EFFEF     1 0:00000000\t\t0",
  "",
].join("\n");

Deno.test("igmpJoined finds a group on its device only", () => {
  assert.equal(igmpJoined(IGMP, "239.255.77.10", "lo"), true);
  assert.equal(igmpJoined(IGMP, "239.255.77.10"), true);
  assert.equal(igmpJoined(IGMP, "239.255.77.10", "veth-r1"), false);
  assert.equal(igmpJoined(IGMP, "239.255.78.1", "veth-r1"), true);
  assert.equal(igmpJoined(IGMP, "239.255.78.1", "lo"), false);
  assert.equal(igmpJoined(IGMP, "239.255.1.1"), false);
  assert.equal(igmpJoined("", "239.255.77.10"), false);
});

Deno.test("parseNetnsList takes the first word of each line", () => {
  assert.deepEqual(
    parseNetnsList("mcastbench12lo (id: 3)\nother\n\nmcast7s (id: 1)\n"),
    ["mcastbench12lo", "other", "mcast7s"],
  );
});

Deno.test("staleNamespaces: only this module's names whose process is gone", () => {
  const alive = (pid: number) => pid === 12;
  assert.deepEqual(
    staleNamespaces(
      [
        "mcastbench12lo",
        "mcastbench13lo",
        "mcastbench13r2",
        "mcastbench99br",
        "mcast13s",
        "mcastbenchx13",
        "other",
      ],
      alive,
    ),
    ["mcastbench13lo", "mcastbench13r2", "mcastbench99br"],
  );
});

Deno.test("inNamespace prefixes ip netns exec, or leaves the command alone", () => {
  assert.deepEqual(inNamespace("mcastbench1lo", "uftpd", ["-d"]), [
    "ip",
    "netns",
    "exec",
    "mcastbench1lo",
    "uftpd",
    "-d",
  ]);
  assert.deepEqual(inNamespace(undefined, "uftpd", ["-d"]), ["uftpd", "-d"]);
});

Deno.test("stripAnsi removes colour sequences", () => {
  assert.equal(
    stripAnsi("\x1b[0m\x1b[1m\x1b[31merror\x1b[0m: Uncaught"),
    "error: Uncaught",
  );
});

Deno.test("BenchProcess collects lines, cuts long ones, reports the exit", async () => {
  const script = [
    "echo first",
    "head -c 5000 /dev/zero | tr '\\0' x; echo",
    "echo oops >&2",
    "echo last",
    "exit 3",
  ].join("; ");
  const process = new BenchProcess("script", "sh", ["-c", script]);
  try {
    assert.equal(
      await process.waitForLine((line) => line === "last", 10_000),
      "last",
    );
    const status = await process.waitExit(10_000);
    assert.equal(status.code, 3);
    assert.equal(process.lines.length, 3);
    assert.equal(process.lines[0], "first");
    assert.equal(process.lines[1], "x".repeat(2000));
    assert.deepEqual(process.errorLines, ["oops"]);
    assert.equal(process.stderr, "oops\n");
    assert.ok(process.wallMs! >= 0);
    await assert.rejects(
      process.waitForLine((line) => line === "never", 10_000),
      /script ended \(code 3\) without the expected line: oops/,
    );
  } finally {
    await process.kill();
  }
});

Deno.test("BenchProcess: waits are bounded and kill ends the process", async () => {
  const process = new BenchProcess("sleeper", "sleep", ["30"]);
  try {
    await assert.rejects(
      process.waitExit(50),
      /sleeper: still running after 50 ms/,
    );
    await assert.rejects(
      process.waitForLine(() => true, 50),
      /sleeper: no the expected line within 50 ms/,
    );
  } finally {
    await process.kill("SIGTERM", 2000);
  }
  assert.equal(process.status?.signal, "SIGTERM");
});
