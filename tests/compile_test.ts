/**
 * `deno task compile` embeds exactly the tasks' permissions and
 * `--unstable-net`, with prompts off. The real runtime (`denort`) cannot be
 * downloaded here, so the compile runs against a stand-in base binary
 * (`DENORT_BIN`) and the test reads the metadata `deno compile` appends.
 */

import assert from "node:assert/strict";
import { compileArgs } from "../scripts/compile.ts";
import { ROOT, toolFlags } from "../scripts/tools.ts";

const STAND_IN = "/bin/true";

function hasStandIn(): boolean {
  try {
    return Deno.statSync(STAND_IN).isFile;
  } catch {
    return false;
  }
}

/** The JSON object that follows `"key":` in `text`, parsed. */
function objectAfter(text: string, key: string): Record<string, unknown> {
  const start = text.indexOf(`"${key}":{`);
  assert.notEqual(start, -1, `no "${key}" in the compiled metadata`);
  let depth = 0;
  const from = start + key.length + 3;
  for (let i = from; i < text.length; i++) {
    if (text[i] === "{") depth++;
    if (text[i] === "}" && --depth === 0) {
      return JSON.parse(text.slice(from, i + 1));
    }
  }
  throw new Error(`unterminated "${key}" object`);
}

Deno.test("compileArgs passes the task's flags after --no-prompt and --output", () => {
  assert.deepEqual(compileArgs("send"), [
    "compile",
    "--no-prompt",
    "--output",
    "dist/mcast-send",
    "--unstable-net",
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-sys=networkInterfaces,hostname",
    "--allow-ffi",
    "sender.ts",
  ]);
  assert.deepEqual(
    compileArgs("recv", { target: "aarch64-apple-darwin", outDir: "/tmp/x" }),
    [
      "compile",
      "--no-prompt",
      "--target",
      "aarch64-apple-darwin",
      "--output",
      "/tmp/x/mcast-recv",
      ...toolFlags("recv"),
    ],
  );
});

for (const tool of ["send", "recv"] as const) {
  Deno.test({
    name:
      `the compiled ${tool} tool embeds the minimal permissions and --unstable-net`,
    ignore: !hasStandIn(),
  }, async () => {
    const outDir = await Deno.makeTempDir({ prefix: "mcast-compile-" });
    try {
      const { code, stderr } = await new Deno.Command(Deno.execPath(), {
        args: compileArgs(tool, { outDir }),
        cwd: ROOT,
        env: { DENORT_BIN: STAND_IN, NO_COLOR: "1" },
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.equal(code, 0, new TextDecoder().decode(stderr));
      const name = tool === "send" ? "mcast-send" : "mcast-recv";
      const bytes = await Deno.readFile(`${outDir}/${name}`);
      const text = new TextDecoder("latin1").decode(bytes);
      const permissions = objectAfter(text, "permissions");
      assert.deepEqual(permissions.allow_net, []);
      assert.deepEqual(permissions.allow_read, []);
      assert.deepEqual(permissions.allow_write, []);
      assert.deepEqual(permissions.allow_sys, [
        "networkInterfaces",
        "hostname",
      ]);
      // The native path binds libc and libcrypto.
      assert.deepEqual(permissions.allow_ffi, []);
      for (const denied of ["allow_env", "allow_run"]) {
        assert.equal(permissions[denied], null, denied);
      }
      assert.equal(permissions.prompt, false);
      const unstable = objectAfter(text, "unstable_config");
      assert.deepEqual(unstable.features, ["net"]);
      const entry = tool === "send" ? "sender.ts" : "receiver.ts";
      assert.ok(text.includes(entry), `${entry} is not embedded`);
    } finally {
      await Deno.remove(outDir, { recursive: true });
    }
  });
}
