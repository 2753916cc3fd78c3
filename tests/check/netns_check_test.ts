/**
 * `mcast-check` between hosts in network namespaces (see `../_netns.ts`),
 * each diagnosis caused for real: a removed route, `multicast off`, an
 * nftables drop rule, a bridge snooping without a querier (and not
 * flooding the port), rp_filter with an asymmetric route, and a host behind
 * a router with TTL 1. Runs only as root; otherwise ignored with a reason.
 * The native path only: hop distances need received TTLs.
 *
 * @module
 */

import assert from "node:assert/strict";
import { nativeUnavailable } from "../../lib/mod.ts";
import {
  type Host,
  ip,
  type Lab,
  netnsUnavailable,
  withLab,
} from "../_netns.ts";
import { type Finished, spawnTool } from "../_tools.ts";
import { delay } from "../_wait.ts";
import { healthy, masked } from "./_check.ts";

const skip = (await netnsUnavailable()) ??
  (nativeUnavailable() === undefined ? undefined : "no native path here");
if (skip !== undefined) console.log(`skipped: ${skip}`);

/** Adds the multicast route a healthy host has on its link. */
async function routeMulticast(lab: Lab): Promise<void> {
  for (const host of [lab.sender, ...lab.receivers, lab.routed]) {
    if (host === undefined) continue;
    await ip(`-n ${host.ns} route add 224.0.0.0/4 dev ${host.link}`);
  }
}

function labTest(
  name: string,
  body: (lab: Lab) => Promise<void>,
  options: { routed?: boolean } = {},
): void {
  Deno.test({
    name,
    ignore: skip !== undefined,
    fn: () =>
      withLab(async (lab) => {
        await routeMulticast(lab);
        await body(lab);
      }, options),
  });
}

async function run(program: string, args: string[]): Promise<void> {
  const { success, stderr } = await new Deno.Command(program, {
    args,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    throw new Error(
      `${program} ${args.join(" ")}: ${new TextDecoder().decode(stderr)}`,
    );
  }
}

/** Runs `mcast-check` on each host at once, every host naming all of them. */
async function checkAll(
  hosts: Host[],
  extra: string[] = [],
): Promise<Finished[]> {
  const peers = hosts.map((h) => h.ipv4);
  const running = hosts.map((host) =>
    spawnTool("check", [
      "--io",
      "native",
      "-i",
      host.ipv4,
      "-c",
      "3",
      "--interval",
      "0.1",
      "-w",
      "4",
      ...extra,
      ...peers,
    ], { prefix: ["ip", "netns", "exec", host.ns] })
  );
  try {
    return await Promise.all(running.map((p) => p.finish(20_000)));
  } finally {
    for (const p of running) await p[Symbol.asyncDispose]();
  }
}

function multicastLost(peer: string, heard: number): string {
  return `${peer}:4322 unicast: 3/3 answered, loss 0%, rtt X, dups 0, hops 1, heard 3/3
${peer}:4322 multicast: 0/3 answered, loss 100%, rtt -, dups 0, hops ?, heard ${heard}/3
`;
}

function heardNoMulticast(peer: string): string {
  return `${peer}:4322 unicast: 3/3 answered, loss 0%, rtt X, dups 0, hops 1, heard 3/3
${peer}:4322 multicast: 3/3 answered, loss 0%, rtt X, dups 0, hops 1, heard 0/3
`;
}

labTest(
  "mcast-check in a healthy network: every peer reachable, no findings, exit 0",
  async (lab) => {
    const [s, r1, r2] = [lab.sender, ...lab.receivers];
    const results = await checkAll([s, r1, r2!]);
    const names = [s, r1, r2!].map((h) => `${h.ipv4}:4322`);
    for (const [i, result] of results.entries()) {
      const others = names.filter((_, j) => j !== i);
      assert.equal(result.stderr, "");
      assert.equal(
        masked(result.stdout),
        `${others.map(healthy).join("")}multicast works with all 2 peers\n`,
      );
      assert.equal(result.code, 0);
    }
    console.log(results[0]!.stdout);
  },
);

labTest("mcast-check names a missing 224.0.0.0/4 route", async (lab) => {
  const [s, r1] = [lab.sender, lab.receivers[0]];
  await ip(`-n ${r1.ns} route del 224.0.0.0/4 dev ${r1.link}`);
  const [, atR1] = await checkAll([s, r1]);
  assert.equal(
    masked(atR1!.stdout),
    `${
      healthy(`${s.ipv4}:4322`)
    }no route for 224.0.0.0/4 on veth-r1: programs that do not choose an interface fail with "Network is unreachable" (ip route add 224.0.0.0/4 dev veth-r1)
multicast works with the 1 peer
`,
  );
  assert.equal(atR1!.code, 0);
});

labTest("mcast-check names an interface set multicast off", async (lab) => {
  const [s, r1] = [lab.sender, lab.receivers[0]];
  await ip(`-n ${r1.ns} link set dev ${r1.link} multicast off`);
  const [, atR1] = await checkAll([s, r1]);
  assert.equal(
    masked(atR1!.stdout),
    `${
      healthy(`${s.ipv4}:4322`)
    }veth-r1 has no MULTICAST flag: programs and drivers that honour it leave multicast off there (ip link set dev veth-r1 multicast on)
multicast works with the 1 peer
`,
  );
  assert.equal(atR1!.code, 0);
});

labTest("mcast-check names a firewall dropping the group port", async (lab) => {
  const [s, r1] = [lab.sender, lab.receivers[0]];
  const rules = await Deno.makeTempFile({ suffix: ".nft" });
  try {
    await Deno.writeTextFile(
      rules,
      "add table inet mcastcheck\n" +
        "add chain inet mcastcheck input { type filter hook input priority 0; }\n" +
        "add rule inet mcastcheck input ip daddr 224.0.0.0/4 udp dport 4321 drop\n",
    );
    await run("ip", ["netns", "exec", r1.ns, "nft", "-f", rules]);
  } finally {
    await Deno.remove(rules);
  }
  const [atS, atR1] = await checkAll([s, r1]);
  assert.equal(
    masked(atS!.stdout),
    `${
      multicastLost(r1.ipv4, 3)
    }multicast to ${r1.ipv4} gets no answer though unicast does: read the lines of mcast-check on ${r1.ipv4}
multicast fails with the 1 peer: ${r1.ipv4}:4322
`,
  );
  assert.equal(atS!.code, 1);
  // Dropped at r1: s's three probes and r1's own three, looped back.
  assert.equal(
    masked(atR1!.stdout),
    `${
      heardNoMulticast(s.ipv4)
    }a firewall drops multicast from ${s.ipv4} to 239.255.43.21:4321 on veth-r1: 6 group datagrams reached IP but no socket (look at nft list ruleset, iptables -S)
multicast fails with the 1 peer: ${s.ipv4}:4322
`,
  );
  assert.equal(atR1!.code, 1);
});

/**
 * IGMP snooping on the lab's bridge, no querier, and no unknown multicast
 * flooded to `port`: the bridge then only forwards to it what a querier's
 * reports would allow.
 */
async function snoopWithoutQuerier(lab: Lab, port: string): Promise<void> {
  await ip(
    `-n ${lab.bridge} link set br0 type bridge mcast_snooping 1 mcast_querier 0`,
  );
  await run("bridge", [
    "-n",
    lab.bridge,
    "link",
    "set",
    "dev",
    port,
    "mcast_flood",
    "off",
  ]);
}

labTest("mcast-check names IGMP snooping without a querier", async (lab) => {
  const [s, r1] = [lab.sender, lab.receivers[0]];
  await snoopWithoutQuerier(lab, r1.bridgePort);
  const [atS, atR1] = await checkAll([s, r1]);
  assert.equal(
    masked(atS!.stdout),
    `${
      multicastLost(r1.ipv4, 3)
    }multicast to ${r1.ipv4} gets no answer though unicast does: read the lines of mcast-check on ${r1.ipv4}
multicast fails with the 1 peer: ${r1.ipv4}:4322
`,
  );
  assert.equal(
    masked(atR1!.stdout),
    `${
      heardNoMulticast(s.ipv4)
    }multicast from ${s.ipv4} never reaches veth-r1 though unicast does, and no IGMP query was seen: a switch with IGMP snooping and no querier drops the group (enable a querier on the switch or bridge)
multicast fails with the 1 peer: ${s.ipv4}:4322
`,
  );
  assert.equal(atR1!.code, 1);
});

labTest(
  "the same snooping bridge with a querier delivers the group: no finding, exit 0",
  async (lab) => {
    const [s, r1] = [lab.sender, lab.receivers[0]];
    await snoopWithoutQuerier(lab, r1.bridgePort);
    // A querier with an address, answering within 0.5 s (the bridge forwards
    // by its membership table only once a query's response time has passed).
    await ip(`-n ${lab.bridge} addr add 198.51.100.100/24 dev br0`);
    await ip(
      `-n ${lab.bridge} link set br0 type bridge mcast_query_use_ifaddr 1 mcast_query_response_interval 50`,
    );
    // Only now: the querier's first query takes the response time above.
    await ip(`-n ${lab.bridge} link set br0 type bridge mcast_querier 1`);
    await delay(800);
    const results = await checkAll([s, r1]);
    const pairs: [Finished, Host][] = [[results[0]!, r1], [results[1]!, s]];
    for (const [result, peer] of pairs) {
      // The first probe may beat the bridge's learning of the new member.
      const [unicast, multicast, ...rest] = masked(result.stdout).split("\n");
      assert.equal(
        unicast,
        `${peer.ipv4}:4322 unicast: 3/3 answered, loss 0%, rtt X, dups 0, hops 1, heard 3/3`,
      );
      assert.match(
        multicast!,
        new RegExp(
          `^${
            peer.ipv4.replaceAll(".", "\\.")
          }:4322 multicast: [123]/3 answered, loss (0|33|67)%, rtt X, dups 0, hops 1, heard [123]/3$`,
        ),
      );
      assert.deepEqual(rest, ["multicast works with the 1 peer", ""]);
      assert.equal(result.code, 0);
    }
  },
);

labTest(
  "mcast-check names rp_filter dropping a peer whose route back leaves by another link",
  async (lab) => {
    const [s, r1] = [lab.sender, lab.receivers[0]];
    await ip(`-n ${r1.ns} link add side0 type veth peer name side1`);
    await ip(`-n ${r1.ns} link set side0 up`);
    await ip(`-n ${r1.ns} link set side1 up`);
    await ip(`-n ${r1.ns} route add ${s.ipv4}/32 dev side0`);
    await ip(
      `netns exec ${r1.ns} sysctl -q -w net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.${r1.link}.rp_filter=1`,
    );
    const [atS, atR1] = await checkAll([s, r1]);
    assert.equal(
      atR1!.stdout,
      `${s.ipv4}:4322 unicast: 0/3 answered, loss 100%, rtt -, dups 0, hops ?, heard 0/0
${s.ipv4}:4322 multicast: 0/3 answered, loss 100%, rtt -, dups 0, hops ?, heard 0/0
rp_filter on veth-r1 drops datagrams from ${s.ipv4}: the route back to it leaves by side0 (set net.ipv4.conf.all.rp_filter and net.ipv4.conf.veth-r1.rp_filter to 2 or 0)
multicast fails with the 1 peer: ${s.ipv4}:4322
`,
    );
    assert.equal(atR1!.code, 1);
    assert.equal(
      atS!.stdout,
      `${r1.ipv4}:4322 unicast: 0/3 answered, loss 100%, rtt -, dups 0, hops ?, heard 0/3
${r1.ipv4}:4322 multicast: 0/3 answered, loss 100%, rtt -, dups 0, hops ?, heard 3/3
no answer from ${r1.ipv4} by unicast or multicast, though it is heard: its answers do not come back (read the lines of mcast-check on ${r1.ipv4})
multicast fails with the 1 peer: ${r1.ipv4}:4322
`,
    );
  },
);

labTest(
  "mcast-check names a TTL too small for a host behind a router",
  async (lab) => {
    const [s, far] = [lab.sender, lab.routed!];
    const results = await checkAll([s, far]);
    const pairs: [Finished, Host][] = [[results[0]!, far], [results[1]!, s]];
    for (const [result, peer] of pairs) {
      assert.equal(
        masked(result.stdout),
        `${peer.ipv4}:4322 unicast: 3/3 answered, loss 0%, rtt X, dups 0, hops 2, heard 3/3
${peer.ipv4}:4322 multicast: 0/3 answered, loss 100%, rtt -, dups 0, hops ?, heard 0/3
TTL 1 is too small for ${peer.ipv4}: it is 2 hops away by unicast (--ttl 2 or more, and routers that forward multicast)
multicast fails with the 1 peer: ${peer.ipv4}:4322
`,
      );
      assert.equal(result.code, 1);
    }
  },
  { routed: true },
);
