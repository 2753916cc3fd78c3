import assert from "node:assert/strict";
import {
  parseHostPort,
  parseLeg,
  pipeSchemes,
  registerPipeScheme,
} from "../../lib/bridge/legs.ts";
import { parseBridgeArgs } from "../../lib/bridge/main.ts";
import { UsageError } from "../../lib/errors.ts";

Deno.test("legs: multicast legs", () => {
  assert.deepEqual(parseLeg("--from", "224.1.1.1:10001@veth-a", 10000), {
    kind: "multicast",
    group: { family: 4, address: "224.1.1.1" },
    port: 10001,
    iface: "veth-a",
    text: "224.1.1.1:10001@veth-a",
  });
  const noPort = parseLeg("--to", "239.0.0.9@198.51.100.129", 10000);
  assert.equal(noPort.kind === "multicast" && noPort.port, 10000);
  const v6 = parseLeg("--to", "[ff02::1:3]:7000@veth-b", 10000);
  assert.ok(v6.kind === "multicast");
  assert.deepEqual([v6.group.address, v6.port, v6.iface], [
    "ff02::1:3",
    7000,
    "veth-b",
  ]);
  const bare6 = parseLeg("--to", "ff02::1:3@veth-b", 10000);
  assert.ok(bare6.kind === "multicast" && bare6.port === 10000);
});

Deno.test("legs: bad legs are usage errors naming the option", () => {
  const cases: [string, RegExp][] = [
    ["224.1.1.1:10000", /^Invalid --from "224.1.1.1:10000": expected GROUP/],
    ["10.0.0.1:10000@eth9", /not a multicast address/],
    ["224.1.1.1:0@lo", /port must be 1-65535/],
    ["224.1.1.1:x@lo", /bad port "x"/],
    ["ftp://host:1", /unknown scheme "ftp" \(known: .*udp/],
    ["udp://host", /expected udp:\/\/HOST:PORT/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseLeg("--from", text, 10000), (error) => {
      assert.ok(error instanceof UsageError, String(error));
      assert.match(error.message, message);
      return true;
    });
  }
  assert.throws(() => parseHostPort("--listen", "nowhere"), UsageError);
  assert.deepEqual(parseHostPort("--listen", "[::1]:7"), {
    address: "::1",
    port: 7,
  });
});

Deno.test("legs: other modules register pipe schemes", () => {
  registerPipeScheme("test-pipe", { check: () => undefined });
  assert.ok(pipeSchemes().includes("test-pipe"));
  const leg = parseLeg("--to", "test-pipe://broker:4222/subject", 10000);
  assert.equal(leg.kind === "pipe" && leg.scheme, "test-pipe");
  assert.equal(leg.kind === "pipe" && leg.url.pathname, "/subject");
});

Deno.test("bridge options: parsed, and bad ones refused", () => {
  const command = parseBridgeArgs([
    "--from",
    "224.1.1.1:10000@veth-a",
    "--to",
    "udp://198.51.100.130:7000",
    "--name",
    "bridge-1",
    "--listen",
    "198.51.100.129:7001",
    "--hops",
    "3",
    "--buffer",
    "1MiB",
  ]);
  assert.ok(command.action === "run");
  assert.equal(command.options.name, "bridge-1");
  assert.equal(command.options.hops, 3);
  assert.equal(command.options.bufferBytes, 1024 * 1024);
  assert.deepEqual(command.options.listen, {
    address: "198.51.100.129",
    port: 7001,
  });
  assert.deepEqual(parseBridgeArgs(["--help"]), { action: "help" });
  const cases: [string[], RegExp][] = [
    [[], /"--from" and "--to" are required/],
    [["--from", "224.1.1.1@lo"], /are required/],
    [["--from", "224.1.1.1@lo", "--to", "224.1.1.1@lo"], /the same group/],
    [["--from", "224.1.1.1@a", "--to", "224.1.1.2@b", "--ttl", "256"], /--ttl/],
    [["--from", "224.1.1.1@a", "--to", "224.1.1.2@b", "--hops", "0"], /--hops/],
    [["--from", "224.1.1.1@a", "--to", "224.1.1.2@b", "--io", "x"], /--io/],
    [
      ["--from", "224.1.1.1@a", "--to", "224.1.1.2@b", "--name", "a,b"],
      /--name/,
    ],
    [
      ["--from", "224.1.1.1@a", "--to", "224.1.1.2@b", "--trust", "k"],
      /needs --key-file/,
    ],
    [["--bogus"], /Unknown option "--bogus"/],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => parseBridgeArgs(args), (error) => {
      assert.ok(error instanceof UsageError, String(error));
      assert.match(error.message, message);
      return true;
    }, args.join(" "));
  }
});
