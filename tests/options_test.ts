import assert from "node:assert/strict";
import {
  checkPayloadSize,
  type Command,
  DEFAULTS,
  MAX_PAYLOAD,
  parseInteger,
  parseRecvArgs,
  parseSeconds,
  parseSendArgs,
  type RecvOptions,
  type SendOptions,
} from "../lib/options.ts";
import { assertUsageError } from "./_assert.ts";

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function sendOptions(args: string[]): SendOptions {
  const command: Command<SendOptions> = parseSendArgs(args);
  assert.equal(command.action, "run");
  if (command.action !== "run") throw new Error("unreachable");
  return command.options;
}

function recvOptions(args: string[]): RecvOptions {
  const command: Command<RecvOptions> = parseRecvArgs(args);
  assert.equal(command.action, "run");
  if (command.action !== "run") throw new Error("unreachable");
  return command.options;
}

const DEFAULT_GROUP = { family: 4, address: "224.1.1.1" } as const;

Deno.test("DEFAULTS are the exercise's values", () => {
  assert.deepEqual(DEFAULTS, {
    group: "224.1.1.1",
    port: 10000,
    ttl: 1,
    message: "very important data",
    ack: "ack",
    interface: "127.0.0.1",
    waitSeconds: 1,
  });
  assert.equal(MAX_PAYLOAD, 65507);
});

Deno.test("parseSendArgs with no arguments gives the defaults", () => {
  assert.deepEqual(parseSendArgs([]), {
    action: "run",
    options: {
      group: DEFAULT_GROUP,
      port: 10000,
      interface: "127.0.0.1",
      json: false,
      payload: { kind: "text", text: "very important data" },
      ttl: 1,
      waitMs: 1000,
    },
  });
});

Deno.test("parseRecvArgs with no arguments gives the defaults", () => {
  assert.deepEqual(parseRecvArgs([]), {
    action: "run",
    options: {
      group: DEFAULT_GROUP,
      port: 10000,
      interface: "127.0.0.1",
      json: false,
      ack: utf8("ack"),
    },
  });
});

Deno.test("parseSendArgs takes every option in long form", () => {
  assert.deepEqual(
    parseSendArgs([
      "--group",
      "239.1.2.3",
      "--port",
      "5000",
      "--interface",
      "lo",
      "--json",
      "--message",
      "hello",
      "--ttl",
      "4",
      "--wait",
      "2.5",
      "--expect",
      "3",
    ]),
    {
      action: "run",
      options: {
        group: { family: 4, address: "239.1.2.3" },
        port: 5000,
        interface: "lo",
        json: true,
        payload: { kind: "text", text: "hello" },
        ttl: 4,
        waitMs: 2500,
        expect: 3,
      },
    },
  );
});

Deno.test("parseSendArgs takes every option in short form", () => {
  assert.deepEqual(
    parseSendArgs([
      "-g",
      "FF02::1:3",
      "-p",
      "65535",
      "-i",
      "eth0",
      "-m",
      "hi",
      "-t",
      "1",
      "-w",
      "0",
      "-e",
      "1",
    ]),
    {
      action: "run",
      options: {
        group: { family: 6, address: "ff02::1:3" },
        port: 65535,
        interface: "eth0",
        json: false,
        payload: { kind: "text", text: "hi" },
        ttl: 1,
        waitMs: 0,
        expect: 1,
      },
    },
  );
});

Deno.test("parseSendArgs takes --opt=value and joined short forms", () => {
  assert.deepEqual(
    parseSendArgs([
      "--group=239.0.0.7",
      "--port=1",
      "--interface=127.0.0.1",
      "--message=-starts with a dash",
      "--ttl=255",
      "--wait=0.125",
      "--expect=1000000",
    ]),
    {
      action: "run",
      options: {
        group: { family: 4, address: "239.0.0.7" },
        port: 1,
        interface: "127.0.0.1",
        json: false,
        payload: { kind: "text", text: "-starts with a dash" },
        ttl: 255,
        waitMs: 125,
        expect: 1000000,
      },
    },
  );
  const joined = sendOptions(["-p5001", "-t2", "-mabc", "-w3"]);
  assert.equal(joined.port, 5001);
  assert.equal(joined.ttl, 2);
  assert.deepEqual(joined.payload, { kind: "text", text: "abc" });
  assert.equal(joined.waitMs, 3000);
});

Deno.test("parseSendArgs reads --file PATH and --file - (stdin)", () => {
  assert.deepEqual(sendOptions(["--file", "/tmp/bulletin.txt"]).payload, {
    kind: "file",
    path: "/tmp/bulletin.txt",
  });
  assert.deepEqual(sendOptions(["-f", "notes.txt"]).payload, {
    kind: "file",
    path: "notes.txt",
  });
  assert.deepEqual(sendOptions(["--file=x"]).payload, {
    kind: "file",
    path: "x",
  });
  assert.deepEqual(sendOptions(["-f", "-"]).payload, { kind: "stdin" });
  assert.deepEqual(sendOptions(["--file", "-"]).payload, { kind: "stdin" });
  assert.deepEqual(sendOptions(["--file=-"]).payload, { kind: "stdin" });
});

Deno.test("parseSendArgs keeps an empty --message and the last of a repeated option", () => {
  assert.deepEqual(sendOptions(["-m", ""]).payload, { kind: "text", text: "" });
  assert.equal(sendOptions(["-p", "1", "--port", "2"]).port, 2);
});

Deno.test("parseRecvArgs takes every option in long form", () => {
  assert.deepEqual(
    parseRecvArgs([
      "--group",
      "239.1.2.3",
      "--port",
      "5000",
      "--interface",
      "lo",
      "--json",
      "--count",
      "7",
      "--ack",
      "got it",
    ]),
    {
      action: "run",
      options: {
        group: { family: 4, address: "239.1.2.3" },
        port: 5000,
        interface: "lo",
        json: true,
        count: 7,
        ack: utf8("got it"),
      },
    },
  );
});

Deno.test("parseRecvArgs takes every option in short form and --opt=value", () => {
  assert.deepEqual(
    parseRecvArgs(["-g", "ff05::1:3", "-p", "6000", "-i", "2", "-c", "1"]),
    {
      action: "run",
      options: {
        group: { family: 6, address: "ff05::1:3" },
        port: 6000,
        interface: "2",
        json: false,
        count: 1,
        ack: utf8("ack"),
      },
    },
  );
  assert.deepEqual(
    parseRecvArgs([
      "--group=224.0.0.251",
      "--port=5353",
      "--interface=127.0.0.1",
      "--count=2",
      "--ack=ok ✓",
    ]),
    {
      action: "run",
      options: {
        group: { family: 4, address: "224.0.0.251" },
        port: 5353,
        interface: "127.0.0.1",
        json: false,
        count: 2,
        ack: utf8("ok ✓"),
      },
    },
  );
});

Deno.test("parseRecvArgs --no-ack gives a null ack and --ack '' an empty one", () => {
  assert.equal(recvOptions(["--no-ack"]).ack, null);
  assert.deepEqual(recvOptions(["--ack", ""]).ack, new Uint8Array());
});

Deno.test("help and version actions, long and short", () => {
  for (const parse of [parseSendArgs, parseRecvArgs]) {
    assert.deepEqual(parse(["--help"]), { action: "help" });
    assert.deepEqual(parse(["-h"]), { action: "help" });
    assert.deepEqual(parse(["--version"]), { action: "version" });
    assert.deepEqual(parse(["-V"]), { action: "version" });
    // Help wins over version and over values that would be rejected.
    assert.deepEqual(parse(["-V", "-h"]), { action: "help" });
    assert.deepEqual(parse(["--port", "0", "--help"]), { action: "help" });
    assert.deepEqual(parse(["--group", "1.2.3.4", "-V"]), {
      action: "version",
    });
  }
});

Deno.test("unknown options and positional arguments are rejected", () => {
  for (const parse of [parseSendArgs, parseRecvArgs]) {
    assertUsageError(() => parse(["--bogus"]), 'Unknown option "--bogus"');
    assertUsageError(() => parse(["-x"]), 'Unknown option "-x"');
    assertUsageError(() => parse(["extra"]), 'Unexpected argument "extra"');
    assertUsageError(
      () => parse(["-p", "5000", "224.1.1.1"]),
      'Unexpected argument "224.1.1.1"',
    );
    assertUsageError(
      () => parse(["--json=yes"]),
      'Option "--json" does not take a value',
    );
  }
  // Options of the other tool are unknown.
  assertUsageError(
    () => parseSendArgs(["--count", "1"]),
    'Unknown option "--count"',
  );
  assertUsageError(
    () => parseSendArgs(["--no-ack"]),
    'Unknown option "--no-ack"',
  );
  assertUsageError(() => parseSendArgs(["-c", "1"]), 'Unknown option "-c"');
  assertUsageError(
    () => parseRecvArgs(["--message", "x"]),
    'Unknown option "--message"',
  );
  assertUsageError(() => parseRecvArgs(["-m", "x"]), 'Unknown option "-m"');
  assertUsageError(
    () => parseRecvArgs(["--ttl", "1"]),
    'Unknown option "--ttl"',
  );
  assertUsageError(() => parseRecvArgs(["-e", "1"]), 'Unknown option "-e"');
});

Deno.test("an option without its value is rejected", () => {
  for (
    const [args, name] of [
      [["--message"], "message"],
      [["-m"], "message"],
      [["--file"], "file"],
      [["-f"], "file"],
      [["--ttl"], "ttl"],
      [["-t"], "ttl"],
      [["--wait"], "wait"],
      [["-w"], "wait"],
      [["--expect"], "expect"],
      [["-e"], "expect"],
      [["--group"], "group"],
      [["-g"], "group"],
      [["--port"], "port"],
      [["-p"], "port"],
      [["--interface"], "interface"],
      [["-i"], "interface"],
    ] as const
  ) {
    assertUsageError(
      () => parseSendArgs([...args]),
      `Option "--${name}" needs a value`,
    );
  }
  for (
    const [args, name] of [
      [["--count"], "count"],
      [["-c"], "count"],
      [["--ack"], "ack"],
      [["-g"], "group"],
      [["-p"], "port"],
      [["-i"], "interface"],
    ] as const
  ) {
    assertUsageError(
      () => parseRecvArgs([...args]),
      `Option "--${name}" needs a value`,
    );
  }
});

Deno.test("a value that looks like an option is ambiguous", () => {
  assertUsageError(
    () => parseSendArgs(["-m", "-x"]),
    'Option "--message" needs a value (write --message=-VALUE for a value that starts with "-")',
  );
  assertUsageError(
    () => parseSendArgs(["--message", "--ttl"]),
    'Option "--message" needs a value (write --message=-VALUE for a value that starts with "-")',
  );
  assertUsageError(
    () => parseSendArgs(["-t", "-1"]),
    'Option "--ttl" needs a value (write --ttl=-VALUE for a value that starts with "-")',
  );
  assertUsageError(
    () => parseSendArgs(["-w", "-1"]),
    'Option "--wait" needs a value (write --wait=-VALUE for a value that starts with "-")',
  );
  assertUsageError(
    () => parseRecvArgs(["--ack", "-x"]),
    'Option "--ack" needs a value (write --ack=-VALUE for a value that starts with "-")',
  );
  assertUsageError(
    () => parseRecvArgs(["-c", "-1"]),
    'Option "--count" needs a value (write --count=-VALUE for a value that starts with "-")',
  );
});

Deno.test("ports outside 1-65535 or not whole numbers are rejected", () => {
  for (const parse of [parseSendArgs, parseRecvArgs]) {
    for (
      const port of [
        "0",
        "65536",
        "abc",
        "1.5",
        "",
        " 80",
        "80 ",
        "1e3",
        "0x50",
        "-1",
        "99999999999999999999",
      ]
    ) {
      assertUsageError(
        () => parse([`--port=${port}`]),
        `Invalid --port "${port}": expected a whole number from 1 to 65535`,
      );
    }
    assertUsageError(
      () => parse(["-p", "65536"]),
      'Invalid --port "65536": expected a whole number from 1 to 65535',
    );
  }
  assert.equal(sendOptions(["-p", "080"]).port, 80);
});

Deno.test("TTLs outside 0-255 are rejected", () => {
  for (const ttl of ["256", "-1", "abc", "1.0", "1000"]) {
    assertUsageError(
      () => parseSendArgs([`--ttl=${ttl}`]),
      `Invalid --ttl "${ttl}": expected a whole number from 0 to 255`,
    );
  }
  assertUsageError(
    () => parseSendArgs(["-t", "256"]),
    'Invalid --ttl "256": expected a whole number from 0 to 255',
  );
});

Deno.test("waits outside 0-86400 seconds are rejected", () => {
  for (
    const wait of [
      "-1",
      "abc",
      "86401",
      "86400.001",
      "1.2345",
      ".5",
      "1.",
      "1e3",
      "",
      "Infinity",
      "NaN",
    ]
  ) {
    assertUsageError(
      () => parseSendArgs([`--wait=${wait}`]),
      `Invalid --wait "${wait}": expected seconds from 0 to 86400 (e.g. 1 or 0.5)`,
    );
  }
  assert.equal(sendOptions(["-w", "86400"]).waitMs, 86_400_000);
  assert.equal(sendOptions(["-w", "0.5"]).waitMs, 500);
  assert.equal(sendOptions(["-w", "0.001"]).waitMs, 1);
  assert.equal(sendOptions(["-w", "1.25"]).waitMs, 1250);
});

Deno.test("--expect and --count must be at least 1", () => {
  assertUsageError(
    () => parseSendArgs(["--expect", "0"]),
    'Invalid --expect "0": expected a whole number from 1 to 1000000',
  );
  assertUsageError(
    () => parseSendArgs(["-e", "1000001"]),
    'Invalid --expect "1000001": expected a whole number from 1 to 1000000',
  );
  assertUsageError(
    () => parseSendArgs(["-e", "two"]),
    'Invalid --expect "two": expected a whole number from 1 to 1000000',
  );
  assertUsageError(
    () => parseRecvArgs(["--count", "0"]),
    'Invalid --count "0": expected a whole number from 1 to 9007199254740991',
  );
  assertUsageError(
    () => parseRecvArgs(["-c", "x"]),
    'Invalid --count "x": expected a whole number from 1 to 9007199254740991',
  );
});

Deno.test("options that exclude each other are rejected", () => {
  assertUsageError(
    () => parseSendArgs(["--message", "x", "--file", "y"]),
    'Options "--message" and "--file" exclude each other',
  );
  assertUsageError(
    () => parseSendArgs(["-f", "-", "-m", "x"]),
    'Options "--message" and "--file" exclude each other',
  );
  assertUsageError(
    () => parseRecvArgs(["--ack", "x", "--no-ack"]),
    'Options "--ack" and "--no-ack" exclude each other',
  );
  assertUsageError(
    () => parseRecvArgs(["--no-ack", "--ack="]),
    'Options "--ack" and "--no-ack" exclude each other',
  );
});

Deno.test("a group that is not multicast is rejected", () => {
  for (const parse of [parseSendArgs, parseRecvArgs]) {
    assertUsageError(
      () => parse(["-g", "10.0.0.1"]),
      'Invalid group "10.0.0.1": not a multicast address (IPv4 224.0.0.0/4 or IPv6 ff00::/8)',
    );
    assertUsageError(
      () => parse(["--group", "2001:db8::1"]),
      'Invalid group "2001:db8::1": not a multicast address (IPv4 224.0.0.0/4 or IPv6 ff00::/8)',
    );
    assertUsageError(
      () => parse(["--group=mygroup"]),
      'Invalid group "mygroup": not an IP address (expected e.g. 224.1.1.1 or ff02::1:2)',
    );
  }
});

Deno.test("--message must fit one datagram, counted in UTF-8 bytes", () => {
  assert.deepEqual(sendOptions(["-m", "x".repeat(MAX_PAYLOAD)]).payload, {
    kind: "text",
    text: "x".repeat(65507),
  });
  assertUsageError(
    () => parseSendArgs(["-m", "x".repeat(65508)]),
    "Payload from --message is too large: 65508 bytes (one datagram carries at most 65507)",
  );
  // 32,754 two-byte characters are 65,508 bytes.
  assertUsageError(
    () => parseSendArgs(["--message", "é".repeat(32754)]),
    "Payload from --message is too large: 65508 bytes (one datagram carries at most 65507)",
  );
  assertUsageError(
    () => parseRecvArgs(["--ack", "a".repeat(70000)]),
    "Payload from --ack is too large: 70000 bytes (one datagram carries at most 65507)",
  );
  assert.equal(recvOptions(["--ack", "a".repeat(65507)]).ack?.length, 65507);
});

Deno.test("empty --interface and --file are rejected", () => {
  for (const parse of [parseSendArgs, parseRecvArgs]) {
    assertUsageError(
      () => parse(["--interface", ""]),
      'Invalid --interface "": empty',
    );
    assertUsageError(
      () => parse(["--interface="]),
      'Invalid --interface "": empty',
    );
    assertUsageError(() => parse(["-i", ""]), 'Invalid --interface "": empty');
  }
  assertUsageError(
    () => parseSendArgs(["--file", ""]),
    'Invalid --file "": empty',
  );
  assertUsageError(() => parseSendArgs(["-f", ""]), 'Invalid --file "": empty');
});

Deno.test("parseInteger, parseSeconds and checkPayloadSize", () => {
  assert.equal(parseInteger("n", "42", { min: 1, max: 100 }), 42);
  assert.equal(parseInteger("n", "1", { min: 1, max: 1 }), 1);
  assertUsageError(
    () => parseInteger("n", "101", { min: 1, max: 100 }),
    'Invalid --n "101": expected a whole number from 1 to 100',
  );
  assertUsageError(
    () =>
      parseInteger("n", "1234567890123456", {
        min: 0,
        max: Number.MAX_SAFE_INTEGER,
      }),
    `Invalid --n "1234567890123456": expected a whole number from 0 to ${Number.MAX_SAFE_INTEGER}`,
  );
  assert.equal(parseSeconds("wait", "2"), 2000);
  assert.equal(parseSeconds("wait", "0.1"), 100);
  assertUsageError(
    () => parseSeconds("wait", "x"),
    'Invalid --wait "x": expected seconds from 0 to 86400 (e.g. 1 or 0.5)',
  );
  checkPayloadSize("--file", 65507);
  checkPayloadSize("--file", 0);
  assertUsageError(
    () => checkPayloadSize("standard input", 65508),
    "Payload from standard input is too large: 65508 bytes (one datagram carries at most 65507)",
  );
});

Deno.test("parseSendArgs refuses a TTL other than 1 for an IPv6 group", () => {
  assertUsageError(
    () => parseSendArgs(["-g", "ff02::1:3", "-t", "5"]),
    'Invalid --ttl "5" for an IPv6 group: the runtime cannot set the hop limit, which stays 1',
  );
  const command = parseSendArgs(["-g", "ff02::1:3", "--ttl", "1"]);
  assert.equal(command.action === "run" && command.options.ttl, 1);
});
