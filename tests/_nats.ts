/**
 * A NATS server for tests: Debian's `nats-server`, started on 127.0.0.1 (or
 * inside a test's network namespace) on a free port, with JetStream on
 * request, and killed, with its directory removed, in every outcome
 * (`await using server = await startNats()`). Each server has a temporary
 * directory `mcast-nats-<test pid>-…` (its pid file, its JetStream store):
 * a server whose test process was killed before it could stop it is killed
 * by the next {@linkcode startNats}.
 *
 * @module
 */

import { processAlive } from "./_netns.ts";

/** Where Debian installs it; `PATH` is searched as well. */
const CANDIDATES = ["/usr/sbin/nats-server", "/usr/bin/nats-server"];

/** Longest to wait for the server to say it is ready. */
const READY_TIMEOUT_MS = 10_000;

/** Longest to wait for the server to end once signalled. */
const STOP_TIMEOUT_MS = 5_000;

/** Options of {@linkcode startNats}. */
export interface NatsOptions {
  /** Turn JetStream on, its store in a fresh temporary directory. */
  jetstream?: boolean;
  /**
   * Words run before the server, e.g. `["ip", "netns", "exec", "ns1"]`;
   * then give {@linkcode NatsOptions.host} too.
   */
  prefix?: string[];
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Port to listen on (default: a free one). */
  port?: number;
}

/** A running server; disposing it kills it and removes its store. */
export interface NatsServer extends AsyncDisposable {
  /** `nats://HOST:PORT`. */
  url: string;
  /** The address it listens on. */
  host: string;
  /** The port it listens on. */
  port: number;
  /** Its JetStream store, when JetStream is on. */
  storeDir: string | undefined;
  /** Its directory (pid file, store), removed by disposing. */
  dir: string;
  /** Whether it runs. */
  readonly running: boolean;
  /** Everything it logged so far. */
  readonly log: string;
  /**
   * Freezes it (SIGSTOP): connections stay open, nothing is answered.
   * Resolves once every thread of it is stopped (a signal takes a moment
   * to stop a process that runs on another CPU).
   */
  pause(): Promise<void>;
  /** Lets a paused server go on (SIGCONT). */
  resume(): void;
  /** Stops it (SIGTERM, SIGKILL after 5 s), keeping the store. */
  stop(): Promise<void>;
  /** Starts it again, same port and store (after {@linkcode stop}). */
  restart(): Promise<void>;
}

/**
 * Finds `nats-server`.
 *
 * @returns Its path, or `undefined` when it is not installed.
 */
export function natsServerPath(): string | undefined {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter((d) => d !== "");
  for (const path of [...CANDIDATES, ...dirs.map((d) => `${d}/nats-server`)]) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // Not there.
    }
  }
  return undefined;
}

/**
 * Tells why the NATS tests cannot run here.
 *
 * @returns The reason, or `undefined` when `nats-server` is installed.
 */
export function natsUnavailable(): string | undefined {
  return natsServerPath() === undefined
    ? "nats-server is not installed (apt-get install nats-server)"
    : undefined;
}

/** What a server directory of this module is named: `mcast-nats-<pid>-…`. */
const DIR_PATTERN = /^mcast-nats-([0-9]+)-/;

/**
 * Kills the servers that a killed test run left behind (their test process
 * is gone) and removes their directories.
 */
async function removeStale(): Promise<void> {
  const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
  for await (const entry of Deno.readDir(tmp)) {
    const match = DIR_PATTERN.exec(entry.name);
    if (!entry.isDirectory || !match || processAlive(Number(match[1]))) {
      continue;
    }
    const dir = `${tmp}/${entry.name}`;
    try {
      const pid = Number(await Deno.readTextFile(`${dir}/server.pid`));
      const command = await Deno.readTextFile(`/proc/${pid}/cmdline`);
      if (command.includes("nats-server") && command.includes(dir)) {
        Deno.kill(pid, "SIGKILL");
      }
    } catch {
      // No pid file, or the server is gone.
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Waits (up to 5 s) until every thread of `pid` is stopped (state T). */
async function allStopped(pid: number): Promise<void> {
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  for (;;) {
    let running = 0;
    for await (const task of Deno.readDir(`/proc/${pid}/task`)) {
      const stat = await Deno.readTextFile(
        `/proc/${pid}/task/${task.name}/stat`,
      ).catch(() => "");
      // The state follows the command name in parentheses.
      const state = stat.slice(
        stat.lastIndexOf(")") + 2,
        stat.lastIndexOf(")") + 3,
      );
      if (state !== "T" && state !== "t" && state !== "") running++;
    }
    if (running === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `nats-server (${pid}) did not stop: ${running} threads run`,
      );
    }
    await new Promise((wake) => setTimeout(wake, 5));
  }
}

/** A free TCP port on 127.0.0.1 (free when asked; the server takes it next). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** One run of the server process. */
class ServerProcess {
  readonly child: Deno.ChildProcess;
  log = "";
  ended = false;
  readonly done: Promise<void>;
  #waiters: (() => void)[] = [];

  constructor(command: string[]) {
    const [program, ...args] = command;
    this.child = new Deno.Command(program!, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const collect = async (stream: ReadableStream<Uint8Array>) => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
        this.log += text;
        this.#waiters.splice(0).forEach((wake) => wake());
      }
    };
    this.done = Promise.all([
      this.child.status,
      collect(this.child.stdout),
      collect(this.child.stderr),
    ]).then(() => {
      this.ended = true;
      this.#waiters.splice(0).forEach((wake) => wake());
    });
  }

  /** Waits until the log contains `text`; false after `ms` or at the end. */
  async waitFor(text: string, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.log.includes(text)) {
      const left = deadline - Date.now();
      if (this.ended || left <= 0) return false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((wake) => {
        this.#waiters.push(wake);
        timer = setTimeout(wake, left);
      });
      clearTimeout(timer);
    }
    return true;
  }

  /** Sends it a signal, unless it ended. */
  signal(signal: Deno.Signal): void {
    try {
      this.child.kill(signal);
    } catch {
      // Already ended.
    }
  }

  /** Signals it and waits for its end (SIGKILL after the timeout). */
  async stop(signal: Deno.Signal): Promise<void> {
    if (!this.ended) {
      this.signal(signal);
      if (signal !== "SIGKILL") this.signal("SIGCONT");
      const timer = setTimeout(() => this.signal("SIGKILL"), STOP_TIMEOUT_MS);
      try {
        await this.done;
      } finally {
        clearTimeout(timer);
      }
    }
    await this.done;
  }
}

/**
 * Starts `nats-server` and waits (up to 10 s) until it is ready.
 *
 * @param options JetStream, a namespace to run in, the address.
 * @returns The server; dispose it (`await using`).
 * @throws {Error} When it is not installed or does not start.
 */
export async function startNats(
  options: NatsOptions = {},
): Promise<NatsServer> {
  const program = natsServerPath();
  if (program === undefined) throw new Error(natsUnavailable());
  const host = options.host ?? "127.0.0.1";
  const port = options.port ?? freePort();
  await removeStale();
  const dir = await Deno.makeTempDir({ prefix: `mcast-nats-${Deno.pid}-` });
  const storeDir = options.jetstream ? `${dir}/store` : undefined;
  const command = [
    ...(options.prefix ?? []),
    program,
    "-a",
    host,
    "-p",
    String(port),
    // Names the directory, so that a stale server can be told apart.
    "-P",
    `${dir}/server.pid`,
    ...(storeDir === undefined ? [] : ["-js", "-sd", storeDir]),
  ];
  let process: ServerProcess | undefined;
  async function launch(): Promise<void> {
    const started = new ServerProcess(command);
    process = started;
    if (!await started.waitFor("Server is ready", READY_TIMEOUT_MS)) {
      await started.stop("SIGKILL");
      throw new Error(
        `nats-server did not start on ${host}:${port}:\n${started.log}`,
      );
    }
  }
  try {
    await launch();
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
  let log = "";
  return {
    url: `nats://${host.includes(":") ? `[${host}]` : host}:${port}`,
    host,
    port,
    storeDir,
    dir,
    get running() {
      return process !== undefined && !process.ended;
    },
    get log() {
      return log + (process?.log ?? "");
    },
    async pause() {
      if (process === undefined) return;
      process.signal("SIGSTOP");
      await allStopped(process.child.pid);
    },
    resume() {
      process?.signal("SIGCONT");
    },
    async stop() {
      if (process === undefined) return;
      await process.stop("SIGTERM");
      log += process.log;
      process = undefined;
    },
    async restart() {
      if (process !== undefined) throw new Error("nats-server still runs");
      await launch();
    },
    async [Symbol.asyncDispose]() {
      try {
        await process?.stop("SIGKILL");
      } finally {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    },
  };
}
