/**
 * `deno task compile` embeds exactly the tasks' permissions and
 * `--unstable-net`, with prompts off. The real runtime (`denort`) cannot be
 * downloaded here, so the compile runs against a stand-in base binary
 * (`DENORT_BIN`) and the test reads the metadata `deno compile` appends.
 */

import assert from "node:assert/strict";
import { compileArgs } from "../scripts/compile.ts";
import {
  BINARIES,
  ROOT,
  type Tool,
  toolFlags,
  TOOLS,
} from "../scripts/tools.ts";

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

/** What a data tool may do: `[]` granted for any value, `null` denied. */
const DATA_TOOL: Record<string, string[] | null> = {
  "allow_net": [],
  "allow_read": [],
  "allow_write": [],
  "allow_sys": ["networkInterfaces", "hostname"],
  "allow_ffi": [],
};

/** What each compiled tool may do. */
const PERMISSIONS: Record<Tool, Record<string, string[] | null>> = {
  send: DATA_TOOL,
  recv: DATA_TOOL,
  // mcast-check writes nothing.
  check: { ...DATA_TOOL, allow_write: null },
  bridge: DATA_TOOL,
};

/** The entry point each tool compiles from. */
const ENTRIES: Record<Tool, string> = {
  send: "sender.ts",
  recv: "receiver.ts",
  check: "check.ts",
  bridge: "bridge.ts",
};

for (const tool of TOOLS) {
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
      const bytes = await Deno.readFile(`${outDir}/${BINARIES[tool]}`);
      const text = new TextDecoder("latin1").decode(bytes);
      const permissions = objectAfter(text, "permissions");
      // The native path binds libc and libcrypto (allow_ffi).
      for (const [name, expected] of Object.entries(PERMISSIONS[tool])) {
        assert.deepEqual(permissions[name], expected, name);
      }
      for (const denied of ["allow_env", "allow_run"]) {
        assert.equal(permissions[denied], null, denied);
      }
      assert.equal(permissions.prompt, false);
      const unstable = objectAfter(text, "unstable_config");
      assert.deepEqual(unstable.features, ["net"]);
      const entry = ENTRIES[tool];
      assert.ok(text.includes(entry), `${entry} is not embedded`);
    } finally {
      await Deno.remove(outDir, { recursive: true });
    }
  });
}
