import assert from "node:assert/strict";
import {
  type ChannelResult,
  diagnose,
  type DiagnosisInput,
  type LocalFacts,
  type PeerResult,
  type RouteEntry,
} from "../../lib/mod.ts";

const PEER = "198.51.100.2:4322";

function channel(overrides: Partial<ChannelResult> = {}): ChannelResult {
  return {
    sent: 3,
    answered: 3,
    loss: 0,
    rtt: { min: 1, avg: 2, max: 3 },
    dups: 0,
    hops: 1,
    heard: 3,
    expected: 3,
    ...overrides,
  };
}

const LOST: Partial<ChannelResult> = {
  answered: 0,
  loss: 100,
  rtt: undefined,
  hops: undefined,
};

function peer(
  unicast: Partial<ChannelResult> = {},
  multicast: Partial<ChannelResult> = {},
  up = true,
): PeerResult {
  const u = channel(unicast);
  const m = channel(multicast);
  if (u.rtt === undefined) delete u.rtt;
  if (m.rtt === undefined) delete m.rtt;
  if (u.hops === undefined) delete u.hops;
  if (m.hops === undefined) delete m.hops;
  return {
    peer: PEER,
    up,
    unicast: u,
    multicast: m,
    reachable: m.answered > 0 && m.heard > 0,
  };
}

const CONNECTED: RouteEntry[] = [
  {
    iface: "veth-r1",
    destination: "198.51.100.0",
    prefix: 24,
    gateway: "0.0.0.0",
  },
  { iface: "veth-r1", destination: "224.0.0.0", prefix: 4, gateway: "0.0.0.0" },
];

function facts(overrides: Partial<LocalFacts> = {}): LocalFacts {
  return {
    iface: "veth-r1",
    loopback: false,
    multicastFlag: true,
    routes: CONNECTED,
    rpFilter: 0,
    rmemMax: 4194304,
    defaultTtl: 64,
    ...overrides,
  };
}

function input(overrides: Partial<DiagnosisInput> = {}): DiagnosisInput {
  return {
    facts: facts(),
    results: [peer()],
    ttl: 1,
    group: "239.255.43.21",
    groupPort: 4321,
    io: "native",
    delta: { inMcastPkts: 6, reversePathFilter: 0, rcvbufErrors: 0 },
    groupArrivals: 6,
    igmpQueries: 0,
    ...overrides,
  };
}

function lines(overrides: Partial<DiagnosisInput>): string[] {
  return diagnose(input(overrides)).map((d) => `${d.code}: ${d.line}`);
}

Deno.test("diagnose() finds nothing when multicast works and the host is set up", () => {
  assert.deepEqual(diagnose(input()), []);
});

Deno.test("diagnose() names a missing 224.0.0.0/4 route on the interface", () => {
  assert.deepEqual(lines({ facts: facts({ routes: CONNECTED.slice(0, 1) }) }), [
    'no-multicast-route: no route for 224.0.0.0/4 on veth-r1: programs that do not choose an interface fail with "Network is unreachable" (ip route add 224.0.0.0/4 dev veth-r1)',
  ]);
  const byEth0 = [CONNECTED[0]!, {
    iface: "eth0",
    destination: "0.0.0.0",
    prefix: 0,
    gateway: "10.0.0.1",
  }];
  assert.deepEqual(lines({ facts: facts({ routes: byEth0 }) }), [
    "no-multicast-route: no route for 224.0.0.0/4 on veth-r1: programs that do not choose an interface send it by eth0 (ip route add 224.0.0.0/4 dev veth-r1)",
  ]);
  // A default route by the interface serves the group too; loopback is exempt.
  const byVeth = [CONNECTED[0]!, { ...byEth0[1]!, iface: "veth-r1" }];
  assert.deepEqual(lines({ facts: facts({ routes: byVeth }) }), []);
  assert.deepEqual(
    lines({ facts: facts({ iface: "lo", loopback: true, routes: [] }) }),
    [],
  );
});

Deno.test("diagnose() names an interface without the MULTICAST flag, not loopback", () => {
  assert.deepEqual(lines({ facts: facts({ multicastFlag: false }) }), [
    "no-multicast-flag: veth-r1 has no MULTICAST flag: programs and drivers that honour it leave multicast off there (ip link set dev veth-r1 multicast on)",
  ]);
  assert.deepEqual(
    lines({
      facts: facts({ iface: "lo", loopback: true, multicastFlag: false }),
    }),
    [],
  );
});

Deno.test("diagnose() names a capped receive buffer", () => {
  assert.deepEqual(
    lines({
      buffer: { receive: 4194304, requestedReceive: 8388608, capped: true },
    }),
    [
      "receive-buffer-capped: receive buffer on veth-r1 capped at 4194304 bytes, asked for 8388608: bursts overflow it (sysctl -w net.core.rmem_max=8388608)",
    ],
  );
});

Deno.test("diagnose() names rp_filter when the route back to a silent peer leaves by another interface", () => {
  const routes = [...CONNECTED, {
    iface: "d0",
    destination: "198.51.100.2",
    prefix: 32,
    gateway: "0.0.0.0",
  }];
  const silent = peer({ ...LOST, heard: 0, expected: 0 }, {
    ...LOST,
    heard: 0,
    expected: 0,
  }, false);
  assert.deepEqual(
    lines({ facts: facts({ routes, rpFilter: 1 }), results: [silent] }),
    [
      "rp-filter: rp_filter on veth-r1 drops datagrams from 198.51.100.2: the route back to it leaves by d0 (set net.ipv4.conf.all.rp_filter and net.ipv4.conf.veth-r1.rp_filter to 2 or 0)",
    ],
  );
  // Loose mode accepts it; without the strict filter the peer is just silent.
  assert.deepEqual(
    lines({ facts: facts({ routes, rpFilter: 2 }), results: [silent] }),
    [
      "no-answer: no answer from 198.51.100.2:4322: mcast-check does not run there, or unicast to it is blocked",
    ],
  );
  // The counter alone still tells.
  assert.deepEqual(
    lines({ delta: { inMcastPkts: 6, reversePathFilter: 4 } }),
    [
      "rp-filter: rp_filter dropped 4 datagrams during the check (IPReversePathFilter): check the routes back to the peers and net.ipv4.conf.veth-r1.rp_filter",
    ],
  );
});

Deno.test("diagnose() names a TTL smaller than the unicast hop distance", () => {
  const far = peer({ hops: 2 }, { ...LOST, heard: 0 });
  assert.deepEqual(lines({ results: [far], groupArrivals: 3, delta: {} }), [
    "ttl-too-small: TTL 1 is too small for 198.51.100.2: it is 2 hops away by unicast (--ttl 2 or more, and routers that forward multicast)",
  ]);
});

Deno.test("diagnose() names a firewall when the peer's multicast reached IP but no socket", () => {
  const blocked = peer({}, { heard: 0 });
  assert.deepEqual(
    lines({
      results: [blocked],
      delta: { inMcastPkts: 6, rcvbufErrors: 0 },
      groupArrivals: 0,
    }),
    [
      "firewall: a firewall drops multicast from 198.51.100.2 to 239.255.43.21:4321 on veth-r1: 6 group datagrams reached IP but no socket (look at nft list ruleset, iptables -S)",
    ],
  );
});

Deno.test("diagnose() names IGMP snooping without a querier when the peer's multicast never arrives", () => {
  const blocked = peer({}, { heard: 0 });
  const base = {
    results: [blocked],
    delta: { inMcastPkts: 3 },
    groupArrivals: 3,
  };
  assert.deepEqual(lines({ ...base, igmpQueries: 0 }), [
    "igmp-no-querier: multicast from 198.51.100.2 never reaches veth-r1 though unicast does, and no IGMP query was seen: a switch with IGMP snooping and no querier drops the group (enable a querier on the switch or bridge)",
  ]);
  assert.deepEqual(
    lines({ ...base, igmpQueries: 2, delta: { inMcastPkts: 5 } }),
    [
      "multicast-blocked: multicast from 198.51.100.2 never reaches veth-r1 though unicast does (IGMP queries arrive): a switch or 198.51.100.2 itself drops the group",
    ],
  );
  const unwatched = { ...input(base) };
  delete unwatched.igmpQueries;
  assert.deepEqual(diagnose(unwatched).map((d) => d.line), [
    "multicast from 198.51.100.2 never reaches veth-r1 though unicast does (IGMP queries could not be watched): a switch or 198.51.100.2 itself drops the group",
  ]);
});

Deno.test("diagnose() points the prober at the peer when only its multicast goes unanswered", () => {
  assert.deepEqual(lines({ results: [peer({}, LOST)] }), [
    "multicast-unanswered: multicast to 198.51.100.2 gets no answer though unicast does: read the lines of mcast-check on 198.51.100.2",
  ]);
  assert.deepEqual(lines({ results: [peer(LOST, LOST)] }), [
    "no-answer: no answer from 198.51.100.2 by unicast or multicast, though it is heard: its answers do not come back (read the lines of mcast-check on 198.51.100.2)",
  ]);
});

Deno.test("diagnose() says hop distances are unknown on the deno path", () => {
  // A native peer measured them for us: nothing to say.
  assert.deepEqual(lines({ io: "deno" }), []);
  const unknown = peer({ hops: undefined }, { hops: undefined });
  assert.deepEqual(lines({ io: "deno", results: [unknown] }), [
    'hops-unknown: hop distance unknown ("hops ?"): the deno path cannot read received TTLs (use --io native)',
  ]);
});

Deno.test("diagnose() gives each finding its interface and peer", () => {
  const [finding] = diagnose(input({ results: [peer({}, LOST)] }));
  assert.deepEqual(
    { ...finding, line: "" },
    { code: "multicast-unanswered", iface: "veth-r1", peer: PEER, line: "" },
  );
});
