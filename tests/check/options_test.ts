import assert from "node:assert/strict";
import {
  CHECK_DEFAULTS,
  CHECK_HELP,
  type CheckOptions,
  lookupHost,
  parseCheckArgs,
} from "../../lib/mod.ts";
import { assertUsageError } from "../_assert.ts";

const HOSTS = `127.0.0.1 localhost
# the lab
198.51.100.1 host-a
198.51.100.2 host-b b  # short name
fe80::1 host-b
`;

function run(args: string[]): CheckOptions {
  const command = parseCheckArgs(args, { hosts: HOSTS });
  if (command.action !== "run") throw new Error(`not run: ${command.action}`);
  return command.options;
}

Deno.test("lookupHost() finds IPv4 names in an /etc/hosts text", () => {
  assert.equal(lookupHost(HOSTS, "host-a"), "198.51.100.1");
  assert.equal(lookupHost(HOSTS, "b"), "198.51.100.2");
  assert.equal(lookupHost(HOSTS, "lab"), undefined);
  assert.equal(lookupHost(HOSTS, "host-c"), undefined);
});

Deno.test("parseCheckArgs() takes peers by address or name, positional or --peers", () => {
  const options = run([
    "host-a",
    "198.51.100.3:4400",
    "--peers",
    "host-b:4401,198.51.100.4",
  ]);
  assert.deepEqual(options.peers, [
    { name: "host-a", address: "198.51.100.1", port: 4322 },
    { name: "198.51.100.3:4400", address: "198.51.100.3", port: 4400 },
    { name: "host-b:4401", address: "198.51.100.2", port: 4401 },
    { name: "198.51.100.4", address: "198.51.100.4", port: 4322 },
  ]);
  assert.equal(options.group.address, CHECK_DEFAULTS.group);
  assert.equal(options.port, 4321);
  assert.equal(options.unicastPort, 4322);
  assert.equal(options.interface, "127.0.0.1");
  assert.equal(options.count, 5);
  assert.equal(options.intervalMs, 200);
  assert.equal(options.ttl, 1);
  assert.equal(options.timeoutMs, 10_000);
  assert.equal(options.io, "auto");
  assert.equal(options.json, false);
});

Deno.test("parseCheckArgs() reads every option", () => {
  const options = run([
    "-g",
    "239.1.2.3",
    "-p",
    "5000",
    "-u",
    "5001",
    "-i",
    "veth0",
    "-c",
    "7",
    "--interval",
    "0.05",
    "-t",
    "4",
    "-w",
    "2.5",
    "--json",
    "--io",
    "deno",
    "host-a",
  ]);
  assert.equal(options.group.address, "239.1.2.3");
  assert.deepEqual(
    [options.port, options.unicastPort, options.interface, options.count],
    [5000, 5001, "veth0", 7],
  );
  assert.deepEqual(
    [options.intervalMs, options.ttl, options.timeoutMs, options.json],
    [50, 4, 2500, true],
  );
  assert.equal(options.peers[0]!.port, 5001);
  assert.equal(options.io, "deno");
});

Deno.test("parseCheckArgs() refuses bad input with one line", () => {
  const cases: [string[], string][] = [
    [[], "No peers: name the hosts to check, e.g. mcast-check host-a host-b"],
    [
      ["host-c"],
      'Unknown peer "host-c": not an IPv4 address nor a name in /etc/hosts',
    ],
    [["a:b:c"], 'Invalid peer "a:b:c": expected HOST or HOST:PORT (IPv4)'],
    [
      ["host-a:0"],
      'Invalid --unicast-port "0": expected a whole number from 1 to 65535',
    ],
    [
      ["-c", "0", "host-a"],
      'Invalid --count "0": expected a whole number from 1 to 10000',
    ],
    [
      ["--interval", "0.001", "host-a"],
      'Invalid --interval "0.001": at least 0.01 seconds',
    ],
    [["-w", "0", "host-a"], 'Invalid --timeout "0": zero'],
    [
      ["--io", "fast", "host-a"],
      'Invalid --io "fast": expected auto, native, deno',
    ],
    [
      ["-g", "10.0.0.1", "host-a"],
      'Invalid group "10.0.0.1": not a multicast address (IPv4 224.0.0.0/4 or IPv6 ff00::/8)',
    ],
    [["-i", "", "host-a"], 'Invalid --interface "": empty'],
    [["--ttl"], 'Option "--ttl" needs a value'],
  ];
  for (const [args, message] of cases) {
    assertUsageError(() => parseCheckArgs(args, { hosts: HOSTS }), message);
  }
});

Deno.test("parseCheckArgs() answers --help and --version before anything else", () => {
  assert.deepEqual(parseCheckArgs(["--help", "bogus:host:x"]), {
    action: "help",
  });
  assert.deepEqual(parseCheckArgs(["-V"]), { action: "version" });
  assert.match(
    CHECK_HELP,
    /^Usage: mcast-check \[OPTIONS\] HOST\[:PORT\]\.\.\./,
  );
});
