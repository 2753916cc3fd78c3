import assert from "node:assert/strict";
import {
  formatBytes,
  type ProgressEvent,
  progressLine,
} from "../../lib/cli/progress.ts";

function event(fields: Partial<ProgressEvent>): ProgressEvent {
  return {
    type: "progress",
    elapsedMs: 1000,
    queuedBytes: 100_000_000,
    sentBytes: 45_200_000,
    bytesPerSecond: 92_100_000,
    etaSeconds: 0.6,
    acknowledged: 2,
    receivers: 3,
    ...fields,
  };
}

Deno.test("formatBytes: 1000-based units with one decimal", () => {
  assert.deepEqual(
    [0, 999, 1000, 1_500, 999_949, 999_950, 45_200_000, 1.1e9, 2e15].map(
      formatBytes,
    ),
    [
      "0 B",
      "999 B",
      "1.0 kB",
      "1.5 kB",
      "999.9 kB",
      "1.0 MB",
      "45.2 MB",
      "1.1 GB",
      "2000.0 TB",
    ],
  );
});

Deno.test("progressLine: bytes, percentage, rate, time left, receivers", () => {
  assert.equal(
    progressLine(event({})),
    "sent 45.2 MB of 100.0 MB (45%) at 92.1 MB/s, 0.6 s left, 2 of 3 receivers up to date",
  );
  assert.equal(
    progressLine(event({ etaSeconds: 185, acknowledged: 0, receivers: 1 })),
    "sent 45.2 MB of 100.0 MB (45%) at 92.1 MB/s, 3 min 05 s left, 0 of 1 receiver up to date",
  );
  assert.equal(
    progressLine(event({ etaSeconds: 42.4 })),
    "sent 45.2 MB of 100.0 MB (45%) at 92.1 MB/s, 42 s left, 2 of 3 receivers up to date",
  );
  // Nothing sent yet: no rate, so no time left.
  const start = event({ sentBytes: 0, bytesPerSecond: 0 });
  delete start.etaSeconds;
  assert.equal(
    progressLine(start),
    "sent 0 B of 100.0 MB (0%) at 0 B/s, 2 of 3 receivers up to date",
  );
  // Everything sent: no time left is shown.
  assert.equal(
    progressLine(event({ sentBytes: 100_000_000, etaSeconds: 0 })),
    "sent 100.0 MB of 100.0 MB (100%) at 92.1 MB/s, 2 of 3 receivers up to date",
  );
});
