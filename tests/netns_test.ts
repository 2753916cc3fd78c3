/**
 * Several hosts: a sender in one network namespace and receivers in two
 * others, joined by a bridge (see `_netns.ts`). Runs only as root with
 * `ip netns`; otherwise each test is ignored with a printed reason.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  createLab,
  type Host,
  type Lab,
  listNamespaces,
  netnsUnavailable,
} from "./_netns.ts";
import {
  type Finished,
  RunningProcess,
  runTool,
  spawnTool,
  testPort,
} from "./_tools.ts";

const skip = await netnsUnavailable();
if (skip !== undefined) console.log(`skipped: ${skip}`);

const WAITING = "waiting to receive message";

/** Runs `body` with a fresh network, then checks that its namespaces are gone. */
async function withLab(body: (lab: Lab) => Promise<void>): Promise<void> {
  let namespaces: string[] = [];
  {
    await using lab = await createLab();
    namespaces = lab.namespaces;
    await body(lab);
  }
  const left = (await listNamespaces()).filter((name) =>
    namespaces.includes(name)
  );
  assert.deepEqual(left, [], "the test's namespaces were not deleted");
}

function inHost(host: Host): { prefix: string[] } {
  return { prefix: ["ip", "netns", "exec", host.ns] };
}

function startReceiver(host: Host, args: string[]): RunningProcess {
  return spawnTool("recv", args, inHost(host));
}

/** The source port the receiver printed (the sender's ephemeral port). */
function sourcePort(stdout: string): number {
  const match = / bytes from \('[^']+', ([0-9]+)/.exec(stdout);
  assert.ok(match, `no message line in:\n${stdout}`);
  return Number(match[1]);
}

/** The exercise's receiver output for one message, with `--count 1`. */
function oneMessage(from: string): string {
  return [
    WAITING,
    `received 19 bytes from ${from} : very important data`,
    `sending acknowledgement to ${from}`,
    "",
  ].join("\n");
}

/** Asserts the sender's output: the exercise's lines, acks in any order. */
function assertSender(result: Finished, acks: string[]): void {
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  const lines = result.stdout.split("\n");
  assert.equal(lines.length, 4 + acks.length, result.stdout);
  assert.deepEqual(lines.slice(0, 2), [
    'sending "very important data"',
    "waiting to receive",
  ]);
  assert.deepEqual(
    lines.slice(2, 2 + acks.length).sort(),
    acks.map((from) => `received "ack" from ${from}`).sort(),
  );
  assert.deepEqual(lines.slice(2 + acks.length), ["closing socket", ""]);
}

async function finishReceiver(receiver: RunningProcess): Promise<Finished> {
  const result = await receiver.finish(10_000);
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  return result;
}

Deno.test({
  name:
    "IPv4: a sender in one namespace gets the acks of receivers in two others",
  ignore: skip !== undefined,
  async fn() {
    await withLab(async (lab) => {
      const [r1, r2] = lab.receivers;
      const port = String(testPort());
      const group = ["-g", "239.192.51.1", "-p", port];
      // One receiver names its interface by address, the other by name.
      await using one = startReceiver(r1, [...group, "-i", r1.ipv4, "-c", "1"]);
      await using two = startReceiver(r2, [...group, "-i", r2.link, "-c", "1"]);
      await one.waitForOutput(WAITING);
      await two.waitForOutput(WAITING);
      const sent = await runTool(
        "send",
        [
          ...group,
          "-i",
          lab.sender.ipv4,
          "-t",
          "1",
          "--expect",
          "2",
          "-w",
          "5",
        ],
        { ...inHost(lab.sender), timeoutMs: 10_000 },
      );
      assertSender(sent, [
        `('${r1.ipv4}', ${port})`,
        `('${r2.ipv4}', ${port})`,
      ]);
      const first = await finishReceiver(one);
      const second = await finishReceiver(two);
      const from = sourcePort(first.stdout);
      assert.ok(from >= 1024 && from <= 65535, `source port ${from}`);
      assert.equal(
        first.stdout,
        oneMessage(`('${lab.sender.ipv4}', ${from})`),
      );
      assert.equal(
        second.stdout,
        oneMessage(`('${lab.sender.ipv4}', ${from})`),
      );
    });
  },
});

Deno.test({
  name: "IPv4: TTL 0 keeps the datagram on the sender's host",
  ignore: skip !== undefined,
  async fn() {
    await withLab(async (lab) => {
      const [r1, r2] = lab.receivers;
      const port = String(testPort());
      const group = ["-g", "239.192.51.2", "-p", port];
      const sender = lab.sender;
      await using local = startReceiver(sender, [
        ...group,
        "-i",
        sender.ipv4,
        "-c",
        "1",
      ]);
      await using one = startReceiver(r1, [...group, "-i", r1.ipv4]);
      await using two = startReceiver(r2, [...group, "-i", r2.ipv4]);
      for (const receiver of [local, one, two]) {
        await receiver.waitForOutput(WAITING);
      }
      // The whole wait of one second passes: the remote receivers had the
      // time to answer, yet only the local one does.
      const sent = await runTool(
        "send",
        [...group, "-i", sender.ipv4, "-t", "0", "-w", "1"],
        { ...inHost(sender), timeoutMs: 10_000 },
      );
      assertSender(sent, [`('${sender.ipv4}', ${port})`]);
      const here = await finishReceiver(local);
      assert.equal(
        here.stdout,
        oneMessage(`('${sender.ipv4}', ${sourcePort(here.stdout)})`),
      );
      for (const remote of [one, two]) {
        remote.kill("SIGTERM");
        const result = await finishReceiver(remote);
        assert.equal(result.stdout, `${WAITING}\n`);
      }
    });
  },
});

/**
 * Runs two IPv6 receivers and a sender, and checks every line, link-local
 * addresses with the interface index as Python's fourth tuple item.
 */
async function ipv6Exchange(
  lab: Lab,
  group: string,
  specs: { sender: string; receivers: [string, string] },
): Promise<void> {
  const [r1, r2] = lab.receivers;
  const sender = lab.sender;
  const port = String(testPort());
  const common = ["-g", group, "-p", port];
  await using one = startReceiver(r1, [
    ...common,
    "-i",
    specs.receivers[0],
    "-c",
    "1",
  ]);
  await using two = startReceiver(r2, [
    ...common,
    "-i",
    specs.receivers[1],
    "-c",
    "1",
  ]);
  await one.waitForOutput(WAITING);
  await two.waitForOutput(WAITING);
  const sent = await runTool(
    "send",
    [...common, "-i", specs.sender, "--expect", "2", "-w", "5"],
    { ...inHost(sender), timeoutMs: 10_000 },
  );
  // Acknowledgements arrive on the sender's link: its index is the scope.
  assertSender(sent, [
    `('${r1.ipv6}', ${port}, 0, ${sender.index})`,
    `('${r2.ipv6}', ${port}, 0, ${sender.index})`,
  ]);
  const first = await finishReceiver(one);
  const second = await finishReceiver(two);
  const from = sourcePort(first.stdout);
  assert.equal(
    first.stdout,
    oneMessage(`('${sender.ipv6}', ${from}, 0, ${r1.index})`),
  );
  assert.equal(
    second.stdout,
    oneMessage(`('${sender.ipv6}', ${from}, 0, ${r2.index})`),
  );
}

Deno.test({
  name: "IPv6: link-local group, interfaces by name and by index",
  ignore: skip !== undefined,
  async fn() {
    await withLab(async (lab) => {
      const [r1, r2] = lab.receivers;
      // The indexes differ (r2 has an extra link), so a wrong scope shows.
      assert.notEqual(r2.index, r1.index);
      await ipv6Exchange(lab, "ff02::6d63:2", {
        sender: lab.sender.link,
        receivers: [r1.link, String(r2.index)],
      });
    });
  },
});

Deno.test({
  name: "IPv6: site-local group, interfaces by address, name and index",
  ignore: skip !== undefined,
  async fn() {
    await withLab(async (lab) => {
      const [r1, r2] = lab.receivers;
      // A destination zone does not steer ff05:: traffic: the sender's
      // socket is tied to its link by binding the link-local address.
      await ipv6Exchange(lab, "ff05::6d63:5", {
        sender: String(lab.sender.index),
        receivers: [r1.ipv6, r2.link],
      });
    });
  },
});

Deno.test({
  name: "IPv6: an interface without a link-local address is refused",
  ignore: skip !== undefined,
  async fn() {
    await withLab(async (lab) => {
      // `lo` has no link-local address, hence no index the runtime reports
      // and no address to tie the sender to: refused before any socket.
      for (const tool of ["send", "recv"] as const) {
        await using probe = spawnTool(
          tool,
          ["-g", "ff05::6d63:5", "-p", "9", "-i", "lo"],
          inHost(lab.sender),
        );
        const result = await probe.finish(10_000);
        assert.equal(result.stdout, "");
        assert.equal(
          result.stderr,
          `mcast-${tool}: Invalid interface "lo": it has no IPv6 link-local address (IPv6 multicast needs one)\n`,
        );
        assert.equal(result.code, 2);
      }
    });
  },
});
