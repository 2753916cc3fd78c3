import assert from "node:assert/strict";
import {
  type CheckMessage,
  decodeCheckMessage,
  encodeCheckMessage,
} from "../../lib/mod.ts";

const PROBE: CheckMessage = {
  kind: "probe",
  multicast: true,
  ttl: 1,
  id: 0xdeadbeef,
  seq: 4,
  count: 5,
  time: 1234.5,
};

Deno.test("encodeCheckMessage() lays out the 28 bytes as documented", () => {
  assert.deepEqual(
    [...encodeCheckMessage(PROBE)],
    [
      0x4d,
      0x43,
      0x43,
      0x4b,
      1,
      3,
      1,
      1,
      0xde,
      0xad,
      0xbe,
      0xef,
      0,
      0,
      0,
      4,
      0,
      0,
      0,
      5,
      0x40,
      0x93,
      0x4a,
      0,
      0,
      0,
      0,
      0,
    ],
  );
});

Deno.test("decodeCheckMessage() reads back every kind", () => {
  for (const kind of ["hello", "hello-answer", "probe", "answer"] as const) {
    const message = { ...PROBE, kind, multicast: kind === "answer" };
    assert.deepEqual(decodeCheckMessage(encodeCheckMessage(message)), message);
  }
});

Deno.test("decodeCheckMessage() refuses other datagrams", () => {
  const good = encodeCheckMessage(PROBE);
  const cases: Uint8Array[] = [
    new Uint8Array(0),
    good.subarray(0, 27),
    new Uint8Array([...good, 0]),
    new Uint8Array(28),
    new TextEncoder().encode("very important data"),
  ];
  for (const [at, value] of [[0, 0x4e], [4, 2], [5, 0], [5, 5]] as const) {
    const bad = good.slice();
    bad[at] = value;
    cases.push(bad);
  }
  const nan = good.slice();
  new DataView(nan.buffer).setFloat64(20, NaN);
  cases.push(nan);
  for (const bytes of cases) assert.equal(decodeCheckMessage(bytes), undefined);
});
