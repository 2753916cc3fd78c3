/**
 * The far bridge's repair plan when its upstream is a pipe: a datagram not
 * yet come through the pipe (a near bridge restarted mid-stream puts the
 * sender's repairs behind newer datagrams) is asked for through the pipe,
 * not declared gone; only what the hold evicted is.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DownstreamHold } from "../../lib/bridge/downstream.ts";

const SESSION = "0123456789abcdef";

function holdOf(seqs: number[], bufferBytes?: number): DownstreamHold {
  const hold = new DownstreamHold(
    bufferBytes === undefined ? {} : { bufferBytes },
  );
  for (const seq of seqs) {
    hold.hold(SESSION, seq, { bytes: new Uint8Array(100).fill(seq), at: 0 });
  }
  return hold;
}

Deno.test("DownstreamHold.plan from a pipe: a gap below the newest is asked for through the pipe, not gone", () => {
  // 1-5 came, then 8-10; 6 and 7 (repairs) are still in the pipe.
  const hold = holdOf([1, 2, 3, 4, 5, 8, 9, 10]);
  const plan = hold.plan(SESSION, [{ first: 5, last: 7 }], {
    now: 0,
    upstream: false,
    next: 11,
  });
  assert.deepEqual(plan.gone, []);
  assert.deepEqual(plan.ask, [6, 7]);
  assert.deepEqual(plan.resend.map((r) => r.seq), [5]);
});

Deno.test("DownstreamHold.plan from a pipe: what the hold evicted is gone", () => {
  // Room for three datagrams: 1-3 were evicted by 4-6.
  const hold = holdOf([1, 2, 3, 4, 5, 6], 300);
  assert.equal(hold.low, 4);
  const plan = hold.plan(SESSION, [{ first: 2, last: 5 }], {
    now: 0,
    upstream: false,
    next: 7,
  });
  assert.deepEqual(plan.gone, [{ first: 2, last: 3 }]);
  assert.deepEqual(plan.resend.map((r) => r.seq), [4, 5]);
});
