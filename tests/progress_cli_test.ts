/**
 * Process tests of the progress of a long `mcast-send --reliable --file`:
 * periodic `progress` events with `--json`, nothing extra on a stderr that
 * is not a terminal, and a progress line redrawn in place on one that is
 * (the sender runs under `script`, which gives it a pseudo-terminal).
 *
 * Loopback only: the sender binds 127.0.0.1, the receiver joins there.
 *
 * @module
 */

import assert from "node:assert/strict";
import { assertOk, WAITING } from "./_exercise.ts";
import { at } from "./_reliable.ts";
import {
  RunningProcess,
  runTool,
  spawnTool,
  testPort,
  withTempDir,
} from "./_tools.ts";
import { toolCommand } from "../scripts/tools.ts";

/** A file large enough to take about three seconds at `RATE`. */
const SIZE = 6_000_000;
/** The sender's `--rate`: slow enough for several progress events. */
const RATE = "2MB";

async function writeFile(dir: string): Promise<string> {
  const bytes = new Uint8Array(SIZE);
  for (let k = 0; k < bytes.length; k++) bytes[k] = (k * 7 + (k >> 9)) & 0xff;
  const path = `${dir}/file.bin`;
  await Deno.writeFile(path, bytes);
  return path;
}

function startReceiver(group: string, port: number, dir: string) {
  return spawnTool("recv", [
    ...at(group, port),
    "--name",
    "desk",
    "--output",
    `${dir}/inbox`,
    "--max-size",
    "8MiB",
    "--count",
    "1",
  ]);
}

function sendArgs(group: string, port: number, path: string): string[] {
  return [
    ...at(group, port),
    "--reliable",
    "--file",
    path,
    "--max-size",
    "8MiB",
    "--rate",
    RATE,
    "--expect",
    "1",
  ];
}

Deno.test("reliable --file --json: progress events once a second, bytes rising to the file's size", async () => {
  await withTempDir("mcast_progress_", async (dir) => {
    const path = await writeFile(dir);
    const group = "239.78.9.1";
    const port = testPort();
    await using receiver = startReceiver(group, port, dir);
    await receiver.waitForOutput(WAITING);
    const send = await runTool("send", [
      ...sendArgs(group, port, path),
      "--json",
    ], { timeoutMs: 30_000 });
    assertOk(send, "sender");
    assertOk(await receiver.finish(10_000), "receiver");
    assert.equal(send.stderr, "");
    const events = send.stdout.trim().split("\n").map((line) =>
      JSON.parse(line) as Record<string, unknown>
    );
    const progress = events.filter((e) => e.event === "progress");
    assert.ok(progress.length >= 2, `${progress.length} progress events`);
    let last = 0;
    let lastElapsed = 0;
    for (const event of progress) {
      assert.deepEqual(
        Object.keys(event).sort(),
        [
          "acknowledged",
          "bytesPerSecond",
          "elapsedMs",
          "event",
          "queuedBytes",
          "receivers",
          "sentBytes",
          "time",
          ...(event.etaSeconds === undefined ? [] : ["etaSeconds"]),
        ].sort(),
      );
      assert.equal(event.queuedBytes, SIZE);
      assert.equal(event.receivers, 1);
      const sent = event.sentBytes as number;
      assert.ok(sent >= last && sent <= SIZE, `sentBytes ${sent}`);
      const elapsed = event.elapsedMs as number;
      assert.ok(
        elapsed - lastElapsed >= 950,
        `${elapsed} after ${lastElapsed}`,
      );
      last = sent;
      lastElapsed = elapsed;
    }
    assert.ok(
      progress.some((e) =>
        (e.sentBytes as number) > 0 && e.etaSeconds !== undefined
      ),
      "a rate and a time left once bytes left",
    );
    // Progress comes before the report, never after it.
    assert.equal(events.at(-1)!.event, "report");
    const names = [];
    for await (const entry of Deno.readDir(`${dir}/inbox`)) {
      names.push(entry.name);
    }
    assert.equal(names.length, 1);
    const saved = await Deno.readFile(`${dir}/inbox/${names[0]}`);
    assert.deepEqual(saved, await Deno.readFile(path));
  });
});

Deno.test("reliable --file: no progress on a stderr that is not a terminal", async () => {
  await withTempDir("mcast_progress_", async (dir) => {
    const path = await writeFile(dir);
    const group = "239.78.9.2";
    const port = testPort();
    await using receiver = startReceiver(group, port, dir);
    await receiver.waitForOutput(WAITING);
    const send = await runTool("send", sendArgs(group, port, path), {
      timeoutMs: 30_000,
    });
    assertOk(send, "sender");
    assertOk(await receiver.finish(10_000), "receiver");
    assert.equal(send.stderr, "");
    assert.doesNotMatch(send.stdout, /receivers? up to date/);
    assert.equal(send.stdout.includes("\x1b"), false);
  });
});

/** True when util-linux `script` can give a command a pseudo-terminal. */
async function scriptAvailable(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("script", {
      args: ["-qec", "true", "/dev/null"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

Deno.test("reliable --file on a terminal: a progress line redrawn in place, cleared before the report", async (t) => {
  if (!await scriptAvailable()) {
    console.log(
      "skipped: util-linux `script` is not installed (no pseudo-terminal)",
    );
    return;
  }
  await withTempDir("mcast_progress_", async (dir) => {
    const path = await writeFile(dir);
    const group = "239.78.9.3";
    const port = testPort();
    await using receiver = startReceiver(group, port, dir);
    await receiver.waitForOutput(WAITING);
    const command = toolCommand("send", sendArgs(group, port, path))
      .map((word) => `'${word.replaceAll("'", `'\\''`)}'`).join(" ");
    // stdin, stdout and stderr are all the pseudo-terminal.
    const send = await new RunningProcess([
      "script",
      "-qefc",
      command,
      "/dev/null",
    ]).finish(30_000);
    assertOk(send, "sender under script");
    assertOk(await receiver.finish(10_000), "receiver");
    const text = send.stdout.replaceAll("\r\n", "\n");
    const redraws = text.split("\r\x1b[K").slice(1);
    await t.step("several progress lines, then a clear", () => {
      // Each redraw is a progress line, or a clear followed by what the
      // tool prints on stdout ("sent 1 bulletin in …", the report).
      const shown = redraws.filter((line) => / of 6\.0 MB /.test(line));
      assert.ok(shown.length >= 4, `${shown.length} progress lines`);
      const pattern =
        /^sent [0-9.]+ (B|kB|MB) of 6\.0 MB \([0-9]+%\) at [0-9.]+ (B|kB|MB)\/s(, [0-9.]+ s left)?, [01] of 1 receiver up to date$/;
      for (const line of shown) assert.match(line, pattern);
      // The last redraw is the clear before the next line on stdout: the
      // end of sending, a receiver leaving or the report.
      assert.match(
        redraws.at(-1)!,
        /^(sent 1 bulletin in [0-9]+ datagrams, waiting|receiver desk left|delivery report for session )/,
      );
    });
  });
});
