/**
 * Typed errors of the mcast tools. Each carries the process exit code that
 * the command-line tools use for it, so that the entry points can map any
 * failure to one line on stderr and a status without inspecting messages.
 *
 * @module
 */

/** Base class of every error the library throws on purpose. */
export class McastError extends Error {
  /** Exit status the command-line tools use for this error. */
  readonly exitCode: number;

  /**
   * Creates an error with a one-line message and an exit status.
   *
   * @param message One line, sentence case, no trailing period.
   * @param exitCode Exit status for the command-line tools.
   */
  constructor(message: string, exitCode: number) {
    super(message);
    this.name = "McastError";
    this.exitCode = exitCode;
  }
}

/**
 * Bad input from the user: an unknown option, a value out of range, an
 * unknown interface, an unreadable file, a payload that does not fit one
 * datagram. Exit status 2.
 */
export class UsageError extends McastError {
  /**
   * Creates one.
   *
   * @param message What was wrong with the input, in one line.
   */
  constructor(message: string) {
    super(message, 2);
    this.name = "UsageError";
  }
}

/**
 * A socket operation failed at run time: the port is taken, the interface
 * cannot reach the group, a send was refused. Exit status 1.
 */
export class NetworkError extends McastError {
  /**
   * Creates one.
   *
   * @param message What failed, in one line.
   */
  constructor(message: string) {
    super(message, 1);
    this.name = "NetworkError";
  }
}

/** The runtime denied a permission the operation needs. Exit status 1. */
export class PermissionError extends McastError {
  /**
   * Creates one.
   *
   * @param message Which permission is missing, in one line.
   */
  constructor(message: string) {
    super(message, 1);
    this.name = "PermissionError";
  }
}

/**
 * Returns the message of any thrown value as a single line, without the
 * stack trace and without control characters: every run of C0 or C1 control
 * characters (newlines included), DEL, invisible format characters (such as
 * bidirectional overrides) and line or paragraph separators becomes one
 * space. An empty message is replaced by the error's name.
 *
 * @param error Anything that was thrown.
 * @returns One line of text.
 */
export function errorLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const line = text.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+/gu, " ").trim();
  if (line !== "") return line;
  return error instanceof Error ? error.name : "Unknown error";
}

/**
 * Says why the runtime refused a file operation and what grants it: the
 * flags the operation needs, or, for a path under `/dev/` (such as
 * `/dev/shm`), that Deno allows it only with `--allow-all` (it says
 * "Requires all access" then, whatever else was granted).
 *
 * @param error What the runtime threw (a `Deno.errors.NotCapable`).
 * @param flags The flags that grant it elsewhere, e.g. `--allow-read`.
 * @returns One line, starting with "permission not granted".
 *
 * @example A refused read
 * ```ts
 * import assert from "node:assert/strict";
 * import { permissionHint } from "./errors.ts";
 * assert.equal(
 *   permissionHint(new Error('Requires read access to "x"'), "--allow-read"),
 *   "permission not granted (run with --allow-read)",
 * );
 * ```
 */
export function permissionHint(error: unknown, flags: string): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/requires all access/i.test(message)) {
    return "permission not granted: Deno opens paths under /dev/ only with --allow-all (run with --allow-all, or use a file elsewhere)";
  }
  return `permission not granted (run with ${flags})`;
}
