/**
 * Unit tests of the benchmark's pure parts (`bench/stats.ts`,
 * `bench/report.ts`, `bench/chart.ts`, the parsers of `bench/external.ts`):
 * percentile math, the loss policy and the refusal of lossy reliable runs,
 * the targets, the cost-of-keys ratios and table, and a well-formed SVG;
 * and the workers' key loading (`bench/_keys.ts`) against key files made in
 * a temporary directory. No benchmark runs here.
 */

import { nativeCryptoUnavailable } from "../lib/security/native_crypto.ts";
import assert from "node:assert/strict";
import { loadGuard } from "../bench/_keys.ts";
import { escapeXml, renderChart, shortNumber, wrap } from "../bench/chart.ts";
import {
  igmpHex,
  parseIperfClient,
  parseIperfServer,
  parseSockperfClient,
  parseSockperfServer,
} from "../bench/external.ts";
import {
  computeTargets,
  formatSecurityTable,
  formatTables,
  type LatencyRow,
  lossyRun,
  type MemoryRow,
  nextOffer,
  type ReceiveResult,
  reliableProblems,
  type ReliableSendResult,
  type RunSummary,
  securityRatios,
  type SecurityRow,
  securityRow,
  skippedRow,
  type ThroughputRow,
  throughputRow,
} from "../bench/report.ts";
import {
  lossPercent,
  median,
  quantile,
  rateBetween,
  summarizeLatency,
} from "../bench/stats.ts";
import { DEFAULT_MAX_SKEW_MS } from "../lib/security/guard.ts";
import { generateKeyFile, toHex } from "../lib/security/keys.ts";
import { emptyDrops } from "../lib/reliable/stats.ts";

// ---- stats -----------------------------------------------------------------

Deno.test("quantile interpolates between ranks (type 7)", () => {
  const xs = Array.from({ length: 100 }, (_, k) => k + 1); // 1..100
  assert.equal(quantile(xs, 0), 1);
  assert.equal(quantile(xs, 1), 100);
  assert.equal(quantile(xs, 0.5), 50.5);
  // h = 99 * 0.99 = 98.01 → 99 + 0.01 * (100 - 99)
  assert.ok(Math.abs(quantile(xs, 0.99) - 99.01) < 1e-9);
  assert.equal(quantile([7], 0.999), 7);
  assert.equal(quantile([1, 3], 0.5), 2);
  assert.ok(Number.isNaN(quantile([], 0.5)));
  assert.throws(() => quantile(xs, 1.5), RangeError);
  assert.throws(() => quantile(xs, -0.1), RangeError);
  assert.throws(() => quantile(xs, NaN), RangeError);
});

Deno.test("median of odd and even counts, input untouched", () => {
  const values = [5, 1, 4];
  assert.equal(median(values), 4);
  assert.deepEqual(values, [5, 1, 4]);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

Deno.test("summarizeLatency sorts and reports p50/p99/p99.9", () => {
  // 1..1000 shuffled deterministically.
  const samples = Array.from(
    { length: 1000 },
    (_, k) => ((k * 7919) % 1000) + 1,
  );
  const summary = summarizeLatency(samples);
  assert.deepEqual(summary, {
    n: 1000,
    p50: 500.5,
    p99: 990, // h = 999 * 0.99 = 989.01 → 990.01, rounded to 0.1
    p999: 999, // h = 998.001 → 999.001
    max: 1000,
    min: 1,
  });
  assert.equal(summarizeLatency([]), null);
  assert.deepEqual(summarizeLatency(new Float64Array([12.34])), {
    n: 1,
    p50: 12.3,
    p99: 12.3,
    p999: 12.3,
    max: 12.3,
    min: 12.3,
  });
});

Deno.test("rateBetween counts gaps between the first and the last", () => {
  assert.equal(rateBetween(101, 1000, 2000), 100);
  assert.equal(rateBetween(1, 0, 1000), 0);
  assert.equal(rateBetween(10, 5, 5), 0);
  assert.equal(lossPercent(200, 198), 1);
  assert.equal(lossPercent(0, 0), 0);
  assert.equal(lossPercent(100, 103), 0);
});

// ---- loss policy -------------------------------------------------------------

function lossy(
  sent: number,
  received: number,
  offered: number | null = null,
): RunSummary {
  return lossyRun({
    offeredRate: offered,
    sent,
    received,
    sentPerSecond: sent,
    receivedPerSecond: received,
    bytesPerSecond: received * 1024,
  });
}

Deno.test("lossy runs: 1% loss is valid, more is not", () => {
  const ok = lossy(10_000, 9_900);
  assert.equal(ok.valid, true);
  assert.equal(ok.lossPercent, 1);
  assert.equal(ok.problems, undefined);
  const bad = lossy(10_000, 9_899);
  assert.equal(bad.valid, false);
  assert.equal(bad.lossPercent, 1.01);
  assert.deepEqual(bad.problems, ["loss 1.01% > 1%"]);
  const none = lossy(10_000, 0);
  assert.equal(none.valid, false);
  assert.deepEqual(none.problems, ["nothing received"]);
});

Deno.test("nextOffer steps further below the receiver's rate the more was lost", () => {
  // 12.5% lost flat out: 35% of the 70,000/s received.
  assert.equal(nextOffer(lossy(80_000, 70_000)), 24_500);
  // 2% lost at an offer of 40,000/s: 75% of the offer (below the 49,000 received).
  assert.equal(nextOffer(lossy(50_000, 49_000, 40_000)), 30_000);
  // 5% lost: half of the 9,500/s received.
  assert.equal(nextOffer(lossy(10_000, 9_500, 10_000)), 4_750);
  assert.equal(nextOffer(lossy(900, 500)), 500);
});

function sender(
  overrides: Partial<ReliableSendResult> = {},
): ReliableSendResult {
  return {
    handed: 1000,
    delivered: true,
    reason: "complete",
    bulletins: 1000,
    packets: 100,
    bytes: 64_000,
    retransmitted: 3,
    elapsedMs: 120,
    streamMs: 100,
    bulletinsPerSecond: 10_000,
    bytesPerSecond: 640_000,
    receivers: [{ name: "r1", status: "complete", bulletins: 1000 }],
    ...overrides,
  };
}

function receiver(overrides: Partial<ReceiveResult> = {}): ReceiveResult {
  return {
    received: 1000,
    bytes: 64_000,
    elapsedMs: 99,
    pps: 10_000,
    bytesPerSecond: 640_000,
    latency: null,
    problems: [],
    lastNumber: 1000,
    unrecoverable: 0,
    failed: 0,
    timedOut: false,
    ...overrides,
  };
}

Deno.test("reliable runs: complete, in order, exactly once passes", () => {
  assert.deepEqual(reliableProblems(sender(), [receiver(), receiver()], 2), []);
});

Deno.test("reliable runs: any loss, reordering or shortfall is refused", () => {
  assert.deepEqual(
    reliableProblems(
      sender(),
      [receiver({ received: 999, lastNumber: 999 })],
      1,
    ),
    [
      "receiver 1: 999 of 1000 bulletins delivered",
      "receiver 1: last bulletin 999, expected 1000",
    ],
  );
  assert.deepEqual(
    reliableProblems(sender(), [
      receiver({ problems: ["bulletin 7 arrived when 6 was due"] }),
    ], 1),
    ["receiver 1: bulletin 7 arrived when 6 was due"],
  );
  assert.deepEqual(
    reliableProblems(
      sender({ delivered: false, reason: "lost" }),
      [receiver()],
      1,
    ),
    [
      "sender: not delivered to everyone (reason lost)",
    ],
  );
  assert.deepEqual(reliableProblems(sender(), [receiver()], 3), [
    "1 of 3 receivers reported",
  ]);
  assert.deepEqual(
    reliableProblems(
      sender(),
      [receiver({ unrecoverable: 4, timedOut: true })],
      1,
    ),
    ["receiver 1: 4 bulletins lost for good", "receiver 1: timed out"],
  );
  assert.deepEqual(
    reliableProblems(sender({ handed: 1001 }), [receiver()], 1),
    [
      "sender: sent 1000 of 1001 bulletins",
    ],
  );
});

// ---- rows and targets ---------------------------------------------------------

function reliableRun(
  perSecond: number,
  valid = true,
  datagrams?: number,
): RunSummary {
  const run: RunSummary = {
    offeredRate: null,
    sent: 1000,
    received: valid ? 1000 : 990,
    sentPerSecond: perSecond,
    receivedPerSecond: perSecond,
    bytesPerSecond: perSecond * 1024,
    datagramsPerSecond: datagrams ?? perSecond,
    lossPercent: valid ? 0 : 1,
    valid,
  };
  if (!valid) run.problems = ["receiver 1: 990 of 1000 bulletins delivered"];
  return run;
}

Deno.test("throughputRow takes medians and keeps the flat-out figure", () => {
  const flat = lossy(100_000, 90_000);
  const accepted = [
    lossy(58_000, 57_900, 58_500),
    lossy(58_500, 58_000, 58_500),
    lossy(58_500, 58_100, 58_500),
  ];
  const row = throughputRow("bare", 1024, accepted, [flat, ...accepted]);
  assert.equal(row.valid, true);
  assert.equal(row.attempts, 4);
  assert.equal(row.bulletinsPerSecond, 58_000);
  assert.equal(row.datagramsPerSecond, 58_000);
  assert.equal(row.megabytesPerSecond, 59.39); // 58,000 × 1024 B
  assert.equal(row.lossPercent, 0.855); // the worst: 500 of 58,500
  assert.equal(row.flatOutPerSecond, 90_000);
  assert.equal(row.flatOutLossPercent, 10);
  assert.equal(row.note, undefined);
});

Deno.test("throughputRow: a lossy row stays visible but invalid", () => {
  const row = throughputRow("plain", 64, [lossy(1000, 900, 5000)], [
    lossy(1000, 900, 5000),
  ]);
  assert.equal(row.valid, false);
  assert.equal(row.bulletinsPerSecond, 900);
  assert.equal(row.note, "invalid: loss 10.00% > 1%");
});

Deno.test("throughputRow: a refused reliable row reports no figures", () => {
  const runs = [reliableRun(20_000), reliableRun(21_000, false)];
  const row = throughputRow("reliable-1", 1024, runs, runs, {
    mtu: 1400,
    window: 4096,
  });
  assert.equal(row.valid, false);
  assert.equal(row.bulletinsPerSecond, null);
  assert.equal(row.megabytesPerSecond, null);
  assert.equal(
    row.note,
    "refused: receiver 1: 990 of 1000 bulletins delivered",
  );
  assert.equal(row.flatOutPerSecond, undefined);
  assert.equal(row.mtu, 1400);
});

function latencyRow(
  variant: LatencyRow["variant"],
  p99: number,
  valid = true,
): LatencyRow {
  return {
    variant,
    rate: 10_000,
    size: 64,
    sent: 10_000,
    received: 10_000,
    lossPercent: 0,
    latency: { n: 10_000, p50: 20, p99, p999: p99 * 2, max: p99 * 3, min: 5 },
    valid,
    note: valid ? undefined : "invalid: loss 2% > 1%",
  };
}

function memoryRow(
  senderPeak: number,
  receiverPeak: number,
  valid = true,
): MemoryRow {
  const figures = (peak: number) => ({
    idleMiB: 40,
    peakMiB: peak,
    firstHalfMiB: peak - 1,
    secondHalfMiB: peak,
    samples: 100,
  });
  return {
    bytes: 2 ** 30,
    bulletins: 17_477,
    size: 61_440,
    mtu: 61_502,
    window: 136,
    streamMs: 10_000,
    sender: figures(senderPeak),
    receiver: figures(receiverPeak),
    valid,
    note: valid ? undefined : "refused: receiver 1: 3 bulletins lost for good",
  };
}

function rows(): ThroughputRow[] {
  const bare64 = [lossy(50_000, 49_900, 50_000)];
  const bare1k = [lossy(40_000, 40_000, 40_000)];
  return [
    throughputRow("bare", 64, bare64, [lossy(90_000, 80_000), ...bare64]),
    throughputRow("bare", 1024, bare1k, [lossy(80_000, 72_000), ...bare1k]),
    throughputRow("reliable-1", 64, [reliableRun(200_000, true, 12_500)], [
      reliableRun(200_000, true, 12_500),
    ]),
    throughputRow("reliable-1", 1024, [reliableRun(30_000)], [
      reliableRun(30_000),
    ]),
  ];
}

Deno.test("computeTargets: ratios, thresholds, and the flat-out comparison", () => {
  const targets = computeTargets({
    throughput: rows(),
    latency: [latencyRow("bare", 400), latencyRow("reliable", 600)],
    memory: memoryRow(80, 60),
  });
  assert.deepEqual(targets.map((t) => [t.id, t.measured, t.pass]), [
    ["reliable-1k", 0.75, true], // 30,000 / 40,000
    ["packing-64", 4.008, true], // 200,000 / 49,900
    ["latency-p99", 1.5, true], // 600 / 400, ≤ 1.5
    ["memory", 80, true],
  ]);
  assert.equal(targets[0]!.measuredVsFlatOut, 0.417); // 30,000 / 72,000
  assert.equal(targets[1]!.measuredVsFlatOut, 2.5); // 200,000 / 80,000
  assert.equal(targets[2]!.measuredVsFlatOut, undefined);
  assert.match(
    targets[0]!.detail,
    /^reliable-1 1024 B bulletins\/s 30000 \/ bare 1024 B datagrams\/s 40000; bare flat out 72000\/s at 10% loss → ratio 0.417$/,
  );
});

Deno.test("computeTargets: failing and unusable inputs fail with the reason", () => {
  const throughput = rows();
  throughput[1] = throughputRow("bare", 1024, [lossy(10_000, 9_000, 10_000)], [
    lossy(10_000, 9_000, 10_000),
  ]);
  const targets = computeTargets({
    throughput,
    latency: [latencyRow("bare", 400), latencyRow("reliable", 601)],
    memory: memoryRow(100, 60),
  });
  assert.equal(targets[0]!.measured, null);
  assert.equal(targets[0]!.pass, false);
  assert.match(
    targets[0]!.detail,
    /^bare 1024 B datagrams\/s not usable \(invalid: loss 10\.00% > 1%\)/,
  );
  assert.equal(targets[2]!.measured, 1.503);
  assert.equal(targets[2]!.pass, false);
  assert.equal(targets[3]!.measured, 100);
  assert.equal(targets[3]!.pass, false); // < 100 MiB needed
  const none = computeTargets({
    throughput: [],
    latency: [latencyRow("bare", 400, false), latencyRow("reliable", 300)],
    memory: memoryRow(50, 50, false),
  });
  assert.deepEqual(none.map((t) => [t.measured, t.pass]), [
    [null, false],
    [null, false],
    [null, false],
    [null, false],
  ]);
  assert.equal(
    none[2]!.detail,
    "bare p99 at 10k/s µs not usable (invalid: loss 2% > 1%)",
  );
  assert.equal(
    none[3]!.detail,
    "refused: receiver 1: 3 bulletins lost for good",
  );
  assert.equal(
    computeTargets({ throughput: [], latency: [], memory: null })[3]!.detail,
    "not measured",
  );
});

Deno.test("formatTables lists every row and each target's verdict", () => {
  const throughput = [
    ...rows(),
    skippedRow("iperf2", 64, "iperf (iperf2) not installed"),
  ];
  const latency = [latencyRow("bare", 400), latencyRow("reliable", 900)];
  const memory = memoryRow(120, 60);
  const targets = computeTargets({ throughput, latency, memory });
  const text = formatTables({ throughput, latency, ack: [], memory, targets });
  const lines = text.split("\n");
  assert.ok(
    lines.some((l) =>
      /^reliable-1k\s+0\.750\s+>= 0\.7\s+PASS\s+0\.417\s/.test(l)
    ),
    text,
  );
  assert.ok(
    lines.some((l) => /^latency-p99\s+2\.250\s+<= 1\.5\s+FAIL/.test(l)),
    text,
  );
  assert.ok(lines.some((l) => /^memory\s+120\.0\s+< 100\s+FAIL/.test(l)), text);
  assert.ok(
    lines.some((l) =>
      /^iperf2\s+64\s+-\s+-\s+-\s+-\s+0\s+0\s+-\s+skipped: iperf \(iperf2\) not installed$/
        .test(l)
    ),
    text,
  );
  assert.ok(
    lines.some((l) =>
      /^bare\s+1024\s+40,000\s+40,000\s+41\.0\s+0\.00\s+1\s+2\s+40,000\s+72,000 \(10\.00\)$/
        .test(l)
    ),
    text,
  );
});

// ---- the cost of keys ------------------------------------------------------------

/** Cells of one run: 64 B (packed) and 1 KiB, every variant, 3 runs each. */
function securityRows(): SecurityRow[] {
  const cell = (
    variant: SecurityRow["variant"],
    size: number,
    rates: number[],
  ) =>
    securityRow(
      variant,
      size,
      rates.map((r) => reliableRun(r, true, size === 64 ? r / 16 : r)),
      { mtu: 1400, window: 4096 },
    );
  return [
    cell("none", 64, [100_000, 96_000, 104_000]),
    cell("key", 64, [90_000, 86_400, 80_000]),
    cell("key+encrypt", 64, [60_000, 48_000, 62_400]),
    cell("key+encrypt+sign", 64, [20_000, 19_200, 20_800]),
    cell("none", 1024, [13_000, 12_000, 14_000]),
    cell("key", 1024, [12_000, 12_000, 12_600]),
    cell("key+encrypt", 1024, [11_000, 9_600, 11_200]),
    cell("key+encrypt+sign", 1024, [6_500, 6_000, 7_000]),
  ];
}

Deno.test("securityRow takes medians; a refused cell reports no figures", () => {
  const row = securityRow("key", 1024, [
    reliableRun(12_000),
    reliableRun(11_000),
    reliableRun(12_600),
  ], { mtu: 1400, window: 4096 });
  assert.deepEqual(
    {
      bulletins: row.bulletinsPerSecond,
      datagrams: row.datagramsPerSecond,
      mb: row.megabytesPerSecond,
      ratio: row.ratio,
      valid: row.valid,
      note: row.note,
      mtu: row.mtu,
    },
    {
      bulletins: 12_000,
      datagrams: 12_000,
      mb: 12.29, // 12,000 × 1024 B
      ratio: null, // set by securityRatios
      valid: true,
      note: undefined,
      mtu: 1400,
    },
  );
  const refused = securityRow("key+encrypt", 64, [
    reliableRun(50_000),
    reliableRun(51_000, false),
  ]);
  assert.equal(refused.valid, false);
  assert.equal(refused.bulletinsPerSecond, null);
  assert.equal(refused.megabytesPerSecond, null);
  assert.equal(
    refused.note,
    "refused: receiver 1: 990 of 1000 bulletins delivered",
  );
  assert.equal(securityRow("key", 64, []).note, "no run");
});

Deno.test("securityRatios: each variant over the keyless baseline at its size", () => {
  const rows = securityRatios(securityRows());
  assert.deepEqual(
    rows.map((r) => [r.variant, r.size, r.bulletinsPerSecond, r.ratio]),
    [
      ["none", 64, 100_000, 1],
      ["key", 64, 86_400, 0.864],
      ["key+encrypt", 64, 60_000, 0.6],
      ["key+encrypt+sign", 64, 20_000, 0.2],
      ["none", 1024, 13_000, 1],
      ["key", 1024, 12_000, 0.923], // 12,000 / 13,000
      ["key+encrypt", 1024, 11_000, 0.846],
      ["key+encrypt+sign", 1024, 6_500, 0.5],
    ],
  );
  // Repetition by repetition: 90,000/100,000, 86,400/96,000, 80,000/104,000.
  assert.deepEqual(rows[1]!.runRatios, [0.9, 0.9, 0.769]);
  assert.deepEqual(rows[0]!.runRatios, [1, 1, 1]);
  // The input is left as it was.
  assert.equal(securityRows()[1]!.ratio, null);
});

Deno.test("securityRatios: no ratio without a usable baseline or cell", () => {
  const rows = securityRows();
  // The 64 B baseline refused in its second run; 1 KiB key+encrypt refused.
  rows[0] = securityRow("none", 64, [reliableRun(100_000), {
    ...reliableRun(96_000, false),
  }]);
  rows[6] = securityRow("key+encrypt", 1024, [reliableRun(9_000, false)]);
  const out = securityRatios(rows);
  assert.deepEqual(out.map((r) => r.ratio), [
    null,
    null,
    null,
    null,
    1,
    0.923,
    null,
    0.5,
  ]);
  assert.deepEqual(out[2]!.runRatios, []);
  assert.deepEqual(out[6]!.runRatios, []);
  // A missing baseline: no ratios at that size.
  const without = securityRatios(
    securityRows().filter((r) => r.size === 1024 || r.variant !== "none"),
  );
  assert.deepEqual(without.map((r) => r.ratio), [
    null,
    null,
    null,
    1,
    0.923,
    0.846,
    0.5,
  ]);
  // Runs pair by repetition: a cell with fewer runs pairs what it has.
  const short = securityRatios([
    securityRow("none", 64, [reliableRun(100_000), reliableRun(80_000)]),
    securityRow("key", 64, [reliableRun(50_000)]),
  ]);
  assert.equal(short[1]!.ratio, 0.556); // 50,000 / median 90,000
  assert.deepEqual(short[1]!.runRatios, [0.5]);
});

Deno.test("formatSecurityTable: one line per variant and size, with the ratios", () => {
  const table = securityRatios(securityRows());
  table[7] = securityRatios([
    table[4]!,
    securityRow("key+encrypt+sign", 1024, [reliableRun(6_000, false)]),
  ])[1]!;
  const lines = formatSecurityTable(table).split("\n");
  assert.equal(lines.length, 2 + 8);
  assert.match(lines[0]!, /^Security cost \(reliable, 1 receiver;/);
  assert.match(
    lines[1]!,
    /^io\s+variant\s+size B\s+bulletins\/s\s+datagrams\/s\s+MB\/s\s+× no key\s+per-run ×\s+runs\s+note$/,
  );
  assert.match(
    lines[2]!,
    /^deno\s+none\s+64\s+100,000\s+6,250\s+102\.4\s+1\.000\s+1\.00,1\.00,1\.00\s+3$/,
  );
  assert.match(
    lines[3]!,
    /^deno\s+key\s+64\s+86,400\s+5,400\s+88\.5\s+0\.864\s+0\.90,0\.90,0\.77\s+3$/,
  );
  assert.match(
    lines[5]!,
    /^deno\s+key\+encrypt\+sign\s+64\s+20,000\s+1,250\s+20\.5\s+0\.200\s+0\.20,0\.20,0\.20\s+3$/,
  );
  assert.match(
    lines[9]!,
    /^deno\s+key\+encrypt\+sign\s+1024\s+-\s+-\s+-\s+-\s+1\s+refused: receiver 1: 990 of 1000 bulletins delivered$/,
  );
  // Each path is its own baseline.
  const native = securityRatios([
    { ...table[0]!, io: "native", bulletinsPerSecond: 200_000 },
    { ...table[1]!, io: "native" },
    ...table.slice(0, 2),
  ]);
  assert.equal(native[1]!.ratio, 0.432);
  assert.equal(native[3]!.ratio, 0.864);
  assert.match(
    formatSecurityTable(native).split("\n")[2]!,
    /^native\s+none\s+64\s+200,000\s/,
  );
  // The full tables carry it before the targets, only when measured.
  const input = {
    throughput: rows().slice(0, 1),
    latency: [],
    ack: [],
    memory: null,
    targets: [],
  };
  assert.ok(!formatTables(input).includes("Security cost"));
  const text = formatTables({ ...input, security: table });
  assert.ok(text.includes(formatSecurityTable(table)), text);
  assert.ok(text.indexOf("Security cost") < text.indexOf("Targets"));
});

Deno.test("loadGuard reads the key files as the CLI does", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mcast-bench-test-" });
  try {
    const keyFile = (await generateKeyFile(`${dir}/group.key`)).path;
    const signing = await generateKeyFile(`${dir}/sign.key`, {
      kind: "ed25519",
    });
    const dropped = emptyDrops();
    const sender = await loadGuard(
      { keyFile, encrypt: true, signKey: signing.path },
      dropped,
    );
    assert.equal(sender.key.bytes.length, 32);
    assert.equal(sender.encrypt, true);
    assert.equal(sender.allowPlain, false);
    assert.equal(sender.maxSkewMs, DEFAULT_MAX_SKEW_MS);
    assert.equal(sender.dropped, dropped); // shared, not copied
    assert.equal(toHex(sender.signingKey!.publicKey), signing.publicKey);
    assert.equal(sender.trust, undefined);
    const receiver = await loadGuard(
      { keyFile, trust: [signing.publicKey!, signing.publicPath!] },
      dropped,
    );
    assert.deepEqual(receiver.key.bytes, sender.key.bytes);
    assert.equal(receiver.encrypt, false);
    assert.equal(receiver.signingKey, undefined);
    assert.deepEqual(receiver.trust!.map(toHex), [
      signing.publicKey,
      signing.publicKey,
    ]);
    const plain = await loadGuard({ keyFile }, emptyDrops());
    assert.equal(plain.encrypt, false);
    assert.equal(plain.trust, undefined);
    // The crypto backend of --io auto; each guard's own, closed by its user.
    for (const guard of [sender, receiver, plain]) {
      assert.equal(
        guard.crypto?.name,
        nativeCryptoUnavailable() === undefined ? "openssl" : "webcrypto",
      );
      guard.crypto?.close();
    }
    const deno = await loadGuard({ keyFile, io: "deno" }, emptyDrops());
    assert.equal(deno.crypto?.name, "webcrypto");
    await assert.rejects(
      loadGuard({ keyFile: `${dir}/missing.key` }, emptyDrops()),
      /Key file .*missing\.key does not exist/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- chart -------------------------------------------------------------------

/**
 * Checks that `xml` is well-formed: tags balanced and properly nested, one
 * root, attribute values quoted, no raw `<` or stray `&` in text or values.
 * Returns the element names in document order.
 */
function checkXml(xml: string): string[] {
  const names: string[] = [];
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/g;
  const badAmpersand = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/;
  let last = 0;
  let roots = 0;
  for (const match of xml.matchAll(tag)) {
    const between = xml.slice(last, match.index);
    assert.ok(
      !between.includes("<"),
      `stray "<" or malformed tag near: ${between.slice(0, 80)}`,
    );
    assert.ok(
      !badAmpersand.test(between),
      `unescaped "&" in: ${between.slice(0, 80)}`,
    );
    assert.ok(
      !badAmpersand.test(match[3] ?? ""),
      `unescaped "&" in attributes: ${match[0]}`,
    );
    last = match.index! + match[0].length;
    const [, closing, name, , selfClosing] = match;
    if (closing) {
      assert.equal(stack.pop(), name, `</${name}> closes the wrong element`);
      continue;
    }
    if (stack.length === 0) roots += 1;
    names.push(name!);
    if (!selfClosing) stack.push(name!);
  }
  const tail = xml.slice(last);
  assert.ok(
    !tail.includes("<") && !badAmpersand.test(tail),
    "junk after the last tag",
  );
  assert.deepEqual(stack, [], "unclosed elements");
  assert.equal(roots, 1, "exactly one root element");
  return names;
}

Deno.test("checkXml itself rejects malformed documents", () => {
  assert.throws(() => checkXml("<svg><g></svg>"));
  assert.throws(() => checkXml("<svg><text>a < b</text></svg>"));
  assert.throws(() => checkXml("<svg><text>a & b</text></svg>"));
  assert.throws(() => checkXml("<svg x=1></svg>"));
  assert.throws(() => checkXml("<svg></svg><svg></svg>"));
  assert.deepEqual(
    checkXml('<svg a="1"><g><rect/></g><text>&amp;</text></svg>'),
    ["svg", "g", "rect", "text"],
  );
});

Deno.test("renderChart writes a well-formed SVG with one bar per measured cell", () => {
  const throughput = [
    ...rows(),
    skippedRow("sockperf", 64, "sockperf not installed"),
  ];
  const latency = [latencyRow("bare", 400), latencyRow("reliable", 600)];
  const memory = memoryRow(80, 60);
  const svg = renderChart({
    title: 'bench <test> & "quotes"',
    subtitle: "2 CPUs",
    throughput,
    latency,
    ack: [{
      receivers: 3,
      bulletins: 1000,
      size: 1024,
      elapsedMs: 42,
      streamMs: 40,
      runs: [42],
      valid: true,
    }],
    memory,
    targets: computeTargets({ throughput, latency, memory }),
  });
  const names = checkXml(svg);
  assert.equal(names[0], "svg");
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.includes("bench &lt;test&gt; &amp; &quot;quotes&quot;"));
  // Bars: 4 throughput cells × 2 panels, 2 latency rows × 3 percentiles.
  const bars = [...svg.matchAll(/<rect [^>]*><title>/g)].length;
  assert.equal(bars, 4 * 2 + 2 * 3);
  assert.ok(svg.includes(">skipped</text>"), "a skipped cell is labelled");
  assert.equal([...svg.matchAll(/class="pass">PASS</g)].length, 4);
  assert.ok(svg.includes("3 receivers: 42 ms (stream 40 ms)"));
  assert.ok(svg.includes('height="800"'));
  assert.ok(!svg.includes("Cost of keys"));
});

Deno.test("renderChart adds the cost of keys: one ratio bar per measured cell", () => {
  const throughput = rows();
  const latency = [latencyRow("bare", 400), latencyRow("reliable", 600)];
  const memory = memoryRow(80, 60);
  const security = securityRatios(securityRows());
  security[6] = securityRow("key+encrypt", 1024, [reliableRun(9_000, false)]);
  const svg = renderChart({
    title: "bench",
    subtitle: "2 CPUs",
    throughput,
    latency,
    ack: [],
    memory,
    targets: computeTargets({ throughput, latency, memory }),
    security,
  });
  checkXml(svg);
  assert.ok(svg.includes('height="1000"'));
  const bars = [...svg.matchAll(/<rect [^>]*><title>([^<]*)<\/title>/g)]
    .map((m) => m[1]!);
  // 4 throughput cells × 2 panels, 2 latency rows × 3, 8 - 1 refused ratios.
  assert.equal(bars.length, 4 * 2 + 2 * 3 + 7);
  assert.ok(
    bars.includes("key 64 B × no key (86400/s): 0.864"),
    bars.join("|"),
  );
  assert.ok(bars.includes("none 1 KiB × no key (13000/s): 1"));
  assert.ok(svg.includes(">refused</text>"), "the refused cell is labelled");
  assert.ok(
    svg.includes("key+encrypt+sign: 64 B 20k/s (×0.20), 1 KiB 6.5k/s (×0.50)"),
  );
  assert.ok(svg.includes("key+encrypt: 64 B 60k/s (×0.60), 1 KiB refused"));
  // The ratio axis is linear from 0: ticks 0.00 … 1.25.
  for (const tick of ["0.00", "0.25", "0.50", "0.75", "1.00", "1.25"]) {
    assert.ok(svg.includes(`>${tick}</text>`), tick);
  }
});

Deno.test("chart helpers: escaping, short numbers, wrapping", () => {
  assert.equal(
    escapeXml(`<a href="x">&'`),
    "&lt;a href=&quot;x&quot;&gt;&amp;&apos;",
  );
  assert.equal(shortNumber(1234), "1.2k");
  assert.equal(shortNumber(125_000), "125k");
  assert.equal(shortNumber(2_500_000), "2.5M");
  assert.equal(shortNumber(12.34), "12.3");
  assert.equal(shortNumber(100), "100");
  assert.deepEqual(wrap("aaa bbb ccc", 7, 5), ["aaa bbb", "ccc"]);
  assert.deepEqual(wrap("aaa bbb ccc ddd", 3, 2), ["aaa", "bb…"]);
  assert.deepEqual(wrap("", 10, 2), []);
});

// ---- external tools' output ------------------------------------------------------

Deno.test("iperf2 CSV reports parse (server with loss, client)", () => {
  const server =
    "19700101000000.000,127.0.0.1,36215,239.255.9.9,5999,1,0.0-1.0,139921408,1119628778,0.000,1104,137746,0.801,0\n";
  assert.deepEqual(parseIperfServer(server), {
    seconds: 1,
    bytes: 139_921_408,
    lost: 1104,
    total: 137_746,
  });
  // The client's line has no loss figures (total -1): not a server report.
  const client =
    "19700101000000.000,127.0.0.1,36215,239.255.9.9,5999,1,0.0-1.0,141051904,1128392664,0.000,0,-1,-0.000,0\n";
  assert.equal(parseIperfServer(client), null);
  assert.deepEqual(parseIperfClient(client), {
    seconds: 1,
    bytes: 141_051_904,
  });
  assert.equal(parseIperfClient("WARNING: something\n"), null);
});

Deno.test("sockperf summaries parse", () => {
  assert.deepEqual(
    parseSockperfClient(
      "sockperf: Total of 145014 messages sent in 1.001 sec\n",
    ),
    { sent: 145_014, seconds: 1.001 },
  );
  assert.equal(
    parseSockperfServer(
      "sockperf: Total 56048 messages received and handled\n",
    ),
    56_048,
  );
  assert.equal(parseSockperfClient("nothing"), null);
  assert.equal(parseSockperfServer("nothing"), null);
  assert.equal(igmpHex("239.255.9.8"), "0809FFEF");
  assert.equal(igmpHex("224.0.0.1"), "010000E0");
});
