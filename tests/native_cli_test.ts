/**
 * Process tests of the native path's edges in the tools: `--io native`
 * where it cannot load is one line and exit 2 (here: without
 * `--allow-ffi`), and a receive buffer the system caps is one warning line
 * on stderr (an unprivileged user, below `net.core.rmem_max`), the tool
 * working on.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ROOT, toolFlags } from "../scripts/tools.ts";
import {
  cappedUnavailable,
  nobodyCommand,
  RunningProcess,
  runTool,
  testPort,
} from "./_tools.ts";
import { assertOk, WAITING } from "./_exercise.ts";

const decoder = new TextDecoder();

/** The task's flags (with the entry point) without `--allow-ffi`. */
function withoutFfi(tool: "send" | "recv"): string[] {
  return toolFlags(tool).filter((flag) => flag !== "--allow-ffi");
}

Deno.test("--io native without --allow-ffi: one line, exit 2, for both tools", async () => {
  for (const tool of ["send", "recv"] as const) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...withoutFfi(tool), "--io", "native"],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const { code, stdout, stderr } = await child.output();
    clearTimeout(timer);
    const name = tool === "send" ? "mcast-send" : "mcast-recv";
    assert.equal(
      decoder.decode(stderr),
      `${name}: Option "--io native" cannot be used here: FFI not permitted (run with --allow-ffi)\n`,
    );
    assert.equal(decoder.decode(stdout), "");
    assert.equal(code, 2);
  }
});

Deno.test("a receive buffer the system caps: one warning line on stderr, and the receiver works on", async () => {
  const reason = await cappedUnavailable("receiver.ts");
  if (reason !== undefined) {
    console.log(`skipped: ${reason}`);
    return;
  }
  const home = await Deno.makeTempDir({ prefix: "mcast_capped_" });
  try {
    await Deno.chmod(home, 0o777);
    const max = Number(
      await Deno.readTextFile("/proc/sys/net/core/rmem_max"),
    );
    const group = "239.78.11.1";
    const port = testPort();
    // As nobody: the system's maximum applies, not SO_RCVBUFFORCE.
    await using receiver = new RunningProcess(
      nobodyCommand("recv", [
        "--io",
        "native",
        "-g",
        group,
        "-p",
        String(port),
        "-c",
        "1",
      ], { home }),
    );
    await receiver.waitForOutput(WAITING, { timeoutMs: 30_000 });
    const send = await runTool("send", ["-g", group, "-p", String(port)]);
    assertOk(send, "sender");
    const end = await receiver.finish(10_000);
    assert.equal(
      end.stderr,
      `mcast-recv: warning: receive buffer is ${max} bytes, asked for 8388608 (the system caps it: sysctl -w net.core.rmem_max=8388608)\n`,
    );
    assert.equal(end.code, 0, end.stdout);
    assert.ok(end.stdout.includes("very important data"), end.stdout);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
