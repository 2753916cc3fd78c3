/**
 * The packet-rate section of `deno task bench` (`--only packets`): the
 * highest loss-free datagram rate over loopback multicast of three
 * sender → receiver pairs, at 64 B and 1,400 B:
 * - `c`: `bench/c/mmsg_send.c` → `bench/c/mmsg_recv.c` (sendmmsg/recvmmsg
 *   batches of 64, 8 MiB receive buffer), compiled with `cc -O2 -Wall` into
 *   a temporary directory at the start of the section: the baseline;
 * - `native`: `bench/native_send.ts` → `bench/native_recv.ts --io native`,
 *   the library's native endpoint (`lib/net/native_socket.ts`);
 * - `deno`: the same programs with `--io deno` (`lib/net/socket.ts`).
 *
 * Loss-free means at most 0.1% lost. Each pair's search: a run flat out,
 * then lower offered rates after each lossy run ({@linkcode nextPacketOffer}),
 * up to 6 runs, then up to two probes between the accepted rate and the
 * lossy one above it (geometric middle). The figure is what the receiver
 * got in the accepted run (datagrams per second, first to last datagram);
 * native and deno are reported as ratios to the C pair of the same run
 * (target: native ≥ 0.8× C at both sizes).
 *
 * As root everything runs inside a private network namespace (loopback
 * only, `_netns.ts`); otherwise on the host's 127.0.0.1.
 *
 * @module
 */

import { installed } from "./external.ts";
import {
  BenchProcess,
  createLoopbackNet,
  netnsUnavailable,
  runCommand,
} from "./_netns.ts";
import { alignColumns, formatFigure } from "./report.ts";
import { lossPercent } from "./stats.ts";

/** The three pairs, in table order. */
export type PairKind = "c" | "native" | "deno";

/** The pairs measured. */
export const PAIRS: readonly PairKind[] = ["c", "native", "deno"];

/** Datagram sizes of the section. */
export const PACKET_SIZES: readonly number[] = [64, 1400];

/** A run losing at most this (percent) is loss-free. */
export const LOSS_FREE_PERCENT = 0.1;

/** The native pair must reach this fraction of the C pair's rate. */
export const NATIVE_THRESHOLD = 0.8;

/** Runs per search before its probes. */
const MAX_TRIES = 6;
/** Probes between the accepted rate and the lossy one above. */
const PROBES = 2;
/** A receiver ends this long after its last datagram. */
const IDLE_MS = 200;
/** Start-up to `ready`. */
const START_MS = 15_000;

/** One run of a pair. */
export interface PairRun {
  /** Offered datagrams per second; null = flat out. */
  offeredRate: number | null;
  /** Datagrams sent. */
  sent: number;
  /** Datagrams received. */
  received: number;
  /** Sent per second (the sender's loop). */
  sentPerSecond: number;
  /** Received per second, first datagram to last. */
  receivedPerSecond: number;
  /** Percent of `sent` not received. */
  lossPercent: number;
  /** At most {@linkcode LOSS_FREE_PERCENT} lost, and something received. */
  lossFree: boolean;
  /** Why the run failed, when it did. */
  problems?: string[];
}

/**
 * Makes a run from what the sender and receiver counted.
 *
 * @param fields The counts and rates.
 * @returns The run, judged loss-free or not.
 */
export function pairRun(fields: {
  offeredRate: number | null;
  sent: number;
  received: number;
  sentPerSecond: number;
  receivedPerSecond: number;
}): PairRun {
  const received = Math.min(fields.received, fields.sent);
  const loss = lossPercent(fields.sent, received);
  const run: PairRun = {
    ...fields,
    received,
    sentPerSecond: Math.round(fields.sentPerSecond),
    receivedPerSecond: Math.round(fields.receivedPerSecond),
    lossPercent: Math.round(loss * 1000) / 1000,
    lossFree: received > 1 && loss <= LOSS_FREE_PERCENT,
  };
  if (!run.lossFree) {
    run.problems = received <= 1
      ? ["nothing received"]
      : [`loss ${loss.toFixed(3)}% > ${LOSS_FREE_PERCENT}%`];
  }
  return run;
}

/**
 * A run that failed outright (a program did not start or report).
 *
 * @param offeredRate The offer of the run.
 * @param problem Why it failed (its first line is kept).
 * @returns The run: nothing received, not loss-free.
 */
export function failedPairRun(
  offeredRate: number | null,
  problem: string,
): PairRun {
  return {
    offeredRate,
    sent: 0,
    received: 0,
    sentPerSecond: 0,
    receivedPerSecond: 0,
    lossPercent: 100,
    lossFree: false,
    problems: [problem.split("\n")[0]!.slice(0, 300)],
  };
}

/**
 * The next offered rate after a lossy run: a fraction of what the receiver
 * managed or of the previous offer, whichever is lower: 90% up to 1% loss,
 * 75% up to 3%, 50% up to 10%, else 35%.
 *
 * @param run The lossy run.
 * @returns Datagrams per second to offer next (at least 1,000).
 */
export function nextPacketOffer(run: PairRun): number {
  const base = run.offeredRate === null
    ? run.receivedPerSecond
    : Math.min(run.receivedPerSecond, run.offeredRate);
  const factor = run.lossPercent <= 1
    ? 0.9
    : run.lossPercent <= 3
    ? 0.75
    : run.lossPercent <= 10
    ? 0.5
    : 0.35;
  return Math.max(1000, Math.round(base * factor));
}

/** What a search found. */
export interface SearchOutcome {
  /** The accepted (loss-free) run with the highest received rate, if any. */
  accepted: PairRun | null;
  /** Every run, in order. */
  tried: PairRun[];
}

/**
 * Searches the highest loss-free offered rate: flat out first, then lower
 * offers after lossy runs (a failed run is retried at the same offer), up
 * to `maxTries` runs; then up to `probes` runs halfway (geometric middle)
 * between the accepted offer and the lossy rate above it, each narrowing
 * the interval.
 *
 * @param measure Runs the pair at an offered rate (null: flat out).
 * @param maxTries Runs before the probes.
 * @param probes Probes after an accepted run.
 * @returns The accepted run and every run.
 */
export async function searchLossFree(
  measure: (rate: number | null) => Promise<PairRun>,
  maxTries: number = MAX_TRIES,
  probes: number = PROBES,
): Promise<SearchOutcome> {
  const tried: PairRun[] = [];
  let rate: number | null = null;
  let accepted: PairRun | null = null;
  let above: PairRun | undefined;
  for (let tries = 0; tries < maxTries; tries++) {
    const run = await measure(rate);
    tried.push(run);
    if (run.lossFree) {
      accepted = run;
      break;
    }
    if (run.received > 1) {
      above = run;
      rate = nextPacketOffer(run);
    }
  }
  if (accepted === null || accepted.offeredRate === null || !above) {
    return { accepted, tried };
  }
  let low = accepted.offeredRate;
  let high = above.offeredRate === null
    ? above.receivedPerSecond
    : Math.min(above.receivedPerSecond, above.offeredRate);
  for (let k = 0; k < probes; k++) {
    const middle = Math.round(Math.sqrt(low * high));
    if (!(middle > low * 1.05)) break;
    const probe = await measure(middle);
    tried.push(probe);
    if (probe.lossFree) {
      low = middle;
      if (probe.receivedPerSecond > accepted.receivedPerSecond) {
        accepted = probe;
      }
    } else high = middle;
  }
  return { accepted, tried };
}

/** One cell: a pair at a size. */
export interface PacketRow {
  /** Which pair. */
  pair: PairKind;
  /** Datagram size, bytes. */
  size: number;
  /** Loss-free datagrams per second received (the accepted run). */
  rate: number | null;
  /** The same in payload MB/s (1e6). */
  megabytesPerSecond: number | null;
  /** The accepted run's offered rate (null: flat out). */
  offeredRate: number | null;
  /** The first (flat-out) run: what the sender managed, the receiver got, the loss. */
  flatOut: {
    sentPerSecond: number;
    receivedPerSecond: number;
    lossPercent: number;
  } | null;
  /** Every run. */
  tried: PairRun[];
  /** native and deno: rate over the C pair's at the same size. */
  ratio: number | null;
  /** native: the ratio needed. */
  threshold: number | null;
  /** native: whether it is met (null: not measurable). */
  met: boolean | null;
  /** A loss-free run was found. */
  valid: boolean;
  /** Why not. */
  note?: string;
}

/**
 * Makes a cell's row from its search.
 *
 * @param pair Which pair.
 * @param size Datagram size.
 * @param outcome The search.
 * @returns The row (ratios are set by {@linkcode packetRatios}).
 */
export function packetRow(
  pair: PairKind,
  size: number,
  outcome: SearchOutcome,
): PacketRow {
  const first = outcome.tried[0];
  const accepted = outcome.accepted;
  const row: PacketRow = {
    pair,
    size,
    rate: accepted?.receivedPerSecond ?? null,
    megabytesPerSecond: accepted
      ? Math.round(accepted.receivedPerSecond * size / 1e6 * 10) / 10
      : null,
    offeredRate: accepted?.offeredRate ?? null,
    flatOut: first && first.offeredRate === null && first.sent > 0
      ? {
        sentPerSecond: first.sentPerSecond,
        receivedPerSecond: first.receivedPerSecond,
        lossPercent: first.lossPercent,
      }
      : null,
    tried: outcome.tried,
    ratio: null,
    threshold: pair === "native" ? NATIVE_THRESHOLD : null,
    met: null,
    valid: accepted !== null,
  };
  if (!accepted) {
    const last = outcome.tried.at(-1);
    row.note = `no loss-free run in ${outcome.tried.length}: ${
      last?.problems?.[0] ?? "?"
    }`;
  }
  return row;
}

/**
 * Sets the native and deno rows' ratios to the C row of the same size, and
 * whether native meets {@linkcode NATIVE_THRESHOLD}.
 *
 * @param rows The rows.
 * @returns The same rows.
 */
export function packetRatios(rows: PacketRow[]): PacketRow[] {
  for (const row of rows) {
    if (row.pair === "c") continue;
    const base = rows.find((r) => r.pair === "c" && r.size === row.size);
    if (
      base && base.valid && row.valid && base.rate !== null &&
      base.rate > 0 && row.rate !== null
    ) {
      row.ratio = Math.round(row.rate / base.rate * 1000) / 1000;
      row.met = row.threshold === null ? null : row.ratio >= row.threshold;
    } else {
      row.ratio = null;
      row.met = null;
    }
  }
  return rows;
}

/** One target: the native pair against C at a size. */
export interface PacketTarget {
  /** E.g. `native 64`. */
  id: string;
  /** The ratio, or null. */
  measured: number | null;
  /** Needed: at least this. */
  threshold: number;
  /** Whether it holds. */
  met: boolean;
  /** The figures, or why missing. */
  detail: string;
}

/**
 * The targets: native ≥ 0.8× C at each size.
 *
 * @param rows The rows, ratios set.
 * @returns One target per size.
 */
export function packetTargets(rows: PacketRow[]): PacketTarget[] {
  const sizes = [...new Set(rows.map((r) => r.size))];
  return sizes.map((size) => {
    const native = rows.find((r) => r.pair === "native" && r.size === size);
    const c = rows.find((r) => r.pair === "c" && r.size === size);
    const id = `native ${size}`;
    if (!native || !c || native.ratio === null) {
      const why = !c || !c.valid
        ? `C pair not usable (${c?.note ?? "missing"})`
        : `native pair not usable (${native?.note ?? "missing"})`;
      return {
        id,
        measured: null,
        threshold: NATIVE_THRESHOLD,
        met: false,
        detail: why,
      };
    }
    return {
      id,
      measured: native.ratio,
      threshold: NATIVE_THRESHOLD,
      met: native.ratio >= NATIVE_THRESHOLD,
      detail: `native ${native.rate}/s / C ${c.rate}/s`,
    };
  });
}

/** The section's results (`results.json` key `packets`). */
export interface PacketsSection {
  /** Why it did not run, or null. */
  skipped: string | null;
  /** How it ran. */
  settings: Record<string, unknown>;
  /** The cells. */
  rows: PacketRow[];
  /** The targets. */
  targets: PacketTarget[];
}

/**
 * Formats the section as a text table (or why it was skipped).
 *
 * @param section The section.
 * @returns The heading and the table.
 */
export function formatPacketsTable(section: PacketsSection): string {
  const title =
    `Packet rate vs a C sendmmsg/recvmmsg pair (loss-free = loss ≤ ${LOSS_FREE_PERCENT}%; × C = rate over the C pair's, same run)`;
  if (section.skipped !== null) {
    return `${title}\n  skipped: ${section.skipped}`;
  }
  const head = [
    "pair",
    "size B",
    "loss-free/s",
    "MB/s",
    "× C",
    "target",
    "offered/s",
    "flat-out sent/s → recv/s (loss %)",
    "tries",
    "note",
  ];
  const lines = section.rows.map((r) => [
    r.pair,
    String(r.size),
    formatFigure(r.rate),
    formatFigure(r.megabytesPerSecond, 1),
    formatFigure(r.ratio, 3),
    r.threshold === null
      ? ""
      : `≥ ${r.threshold} ${r.met === null ? "-" : r.met ? "met" : "missed"}`,
    r.valid ? (r.offeredRate === null ? "-" : formatFigure(r.offeredRate)) : "",
    r.flatOut
      ? `${formatFigure(r.flatOut.sentPerSecond)} → ${
        formatFigure(r.flatOut.receivedPerSecond)
      } (${formatFigure(r.flatOut.lossPercent, 2)})`
      : "",
    String(r.tried.length),
    r.note ?? "",
  ]);
  return [title, alignColumns([head, ...lines])].join("\n");
}

/**
 * Reads the `result` line a program printed (`{"event":"result",…}`).
 *
 * @param lines Standard output lines.
 * @returns Its fields, or null.
 */
export function resultLine(
  lines: readonly string[],
): Record<string, unknown> | null {
  for (let k = lines.length - 1; k >= 0; k--) {
    const line = lines[k]!.trim();
    if (!line.startsWith("{") || !line.includes('"event":"result"')) continue;
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      return null;
    }
  }
  return null;
}

// ---- running ---------------------------------------------------------------------

/** Options of {@linkcode packetsSection}. */
export interface PacketsOptions {
  /** Seconds of traffic per run (default 1). */
  seconds?: number;
  /** Prints one progress line (default `console.log`). */
  log?: (line: string) => void;
}

interface PairContext {
  ns: string | undefined;
  binDir: string;
  root: string;
  seconds: number;
  group: string;
  port: number;
  runs: number;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function numberField(value: Record<string, unknown>, key: string): number {
  const x = value[key];
  return typeof x === "number" && Number.isFinite(x) ? x : 0;
}

/** The receiver's and the sender's command lines of a pair. */
function pairCommands(
  ctx: PairContext,
  pair: PairKind,
  port: number,
  size: number,
  rate: number | null,
): { recv: string[]; send: string[] } {
  const count = rate === null ? 1_000_000_000 : Math.round(rate * ctx.seconds);
  const maxMs = ctx.seconds * 1000 + 4000;
  if (pair === "c") {
    return {
      recv: [
        `${ctx.binDir}/mmsg_recv`,
        ctx.group,
        String(port),
        "0",
        String(IDLE_MS),
        String(maxMs),
      ],
      send: [
        `${ctx.binDir}/mmsg_send`,
        ctx.group,
        String(port),
        String(size),
        String(count),
        String(ctx.seconds),
        String(rate ?? 0),
      ],
    };
  }
  const deno = [
    Deno.execPath(),
    "run",
    "--quiet",
    "--allow-all",
    "--unstable-net",
  ];
  return {
    recv: [
      ...deno,
      `${ctx.root}bench/native_recv.ts`,
      "--io",
      pair,
      "--group",
      ctx.group,
      "--port",
      String(port),
      "--idle-ms",
      String(IDLE_MS),
      "--max-ms",
      String(maxMs),
    ],
    send: [
      ...deno,
      `${ctx.root}bench/native_send.ts`,
      "--io",
      pair,
      "--group",
      ctx.group,
      "--port",
      String(port),
      "--size",
      String(size),
      "--count",
      String(count),
      "--seconds",
      String(ctx.seconds),
      "--rate",
      String(rate ?? 0),
    ],
  };
}

/** One run: the receiver, once ready the sender, both bounded and killed. */
async function pairRunOnce(
  ctx: PairContext,
  pair: PairKind,
  size: number,
  rate: number | null,
): Promise<PairRun> {
  ctx.runs += 1;
  const port = ctx.port + ctx.runs;
  const { recv, send } = pairCommands(ctx, pair, port, size, rate);
  const receiver = new BenchProcess(
    `${pair} receiver`,
    recv[0]!,
    recv.slice(1),
    {
      ns: ctx.ns,
      cwd: ctx.root,
    },
  );
  let sender: BenchProcess | undefined;
  try {
    await receiver.waitForLine((l) => l.includes('"event":"ready"'), START_MS);
    sender = new BenchProcess(`${pair} sender`, send[0]!, send.slice(1), {
      ns: ctx.ns,
      cwd: ctx.root,
    });
    const sent = await sender.waitExit(START_MS + ctx.seconds * 1000 + 10_000);
    const got = await receiver.waitExit(ctx.seconds * 1000 + 10_000);
    const out = resultLine(sender.lines);
    const into = resultLine(receiver.lines);
    if (sent.code !== 0 || !out) {
      return failedPairRun(
        rate,
        `sender exited ${sent.code}: ${sender.stderr.trim().slice(-300)}`,
      );
    }
    if (got.code !== 0 || !into) {
      return failedPairRun(
        rate,
        `receiver exited ${got.code}: ${receiver.stderr.trim().slice(-300)}`,
      );
    }
    return pairRun({
      offeredRate: rate,
      sent: numberField(out, "sent"),
      received: numberField(into, "received"),
      sentPerSecond: numberField(out, "rate"),
      receivedPerSecond: numberField(into, "rate"),
    });
  } catch (error) {
    return failedPairRun(rate, errorText(error));
  } finally {
    await sender?.kill();
    await receiver.kill();
  }
}

/** Compiles the C pair into `dir`; returns the compiler's complaint, if any. */
async function compilePair(
  root: string,
  dir: string,
): Promise<string | undefined> {
  for (const name of ["mmsg_send", "mmsg_recv"]) {
    const result = await runCommand("cc", [
      "-O2",
      "-Wall",
      "-o",
      `${dir}/${name}`,
      `${root}bench/c/${name}.c`,
    ], { timeoutMs: 60_000 });
    if (!result.success) {
      return `cc ${name}.c failed: ${result.stderr.trim().slice(0, 300)}`;
    }
  }
  return undefined;
}

/**
 * Runs the section: at each size, the C pair's search, then native's, then
 * deno's; ratios against the C pair of the same run.
 *
 * @param options Seconds per run and the progress printer.
 * @returns The rows, targets and settings; `skipped` says why when it could
 * not run.
 */
export async function packetsSection(
  options: PacketsOptions = {},
): Promise<PacketsSection> {
  const log = options.log ?? console.log;
  const seconds = Math.max(0.2, options.seconds ?? 1);
  const root = new URL("..", import.meta.url).pathname;
  const settings: Record<string, unknown> = {
    sizes: PACKET_SIZES,
    pairs: PAIRS,
    secondsPerRun: seconds,
    lossFreePercent: LOSS_FREE_PERCENT,
    maxTries: MAX_TRIES,
    probes: PROBES,
    idleMs: IDLE_MS,
    nativeThreshold: NATIVE_THRESHOLD,
    figure:
      "the receiver's datagrams/s (first to last) in the loss-free run with the highest rate",
    c: "cc -O2 -Wall; sendmmsg/recvmmsg batches of 64; receive buffer 8 MiB (SO_RCVBUFFORCE), send buffer 4 MiB",
    native:
      "bench/native_send.ts / native_recv.ts --io native (lib/net/native_socket.ts defaults)",
    deno: "bench/native_send.ts / native_recv.ts --io deno (lib/net/socket.ts)",
  };
  if (!(await installed("cc", ["--version"]))) {
    log("  skipped: no C compiler (cc)");
    return { skipped: "no C compiler (cc)", settings, rows: [], targets: [] };
  }
  const binDir = await Deno.makeTempDir({ prefix: "mcast-bench-cpair-" });
  let net: AsyncDisposable | undefined;
  try {
    const compileProblem = await compilePair(root, binDir);
    if (compileProblem !== undefined) {
      log(`  skipped: ${compileProblem}`);
      return { skipped: compileProblem, settings, rows: [], targets: [] };
    }
    const noNamespace = await netnsUnavailable();
    let ns: string | undefined;
    if (noNamespace === undefined) {
      const made = await createLoopbackNet({ role: "pk" });
      net = made;
      ns = made.sender.ns;
      settings.network = "private namespace, lo (127.0.0.1)";
    } else {
      settings.network = `host lo, 127.0.0.1 (${noNamespace})`;
      log(`  on the host's 127.0.0.1: ${noNamespace}`);
    }
    const ctx: PairContext = {
      ns,
      binDir,
      root,
      seconds,
      group: `239.255.78.${1 + Math.floor(Math.random() * 250)}`,
      port: 40_000 + Math.floor(Math.random() * 20_000),
      runs: 0,
    };
    const rows: PacketRow[] = [];
    for (const size of PACKET_SIZES) {
      for (const pair of PAIRS) {
        const outcome = await searchLossFree((rate) =>
          pairRunOnce(ctx, pair, size, rate)
        );
        const row = packetRow(pair, size, outcome);
        rows.push(row);
        log(
          `  ${pair.padEnd(6)} ${String(size).padStart(5)} B  ${
            row.rate === null
              ? `-  [${row.note}]`
              : `${row.rate.toLocaleString("en-US")}/s loss-free (offered ${
                row.offeredRate === null
                  ? "flat out"
                  : row.offeredRate.toLocaleString("en-US")
              }, ${row.tried.length} runs)`
          }`,
        );
      }
    }
    packetRatios(rows);
    return { skipped: null, settings, rows, targets: packetTargets(rows) };
  } finally {
    if (net) {
      try {
        await net[Symbol.asyncDispose]();
      } catch (error) {
        log(`  cannot delete namespace: ${errorText(error)}`);
      }
    }
    await Deno.remove(binDir, { recursive: true }).catch(() => {});
  }
}
