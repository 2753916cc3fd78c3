/**
 * How the two tools are run and compiled. The `send` and `recv` tasks in
 * `deno.json` are the single source of the flags: `deno task compile` embeds
 * exactly those flags, and the tests and the demo run exactly those flags
 * (or the compiled binaries, when `dist/` has them).
 *
 * @module
 */

/** Which tool. */
export type Tool = "send" | "recv" | "check" | "bridge";

/** Every tool, in the order `deno task compile` builds them. */
export const TOOLS: readonly Tool[] = ["send", "recv", "check", "bridge"];

/**
 * The `deno.json` task that runs each tool (`check` is taken by the
 * format, lint and type checks, so `mcast-check` runs as `check-net`).
 */
export const TASKS: Record<Tool, string> = {
  send: "send",
  recv: "recv",
  check: "check-net",
  bridge: "bridge",
};

/** The repository root, with a trailing slash. */
export const ROOT: string = new URL("../", import.meta.url).pathname;

/** File names of the compiled tools, without `.exe`. */
export const BINARIES: Record<Tool, string> = {
  send: "mcast-send",
  recv: "mcast-recv",
  check: "mcast-check",
  bridge: "mcast-bridge",
};

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * Returns the path of the compiled binary of `tool`, when `dist/` has one.
 *
 * @param tool Which tool.
 * @returns The path, or `undefined`.
 */
export function compiledBinary(tool: Tool): string | undefined {
  const suffix = Deno.build.os === "windows" ? ".exe" : "";
  const path = `${ROOT}dist/${BINARIES[tool]}${suffix}`;
  return isFile(path) ? path : undefined;
}

/**
 * Returns the words of a `deno.json` task, e.g.
 * `["deno", "run", "--unstable-net", ..., "sender.ts"]`.
 *
 * @param name The task's name.
 * @returns The task split on white space.
 */
export function taskWords(name: string): string[] {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  const task = config.tasks?.[name];
  if (typeof task !== "string") {
    throw new Error(`No task "${name}" in deno.json`);
  }
  return task.trim().split(/\s+/);
}

/**
 * Returns the runtime flags and entry point of `tool`: the `deno run` task
 * without `deno run`, e.g. `["--unstable-net", ..., "sender.ts"]`.
 *
 * @param tool Which tool.
 * @returns Flags followed by the entry point.
 */
export function toolFlags(tool: Tool): string[] {
  const words = taskWords(TASKS[tool]);
  if (words[0] !== "deno" || words[1] !== "run") {
    throw new Error(`Task "${TASKS[tool]}" must start with "deno run"`);
  }
  return words.slice(2);
}

/**
 * Returns the program and arguments that run `tool` with `args`: the
 * compiled binary when it exists, else `deno run` with the task's flags.
 *
 * @param tool Which tool.
 * @param args The tool's own arguments.
 * @returns The command line, program first.
 */
export function toolCommand(tool: Tool, args: string[]): string[] {
  // First: an option left without its value at the end still is.
  const all = [...testIoArgs(args), ...args];
  const binary = compiledBinary(tool);
  if (binary) return [binary, ...all];
  return [Deno.execPath(), "run", ...toolFlags(tool), ...all];
}

/** The environment variable that picks the tools' `--io` in test runs. */
export const TEST_IO_VARIABLE = "MCAST_TEST_IO";

/**
 * `["--io", path]` when {@linkcode TEST_IO_VARIABLE} names a path (the test
 * runner's second pass runs the process tests on the deno path that way),
 * unless the arguments choose one themselves or only ask for help, the
 * version or a key (options that are used alone).
 */
function testIoArgs(args: string[]): string[] {
  const permission = Deno.permissions.querySync?.({
    name: "env",
    variable: TEST_IO_VARIABLE,
  });
  if (permission?.state !== "granted") return [];
  const io = Deno.env.get(TEST_IO_VARIABLE);
  if (io === undefined || io === "") return [];
  const alone = /^(--io(=|$)|--help$|-h$|--version$|-V$|--gen-(sign-)?key)/;
  if (args.some((arg) => alone.test(arg))) return [];
  return ["--io", io];
}
