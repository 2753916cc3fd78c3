import assert from "node:assert/strict";
import { RECV_HELP, SEND_HELP } from "../../lib/cli/help.ts";
import {
  formatSize,
  parseRecvArgs,
  parseSendArgs,
  parseSize,
  RELIABLE_DEFAULTS,
} from "../../lib/cli/options.ts";

const COMMON_OPTIONS = [
  "-g, --group ADDR",
  "-p, --port N",
  "-i, --interface IF",
  "    --json",
  "    --io PATH",
  "-h, --help",
  "-V, --version",
];

const SEND_OPTIONS = [
  "-m, --message TEXT",
  "-f, --file PATH",
  "-t, --ttl N",
  "-w, --wait SECONDS",
  "-e, --expect N",
];

const SEND_RELIABLE_OPTIONS = [
  "    --reliable",
  "-l, --lines",
  "    --deadline SECONDS",
  "    --receivers NAMES",
  "    --rate RATE",
  "    --repair-rate RATE",
  "    --buffer SIZE",
  "    --window PACKETS",
  "    --drop-slow",
  "    --max-size SIZE",
  "    --mtu BYTES",
  "    --journal DIR",
  "    --standby",
  "    --takeover SECONDS",
  "    --gen-key PATH",
  "    --gen-sign-key PATH",
  "    --key-file PATH",
  "    --encrypt",
  "    --sign-key PATH",
  "    --max-skew SECONDS",
];

const RECV_OPTIONS = [
  "-c, --count N",
  "    --ack TEXT",
  "    --no-ack",
  "    --source ADDR",
];

const RECV_RELIABLE_OPTIONS = [
  "    --name NAME",
  "    --output DIR",
  "    --state FILE",
  "    --from-start",
  "    --max-size SIZE",
  "    --max-sessions N",
  "    --key-file PATH",
  "    --trust KEY",
  "    --allow-plain",
  "    --max-skew SECONDS",
];

/** The option lines of a help text: `  -x, --long ARG   description`. */
function optionLines(help: string): string[] {
  return help.split("\n").filter((line) => /^ {2}(-\w,| {3}) --\w/.test(line));
}

/** An option's line and its continuation lines, joined by spaces. */
function optionBlock(help: string, long: string): string {
  const lines = help.split("\n");
  const start = lines.findIndex((line) =>
    /^ {2}(-\w,| {3}) --/.test(line) &&
    line.slice(6).split(" ")[0] === long
  );
  assert.ok(start >= 0, `no option line for ${long}`);
  const block = [lines[start]!];
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith(" ".repeat(25))) break;
    block.push(line.trim());
  }
  return block.join(" ");
}

/** Where each heading starts in `help`, asserting that each is there once. */
function headingOffsets(help: string, headings: string[]): number[] {
  return headings.map((heading) => {
    const at = help.indexOf(`\n${heading}`);
    assert.ok(at >= 0, `no heading ${heading}`);
    assert.equal(help.indexOf(`\n${heading}`, at + 1), -1, heading);
    return at;
  });
}

/** Splits a command line into words, honouring double quotes. */
function words(command: string): string[] {
  return [...command.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

/** The argument lists of the `Examples:` section for `tool`. */
function examples(help: string, tool: string): string[][] {
  const section = help.split("\nExamples:\n")[1];
  assert.ok(section !== undefined, "no Examples: section");
  return section.split("\n").filter((line) => line.trim() !== "").map(
    (line) => {
      // Command and description are separated by two or more spaces.
      const command = line.trim().split(/ {2,}/)[0]!;
      const index = command.indexOf(tool);
      assert.ok(index >= 0, `example without ${tool}: ${line}`);
      return words(command.slice(index + tool.length));
    },
  );
}

Deno.test("SEND_HELP lists every option of mcast-send, long and short", () => {
  assert.ok(SEND_HELP.startsWith("Usage: mcast-send [OPTIONS]\n"));
  for (
    const option of [
      ...COMMON_OPTIONS,
      ...SEND_OPTIONS,
      ...SEND_RELIABLE_OPTIONS,
    ]
  ) {
    assert.ok(
      optionLines(SEND_HELP).some((line) => line.startsWith(`  ${option}`)),
      `missing ${option}`,
    );
  }
  assert.equal(optionLines(SEND_HELP).length, 32);
  for (
    const other of [
      "--count",
      "--ack",
      "--no-ack",
      "--name",
      "--output",
      "--state",
      "--from-start",
    ]
  ) {
    assert.equal(SEND_HELP.includes(other), false, other);
  }
});

Deno.test("RECV_HELP lists every option of mcast-recv, long and short", () => {
  assert.ok(RECV_HELP.startsWith("Usage: mcast-recv [OPTIONS]\n"));
  for (
    const option of [
      ...COMMON_OPTIONS,
      ...RECV_OPTIONS,
      ...RECV_RELIABLE_OPTIONS,
    ]
  ) {
    assert.ok(
      optionLines(RECV_HELP).some((line) => line.startsWith(`  ${option}`)),
      `missing ${option}`,
    );
  }
  assert.equal(optionLines(RECV_HELP).length, 21);
  for (
    const other of [
      "--message",
      "--file",
      "--ttl",
      "--wait",
      "--expect",
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
    assert.equal(RECV_HELP.includes(other), false, other);
  }
});

Deno.test("every option the help lists is one the parser knows", () => {
  for (
    const [help, parse] of [
      [SEND_HELP, parseSendArgs],
      [RECV_HELP, parseRecvArgs],
    ] as const
  ) {
    for (const line of optionLines(help)) {
      const match = /^ {2}(?:(-\w), | {4})(--[\w-]+)(?: (\S+))?/.exec(line);
      assert.ok(match, line);
      const [, short, long, argument] = match;
      const value = argument === undefined ? [] : ["1"];
      // Every sender option is accepted with --reliable.
      const mode = parse === parseSendArgs ? ["--reliable"] : [];
      for (const flag of short === undefined ? [long!] : [short, long!]) {
        try {
          parse([...mode, flag, ...value]);
        } catch (error) {
          // Values like "1" may be invalid for some options; unknown is not.
          assert.doesNotMatch(
            String(error),
            /Unknown option|does not take|needs --reliable/,
          );
        }
      }
    }
  }
});

Deno.test("both helps show the defaults", () => {
  for (const help of [SEND_HELP, RECV_HELP]) {
    assert.ok(help.includes("(default 224.1.1.1)"));
    assert.ok(help.includes("(default 10000)"));
    assert.ok(help.includes("(default 127.0.0.1"));
  }
  assert.ok(SEND_HELP.includes('(default "very important data")'));
  assert.ok(SEND_HELP.includes("(default 1:"));
  assert.ok(SEND_HELP.includes("65507"));
  assert.ok(RECV_HELP.includes('(default "ack")'));
  for (const help of [SEND_HELP, RECV_HELP]) {
    assert.ok(help.includes("or auto (native where\n"));
  }
});

Deno.test("both helps have a Reliable mode section before the exit status", () => {
  for (
    const [help, mode] of [
      [SEND_HELP, "Reliable mode:\n"],
      [RECV_HELP, "Reliable mode (frames from mcast-send --reliable"],
    ] as const
  ) {
    const offsets = headingOffsets(help, [
      "Options:\n",
      mode,
      "SIZE is",
      "Exit status:",
      "Examples:\n",
    ]);
    assert.deepEqual(offsets, [...offsets].sort((x, y) => x - y));
    // The plain options come first, the reliable ones after the heading.
    const reliable = help.indexOf(mode);
    assert.ok(help.indexOf("--json") < reliable);
    assert.ok(help.indexOf("--version") < reliable);
  }
  assert.ok(
    SEND_HELP.includes(
      "With --reliable, --expect N waits for N receivers (1-100000)",
    ),
  );
  for (const help of [SEND_HELP, RECV_HELP]) {
    assert.ok(
      help.includes(
        "SIZE is a number of bytes, optionally with a unit: K, M, G (1000-based) or\nKi, Mi, Gi (1024-based), B optional (500KB, 64KiB, 8MiB).",
      ),
    );
  }
});

Deno.test("the reliable options show their defaults, which parse back", () => {
  const deadline = optionBlock(SEND_HELP, "--deadline");
  assert.ok(
    deadline.endsWith(`(default ${RELIABLE_DEFAULTS.deadlineSeconds})`),
  );
  assert.ok(optionBlock(SEND_HELP, "--window").endsWith("(default 4096)"));
  assert.ok(optionBlock(SEND_HELP, "--mtu").endsWith("(default 1400)"));
  assert.ok(optionBlock(SEND_HELP, "--rate").endsWith("(default: no limit)"));
  assert.ok(
    optionBlock(SEND_HELP, "--repair-rate").endsWith(
      "(default 16MiB per second)",
    ),
  );
  for (
    const [help, long, bytes] of [
      [SEND_HELP, "--buffer", RELIABLE_DEFAULTS.bufferBytes],
      [SEND_HELP, "--max-size", RELIABLE_DEFAULTS.maxSize],
      [RECV_HELP, "--max-size", RELIABLE_DEFAULTS.maxSize],
    ] as const
  ) {
    const shown = /\(default (\w+)\)$/.exec(optionBlock(help, long))?.[1];
    assert.equal(shown, formatSize(bytes), long);
    assert.equal(
      parseSize("x", shown!, { min: 0, max: 2 ** 32 }),
      bytes,
      long,
    );
  }
  assert.ok(
    optionBlock(SEND_HELP, "--buffer").includes("64KiB-1GiB (default 8MiB)"),
  );
  assert.ok(optionBlock(SEND_HELP, "--mtu").includes("128-65507"));
  assert.ok(optionBlock(SEND_HELP, "--window").includes("16-1000000"));
  assert.ok(optionBlock(RECV_HELP, "--name").includes("1-64 bytes"));
  assert.ok(
    optionBlock(RECV_HELP, "--name").includes(
      "(default: the host name and a short random suffix)",
    ),
  );
});

Deno.test("both helps have an Examples: section whose commands parse", () => {
  const send = examples(SEND_HELP, "mcast-send");
  const recv = examples(RECV_HELP, "mcast-recv");
  assert.ok(send.length >= 3);
  assert.ok(recv.length >= 3);
  assert.deepEqual(send[0], []);
  assert.deepEqual(recv[0], []);
  for (const args of send) {
    const action = parseSendArgs(args).action;
    assert.equal(
      action,
      args[0] === "--gen-key" ? "gen-key" : "run",
      args.join(" "),
    );
  }
  for (const args of recv) {
    assert.equal(parseRecvArgs(args).action, "run", args.join(" "));
  }
  // Reliable examples: a bulletin to three receivers, a feed to a roster,
  // and a named receiver with state and output.
  assert.ok(
    send.some((args) => args.join(" ") === "--reliable --expect 3 -m flash"),
  );
  assert.ok(
    send.some((args) =>
      args.join(" ") === "--reliable -l --receivers desk-1,desk-2"
    ),
  );
  assert.ok(
    recv.some((args) =>
      args.join(" ") === "--name desk-1 --state desk-1.state --output inbox/"
    ),
  );
});

Deno.test("both helps state the exit codes and fit 80 columns", () => {
  for (const help of [SEND_HELP, RECV_HELP]) {
    assert.ok(help.includes("Exit status: 0"));
    assert.ok(help.includes("2 bad input"));
    for (const line of help.split("\n")) {
      assert.ok(line.length <= 80, `too long: ${line}`);
      assert.equal(/\s$/.test(line), false, `trailing space: ${line}`);
    }
  }
});
