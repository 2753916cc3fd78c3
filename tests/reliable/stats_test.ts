import assert from "node:assert/strict";
import { type DropCounts, emptyDrops } from "../../lib/reliable/stats.ts";

Deno.test("emptyDrops counts every reason, all zero", () => {
  const expected: DropCounts = {
    version: 0,
    type: 0,
    truncated: 0,
    malformed: 0,
    tag: 0,
    unexpected: 0,
    ahead: 0,
    auth: 0,
    replay: 0,
    stale: 0,
    forged: 0,
    plain: 0,
    roster: 0,
  };
  assert.deepEqual(emptyDrops(), expected);
  // Exactly these keys, in this order (the JSON output shows them so).
  assert.deepEqual(Object.keys(emptyDrops()), [
    "version",
    "type",
    "truncated",
    "malformed",
    "tag",
    "unexpected",
    "ahead",
    "auth",
    "replay",
    "stale",
    "forged",
    "plain",
    "roster",
  ]);
});

Deno.test("emptyDrops returns a fresh object each call", () => {
  const first = emptyDrops();
  const second = emptyDrops();
  assert.notEqual(first, second);
  first.version += 1;
  first.ahead = 7;
  assert.equal(second.version, 0);
  assert.equal(second.ahead, 0);
  assert.deepEqual(emptyDrops(), second);
  assert.equal(Object.isFrozen(first), false);
});
