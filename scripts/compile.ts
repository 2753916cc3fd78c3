/**
 * `deno task compile [--target TARGET]`: writes `dist/mcast-send` and
 * `dist/mcast-recv` with `deno compile`, embedding exactly the permissions
 * and `--unstable-net` of the `send`/`recv` tasks, and `--no-prompt`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { BINARIES, ROOT, type Tool, toolFlags, TOOLS } from "./tools.ts";

/** Options of {@linkcode compileArgs}. */
export interface CompileOptions {
  /** A `--target` triple; the host's when absent. */
  target?: string;
  /** Where the binaries go; `dist` when absent. */
  outDir?: string;
}

/**
 * Returns the `deno compile` arguments for one tool.
 *
 * @param tool Which tool.
 * @param options Target and output folder.
 * @returns The arguments after `deno`.
 */
export function compileArgs(
  tool: Tool,
  options: CompileOptions = {},
): string[] {
  return [
    "compile",
    "--no-prompt",
    ...(options.target === undefined ? [] : ["--target", options.target]),
    "--output",
    `${options.outDir ?? "dist"}/${BINARIES[tool]}`,
    ...toolFlags(tool),
  ];
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { target: { type: "string" } },
    strict: true,
  });
  for (const tool of TOOLS) {
    const args = compileArgs(
      tool,
      values.target === undefined ? {} : { target: values.target },
    );
    console.log(`deno ${args.join(" ")}`);
    const status = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
    }).spawn().status;
    if (!status.success) return status.code || 1;
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main());
