/**
 * The driver's handle on one worker process: spawned with `deno run`, its
 * JSON lines collected as they arrive, every wait bounded, killed on
 * disposal.
 *
 * @module
 */

/** A JSON line a worker printed. */
export interface WorkerLine {
  /** `ready`, `idle` or `result`. */
  event: string;
  /** Anything else. */
  [key: string]: unknown;
}

/** The repository root (the workers' working directory). */
export const ROOT: string = new URL("..", import.meta.url).pathname;

/** A worker process. */
export class WorkerProcess {
  /** Name in error messages. */
  readonly label: string;
  /** The child. */
  readonly child: Deno.ChildProcess;
  /** JSON lines so far. */
  readonly lines: WorkerLine[] = [];
  /** Standard error so far (the end of it). */
  stderr = "";
  #exited = false;
  #status: Promise<Deno.CommandStatus>;
  #waiters = new Set<() => void>();
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #done: Promise<void>;

  /**
   * Starts `bench/<script>` with its configuration.
   *
   * @param label Name in error messages.
   * @param script File name in `bench/`.
   * @param config The worker's configuration.
   */
  constructor(label: string, script: string, config: unknown) {
    this.label = label;
    this.child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--unstable-net",
        "--allow-all",
        `bench/${script}`,
        JSON.stringify(config),
      ],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.#writer = this.child.stdin.getWriter();
    this.#status = this.child.status;
    const out = this.#read(this.child.stdout, (line) => {
      try {
        const value = JSON.parse(line) as WorkerLine;
        if (value && typeof value.event === "string") this.lines.push(value);
      } catch {
        this.stderr = (this.stderr + line + "\n").slice(-4000);
      }
    });
    const err = this.#read(this.child.stderr, (line) => {
      this.stderr = (this.stderr + line + "\n").slice(-4000);
    });
    this.#done = Promise.all([this.#status, out, err]).then(() => {
      this.#exited = true;
      this.#notify();
    });
  }

  /** The process id (for `/proc/PID/status`). */
  get pid(): number {
    return this.child.pid;
  }

  /** The process has ended. */
  get exited(): boolean {
    return this.#exited;
  }

  async #read(
    stream: ReadableStream<Uint8Array>,
    onLine: (line: string) => void,
  ): Promise<void> {
    let text = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      let newline;
      while ((newline = text.indexOf("\n")) >= 0) {
        onLine(text.slice(0, newline));
        text = text.slice(newline + 1);
      }
      this.#notify();
    }
    if (text) onLine(text);
  }

  #notify(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  /**
   * Resolves with the first line of this event, rejects after `timeoutMs` or
   * when the process ends without printing it.
   *
   * @param event `ready`, `idle` or `result`.
   * @param timeoutMs Longest wait.
   * @returns The line.
   */
  async waitFor(event: string, timeoutMs: number): Promise<WorkerLine> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const line = this.lines.find((l) => l.event === event);
      if (line) return line;
      if (this.#exited) {
        throw new Error(
          `${this.label} ended without "${event}": ${this.stderr.trim()}`,
        );
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Error(`${this.label}: no "${event}" within ${timeoutMs} ms`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      let wake: (() => void) | undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        this.#waiters.add(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#waiters.delete(wake!);
    }
  }

  /** Asks the worker to stop (it reads `stop` on standard input). */
  async stop(): Promise<void> {
    if (this.#exited || !this.#writer) return;
    try {
      await this.#writer.write(new TextEncoder().encode("stop\n"));
    } catch {
      // It ended meanwhile.
    }
  }

  /** Kills the process if it still runs, and waits for it. */
  async kill(): Promise<void> {
    const writer = this.#writer;
    this.#writer = undefined;
    await writer?.close().catch(() => {});
    if (!this.#exited) {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await this.#done;
  }

  /** Kills on disposal (`await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }
}

/** Resident memory of a process, KiB, from `/proc/PID/status`. */
export interface ProcMemory {
  /** Current resident set. */
  rssKiB: number;
  /** Peak resident set (VmHWM). */
  hwmKiB: number;
}

/**
 * Reads a process's resident memory (Linux).
 *
 * @param pid The process.
 * @returns Current and peak RSS, or null when gone or unreadable.
 */
export function procMemory(pid: number): ProcMemory | null {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const rss = /^VmRSS:\s+(\d+)/m.exec(status);
    const hwm = /^VmHWM:\s+(\d+)/m.exec(status);
    if (!rss || !hwm) return null;
    return { rssKiB: Number(rss[1]), hwmKiB: Number(hwm[1]) };
  } catch {
    return null;
  }
}
