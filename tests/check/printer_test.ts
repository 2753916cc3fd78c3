import assert from "node:assert/strict";
import {
  diagnosisJson,
  peerJson,
  type PeerResult,
  peerText,
  summaryJson,
  summaryText,
} from "../../lib/mod.ts";

const OK: PeerResult = {
  peer: "198.51.100.2:4322",
  up: true,
  reachable: true,
  unicast: {
    sent: 5,
    answered: 5,
    loss: 0,
    rtt: { min: 0.1234, avg: 0.5, max: 1 },
    dups: 0,
    hops: 1,
    heard: 5,
    expected: 5,
  },
  multicast: {
    sent: 5,
    answered: 0,
    loss: 100,
    dups: 2,
    heard: 4,
    expected: 5,
  },
};

Deno.test("peerText() prints one line per channel; unknown values as - and ?", () => {
  assert.deepEqual(peerText(OK), [
    "198.51.100.2:4322 unicast: 5/5 answered, loss 0%, rtt min/avg/max 0.123/0.500/1.000 ms, dups 0, hops 1, heard 5/5",
    "198.51.100.2:4322 multicast: 0/5 answered, loss 100%, rtt -, dups 2, hops ?, heard 4/5",
  ]);
});

Deno.test("summaryText() counts the peers multicast works with", () => {
  const failed = { ...OK, peer: "198.51.100.3:4322", reachable: false };
  assert.equal(summaryText([OK]), "multicast works with the 1 peer");
  assert.equal(summaryText([OK, OK]), "multicast works with all 2 peers");
  assert.equal(
    summaryText([failed]),
    "multicast fails with the 1 peer: 198.51.100.3:4322",
  );
  assert.equal(
    summaryText([OK, failed]),
    "multicast fails with 1 of 2 peers: 198.51.100.3:4322",
  );
});

Deno.test("the JSON lines carry a type and the whole record", () => {
  assert.deepEqual(JSON.parse(peerJson(OK)), { type: "peer", ...OK });
  assert.deepEqual(
    JSON.parse(
      diagnosisJson({ code: "hops-unknown", iface: "lo", line: "x" }),
    ),
    { type: "diagnosis", code: "hops-unknown", iface: "lo", line: "x" },
  );
  assert.equal(
    summaryJson([OK, { ...OK, reachable: false }]),
    '{"type":"summary","peers":2,"reachable":1}',
  );
});
