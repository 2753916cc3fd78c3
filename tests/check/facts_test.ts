import assert from "node:assert/strict";
import {
  counterDelta,
  parseCounter,
  parseRouteTable,
  readLocalFacts,
  readSystemFile,
  routeFor,
} from "../../lib/mod.ts";

const ROUTES =
  `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0
veth-r1\t006433C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
d0\t016433C6\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0
veth-r1\t000000E0\t00000000\t0001\t0\t0\t0\t000000F0\t0\t0\t0
`;

Deno.test("parseRouteTable() reads /proc/net/route's little-endian hex", () => {
  assert.deepEqual(parseRouteTable(ROUTES), [
    { iface: "eth0", destination: "0.0.0.0", gateway: "10.0.0.1", prefix: 0 },
    {
      iface: "veth-r1",
      destination: "198.51.100.0",
      gateway: "0.0.0.0",
      prefix: 24,
    },
    {
      iface: "d0",
      destination: "198.51.100.1",
      gateway: "0.0.0.0",
      prefix: 32,
    },
    {
      iface: "veth-r1",
      destination: "224.0.0.0",
      gateway: "0.0.0.0",
      prefix: 4,
    },
  ]);
});

Deno.test("routeFor() takes the longest prefix", () => {
  const routes = parseRouteTable(ROUTES);
  assert.equal(routeFor(routes, "198.51.100.1")?.iface, "d0");
  assert.equal(routeFor(routes, "198.51.100.2")?.iface, "veth-r1");
  assert.equal(routeFor(routes, "239.255.43.21")?.prefix, 4);
  assert.equal(routeFor(routes, "203.0.113.1")?.iface, "eth0");
  assert.equal(routeFor(routes.slice(1), "203.0.113.1"), undefined);
});

Deno.test("parseCounter() finds a field in header/value line pairs", () => {
  const text = `TcpExt: SyncookiesSent IPReversePathFilter
TcpExt: 0 17
IpExt: InNoRoutes InTruncatedPkts InMcastPkts
IpExt: 0 0 834602
`;
  assert.equal(parseCounter(text, "IpExt", "InMcastPkts"), 834602);
  assert.equal(parseCounter(text, "TcpExt", "IPReversePathFilter"), 17);
  assert.equal(parseCounter(text, "Udp", "RcvbufErrors"), undefined);
  assert.deepEqual(
    counterDelta({ inMcastPkts: 10, reversePathFilter: 1 }, {
      inMcastPkts: 16,
      rcvbufErrors: 3,
    }),
    { inMcastPkts: 6 },
  );
});

Deno.test("readSystemFile() and readLocalFacts() read /proc and /sys here", () => {
  assert.match(readSystemFile("/proc/net/route") ?? "", /^Iface\t/);
  assert.equal(readSystemFile("/proc/no/such/file"), undefined);
  const facts = readLocalFacts("lo");
  assert.equal(facts.loopback, true);
  assert.equal(facts.multicastFlag, false, "Linux's lo has no MULTICAST flag");
  assert.ok((facts.rmemMax ?? 0) > 0);
  assert.ok((facts.defaultTtl ?? 0) > 0);
  assert.ok(Array.isArray(facts.routes));
});
