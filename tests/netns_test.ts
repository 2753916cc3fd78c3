/**
 * Several hosts: a sender in one network namespace and receivers in two
 * others, joined by a bridge (see `_netns.ts`). Runs only as root with
 * `ip netns`; otherwise each test is ignored with a printed reason.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Host, type Lab, netnsUnavailable, withLab } from "./_netns.ts";
import {
  ackLine,
  assertOk,
  exchangeWith,
  MESSAGE,
  oneDatagram,
  peer,
  receiverOutput,
  senderOutput,
  senderPort,
  WAITING,
} from "./_exercise.ts";
import {
  type Finished,
  type RunningProcess,
  spawnTool,
  testPort,
} from "./_tools.ts";

const skip = await netnsUnavailable();
if (skip !== undefined) console.log(`skipped: ${skip}`);

/**
 * Registers a test that runs `body` in a fresh network ({@linkcode withLab});
 * ignored where network namespaces are unavailable.
 */
function labTest(name: string, body: (lab: Lab) => Promise<void>): void {
  Deno.test({ name, ignore: skip !== undefined, fn: () => withLab(body) });
}

function inHost(host: Host): { prefix: string[] } {
  return { prefix: ["ip", "netns", "exec", host.ns] };
}

function startReceiver(host: Host, args: string[]): RunningProcess {
  return spawnTool("recv", args, inHost(host));
}

/** Starts `mcast-send args` on `host`. */
function startSender(host: Host, args: string[]): () => RunningProcess {
  return () => spawnTool("send", args, inHost(host));
}

/** Asserts the sender's output: the exercise's lines, acks in any order. */
function assertSender(result: Finished, acks: string[]): void {
  const want = senderOutput(MESSAGE, acks.map((from) => ackLine(from)))
    .split("\n");
  const lines = result.stdout.split("\n");
  assert.equal(lines.length, want.length, result.stdout);
  assert.deepEqual(lines.slice(0, 2), want.slice(0, 2));
  assert.deepEqual(
    lines.slice(2, 2 + acks.length).sort(),
    want.slice(2, 2 + acks.length).sort(),
  );
  assert.deepEqual(lines.slice(2 + acks.length), want.slice(2 + acks.length));
}

/** How the tools show `host`'s IPv4 address with `port`. */
function ipv4(host: Host, port: number | string): string {
  return peer(host.ipv4, port);
}

/**
 * How the tools show `host`'s IPv6 link-local address with `port`, as it
 * arrives on the link of `on`: that link's index is the scope.
 */
function ipv6(host: Host, port: number | string, on: Host): string {
  return peer(host.ipv6, port, on.index);
}

/**
 * Runs a receiver (`--count 1`) on each receiving host, joined on the
 * interface `specs.receivers` names, and a sender with `specs.sender`
 * expecting both acknowledgements; checks every line, each address as
 * `specs.show` shows it.
 */
async function acrossHosts(
  lab: Lab,
  group: string,
  specs: {
    sender: string[];
    receivers: [string, string];
    show: (host: Host, port: number | string, on: Host) => string;
  },
): Promise<void> {
  const [r1, r2] = lab.receivers;
  const sender = lab.sender;
  const show = specs.show;
  const port = String(testPort());
  const common = ["-g", group, "-p", port];
  const joined = (link: string) => [...common, "-i", link, "-c", "1"];
  await using one = startReceiver(r1, joined(specs.receivers[0]));
  await using two = startReceiver(r2, joined(specs.receivers[1]));
  const { recv: [first, second], send } = await exchangeWith(
    [one, two],
    startSender(sender, [
      ...common,
      ...specs.sender,
      "--expect",
      "2",
      "-w",
      "5",
    ]),
  );
  // IPv6 acknowledgements arrive on the sender's link: its index is the scope.
  assertSender(send, [show(r1, port, sender), show(r2, port, sender)]);
  const from = senderPort(first.stdout);
  assert.ok(from >= 1024 && from <= 65535, `source port ${from}`);
  assert.equal(first.stdout, oneDatagram(show(sender, from, r1), 19, MESSAGE));
  assert.equal(second.stdout, oneDatagram(show(sender, from, r2), 19, MESSAGE));
}

labTest(
  "IPv4: a sender in one namespace gets the acks of receivers in two others",
  async (lab) => {
    const [r1, r2] = lab.receivers;
    // One receiver names its interface by address, the other by name.
    await acrossHosts(lab, "239.192.51.1", {
      sender: ["-i", lab.sender.ipv4, "-t", "1"],
      receivers: [r1.ipv4, r2.link],
      show: ipv4,
    });
  },
);

labTest("IPv4: TTL 0 keeps the datagram on the sender's host", async (lab) => {
  const [r1, r2] = lab.receivers;
  const port = String(testPort());
  const group = ["-g", "239.192.51.2", "-p", port];
  const on = (address: string) => [...group, "-i", address];
  const sender = lab.sender;
  await using local = startReceiver(sender, [...on(sender.ipv4), "-c", "1"]);
  await using one = startReceiver(r1, on(r1.ipv4));
  await using two = startReceiver(r2, on(r2.ipv4));
  for (const remote of [one, two]) await remote.waitForOutput(WAITING);
  // The whole wait of one second passes: the remote receivers had the
  // time to answer, yet only the local one does.
  const { recv: [here], send } = await exchangeWith(
    [local],
    startSender(sender, [...on(sender.ipv4), "-t", "0", "-w", "1"]),
  );
  assertSender(send, [ipv4(sender, port)]);
  assert.equal(
    here.stdout,
    oneDatagram(ipv4(sender, senderPort(here.stdout)), 19, MESSAGE),
  );
  for (const remote of [one, two]) {
    remote.kill("SIGTERM");
    const result = await remote.finish(10_000);
    assertOk(result, "remote receiver");
    assert.equal(result.stdout, receiverOutput([], "wait"));
  }
});

labTest(
  "IPv6: link-local group, interfaces by name and by index",
  async (lab) => {
    const [r1, r2] = lab.receivers;
    // The indexes differ (r2 has an extra link), so a wrong scope shows.
    assert.notEqual(r2.index, r1.index);
    await acrossHosts(lab, "ff02::6d63:2", {
      sender: ["-i", lab.sender.link],
      receivers: [r1.link, String(r2.index)],
      show: ipv6,
    });
  },
);

labTest(
  "IPv6: site-local group, interfaces by address, name and index",
  async (lab) => {
    const [r1, r2] = lab.receivers;
    // A destination zone does not steer ff05:: traffic: the sender's
    // socket is tied to its link by binding the link-local address.
    await acrossHosts(lab, "ff05::6d63:5", {
      sender: ["-i", String(lab.sender.index)],
      receivers: [r1.ipv6, r2.link],
      show: ipv6,
    });
  },
);

labTest(
  "IPv6: an interface without a link-local address is refused",
  async (lab) => {
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
  },
);
