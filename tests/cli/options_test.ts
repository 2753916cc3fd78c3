import assert from "node:assert/strict";
import {
  checkPayloadSize,
  type Command,
  DEFAULTS,
  formatSize,
  MAX_PAYLOAD,
  MAX_RECEIVERS,
  parseInteger,
  parseRate,
  parseRecvArgs,
  parseSeconds,
  parseSendArgs,
  parseSize,
  type RecvOptions,
  RELIABLE_DEFAULTS,
  type ReliableSendOptions,
  type SendOptions,
} from "../../lib/cli/options.ts";
import { assertUsageError } from "../_assert.ts";

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
      io: "auto",
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
      io: "auto",
      json: false,
      ack: utf8("ack"),
      fromStart: false,
      maxSize: 16777216,
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
        io: "auto",
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
        io: "auto",
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
        io: "auto",
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
        io: "auto",
        json: true,
        count: 7,
        ack: utf8("got it"),
        fromStart: false,
        maxSize: 16777216,
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
        io: "auto",
        json: false,
        count: 1,
        ack: utf8("ack"),
        fromStart: false,
        maxSize: 16777216,
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
        io: "auto",
        json: false,
        count: 2,
        ack: utf8("ok ✓"),
        fromStart: false,
        maxSize: 16777216,
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

Deno.test("parseSendArgs refuses a TTL other than 1 for an IPv6 group on the deno path", () => {
  assertUsageError(
    () => parseSendArgs(["-g", "ff02::1:3", "-t", "5", "--io", "deno"]),
    'Invalid --ttl "5" for an IPv6 group with --io deno: the runtime cannot set the hop limit, which stays 1',
  );
  for (const io of ["auto", "native"]) {
    const native = parseSendArgs(["-g", "ff02::1:3", "-t", "5", "--io", io]);
    assert.equal(native.action === "run" && native.options.ttl, 5);
  }
  const command = parseSendArgs(["-g", "ff02::1:3", "--ttl", "1"]);
  assert.equal(command.action === "run" && command.options.ttl, 1);
});

// ---------------------------------------------------------------------------
// Reliable mode

/** The options of `--reliable` alone. */
const RELIABLE: ReliableSendOptions = {
  lines: false,
  deadlineMs: 10000,
  bufferBytes: 8388608,
  window: 4096,
  dropSlow: false,
  maxSize: 16777216,
  mtu: 1400,
};

function reliableOptions(args: string[]): ReliableSendOptions {
  const reliable = sendOptions(["--reliable", ...args]).reliable;
  assert.ok(reliable !== undefined, "no reliable options");
  return reliable;
}

/** Asserts the error of `--name=value` for `mcast-send --reliable`. */
function assertReliableError(args: string[], message: string): void {
  assertUsageError(() => parseSendArgs(["--reliable", ...args]), message);
}

const SIZE_ERROR = (name: string, text: string, range: string) =>
  `Invalid --${name} "${text}": expected a size from ${range} (bytes, e.g. 65536, 500KB or 8MiB)`;

const RATE_ERROR = (name: string, text: string) =>
  `Invalid --${name} "${text}": expected bulletins per second from 1 to 1000000, or bytes per second from 1B to 100GB (e.g. 100, 500KB or 2MiB)`;

Deno.test("RELIABLE_DEFAULTS and MAX_RECEIVERS", () => {
  assert.deepEqual(RELIABLE_DEFAULTS, {
    deadlineSeconds: 10,
    bufferBytes: 8388608,
    window: 4096,
    maxSize: 16777216,
    mtu: 1400,
  });
  assert.equal(MAX_RECEIVERS, 100000);
});

Deno.test("parseSendArgs --reliable alone gives the reliable defaults", () => {
  assert.deepEqual(parseSendArgs(["--reliable"]), {
    action: "run",
    options: {
      group: DEFAULT_GROUP,
      port: 10000,
      interface: "127.0.0.1",
      io: "auto",
      json: false,
      payload: { kind: "text", text: "very important data" },
      ttl: 1,
      waitMs: 1000,
      reliable: RELIABLE,
    },
  });
  // Without --reliable there is no reliable key at all.
  assert.equal("reliable" in sendOptions([]), false);
});

Deno.test("parseSendArgs takes every reliable option in long form", () => {
  assert.deepEqual(
    parseSendArgs([
      "--reliable",
      "--group",
      "239.1.2.3",
      "--port",
      "5000",
      "--lines",
      "--file",
      "feed.txt",
      "--deadline",
      "2.5",
      "--receivers",
      "desk-1,desk-2",
      "--rate",
      "500KB",
      "--repair-rate",
      "100",
      "--buffer",
      "1MiB",
      "--window",
      "64",
      "--drop-slow",
      "--max-size",
      "2MB",
      "--mtu",
      "9000",
      "--journal",
      "journal/",
    ]),
    {
      action: "run",
      options: {
        group: { family: 4, address: "239.1.2.3" },
        port: 5000,
        interface: "127.0.0.1",
        io: "auto",
        json: false,
        payload: { kind: "file", path: "feed.txt" },
        ttl: 1,
        waitMs: 1000,
        reliable: {
          lines: true,
          deadlineMs: 2500,
          receivers: ["desk-1", "desk-2"],
          rate: { unit: "bytes", perSecond: 500000 },
          repairRate: { unit: "bulletins", perSecond: 100 },
          bufferBytes: 1048576,
          window: 64,
          dropSlow: true,
          maxSize: 2000000,
          mtu: 9000,
          journal: "journal/",
        },
      },
    },
  );
});

Deno.test("parseSendArgs takes reliable options as --opt=value and -l", () => {
  const options = sendOptions([
    "-l",
    "--reliable",
    "--deadline=0",
    "--receivers=a",
    "--rate=1",
    "--repair-rate=64KiB",
    "--buffer=65536",
    "--window=1000000",
    "--max-size=1",
    "--mtu=128",
    "--journal=j",
  ]);
  assert.deepEqual(options.payload, { kind: "stdin" });
  assert.deepEqual(options.reliable, {
    lines: true,
    deadlineMs: 0,
    receivers: ["a"],
    rate: { unit: "bulletins", perSecond: 1 },
    repairRate: { unit: "bytes", perSecond: 65536 },
    bufferBytes: 65536,
    window: 1000000,
    dropSlow: false,
    maxSize: 1,
    mtu: 128,
    journal: "j",
  });
  assert.equal(reliableOptions(["-l"]).lines, true);
  assert.equal(reliableOptions(["--lines"]).lines, true);
  assertUsageError(
    () => parseSendArgs(["--reliable", "--lines=yes"]),
    'Option "--lines" does not take a value',
  );
  assertUsageError(
    () => parseSendArgs(["--reliable", "--drop-slow=1"]),
    'Option "--drop-slow" does not take a value',
  );
  assertUsageError(
    () => parseSendArgs(["--reliable=1"]),
    'Option "--reliable" does not take a value',
  );
});

Deno.test("--lines reads standard input unless --file names the input", () => {
  assert.deepEqual(sendOptions(["--reliable", "--lines"]).payload, {
    kind: "stdin",
  });
  assert.deepEqual(sendOptions(["--reliable", "-l", "-f", "-"]).payload, {
    kind: "stdin",
  });
  assert.deepEqual(
    sendOptions(["--reliable", "-l", "-f", "news.txt"]).payload,
    { kind: "file", path: "news.txt" },
  );
  // Without --lines, --reliable sends one bulletin from the usual sources.
  assert.deepEqual(sendOptions(["--reliable", "-m", "flash"]).payload, {
    kind: "text",
    text: "flash",
  });
  assert.deepEqual(sendOptions(["--reliable", "-f", "-"]).payload, {
    kind: "stdin",
  });
  assertReliableError(
    ["--lines", "--message", "x"],
    'Options "--message" and "--lines" exclude each other',
  );
  assertReliableError(
    ["-m", "", "-l"],
    'Options "--message" and "--lines" exclude each other',
  );
  assertReliableError(["-l", "--file", ""], 'Invalid --file "": empty');
});

Deno.test("sender-only reliable options need --reliable", () => {
  for (
    const [args, name] of [
      [["--lines"], "lines"],
      [["-l"], "lines"],
      [["--deadline", "1"], "deadline"],
      [["--receivers", "a"], "receivers"],
      [["--rate", "1"], "rate"],
      [["--repair-rate", "1"], "repair-rate"],
      [["--buffer", "1MiB"], "buffer"],
      [["--window", "16"], "window"],
      [["--drop-slow"], "drop-slow"],
      [["--max-size", "100"], "max-size"],
      [["--mtu", "1400"], "mtu"],
      [["--journal", "j"], "journal"],
    ] as const
  ) {
    assertUsageError(
      () => parseSendArgs([...args]),
      `Option "--${name}" needs --reliable`,
    );
    // With --reliable before or after, the same arguments are accepted.
    assert.equal(parseSendArgs(["--reliable", ...args]).action, "run");
    assert.equal(parseSendArgs([...args, "--reliable"]).action, "run");
  }
  // The first offending option in argument order is named, whatever its
  // value, and before any other error.
  assertUsageError(
    () => parseSendArgs(["--mtu", "1", "--lines", "-m", "x"]),
    'Option "--mtu" needs --reliable',
  );
  assertUsageError(
    () => parseSendArgs(["-p", "0", "-l", "--mtu=1400"]),
    'Option "--lines" needs --reliable',
  );
  assertUsageError(
    () => parseSendArgs(["-e", "1", "--receivers=a,b"]),
    'Option "--receivers" needs --reliable',
  );
  // Help and version still win.
  assert.deepEqual(parseSendArgs(["--lines", "--help"]), { action: "help" });
  assert.deepEqual(parseSendArgs(["--mtu", "1", "-V"]), { action: "version" });
});

Deno.test("reliable options without their value are rejected", () => {
  for (
    const name of [
      "deadline",
      "receivers",
      "rate",
      "repair-rate",
      "buffer",
      "window",
      "max-size",
      "mtu",
      "journal",
    ]
  ) {
    assertReliableError([`--${name}`], `Option "--${name}" needs a value`);
  }
  assertReliableError(
    ["--rate", "-1"],
    'Option "--rate" needs a value (write --rate=-VALUE for a value that starts with "-")',
  );
});

Deno.test("reliable --expect counts receivers, 1 to 100000", () => {
  assert.equal(sendOptions(["--reliable", "--expect", "1"]).expect, 1);
  assert.equal(sendOptions(["--reliable", "-e", "100000"]).expect, 100000);
  for (const expect of ["0", "100001", "1000000", "x", "1.5", ""]) {
    assertReliableError(
      [`--expect=${expect}`],
      `Invalid --expect "${expect}": expected a whole number from 1 to 100000`,
    );
  }
  // Plain mode keeps its own limit.
  assert.equal(sendOptions(["-e", "1000000"]).expect, 1000000);
});

Deno.test("--expect and --receivers exclude each other", () => {
  assertReliableError(
    ["--expect", "2", "--receivers", "a,b"],
    'Options "--expect" and "--receivers" exclude each other',
  );
  assertReliableError(
    ["--receivers=a", "-e", "1"],
    'Options "--expect" and "--receivers" exclude each other',
  );
});

Deno.test("--deadline takes seconds from 0 to 86400", () => {
  assert.equal(reliableOptions([]).deadlineMs, 10000);
  assert.equal(reliableOptions(["--deadline", "0"]).deadlineMs, 0);
  assert.equal(reliableOptions(["--deadline", "0.001"]).deadlineMs, 1);
  assert.equal(reliableOptions(["--deadline", "86400"]).deadlineMs, 86400000);
  assert.equal(reliableOptions(["--deadline", "30"]).deadlineMs, 30000);
  for (
    const deadline of ["-1", "86401", "86400.001", "1.2345", "x", "", "1s"]
  ) {
    assertReliableError(
      [`--deadline=${deadline}`],
      `Invalid --deadline "${deadline}": expected seconds from 0 to 86400 (e.g. 1 or 0.5)`,
    );
  }
});

Deno.test("--receivers takes distinct valid names", () => {
  assert.deepEqual(reliableOptions(["--receivers", "desk-1"]).receivers, [
    "desk-1",
  ]);
  assert.deepEqual(
    reliableOptions(["--receivers", "desk-1,desk-2,Büro 3,東京"]).receivers,
    ["desk-1", "desk-2", "Büro 3", "東京"],
  );
  // 64 bytes: 32 two-byte characters; names are case-sensitive.
  const long = "é".repeat(32);
  assert.deepEqual(reliableOptions(["--receivers", `${long},A,a`]).receivers, [
    long,
    "A",
    "a",
  ]);
  const many = Array.from({ length: MAX_RECEIVERS }, (_, k) => `r${k}`);
  assert.equal(
    reliableOptions(["--receivers", many.join(",")]).receivers?.length,
    100000,
  );
  const tooMany = [...many, "r100000"].join(",");
  assertReliableError(
    ["--receivers", tooMany],
    `Invalid --receivers "${tooMany}": 100001 names (at most 100000)`,
  );
  for (
    const [text, problem] of [
      ["", "empty name"],
      [",", "empty name"],
      ["a,", "empty name"],
      [",a", "empty name"],
      ["a,,b", "empty name"],
      ["a,b,a", 'name "a" given twice'],
      ["x,x", 'name "x" given twice'],
      [`a,${long}é`, `name "${long}é": 66 bytes (at most 64 in UTF-8)`],
      [
        "a".repeat(65),
        `name "${"a".repeat(65)}": 65 bytes (at most 64 in UTF-8)`,
      ],
      ["a, b", 'name " b": space at the start or end'],
      ["a ,b", 'name "a ": space at the start or end'],
      ["a\tb", 'name "a\tb": control or format character U+0009'],
      ["a\u0000", 'name "a\u0000": control or format character U+0000'],
      ["a\u202eb", 'name "a\u202eb": control or format character U+202E'],
      ["a\u2028", 'name "a\u2028": control or format character U+2028'],
      ["a\ud800", 'name "a\ud800": lone surrogate U+D800'],
    ] as const
  ) {
    assertReliableError(
      [`--receivers=${text}`],
      `Invalid --receivers "${text}": ${problem}`,
    );
  }
});

Deno.test("parseSize takes bytes with 1000- and 1024-based units", () => {
  const range = { min: 0, max: Number.MAX_SAFE_INTEGER };
  for (
    const [text, bytes] of [
      ["0", 0],
      ["4096", 4096],
      ["007", 7],
      ["100B", 100],
      ["100b", 100],
      ["1K", 1000],
      ["1KB", 1000],
      ["1kb", 1000],
      ["1kB", 1000],
      ["500KB", 500000],
      ["1Ki", 1024],
      ["64KiB", 65536],
      ["64kib", 65536],
      ["64KIB", 65536],
      ["2M", 2000000],
      ["2MB", 2000000],
      ["1Mi", 1048576],
      ["8MiB", 8388608],
      ["1G", 1000000000],
      ["1GB", 1000000000],
      ["1Gi", 1073741824],
      ["1GiB", 1073741824],
      ["4GB", 4000000000],
    ] as const
  ) {
    assert.equal(parseSize("buffer", text, range), bytes, text);
  }
  for (
    const text of [
      "",
      "B",
      "KB",
      "KiB",
      "1.5MB",
      "1.5",
      ".5K",
      "-1",
      "+1",
      "1 KB",
      " 1",
      "1 ",
      "1KBB",
      "1BB",
      "1iB",
      "1i",
      "1T",
      "1TB",
      "1kbit",
      "1e3",
      "0x10",
      "1,000",
      "1_000",
      "Infinity",
    ]
  ) {
    assertUsageError(
      () => parseSize("size", text, { min: 0, max: 1000 }),
      SIZE_ERROR("size", text, "0B to 1KB"),
    );
  }
  // Range bounds, shown in the unit that fits them exactly.
  const buffer = { min: 65536, max: 1073741824 };
  assert.equal(parseSize("buffer", "65536", buffer), 65536);
  assert.equal(parseSize("buffer", "1073741824", buffer), 1073741824);
  for (const text of ["65535", "1073741825", "1048577KiB", "2GB", "64KB"]) {
    assertUsageError(
      () => parseSize("buffer", text, buffer),
      SIZE_ERROR("buffer", text, "64KiB to 1GiB"),
    );
  }
  // Values too large for exact arithmetic are out of range, not rounded.
  assertUsageError(
    () => parseSize("n", "999999999999999GiB", range),
    SIZE_ERROR("n", "999999999999999GiB", "0B to 9007199254740991B"),
  );
});

Deno.test("formatSize picks the exact unit with the fewest digits", () => {
  for (
    const [bytes, text] of [
      [0, "0B"],
      [1, "1B"],
      [999, "999B"],
      [1000, "1KB"],
      [1024, "1KiB"],
      [1500, "1500B"],
      [65536, "64KiB"],
      [2000000, "2MB"],
      [8388608, "8MiB"],
      [16777216, "16MiB"],
      [1073741824, "1GiB"],
      [100000000000, "100GB"],
      [4294967295, "4294967295B"],
    ] as const
  ) {
    assert.equal(formatSize(bytes), text);
    if (bytes > 0) {
      assert.equal(parseSize("x", text, { min: 0, max: 2 ** 40 }), bytes);
    }
  }
});

Deno.test("--buffer takes sizes from 64KiB to 1GiB", () => {
  assert.equal(reliableOptions([]).bufferBytes, 8388608);
  assert.equal(reliableOptions(["--buffer", "64KiB"]).bufferBytes, 65536);
  assert.equal(reliableOptions(["--buffer", "65536"]).bufferBytes, 65536);
  assert.equal(reliableOptions(["--buffer", "1GiB"]).bufferBytes, 1073741824);
  assert.equal(reliableOptions(["--buffer", "100MB"]).bufferBytes, 100000000);
  for (
    const text of [
      "65535",
      "64KB",
      "1073741825",
      "2GB",
      "0",
      "-1",
      "",
      "1.5MiB",
    ]
  ) {
    assertReliableError(
      [`--buffer=${text}`],
      SIZE_ERROR("buffer", text, "64KiB to 1GiB"),
    );
  }
});

Deno.test("--max-size takes sizes from 1 to 4294967295 bytes, in both tools", () => {
  assert.equal(reliableOptions([]).maxSize, 16777216);
  assert.equal(recvOptions([]).maxSize, 16777216);
  for (
    const [text, bytes] of [
      ["1", 1],
      ["1B", 1],
      ["4294967295", 4294967295],
      ["4GB", 4000000000],
      ["100MiB", 104857600],
    ] as const
  ) {
    // --lines: no --message, whose default is 19 bytes.
    assert.equal(reliableOptions(["-l", "--max-size", text]).maxSize, bytes);
    assert.equal(recvOptions(["--max-size", text]).maxSize, bytes);
  }
  for (const text of ["0", "0B", "4294967296", "4GiB", "5GB", "", "x", "1.0"]) {
    const message = SIZE_ERROR("max-size", text, "1B to 4294967295B");
    assertReliableError([`--max-size=${text}`], message);
    assertUsageError(() => parseRecvArgs([`--max-size=${text}`]), message);
  }
});

Deno.test("--window takes 16 to 1000000 packets", () => {
  assert.equal(reliableOptions([]).window, 4096);
  assert.equal(reliableOptions(["--window", "16"]).window, 16);
  assert.equal(reliableOptions(["--window", "1000000"]).window, 1000000);
  for (const text of ["15", "1000001", "0", "4k", "1.5", "", "x", "-16"]) {
    assertReliableError(
      [`--window=${text}`],
      `Invalid --window "${text}": expected a whole number from 16 to 1000000`,
    );
  }
});

Deno.test("--mtu takes 128 to 65507 bytes", () => {
  assert.equal(reliableOptions([]).mtu, 1400);
  assert.equal(reliableOptions(["--mtu", "128"]).mtu, 128);
  assert.equal(reliableOptions(["--mtu", "65507"]).mtu, 65507);
  for (const text of ["127", "65508", "0", "1.4K", "1KB", "", "x"]) {
    assertReliableError(
      [`--mtu=${text}`],
      `Invalid --mtu "${text}": expected a whole number from 128 to 65507`,
    );
  }
});

Deno.test("--rate and --repair-rate: bulletins, or bytes with a unit", () => {
  assert.equal(reliableOptions([]).rate, undefined);
  assert.equal("rate" in reliableOptions([]), false);
  assert.equal("repairRate" in reliableOptions([]), false);
  for (
    const [text, rate] of [
      ["1", { unit: "bulletins", perSecond: 1 }],
      ["100", { unit: "bulletins", perSecond: 100 }],
      ["1000000", { unit: "bulletins", perSecond: 1000000 }],
      ["1B", { unit: "bytes", perSecond: 1 }],
      ["100B", { unit: "bytes", perSecond: 100 }],
      ["500KB", { unit: "bytes", perSecond: 500000 }],
      ["500k", { unit: "bytes", perSecond: 500000 }],
      ["2MB", { unit: "bytes", perSecond: 2000000 }],
      ["1MiB", { unit: "bytes", perSecond: 1048576 }],
      ["64KiB", { unit: "bytes", perSecond: 65536 }],
      ["64ki", { unit: "bytes", perSecond: 65536 }],
      ["1GiB", { unit: "bytes", perSecond: 1073741824 }],
      ["100GB", { unit: "bytes", perSecond: 100000000000 }],
      // A unit makes it bytes, even above the bulletin limit.
      ["2000000B", { unit: "bytes", perSecond: 2000000 }],
    ] as const
  ) {
    assert.deepEqual(parseRate("rate", text), rate, text);
    assert.deepEqual(reliableOptions(["--rate", text]).rate, rate);
    assert.deepEqual(reliableOptions(["--repair-rate", text]).repairRate, rate);
  }
  for (
    const text of [
      "0",
      "0B",
      "0KB",
      "1000001",
      "101GB",
      "100GiB",
      "1.5",
      "0.5",
      "1.5MB",
      "-5",
      "",
      "10/s",
      "1 MB",
      "1TB",
      "fast",
    ]
  ) {
    assertUsageError(() => parseRate("rate", text), RATE_ERROR("rate", text));
    assertReliableError([`--rate=${text}`], RATE_ERROR("rate", text));
    assertReliableError(
      [`--repair-rate=${text}`],
      RATE_ERROR("repair-rate", text),
    );
  }
});

Deno.test("--drop-slow and --journal", () => {
  assert.equal(reliableOptions([]).dropSlow, false);
  assert.equal(reliableOptions(["--drop-slow"]).dropSlow, true);
  assert.equal("journal" in reliableOptions([]), false);
  assert.equal(
    reliableOptions(["--journal", "/var/lib/mcast"]).journal,
    "/var/lib/mcast",
  );
  assertReliableError(["--journal", ""], 'Invalid --journal "": empty');
  assertReliableError(["--journal="], 'Invalid --journal "": empty');
});

Deno.test("reliable --message may be up to --max-size bytes", () => {
  const big = "x".repeat(65508);
  assert.deepEqual(sendOptions(["--reliable", "-m", big]).payload, {
    kind: "text",
    text: big,
  });
  assert.deepEqual(
    sendOptions(["--reliable", "--max-size", "10", "-m", "0123456789"])
      .payload,
    { kind: "text", text: "0123456789" },
  );
  assertReliableError(
    ["--max-size", "10", "-m", "01234567890"],
    "Payload from --message is too large: 11 bytes (--max-size is 10)",
  );
  // The default message is checked too; UTF-8 bytes count.
  assertReliableError(
    ["--max-size", "18"],
    "Payload from --message is too large: 19 bytes (--max-size is 18)",
  );
  assertReliableError(
    ["--max-size", "3", "-m", "éé"],
    "Payload from --message is too large: 4 bytes (--max-size is 3)",
  );
  checkPayloadSize("--file", 16777216, 16777216);
  checkPayloadSize("--file", 70000, 16777216);
  assertUsageError(
    () => checkPayloadSize("--file", 16777217, 16777216),
    "Payload from --file is too large: 16777217 bytes (--max-size is 16777216)",
  );
});

Deno.test("reliable mode works with IPv6 groups and keeps the plain checks", () => {
  const options = sendOptions(["--reliable", "-g", "ff02::1:3", "-i", "veth0"]);
  assert.deepEqual(options.group, { family: 6, address: "ff02::1:3" });
  assert.deepEqual(options.reliable, RELIABLE);
  assertReliableError(
    ["-g", "ff02::1:3", "-t", "2", "--io", "deno"],
    'Invalid --ttl "2" for an IPv6 group with --io deno: the runtime cannot set the hop limit, which stays 1',
  );
  assertReliableError(
    ["-m", "x", "-f", "y"],
    'Options "--message" and "--file" exclude each other',
  );
  assertReliableError(
    ["-p", "0"],
    'Invalid --port "0": expected a whole number from 1 to 65535',
  );
});

Deno.test("parseRecvArgs takes every reliable option", () => {
  assert.deepEqual(
    parseRecvArgs([
      "--name",
      "desk-1",
      "--output",
      "inbox/",
      "--state",
      "desk-1.state",
      "--from-start",
      "--max-size",
      "64MiB",
    ]),
    {
      action: "run",
      options: {
        group: DEFAULT_GROUP,
        port: 10000,
        interface: "127.0.0.1",
        io: "auto",
        json: false,
        ack: utf8("ack"),
        name: "desk-1",
        output: "inbox/",
        state: "desk-1.state",
        fromStart: true,
        maxSize: 67108864,
      },
    },
  );
  const options = recvOptions(["--name=Büro 3", "--output=o", "--state=s"]);
  assert.equal(options.name, "Büro 3");
  assert.equal(options.output, "o");
  assert.equal(options.state, "s");
  assert.equal(options.fromStart, false);
  for (const key of ["name", "output", "state"]) {
    assert.equal(key in recvOptions([]), false, key);
  }
  assertUsageError(
    () => parseRecvArgs(["--from-start=yes"]),
    'Option "--from-start" does not take a value',
  );
  for (const name of ["name", "output", "state", "max-size"]) {
    assertUsageError(
      () => parseRecvArgs([`--${name}`]),
      `Option "--${name}" needs a value`,
    );
  }
  assertUsageError(
    () => parseRecvArgs(["--output", ""]),
    'Invalid --output "": empty',
  );
  assertUsageError(
    () => parseRecvArgs(["--state="]),
    'Invalid --state "": empty',
  );
});

Deno.test("--name: 1-64 bytes of UTF-8, printable, no comma, no edge space", () => {
  for (
    const name of [
      "a",
      "desk-1",
      "a b",
      "東京",
      "x".repeat(64),
      "é".repeat(32),
      "😀".repeat(16),
      "host.example-3f2a",
    ]
  ) {
    assert.equal(recvOptions(["--name", name]).name, name);
  }
  for (
    const [name, problem] of [
      ["", "empty"],
      ["x".repeat(65), "65 bytes (at most 64 in UTF-8)"],
      ["é".repeat(33), "66 bytes (at most 64 in UTF-8)"],
      ["😀".repeat(17), "68 bytes (at most 64 in UTF-8)"],
      ["a\nb", "control or format character U+000A"],
      ["a\u001b[31m", "control or format character U+001B"],
      ["a\u007f", "control or format character U+007F"],
      ["a\u0085", "control or format character U+0085"],
      ["a\u200bb", "control or format character U+200B"],
      ["\u202ea", "control or format character U+202E"],
      ["a\u2029", "control or format character U+2029"],
      ["a\udc00b", "lone surrogate U+DC00"],
      [" a", "space at the start or end"],
      ["a ", "space at the start or end"],
      ["a\u00a0", "space at the start or end"],
      ["a,b", "comma in the name"],
      [",", "comma in the name"],
    ] as const
  ) {
    assertUsageError(
      () => parseRecvArgs([`--name=${name}`]),
      `Invalid --name "${name}": ${problem}`,
    );
  }
});

Deno.test("each tool rejects the other's reliable options", () => {
  for (
    const option of [
      "--reliable",
      "--lines",
      "--deadline",
      "--receivers",
      "--rate",
      "--repair-rate",
      "--buffer",
      "--window",
      "--drop-slow",
      "--mtu",
      "--journal",
    ]
  ) {
    assertUsageError(
      () => parseRecvArgs([option]),
      `Unknown option "${option}"`,
    );
  }
  assertUsageError(() => parseRecvArgs(["-l"]), 'Unknown option "-l"');
  for (const option of ["--name", "--output", "--state", "--from-start"]) {
    assertUsageError(
      () => parseSendArgs(["--reliable", option]),
      `Unknown option "${option}"`,
    );
  }
});

Deno.test("--gen-key and --gen-sign-key name the file to write, and are used alone", () => {
  assert.deepEqual(parseSendArgs(["--gen-key", "agency.key"]), {
    action: "gen-key",
    path: "agency.key",
    kind: "group",
  });
  assert.deepEqual(parseSendArgs(["--gen-sign-key=dir/sign.key"]), {
    action: "gen-key",
    path: "dir/sign.key",
    kind: "ed25519",
  });
  // The last of a repeated option counts, as for every option.
  assert.deepEqual(parseSendArgs(["--gen-key", "a", "--gen-key", "b"]), {
    action: "gen-key",
    path: "b",
    kind: "group",
  });
  for (
    const [args, which, other] of [
      [["--gen-key", "k", "--reliable"], "gen-key", "reliable"],
      [["--reliable", "--gen-key", "k"], "gen-key", "reliable"],
      [["-m", "x", "--gen-key", "k"], "gen-key", "message"],
      [["--gen-key", "k", "-g", "239.1.2.3"], "gen-key", "group"],
      [["--gen-key", "k", "--key-file", "k"], "gen-key", "key-file"],
      [["--gen-key", "a", "--gen-sign-key", "b"], "gen-key", "gen-sign-key"],
      [["--gen-sign-key", "b", "--gen-key", "a"], "gen-sign-key", "gen-key"],
      [["--gen-sign-key", "s", "--encrypt"], "gen-sign-key", "encrypt"],
      [["--json", "--gen-sign-key", "s"], "gen-sign-key", "json"],
    ] as const
  ) {
    assertUsageError(
      () => parseSendArgs([...args]),
      `Option "--${which}" is used alone: it writes a key file and exits (not with "--${other}")`,
    );
  }
  assertUsageError(
    () => parseSendArgs(["--gen-key", ""]),
    'Invalid --gen-key "": empty',
  );
  assertUsageError(
    () => parseSendArgs(["--gen-sign-key="]),
    'Invalid --gen-sign-key "": empty',
  );
  assertUsageError(
    () => parseSendArgs(["--gen-key"]),
    'Option "--gen-key" needs a value',
  );
  assertUsageError(
    () => parseSendArgs(["--gen-key", "-k"]),
    'Option "--gen-key" needs a value (write --gen-key=-VALUE for a value that starts with "-")',
  );
  // Help and version still win.
  assert.deepEqual(parseSendArgs(["--gen-key", "k", "-h"]), {
    action: "help",
  });
  assert.deepEqual(parseSendArgs(["--gen-sign-key", "s", "-V"]), {
    action: "version",
  });
  // The receiver writes no keys.
  for (const option of ["--gen-key", "--gen-sign-key"]) {
    assertUsageError(
      () => parseRecvArgs([option, "k"]),
      `Unknown option "${option}"`,
    );
  }
});

Deno.test("sender key options: --key-file (with --reliable), --encrypt, --sign-key, --max-skew", () => {
  const plain = sendOptions(["--reliable"]);
  assert.equal(plain.keys, undefined);
  assert.equal("keys" in plain, false);
  assert.deepEqual(
    sendOptions(["--reliable", "--key-file", "agency.key"]).keys,
    {
      keyFile: "agency.key",
      encrypt: false,
      trust: [],
      allowPlain: false,
      maxSkewMs: 10_000,
    },
  );
  const all = sendOptions([
    "--max-skew",
    "2.5",
    "--encrypt",
    "--reliable",
    "--sign-key",
    "sign.key",
    "--key-file=agency.key",
  ]);
  assert.deepEqual(all.keys, {
    keyFile: "agency.key",
    encrypt: true,
    signKey: "sign.key",
    trust: [],
    allowPlain: false,
    maxSkewMs: 2500,
  });
  // The reliable options are the same with keys as without.
  assert.deepEqual(all.reliable, plain.reliable);
  // Key files are read when the tool runs, not when parsing.
  assert.equal(
    sendOptions(["--reliable", "--key-file", "/no/such/file"]).keys?.keyFile,
    "/no/such/file",
  );
});

Deno.test("sender key options need --key-file, and --key-file needs --reliable", () => {
  for (
    const [args, message] of [
      [["--key-file", "k"], 'Option "--key-file" needs --reliable'],
      [
        ["--key-file", "k", "--encrypt"],
        'Option "--key-file" needs --reliable',
      ],
      [["--encrypt", "--key-file", "k"], 'Option "--encrypt" needs --reliable'],
      [["--encrypt"], 'Option "--encrypt" needs --key-file'],
      [["--sign-key", "s"], 'Option "--sign-key" needs --key-file'],
      [["--max-skew", "5"], 'Option "--max-skew" needs --key-file'],
      [["--reliable", "--encrypt"], 'Option "--encrypt" needs --key-file'],
      [
        ["--reliable", "--sign-key", "s"],
        'Option "--sign-key" needs --key-file',
      ],
      [
        ["--reliable", "--max-skew", "5"],
        'Option "--max-skew" needs --key-file',
      ],
      [["--reliable", "--key-file", ""], 'Invalid --key-file "": empty'],
      [
        ["--reliable", "--key-file", "k", "--sign-key", ""],
        'Invalid --sign-key "": empty',
      ],
      [["--reliable", "--key-file"], 'Option "--key-file" needs a value'],
      [
        ["--reliable", "--key-file", "k", "--encrypt=yes"],
        'Option "--encrypt" does not take a value',
      ],
      // Receiver options are not the sender's.
      [
        ["--reliable", "--key-file", "k", "--trust", "t"],
        'Unknown option "--trust"',
      ],
      [
        ["--reliable", "--key-file", "k", "--allow-plain"],
        'Unknown option "--allow-plain"',
      ],
    ] as const
  ) {
    assertUsageError(() => parseSendArgs([...args]), message);
  }
  // Help and version still win.
  assert.deepEqual(parseSendArgs(["--encrypt", "--help"]), { action: "help" });
  assert.deepEqual(parseSendArgs(["--key-file", "k", "-V"]), {
    action: "version",
  });
});

Deno.test("receiver key options: --key-file, --trust (repeatable), --allow-plain, --max-skew", () => {
  const plain = recvOptions([]);
  assert.equal("keys" in plain, false);
  assert.deepEqual(recvOptions(["--key-file", "agency.key"]).keys, {
    keyFile: "agency.key",
    encrypt: false,
    trust: [],
    allowPlain: false,
    maxSkewMs: 10_000,
  });
  assert.deepEqual(
    recvOptions([
      "--trust",
      "a.pub",
      "--key-file",
      "agency.key",
      "--allow-plain",
      "--trust=" + "0f".repeat(32),
      "--max-skew",
      "1",
      "--trust",
      "a.pub",
    ]).keys,
    {
      keyFile: "agency.key",
      encrypt: false,
      trust: ["a.pub", "0f".repeat(32), "a.pub"],
      allowPlain: true,
      maxSkewMs: 1000,
    },
  );
  for (
    const [args, message] of [
      [["--trust", "a.pub"], 'Option "--trust" needs --key-file'],
      [["--allow-plain"], 'Option "--allow-plain" needs --key-file'],
      [["--max-skew", "3"], 'Option "--max-skew" needs --key-file'],
      [
        ["--allow-plain", "--trust", "t"],
        'Option "--allow-plain" needs --key-file',
      ],
      [["--key-file", ""], 'Invalid --key-file "": empty'],
      [["--key-file", "k", "--trust", ""], 'Invalid --trust "": empty'],
      [["--key-file", "k", "--trust"], 'Option "--trust" needs a value'],
      [
        ["--key-file", "k", "--allow-plain=1"],
        'Option "--allow-plain" does not take a value',
      ],
      // Sender options are not the receiver's.
      [["--key-file", "k", "--encrypt"], 'Unknown option "--encrypt"'],
      [["--key-file", "k", "--sign-key", "s"], 'Unknown option "--sign-key"'],
    ] as const
  ) {
    assertUsageError(() => parseRecvArgs([...args]), message);
  }
  assert.deepEqual(parseRecvArgs(["--trust", "t", "-h"]), { action: "help" });
});

Deno.test("--max-skew takes seconds from 1 to 86400, in both tools", () => {
  for (
    const [text, ms] of [
      ["1", 1000],
      ["1.5", 1500],
      ["10", 10_000],
      ["86400", 86_400_000],
    ] as const
  ) {
    assert.equal(
      sendOptions(["--reliable", "--key-file", "k", "--max-skew", text]).keys
        ?.maxSkewMs,
      ms,
    );
    assert.equal(
      recvOptions(["--key-file", "k", "--max-skew", text]).keys?.maxSkewMs,
      ms,
    );
  }
  for (const text of ["0", "0.5", "0.999"]) {
    const message =
      `Invalid --max-skew "${text}": expected seconds from 1 to 86400`;
    assertUsageError(
      () =>
        parseSendArgs(["--reliable", "--key-file", "k", "--max-skew", text]),
      message,
    );
    assertUsageError(
      () => parseRecvArgs(["--key-file", "k", "--max-skew", text]),
      message,
    );
  }
});

Deno.test("--max-skew out of range names the range it takes, whatever the value", () => {
  // "from 0" would invite the 0 that is refused next.
  for (const text of ["86401", "abc", "", "1e3", "1.0001"]) {
    assertUsageError(
      () => parseRecvArgs(["--key-file", "k", `--max-skew=${text}`]),
      `Invalid --max-skew "${text}": expected seconds from 1 to 86400`,
    );
  }
});

// ---------------------------------------------------------------------------
// I/O path and source-specific multicast

Deno.test("--io takes auto, native and deno on both tools, and nothing else", () => {
  for (const parse of [parseSendArgs, parseRecvArgs]) {
    for (const io of ["auto", "native", "deno"]) {
      const command = parse(["--io", io]);
      assert.equal(command.action === "run" && command.options.io, io);
    }
    assertUsageError(
      () => parse(["--io", "fast"]),
      'Invalid --io "fast": expected auto, native, deno',
    );
  }
});

Deno.test("--source takes a unicast address of the group's family", () => {
  const v4 = parseRecvArgs(["-g", "232.1.1.1", "--source", "127.0.0.1"]);
  assert.equal(v4.action === "run" && v4.options.source, "127.0.0.1");
  const v6 = parseRecvArgs([
    "-g",
    "ff3e::1",
    "-i",
    "veth0",
    "--source",
    "fd00::1",
  ]);
  assert.equal(v6.action === "run" && v6.options.source, "fd00::1");
  assertUsageError(
    () => parseRecvArgs(["--source", "localhost"]),
    'Invalid --source "localhost": expected an IPv4 unicast address',
  );
  assertUsageError(
    () => parseRecvArgs(["--source", "fd00::1"]),
    'Invalid --source "fd00::1": an IPv6 address for an IPv4 group',
  );
  assertUsageError(
    () => parseRecvArgs(["--source", "224.2.2.2"]),
    'Invalid --source "224.2.2.2": expected a unicast address, the sender\'s',
  );
  assertUsageError(
    () => parseRecvArgs(["--source", "127.0.0.1", "--io", "deno"]),
    'Option "--source" needs the native path (--io native or auto): the runtime\'s sockets cannot join a source-specific group',
  );
});

Deno.test("--standby, --takeover and --max-sessions: defaults, values and bad input", () => {
  assert.equal(reliableOptions([]).standby, undefined);
  assert.equal(reliableOptions([]).takeoverMs, undefined);
  const standby = reliableOptions(["--standby"]);
  assert.equal(standby.standby, true);
  assert.equal(standby.takeoverMs, 1000);
  assert.equal(
    reliableOptions(["--standby", "--takeover", "0.25"]).takeoverMs,
    250,
  );
  assertUsageError(
    () => parseSendArgs(["--standby"]),
    'Option "--standby" needs --reliable',
  );
  assertUsageError(
    () => parseSendArgs(["--reliable", "--takeover", "2"]),
    'Option "--takeover" needs --standby',
  );
  assertUsageError(
    () => parseSendArgs(["--reliable", "--standby", "--takeover", "0.05"]),
    'Invalid --takeover "0.05": at least 0.1 seconds (the primary\'s heartbeats come every 50 ms)',
  );
  assertUsageError(
    () => parseSendArgs(["--reliable", "--standby", "--journal", "j"]),
    'Options "--standby" and "--journal" exclude each other',
  );
  assert.equal(recvOptions([]).maxSessions, undefined);
  assert.equal(recvOptions(["--max-sessions", "2"]).maxSessions, 2);
  for (const bad of ["0", "65", "x"]) {
    assertUsageError(
      () => parseRecvArgs(["--max-sessions", bad]),
      `Invalid --max-sessions "${bad}": expected a whole number from 1 to 64`,
    );
  }
});
