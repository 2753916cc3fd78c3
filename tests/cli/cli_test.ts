/**
 * Process tests of `mcast-send` and `mcast-recv` (lib/cli/cli.ts) on loopback:
 * the exercise's output byte for byte, several receivers, `--count`,
 * `--expect`, `--json`, group isolation, payloads from standard input and
 * files, custom and no acknowledgements, every bad input, a port already in
 * use and a missing permission.
 *
 * Every test uses its own `testPort()` and a 239.77.x.y group, except the
 * exercise's contract, which must use the defaults (224.1.1.1:10000).
 *
 * @module
 */

import assert from "node:assert/strict";
import { batchWriter } from "../../lib/cli/cli.ts";
import { RECV_HELP, SEND_HELP } from "../../lib/cli/help.ts";
import {
  ackLine,
  assertOk,
  type Exchange,
  exchange,
  exchangeWith,
  loopback,
  MESSAGE,
  oneDatagram,
  peerPorts,
  receivedLines,
  receiverOutput,
  senderOutput,
  senderPort,
  WAITING,
} from "../_exercise.ts";
import {
  compiledBinary,
  type Finished,
  ROOT,
  RunningProcess,
  runTool,
  spawnTool,
  testPort,
  type Tool,
  toolCommand,
} from "../_tools.ts";

const encoder = new TextEncoder();

/** Any control character, C1 control or replacement character except `\n`. */
// deno-lint-ignore no-control-regex
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f\ufffd]/;

/** The system's ephemeral port range (Linux), or the widest plausible one. */
function ephemeralRange(): [number, number] {
  try {
    const text = Deno.readTextFileSync(
      "/proc/sys/net/ipv4/ip_local_port_range",
    );
    const [low, high] = text.trim().split(/\s+/).map(Number);
    if (low !== undefined && high !== undefined) return [low, high];
  } catch {
    // Not Linux.
  }
  return [1024, 65535];
}

/** Asserts that `port` is a sender's ephemeral port. */
function assertEphemeral(port: number | undefined): number {
  assert.ok(port !== undefined && Number.isInteger(port), `port ${port}`);
  const [low, high] = ephemeralRange();
  assert.ok(port >= low && port <= high, `port ${port} not in ${low}-${high}`);
  return port;
}

/** Asserts that neither stream carries a raw control byte. */
function assertNoRawControl(...texts: string[]): void {
  for (const text of texts) {
    const found = RAW_CONTROL.exec(text);
    assert.equal(
      found,
      null,
      `raw control character ${JSON.stringify(found?.[0])} in ${
        JSON.stringify(text)
      }`,
    );
  }
}

/** Asserts one clean error line (no stack trace) and the exit code. */
function assertFailure(
  result: Finished,
  code: number,
  stderr: string,
  what: string,
): void {
  assert.equal(result.stderr, stderr, what);
  assertOneLine(result.stderr, what);
  assert.equal(result.code, code, `${what}: exit code`);
  assert.equal(result.signal, null, `${what}: ended by a signal`);
}

/** Asserts that `stderr` is exactly one line and shows no stack frame. */
function assertOneLine(stderr: string, what: string): void {
  assert.ok(stderr.endsWith("\n"), `${what}: stderr ends with a newline`);
  assert.equal(stderr.split("\n").length, 2, `${what}: one stderr line`);
  assert.doesNotMatch(stderr, /^\s+at /m, `${what}: stack frame`);
  assert.doesNotMatch(stderr, /\bat .*:[0-9]+:[0-9]+/, `${what}: stack frame`);
  assertNoRawControl(stderr.slice(0, -1));
}

/** A fresh group for one test (never the default 224.1.1.1). */
function testGroup(last: number): string {
  return `239.77.${Deno.pid % 250}.${last}`;
}

/** One datagram's payload and acknowledgement as the tools show them. */
interface Shown {
  /** The payload's size in bytes. */
  bytes: number;
  /** The payload as the receiver shows it. */
  text: string;
  /** The payload as the sender shows it between double quotes (default `text`). */
  quoted?: string;
  /** The acknowledgement as the sender shows it; `null` with `--no-ack`. */
  ack: string | null;
}

/**
 * Asserts the exact output of an {@linkcode exchange} of one datagram (the
 * receiver with `--count 1`) on the group's `port`, from an ephemeral port.
 */
function assertOneDatagram(run: Exchange, port: number, shown: Shown): void {
  assertEphemeral(run.from);
  assert.equal(
    run.recv.stdout,
    oneDatagram(loopback(run.from), shown.bytes, shown.text, {
      ack: shown.ack !== null,
    }),
  );
  assert.equal(
    run.send.stdout,
    senderOutput(
      shown.quoted ?? shown.text,
      shown.ack === null ? [] : [ackLine(loopback(port), shown.ack)],
    ),
  );
}

/** JSON lines of `stdout`, each with its `time` checked and removed. */
function jsonLines(stdout: string): Record<string, unknown>[] {
  assert.ok(stdout.endsWith("\n"), "JSON output ends with a newline");
  return stdout.slice(0, -1).split("\n").map((line) => {
    const value = JSON.parse(line) as Record<string, unknown>;
    const { time, ...rest } = value;
    assert.equal(typeof time, "string", `time in ${line}`);
    assert.equal(new Date(time as string).toISOString(), time, `time ${line}`);
    return rest;
  });
}

Deno.test("with no options the two tools print the exercise's output exactly", async () => {
  const { recv, send } = await exchange([], [], { stop: "SIGINT" });

  const ports = peerPorts(recv.stdout);
  assert.equal(ports.length, 2, recv.stdout);
  const port = assertEphemeral(ports[0]);
  assert.equal(ports[1], port);
  assert.notEqual(port, 10000);
  assert.equal(
    recv.stdout,
    "waiting to receive message\n" +
      `received 19 bytes from ('127.0.0.1', ${port}) : very important data\n` +
      `sending acknowledgement to ('127.0.0.1', ${port})\n` +
      "\n" +
      "waiting to receive message\n",
  );

  assert.equal(
    send.stdout,
    'sending "very important data"\n' +
      "waiting to receive\n" +
      "received \"ack\" from ('127.0.0.1', 10000)\n" +
      "closing socket\n",
  );
});

Deno.test("mcast-recv leaves and exits 0 on SIGTERM", async () => {
  const group = testGroup(1);
  const port = testPort();
  const args = ["-g", group, "-p", `${port}`];
  {
    await using receiver = spawnTool("recv", args);
    await receiver.waitForOutput(WAITING);
    receiver.kill("SIGTERM");
    const recv = await receiver.finish();
    assert.equal(recv.stdout, "waiting to receive message\n");
    assertOk(recv, "receiver after SIGTERM");
  }
  {
    await using receiver = spawnTool("recv", [...args, "--json"]);
    await receiver.waitForOutput('"event":"waiting"');
    receiver.kill("SIGTERM");
    const recv = await receiver.finish();
    assertOk(recv, "JSON receiver after SIGTERM");
    assert.deepEqual(jsonLines(recv.stdout), [
      { event: "waiting", group, port, messages: 0 },
      { event: "stopped", messages: 0, reason: "signal" },
    ]);
  }
});

Deno.test("three receivers on one host each get the datagram and acknowledge it", async () => {
  const group = testGroup(2);
  const port = testPort();
  const args = ["-g", group, "-p", `${port}`];
  await using first = spawnTool("recv", args);
  await using second = spawnTool("recv", args);
  await using third = spawnTool("recv", args);
  const { recv, send, senderMs } = await exchangeWith(
    [first, second, third],
    () => spawnTool("send", [...args, "-e", "3", "-w", "10"]),
    { stop: "SIGINT" },
  );
  const ack = ackLine(loopback(port));
  assert.equal(send.stdout, senderOutput(MESSAGE, [ack, ack, ack]));
  // --expect 3 ends the wait as soon as the third acknowledgement arrived.
  assert.ok(senderMs < 8000, `sender took ${senderMs} ms of its 10 s wait`);

  for (const result of recv) {
    const from = assertEphemeral(senderPort(result.stdout));
    assert.equal(
      result.stdout,
      oneDatagram(loopback(from), 19, MESSAGE, { after: "wait" }),
    );
  }
});

Deno.test("mcast-recv --count 2 exits 0 by itself after two messages", async () => {
  const group = testGroup(3);
  const port = testPort();
  const args = ["-g", group, "-p", `${port}`];
  await using receiver = spawnTool("recv", [...args, "--count", "2"]);
  await receiver.waitForOutput(WAITING);
  const one = await runTool("send", [...args, "-m", "first", "-e", "1"]);
  await receiver.waitForOutput(WAITING, { count: 2 });
  const two = await runTool("send", [...args, "-m", "second", "-e", "1"]);
  const recv = await receiver.finish();

  assertOk(recv, "receiver");
  const [p1, p1again, p2, p2again] = peerPorts(recv.stdout);
  assertEphemeral(p1);
  assertEphemeral(p2);
  assert.equal(p1again, p1);
  assert.equal(p2again, p2);
  assert.equal(
    recv.stdout,
    receiverOutput([
      receivedLines(loopback(p1!), 5, "first"),
      receivedLines(loopback(p2!), 6, "second"),
    ], "stop"),
  );
  assertOk(one, "first sender");
  assertOk(two, "second sender");
  assert.equal(one.stdout, senderOutput("first", [ackLine(loopback(port))]));
  assert.equal(two.stdout, senderOutput("second", [ackLine(loopback(port))]));
});

Deno.test("mcast-send --expect fails with exit 1 naming the missing acknowledgements", async () => {
  const args = ["-g", testGroup(4), "-p", `${testPort()}`, "-e", "2"];
  const send = await runTool("send", [...args, "-w", "0.3"]);
  assertFailure(
    send,
    1,
    "mcast-send: expected 2 acknowledgements, received 0 (2 missing)\n",
    "--expect not met",
  );
  assert.equal(send.stdout, senderOutput(MESSAGE, []));
  assert.ok(send.stdout.endsWith("closing socket\n"));

  const json = await runTool("send", [...args, "-w", "0.3", "--json"]);
  assertFailure(
    json,
    1,
    "mcast-send: expected 2 acknowledgements, received 0 (2 missing)\n",
    "--expect not met, --json",
  );
  assert.deepEqual(jsonLines(json.stdout).at(-1), {
    event: "closing",
    acks: 0,
    expected: 2,
    missing: 2,
  });
});

Deno.test("--json prints one object per event on both tools", async () => {
  const group = testGroup(5);
  const port = testPort();
  const args = ["-g", group, "-p", `${port}`, "--json"];
  await using receiver = spawnTool("recv", [...args, "-c", "2"]);
  await receiver.waitForOutput('"event":"waiting"');
  const one = await runTool("send", [...args, "-m", "héllo", "-e", "1"]);
  await receiver.waitForOutput('"event":"waiting"', { count: 2 });
  const two = await runTool("send", [...args, "-f", "-", "-e", "1"], {
    stdin: new Uint8Array([0xff, 0x00, 0x1b]),
  });
  const recv = await receiver.finish();
  assertOk(recv, "receiver");
  assertOk(one, "text sender");
  assertOk(two, "binary sender");
  assertNoRawControl(recv.stdout, one.stdout, two.stdout);

  const events = jsonLines(recv.stdout);
  const from = events.filter((e) => e.event === "message").map((e) =>
    (e.from as { port: number }).port
  );
  assert.equal(from.length, 2, recv.stdout);
  const [p1, p2] = [assertEphemeral(from[0]), assertEphemeral(from[1])];
  const local = (p: number) => ({ address: "127.0.0.1", port: p });
  assert.deepEqual(events, [
    { event: "waiting", group, port, messages: 0 },
    { event: "message", from: local(p1), bytes: 6, text: "héllo" },
    { event: "ack-sent", to: local(p1), bytes: 3 },
    { event: "waiting", group, port, messages: 1 },
    { event: "message", from: local(p2), bytes: 3, base64: "/wAb" },
    { event: "ack-sent", to: local(p2), bytes: 3 },
    { event: "stopped", messages: 2, reason: "count" },
  ]);
  const ack = { event: "ack", from: local(port), bytes: 3, text: "ack" };
  const closing = { event: "closing", acks: 1, expected: 1, missing: 0 };
  assert.deepEqual(jsonLines(one.stdout), [
    { event: "sending", group, port, bytes: 6, text: "héllo" },
    { event: "waiting" },
    ack,
    closing,
  ]);
  assert.deepEqual(jsonLines(two.stdout), [
    { event: "sending", group, port, bytes: 3, base64: "/wAb" },
    { event: "waiting" },
    ack,
    closing,
  ]);
});

Deno.test("a receiver never shows a datagram sent to another group on its port", async () => {
  const port = testPort();
  const g1 = testGroup(61);
  const g2 = testGroup(62);
  await using a = spawnTool("recv", ["-g", g1, "-p", `${port}`, "-c", "1"]);
  await using b = spawnTool("recv", ["-g", g2, "-p", `${port}`, "-c", "1"]);
  await a.waitForOutput(WAITING);
  await b.waitForOutput(WAITING);
  // Sends `text` (6 bytes) to `group`, whose receiver gets it.
  const deliver = async (group: string, to: RunningProcess, text: string) => {
    const args = ["-g", group, "-p", `${port}`, "-m", text, "-w", "0.5"];
    const run = await exchange(to, args);
    assertOneDatagram(run, port, { bytes: 6, text, ack: "ack" });
  };

  await deliver(g2, b, "for G2");
  assert.equal(a.stdout, `${WAITING}\n`, "receiver A saw G2's datagram");
  await deliver(g1, a, "for G1");
});

/** ESC [31m red BEL 0xff LF say "hi" \ end: 25 bytes, several unprintable. */
const HOSTILE = new Uint8Array([
  0x1b,
  ...encoder.encode("[31mred"),
  0x07,
  0xff,
  0x0a,
  ...encoder.encode('say "hi" \\ end'),
]);
/** How the receiver shows {@linkcode HOSTILE}. */
const HOSTILE_SHOWN = '\\x1b[31mred\\x07\\xff\\nsay "hi" \\\\ end';
/** How the sender shows it, between double quotes. */
const HOSTILE_QUOTED = '\\x1b[31mred\\x07\\xff\\nsay \\"hi\\" \\\\ end';

Deno.test("payload from standard input: unprintable bytes are shown escaped", async () => {
  assert.equal(HOSTILE.length, 25);
  const group = testGroup(71);
  const port = testPort();
  const args = ["-g", group, "-p", `${port}`];
  const run = await exchange(
    [...args, "-c", "1", "--ack", "ok\x1b[2J\x07"],
    [...args, "-f", "-", "-e", "1"],
    { stdin: HOSTILE },
  );
  assertOneDatagram(run, port, {
    bytes: 25,
    text: HOSTILE_SHOWN,
    quoted: HOSTILE_QUOTED,
    ack: "ok\\x1b[2J\\x07",
  });
  assertNoRawControl(run.recv.stdout, run.send.stdout);
});

Deno.test("payload from a file, a custom --ack and --no-ack", async () => {
  const group = testGroup(72);
  const port = testPort();
  const args = ["-g", group, "-p", `${port}`];
  const path = await Deno.makeTempFile({ prefix: "mcast_cli_test_" });
  try {
    await Deno.writeFile(path, HOSTILE);
    const custom = await exchange(
      [...args, "-c", "1", "--ack", "got it"],
      [...args, "-f", path, "-e", "1"],
    );
    assertOneDatagram(custom, port, {
      bytes: 25,
      text: HOSTILE_SHOWN,
      quoted: HOSTILE_QUOTED,
      ack: "got it",
    });
    assertNoRawControl(custom.recv.stdout, custom.send.stdout);

    const none = await exchange(
      [...args, "-c", "1", "--no-ack"],
      [...args, "-w", "0.3"],
    );
    assertOneDatagram(none, port, { bytes: 19, text: MESSAGE, ack: null });

    // The largest payload one datagram carries goes through whole.
    await Deno.writeFile(path, new Uint8Array(65507).fill(0x78));
    const largest = await exchange(
      [...args, "-c", "1"],
      [...args, "-f", path, "-e", "1"],
    );
    const x = "x".repeat(65507);
    assertOneDatagram(largest, port, { bytes: 65507, text: x, ack: "ack" });
  } finally {
    await Deno.remove(path);
  }
});

/** One bad command line and its exact outcome. */
interface BadInput {
  tool: Tool;
  args: string[];
  stderr: string;
  stdin?: Uint8Array;
}

Deno.test("every bad input gets one line on stderr and exit code 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mcast_cli_test_" });
  try {
    const big = `${dir}/big`;
    await Deno.writeFile(big, new Uint8Array(65508).fill(0x78));
    const missing = `${dir}/missing`;
    const tooLarge = (what: string) =>
      `Payload from ${what} is too large: more than 65507 bytes (one datagram carries at most 65507)`;
    const multicast =
      "not a multicast address (IPv4 224.0.0.0/4 or IPv6 ff00::/8)";
    const port = (value: string) =>
      `Invalid --port "${value}": expected a whole number from 1 to 65535`;
    const common = (tool: Tool): BadInput[] => [
      {
        tool,
        args: ["-g", "10.0.0.1"],
        stderr: `Invalid group "10.0.0.1": ${multicast}`,
      },
      {
        tool,
        args: ["--group", "2001:db8::1"],
        stderr: `Invalid group "2001:db8::1": ${multicast}`,
      },
      {
        tool,
        args: ["-g", "foo"],
        stderr:
          `Invalid group "foo": not an IP address (expected e.g. 224.1.1.1 or ff02::1:2)`,
      },
      { tool, args: ["-p", "0"], stderr: port("0") },
      { tool, args: ["--port", "70000"], stderr: port("70000") },
      { tool, args: ["-p", "abc"], stderr: port("abc") },
      {
        tool,
        args: ["-i", "nosuch0"],
        stderr: `Unknown interface "nosuch0"`,
      },
      {
        tool,
        args: ["--interface", "10.254.254.254"],
        stderr:
          `Unknown interface "10.254.254.254": no local interface has this address`,
      },
      { tool, args: ["--bogus"], stderr: `Unknown option "--bogus"` },
      { tool, args: ["extra"], stderr: `Unexpected argument "extra"` },
      { tool, args: ["-p"], stderr: `Option "--port" needs a value` },
    ];
    const cases: BadInput[] = [
      ...common("send"),
      ...common("recv"),
      {
        tool: "send",
        args: ["-t", "300"],
        stderr: `Invalid --ttl "300": expected a whole number from 0 to 255`,
      },
      {
        tool: "send",
        args: ["-f", missing],
        stderr: `Cannot read file "${missing}": no such file`,
      },
      {
        tool: "send",
        args: ["-f", dir],
        stderr: `Cannot read file "${dir}": is a directory`,
      },
      { tool: "send", args: ["-f", big], stderr: tooLarge(`file "${big}"`) },
      {
        tool: "send",
        args: ["-f", "-"],
        stdin: new Uint8Array(70000).fill(0x78),
        stderr: tooLarge("standard input"),
      },
      {
        tool: "send",
        args: ["-m", "x".repeat(65508)],
        stderr:
          "Payload from --message is too large: 65508 bytes (one datagram carries at most 65507)",
      },
      {
        tool: "send",
        args: ["-e", "0"],
        stderr:
          `Invalid --expect "0": expected a whole number from 1 to 1000000`,
      },
      {
        tool: "send",
        args: ["-w", "soon"],
        stderr:
          `Invalid --wait "soon": expected seconds from 0 to 86400 (e.g. 1 or 0.5)`,
      },
      {
        tool: "send",
        args: ["-m", "x", "-f", big],
        stderr: `Options "--message" and "--file" exclude each other`,
      },
      {
        tool: "send",
        args: ["--count", "1"],
        stderr: `Unknown option "--count"`,
      },
      {
        tool: "recv",
        args: ["-c", "0"],
        stderr:
          `Invalid --count "0": expected a whole number from 1 to 9007199254740991`,
      },
      {
        tool: "recv",
        args: ["--ack", "x", "--no-ack"],
        stderr: `Options "--ack" and "--no-ack" exclude each other`,
      },
      {
        tool: "recv",
        args: ["--ack", "x".repeat(65508)],
        stderr:
          "Payload from --ack is too large: 65508 bytes (one datagram carries at most 65507)",
      },
      { tool: "recv", args: ["-t", "1"], stderr: `Unknown option "-t"` },
    ];
    const results = await Promise.all(
      cases.map((c) =>
        runTool(c.tool, c.args, c.stdin ? { stdin: c.stdin } : {})
      ),
    );
    cases.forEach((c, index) => {
      const result = results[index]!;
      const name = c.tool === "send" ? "mcast-send" : "mcast-recv";
      const what = `${name} ${c.args.join(" ").slice(0, 60)}`;
      assertFailure(result, 2, `${name}: ${c.stderr}\n`, what);
      assert.equal(result.stdout, "", `${what}: stdout`);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--help and --version print on stdout and exit 0", async () => {
  const version = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`))
    .version;
  assert.equal(version, "0.1.0");
  const runs: [Tool, string[], string][] = [
    ["send", ["--help"], `${SEND_HELP}\n`],
    ["send", ["-h"], `${SEND_HELP}\n`],
    ["recv", ["--help"], `${RECV_HELP}\n`],
    ["recv", ["-h", "-p", "0"], `${RECV_HELP}\n`],
    ["send", ["--version"], "mcast-send 0.1.0\n"],
    ["send", ["-V"], "mcast-send 0.1.0\n"],
    ["recv", ["--version"], "mcast-recv 0.1.0\n"],
  ];
  const results = await Promise.all(runs.map(([t, a]) => runTool(t, a)));
  runs.forEach(([tool, args, stdout], index) => {
    const result = results[index]!;
    assertOk(result, `${tool} ${args.join(" ")}`);
    assert.equal(result.stdout, stdout);
  });
  assert.match(SEND_HELP, /^Usage: mcast-send \[OPTIONS\]\n/);
  assert.match(RECV_HELP, /^Usage: mcast-recv \[OPTIONS\]\n/);
  for (const option of ["--group", "--port", "--interface", "--json"]) {
    assert.ok(SEND_HELP.includes(option), `send help lacks ${option}`);
    assert.ok(RECV_HELP.includes(option), `recv help lacks ${option}`);
  }
  for (const option of ["--message", "--file", "--ttl", "--wait", "--expect"]) {
    assert.ok(SEND_HELP.includes(option), `send help lacks ${option}`);
  }
  for (const option of ["--count", "--ack", "--no-ack"]) {
    assert.ok(RECV_HELP.includes(option), `recv help lacks ${option}`);
  }
});

Deno.test("a port held without address reuse: one line and exit 1", async () => {
  const group = testGroup(9);
  const port = testPort();
  // No reuseAddress: this socket holds the group's port exclusively.
  const holder = Deno.listenDatagram({
    hostname: group,
    port,
    transport: "udp",
  });
  try {
    const recv = await runTool("recv", ["-g", group, "-p", `${port}`]);
    assertFailure(
      recv,
      1,
      `mcast-recv: Cannot bind ${group}:${port}: address already in use (another socket holds the port without address reuse)\n`,
      "port in use",
    );
    assert.match(recv.stderr, /address already in use/);
    assert.equal(recv.stdout, "");
  } finally {
    holder.close();
  }
});

Deno.test({
  name: "a missing permission: one line and exit 1",
  ignore: compiledBinary("recv") !== undefined ||
    compiledBinary("send") !== undefined,
  async fn() {
    const group = testGroup(10);
    const port = testPort();
    const run = (script: string, flags: string[]) =>
      new RunningProcess([
        Deno.execPath(),
        "run",
        "--unstable-net",
        ...flags,
        "--no-prompt",
        script,
        ...["-g", group, "-p", `${port}`],
      ]).finish();
    const [recvNoNet, sendNoNet, recvNoSys] = await Promise.all([
      run("receiver.ts", ["--allow-sys=networkInterfaces"]),
      run("sender.ts", ["--allow-sys=networkInterfaces"]),
      run("receiver.ts", ["--allow-net"]),
    ]);

    for (
      const [result, prefix] of [
        [recvNoNet, `mcast-recv: Cannot bind ${group}:${port}: `],
        [sendNoNet, "mcast-send: Cannot bind 127.0.0.1:0: "],
      ] as const
    ) {
      assertOneLine(result.stderr, prefix);
      assert.ok(result.stderr.startsWith(prefix), result.stderr);
      assert.match(result.stderr, /net access/);
      assert.match(result.stderr, /--allow-net/);
      assert.equal(result.code, 1, result.stderr);
      assert.equal(result.stdout, "");
    }
    assertFailure(
      recvNoSys,
      1,
      "mcast-recv: Cannot list network interfaces: permission not granted (run with --allow-sys=networkInterfaces)\n",
      "no --allow-sys",
    );
    assert.equal(recvNoSys.stdout, "");
  },
});

Deno.test("a receiver whose output reader went away acknowledges, then exits 0", async () => {
  const port = String(testPort());
  const group = "239.77.9.9";
  const [program, ...args] = toolCommand("recv", ["-g", group, "-p", port]);
  const receiver = new Deno.Command(program!, {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(receiver.stderr).text();
  const killer = setTimeout(() => receiver.kill("SIGKILL"), 10_000);
  try {
    // Read up to the first "waiting" line, then close the pipe, as `| head -1`.
    const reader = receiver.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let seen = "";
    while (!seen.includes(`${WAITING}\n`)) {
      const { value, done } = await reader.read();
      assert.ok(!done, `receiver ended early: ${seen}`);
      seen += value;
    }
    await reader.cancel();
    const sent = await runTool("send", [
      "-g",
      group,
      "-p",
      port,
      "--expect",
      "1",
      "-w",
      "5",
    ]);
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /received "ack" from \('127\.0\.0\.1', [0-9]+\)/);
    const status = await receiver.status;
    assert.equal(status.code, 0);
    assert.equal(await stderr, "");
  } finally {
    clearTimeout(killer);
  }
});

Deno.test("batchWriter: the lines of one turn leave in one write, after it", async () => {
  const writes: string[] = [];
  const file = {
    writeSync(bytes: Uint8Array): number {
      writes.push(new TextDecoder().decode(bytes));
      return bytes.length;
    },
  };
  let broken = 0;
  const write = batchWriter(file, () => broken += 1);
  write("received bulletin 1");
  write("received bulletin 2");
  write("received bulletin 3");
  assert.deepEqual(writes, []);
  await Promise.resolve();
  assert.deepEqual(writes, [
    "received bulletin 1\nreceived bulletin 2\nreceived bulletin 3\n",
  ]);
  write("statistics");
  await Promise.resolve();
  assert.deepEqual(writes.at(-1), "statistics\n");
  assert.equal(writes.length, 2);
  assert.equal(broken, 0);
});

Deno.test("batchWriter: a closed pipe stops it, once, without a throw", async () => {
  let calls = 0;
  const file = {
    writeSync(): number {
      calls += 1;
      throw new Deno.errors.BrokenPipe("broken pipe");
    },
  };
  let broken = 0;
  const write = batchWriter(file, () => broken += 1);
  write("a");
  await Promise.resolve();
  write("b");
  await Promise.resolve();
  assert.equal(calls, 1);
  assert.equal(broken, 1);
});
