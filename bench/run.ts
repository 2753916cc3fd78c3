/**
 * `deno task bench`: the loopback benchmark of issue #4. Every sender and
 * receiver is its own process (`bench/*_send.ts`, `bench/*_recv.ts`); the
 * driver waits for each receiver's `ready` line (joined) before starting a
 * sender, bounds every wait, and kills every process in `finally`.
 *
 * Measures, all on 127.0.0.1 with TTL 1 and groups 239.255.x.y:
 * - throughput at 64 B, 1 KiB, 8 KiB, 60 KiB: the bare Deno `DatagramConn`
 *   loop (the runtime's ceiling), mcast plain mode, mcast reliable mode with
 *   1 and 3 receivers, and iperf2 / sockperf when installed (the C ceiling);
 * - one-way latency p50/p99/p99.9 at 1k and 10k bulletins/s;
 * - the time until every receiver acknowledged 1000 bulletins (1, 3, 10
 *   receivers);
 * - peak RSS of sender and receiver while streaming 1 GiB;
 * - the cost of keys: reliable mode, 1 receiver, 64 B (packed) and 1 KiB
 *   bulletins, without keys, with a group key (HMAC on every frame), with
 *   encryption too and with signatures too (the receiver trusts the
 *   sender's public key), the variants interleaved in each repetition, each
 *   reported with its ratio to the keyless baseline of the same run. The
 *   keys are made in a temporary directory, removed at the end.
 *
 * Loss policy: a lossy transport's run (bare, plain, iperf2, sockperf) that
 * lost more than 1% is rerun at a lower offered rate (below what the
 * receiver managed), up to 6 tries (3 for iperf2 and sockperf), then once
 * halfway back up; the cell's figure is what the receiver got in the
 * accepted runs, and the receiver's rate when the sender ran flat out is
 * reported beside it. A cell with no accepted run is invalid and left out
 * of the ratios. A reliable run that did not deliver every bulletin to
 * every receiver exactly once, in order, is refused (no figures).
 *
 * Writes `bench/results.json` and `bench/chart.svg` and prints the tables.
 * Options: `--reps N` (repetitions of each throughput cell, default 3),
 * `--seconds S` (traffic per throughput run, default 1), `--gib G` (memory
 * stream, default 1), `--out DIR` (default `bench/`; relative to the
 * repository unless absolute), `--render` (only redraw the chart and tables
 * from an existing `results.json`), `--only security` (only the cost of
 * keys, about 1 minute: writes `security.json` beside `results.json`, which
 * it leaves alone, and prints its table), `--only uftp` (only the uftp
 * side-by-side section, `bench/uftp.ts`, 2 repetitions per cell unless
 * `--reps` says otherwise: writes `uftp.json` the same way), `--only packets`
 * (only the packet rate against a C sendmmsg/recvmmsg pair,
 * `bench/c_pair.ts`: writes `packets.json`). A full run includes both
 * sections too (keys `uftp` and `packets` of `results.json`; a section that
 * cannot run here, e.g. uftp not installed or not root, records why).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { generateKeyFile } from "../lib/security/keys.ts";
import type { IoPath } from "../lib/net/io.ts";
import { nativeUnavailable } from "../lib/net/native_socket.ts";
import { renderChart } from "./chart.ts";
import { renderUftpChart } from "./uftp_chart.ts";
import { formatPacketsTable, packetsSection } from "./c_pair.ts";
import { formatUftpTable, uftpSection } from "./uftp.ts";
import { installed, runExternal, type Tool } from "./external.ts";
import type { BenchKeys } from "./_keys.ts";
import { procMemory, ROOT, WorkerProcess } from "./_proc.ts";
import {
  type AckRow,
  computeTargets,
  formatSecurityTable,
  formatTables,
  type LatencyRow,
  lossyRun,
  MAX_LOSS_PERCENT,
  type MemoryFigures,
  type MemoryRow,
  MIB,
  nextOffer,
  type ReceiveResult,
  reliableProblems,
  type ReliableSendResult,
  type RunSummary,
  SECURITY_VARIANTS,
  securityRatios,
  type SecurityRow,
  securityRow,
  type SecurityVariant,
  type SendResult,
  skippedRow,
  type ThroughputRow,
  throughputRow,
  type Variant,
} from "./report.ts";
import { lossPercent, median } from "./stats.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    reps: { type: "string" },
    seconds: { type: "string", default: "1" },
    gib: { type: "string", default: "1" },
    out: { type: "string", default: "bench" },
    render: { type: "boolean", default: false },
    only: { type: "string" },
  },
});

const ONLY = ["security", "uftp", "packets"];
if (flags.only !== undefined && !ONLY.includes(flags.only)) {
  console.error(
    `bench/run.ts: --only takes "security", "uftp" or "packets", not ${
      JSON.stringify(flags.only)
    }`,
  );
  Deno.exit(2);
}

const REPS = Math.max(1, Number(flags.reps ?? "3"));
/** Repetitions of each uftp side-by-side cell (each moves 100 MB). */
const UFTP_REPS = Math.max(1, Number(flags.reps ?? "2"));
const SECONDS = Math.max(1, Math.round(Number(flags.seconds)));
const DURATION_MS = SECONDS * 1000;
const STREAM_BYTES = Math.round(Number(flags.gib) * 2 ** 30);
const OUT_DIR = flags.out.startsWith("/") ? flags.out : `${ROOT}${flags.out}`;
const SIZES = [64, 1024, 8192, 61440];
/** Bulletin sizes of the security section (64 B ones are packed). */
const SECURITY_SIZES = [64, 1024];
/** Runs per repetition of a lossy Deno cell before it is declared invalid. */
const MAX_TRIES = 6;
/** The same for iperf2 and sockperf (informative, and slower to run). */
const MAX_TRIES_EXTERNAL = 3;
/** A receiver of a lossy transport ends this long after the last datagram. */
const IDLE_MS = 150;
/** Process start-up to `ready`. */
const START_MS = 15_000;
/** The reliable sender's retransmission buffer (the library's default). */
const BUFFER_BYTES = 8 * MIB;
/** Reliable sender deadline after the last bulletin. */
const DEADLINE_MS = 15_000;
const LATENCY_LOADS = [
  { rate: 1000, count: 2000 },
  { rate: 10_000, count: 10_000 },
];
const LATENCY_SIZE = 64;
const ACK_RECEIVERS = [1, 3, 10];
const ACK_BULLETINS = 1000;

// ---- channels: a fresh group and port for every run ------------------------

const portBase = 20_000 + Math.floor(Math.random() * 20_000);
const groupBlock = 200 + Math.floor(Math.random() * 50);
let channels = 0;

interface Channel {
  group: string;
  port: number;
}

function channel(): Channel {
  channels += 1;
  return {
    group: `239.255.${groupBlock}.${(channels % 254) + 1}`,
    port: portBase + channels,
  };
}

// ---- reliable-mode settings ---------------------------------------------------

/**
 * The reliable mode's datagram size for a bulletin size: the library's
 * default 1400 up to 1 KiB (64-byte bulletins are packed, 1 KiB ones go one
 * per datagram), else exactly one bulletin per datagram, as the bare loop
 * sends them.
 */
function mtuFor(size: number): number {
  return size <= 1024 ? 1400 : size + 62;
}

/**
 * The window, in datagrams: the library's 4096, but no more than the
 * retransmission buffer holds. With larger datagrams the default window
 * outruns the 8 MiB buffer, which then evicts data a receiver still needs
 * (GONE, bulletins lost for good).
 */
function windowFor(mtu: number): number {
  return Math.min(4096, Math.floor(BUFFER_BYTES / mtu));
}

// ---- one run of each kind -----------------------------------------------------

function asType<T>(line: unknown): T {
  return line as T;
}

function failed(rate: number | null, error: unknown): RunSummary {
  const message = error instanceof Error ? error.message : String(error);
  return {
    offeredRate: rate,
    sent: 0,
    received: 0,
    sentPerSecond: 0,
    receivedPerSecond: 0,
    bytesPerSecond: 0,
    lossPercent: 100,
    valid: false,
    problems: [message.split("\n")[0]!.slice(0, 300)],
  };
}

interface LossyOptions {
  rate: number | null;
  durationMs?: number;
  count?: number;
  latency?: boolean;
}

interface LossyOutcome {
  send: SendResult;
  recv: ReceiveResult;
}

/** One run of the bare loop or plain mode: one sender, one receiver. */
async function lossyPair(
  kind: "bare" | "plain",
  size: number,
  options: LossyOptions,
): Promise<LossyOutcome> {
  const ch = channel();
  const limitMs = (options.durationMs ??
    (options.count! * 1000 / (options.rate ?? 10_000))) + 20_000;
  const recv = kind === "bare"
    ? new WorkerProcess("bare receiver", "bare_recv.ts", {
      ...ch,
      idleMs: IDLE_MS,
      maxMs: limitMs,
      latency: options.latency,
    })
    : new WorkerProcess("plain receiver", "mcast_recv.ts", {
      mode: "plain",
      ...ch,
      idleMs: IDLE_MS,
      maxMs: limitMs,
      latency: options.latency,
    });
  let send: WorkerProcess | undefined;
  try {
    await recv.waitFor("ready", START_MS);
    const config = {
      ...ch,
      size,
      durationMs: options.durationMs,
      count: options.count,
      rate: options.rate ?? undefined,
      stamp: options.latency === true,
    };
    send = kind === "bare"
      ? new WorkerProcess("bare sender", "bare_send.ts", config)
      : new WorkerProcess("plain sender", "mcast_send.ts", {
        mode: "plain",
        ...config,
      });
    const sent = asType<SendResult>(
      await send.waitFor("result", START_MS + limitMs),
    );
    const received = asType<ReceiveResult>(
      await recv.waitFor("result", IDLE_MS + 10_000),
    );
    return { send: sent, recv: received };
  } finally {
    await send?.kill();
    await recv.kill();
  }
}

async function lossyThroughputRun(
  kind: "bare" | "plain",
  size: number,
  rate: number | null,
): Promise<RunSummary> {
  try {
    const { send, recv } = await lossyPair(kind, size, {
      rate,
      durationMs: DURATION_MS,
    });
    return lossyRun({
      offeredRate: rate,
      sent: send.sent,
      received: recv.received,
      sentPerSecond: send.pps,
      receivedPerSecond: recv.pps,
      bytesPerSecond: recv.bytesPerSecond,
    });
  } catch (error) {
    return failed(rate, error);
  }
}

interface ReliableOptions {
  /** `--io` of every worker (default `deno`). */
  io?: IoPath;
  durationMs?: number;
  count?: number;
  rate?: number;
  latency?: boolean;
  mtu?: number;
  window?: number;
  /** Receivers end on their own after `count` bulletins. */
  receiversCount?: boolean;
  /** The sender's and the receivers' key options (none: no keys). */
  keys?: SessionKeys;
}

/** Key options of a reliable session's processes. */
interface SessionKeys {
  /** The sender's: `--key-file`, `--encrypt`, `--sign-key`. */
  sender: BenchKeys;
  /** Every receiver's: `--key-file`, `--trust`. */
  receiver: BenchKeys;
}

interface ReliableOutcome {
  sender: ReliableSendResult;
  receivers: ReceiveResult[];
  problems: string[];
}

/** One reliable session: `receivers` receivers, then the sender. */
async function reliableSession(
  size: number,
  receivers: number,
  options: ReliableOptions,
): Promise<ReliableOutcome> {
  const ch = channel();
  const mtu = options.mtu ?? mtuFor(size);
  const maxMs = (options.durationMs ?? 10_000) + DEADLINE_MS + 30_000;
  const workers: WorkerProcess[] = [];
  let sender: WorkerProcess | undefined;
  try {
    for (let k = 1; k <= receivers; k++) {
      workers.push(
        new WorkerProcess(`reliable receiver r${k}`, "mcast_recv.ts", {
          mode: "reliable",
          ...ch,
          name: `r${k}`,
          size,
          count: options.receiversCount ? options.count : undefined,
          maxMs,
          latency: options.latency,
          keys: options.keys?.receiver,
          io: options.io ?? "deno",
        }),
      );
    }
    await Promise.all(
      workers.map((w) => w.waitFor("ready", START_MS + 2000 * receivers)),
    );
    sender = new WorkerProcess("reliable sender", "mcast_send.ts", {
      mode: "reliable",
      ...ch,
      size,
      durationMs: options.durationMs,
      count: options.count,
      rate: options.rate,
      stamp: options.latency === true,
      receivers,
      mtu,
      window: options.window ?? windowFor(mtu),
      deadlineMs: DEADLINE_MS,
      keys: options.keys?.sender,
      io: options.io ?? "deno",
    });
    const result = asType<ReliableSendResult>(
      await sender.waitFor("result", START_MS + maxMs),
    );
    if (options.receiversCount) {
      // They end on their own after the count; stop any that cannot.
      await Promise.allSettled(workers.map((w) => w.waitFor("result", 3000)));
    }
    await Promise.all(workers.map((w) => w.stop()));
    const results = await Promise.all(
      workers.map(async (w) =>
        asType<ReceiveResult>(await w.waitFor("result", 10_000))
      ),
    );
    return {
      sender: result,
      receivers: results,
      problems: reliableProblems(result, results, receivers),
    };
  } finally {
    await sender?.kill();
    await Promise.all(workers.map((w) => w.kill()));
  }
}

async function reliableThroughputRun(
  size: number,
  receivers: number,
  options: { keys?: SessionKeys; io?: IoPath } = {},
): Promise<RunSummary> {
  try {
    const { sender, receivers: got, problems } = await reliableSession(
      size,
      receivers,
      { durationMs: DURATION_MS, ...options },
    );
    const received = Math.min(...got.map((r) => r.received));
    const run: RunSummary = {
      offeredRate: null,
      sent: sender.bulletins,
      received,
      sentPerSecond: sender.bulletinsPerSecond,
      // Bulletins per second from the first hand-over to the report (every
      // receiver acknowledged everything).
      receivedPerSecond: sender.bulletinsPerSecond,
      bytesPerSecond: sender.bytesPerSecond,
      datagramsPerSecond: sender.streamMs > 0
        ? sender.packets * 1000 / sender.streamMs
        : 0,
      retransmitted: sender.retransmitted,
      lossPercent: lossPercent(sender.bulletins, received),
      valid: problems.length === 0,
    };
    if (problems.length > 0) run.problems = problems.slice(0, 5);
    return run;
  } catch (error) {
    return failed(null, error);
  }
}

// ---- cells ------------------------------------------------------------------------

/**
 * A lossy cell: `reps` repetitions; a run that loses more than 1% is rerun
 * at a lower offered rate (`nextOffer`), one that failed outright at the
 * same rate, up to `maxTries` runs per repetition. With `refine`, the first
 * repetition then tries once more halfway (geometric mean) between the
 * accepted rate and the lossy one above it, which narrows the lossless rate
 * from the ladder's coarse steps. The next repetitions start at the
 * accepted rate.
 */
async function lossyCell(
  measure: (rate: number | null) => Promise<RunSummary>,
  reps: number,
  maxTries: number,
  refine = false,
): Promise<{ runs: RunSummary[]; tried: RunSummary[] }> {
  const runs: RunSummary[] = [];
  const tried: RunSummary[] = [];
  let start: number | null = null;
  for (let rep = 0; rep < reps; rep++) {
    let rate = start;
    let run: RunSummary | undefined;
    let above: RunSummary | undefined;
    for (let tries = 0; tries < maxTries; tries++) {
      run = await measure(rate);
      tried.push(run);
      if (run.valid) break;
      if (run.received > 1) {
        above = run;
        rate = nextOffer(run);
      }
    }
    if (
      refine && rep === 0 && run!.valid && run!.offeredRate !== null && above
    ) {
      const high = above.offeredRate === null
        ? above.receivedPerSecond
        : Math.min(above.receivedPerSecond, above.offeredRate);
      const middle = Math.round(Math.sqrt(run!.offeredRate * high));
      if (middle > run!.offeredRate * 1.05) {
        const probe = await measure(middle);
        tried.push(probe);
        if (probe.valid) run = probe;
      }
    }
    runs.push(run!);
    if (run!.valid) start = run!.offeredRate;
    else break;
  }
  return { runs, tried };
}

function progress(row: ThroughputRow): void {
  const figure = row.bulletinsPerSecond === null
    ? "-"
    : `${
      row.bulletinsPerSecond.toLocaleString("en-US")
    }/s, ${row.megabytesPerSecond} MB/s`;
  console.log(
    `  ${row.variant.padEnd(10)} ${String(row.size).padStart(5)} B  ${figure}` +
      `${
        row.lossPercent === null ? "" : `, loss ${row.lossPercent}%`
      }, ${row.runs.length} run(s), ${row.attempts} tries${
        row.note ? `  [${row.note}]` : ""
      }`,
  );
}

async function throughput(
  tools: Record<Tool, string | null>,
): Promise<ThroughputRow[]> {
  const rows: ThroughputRow[] = [];
  const namespace = Deno.uid() === 0;
  for (const size of SIZES) {
    for (const kind of ["bare", "plain"] as const) {
      const { runs, tried } = await lossyCell(
        (rate) => lossyThroughputRun(kind, size, rate),
        REPS,
        MAX_TRIES,
        true,
      );
      rows.push(throughputRow(kind, size, runs, tried));
      progress(rows.at(-1)!);
    }
    for (const receivers of [1, 3]) {
      const runs: RunSummary[] = [];
      for (let rep = 0; rep < REPS; rep++) {
        const run = await reliableThroughputRun(size, receivers);
        runs.push(run);
        if (!run.valid) break;
      }
      const mtu = mtuFor(size);
      rows.push(
        throughputRow(
          `reliable-${receivers}` as Variant,
          size,
          runs,
          runs,
          { mtu, window: windowFor(mtu) },
        ),
      );
      progress(rows.at(-1)!);
    }
    for (const tool of ["iperf2", "sockperf"] as const) {
      const skip = tools[tool];
      if (skip !== null) {
        rows.push(skippedRow(tool, size, skip));
        continue;
      }
      const { runs, tried } = await lossyCell(
        async (rate) => {
          try {
            return await runExternal(tool, {
              ...channel(),
              size,
              rate,
              seconds: SECONDS,
              namespace,
            });
          } catch (error) {
            return failed(rate, error);
          }
        },
        1,
        MAX_TRIES_EXTERNAL,
      );
      rows.push(throughputRow(tool, size, runs, tried));
      progress(rows.at(-1)!);
    }
  }
  return rows;
}

async function latency(): Promise<LatencyRow[]> {
  const rows: LatencyRow[] = [];
  for (const load of LATENCY_LOADS) {
    for (const variant of ["bare", "plain", "reliable"] as const) {
      const row: LatencyRow = {
        variant,
        rate: load.rate,
        size: LATENCY_SIZE,
        sent: 0,
        received: 0,
        lossPercent: 0,
        latency: null,
        valid: false,
      };
      try {
        if (variant === "reliable") {
          const { sender, receivers, problems } = await reliableSession(
            LATENCY_SIZE,
            1,
            {
              count: load.count,
              rate: load.rate,
              latency: true,
              receiversCount: true,
            },
          );
          const got = receivers[0]!;
          row.sent = sender.bulletins;
          row.received = got.received;
          row.lossPercent = lossPercent(sender.bulletins, got.received);
          row.latency = got.latency;
          row.appLatency = got.appLatency ?? null;
          row.valid = problems.length === 0;
          if (!row.valid) row.note = `refused: ${problems[0]}`;
        } else {
          const { send, recv } = await lossyPair(variant, LATENCY_SIZE, {
            rate: load.rate,
            count: load.count,
            latency: true,
          });
          row.sent = send.sent;
          row.received = recv.received;
          row.lossPercent = Math.round(
            lossPercent(send.sent, recv.received) * 1000,
          ) / 1000;
          row.latency = recv.latency;
          row.valid = recv.received > 0 &&
            row.lossPercent <= MAX_LOSS_PERCENT;
          if (!row.valid) {
            row.note =
              `invalid: loss ${row.lossPercent}% > ${MAX_LOSS_PERCENT}%`;
          }
        }
      } catch (error) {
        row.note = `failed: ${
          error instanceof Error ? error.message.split("\n")[0] : error
        }`;
      }
      rows.push(row);
      console.log(
        `  ${variant.padEnd(8)} ${String(load.rate).padStart(6)}/s  p50 ${
          row.latency?.p50 ?? "-"
        } µs, p99 ${row.latency?.p99 ?? "-"} µs, p99.9 ${
          row.latency?.p999 ?? "-"
        } µs, ${row.received}/${row.sent}${row.note ? `  [${row.note}]` : ""}`,
      );
    }
  }
  return rows;
}

async function ackTimes(): Promise<AckRow[]> {
  const rows: AckRow[] = [];
  for (const receivers of ACK_RECEIVERS) {
    const elapsed: number[] = [];
    const stream: number[] = [];
    let note: string | undefined;
    const reps = receivers >= 10 ? 1 : REPS;
    for (let rep = 0; rep < reps && note === undefined; rep++) {
      try {
        const { sender, problems } = await reliableSession(1024, receivers, {
          count: ACK_BULLETINS,
          receiversCount: true,
        });
        if (problems.length > 0) note = `refused: ${problems[0]}`;
        else {
          elapsed.push(sender.elapsedMs);
          stream.push(Math.round(sender.streamMs));
        }
      } catch (error) {
        note = `failed: ${
          error instanceof Error ? error.message.split("\n")[0] : error
        }`;
      }
    }
    const valid = note === undefined && elapsed.length > 0;
    rows.push({
      receivers,
      bulletins: ACK_BULLETINS,
      size: 1024,
      elapsedMs: valid ? Math.round(median(elapsed)) : null,
      streamMs: valid ? Math.round(median(stream)) : null,
      runs: elapsed,
      valid,
      note,
    });
    const row = rows.at(-1)!;
    console.log(
      `  ${String(receivers).padStart(2)} receiver(s): ${
        row.elapsedMs ?? "-"
      } ms (stream ${row.streamMs ?? "-"} ms), runs ${row.runs.join(",")}${
        row.note ? `  [${row.note}]` : ""
      }`,
    );
  }
  return rows;
}

interface Sample {
  at: number;
  kib: number;
}

function figures(
  idle: number | null,
  samples: Sample[],
  hwmKiB: number | null,
  start: number,
  end: number,
): MemoryFigures {
  const mib = (kib: number) => Math.round(kib / 1024 * 10) / 10;
  const middle = (start + end) / 2;
  const first = samples.filter((s) => s.at >= start && s.at < middle);
  const second = samples.filter((s) => s.at >= middle && s.at <= end);
  const peak = Math.max(hwmKiB ?? 0, ...samples.map((s) => s.kib));
  return {
    idleMiB: idle === null ? null : mib(idle),
    peakMiB: peak > 0 ? mib(peak) : null,
    firstHalfMiB: first.length
      ? mib(Math.max(...first.map((s) => s.kib)))
      : null,
    secondHalfMiB: second.length
      ? mib(Math.max(...second.map((s) => s.kib)))
      : null,
    samples: samples.length,
  };
}

async function memoryRun(): Promise<MemoryRow> {
  const size = 61440;
  const mtu = mtuFor(size);
  const window = windowFor(mtu);
  const bulletins = Math.ceil(STREAM_BYTES / size);
  const ch = channel();
  const row: MemoryRow = {
    bytes: bulletins * size,
    bulletins,
    size,
    mtu,
    window,
    streamMs: null,
    sender: {
      idleMiB: null,
      peakMiB: null,
      firstHalfMiB: null,
      secondHalfMiB: null,
      samples: 0,
    },
    receiver: {
      idleMiB: null,
      peakMiB: null,
      firstHalfMiB: null,
      secondHalfMiB: null,
      samples: 0,
    },
    valid: false,
  };
  const maxMs = 120_000;
  const recv = new WorkerProcess("memory receiver", "mcast_recv.ts", {
    mode: "reliable",
    ...ch,
    name: "r1",
    size,
    count: bulletins,
    maxMs,
  });
  let send: WorkerProcess | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  const senderSamples: Sample[] = [];
  const receiverSamples: Sample[] = [];
  try {
    await recv.waitFor("ready", START_MS);
    const receiverIdle = procMemory(recv.pid)?.rssKiB ?? null;
    send = new WorkerProcess("memory sender", "mcast_send.ts", {
      mode: "reliable",
      ...ch,
      size,
      count: bulletins,
      receivers: 1,
      mtu,
      window,
      deadlineMs: DEADLINE_MS,
      holdMs: 300,
    });
    const sender = send;
    await sender.waitFor("ready", START_MS);
    await sender.waitFor("idle", 5000);
    const senderIdle = procMemory(sender.pid)?.rssKiB ?? null;
    const start = performance.now();
    timer = setInterval(() => {
      const at = performance.now();
      const s = procMemory(sender.pid);
      const r = procMemory(recv.pid);
      if (s) senderSamples.push({ at, kib: s.rssKiB });
      if (r) receiverSamples.push({ at, kib: r.rssKiB });
    }, 50);
    const result = asType<
      ReliableSendResult & { memory: { hwmKiB: number } | null }
    >(
      await sender.waitFor("result", maxMs),
    );
    const end = performance.now();
    clearInterval(timer);
    const got = asType<ReceiveResult & { memory: { hwmKiB: number } | null }>(
      await recv.waitFor("result", 10_000),
    );
    const problems = reliableProblems(result, [got], 1);
    row.streamMs = Math.round(result.streamMs);
    row.sender = figures(
      senderIdle,
      senderSamples,
      result.memory?.hwmKiB ?? null,
      start,
      end,
    );
    row.receiver = figures(
      receiverIdle,
      receiverSamples,
      got.memory?.hwmKiB ?? null,
      start,
      end,
    );
    row.valid = problems.length === 0;
    if (!row.valid) row.note = `refused: ${problems[0]}`;
  } catch (error) {
    row.note = `failed: ${
      error instanceof Error ? error.message.split("\n")[0] : error
    }`;
  } finally {
    clearInterval(timer);
    await send?.kill();
    await recv.kill();
  }
  console.log(
    `  ${(row.bytes / MIB).toFixed(0)} MiB in ${
      row.streamMs ?? "-"
    } ms: sender peak ${row.sender.peakMiB} MiB ` +
      `(idle ${row.sender.idleMiB}), receiver peak ${row.receiver.peakMiB} MiB (idle ${row.receiver.idleMiB})` +
      `${row.note ? `  [${row.note}]` : ""}`,
  );
  return row;
}

// ---- the cost of keys ------------------------------------------------------------------

/**
 * Makes a group key and a signing key in `dir` (as `--gen-key` and
 * `--gen-sign-key` do) and returns each variant's key options: the
 * sender's flags and the receiver's, as the command line would give them.
 */
async function securityKeys(
  dir: string,
): Promise<Record<SecurityVariant, SessionKeys | undefined>> {
  const keyFile = (await generateKeyFile(`${dir}/group.key`)).path;
  const signing = await generateKeyFile(`${dir}/sign.key`, {
    kind: "ed25519",
  });
  return {
    "none": undefined,
    "key": { sender: { keyFile }, receiver: { keyFile } },
    "key+encrypt": {
      sender: { keyFile, encrypt: true },
      receiver: { keyFile },
    },
    "key+encrypt+sign": {
      sender: { keyFile, encrypt: true, signKey: signing.path },
      receiver: { keyFile, trust: [signing.publicKey!] },
    },
  };
}

/** The paths the security section measures: both where the native one loads. */
function securityPaths(): IoPath[] {
  return nativeUnavailable() === undefined ? ["deno", "native"] : ["deno"];
}

/**
 * The security section: reliable mode, 1 receiver, at each of
 * {@linkcode SECURITY_SIZES}, every variant once per repetition (in an
 * order rotated each repetition, so that no variant always runs first),
 * `REPS` repetitions. A refused run ends its cell (no figures), as in the
 * throughput section; the others go on.
 */
async function security(): Promise<SecurityRow[]> {
  const dir = await Deno.makeTempDir({ prefix: "mcast-bench-keys-" });
  try {
    const keys = await securityKeys(dir);
    const runs = new Map<string, RunSummary[]>();
    const cellOf = (io: IoPath, variant: SecurityVariant, size: number) => {
      const id = `${io} ${variant} ${size}`;
      if (!runs.has(id)) runs.set(id, []);
      return runs.get(id)!;
    };
    const paths = securityPaths();
    for (let rep = 0; rep < REPS; rep++) {
      for (const io of paths) {
        for (const size of SECURITY_SIZES) {
          const order = SECURITY_VARIANTS.map((_, k) =>
            SECURITY_VARIANTS[(k + rep) % SECURITY_VARIANTS.length]!
          );
          for (const variant of order) {
            const cell = cellOf(io, variant, size);
            if (cell.some((r) => !r.valid)) continue;
            const run = await reliableThroughputRun(size, 1, {
              keys: keys[variant],
              io,
            });
            cell.push(run);
            console.log(
              `  run ${rep + 1}  ${io.padEnd(6)} ${variant.padEnd(16)} ${
                String(size).padStart(5)
              } B  ${
                run.valid
                  ? `${
                    Math.round(run.receivedPerSecond).toLocaleString("en-US")
                  }/s`
                  : `refused: ${run.problems?.[0] ?? "?"}`
              }`,
            );
          }
        }
      }
    }
    const rows: SecurityRow[] = [];
    for (const io of paths) {
      for (const size of SECURITY_SIZES) {
        const mtu = mtuFor(size);
        for (const variant of SECURITY_VARIANTS) {
          rows.push(
            securityRow(variant, size, cellOf(io, variant, size), {
              io,
              mtu,
              window: windowFor(mtu),
            }),
          );
        }
      }
    }
    return securityRatios(rows);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// ---- machine and tools ----------------------------------------------------------------

async function commandText(program: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(program, {
      args,
      cwd: ROOT,
      stdout: "piped",
      stderr: "null",
      signal: AbortSignal.timeout(5000),
    }).output();
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return "";
  }
}

async function machine(): Promise<Record<string, unknown>> {
  async function read(path: string): Promise<string | null> {
    try {
      return (await Deno.readTextFile(path)).trim();
    } catch {
      return null; // Not Linux.
    }
  }
  const cpuModel = /^model name\s*:\s*(.*)$/m.exec(
    (await read("/proc/cpuinfo")) ?? "",
  )?.[1] ?? "";
  return {
    cpus: navigator.hardwareConcurrency,
    cpuModel,
    os: Deno.build.os,
    arch: Deno.build.arch,
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    memoryGiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 30 * 10) / 10,
    rmemDefault: Number(await read("/proc/sys/net/core/rmem_default")),
    rmemMax: Number(await read("/proc/sys/net/core/rmem_max")),
    loadAverageAtStart: Deno.loadavg(),
    root: Deno.uid() === 0,
    commit: await commandText("git", ["rev-parse", "--short", "HEAD"]),
    uncommittedLib:
      (await commandText("git", ["status", "--porcelain", "lib/"])).split("\n")
        .filter(Boolean).length,
  };
}

async function toolAvailability(): Promise<Record<Tool, string | null>> {
  const root = Deno.uid() === 0;
  const result: Record<Tool, string | null> = { iperf2: null, sockperf: null };
  if (!(await installed("iperf", ["-v"]))) {
    result.iperf2 = "iperf (iperf2) not installed";
  }
  if (!(await installed("sockperf", ["--version"]))) {
    result.sockperf = "sockperf not installed";
  }
  if (root && !(await installed("unshare", ["--version"]))) {
    for (const tool of ["iperf2", "sockperf"] as const) {
      result[tool] ??= "unshare not available for a private network namespace";
    }
  }
  return result;
}

/**
 * Formats the written files the way `deno fmt` would (it formats JSON and
 * SVG), so that `deno fmt --check` stays clean after a run.
 */
async function formatOutput(paths: string[]): Promise<void> {
  try {
    await new Deno.Command(Deno.execPath(), {
      args: ["fmt", "--quiet", ...paths],
      cwd: ROOT,
      stdout: "null",
      stderr: "null",
      signal: AbortSignal.timeout(30_000),
    }).output();
  } catch {
    // Unformatted output is still valid output.
  }
}

function chartTitle(): string {
  return "mcast on loopback multicast: throughput, latency, targets";
}

function chartSubtitle(
  info: Record<string, unknown>,
  startedAt: string,
  reps: number,
): string {
  return `${info.cpus} × ${
    info.cpuModel || "CPU"
  }, Linux ${info.kernel}, Deno ${info.deno}, ${
    startedAt.slice(0, 16).replace("T", " ")
  } UTC — ${reps} run(s)/cell, median — reproduce: deno task bench`;
}

// ---- main --------------------------------------------------------------------------------

/** Times each phase into `timings`, printing its name and duration. */
function phaseTimer(
  timings: Record<string, number>,
): <T>(name: string, run: () => Promise<T>) => Promise<T> {
  return async function phase<T>(
    name: string,
    run: () => Promise<T>,
  ): Promise<T> {
    console.log(name);
    const t0 = performance.now();
    try {
      return await run();
    } finally {
      timings[name] = Math.round((performance.now() - t0) / 100) / 10;
      console.log(`  (${timings[name]} s)`);
    }
  };
}

/** The security section's settings, as results record them. */
function securitySettings(): Record<string, unknown> {
  return {
    securitySizes: SECURITY_SIZES,
    securityVariants: SECURITY_VARIANTS,
    securityReceivers: 1,
    securityMtu: Object.fromEntries(
      SECURITY_SIZES.map((s) => [s, mtuFor(s)]),
    ),
    securityWindow: Object.fromEntries(
      SECURITY_SIZES.map((s) => [s, windowFor(mtuFor(s))]),
    ),
  };
}

async function main(): Promise<void> {
  const began = performance.now();
  const startedAt = new Date().toISOString();
  const info = await machine();
  const tools = await toolAvailability();
  console.log(
    `mcast benchmark: ${info.cpus} CPUs, Linux ${info.kernel}, Deno ${info.deno}; ${REPS} run(s) per throughput cell, ${SECONDS} s each`,
  );
  for (const [tool, reason] of Object.entries(tools)) {
    if (reason !== null) console.log(`  skipping ${tool}: ${reason}`);
  }
  if (tools.iperf2 === null || tools.sockperf === null) {
    console.log(
      Deno.uid() === 0
        ? "  iperf2/sockperf run inside a private network namespace (unshare -n)"
        : "  iperf2/sockperf run on the host with explicit interfaces (not root: no private namespace)",
    );
  }
  const timings: Record<string, number> = {};
  const phase = phaseTimer(timings);
  const throughputRows = await phase("Throughput", () => throughput(tools));
  const latencyRows = await phase("Latency", latency);
  const ackRows = await phase("Acknowledgement time", ackTimes);
  const memoryRow = await phase("Memory", memoryRun);
  const securityRows = await phase("Security", security);
  const uftp = await phase(
    "uftp side by side",
    () => uftpSection({ reps: UFTP_REPS }),
  );
  const packets = await phase(
    "Packet rate vs C",
    () => packetsSection({ seconds: SECONDS }),
  );
  const targets = computeTargets({
    throughput: throughputRows,
    latency: latencyRows,
    memory: memoryRow,
  });
  const durationS = Math.round((performance.now() - began) / 100) / 10;
  const results = {
    version: 1,
    command: "deno task bench",
    startedAt,
    durationS,
    phaseSeconds: timings,
    machine: { ...info, loadAverageAtEnd: Deno.loadavg() },
    settings: {
      repsPerThroughputCell: REPS,
      secondsPerThroughputRun: SECONDS,
      maxTriesPerRep: MAX_TRIES,
      maxTriesExternal: MAX_TRIES_EXTERNAL,
      maxLossPercent: MAX_LOSS_PERCENT,
      sizes: SIZES,
      latencyLoads: LATENCY_LOADS,
      latencySize: LATENCY_SIZE,
      ackBulletins: ACK_BULLETINS,
      streamBytes: memoryRow.bytes,
      megabyte: 1e6,
      reliableMtu: Object.fromEntries(SIZES.map((s) => [s, mtuFor(s)])),
      reliableWindow: Object.fromEntries(
        SIZES.map((s) => [s, windowFor(mtuFor(s))]),
      ),
      ...securitySettings(),
    },
    targets,
    throughput: throughputRows,
    latency: latencyRows,
    ack: ackRows,
    memory: memoryRow,
    security: securityRows,
    uftp,
    packets,
  };
  await Deno.mkdir(OUT_DIR, { recursive: true });
  const jsonPath = `${OUT_DIR}/results.json`;
  const svgPath = `${OUT_DIR}/chart.svg`;
  await Deno.writeTextFile(jsonPath, JSON.stringify(results, null, 2) + "\n");
  await Deno.writeTextFile(
    svgPath,
    renderChart({
      title: chartTitle(),
      subtitle: chartSubtitle(info, startedAt, REPS),
      throughput: throughputRows,
      latency: latencyRows,
      ack: ackRows,
      memory: memoryRow,
      targets,
      security: securityRows,
    }),
  );
  await formatOutput([jsonPath, svgPath]);
  console.log("");
  console.log(
    formatTables({
      throughput: throughputRows,
      latency: latencyRows,
      ack: ackRows,
      memory: memoryRow,
      targets,
      security: securityRows,
    }),
  );
  console.log("");
  console.log(formatUftpTable(uftp));
  console.log("");
  console.log(formatPacketsTable(packets));
  console.log("");
  console.log(`wrote ${jsonPath} and ${svgPath} in ${durationS} s`);
}

/**
 * `--only security`: only the security section; writes `security.json`
 * (not `results.json` or the chart, which stay those of the last full run)
 * and prints its table.
 */
async function securityOnly(): Promise<void> {
  const began = performance.now();
  const startedAt = new Date().toISOString();
  const info = await machine();
  console.log(
    `mcast benchmark, security only: ${info.cpus} CPUs, Linux ${info.kernel}, Deno ${info.deno}; ${REPS} run(s) per cell, ${SECONDS} s each`,
  );
  const timings: Record<string, number> = {};
  const rows = await phaseTimer(timings)("Security", security);
  const durationS = Math.round((performance.now() - began) / 100) / 10;
  const results = {
    version: 1,
    command: "deno task bench --only security",
    startedAt,
    durationS,
    phaseSeconds: timings,
    machine: { ...info, loadAverageAtEnd: Deno.loadavg() },
    settings: {
      repsPerThroughputCell: REPS,
      secondsPerThroughputRun: SECONDS,
      megabyte: 1e6,
      ...securitySettings(),
    },
    security: rows,
  };
  await Deno.mkdir(OUT_DIR, { recursive: true });
  const jsonPath = `${OUT_DIR}/security.json`;
  await Deno.writeTextFile(jsonPath, JSON.stringify(results, null, 2) + "\n");
  await formatOutput([jsonPath]);
  console.log("");
  console.log(formatSecurityTable(rows));
  console.log("");
  console.log(`wrote ${jsonPath} in ${durationS} s`);
}

/**
 * `--only uftp` and `--only packets`: only that section; writes
 * `uftp.json` or `packets.json` (key `uftp` or `packets`, as in
 * `results.json`, which stays that of the last full run) and prints its
 * table.
 */
async function sectionOnly(which: "uftp" | "packets"): Promise<void> {
  const began = performance.now();
  const startedAt = new Date().toISOString();
  const info = await machine();
  console.log(
    `mcast benchmark, ${which} only: ${info.cpus} CPUs, Linux ${info.kernel}, Deno ${info.deno}; ${
      which === "uftp" ? `${UFTP_REPS} run(s) per cell` : `${SECONDS} s per run`
    }`,
  );
  const timings: Record<string, number> = {};
  const phase = phaseTimer(timings);
  const section = which === "uftp"
    ? await phase(
      "uftp side by side",
      () => uftpSection({ reps: UFTP_REPS }),
    )
    : await phase(
      "Packet rate vs C",
      () => packetsSection({ seconds: SECONDS }),
    );
  const durationS = Math.round((performance.now() - began) / 100) / 10;
  const results = {
    version: 1,
    command: `deno task bench --only ${which}`,
    startedAt,
    durationS,
    phaseSeconds: timings,
    machine: { ...info, loadAverageAtEnd: Deno.loadavg() },
    [which]: section,
  };
  await Deno.mkdir(OUT_DIR, { recursive: true });
  const jsonPath = `${OUT_DIR}/${which}.json`;
  await Deno.writeTextFile(jsonPath, JSON.stringify(results, null, 2) + "\n");
  await formatOutput([jsonPath]);
  if (which === "uftp") {
    const svgPath = `${OUT_DIR}/uftp.svg`;
    await Deno.writeTextFile(
      svgPath,
      renderUftpChart(section as Awaited<ReturnType<typeof uftpSection>>),
    );
    await formatOutput([svgPath]);
    console.log(`wrote ${svgPath}`);
  }
  console.log("");
  console.log(
    which === "uftp"
      ? formatUftpTable(section as Awaited<ReturnType<typeof uftpSection>>)
      : formatPacketsTable(
        section as Awaited<ReturnType<typeof packetsSection>>,
      ),
  );
  console.log("");
  console.log(`wrote ${jsonPath} in ${durationS} s`);
}

/** `--render`: redraws the chart and tables from an existing results.json. */
async function render(): Promise<void> {
  const jsonPath = `${OUT_DIR}/results.json`;
  const results = JSON.parse(await Deno.readTextFile(jsonPath));
  const input = {
    throughput: results.throughput as ThroughputRow[],
    latency: results.latency as LatencyRow[],
    ack: results.ack as AckRow[],
    memory: results.memory as MemoryRow | null,
    targets: computeTargets(results),
    security: (results.security ?? []) as SecurityRow[],
  };
  await Deno.writeTextFile(
    `${OUT_DIR}/chart.svg`,
    renderChart({
      title: chartTitle(),
      subtitle: chartSubtitle(
        results.machine,
        results.startedAt,
        results.settings.repsPerThroughputCell,
      ),
      ...input,
    }),
  );
  await formatOutput([`${OUT_DIR}/chart.svg`]);
  console.log(formatTables(input));
  if (results.uftp) console.log(`\n${formatUftpTable(results.uftp)}`);
  if (results.packets) console.log(`\n${formatPacketsTable(results.packets)}`);
}

if (import.meta.main) {
  if (flags.render) await render();
  else if (flags.only === "security") await securityOnly();
  else if (flags.only === "uftp" || flags.only === "packets") {
    await sectionOnly(flags.only);
  } else await main();
}
