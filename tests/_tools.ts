/**
 * Test helpers that run the real tools as processes: the compiled binaries
 * in `dist/` when they exist, otherwise the entry points with `deno run` and
 * exactly the flags of the `send`/`recv` tasks in `deno.json` (the flags that
 * `deno task compile` embeds).
 *
 * @module
 */

import assert from "node:assert/strict";
import { ROOT, type Tool, toolCommand, toolFlags } from "../scripts/tools.ts";
import { nativeUnavailable } from "../lib/net/native_socket.ts";

export {
  compiledBinary,
  ROOT,
  taskWords,
  type Tool,
  toolCommand,
} from "../scripts/tools.ts";

/** Options of {@linkcode spawnTool}. */
export interface SpawnOptions {
  /** Bytes or text written to standard input, which is then closed. */
  stdin?: string | Uint8Array;
  /**
   * Keep standard input open: the test feeds it with
   * {@linkcode RunningProcess.write} and ends it with
   * {@linkcode RunningProcess.closeInput}.
   */
  keepInput?: boolean;
  /** Words run before the tool, e.g. `["ip", "netns", "exec", "ns1"]`. */
  prefix?: string[];
}

/** How a process ended. */
export interface Finished {
  /** Exit code. */
  code: number;
  /** Signal that ended it, if any. */
  signal: Deno.Signal | null;
  /** Everything written to standard output. */
  stdout: string;
  /** Everything written to standard error. */
  stderr: string;
}

async function collect(
  stream: ReadableStream<Uint8Array>,
  onText: (text: string) => void,
): Promise<void> {
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    onText(text);
  }
}

/** A running process with its output collected as it arrives. */
export class RunningProcess {
  /** The child process. */
  readonly child: Deno.ChildProcess;
  /** Standard output so far. */
  stdout = "";
  /** Standard error so far. */
  stderr = "";
  #waiters: (() => void)[] = [];
  #done: Promise<Finished>;
  #finished = false;
  #input: WritableStreamDefaultWriter<Uint8Array> | undefined;

  constructor(command: string[], options: SpawnOptions = {}) {
    const [program, ...args] = command;
    const child = new Deno.Command(program!, {
      args,
      cwd: ROOT,
      stdin: options.stdin === undefined && !options.keepInput
        ? "null"
        : "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.child = child;
    if (options.keepInput) {
      this.#input = this.child.stdin.getWriter();
    } else if (options.stdin !== undefined) {
      const writer = this.child.stdin.getWriter();
      const bytes = typeof options.stdin === "string"
        ? new TextEncoder().encode(options.stdin)
        : options.stdin;
      writer.write(bytes).then(() => writer.close()).catch(() => {});
    }
    const notify = () => this.#waiters.splice(0).forEach((wake) => wake());
    const out = collect(this.child.stdout, (t) => {
      this.stdout += t;
      notify();
    });
    const err = collect(this.child.stderr, (t) => {
      this.stderr += t;
      notify();
    });
    this.#done = (async () => {
      const [status] = await Promise.all([child.status, out, err]);
      this.#finished = true;
      notify();
      return {
        code: status.code,
        signal: status.signal,
        stdout: this.stdout,
        stderr: this.stderr,
      };
    })();
  }

  /**
   * Resolves once standard output contains `text` (`count` times), rejects
   * after `timeoutMs` or when the process ends first.
   */
  async waitForOutput(
    text: string,
    options: { count?: number; timeoutMs?: number } = {},
  ): Promise<void> {
    const count = options.count ?? 1;
    const timeoutMs = options.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    while (this.stdout.split(text).length - 1 < count) {
      if (this.#finished) {
        throw new Error(
          `process ended before printing ${
            JSON.stringify(text)
          }:\n${this.stdout}\n${this.stderr}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `timed out waiting for ${
            JSON.stringify(text)
          }:\n${this.stdout}\n${this.stderr}`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((wake) => {
        this.#waiters.push(wake);
        timer = setTimeout(wake, left);
      });
      clearTimeout(timer);
    }
  }

  /**
   * Resolves with the `count`-th complete line of standard output (without
   * its `\n`) that `pattern` matches, and the match; rejects after
   * `timeoutMs` or when the process ends first.
   */
  async waitForLine(
    pattern: RegExp,
    options: { count?: number; timeoutMs?: number } = {},
  ): Promise<RegExpExecArray> {
    const count = options.count ?? 1;
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    const matcher = new RegExp(pattern.source, pattern.flags.replace("g", ""));
    for (;;) {
      let seen = 0;
      const lines = this.stdout.split("\n").slice(0, -1);
      for (const line of lines) {
        const match = matcher.exec(line);
        if (match && ++seen === count) return match;
      }
      const what = `line ${count} matching ${pattern}`;
      if (this.#finished) {
        throw new Error(
          `process ended before printing ${what}:\n${this.stdout}\n${this.stderr}`,
        );
      }
      if (!await this.#wake(deadline)) {
        throw new Error(
          `timed out waiting for ${what}:\n${this.stdout}\n${this.stderr}`,
        );
      }
    }
  }

  /**
   * Waits up to `timeoutMs` for the process to end, without killing it.
   *
   * @returns Whether it ended.
   */
  async waitForEnd(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#finished) {
      if (!await this.#wake(deadline)) return this.#finished;
    }
    return true;
  }

  /** Whether the process still runs (its output may still be arriving). */
  get running(): boolean {
    return !this.#finished;
  }

  /** Stops the process with SIGSTOP (see {@linkcode RunningProcess.resume}). */
  pause(): void {
    this.kill("SIGSTOP");
  }

  /** Lets a process stopped by {@linkcode RunningProcess.pause} go on (SIGCONT). */
  resume(): void {
    this.kill("SIGCONT");
  }

  /** Waits for new output or the end; false once `deadline` has passed. */
  async #wake(deadline: number): Promise<boolean> {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((wake) => {
      this.#waiters.push(wake);
      timer = setTimeout(wake, left);
    });
    clearTimeout(timer);
    return true;
  }

  /** Sends a signal, ignoring a process that already ended. */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    try {
      this.child.kill(signal);
    } catch {
      // Already ended.
    }
  }

  /** Waits for the end; kills the process with SIGKILL after `timeoutMs`. */
  async finish(timeoutMs = 15_000): Promise<Finished> {
    const timer = setTimeout(() => this.kill("SIGKILL"), timeoutMs);
    try {
      return await this.#done;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Writes to standard input (spawned with `keepInput`). */
  async write(text: string): Promise<void> {
    await this.#input!.write(new TextEncoder().encode(text));
  }

  /** Closes standard input (spawned with `keepInput`): the end of a feed. */
  async closeInput(): Promise<void> {
    const input = this.#input;
    this.#input = undefined;
    await input?.close().catch(() => {});
  }

  /** Kills the process if it still runs and waits for it. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#finished) this.kill("SIGKILL");
    await this.closeInput();
    await this.#done;
  }
}

/** Starts `tool` with `args` (see {@linkcode toolCommand}). */
export function spawnTool(
  tool: Tool,
  args: string[],
  options: SpawnOptions = {},
): RunningProcess {
  return new RunningProcess([
    ...(options.prefix ?? []),
    ...toolCommand(tool, args),
  ], options);
}

/** Runs `tool` to its end (killed after `timeoutMs`) and returns its output. */
export async function runTool(
  tool: Tool,
  args: string[],
  options: SpawnOptions & { timeoutMs?: number } = {},
): Promise<Finished> {
  const process = spawnTool(tool, args, options);
  return await process.finish(options.timeoutMs);
}

/**
 * Why a capped-receive-buffer test cannot run here, if it cannot: it runs
 * the tool `script` (a file under {@linkcode ROOT}) on the native path as
 * user nobody, whom `net.core.rmem_max` caps below 8 MiB.
 */
export async function cappedUnavailable(
  script: string,
): Promise<string | undefined> {
  if (nativeUnavailable() !== undefined) return "no native path here";
  if (Deno.uid() !== 0) return "not root: cannot run the tool as another user";
  const max = Number(await Deno.readTextFile("/proc/sys/net/core/rmem_max"));
  if (max >= 8 << 20) return `net.core.rmem_max is ${max}: nothing caps 8 MiB`;
  try {
    const { success } = await new Deno.Command("setpriv", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    if (!success) return "setpriv does not run";
    // The checkout must be readable by the unprivileged user.
    const readable = await new Deno.Command("setpriv", {
      args: [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "test",
        "-r",
        `${ROOT}${script}`,
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    if (!readable.success) return `user nobody cannot read ${ROOT}`;
  } catch {
    return "setpriv (util-linux) is not installed";
  }
  return undefined;
}

/**
 * The command line that runs `tool` with `args` as user nobody (whom no
 * capability lets past `net.core.rmem_max`), with `home` as its home and
 * Deno directory; see {@linkcode cappedUnavailable}.
 */
export function nobodyCommand(
  tool: Tool,
  args: string[],
  options: { home: string },
): string[] {
  return [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "env",
    `HOME=${options.home}`,
    `DENO_DIR=${options.home}`,
    "NO_COLOR=1",
    Deno.execPath(),
    "run",
    ...toolFlags(tool),
    ...args,
  ];
}

let nextPort = 20000 + (Deno.pid % 400) * 100;

/** A port for one test: distinct within the run, unlikely to collide across runs. */
export function testPort(): number {
  nextPort += 1;
  return nextPort;
}

/**
 * Runs `fn` with a new temporary directory, removed afterwards in every
 * outcome.
 */
export async function withTempDir(
  prefix: string,
  fn: (dir: string) => void | Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Runs a script (`deno run --no-config --allow-read --allow-write SCRIPT
 * ARG`) that prints a growing count, one number per line, and kills it with
 * SIGKILL once it reported `count` (within 20 s).
 *
 * @returns The last number it reported.
 */
export async function killWhenReported(
  script: string,
  arg: string,
  count: number,
): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-config", "--allow-read", "--allow-write", script, arg],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let last = 0;
  let buffer = "";
  let killed = false;
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  try {
    for await (
      const text of child.stdout.pipeThrough(new TextDecoderStream())
    ) {
      buffer += text;
      const lines = buffer.split("\n");
      buffer = lines.pop()!;
      if (lines.length > 0) last = Number(lines.at(-1));
      if (!killed && last >= count) {
        child.kill("SIGKILL");
        killed = true;
      }
    }
  } finally {
    clearTimeout(timer);
  }
  const status = await child.status;
  assert.ok(killed, `${script} ended early: ${await stderr}`);
  assert.equal(status.signal, "SIGKILL");
  await stderr;
  return last;
}
