import assert from "node:assert/strict";
import { UsageError } from "../../lib/errors.ts";
import {
  type InterfaceAddress,
  resolveInterface,
  type ResolveInterfaceOptions,
} from "../../lib/net/interfaces.ts";
import { assertUsageError } from "../_assert.ts";

/** A made-up host: loopback, an Ethernet card, a tunnel and two odd ones. */
const INTERFACES: InterfaceAddress[] = [
  { name: "lo", family: "IPv4", address: "127.0.0.1", scopeid: null },
  { name: "lo", family: "IPv6", address: "::1", scopeid: 0 },
  { name: "eth0", family: "IPv4", address: "10.0.0.5", scopeid: null },
  { name: "eth0", family: "IPv4", address: "10.0.0.6", scopeid: null },
  { name: "eth0", family: "IPv6", address: "2001:db8::5", scopeid: 0 },
  {
    name: "eth0",
    family: "IPv6",
    address: "fe80::a00:27ff:fe4e:66a1",
    scopeid: 2,
  },
  { name: "wg0", family: "IPv6", address: "fd00::1", scopeid: 0 },
  { name: "veth1", family: "IPv6", address: "fe80::1", scopeid: 7 },
  { name: "ghost", family: "IPv6", address: "fd00::9", scopeid: 0 },
];

const OPTIONS: ResolveInterfaceOptions = { interfaces: INTERFACES };

const NO_LINK_LOCAL =
  "it has no IPv6 link-local address (IPv6 multicast needs one)";

Deno.test("IPv4: an address a local interface has", () => {
  assert.deepEqual(resolveInterface("127.0.0.1", 4, OPTIONS), {
    family: 4,
    address: "127.0.0.1",
    name: "lo",
    index: 0,
  });
  assert.deepEqual(resolveInterface("10.0.0.6", 4, OPTIONS), {
    family: 4,
    address: "10.0.0.6",
    name: "eth0",
    index: 0,
  });
});

Deno.test("IPv4: an interface name uses its first IPv4 address", () => {
  assert.deepEqual(resolveInterface("eth0", 4, OPTIONS), {
    family: 4,
    address: "10.0.0.5",
    name: "eth0",
    index: 0,
  });
  assert.deepEqual(resolveInterface("lo", 4, OPTIONS), {
    family: 4,
    address: "127.0.0.1",
    name: "lo",
    index: 0,
  });
});

Deno.test("IPv4: unknown address, unknown name, name without IPv4", () => {
  assertUsageError(
    () => resolveInterface("10.0.0.7", 4, OPTIONS),
    'Unknown interface "10.0.0.7": no local interface has this address',
  );
  assertUsageError(
    () => resolveInterface("0.0.0.0", 4, OPTIONS),
    'Unknown interface "0.0.0.0": no local interface has this address',
  );
  assertUsageError(
    () => resolveInterface("eth9", 4, OPTIONS),
    'Unknown interface "eth9"',
  );
  assertUsageError(
    () => resolveInterface("10.0.0.05", 4, OPTIONS),
    'Unknown interface "10.0.0.05"',
  );
  assertUsageError(
    () => resolveInterface("wg0", 4, OPTIONS),
    'Invalid interface "wg0": it has no IPv4 address',
  );
  assertUsageError(
    () => resolveInterface("lo", 4, { interfaces: [] }),
    'Unknown interface "lo"',
  );
});

Deno.test("IPv4: an IPv6 literal is refused for an IPv4 group", () => {
  for (const spec of ["::1", "fe80::a00:27ff:fe4e:66a1", "2001:DB8::5"]) {
    assertUsageError(
      () => resolveInterface(spec, 4, OPTIONS),
      `Invalid interface "${spec}": an IPv4 group needs an IPv4 interface address or name`,
    );
  }
});

Deno.test("IPv6: by name, with its link-local address and index", () => {
  assert.deepEqual(resolveInterface("eth0", 6, OPTIONS), {
    family: 6,
    address: "fe80::a00:27ff:fe4e:66a1",
    name: "eth0",
    index: 2,
  });
  assert.deepEqual(resolveInterface("veth1", 6, OPTIONS), {
    family: 6,
    address: "fe80::1",
    name: "veth1",
    index: 7,
  });
});

Deno.test("IPv6: by index", () => {
  assert.deepEqual(resolveInterface("2", 6, OPTIONS), {
    family: 6,
    address: "fe80::a00:27ff:fe4e:66a1",
    name: "eth0",
    index: 2,
  });
  assert.deepEqual(resolveInterface("7", 6, OPTIONS), {
    family: 6,
    address: "fe80::1",
    name: "veth1",
    index: 7,
  });
});

Deno.test("IPv6: by address, in any spelling", () => {
  assert.deepEqual(resolveInterface("2001:DB8:0::5", 6, OPTIONS), {
    family: 6,
    address: "fe80::a00:27ff:fe4e:66a1",
    name: "eth0",
    index: 2,
  });
});

Deno.test("IPv6: unknown index, name or address", () => {
  assertUsageError(
    () => resolveInterface("99", 6, OPTIONS),
    'Unknown interface "99"',
  );
  assertUsageError(
    () => resolveInterface("0", 6, OPTIONS),
    'Unknown interface "0"',
  );
  assertUsageError(
    () => resolveInterface("eth9", 6, OPTIONS),
    'Unknown interface "eth9"',
  );
  assertUsageError(
    () => resolveInterface("2001:db8::99", 6, OPTIONS),
    'Unknown interface "2001:db8::99"',
  );
  assertUsageError(
    () => resolveInterface("fe80::1%veth1", 6, OPTIONS),
    'Unknown interface "fe80::1%veth1"',
  );
});

Deno.test("IPv6: an interface without a link-local address is refused", () => {
  for (const spec of ["lo", "::1", "wg0", "fd00:0::1", "ghost", "fd00::9"]) {
    assertUsageError(
      () => resolveInterface(spec, 6, OPTIONS),
      `Invalid interface "${spec}": ${NO_LINK_LOCAL}`,
    );
  }
});

Deno.test("IPv6: an IPv4 literal is refused for an IPv6 group", () => {
  for (const spec of ["127.0.0.1", "10.0.0.5", "10.0.0.99"]) {
    assertUsageError(
      () => resolveInterface(spec, 6, OPTIONS),
      `Invalid interface "${spec}": an IPv6 group needs an IPv6 interface name, index or address`,
    );
  }
});

Deno.test("the system's own list: loopback resolves", () => {
  const loopback = resolveInterface("127.0.0.1", 4);
  assert.equal(loopback.family, 4);
  assert.equal(loopback.address, "127.0.0.1");
  assert.equal(loopback.index, 0);
  if (Deno.build.os === "linux") {
    assert.equal(loopback.name, "lo");
    assert.deepEqual(resolveInterface("lo", 4), loopback);
    assert.throws(() => resolveInterface("lo", 6), UsageError);
  }
});
