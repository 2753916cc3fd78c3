import assert from "node:assert/strict";
import { RECV_HELP, SEND_HELP } from "../lib/help.ts";
import { parseRecvArgs, parseSendArgs } from "../lib/options.ts";

const COMMON_OPTIONS = [
  "-g, --group ADDR",
  "-p, --port N",
  "-i, --interface IF",
  "    --json",
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

const RECV_OPTIONS = ["-c, --count N", "    --ack TEXT", "    --no-ack"];

/** The option lines of a help text: `  -x, --long ARG   description`. */
function optionLines(help: string): string[] {
  return help.split("\n").filter((line) => /^ {2}(-\w,| {3}) --\w/.test(line));
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
  for (const option of [...COMMON_OPTIONS, ...SEND_OPTIONS]) {
    assert.ok(
      optionLines(SEND_HELP).some((line) => line.startsWith(`  ${option}`)),
      `missing ${option}`,
    );
  }
  assert.equal(optionLines(SEND_HELP).length, 11);
  for (const other of ["--count", "--ack", "--no-ack"]) {
    assert.equal(SEND_HELP.includes(other), false, other);
  }
});

Deno.test("RECV_HELP lists every option of mcast-recv, long and short", () => {
  assert.ok(RECV_HELP.startsWith("Usage: mcast-recv [OPTIONS]\n"));
  for (const option of [...COMMON_OPTIONS, ...RECV_OPTIONS]) {
    assert.ok(
      optionLines(RECV_HELP).some((line) => line.startsWith(`  ${option}`)),
      `missing ${option}`,
    );
  }
  assert.equal(optionLines(RECV_HELP).length, 9);
  for (const other of ["--message", "--file", "--ttl", "--wait", "--expect"]) {
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
      for (const flag of short === undefined ? [long!] : [short, long!]) {
        try {
          parse([flag, ...value]);
        } catch (error) {
          // Values like "1" may be invalid for some options; unknown is not.
          assert.doesNotMatch(String(error), /Unknown option|does not take/);
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
});

Deno.test("both helps have an Examples: section whose commands parse", () => {
  const send = examples(SEND_HELP, "mcast-send");
  const recv = examples(RECV_HELP, "mcast-recv");
  assert.ok(send.length >= 3);
  assert.ok(recv.length >= 3);
  assert.deepEqual(send[0], []);
  assert.deepEqual(recv[0], []);
  for (const args of send) {
    assert.equal(parseSendArgs(args).action, "run", args.join(" "));
  }
  for (const args of recv) {
    assert.equal(parseRecvArgs(args).action, "run", args.join(" "));
  }
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
