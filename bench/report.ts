/**
 * The benchmark's results: what the worker processes print, how runs are
 * judged (lossy runs are marked invalid, a reliable run that lost or
 * reordered anything is refused), the four targets of issue #4 and the text
 * table. Pure functions, unit-tested in `tests/bench_test.ts`.
 *
 * @module
 */

import { type LatencySummary, lossPercent, median } from "./stats.ts";

/** Loss above this (percent) makes a lossy-transport run invalid. */
export const MAX_LOSS_PERCENT = 1;

/** One MiB. */
export const MIB = 1024 * 1024;

/** What `bare_send.ts` and `mcast_send.ts` (plain) print at the end. */
export interface SendResult {
  /** Datagrams sent. */
  sent: number;
  /** Sends that failed. */
  errors: number;
  /** Bytes sent. */
  bytes: number;
  /** Time of the loop, ms. */
  elapsedMs: number;
  /** Datagrams per second sent. */
  pps: number;
}

/** What `bare_recv.ts` and `mcast_recv.ts` print at the end. */
export interface ReceiveResult {
  /** Datagrams (plain) or bulletins (reliable) received. */
  received: number;
  /** Their bytes. */
  bytes: number;
  /** From the first to the last, ms. */
  elapsedMs: number;
  /** Received per second, between the first and the last. */
  pps: number;
  /** Bytes per second, between the first and the last. */
  bytesPerSecond: number;
  /** One-way latency (frame timestamp in reliable mode), µs. */
  latency: LatencySummary | null;
  /** Reliable: latency from the time the bulletin was handed over, µs. */
  appLatency?: LatencySummary | null;
  /** Reliable: order, content and loss problems seen (at most 10). */
  problems?: string[];
  /** Reliable: the last bulletin number delivered. */
  lastNumber?: number;
  /** Reliable: bulletins reported lost for good. */
  unrecoverable?: number;
  /** Reliable: bulletins whose reassembly failed. */
  failed?: number;
  /** The receiver gave up at its overall deadline. */
  timedOut?: boolean;
}

/** What `mcast_send.ts` (reliable) prints at the end. */
export interface ReliableSendResult {
  /** Bulletins handed to the sender. */
  handed: number;
  /** The sender's verdict: every expected receiver has everything. */
  delivered: boolean;
  /** Why the session ended. */
  reason: string;
  /** Bulletins sent. */
  bulletins: number;
  /** DATA datagrams sent for the first time. */
  packets: number;
  /** Payload bytes. */
  bytes: number;
  /** Repairs sent. */
  retransmitted: number;
  /** The report's `elapsedMs`: session start to report. */
  elapsedMs: number;
  /** First bulletin handed over to report, ms. */
  streamMs: number;
  /** Bulletins per second over `streamMs`. */
  bulletinsPerSecond: number;
  /** Payload bytes per second over `streamMs`. */
  bytesPerSecond: number;
  /** Per receiver, as the sender saw it. */
  receivers: { name: string; status: string; bulletins: number }[];
}

/**
 * Why a reliable run must be refused: anything short of every receiver
 * getting every bulletin exactly once, in order.
 *
 * @param sender The sender's result.
 * @param receivers Each receiver's result.
 * @param expected How many receivers took part.
 * @returns The problems; empty when the run stands.
 */
export function reliableProblems(
  sender: ReliableSendResult,
  receivers: ReceiveResult[],
  expected: number,
): string[] {
  const problems: string[] = [];
  if (!sender.delivered || sender.reason !== "complete") {
    problems.push(
      `sender: not delivered to everyone (reason ${sender.reason})`,
    );
  }
  if (sender.bulletins !== sender.handed) {
    problems.push(
      `sender: sent ${sender.bulletins} of ${sender.handed} bulletins`,
    );
  }
  if (sender.bulletins === 0) problems.push("sender: nothing sent");
  if (receivers.length !== expected) {
    problems.push(`${receivers.length} of ${expected} receivers reported`);
  }
  receivers.forEach((r, k) => {
    const who = `receiver ${k + 1}`;
    if (r.received !== sender.bulletins) {
      problems.push(
        `${who}: ${r.received} of ${sender.bulletins} bulletins delivered`,
      );
    }
    if (r.lastNumber !== undefined && r.lastNumber !== sender.bulletins) {
      problems.push(
        `${who}: last bulletin ${r.lastNumber}, expected ${sender.bulletins}`,
      );
    }
    for (const text of r.problems ?? []) problems.push(`${who}: ${text}`);
    if ((r.unrecoverable ?? 0) > 0) {
      problems.push(`${who}: ${r.unrecoverable} bulletins lost for good`);
    }
    if ((r.failed ?? 0) > 0) {
      problems.push(`${who}: ${r.failed} bulletins failed`);
    }
    if (r.timedOut) problems.push(`${who}: timed out`);
  });
  return problems;
}

/** One measured run of a throughput cell. */
export interface RunSummary {
  /** Offered rate (datagrams or bulletins per second); null = flat out. */
  offeredRate: number | null;
  /** Datagrams (bulletins, for reliable mode) sent. */
  sent: number;
  /** Received (reliable: the fewest any receiver got). */
  received: number;
  /** Sent per second. */
  sentPerSecond: number;
  /** Received per second: the cell's throughput figure. */
  receivedPerSecond: number;
  /** Payload bytes per second received. */
  bytesPerSecond: number;
  /** Reliable: DATA datagrams per second (packing of small bulletins). */
  datagramsPerSecond?: number;
  /** Reliable: repairs sent. */
  retransmitted?: number;
  /** Loss, percent. */
  lossPercent: number;
  /** Within the loss policy (and, for reliable mode, nothing refused). */
  valid: boolean;
  /** Why not. */
  problems?: string[];
}

/**
 * Summarises a run of a lossy transport (bare loop, plain mode, iperf2,
 * sockperf): valid when at most {@linkcode MAX_LOSS_PERCENT} was lost.
 *
 * @param fields What the sender and receiver counted.
 * @returns The run.
 */
export function lossyRun(fields: {
  offeredRate: number | null;
  sent: number;
  received: number;
  sentPerSecond: number;
  receivedPerSecond: number;
  bytesPerSecond: number;
}): RunSummary {
  const loss = lossPercent(fields.sent, fields.received);
  const run: RunSummary = {
    ...fields,
    lossPercent: Math.round(loss * 1000) / 1000,
    valid: fields.received > 1 && loss <= MAX_LOSS_PERCENT,
  };
  if (!run.valid) {
    run.problems = fields.received <= 1
      ? ["nothing received"]
      : [`loss ${loss.toFixed(2)}% > ${MAX_LOSS_PERCENT}%`];
  }
  return run;
}

/**
 * The next offered rate after a lossy attempt: a fraction of what the
 * receiver managed or of the previous offer, whichever is lower, the
 * smaller the more was lost (75% up to 3% loss, 50% up to 10%, else 35%).
 * On a VM loss comes in bursts (a receiver stalled for a few ms overflows
 * the default 208 KiB socket buffer at almost any rate), so loss falls
 * slowly with the rate and small steps would take many tries.
 *
 * @param run The lossy attempt.
 * @returns Datagrams per second to offer next (at least 500).
 */
export function nextOffer(run: RunSummary): number {
  const base = run.offeredRate === null
    ? run.receivedPerSecond
    : Math.min(run.receivedPerSecond, run.offeredRate);
  const factor = run.lossPercent <= 3
    ? 0.75
    : run.lossPercent <= 10
    ? 0.5
    : 0.35;
  return Math.max(500, Math.round(base * factor));
}

/** The variants of the throughput table. */
export type Variant =
  | "bare"
  | "plain"
  | "reliable-1"
  | "reliable-3"
  | "iperf2"
  | "sockperf";

/** Every variant, in table and chart order. */
export const VARIANTS: readonly Variant[] = [
  "bare",
  "plain",
  "reliable-1",
  "reliable-3",
  "iperf2",
  "sockperf",
];

/** One cell of the throughput table: a variant at a size. */
export interface ThroughputRow {
  /** Which sender and receiver. */
  variant: Variant;
  /** Payload (bulletin) size in bytes. */
  size: number;
  /** Reliable: the largest datagram. */
  mtu?: number;
  /** Reliable: the window in datagrams. */
  window?: number;
  /** The accepted run of each repetition. */
  runs: RunSummary[];
  /** How many runs were made, including those a lower offered rate replaced. */
  attempts: number;
  /**
   * Lossy transports: the receiver's rate when the sender ran flat out
   * (median over the flat-out attempts), whatever the loss; null when none.
   */
  flatOutPerSecond?: number | null;
  /** The worst loss of the flat-out attempts, percent. */
  flatOutLossPercent?: number | null;
  /** Every attempt (lossy transports), in order. */
  tried?: RunSummary[];
  /** Median received bulletins (= datagrams, except reliable) per second. */
  bulletinsPerSecond: number | null;
  /** Median datagrams per second (reliable: DATA datagrams). */
  datagramsPerSecond: number | null;
  /** Median payload megabytes (10^6) per second. */
  megabytesPerSecond: number | null;
  /** Worst loss of the accepted runs, percent. */
  lossPercent: number | null;
  /** Counts in the ratios. */
  valid: boolean;
  /** Why not valid, or why skipped. */
  note?: string;
}

/**
 * Builds a throughput cell from its repetitions. The cell is valid when
 * every repetition is; the figures are medians over the repetitions. A
 * refused reliable cell reports no figures at all.
 *
 * @param variant The variant.
 * @param size Payload size.
 * @param runs The accepted (or last) run of each repetition.
 * @param tried Every run made, in order (the accepted ones included).
 * @param extra Reliable settings.
 * @returns The cell.
 */
export function throughputRow(
  variant: Variant,
  size: number,
  runs: RunSummary[],
  tried: RunSummary[],
  extra: { mtu?: number; window?: number } = {},
): ThroughputRow {
  const valid = runs.length > 0 && runs.every((r) => r.valid);
  const reliable = variant.startsWith("reliable");
  const row: ThroughputRow = {
    variant,
    size,
    ...extra,
    runs,
    attempts: tried.length,
    bulletinsPerSecond: null,
    datagramsPerSecond: null,
    megabytesPerSecond: null,
    lossPercent: null,
    valid,
  };
  if (!reliable) {
    const flat = tried.filter((r) => r.offeredRate === null && r.received > 1);
    row.flatOutPerSecond = flat.length
      ? Math.round(median(flat.map((r) => r.receivedPerSecond)))
      : null;
    row.flatOutLossPercent = flat.length
      ? Math.max(...flat.map((r) => r.lossPercent))
      : null;
    row.tried = tried;
  }
  if (!valid) {
    const bad = runs.find((r) => !r.valid);
    row.note = runs.length === 0
      ? "no run"
      : `${reliable ? "refused" : "invalid"}: ${
        bad?.problems?.join("; ") ?? "?"
      }`;
  }
  if (runs.length === 0 || (reliable && !valid)) return row;
  row.bulletinsPerSecond = Math.round(
    median(runs.map((r) => r.receivedPerSecond)),
  );
  row.datagramsPerSecond = Math.round(
    median(runs.map((r) => r.datagramsPerSecond ?? r.receivedPerSecond)),
  );
  row.megabytesPerSecond =
    Math.round(median(runs.map((r) => r.bytesPerSecond)) / 1e4) / 100;
  row.lossPercent = Math.max(...runs.map((r) => r.lossPercent));
  return row;
}

/** A skipped cell (tool missing, not root). */
export function skippedRow(
  variant: Variant,
  size: number,
  reason: string,
): ThroughputRow {
  return {
    variant,
    size,
    runs: [],
    attempts: 0,
    bulletinsPerSecond: null,
    datagramsPerSecond: null,
    megabytesPerSecond: null,
    lossPercent: null,
    valid: false,
    note: `skipped: ${reason}`,
  };
}

/**
 * The variants of the security table: reliable mode without keys (the
 * baseline), with a group key (HMAC on every frame), with encryption too,
 * and with signatures too (the receiver trusts the sender's public key).
 */
export type SecurityVariant =
  | "none"
  | "key"
  | "key+encrypt"
  | "key+encrypt+sign";

/** Every security variant, in table and chart order (the baseline first). */
export const SECURITY_VARIANTS: readonly SecurityVariant[] = [
  "none",
  "key",
  "key+encrypt",
  "key+encrypt+sign",
];

/** One cell of the security table: reliable mode, one receiver, a variant at a size. */
export interface SecurityRow {
  /** Which path (`--io`) ran it; absent in results from before it was recorded: deno. */
  io?: string;
  /** Which keys. */
  variant: SecurityVariant;
  /** Bulletin size in bytes. */
  size: number;
  /** The largest datagram (before the guard's trailer). */
  mtu?: number;
  /** The window in datagrams. */
  window?: number;
  /** Every run, in order (a refused run ends the cell). */
  runs: RunSummary[];
  /** Median bulletins per second (every receiver acknowledged everything). */
  bulletinsPerSecond: number | null;
  /** Median DATA datagrams per second. */
  datagramsPerSecond: number | null;
  /** Median payload megabytes (10^6) per second. */
  megabytesPerSecond: number | null;
  /**
   * `bulletinsPerSecond` over the baseline's (`none`) at the same size, in
   * the same benchmark run; null when either is refused or missing.
   */
  ratio: number | null;
  /**
   * Each repetition's bulletins/s over the baseline's in the same
   * repetition (the variants run interleaved); only repetitions where both
   * stand.
   */
  runRatios: number[];
  /** Every run delivered everything exactly once, in order. */
  valid: boolean;
  /** Why not. */
  note?: string;
}

/**
 * Builds a security cell from its runs (ratios still unset: see
 * {@linkcode securityRatios}). Like a reliable throughput cell: valid when
 * every run is, and a refused cell reports no figures.
 *
 * @param variant The variant.
 * @param size Bulletin size.
 * @param runs Its runs, in order.
 * @param extra Reliable settings.
 * @returns The cell.
 */
export function securityRow(
  variant: SecurityVariant,
  size: number,
  runs: RunSummary[],
  extra: { io?: string; mtu?: number; window?: number } = {},
): SecurityRow {
  const valid = runs.length > 0 && runs.every((r) => r.valid);
  const row: SecurityRow = {
    variant,
    size,
    ...extra,
    runs,
    bulletinsPerSecond: null,
    datagramsPerSecond: null,
    megabytesPerSecond: null,
    ratio: null,
    runRatios: [],
    valid,
  };
  if (!valid) {
    const bad = runs.find((r) => !r.valid);
    row.note = runs.length === 0
      ? "no run"
      : `refused: ${bad?.problems?.join("; ") ?? "?"}`;
    return row;
  }
  row.bulletinsPerSecond = Math.round(
    median(runs.map((r) => r.receivedPerSecond)),
  );
  row.datagramsPerSecond = Math.round(
    median(runs.map((r) => r.datagramsPerSecond ?? r.receivedPerSecond)),
  );
  row.megabytesPerSecond =
    Math.round(median(runs.map((r) => r.bytesPerSecond)) / 1e4) / 100;
  return row;
}

/**
 * Sets each security cell's ratio to the baseline (`none`) at its size:
 * the ratio of the medians, rounded to 3 decimals, and the per-repetition
 * ratios. A cell, or a baseline, that is refused or missing has no ratio
 * (null, no run ratios); the baseline's own ratio is 1.
 *
 * @param rows The cells of one benchmark run.
 * @returns New cells, in the same order, with `ratio` and `runRatios` set.
 */
export function securityRatios(rows: SecurityRow[]): SecurityRow[] {
  return rows.map((row) => {
    const base = rows.find((r) =>
      r.variant === "none" && r.size === row.size &&
      (r.io ?? "deno") === (row.io ?? "deno")
    );
    const usable = (r: SecurityRow | undefined) =>
      r !== undefined && r.valid && r.bulletinsPerSecond !== null &&
      r.bulletinsPerSecond > 0;
    if (!usable(row) || !usable(base)) {
      return { ...row, ratio: null, runRatios: [] };
    }
    const runRatios: number[] = [];
    row.runs.forEach((run, k) => {
      const other = base!.runs[k];
      if (run.valid && other?.valid && other.receivedPerSecond > 0) {
        runRatios.push(round3(run.receivedPerSecond / other.receivedPerSecond));
      }
    });
    return {
      ...row,
      ratio: round3(row.bulletinsPerSecond! / base!.bulletinsPerSecond!),
      runRatios,
    };
  });
}

/** One-way latency at a fixed offered load. */
export interface LatencyRow {
  /** `bare` (stamp in the payload), `plain` (idem) or `reliable` (frame timestamp). */
  variant: "bare" | "plain" | "reliable";
  /** Offered bulletins per second. */
  rate: number;
  /** Bulletin size. */
  size: number;
  /** Sent. */
  sent: number;
  /** Received. */
  received: number;
  /** Loss, percent. */
  lossPercent: number;
  /** Percentiles, µs. */
  latency: LatencySummary | null;
  /** Reliable: from the hand-over time (packing and window included), µs. */
  appLatency?: LatencySummary | null;
  /** Counts in the ratios: no loss beyond the policy, nothing refused. */
  valid: boolean;
  /** Why not valid. */
  note?: string;
}

/** Time until every receiver acknowledged everything. */
export interface AckRow {
  /** Receivers. */
  receivers: number;
  /** Bulletins sent. */
  bulletins: number;
  /** Bulletin size. */
  size: number;
  /** Median of the sender report's `elapsedMs` (session start to report). */
  elapsedMs: number | null;
  /** Median time from the first bulletin handed over to the report. */
  streamMs: number | null;
  /** Each run's `elapsedMs`. */
  runs: number[];
  /** Every run delivered everything. */
  valid: boolean;
  /** Why not. */
  note?: string;
}

/** One process's memory while streaming. */
export interface MemoryFigures {
  /** Resident set once ready, before any traffic, MiB. */
  idleMiB: number | null;
  /** Peak resident set (VmHWM at the end, or the largest sample), MiB. */
  peakMiB: number | null;
  /** Largest sample in the first half of the stream, MiB. */
  firstHalfMiB: number | null;
  /** Largest sample in the second half, MiB. */
  secondHalfMiB: number | null;
  /** Samples taken. */
  samples: number;
}

/** Peak memory while streaming a large amount through reliable mode. */
export interface MemoryRow {
  /** Payload bytes streamed. */
  bytes: number;
  /** Bulletins. */
  bulletins: number;
  /** Bulletin size. */
  size: number;
  /** Largest datagram. */
  mtu: number;
  /** Window, datagrams. */
  window: number;
  /** First bulletin to report, ms. */
  streamMs: number | null;
  /** The sender. */
  sender: MemoryFigures;
  /** The receiver. */
  receiver: MemoryFigures;
  /** Everything delivered. */
  valid: boolean;
  /** Why not. */
  note?: string;
}

/** One of issue #4's targets, with its measured value. */
export interface Target {
  /** Short id. */
  id: "reliable-1k" | "packing-64" | "latency-p99" | "memory";
  /** What is compared. */
  description: string;
  /** The measured ratio (or MiB for memory); null when not measurable. */
  measured: number | null;
  /** How it must compare. */
  comparison: ">=" | "<=" | "<";
  /** The threshold. */
  threshold: number;
  /** Whether it holds. */
  pass: boolean;
  /** The figures behind the ratio, or why it is missing. */
  detail: string;
  /**
   * Throughput targets: the same ratio against the bare loop's flat-out
   * receive rate (lossy), for comparison; not what pass/fail uses.
   */
  measuredVsFlatOut?: number | null;
}

function cell(
  rows: ThroughputRow[],
  variant: Variant,
  size: number,
): ThroughputRow | undefined {
  return rows.find((r) => r.variant === variant && r.size === size);
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function ratioTarget(
  base: Omit<Target, "measured" | "pass" | "detail">,
  top: { label: string; value: number | null; valid: boolean; note?: string },
  bottom: {
    label: string;
    value: number | null;
    valid: boolean;
    note?: string;
  },
): Target {
  for (const side of [top, bottom]) {
    if (!side.valid || side.value === null || !(side.value > 0)) {
      return {
        ...base,
        measured: null,
        pass: false,
        detail: `${side.label} not usable${side.note ? ` (${side.note})` : ""}`,
      };
    }
  }
  const measured = round3(top.value! / bottom.value!);
  const pass = base.comparison === ">="
    ? measured >= base.threshold
    : base.comparison === "<="
    ? measured <= base.threshold
    : measured < base.threshold;
  return {
    ...base,
    measured,
    pass,
    detail: `${top.label} ${top.value} / ${bottom.label} ${bottom.value}`,
  };
}

/**
 * Computes issue #4's four targets from one run's rows. A target whose
 * inputs are invalid (lossy, refused, missing) fails with the reason.
 *
 * @param input The rows.
 * @returns The targets, in the issue's order.
 */
export function computeTargets(input: {
  throughput: ThroughputRow[];
  latency: LatencyRow[];
  memory: MemoryRow | null;
}): Target[] {
  const rows = input.throughput;
  const side = (
    variant: Variant,
    size: number,
    field: "bulletins" | "datagrams",
  ) => {
    const row = cell(rows, variant, size);
    const value = row
      ? (field === "bulletins"
        ? row.bulletinsPerSecond
        : row.datagramsPerSecond)
      : null;
    return {
      label: `${variant} ${size} B ${field}/s`,
      value,
      valid: row?.valid ?? false,
      note: row?.note ?? (row ? undefined : "not measured"),
    };
  };
  const lat = (variant: LatencyRow["variant"]) => {
    const row = input.latency.find((r) =>
      r.variant === variant && r.rate === 10_000
    );
    return {
      label: `${variant} p99 at 10k/s µs`,
      value: row?.latency?.p99 ?? null,
      valid: row?.valid ?? false,
      note: row?.note ?? (row ? undefined : "not measured"),
    };
  };
  const flatOut = (target: Target, top: Variant, size: number): Target => {
    const numerator = cell(rows, top, size);
    const bare = cell(rows, "bare", size);
    const flat = bare?.flatOutPerSecond ?? null;
    target.measuredVsFlatOut =
      numerator?.valid && numerator.bulletinsPerSecond !== null && flat
        ? round3(numerator.bulletinsPerSecond / flat)
        : null;
    if (flat) {
      target.detail +=
        `; bare flat out ${flat}/s at ${bare?.flatOutLossPercent}% loss` +
        (target.measuredVsFlatOut === null
          ? ""
          : ` → ratio ${target.measuredVsFlatOut}`);
    }
    return target;
  };
  const targets: Target[] = [
    flatOut(
      ratioTarget(
        {
          id: "reliable-1k",
          description:
            "reliable mode (1 receiver) bulletins/s at 1 KiB vs the bare loop's packet rate",
          comparison: ">=",
          threshold: 0.7,
        },
        side("reliable-1", 1024, "bulletins"),
        side("bare", 1024, "datagrams"),
      ),
      "reliable-1",
      1024,
    ),
    flatOut(
      ratioTarget(
        {
          id: "packing-64",
          description:
            "reliable mode (1 receiver) 64-byte bulletins/s, packed, vs the bare loop's packet rate at 64 B",
          comparison: ">=",
          threshold: 3,
        },
        side("reliable-1", 64, "bulletins"),
        side("bare", 64, "datagrams"),
      ),
      "reliable-1",
      64,
    ),
    ratioTarget(
      {
        id: "latency-p99",
        description:
          "reliable mode p99 one-way latency at 10k bulletins/s vs the bare loop's",
        comparison: "<=",
        threshold: 1.5,
      },
      lat("reliable"),
      lat("bare"),
    ),
  ];
  const memory = input.memory;
  const base = {
    id: "memory" as const,
    description:
      "peak RSS of sender and receiver while streaming through reliable mode (MiB)",
    comparison: "<" as const,
    threshold: 100,
  };
  if (!memory || !memory.valid) {
    targets.push({
      ...base,
      measured: null,
      pass: false,
      detail: memory?.note ?? "not measured",
    });
  } else {
    const peaks = [memory.sender.peakMiB, memory.receiver.peakMiB];
    if (peaks.some((p) => p === null)) {
      targets.push({
        ...base,
        measured: null,
        pass: false,
        detail: "no samples",
      });
    } else {
      const measured = Math.max(...(peaks as number[]));
      targets.push({
        ...base,
        measured,
        pass: measured < base.threshold,
        detail:
          `sender ${memory.sender.peakMiB} MiB, receiver ${memory.receiver.peakMiB} MiB ` +
          `(idle ${memory.sender.idleMiB} / ${memory.receiver.idleMiB}; ` +
          `halves ${memory.sender.firstHalfMiB}→${memory.sender.secondHalfMiB} / ` +
          `${memory.receiver.firstHalfMiB}→${memory.receiver.secondHalfMiB}) ` +
          `over ${(memory.bytes / MIB / 1024).toFixed(2)} GiB`,
      });
    }
  }
  return targets;
}

/** A value for the text table. */
function fmt(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "-";
  return value.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

function pad(cells: string[][]): string {
  const widths = cells[0]!.map((_, k) =>
    Math.max(...cells.map((row) => (row[k] ?? "").length))
  );
  return cells.map((row) =>
    row.map((text, k) =>
      k === 0 ? text.padEnd(widths[k]!) : text.padStart(widths[k]!)
    )
      .join("  ").trimEnd()
  ).join("\n");
}

/**
 * A figure for a text table, as the tables here print them: `-` when
 * missing, else en-US grouping with exactly `digits` decimals.
 *
 * @param value The figure.
 * @param digits Decimals (default 0).
 * @returns The text.
 */
export function formatFigure(
  value: number | null | undefined,
  digits = 0,
): string {
  return fmt(value, digits);
}

/**
 * Aligns a text table: the first column left, the others right, two
 * spaces apart; the first row is the heading.
 *
 * @param cells Rows of cells, heading first.
 * @returns The lines.
 */
export function alignColumns(cells: string[][]): string {
  return pad(cells);
}

/**
 * Formats the security cells as a plain-text table: one line per variant
 * and size, with bulletins/s, datagrams/s, MB/s, the ratio to the baseline
 * (`none`) at the same size and each repetition's ratio.
 *
 * @param rows The cells, ratios set ({@linkcode securityRatios}).
 * @returns The heading and the table.
 */
export function formatSecurityTable(rows: SecurityRow[]): string {
  const head = [
    "io",
    "variant",
    "size B",
    "bulletins/s",
    "datagrams/s",
    "MB/s",
    "× no key",
    "per-run ×",
    "runs",
    "note",
  ];
  const lines = rows.map((r) => [
    r.io ?? "deno",
    r.variant,
    String(r.size),
    fmt(r.bulletinsPerSecond),
    fmt(r.datagramsPerSecond),
    fmt(r.megabytesPerSecond, 1),
    fmt(r.ratio, 3),
    r.runRatios.map((x) => fmt(x, 2)).join(","),
    String(r.runs.length),
    r.note ?? "",
  ]);
  return [
    "Security cost (reliable, 1 receiver; median of the runs; × no key = bulletins/s over the keyless baseline's, same run)",
    pad([head, ...lines]),
  ].join("\n");
}

/**
 * Formats the results as plain-text tables.
 *
 * @param input The rows and targets (and the security cells, when measured).
 * @returns The tables.
 */
export function formatTables(input: {
  throughput: ThroughputRow[];
  latency: LatencyRow[];
  ack: AckRow[];
  memory: MemoryRow | null;
  targets: Target[];
  security?: SecurityRow[];
}): string {
  const out: string[] = [];
  out.push(
    "Throughput (median of the runs; offered = rate of the accepted runs, - = flat out)",
  );
  const head = [
    "variant",
    "size B",
    "bulletins/s",
    "datagrams/s",
    "MB/s",
    "loss %",
    "runs",
    "tries",
    "offered/s",
    "flat-out recv/s (loss %)",
    "note",
  ];
  const rows = input.throughput.map((r) => [
    r.variant,
    String(r.size),
    fmt(r.bulletinsPerSecond),
    fmt(r.datagramsPerSecond),
    fmt(r.megabytesPerSecond, 1),
    fmt(r.lossPercent, 2),
    String(r.runs.length),
    String(r.attempts),
    r.runs.length === 0
      ? "-"
      : r.runs.map((x) => x.offeredRate === null ? "-" : fmt(x.offeredRate))
        .join(","),
    r.flatOutPerSecond
      ? `${fmt(r.flatOutPerSecond)} (${fmt(r.flatOutLossPercent, 2)})`
      : "",
    r.note ?? "",
  ]);
  out.push(pad([head, ...rows]));
  out.push("");
  out.push("One-way latency, µs (same host, same clock)");
  out.push(pad([
    [
      "variant",
      "rate/s",
      "size B",
      "received",
      "loss %",
      "p50",
      "p99",
      "p99.9",
      "max",
      "app p99",
      "note",
    ],
    ...input.latency.map((r) => [
      r.variant,
      fmt(r.rate),
      String(r.size),
      `${r.received}/${r.sent}`,
      fmt(r.lossPercent, 2),
      fmt(r.latency?.p50, 1),
      fmt(r.latency?.p99, 1),
      fmt(r.latency?.p999, 1),
      fmt(r.latency?.max, 1),
      fmt(r.appLatency?.p99, 1),
      r.note ?? "",
    ]),
  ]));
  out.push("");
  out.push(
    "Time until every receiver acknowledged (reliable, 1 KiB bulletins)",
  );
  out.push(pad([
    ["receivers", "bulletins", "elapsedMs", "stream ms", "runs", "note"],
    ...input.ack.map((r) => [
      String(r.receivers),
      String(r.bulletins),
      fmt(r.elapsedMs),
      fmt(r.streamMs),
      r.runs.join(","),
      r.note ?? "",
    ]),
  ]));
  const m = input.memory;
  if (m) {
    out.push("");
    out.push(
      `Memory: ${
        (m.bytes / MIB).toFixed(0)
      } MiB in ${m.bulletins} bulletins of ${m.size} B ` +
        `(mtu ${m.mtu}, window ${m.window}) in ${fmt(m.streamMs)} ms${
          m.note ? ` — ${m.note}` : ""
        }`,
    );
    out.push(pad([
      ["process", "idle MiB", "peak MiB", "1st half", "2nd half", "samples"],
      ...(["sender", "receiver"] as const).map((who) => [
        who,
        fmt(m[who].idleMiB, 1),
        fmt(m[who].peakMiB, 1),
        fmt(m[who].firstHalfMiB, 1),
        fmt(m[who].secondHalfMiB, 1),
        String(m[who].samples),
      ]),
    ]));
  }
  if (input.security && input.security.length > 0) {
    out.push("");
    out.push(formatSecurityTable(input.security));
  }
  out.push("");
  out.push("Targets");
  out.push(pad([
    ["target", "measured", "needed", "result", "vs flat-out bare", "detail"],
    ...input.targets.map((t) => [
      t.id,
      fmt(t.measured, t.id === "memory" ? 1 : 3),
      `${t.comparison} ${t.threshold}`,
      t.pass ? "PASS" : "FAIL",
      t.measuredVsFlatOut === undefined ? "" : fmt(t.measuredVsFlatOut, 3),
      t.detail,
    ]),
  ]));
  return out.join("\n");
}
