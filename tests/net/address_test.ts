import assert from "node:assert/strict";
import {
  addressFamily,
  formatPeer,
  normalizeIPv6,
  parseGroup,
  parseIPv4,
} from "../../lib/net/address.ts";
import { assertUsageError } from "../_assert.ts";

Deno.test("parseIPv4 accepts dotted quads and returns the bytes", () => {
  assert.deepEqual(parseIPv4("224.1.1.1"), [224, 1, 1, 1]);
  assert.deepEqual(parseIPv4("0.0.0.0"), [0, 0, 0, 0]);
  assert.deepEqual(parseIPv4("255.255.255.255"), [255, 255, 255, 255]);
  assert.deepEqual(parseIPv4("127.0.0.1"), [127, 0, 0, 1]);
  assert.deepEqual(parseIPv4("10.200.99.250"), [10, 200, 99, 250]);
});

Deno.test("parseIPv4 rejects anything that is not a strict dotted quad", () => {
  for (
    const text of [
      "",
      "224.001.1.1", // leading zeros
      "01.2.3.4",
      "00.0.0.0",
      "256.1.1.1",
      "1.2.3.256",
      "300.1.1.1",
      "1.2.3", // three parts
      "1.2.3.4.5",
      "1.2..4",
      "1.2.3.",
      ".1.2.3",
      " 1.2.3.4",
      "1.2.3.4 ",
      "1.2.3.-4",
      "+1.2.3.4",
      "1.2.3.0x4",
      "a.b.c.d",
      "1e2.1.1.1",
      "::1",
      "224.1.1.1/4",
    ]
  ) {
    assert.equal(parseIPv4(text), undefined, JSON.stringify(text));
  }
});

Deno.test("normalizeIPv6 returns the canonical lower-case compressed form", () => {
  assert.equal(normalizeIPv6("FF02::1"), "ff02::1");
  assert.equal(normalizeIPv6("ff02:0:0:0:0:0:1:2"), "ff02::1:2");
  assert.equal(normalizeIPv6("FF02:0000:0000::0001:0002"), "ff02::1:2");
  assert.equal(normalizeIPv6("::1"), "::1");
  assert.equal(normalizeIPv6("::"), "::");
  assert.equal(normalizeIPv6("2001:DB8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
  assert.equal(normalizeIPv6("fe80::0001"), "fe80::1");
  assert.equal(normalizeIPv6("::ffff:1.2.3.4"), "::ffff:102:304");
});

Deno.test("normalizeIPv6 rejects non-addresses, zones and brackets", () => {
  for (
    const text of [
      "",
      "224.1.1.1",
      "ff02",
      "1:2:3",
      "1::2::3",
      "ff02::1%eth0",
      "[ff02::1]",
      "ff02::1 ",
      "gggg::1",
      "12345::1",
      "1:2:3:4:5:6:7:8:9",
      "lo",
    ]
  ) {
    assert.equal(normalizeIPv6(text), undefined, JSON.stringify(text));
  }
});

Deno.test("addressFamily tells IPv4 from IPv6 from neither", () => {
  assert.equal(addressFamily("127.0.0.1"), 4);
  assert.equal(addressFamily("::1"), 6);
  assert.equal(addressFamily("FE80::1"), 6);
  assert.equal(addressFamily("eth0"), undefined);
  assert.equal(addressFamily("127.0.0.01"), undefined);
  assert.equal(addressFamily(""), undefined);
});

Deno.test("parseGroup accepts the edges of 224.0.0.0/4", () => {
  assert.deepEqual(parseGroup("224.0.0.0"), {
    family: 4,
    address: "224.0.0.0",
  });
  assert.deepEqual(parseGroup("224.1.1.1"), {
    family: 4,
    address: "224.1.1.1",
  });
  assert.deepEqual(parseGroup("239.255.255.255"), {
    family: 4,
    address: "239.255.255.255",
  });
});

Deno.test("parseGroup rejects IPv4 addresses outside 224.0.0.0/4", () => {
  for (
    const text of ["223.255.255.255", "240.0.0.0", "127.0.0.1", "0.0.0.0"]
  ) {
    assertUsageError(
      () => parseGroup(text),
      `Invalid group "${text}": not a multicast address (IPv4 224.0.0.0/4 or IPv6 ff00::/8)`,
    );
  }
});

Deno.test("parseGroup accepts ff00::/8 and canonicalises it", () => {
  assert.deepEqual(parseGroup("ff02::1:2"), {
    family: 6,
    address: "ff02::1:2",
  });
  assert.deepEqual(parseGroup("FF02::1"), { family: 6, address: "ff02::1" });
  assert.deepEqual(parseGroup("FF05:0:0:0:0:0:1:3"), {
    family: 6,
    address: "ff05::1:3",
  });
  assert.deepEqual(parseGroup("FF0E:0:0:0:0:0:0:101"), {
    family: 6,
    address: "ff0e::101",
  });
  assert.deepEqual(parseGroup("ff00::"), { family: 6, address: "ff00::" });
});

Deno.test("parseGroup rejects IPv6 addresses outside ff00::/8", () => {
  for (const text of ["2001:db8::1", "::1", "fe80::1", "fe02::1", "::"]) {
    assertUsageError(
      () => parseGroup(text),
      `Invalid group "${text}": not a multicast address (IPv4 224.0.0.0/4 or IPv6 ff00::/8)`,
    );
  }
});

Deno.test("parseGroup rejects garbage with its own message", () => {
  for (
    const text of [
      "",
      "garbage",
      "224.1.1",
      "224.001.1.1",
      "224.1.1.256",
      "ff02::1%eth0",
      "[ff02::1]",
      "224.1.1.1:10000",
    ]
  ) {
    assertUsageError(
      () => parseGroup(text),
      `Invalid group "${text}": not an IP address (expected e.g. 224.1.1.1 or ff02::1:2)`,
    );
  }
});

Deno.test("formatPeer prints IPv4 peers as Python's (host, port) tuple", () => {
  assert.equal(
    formatPeer({ address: "127.0.0.1", port: 41000 }),
    "('127.0.0.1', 41000)",
  );
  assert.equal(
    formatPeer({ address: "127.0.0.1", port: 10000 }),
    "('127.0.0.1', 10000)",
  );
});

Deno.test("formatPeer prints IPv6 peers as Python's 4-tuple", () => {
  assert.equal(
    formatPeer({ address: "fe80::1", port: 41000, scopeId: 2 }),
    "('fe80::1', 41000, 0, 2)",
  );
  assert.equal(
    formatPeer({ address: "::1", port: 10000 }),
    "('::1', 10000, 0, 0)",
  );
  assert.equal(
    formatPeer({ address: "ff02::1:2", port: 5000, scopeId: 0 }),
    "('ff02::1:2', 5000, 0, 0)",
  );
});
