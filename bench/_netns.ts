/**
 * Private networks for the benchmark's side-by-side sections (`uftp.ts`,
 * `c_pair.ts`), made of Linux network namespaces that the run creates as
 * root and deletes in every outcome, and a handle on a process started
 * inside one of them (`ip netns exec`).
 *
 * Two topologies:
 * - `lo`: one namespace whose loopback carries everything (sender and
 *   receivers on 127.0.0.1), with a multicast route on `lo` and its
 *   MULTICAST flag set (uftp and uftpd skip an interface without it);
 * - `bridge`: a sending namespace and one namespace per receiver, each with
 *   a veth link to a bridge in a namespace of its own (a plain switch that
 *   floods every group), addresses from TEST-NET-2 (198.51.100.0/24), as
 *   `tests/_netns.ts` builds them. It exists for tools of which only one
 *   process can listen on a host (uftpd binds its port without address
 *   reuse).
 *
 * Namespace names are `mcastbench<pid><role>`; namespaces of that pattern
 * left behind by a killed run (its process gone) are deleted before new
 * ones are made. Nothing is created in the machine's own namespace.
 *
 * @module
 */

import { igmpHex } from "./external.ts";

/** Prefix of every namespace this module creates. */
export const NS_PREFIX = "mcastbench";

/** What a namespace name of this module looks like. */
const NAME_PATTERN = /^mcastbench([0-9]+)([a-z][a-z0-9]*)$/;

/** Longest any single `ip` command may run. */
const COMMAND_TIMEOUT_MS = 10_000;

/** Longest line a {@linkcode BenchProcess} keeps (the rest is dropped). */
const MAX_LINE = 2000;

/** Most lines a {@linkcode BenchProcess} keeps (the oldest go first). */
const MAX_LINES = 5000;

/** Output of one finished command. */
export interface CommandOutput {
  /** Exit status 0. */
  success: boolean;
  /** The exit code. */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

/** Options of {@linkcode runCommand}. */
export interface RunCommandOptions {
  /** Run inside this namespace (`ip netns exec`). */
  ns?: string;
  /** Kill it after this long (default 10 s). */
  timeoutMs?: number;
  /** Working directory. */
  cwd?: string;
}

/**
 * The words that run `program` inside a namespace, or as is without one.
 *
 * @param ns The namespace, or undefined.
 * @param program The program.
 * @param args Its arguments.
 * @returns Program first.
 */
export function inNamespace(
  ns: string | undefined,
  program: string,
  args: string[],
): string[] {
  return ns === undefined
    ? [program, ...args]
    : ["ip", "netns", "exec", ns, program, ...args];
}

/**
 * Runs a command to its end, killed after the timeout.
 *
 * @param program The program.
 * @param args Its arguments.
 * @param options Namespace, timeout, working directory.
 * @returns Its status and output (a command that could not start or was
 * killed is a failure with the reason in `stderr`).
 */
export async function runCommand(
  program: string,
  args: string[],
  options: RunCommandOptions = {},
): Promise<CommandOutput> {
  const words = inNamespace(options.ns, program, args);
  try {
    const output = await new Deno.Command(words[0]!, {
      args: words.slice(1),
      cwd: options.cwd,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(options.timeoutMs ?? COMMAND_TIMEOUT_MS),
    }).output();
    const decoder = new TextDecoder();
    return {
      success: output.success,
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  } catch (error) {
    return { success: false, code: -1, stdout: "", stderr: String(error) };
  }
}

/** Runs `ip` with these arguments; throws with its error output on failure. */
async function ip(...args: string[]): Promise<string> {
  const result = await runCommand("ip", args);
  if (!result.success) {
    throw new Error(`ip ${args.join(" ")} failed: ${result.stderr.trim()}`);
  }
  return result.stdout;
}

/**
 * Tells why namespaces cannot be made here.
 *
 * @returns The reason, or undefined when this process is root on Linux and
 * `ip netns` works.
 */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "not root: no private network namespace";
  const result = await runCommand("ip", ["netns", "list"]);
  if (!result.success) {
    return `"ip netns list" failed: ${
      result.stderr.trim() || "ip is not installed"
    }`;
  }
  return undefined;
}

function processAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses `ip netns list` output into names.
 *
 * @param text The output.
 * @returns The namespace names.
 */
export function parseNetnsList(text: string): string[] {
  return text.split("\n").map((line) => line.trim().split(" ")[0]!).filter(
    (name) => name !== "",
  );
}

/**
 * The namespaces of this module's pattern whose creating process is gone.
 *
 * @param names Names from `ip netns list`.
 * @param alive Whether a process id is running.
 * @returns The stale names.
 */
export function staleNamespaces(
  names: string[],
  alive: (pid: number) => boolean,
): string[] {
  return names.filter((name) => {
    const match = NAME_PATTERN.exec(name);
    return match !== null && !alive(Number(match[1]));
  });
}

/** Deletes stale namespaces of this module, killing what still runs there. */
async function removeStale(): Promise<void> {
  const list = await runCommand("ip", ["netns", "list"]);
  if (!list.success) return;
  for (
    const name of staleNamespaces(parseNetnsList(list.stdout), processAlive)
  ) {
    const pids = await runCommand("ip", ["netns", "pids", name]);
    for (const pid of pids.stdout.split("\n")) {
      if (!/^[0-9]+$/.test(pid)) continue;
      try {
        Deno.kill(Number(pid), "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await runCommand("ip", ["netns", "delete", name]);
  }
}

/** One host of a benchmark network. */
export interface NetHost {
  /** Its namespace. */
  ns: string;
  /** The interface name its traffic uses (`lo`, `veth-s`, `veth-r1`, …). */
  device: string;
  /** The interface's IPv4 address (bind and join on it). */
  address: string;
}

/** A benchmark network; disposing it deletes every namespace it made. */
export interface BenchNet extends AsyncDisposable {
  /** `lo` (one namespace) or `bridge` (one per host). */
  topology: "lo" | "bridge";
  /** The sending host. */
  sender: NetHost;
  /** The receiving hosts (on `lo`: the sender's namespace, once per receiver). */
  receivers: NetHost[];
  /** Every namespace made. */
  namespaces: string[];
}

async function deleteAll(namespaces: string[]): Promise<void> {
  const failures: string[] = [];
  for (const name of namespaces) {
    const result = await runCommand("ip", ["netns", "delete", name]);
    if (!result.success) failures.push(`${name}: ${result.stderr.trim()}`);
  }
  if (failures.length > 0) {
    throw new Error(`cannot delete namespaces: ${failures.join("; ")}`);
  }
}

/** Options of {@linkcode createLoopbackNet}. */
export interface LoopbackNetOptions {
  /** The namespace's role suffix (default `lo`), to tell several apart. */
  role?: string;
  /** How many receivers the network lists (all on the same lo; default 1). */
  receivers?: number;
}

/**
 * Makes one namespace whose loopback is up, flagged MULTICAST and carries
 * the multicast route `224.0.0.0/4 dev lo`. Sender and receivers are
 * 127.0.0.1 on its `lo`.
 *
 * @param options Role suffix and receiver count.
 * @returns The network; `await using` deletes it.
 */
export async function createLoopbackNet(
  options: LoopbackNetOptions = {},
): Promise<BenchNet> {
  await removeStale();
  const ns = `${NS_PREFIX}${Deno.pid}${options.role ?? "lo"}`;
  const created: string[] = [];
  try {
    await ip("netns", "add", ns);
    created.push(ns);
    await ip("-n", ns, "link", "set", "lo", "up");
    await ip("-n", ns, "link", "set", "lo", "multicast", "on");
    await ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", "lo");
    const host = { ns, device: "lo", address: "127.0.0.1" };
    return {
      topology: "lo",
      sender: host,
      receivers: Array.from({ length: options.receivers ?? 1 }, () => host),
      namespaces: [...created],
      async [Symbol.asyncDispose]() {
        await deleteAll(created);
      },
    };
  } catch (error) {
    await deleteAll(created).catch(() => {});
    throw error;
  }
}

/**
 * Makes the bridge topology: host namespaces `s`, `r1`…`rN`, each with a
 * veth link (`veth-s`, `veth-r1`, …, 198.51.100.1, .2, …/24, multicast
 * route `224.0.0.0/4` on it) to the bridge `br0` (no multicast snooping) in
 * a namespace of its own.
 *
 * @param receivers How many receiving hosts, 1 to 8.
 * @returns The network; `await using` deletes it.
 */
export async function createBridgeNet(receivers: number): Promise<BenchNet> {
  if (!Number.isInteger(receivers) || receivers < 1 || receivers > 8) {
    throw new RangeError(`a bridge net has 1 to 8 receivers, not ${receivers}`);
  }
  await removeStale();
  const prefix = `${NS_PREFIX}${Deno.pid}`;
  const bridge = `${prefix}br`;
  const roles = [
    "s",
    ...Array.from({ length: receivers }, (_, i) => `r${i + 1}`),
  ];
  const created: string[] = [];
  try {
    for (const name of [...roles.map((role) => `${prefix}${role}`), bridge]) {
      await ip("netns", "add", name);
      created.push(name);
    }
    await ip(
      "-n",
      bridge,
      "link",
      "add",
      "br0",
      "type",
      "bridge",
      "mcast_snooping",
      "0",
    );
    await ip("-n", bridge, "link", "set", "br0", "up");
    const hosts: NetHost[] = [];
    for (const [i, role] of roles.entries()) {
      const ns = `${prefix}${role}`;
      const device = `veth-${role}`;
      const address = `198.51.100.${i + 1}`;
      await ip("-n", ns, "link", "set", "lo", "up");
      await ip(
        "link",
        "add",
        device,
        "netns",
        ns,
        "type",
        "veth",
        "peer",
        "name",
        `port-${role}`,
        "netns",
        bridge,
      );
      await ip("-n", bridge, "link", "set", `port-${role}`, "master", "br0");
      await ip("-n", bridge, "link", "set", `port-${role}`, "up");
      await ip("-n", ns, "addr", "add", `${address}/24`, "dev", device);
      await ip("-n", ns, "link", "set", device, "up");
      await ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", device);
      hosts.push({ ns, device, address });
    }
    return {
      topology: "bridge",
      sender: hosts[0]!,
      receivers: hosts.slice(1),
      namespaces: [...created],
      async [Symbol.asyncDispose]() {
        await deleteAll(created);
      },
    };
  } catch (error) {
    await deleteAll(created).catch(() => {});
    throw error;
  }
}

/**
 * Whether `/proc/net/igmp` shows the group joined on the device (any device
 * when none is given).
 *
 * @param text The file's content.
 * @param group The IPv4 group.
 * @param device The interface name, e.g. `lo`.
 * @returns True when joined.
 */
export function igmpJoined(
  text: string,
  group: string,
  device?: string,
): boolean {
  const hex = igmpHex(group);
  let current: string | undefined;
  for (const line of text.split("\n")) {
    const head = /^\d+\s+(\S+)\s*:/.exec(line);
    if (head) {
      current = head[1];
      continue;
    }
    const entry = /^\s+([0-9A-Fa-f]{8})\s/.exec(line);
    if (
      entry && entry[1]!.toUpperCase() === hex &&
      (device === undefined || current === device)
    ) {
      return true;
    }
  }
  return false;
}

/**
 * Waits (polling every 20 ms, bounded) until a namespace has joined a group
 * on a device.
 *
 * @param ns The namespace.
 * @param group The group.
 * @param device The interface.
 * @param timeoutMs Longest wait.
 * @param gone Called before each poll: a reason to give up (the joining
 * process ended), or undefined to go on.
 * @throws {Error} When it has not joined in time, or `gone` gave a reason.
 */
export async function waitForJoin(
  ns: string,
  group: string,
  device: string,
  timeoutMs: number,
  gone?: () => string | undefined,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const reason = gone?.();
    if (reason !== undefined) throw new Error(reason);
    const igmp = await runCommand("cat", ["/proc/net/igmp"], { ns });
    if (igmp.success && igmpJoined(igmp.stdout, group, device)) return;
    if (performance.now() > deadline) {
      throw new Error(
        `${group} not joined on ${device} in ${ns} within ${timeoutMs} ms`,
      );
    }
    await new Promise((wake) => setTimeout(wake, 20));
  }
}

/** Options of {@linkcode BenchProcess}. */
export interface BenchProcessOptions {
  /** Run inside this namespace (`ip netns exec`, which execs the program: same pid). */
  ns?: string;
  /** Working directory. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

/**
 * A process of a benchmark run: its output collected line by line (each
 * line cut at 2,000 characters, so that a tool printing a large payload
 * costs no memory here), every wait bounded, killed on {@linkcode kill}.
 */
export class BenchProcess {
  /** Name in error messages. */
  readonly label: string;
  /** The child. */
  readonly child: Deno.ChildProcess;
  /** When it was spawned (`performance.now()`). */
  readonly startedAt: number;
  /** Standard output lines so far (cut; the oldest dropped past 5,000). */
  readonly lines: string[] = [];
  /** Standard error lines so far (the same way). */
  readonly errorLines: string[] = [];
  /** The end of standard error. */
  stderr = "";
  #status: Deno.CommandStatus | undefined;
  #endedAt: number | undefined;
  #waiters = new Set<() => void>();
  #done: Promise<void>;

  /**
   * Starts the program.
   *
   * @param label Name in error messages.
   * @param program The program.
   * @param args Its arguments.
   * @param options Namespace, working directory, environment.
   */
  constructor(
    label: string,
    program: string,
    args: string[],
    options: BenchProcessOptions = {},
  ) {
    this.label = label;
    const words = inNamespace(options.ns, program, args);
    this.startedAt = performance.now();
    this.child = new Deno.Command(words[0]!, {
      args: words.slice(1),
      cwd: options.cwd,
      env: { NO_COLOR: "1", ...options.env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const status = this.child.status.then((s) => {
      this.#endedAt = performance.now();
      this.#status = s;
    });
    const out = readLines(this.child.stdout, (line) => {
      this.lines.push(line);
      if (this.lines.length > MAX_LINES) this.lines.shift();
      this.#notify();
    });
    const err = readLines(this.child.stderr, (line) => {
      this.errorLines.push(line);
      if (this.errorLines.length > MAX_LINES) this.errorLines.shift();
      this.stderr = (this.stderr + line + "\n").slice(-4000);
    });
    this.#done = Promise.all([status, out, err]).then(() => this.#notify());
  }

  /** The process id. */
  get pid(): number {
    return this.child.pid;
  }

  /** Its exit status, once it ended. */
  get status(): Deno.CommandStatus | undefined {
    return this.#status;
  }

  /** Milliseconds from spawn to exit, once it ended. */
  get wallMs(): number | undefined {
    return this.#endedAt === undefined
      ? undefined
      : this.#endedAt - this.startedAt;
  }

  #notify(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  async #waitUntil<T>(
    check: () => T | undefined,
    timeoutMs: number,
    what: string,
  ): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const value = check();
      if (value !== undefined) return value;
      if (this.#status !== undefined) {
        // Ended: one last look after its output is drained.
        await this.#done;
        const last = check();
        if (last !== undefined) return last;
        throw new Error(
          `${this.label} ended (code ${this.#status.code}) without ${what}: ${
            this.stderr.trim().slice(-600) ||
            this.lines.slice(-3).join(" | ").slice(-600)
          }`,
        );
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Error(`${this.label}: no ${what} within ${timeoutMs} ms`);
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

  /**
   * Resolves with the first output line that matches.
   *
   * @param match The test.
   * @param timeoutMs Longest wait.
   * @returns The line.
   * @throws {Error} After the timeout, or when the process ends without it.
   */
  waitForLine(
    match: (line: string) => boolean,
    timeoutMs: number,
  ): Promise<string> {
    return this.#waitUntil(
      () => this.lines.find(match),
      timeoutMs,
      "the expected line",
    );
  }

  /**
   * Resolves with the exit status once the process ended and its output is
   * read.
   *
   * @param timeoutMs Longest wait.
   * @returns The status.
   * @throws {Error} After the timeout.
   */
  async waitExit(timeoutMs: number): Promise<Deno.CommandStatus> {
    const deadline = performance.now() + timeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(
        () => resolve("late"),
        Math.max(0, deadline - performance.now()),
      );
    });
    try {
      const outcome = await Promise.race([this.#done, late]);
      if (outcome === "late") {
        throw new Error(`${this.label}: still running after ${timeoutMs} ms`);
      }
      return this.#status!;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Sends a signal if it still runs, and waits (bounded) for it to end;
   * SIGKILL when it outlives the grace period.
   *
   * @param signal The first signal (default SIGKILL).
   * @param graceMs How long to wait after it before SIGKILL.
   */
  async kill(
    signal: Deno.Signal = "SIGKILL",
    graceMs = 2000,
  ): Promise<void> {
    if (this.#status === undefined) {
      try {
        this.child.kill(signal);
      } catch {
        // Already gone.
      }
      if (signal !== "SIGKILL") {
        try {
          await this.waitExit(graceMs);
        } catch {
          try {
            this.child.kill("SIGKILL");
          } catch {
            // Gone meanwhile.
          }
        }
      }
    }
    await this.#done;
  }
}

/**
 * Removes terminal colour sequences (`ESC [ … m`) from a message.
 *
 * @param text The text.
 * @returns It without them.
 */
export function stripAnsi(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

/**
 * Reads a stream as lines, each cut at {@linkcode MAX_LINE} characters
 * without holding the rest.
 */
async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let text = "";
  let dropping = false;
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf("\n", start);
      const piece = chunk.slice(start, newline < 0 ? undefined : newline);
      if (!dropping) {
        text += stripAnsi(piece).slice(0, MAX_LINE - text.length);
        if (text.length >= MAX_LINE) dropping = true;
      }
      if (newline < 0) break;
      onLine(text);
      text = "";
      dropping = false;
      start = newline + 1;
    }
  }
  if (text) onLine(text);
}
