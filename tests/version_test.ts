import assert from "node:assert/strict";
import { VERSION } from "../lib/version.ts";

Deno.test("VERSION equals the version in deno.json", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  );
  assert.equal(typeof config.version, "string");
  assert.equal(VERSION, config.version);
});

Deno.test("VERSION is a semantic version", () => {
  assert.match(
    VERSION,
    /^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$/,
  );
});
