/**
 * `deno task test`: the whole suite, then the process tests again on the
 * other I/O path, and one summary line `N passed, N failed` for both.
 *
 * Pass 1 runs every test and doc test with the tools' default `--io auto`:
 * the native path on Linux (where `lib/net/native_socket.ts` loads), the
 * deno path elsewhere. Pass 2 (where pass 1 took the native path) runs the
 * tests that start the tools as processes (the exercise, interoperation,
 * hostile input, fuzzing, faults in namespaces, reliable and keyed
 * sessions, the CLI's process tests) with `--io deno`, through
 * `MCAST_TEST_IO` (see `scripts/tools.ts`). The library's own tests need
 * one pass: they choose their endpoint in code and test both paths by
 * name (`tests/net/socket_test.ts`, `tests/net/native_socket_test.ts`, the
 * crypto backends' known answers and cross-backend sessions).
 *
 * Extra arguments go to `deno test` in both passes (e.g. `--filter`).
 *
 * @module
 */

import { nativeUnavailable } from "../lib/net/native_socket.ts";
import { ROOT, TEST_IO_VARIABLE } from "./tools.ts";

/** `deno test` flags of both passes. */
const FLAGS = [
  "test",
  "--unstable-net",
  "--allow-all",
  "--sanitize-ops",
  "--sanitize-resources",
];

/** Process tests that run again on the deno path. */
const SECOND_PASS = [
  "tests/interop_test.ts",
  "tests/hostile_test.ts",
  "tests/fuzz_test.ts",
  "tests/netns_test.ts",
  "tests/netns_reliable_test.ts",
  "tests/netns_bridge_test.ts",
  "tests/reliable_cli_test.ts",
  "tests/secure_cli_test.ts",
  "tests/progress_cli_test.ts",
  "tests/cli/cli_test.ts",
];

/** Counts of one `deno test` run, from its summary line. */
interface Counts {
  passed: number;
  failed: number;
  code: number;
}

async function pass(
  label: string,
  args: string[],
  env: Record<string, string>,
): Promise<Counts> {
  console.log(`\n=== ${label}: deno ${args.join(" ")}`);
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    await Deno.stdout.write(chunk);
    text += decoder.decode(chunk, { stream: true });
  }
  const { code } = await child.status;
  // deno's summary: "ok | 12 passed | 0 failed" or "FAILED | 3 passed ...".
  // deno colours it: strip ANSI first.
  // deno-lint-ignore no-control-regex
  const plain = text.replace(/\x1b\[[0-9;]*m/g, "");
  const summary = [...plain.matchAll(
    /^(?:ok|FAILED) \| ([0-9]+) passed(?: \([0-9]+ steps?\))? \| ([0-9]+) failed/gm,
  )].at(-1);
  if (!summary) return { passed: 0, failed: 1, code: code || 1 };
  const failed = Number(summary[2]);
  return {
    passed: Number(summary[1]),
    failed: code !== 0 && failed === 0 ? 1 : failed,
    code,
  };
}

async function main(): Promise<number> {
  const extra = Deno.args;
  const results: Counts[] = [];
  const native = nativeUnavailable() === undefined;
  results.push(
    await pass(
      `pass 1 (--io auto: ${native ? "native" : "deno"})`,
      [...FLAGS, "--doc", ...extra, "tests/", "lib/"],
      {},
    ),
  );
  if (native) {
    results.push(
      await pass(
        "pass 2 (the process tests with --io deno)",
        [...FLAGS, ...extra, ...SECOND_PASS],
        { [TEST_IO_VARIABLE]: "deno" },
      ),
    );
  } else {
    console.log(
      "\npass 2 skipped: the native path does not load here, so pass 1 ran on the deno path",
    );
  }
  const passed = results.reduce((sum, r) => sum + r.passed, 0);
  const failed = results.reduce((sum, r) => sum + r.failed, 0);
  console.log(`\n${passed} passed, ${failed} failed`);
  return failed > 0 || results.some((r) => r.code !== 0) ? 1 : 0;
}

Deno.exit(await main());
