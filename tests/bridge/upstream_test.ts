import assert from "node:assert/strict";
import { UpstreamTracker } from "../../lib/bridge/upstream.ts";

const S = "0123456789abcdef";

Deno.test("upstream: new, duplicate, other session, too far ahead", () => {
  const tracker = new UpstreamTracker({ maxAhead: 10 });
  assert.equal(tracker.data(S, 1), "session");
  assert.equal(tracker.canJoin(S), true);
  tracker.join({ session: S, next: 1 });
  assert.equal(tracker.canJoin(S), false);
  assert.equal(tracker.data(S, 1), "new");
  assert.equal(tracker.data(S, 1), "duplicate");
  assert.equal(tracker.data(S, 12), "ahead");
  assert.equal(tracker.data("fedcba9876543210", 1), "session");
});

Deno.test("upstream: the ACK covers only what the downstream leg confirmed", () => {
  const tracker = new UpstreamTracker();
  tracker.join({ session: S, next: 1 });
  for (const seq of [1, 2, 3, 5]) assert.equal(tracker.data(S, seq), "new");
  // Forwarded, not yet confirmed: nothing acknowledged.
  assert.equal(tracker.next, 1);
  assert.deepEqual(tracker.selective(), []);
  assert.equal(tracker.confirm(2), false);
  assert.equal(tracker.confirm(1), true);
  assert.equal(tracker.next, 3);
  assert.equal(tracker.confirm(5), false);
  assert.deepEqual(tracker.selective(), [{ first: 5, last: 5 }]);
  // A confirmed duplicate stays a duplicate.
  assert.equal(tracker.data(S, 2), "duplicate");
  assert.equal(tracker.confirm(3), true);
  assert.equal(tracker.next, 4);
  assert.equal(tracker.confirm(99), false);
});

Deno.test("upstream: NACKs ask for what never came, once per repeat time", () => {
  const tracker = new UpstreamTracker({ nackRepeatMs: 60 });
  tracker.join({ session: S, next: 1 });
  tracker.data(S, 1);
  tracker.data(S, 4);
  tracker.see(7);
  assert.equal(tracker.gap, true);
  assert.deepEqual(tracker.nack(1000), [
    { first: 2, last: 3 },
    { first: 5, last: 7 },
  ]);
  assert.deepEqual(tracker.nack(1030), []);
  tracker.data(S, 2);
  assert.deepEqual(tracker.nack(1061), [
    { first: 3, last: 3 },
    { first: 5, last: 7 },
  ]);
});

Deno.test("upstream: GONE gives up missing sequences and moves the position", () => {
  const tracker = new UpstreamTracker();
  tracker.join({ session: S, next: 1 });
  tracker.data(S, 3);
  tracker.confirm(3);
  assert.equal(tracker.gone([{ first: 1, last: 2 }]), true);
  assert.equal(tracker.next, 4);
  assert.equal(tracker.gap, false);
});

Deno.test("upstream: a resumed tracker starts at the saved position", () => {
  const tracker = new UpstreamTracker();
  tracker.join({ session: S, next: 301 });
  assert.equal(tracker.data(S, 300), "duplicate");
  tracker.see(310);
  assert.deepEqual(tracker.nack(0), [{ first: 301, last: 310 }]);
  // A session left behind is never joined again.
  tracker.join({ session: "fedcba9876543210", next: 1 });
  assert.equal(tracker.canJoin(S), false);
});
