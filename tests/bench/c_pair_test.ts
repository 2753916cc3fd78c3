/**
 * Unit tests of the packet-rate section's pure parts (`bench/c_pair.ts`):
 * the loss-free judgement (≤ 0.1%), the next offer after a lossy run, the
 * search (against scripted runs, no traffic), rows, ratios against the C
 * pair, targets, the result-line reader and the table.
 */

import assert from "node:assert/strict";
import {
  failedPairRun,
  formatPacketsTable,
  nextPacketOffer,
  packetRatios,
  type PacketRow,
  packetRow,
  type PacketsSection,
  packetTargets,
  type PairRun,
  pairRun,
  resultLine,
  searchLossFree,
} from "../../bench/c_pair.ts";

Deno.test("pairRun: loss-free up to 0.1% lost, never when nothing arrived", () => {
  const ok = pairRun({
    offeredRate: null,
    sent: 100_000,
    received: 99_900,
    sentPerSecond: 100_000.4,
    receivedPerSecond: 99_899.6,
  });
  assert.equal(ok.lossPercent, 0.1);
  assert.equal(ok.lossFree, true);
  assert.equal(ok.sentPerSecond, 100_000);
  assert.equal(ok.receivedPerSecond, 99_900);
  assert.equal(ok.problems, undefined);
  const lossy = pairRun({
    offeredRate: 50_000,
    sent: 100_000,
    received: 99_899,
    sentPerSecond: 50_000,
    receivedPerSecond: 49_950,
  });
  assert.equal(lossy.lossFree, false);
  assert.deepEqual(lossy.problems, ["loss 0.101% > 0.1%"]);
  const none = pairRun({
    offeredRate: null,
    sent: 10,
    received: 0,
    sentPerSecond: 10,
    receivedPerSecond: 0,
  });
  assert.equal(none.lossFree, false);
  assert.deepEqual(none.problems, ["nothing received"]);
  // Duplicates never count as more than sent.
  assert.equal(
    pairRun({
      offeredRate: null,
      sent: 5,
      received: 7,
      sentPerSecond: 5,
      receivedPerSecond: 7,
    }).received,
    5,
  );
});

Deno.test("failedPairRun keeps the first line of the problem", () => {
  assert.deepEqual(failedPairRun(1000, "sender exited 1\nmore"), {
    offeredRate: 1000,
    sent: 0,
    received: 0,
    sentPerSecond: 0,
    receivedPerSecond: 0,
    lossPercent: 100,
    lossFree: false,
    problems: ["sender exited 1"],
  });
});

function lossy(
  offeredRate: number | null,
  receivedPerSecond: number,
  loss: number,
): PairRun {
  return {
    offeredRate,
    sent: 1000,
    received: 1000 - loss * 10,
    sentPerSecond: offeredRate ?? 1000,
    receivedPerSecond,
    lossPercent: loss,
    lossFree: false,
  };
}

Deno.test("nextPacketOffer: 90/75/50/35% of the lower of received and offered, at least 1000", () => {
  assert.equal(nextPacketOffer(lossy(null, 400_000, 0.5)), 360_000);
  assert.equal(nextPacketOffer(lossy(300_000, 400_000, 2)), 225_000);
  assert.equal(nextPacketOffer(lossy(null, 100_000, 10)), 50_000);
  assert.equal(nextPacketOffer(lossy(null, 100_000, 40)), 35_000);
  assert.equal(nextPacketOffer(lossy(null, 1000, 40)), 1000);
});

/** A pair whose receiver keeps up to `capacity` datagrams per second. */
function fakePair(capacity: number) {
  const offers: (number | null)[] = [];
  async function measure(rate: number | null): Promise<PairRun> {
    await Promise.resolve();
    offers.push(rate);
    const offered = rate ?? 1_000_000;
    const received = Math.min(offered, capacity);
    return pairRun({
      offeredRate: rate,
      sent: offered,
      received,
      sentPerSecond: offered,
      receivedPerSecond: received,
    });
  }
  return { offers, measure };
}

Deno.test("searchLossFree: flat out first; loss-free at once needs no more runs", async () => {
  const pair = fakePair(2_000_000);
  const outcome = await searchLossFree(pair.measure);
  assert.deepEqual(pair.offers, [null]);
  assert.equal(outcome.accepted?.receivedPerSecond, 1_000_000);
  assert.equal(outcome.tried.length, 1);
});

Deno.test("searchLossFree: lower offers after lossy runs, then two probes narrowing upwards", async () => {
  const pair = fakePair(400_000);
  const outcome = await searchLossFree(pair.measure, 6, 2);
  // Flat out loses 60%: 35% of 400,000 = 140,000 (loss-free); then the
  // geometric middles between 140,000 and 400,000: 236,643 (loss-free),
  // then between 236,643 and 400,000: 307,664 (loss-free).
  assert.deepEqual(pair.offers, [null, 140_000, 236_643, 307_664]);
  assert.equal(outcome.accepted?.offeredRate, 307_664);
  assert.equal(outcome.tried.length, 4);
});

Deno.test("searchLossFree: a lossy probe lowers the upper bound and the best stays", async () => {
  const pair = fakePair(200_000);
  const outcome = await searchLossFree(pair.measure, 6, 2);
  // 1,000,000 offered, 200,000 got (80% loss) → 70,000; middles between
  // 70,000 and 200,000: 118,322 (ok), then 153,832 (ok).
  assert.deepEqual(pair.offers, [null, 70_000, 118_322, 153_832]);
  assert.equal(outcome.accepted?.offeredRate, 153_832);
  const tight = fakePair(100_000);
  const capped = await searchLossFree(
    async (rate) => {
      const run = await tight.measure(rate);
      // Every probe above 60,000 loses 1%.
      return rate !== null && rate > 60_000 && rate < 100_000
        ? { ...run, lossPercent: 1, lossFree: false }
        : run;
    },
    6,
    2,
  );
  // 1,000,000 → 100,000 got → 35,000 ok; probe 59,161 ok; probe between
  // 59,161 and 100,000: 76,916 lossy.
  assert.deepEqual(tight.offers, [null, 35_000, 59_161, 76_916]);
  assert.equal(capped.accepted?.offeredRate, 59_161);
});

Deno.test("searchLossFree: no loss-free run within the tries, failed runs retried at the same offer", async () => {
  const offers: (number | null)[] = [];
  const outcome = await searchLossFree(
    async (rate) => {
      await Promise.resolve();
      offers.push(rate);
      return failedPairRun(rate, "receiver exited 1");
    },
    3,
    2,
  );
  assert.deepEqual(offers, [null, null, null]);
  assert.equal(outcome.accepted, null);
  const row = packetRow("native", 64, outcome);
  assert.equal(row.valid, false);
  assert.equal(row.rate, null);
  assert.equal(row.flatOut, null);
  assert.equal(row.note, "no loss-free run in 3: receiver exited 1");
});

function row(
  pair: "c" | "native" | "deno",
  size: number,
  rate: number | null,
): PacketRow {
  const run = rate === null ? failedPairRun(null, "sender exited 1") : pairRun({
    offeredRate: null,
    sent: rate,
    received: rate,
    sentPerSecond: rate,
    receivedPerSecond: rate,
  });
  return packetRow(pair, size, {
    accepted: run.lossFree ? run : null,
    tried: [run],
  });
}

Deno.test("packetRow: figure, MB/s and the flat-out run", () => {
  const r = row("c", 1400, 500_000);
  assert.equal(r.rate, 500_000);
  assert.equal(r.megabytesPerSecond, 700);
  assert.equal(r.offeredRate, null);
  assert.deepEqual(r.flatOut, {
    sentPerSecond: 500_000,
    receivedPerSecond: 500_000,
    lossPercent: 0,
  });
  assert.equal(r.threshold, null);
  assert.equal(row("native", 64, 1).threshold, 0.8);
});

Deno.test("packetRatios and packetTargets: native and deno over C, native ≥ 0.8", () => {
  const rows = packetRatios([
    row("c", 64, 500_000),
    row("native", 64, 450_000),
    row("deno", 64, 25_000),
    row("c", 1400, null),
    row("native", 1400, 200_000),
    row("deno", 1400, 10_000),
  ]);
  assert.deepEqual(rows.map((r) => [r.pair, r.size, r.ratio, r.met]), [
    ["c", 64, null, null],
    ["native", 64, 0.9, true],
    ["deno", 64, 0.05, null],
    ["c", 1400, null, null],
    ["native", 1400, null, null],
    ["deno", 1400, null, null],
  ]);
  assert.deepEqual(packetTargets(rows), [
    {
      id: "native 64",
      measured: 0.9,
      threshold: 0.8,
      met: true,
      detail: "native 450000/s / C 500000/s",
    },
    {
      id: "native 1400",
      measured: null,
      threshold: 0.8,
      met: false,
      detail: "C pair not usable (no loss-free run in 1: sender exited 1)",
    },
  ]);
});

Deno.test("resultLine reads the last result JSON line", () => {
  assert.deepEqual(
    resultLine([
      '{"event":"ready"}',
      "warning: receive buffer is small",
      '{"event":"result","received":5,"rate":12.5}',
    ]),
    { event: "result", received: 5, rate: 12.5 },
  );
  assert.equal(resultLine(['{"event":"ready"}']), null);
  assert.equal(resultLine(['{"event":"result","rec']), null);
});

Deno.test("formatPacketsTable: the skip reason, or one line per cell", () => {
  const skipped: PacketsSection = {
    skipped: "no C compiler (cc)",
    settings: {},
    rows: [],
    targets: [],
  };
  assert.equal(
    formatPacketsTable(skipped).split("\n")[1],
    "  skipped: no C compiler (cc)",
  );
  const lines = formatPacketsTable({
    skipped: null,
    settings: {},
    rows: packetRatios([row("c", 64, 500_000), row("native", 64, 300_000)]),
    targets: [],
  }).split("\n");
  assert.equal(lines.length, 4);
  assert.match(
    lines[2]!,
    /^c\s+64\s+500,000\s+32\.0\s+-\s+-\s+500,000 → 500,000 \(0\.00\)\s+1$/,
  );
  assert.match(
    lines[3]!,
    /^native\s+64\s+300,000\s+19\.2\s+0\.600\s+≥ 0\.8 missed\s+-\s+300,000 → 300,000 \(0\.00\)\s+1$/,
  );
});
