import assert from "node:assert/strict";
import { BRIDGE_HELP, bridgeMain } from "../../lib/bridge/main.ts";
import { runTool, testPort } from "../_tools.ts";

async function run(
  args: string[],
): Promise<{ code: number; stdout: string[]; stderr: string[] }> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await bridgeMain(args, {
    stdout: (line) => stdout.push(line),
    stderr: (line) => stderr.push(line),
    signal: AbortSignal.abort(),
  });
  return { code, stdout, stderr };
}

Deno.test("bridge main: help, usage errors in one line with exit 2", async () => {
  assert.deepEqual(await run(["--help"]), {
    code: 0,
    stdout: [BRIDGE_HELP],
    stderr: [],
  });
  assert.deepEqual(await run(["--bogus"]), {
    code: 2,
    stdout: [],
    stderr: ['mcast-bridge: Unknown option "--bogus"'],
  });
  assert.deepEqual(await run(["--from", "224.1.1.1@lo"]), {
    code: 2,
    stdout: [],
    stderr: [
      'mcast-bridge: Options "--from" and "--to" are required (see mcast-bridge --help)',
    ],
  });
});

Deno.test("bridge main: a tunnel needs the group key; what was opened is closed", async () => {
  const port = testPort();
  assert.deepEqual(
    await run([
      "--from",
      `224.1.1.1:${port}@127.0.0.1`,
      "--to",
      "udp://127.0.0.1:9",
      "--io",
      "deno",
    ]),
    {
      code: 2,
      stdout: [],
      stderr: [
        "mcast-bridge: A udp:// leg needs --key-file: the tunnel is authenticated with the group key",
      ],
    },
  );
});

Deno.test("bridge main: stopped at once, it prints its statistics and exits 0", async () => {
  const port = testPort();
  const result = await run([
    "--from",
    `224.1.1.1:${port}@127.0.0.1`,
    "--to",
    `224.1.1.2:${port}@127.0.0.1`,
    "--name",
    "bridge-t",
    "--io",
    "deno",
  ]);
  assert.deepEqual(result, {
    code: 0,
    stdout: [
      `bridge bridge-t: 224.1.1.1:${port}@127.0.0.1 -> 224.1.1.2:${port}@127.0.0.1`,
      "statistics: forwarded 0 datagrams (0 DATA, 0 heartbeats, 0 GONE, 0 plain), 0 repaired, 0 asked upstream, 0 NACKs, 0 ACKs, 0 far feedback frames, 0 duplicates, 0 loops stopped, 0 dropped, io deno",
    ],
    stderr: [],
  });
});

Deno.test("bridge main: --json prints one JSON object per event", async () => {
  const port = testPort();
  const result = await run([
    "--from",
    `224.1.1.1:${port}@127.0.0.1`,
    "--to",
    `224.1.1.2:${port}@127.0.0.1`,
    "--name",
    "bridge-j",
    "--io",
    "deno",
    "--json",
  ]);
  assert.equal(result.code, 0);
  assert.deepEqual(result.stderr, []);
  const events = result.stdout.map((line) => JSON.parse(line));
  assert.deepEqual(events.map((e) => e.event), [
    "bridge-start",
    "bridge-stopped",
  ]);
  assert.match(events[0].time, /^\d{4}-\d\d-\d\dT/);
  assert.deepEqual(
    { name: events[0].name, from: events[0].from, to: events[0].to },
    {
      name: "bridge-j",
      from: `224.1.1.1:${port}@127.0.0.1`,
      to: `224.1.1.2:${port}@127.0.0.1`,
    },
  );
  assert.equal(events[1].stats.name, "bridge-j");
  assert.deepEqual(events[1].stats.forwarded, {
    data: 0,
    heartbeat: 0,
    gone: 0,
    plain: 0,
  });
});

Deno.test("bridge process: an unknown interface is one line and exit 2", async () => {
  const result = await runTool("bridge", [
    "--from",
    "224.1.1.1@no-such-if0",
    "--to",
    "224.1.1.2@127.0.0.1",
  ]);
  assert.equal(result.code, 2);
  assert.equal(result.stdout, "");
  assert.equal(result.stderr.split("\n").length, 2, result.stderr);
  assert.match(result.stderr, /^mcast-bridge: .*no-such-if0.*\n$/);
});
