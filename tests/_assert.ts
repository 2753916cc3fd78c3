/**
 * Assertions shared by the unit tests.
 *
 * @module
 */

import assert from "node:assert/strict";
import { UsageError } from "../lib/errors.ts";

/** Asserts that `fn` throws a {@linkcode UsageError} with exactly `message` and exit code 2. */
export function assertUsageError(fn: () => unknown, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof UsageError, `not a UsageError: ${error}`);
    assert.equal(error.message, message);
    assert.equal(error.exitCode, 2);
    return true;
  });
}
