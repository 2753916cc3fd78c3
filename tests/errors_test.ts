import assert from "node:assert/strict";
import {
  errorLine,
  McastError,
  NetworkError,
  PermissionError,
  UsageError,
} from "../lib/errors.ts";

Deno.test("McastError carries a message and an exit code", () => {
  const error = new McastError("Something failed", 3);
  assert.ok(error instanceof Error);
  assert.equal(error.name, "McastError");
  assert.equal(error.message, "Something failed");
  assert.equal(error.exitCode, 3);
});

Deno.test("UsageError is bad input: exit code 2", () => {
  const error = new UsageError('Unknown option "--bogus"');
  assert.ok(error instanceof McastError);
  assert.ok(error instanceof Error);
  assert.equal(error instanceof NetworkError, false);
  assert.equal(error instanceof PermissionError, false);
  assert.equal(error.name, "UsageError");
  assert.equal(error.message, 'Unknown option "--bogus"');
  assert.equal(error.exitCode, 2);
});

Deno.test("NetworkError is a run-time failure: exit code 1", () => {
  const error = new NetworkError("Cannot bind 224.1.1.1:10000: address in use");
  assert.ok(error instanceof McastError);
  assert.equal(error instanceof UsageError, false);
  assert.equal(error instanceof PermissionError, false);
  assert.equal(error.name, "NetworkError");
  assert.equal(error.message, "Cannot bind 224.1.1.1:10000: address in use");
  assert.equal(error.exitCode, 1);
});

Deno.test("PermissionError is a run-time failure: exit code 1", () => {
  const error = new PermissionError("Cannot bind: net permission not granted");
  assert.ok(error instanceof McastError);
  assert.equal(error instanceof UsageError, false);
  assert.equal(error instanceof NetworkError, false);
  assert.equal(error.name, "PermissionError");
  assert.equal(error.exitCode, 1);
});

Deno.test("errorLine gives the message of an error, without the stack", () => {
  const error = new UsageError('Invalid --port "0"');
  assert.ok(error.stack?.includes("\n"));
  assert.equal(errorLine(error), 'Invalid --port "0"');
  assert.equal(errorLine(new TypeError("bad type")), "bad type");
  assert.equal(errorLine("a thrown string"), "a thrown string");
  assert.equal(errorLine(42), "42");
  assert.equal(errorLine(undefined), "undefined");
  assert.equal(errorLine(null), "null");
});

Deno.test("errorLine joins lines and drops control characters", () => {
  assert.equal(errorLine(new Error("first\nsecond")), "first second");
  assert.equal(errorLine(new Error("a\r\n\r\nb")), "a b");
  assert.equal(errorLine(new Error("tab\there")), "tab here");
  assert.equal(errorLine(new Error("\x1b[31mred\x1b[0m")), "[31mred [0m");
  assert.equal(
    errorLine(new Error("bell\x07 del\x7f nul\x00")),
    "bell  del  nul",
  );
  assert.equal(errorLine(new Error("\n  padded  \n")), "padded");
  assert.equal(errorLine(new Error("c1\u0085\u009bx")), "c1 x");
  assert.equal(errorLine(new Error("bidi\u202eevil\u202c")), "bidi evil");
  assert.equal(errorLine(new Error("zero\u200bwidth")), "zero width");
  assert.equal(errorLine(new Error("line\u2028sep")), "line sep");
  // Printable text beyond ASCII is kept.
  assert.equal(
    errorLine(new Error("fichier « é » 日本 😀")),
    "fichier « é » 日本 😀",
  );
});

Deno.test("errorLine never returns an empty line", () => {
  assert.equal(errorLine(new Error("")), "Error");
  assert.equal(errorLine(new NetworkError("\n")), "NetworkError");
  assert.equal(errorLine(""), "Unknown error");
});

Deno.test("errorLine output holds no control character (every code point)", () => {
  let text = "";
  for (let cp = 0; cp < 0x3000; cp++) text += String.fromCodePoint(cp);
  const line = errorLine(new Error(text));
  assert.equal(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(line), false);
  assert.equal(line.includes("\n"), false);
});
