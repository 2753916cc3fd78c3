import assert from "node:assert/strict";
import { adaptPace, MAX_PACE, MIN_PACE } from "../../lib/bridge/pacer.ts";

Deno.test("pacer: loss behind the bridge slows it to 70% of what it sent", () => {
  // 600 datagrams in 60 ms is 10,000 per second; 30 asked for again.
  assert.equal(
    adaptPace(Infinity, { sent: 600, lost: 30, intervalMs: 60 }),
    7000,
  );
  assert.equal(adaptPace(5000, { sent: 600, lost: 30, intervalMs: 60 }), 3500);
  assert.equal(
    adaptPace(300, { sent: 1, lost: 10, intervalMs: 60 }),
    MIN_PACE,
  );
});

Deno.test("pacer: without loss it speeds up, then stops pacing", () => {
  assert.equal(adaptPace(1000, { sent: 60, lost: 3, intervalMs: 60 }), 1350);
  assert.equal(
    adaptPace(Infinity, { sent: 0, lost: 0, intervalMs: 60 }),
    Infinity,
  );
  assert.equal(
    adaptPace(MAX_PACE, { sent: 0, lost: 0, intervalMs: 60 }),
    Infinity,
  );
});
