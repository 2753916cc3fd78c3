/**
 * The uftp side-by-side section of `deno task bench` (`--only uftp`): a
 * 100 MB random file sent to 1 and to 3 receivers, plain and encrypted, by
 * uftp 4.10 (`uftp` and `uftpd`) and by mcast (`sender.ts --reliable
 * --file`, `receiver.ts --output`), the tools interleaved in every
 * repetition, each mcast cell reported with its ratio to uftp's same cell of
 * the same run.
 *
 * Every run happens inside private network namespaces made for the section
 * (root only; else the section is skipped with the reason):
 * - 1 receiver: one namespace, everything on its `lo` (127.0.0.1);
 * - 3 receivers: a namespace per host joined by a bridge (`_netns.ts`),
 *   because uftpd binds its UDP port without address reuse, so a second
 *   uftpd on the same host fails ("Address already in use") and uftp sends
 *   to one port only. Both tools run on that same topology in that cell.
 *
 * The figure of a run is the sender's wall time from spawn to exit (both
 * senders exit once every receiver has the file); MB/s = 100e6 B / time /
 * 1e6. A run counts only when the sender exited 0, reported every receiver
 * complete, and every received file is byte-identical to the original
 * (`cmp`); otherwise it is refused, and a cell with a refused run is
 * invalid. A cell's figure is its best (fastest) valid run, for both tools
 * alike.
 *
 * @module
 */

import { generateKeyFile } from "../lib/security/keys.ts";
import { toolFlags } from "../scripts/tools.ts";
import { installed } from "./external.ts";
import {
  type BenchNet,
  BenchProcess,
  createBridgeNet,
  createLoopbackNet,
  type NetHost,
  netnsUnavailable,
  runCommand,
  stripAnsi,
  waitForJoin,
} from "./_netns.ts";
import { alignColumns, formatFigure } from "./report.ts";

/** Bytes of the file sent (100 MB). */
export const UFTP_FILE_BYTES = 100_000_000;

/** Receiver counts of the section. */
export const UFTP_RECEIVERS: readonly number[] = [1, 3];

/** Whether the transfer is encrypted. */
export type TransferMode = "plain" | "encrypted";

/** The modes, in table order. */
export const TRANSFER_MODES: readonly TransferMode[] = ["plain", "encrypted"];

/** Which tool moved the file. */
export type TransferTool = "uftp" | "mcast";

/** mcast's `--io` (`default`: the tools have no `--io` option). */
export type IoLabel = "native" | "deno" | "default";

/** The ratio mcast must reach over uftp, per mode. */
export const UFTP_THRESHOLDS: Readonly<Record<TransferMode, number>> = {
  plain: 1.3,
  encrypted: 1.0,
};

/** Longest a run may take, start to verification. */
const RUN_TIMEOUT_MS = 120_000;
/** Longest a receiver may take to join. */
const START_TIMEOUT_MS = 20_000;
/** uftp's and uftpd's UDP buffer (`-B`). */
const UFTP_BUFFER = 4_194_304;
/**
 * uftp's GRTT (`-r init:min:max`): 50 ms at first instead of 0.5 s, at
 * least 1 ms, at most 1 s. The round trip on these links is microseconds;
 * the default's first rounds then wait longer than needed. The announce
 * phase ends as soon as every receiver listed with `-H` registered.
 */
const UFTP_GRTT = "0.05:0.001:1";
/** uftp's public (announce) and private (data) groups. */
const UFTP_PUBLIC = "239.255.77.10";
const UFTP_PRIVATE = "239.255.77.11";
/** mcast's group (a fresh port each run). */
const MCAST_GROUP = "239.255.77.1";
/** The receivers' `--max-size` and the sender's. */
const MCAST_MAX_SIZE = "128MiB";

/** What uftp prints at the end of a session (on standard error). */
export interface UftpReport {
  /** `UFTP version …`, when printed. */
  version: string | null;
  /** Per receiver: its id, status word and transfer time. */
  hosts: { id: string; status: string; seconds: number }[];
  /** `Total elapsed time`, seconds. */
  elapsedSeconds: number | null;
  /** `Overall throughput`, KB/s. */
  throughputKBps: number | null;
}

/**
 * Parses uftp's session output: the `Transfer status` block of the (one)
 * file.
 *
 * @param text What uftp printed.
 * @returns The report, or null without any host status line.
 */
export function parseUftpReport(text: string): UftpReport | null {
  const hosts: UftpReport["hosts"] = [];
  const hostPattern =
    /Host:\s+(0x[0-9A-Fa-f]+)\s+Status:\s+(\S+)\s+time:\s+([\d.]+)\s+seconds/g;
  for (const match of text.matchAll(hostPattern)) {
    hosts.push({ id: match[1]!, status: match[2]!, seconds: Number(match[3]) });
  }
  if (hosts.length === 0) return null;
  const version = /UFTP version (\S+)/.exec(text)?.[1] ?? null;
  const elapsed = /Total elapsed time:\s+([\d.]+)\s+seconds/.exec(text);
  const throughput = /Overall throughput:\s+([\d.]+)\s+KB\/s/.exec(text);
  return {
    version,
    hosts,
    elapsedSeconds: elapsed ? Number(elapsed[1]) : null,
    throughputKBps: throughput ? Number(throughput[1]) : null,
  };
}

/** The mcast sender's `--json` end-of-session report, as far as read here. */
export interface McastReport {
  /** Every expected receiver has everything. */
  delivered: boolean;
  /** Why the session ended. */
  reason: string | null;
  /** Session start to report, ms. */
  elapsedMs: number | null;
  /** Repairs sent. */
  retransmitted: number | null;
}

/**
 * Finds and reads the `report` event among the sender's `--json` lines.
 *
 * @param lines Standard output lines.
 * @returns The report, or null when there is none (or it does not parse).
 */
export function parseMcastReport(lines: readonly string[]): McastReport | null {
  for (let k = lines.length - 1; k >= 0; k--) {
    const line = lines[k]!;
    if (!line.includes('"event":"report"')) continue;
    try {
      const value = JSON.parse(line) as Record<string, unknown>;
      const number = (x: unknown) => typeof x === "number" ? x : null;
      return {
        delivered: value.delivered === true,
        reason: typeof value.reason === "string" ? value.reason : null,
        elapsedMs: number(value.elapsedMs),
        retransmitted: number(value.retransmitted),
      };
    } catch {
      return null;
    }
  }
  return null;
}

/** One run of a cell. */
export interface TransferRun {
  /** The repetition, from 1. */
  rep: number;
  /** The sender's wall time, spawn to exit, s (null when it failed). */
  seconds: number | null;
  /** The tool's own time (uftp `Total elapsed time`, mcast `elapsedMs`), s. */
  reportedSeconds: number | null;
  /** Sender exited 0, every receiver complete, every copy identical. */
  valid: boolean;
  /** Why it was refused. */
  problems?: string[];
}

/** One cell of the section: a tool (and mcast's `--io`) × receivers × mode. */
export interface TransferRow {
  /** Which tool. */
  tool: TransferTool;
  /** mcast's `--io`; null for uftp. */
  io: IoLabel | null;
  /** Receivers. */
  receivers: number;
  /** Plain or encrypted. */
  mode: TransferMode;
  /** Where it ran: one namespace's `lo`, or hosts on a bridge. */
  topology: "lo" | "bridge";
  /** Every run, refused ones included. */
  runs: TransferRun[];
  /** The best (fastest) valid run's wall time, s. */
  seconds: number | null;
  /** File bytes / seconds / 1e6. */
  megabytesPerSecond: number | null;
  /** mcast rows: uftp's seconds over this row's (same cell, same run). */
  ratio: number | null;
  /** mcast rows: the ratio needed. */
  threshold: number | null;
  /** mcast rows: whether the ratio reaches the threshold (null: not measurable). */
  met: boolean | null;
  /** At least one run and none refused. */
  valid: boolean;
  /** Why not, or a remark. */
  note?: string;
}

/** One target line: an mcast row against uftp. */
export interface TransferTarget {
  /** E.g. `plain 3 native`. */
  id: string;
  /** The ratio, or null. */
  measured: number | null;
  /** Needed: at least this. */
  threshold: number;
  /** Whether it holds. */
  met: boolean;
  /** The figures behind it, or why it is missing. */
  detail: string;
}

/** The section's results (`results.json` key `uftp`). */
export interface UftpSection {
  /** Why the section did not run, or null. */
  skipped: string | null;
  /** How it ran. */
  settings: Record<string, unknown>;
  /** The cells. */
  rows: TransferRow[];
  /** The targets. */
  targets: TransferTarget[];
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/**
 * Makes a cell's row from its runs: the best valid run, MB/s; invalid when
 * there is no run or any was refused. Ratios are set by
 * {@linkcode transferRatios}.
 *
 * @param cell Tool, io, receivers, mode, topology.
 * @param runs The runs.
 * @param bytes The file's size.
 * @returns The row.
 */
export function transferRow(
  cell: Pick<TransferRow, "tool" | "io" | "receivers" | "mode" | "topology">,
  runs: TransferRun[],
  bytes: number = UFTP_FILE_BYTES,
): TransferRow {
  const good = runs.filter((r) =>
    r.valid && r.seconds !== null && r.seconds > 0
  );
  const refused = runs.filter((r) => !r.valid);
  const best = good.length > 0
    ? Math.min(...good.map((r) => r.seconds!))
    : null;
  const row: TransferRow = {
    ...cell,
    runs,
    seconds: best === null ? null : round(best, 3),
    megabytesPerSecond: best === null ? null : round(bytes / best / 1e6, 1),
    ratio: null,
    threshold: null,
    met: null,
    valid: runs.length > 0 && refused.length === 0,
  };
  if (runs.length === 0) row.note = "not run";
  else if (refused.length > 0) {
    row.note = `refused ${refused.length}/${runs.length}: ${
      refused[0]!.problems?.[0] ?? "?"
    }`;
  }
  return row;
}

/**
 * Sets each mcast row's ratio to uftp's row of the same receivers and mode
 * (uftp seconds / mcast seconds: above 1, mcast was faster), its threshold
 * and whether it is met. Rows that are invalid on either side get no
 * ratio.
 *
 * @param rows The rows.
 * @returns The same rows, ratios set.
 */
export function transferRatios(rows: TransferRow[]): TransferRow[] {
  for (const row of rows) {
    if (row.tool !== "mcast") continue;
    row.threshold = UFTP_THRESHOLDS[row.mode];
    const base = rows.find((r) =>
      r.tool === "uftp" && r.receivers === row.receivers &&
      r.mode === row.mode
    );
    if (
      base && base.valid && row.valid && base.seconds !== null &&
      row.seconds !== null && row.seconds > 0
    ) {
      row.ratio = round(base.seconds / row.seconds, 3);
      row.met = row.ratio >= row.threshold;
    } else {
      row.ratio = null;
      row.met = null;
    }
  }
  return rows;
}

/**
 * The targets: one per mcast row, plain ≥ 1.3× uftp, encrypted ≥ 1.0×.
 *
 * @param rows The rows, ratios set.
 * @returns The targets.
 */
export function transferTargets(rows: TransferRow[]): TransferTarget[] {
  return rows.filter((r) => r.tool === "mcast").map((row) => {
    const base = rows.find((r) =>
      r.tool === "uftp" && r.receivers === row.receivers &&
      r.mode === row.mode
    );
    const threshold = UFTP_THRESHOLDS[row.mode];
    const id = `${row.mode} ${row.receivers} ${row.io ?? ""}`.trim();
    if (row.ratio === null) {
      const why = !base
        ? "no uftp cell"
        : !base.valid || base.seconds === null
        ? `uftp not usable (${base.note ?? "no valid run"})`
        : `mcast not usable (${row.note ?? "no valid run"})`;
      return { id, measured: null, threshold, met: false, detail: why };
    }
    return {
      id,
      measured: row.ratio,
      threshold,
      met: row.ratio >= threshold,
      detail: `uftp ${base!.seconds} s / mcast ${row.seconds} s`,
    };
  });
}

/**
 * Formats the section as a text table (or the reason it was skipped).
 *
 * @param section The section.
 * @returns The heading and the table.
 */
export function formatUftpTable(section: UftpSection): string {
  const title = `uftp side by side (${
    UFTP_FILE_BYTES / 1e6
  } MB file; best of the runs, sender wall time; × uftp = uftp s / mcast s, same run)`;
  if (section.skipped !== null) {
    return `${title}\n  skipped: ${section.skipped}`;
  }
  const head = [
    "tool",
    "io",
    "recv",
    "mode",
    "net",
    "seconds",
    "MB/s",
    "× uftp",
    "target",
    "runs s",
    "note",
  ];
  const lines = section.rows.map((r) => [
    r.tool,
    r.io ?? "",
    String(r.receivers),
    r.mode,
    r.topology,
    formatFigure(r.seconds, 3),
    formatFigure(r.megabytesPerSecond, 1),
    formatFigure(r.ratio, 3),
    r.threshold === null
      ? ""
      : `≥ ${r.threshold} ${r.met === null ? "-" : r.met ? "met" : "missed"}`,
    r.runs.map((x) => x.valid ? formatFigure(x.seconds, 2) : "refused").join(
      ",",
    ),
    r.note ?? "",
  ]);
  return [title, alignColumns([head, ...lines])].join("\n");
}

// ---- running ---------------------------------------------------------------------

/** Options of {@linkcode uftpSection}. */
export interface UftpSectionOptions {
  /** Repetitions of every cell (at least 1). */
  reps: number;
  /** Prints one progress line (default `console.log`). */
  log?: (line: string) => void;
}

/** What every run of the section shares. */
interface Context {
  dir: string;
  file: string;
  groupKey: string;
  serverKey: string;
  clientKeys: string[];
  sendArgs: string[];
  recvArgs: string[];
  cwd: string;
  port: number;
  runs: number;
  version: string | null;
}

interface Cell {
  receivers: number;
  mode: TransferMode;
  net: BenchNet;
}

/**
 * Why the section cannot run here.
 *
 * @returns The reason, or undefined.
 */
export async function uftpUnavailable(): Promise<string | undefined> {
  for (const program of ["uftp", "uftpd", "uftp_keymgt", "cmp"]) {
    if (!(await installed(program, ["-h"]))) return `${program} not installed`;
  }
  return await netnsUnavailable();
}

/** Writes `bytes` random bytes to `path`. */
async function randomFile(path: string, bytes: number): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true });
  try {
    const chunk = new Uint8Array(65536);
    for (let left = bytes; left > 0;) {
      const n = Math.min(left, chunk.length);
      crypto.getRandomValues(chunk);
      let written = 0;
      while (written < n) {
        written += await file.write(chunk.subarray(written, n));
      }
      left -= n;
    }
  } finally {
    file.close();
  }
}

async function uftpKey(path: string): Promise<string> {
  const result = await runCommand("uftp_keymgt", ["-g", "rsa:2048", path], {
    timeoutMs: 60_000,
  });
  if (!result.success) {
    throw new Error(`uftp_keymgt -g rsa:2048 failed: ${result.stderr.trim()}`);
  }
  return path;
}

/** Fresh, empty destination directories for one run. */
async function freshDirs(ctx: Context, count: number): Promise<string[]> {
  ctx.runs += 1;
  const dirs: string[] = [];
  for (let k = 1; k <= count; k++) {
    const dir = `${ctx.dir}/run${ctx.runs}/r${k}`;
    await Deno.mkdir(dir, { recursive: true });
    dirs.push(dir);
  }
  return dirs;
}

async function removeRunDir(dirs: string[]): Promise<void> {
  if (dirs.length === 0) return;
  const parent = dirs[0]!.slice(0, dirs[0]!.lastIndexOf("/"));
  await Deno.remove(parent, { recursive: true }).catch(() => {});
}

/**
 * Checks that every directory holds exactly one file, identical to the
 * original.
 */
async function verifyCopies(
  original: string,
  dirs: string[],
): Promise<string[]> {
  const problems: string[] = [];
  for (const [k, dir] of dirs.entries()) {
    const files: string[] = [];
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile) files.push(entry.name);
    }
    if (files.length !== 1) {
      problems.push(`receiver ${k + 1}: ${files.length} files, expected 1`);
      continue;
    }
    const cmp = await runCommand(
      "cmp",
      ["-s", original, `${dir}/${files[0]}`],
      {
        timeoutMs: 60_000,
      },
    );
    if (!cmp.success) {
      problems.push(
        `receiver ${k + 1}: ${files[0]} differs from the original${
          cmp.code > 1 ? ` (cmp: ${cmp.stderr.trim()})` : ""
        }`,
      );
    }
  }
  return problems;
}

function lastWords(process: BenchProcess): string {
  return (process.stderr.trim() || process.lines.slice(-2).join(" | "))
    .split("\n").slice(-2).join(" | ").slice(-300);
}

function refusedRun(rep: number, problems: string[]): TransferRun {
  return {
    rep,
    seconds: null,
    reportedSeconds: null,
    valid: false,
    problems: problems.slice(0, 5).map((p) => p.split("\n")[0]!.slice(0, 300)),
  };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The id of uftpd number `k` (from 0): `0x00000101`, `0x00000102`, … */
function clientId(k: number): string {
  return `0x${(0x101 + k).toString(16).padStart(8, "0")}`;
}

async function uftpRun(
  ctx: Context,
  cell: Cell,
  rep: number,
): Promise<TransferRun> {
  const hosts = cell.net.receivers.slice(0, cell.receivers);
  const encrypted = cell.mode === "encrypted";
  const dirs = await freshDirs(ctx, hosts.length);
  const receivers: BenchProcess[] = [];
  let sender: BenchProcess | undefined;
  try {
    for (const [k, host] of hosts.entries()) {
      receivers.push(
        new BenchProcess(`uftpd r${k + 1}`, "uftpd", [
          "-d",
          "-q",
          "-I",
          host.device,
          "-M",
          UFTP_PUBLIC,
          "-D",
          dirs[k]!,
          "-B",
          String(UFTP_BUFFER),
          "-U",
          clientId(k),
          ...(encrypted ? ["-k", ctx.clientKeys[k]!] : []),
        ], { ns: host.ns }),
      );
    }
    await Promise.all(
      hosts.map((host, k) =>
        waitForJoin(
          host.ns,
          UFTP_PUBLIC,
          host.device,
          START_TIMEOUT_MS,
          () =>
            receivers[k]!.status === undefined
              ? undefined
              : `uftpd r${k + 1} ended: ${lastWords(receivers[k]!)}`,
        )
      ),
    );
    sender = new BenchProcess("uftp", "uftp", [
      "-I",
      cell.net.sender.device,
      "-M",
      UFTP_PUBLIC,
      "-P",
      UFTP_PRIVATE,
      "-R",
      "-1",
      "-B",
      String(UFTP_BUFFER),
      "-r",
      UFTP_GRTT,
      "-H",
      hosts.map((_, k) => clientId(k)).join(","),
      ...(encrypted
        ? ["-Y", "aes256-gcm", "-h", "sha256", "-k", ctx.serverKey]
        : []),
      ctx.file,
    ], { ns: cell.net.sender.ns, cwd: ctx.dir });
    const status = await sender.waitExit(RUN_TIMEOUT_MS);
    const seconds = sender.wallMs! / 1000;
    const text = [...sender.errorLines, ...sender.lines].join("\n");
    const report = parseUftpReport(text);
    ctx.version ??= report?.version ?? null;
    const problems: string[] = [];
    if (status.code !== 0) {
      problems.push(`uftp exited ${status.code}: ${lastWords(sender)}`);
    }
    if (!report) problems.push("uftp printed no transfer status");
    else {
      for (const [k] of hosts.entries()) {
        const host = report.hosts.find((h) =>
          h.id.toLowerCase() === clientId(k)
        );
        if (!host || host.status !== "Completed") {
          problems.push(
            `uftp: receiver ${clientId(k)} ${host ? host.status : "missing"}`,
          );
        }
      }
    }
    await Promise.all(receivers.map((r) => r.kill("SIGTERM")));
    problems.push(...await verifyCopies(ctx.file, dirs));
    if (problems.length > 0) return refusedRun(rep, problems);
    return {
      rep,
      seconds: round(seconds, 3),
      reportedSeconds: report?.elapsedSeconds ?? null,
      valid: true,
    };
  } catch (error) {
    return refusedRun(rep, [errorText(error)]);
  } finally {
    await sender?.kill();
    await Promise.all(receivers.map((r) => r.kill()));
    await removeRunDir(dirs);
  }
}

function ioArgs(io: IoLabel): string[] {
  return io === "default" ? [] : ["--io", io];
}

async function mcastRun(
  ctx: Context,
  cell: Cell,
  io: IoLabel,
  rep: number,
): Promise<TransferRun> {
  const hosts: NetHost[] = cell.net.receivers.slice(0, cell.receivers);
  const encrypted = cell.mode === "encrypted";
  const dirs = await freshDirs(ctx, hosts.length);
  const port = String(ctx.port + ctx.runs);
  const receivers: BenchProcess[] = [];
  let sender: BenchProcess | undefined;
  try {
    for (const [k, host] of hosts.entries()) {
      receivers.push(
        new BenchProcess(`mcast-recv r${k + 1}`, Deno.execPath(), [
          "run",
          ...ctx.recvArgs,
          "--output",
          dirs[k]!,
          "--max-size",
          MCAST_MAX_SIZE,
          "-c",
          "1",
          "-g",
          MCAST_GROUP,
          "-p",
          port,
          "-i",
          host.address,
          "--name",
          `r${k + 1}`,
          ...(encrypted ? ["--key-file", ctx.groupKey] : []),
          ...ioArgs(io),
        ], { ns: host.ns, cwd: ctx.cwd }),
      );
    }
    await Promise.all(
      receivers.map((r) =>
        r.waitForLine(
          (line) => line.includes("waiting to receive message"),
          START_TIMEOUT_MS,
        )
      ),
    );
    sender = new BenchProcess("mcast-send", Deno.execPath(), [
      "run",
      ...ctx.sendArgs,
      "--reliable",
      "--json",
      "--file",
      ctx.file,
      "--max-size",
      MCAST_MAX_SIZE,
      "--expect",
      String(hosts.length),
      "-g",
      MCAST_GROUP,
      "-p",
      port,
      "-i",
      cell.net.sender.address,
      ...(encrypted ? ["--key-file", ctx.groupKey, "--encrypt"] : []),
      ...ioArgs(io),
    ], { ns: cell.net.sender.ns, cwd: ctx.cwd });
    const status = await sender.waitExit(RUN_TIMEOUT_MS);
    const seconds = sender.wallMs! / 1000;
    const report = parseMcastReport(sender.lines);
    const problems: string[] = [];
    if (status.code !== 0) {
      problems.push(`mcast-send exited ${status.code}: ${lastWords(sender)}`);
    }
    if (!report) problems.push("mcast-send printed no report");
    else if (!report.delivered) {
      problems.push(`mcast-send: not delivered (${report.reason ?? "?"})`);
    }
    for (const [k, receiver] of receivers.entries()) {
      try {
        const done = await receiver.waitExit(15_000);
        if (done.code !== 0) {
          problems.push(
            `receiver ${k + 1} exited ${done.code}: ${lastWords(receiver)}`,
          );
        }
      } catch (error) {
        problems.push(`receiver ${k + 1}: ${errorText(error)}`);
      }
    }
    problems.push(...await verifyCopies(ctx.file, dirs));
    if (problems.length > 0) return refusedRun(rep, problems);
    return {
      rep,
      seconds: round(seconds, 3),
      reportedSeconds: report?.elapsedMs === null || !report
        ? null
        : round(report.elapsedMs / 1000, 3),
      valid: true,
    };
  } catch (error) {
    return refusedRun(rep, [errorText(error)]);
  } finally {
    await sender?.kill();
    await Promise.all(receivers.map((r) => r.kill()));
    await removeRunDir(dirs);
  }
}

/**
 * The `--io` values to measure: native and deno when `sender.ts --help`
 * lists `--io`, else `default` (the tools' only path). Running the help
 * also compiles the tools' module graph once, outside any timed run.
 */
async function ioVariants(cwd: string, sendArgs: string[], recvArgs: string[]) {
  const help = await runCommand(
    Deno.execPath(),
    ["run", ...sendArgs, "--help"],
    {
      cwd,
      timeoutMs: 120_000,
    },
  );
  await runCommand(Deno.execPath(), ["run", ...recvArgs, "--help"], {
    cwd,
    timeoutMs: 120_000,
  });
  const variants: IoLabel[] = /--io\b/.test(help.stdout)
    ? ["native", "deno"]
    : ["default"];
  return { variants, helpOk: help.success, helpError: help.stderr.trim() };
}

function skippedSection(reason: string, settings: Record<string, unknown>) {
  return { skipped: reason, settings, rows: [], targets: [] };
}

/**
 * Runs the section: every cell `reps` times, uftp and mcast interleaved (in
 * even repetitions uftp goes first, in odd ones mcast does).
 *
 * @param options Repetitions and the progress printer.
 * @returns The rows, targets and settings; `skipped` says why when it could
 * not run.
 */
export async function uftpSection(
  options: UftpSectionOptions,
): Promise<UftpSection> {
  const log = options.log ?? console.log;
  const reps = Math.max(1, Math.floor(options.reps));
  const settings: Record<string, unknown> = {
    fileBytes: UFTP_FILE_BYTES,
    megabyte: 1e6,
    reps,
    figure:
      "best (fastest) valid run of the cell, sender wall time spawn to exit",
    runTimeoutMs: RUN_TIMEOUT_MS,
    thresholds: UFTP_THRESHOLDS,
    topology: {
      "1": "lo: one private namespace, everything on 127.0.0.1",
      "3":
        "bridge: one private namespace per host, veth links to a bridge (uftpd cannot share a host's port)",
    },
    uftp: {
      sender:
        `uftp -I DEV -M ${UFTP_PUBLIC} -P ${UFTP_PRIVATE} -R -1 -B ${UFTP_BUFFER} -r ${UFTP_GRTT} -H IDS [-Y aes256-gcm -h sha256 -k server.key] FILE`,
      receiver:
        `uftpd -d -q -I DEV -M ${UFTP_PUBLIC} -D DIR -B ${UFTP_BUFFER} -U ID [-k client.key]`,
      grtt:
        "-r 0.05:0.001:1: 50 ms initial GRTT instead of 0.5 s (microsecond round trips here); -H lists every receiver, so the announce phase ends once all registered",
      keys: "RSA 2048 (uftp_keymgt -g rsa:2048), key exchange rsa",
      blockSize: 1300,
    },
    mcast: {
      sender:
        `sender.ts --reliable --json --file FILE --max-size ${MCAST_MAX_SIZE} --expect N -g ${MCAST_GROUP} -p PORT -i ADDR [--key-file K --encrypt] [--io IO]`,
      receiver:
        `receiver.ts --output DIR --max-size ${MCAST_MAX_SIZE} -c 1 -g ${MCAST_GROUP} -p PORT -i ADDR --name rK [--key-file K] [--io IO]`,
      readiness: 'each receiver printed "waiting to receive message" (joined)',
    },
  };
  const unavailable = await uftpUnavailable();
  if (unavailable !== undefined) {
    log(`  skipped: ${unavailable}`);
    return skippedSection(unavailable, settings);
  }
  const dir = await Deno.makeTempDir({ prefix: "mcast-bench-uftp-" });
  const nets: BenchNet[] = [];
  try {
    const cwd = new URL("..", import.meta.url).pathname;
    const sendArgs = toolFlags("send");
    const recvArgs = toolFlags("recv");
    const io = await ioVariants(cwd, sendArgs, recvArgs);
    settings.io = io.variants;
    if (!io.helpOk) {
      settings.toolProblem = stripAnsi(io.helpError).split("\n")[0]?.slice(
        0,
        300,
      );
      log(`  mcast-send --help failed: ${settings.toolProblem}`);
    }
    const file = `${dir}/payload.bin`;
    await randomFile(file, UFTP_FILE_BYTES);
    const maxReceivers = Math.max(...UFTP_RECEIVERS);
    const ctx: Context = {
      dir,
      file,
      groupKey: (await generateKeyFile(`${dir}/group.key`)).path,
      serverKey: await uftpKey(`${dir}/server.key`),
      clientKeys: [],
      sendArgs,
      recvArgs,
      cwd,
      port: 20_000 + Math.floor(Math.random() * 20_000),
      runs: 0,
      version: null,
    };
    for (let k = 1; k <= maxReceivers; k++) {
      ctx.clientKeys.push(await uftpKey(`${dir}/client${k}.key`));
    }
    const netFor = new Map<number, BenchNet>();
    for (const receivers of UFTP_RECEIVERS) {
      const net = receivers === 1
        ? await createLoopbackNet({ role: "uftp" })
        : await createBridgeNet(receivers);
      nets.push(net);
      netFor.set(receivers, net);
    }
    const runs = new Map<string, TransferRun[]>();
    const key = (tool: string, io: string, receivers: number, mode: string) =>
      `${tool}|${io}|${receivers}|${mode}`;
    const cellRuns = (id: string) => {
      if (!runs.has(id)) runs.set(id, []);
      return runs.get(id)!;
    };
    for (let rep = 1; rep <= reps; rep++) {
      for (const receivers of UFTP_RECEIVERS) {
        for (const mode of TRANSFER_MODES) {
          const cell: Cell = { receivers, mode, net: netFor.get(receivers)! };
          const order: { tool: TransferTool; io: IoLabel | null }[] = [
            { tool: "uftp", io: null },
            ...io.variants.map((v) => ({ tool: "mcast" as const, io: v })),
          ];
          if (rep % 2 === 0) order.reverse();
          for (const { tool, io: path } of order) {
            const run = tool === "uftp"
              ? await uftpRun(ctx, cell, rep)
              : await mcastRun(ctx, cell, path!, rep);
            cellRuns(key(tool, path ?? "", receivers, mode)).push(run);
            log(
              `  run ${rep}  ${tool.padEnd(5)} ${
                (path ?? "").padEnd(7)
              } ${receivers} recv ${mode.padEnd(9)} ${
                run.valid
                  ? `${run.seconds!.toFixed(2)} s  ${
                    (UFTP_FILE_BYTES / run.seconds! / 1e6).toFixed(1)
                  } MB/s`
                  : `refused: ${run.problems?.[0] ?? "?"}`
              }`,
            );
          }
        }
      }
    }
    const rows: TransferRow[] = [];
    for (const receivers of UFTP_RECEIVERS) {
      for (const mode of TRANSFER_MODES) {
        const topology = netFor.get(receivers)!.topology;
        rows.push(
          transferRow(
            { tool: "uftp", io: null, receivers, mode, topology },
            cellRuns(key("uftp", "", receivers, mode)),
          ),
        );
        for (const path of io.variants) {
          rows.push(
            transferRow(
              { tool: "mcast", io: path, receivers, mode, topology },
              cellRuns(key("mcast", path, receivers, mode)),
            ),
          );
        }
      }
    }
    transferRatios(rows);
    settings.uftpVersion = ctx.version;
    return {
      skipped: null,
      settings,
      rows,
      targets: transferTargets(rows),
    };
  } finally {
    for (const net of nets) {
      try {
        await net[Symbol.asyncDispose]();
      } catch (error) {
        log(`  cannot delete namespaces: ${errorText(error)}`);
      }
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
