/**
 * Helpers of the process tests of reliable mode: arguments, exit checks,
 * and the exact lines the tools print.
 *
 * @module
 */

import assert from "node:assert/strict";
import { loopback } from "./_exercise.ts";
import type { Finished } from "./_tools.ts";
import { nativeUnavailable } from "../lib/net/native_socket.ts";
import { TEST_IO_VARIABLE } from "../scripts/tools.ts";

const encoder = new TextEncoder();

/** `-g GROUP -p PORT`. */
export function at(group: string, port: number): string[] {
  return ["-g", group, "-p", `${port}`];
}

/** Asserts that a process ended with `code` and exactly `stderr`. */
export function assertExit(
  result: Finished,
  code: number,
  stderr: string,
  what: string,
): void {
  assert.equal(result.stderr, stderr, `${what} stderr`);
  assert.equal(result.code, code, `${what} exit code:\n${result.stdout}`);
  assert.equal(result.signal, null, `${what} ended by a signal`);
}

/** The lines of `text`, which must end with a newline. */
export function lines(text: string): string[] {
  assert.ok(text.endsWith("\n"), `output ends with a newline: ${text}`);
  return text.slice(0, -1).split("\n");
}

/**
 * The I/O path the tools take in this test run: the one
 * {@linkcode TEST_IO_VARIABLE} names, else `--io auto`'s choice.
 */
export const TEST_IO: "native" | "deno" = Deno.env.get(TEST_IO_VARIABLE) ===
      "deno" || nativeUnavailable() !== undefined
  ? "deno"
  : "native";

/**
 * How a statistics line ends on this run's path: `, io native` and, for a
 * keyed session, the crypto backend (`, crypto openssl` natively).
 */
export function pathSuffix(keyed = false): string {
  if (!keyed) return `, io ${TEST_IO}`;
  return `, io ${TEST_IO}, crypto ${
    TEST_IO === "native" ? "openssl" : "webcrypto"
  }`;
}

/** `pattern` with {@linkcode pathSuffix} required before its final `$`. */
export function withPath(pattern: RegExp, keyed = false): RegExp {
  const suffix = pathSuffix(keyed).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(pattern.source.replace(/\$$/, `${suffix}$`), pattern.flags);
}

/** Replaces what varies from run to run with `N`/`T` in text output. */
export function mask(text: string): string {
  return text
    .replace(/ in [0-9]+\.[0-9]{3} s$/gm, " in T s")
    .replace(/\b[0-9]+ ACKs?\b/g, "N ACKs")
    .replace(/\b[0-9]+ feedback frames?\b/g, "N feedback frames");
}

/** The session id of the sender's first line (a new or resumed session). */
export function senderSession(stdout: string): string {
  const match = /^(?:session|resumed session) ([0-9a-f]{16}) to /.exec(stdout);
  assert.ok(match, `no session line in:\n${stdout}`);
  return match[1]!;
}

/**
 * The sender's port as a receiver's `joined session` line names it (of
 * `session`, at sequence 1, when given).
 */
export function joinedPort(stdout: string, session?: string): number {
  const match = session === undefined
    ? /^joined session [0-9a-f]{16} from \('127\.0\.0\.1', ([0-9]+)\)/m
      .exec(stdout)
    : new RegExp(
      `^joined session ${session} from \\('127\\.0\\.0\\.1', ([0-9]+)\\) at sequence 1$`,
      "m",
    ).exec(stdout);
  assert.ok(
    match,
    `no joined line${session ? ` of ${session}` : ""} in:\n${stdout}`,
  );
  return Number(match[1]);
}

/** The receiver's line for bulletin `number` from the sender's `port`. */
export function bulletinLine(
  number: number,
  text: string,
  port: number,
): string {
  return `received bulletin ${number} (${
    encoder.encode(text).length
  } bytes) from ${loopback(port)} : ${text}`;
}
