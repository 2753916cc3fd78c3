/**
 * Process tests on loopback of two senders on one group: two primaries at
 * once, each receiver following both sessions; and a hot standby
 * (`mcast-send --standby`) that takes a session over when its primary is
 * killed with SIGKILL mid-feed, the receivers delivering every bulletin
 * exactly once and in order.
 *
 * @module
 */

import assert from "node:assert/strict";
import { assertOk, loopback, WAITING } from "./_exercise.ts";
import { at, bulletinLine, withPath } from "./_reliable.ts";
import { runTool, spawnTool, testPort, withTempDir } from "./_tools.ts";
import { generateKeyFile } from "../lib/security/keys.ts";
import { assertReceiverOutput, assertTakeover, feedText } from "./_standby.ts";

const GROUP = "239.255.43.9";

Deno.test("two senders on one group: a receiver follows both sessions at once and delivers each in order exactly once", async () => {
  const port = testPort();
  const count = 60;
  const texts = (prefix: string) =>
    Array.from({ length: count }, (_, k) => `${prefix} ${k + 1}`);
  await using receiver = spawnTool("recv", [
    ...at(GROUP, port),
    "--name",
    "desk",
    "--count",
    String(2 * count),
  ]);
  await receiver.waitForOutput(WAITING);
  const send = (prefix: string) =>
    spawnTool("send", [
      ...at(GROUP, port),
      "--reliable",
      "--lines",
      "--receivers",
      "desk",
      "--rate",
      "200",
    ], { stdin: texts(prefix).join("\n") + "\n" });
  await using a = send("alpha");
  await using b = send("beta");
  const [sentA, sentB] = [await a.finish(20_000), await b.finish(20_000)];
  assertOk(sentA, "sender alpha");
  assertOk(sentB, "sender beta");
  const recv = await receiver.finish(10_000);
  assertOk(recv, "receiver");
  const sessionOf = (stdout: string) =>
    /^session ([0-9a-f]{16}) to /.exec(stdout)?.[1] ?? "";
  const lines = recv.stdout.trimEnd().split("\n");
  assert.equal(lines[0], WAITING);
  assert.equal(lines.length, 1 + 2 + 2 * count + 1, recv.stdout);
  for (const [prefix, sent] of [["alpha", sentA], ["beta", sentB]] as const) {
    const session = sessionOf(sent.stdout);
    assert.ok(session, sent.stdout);
    assert.match(
      sent.stdout,
      new RegExp(
        `^  desk \\('127\\.0\\.0\\.1', ${port}\\): complete, has ${count} bulletins$`,
        "m",
      ),
    );
    const joined = new RegExp(
      `^joined session ${session} from \\('127\\.0\\.0\\.1', ([0-9]+)\\) at sequence 1$`,
      "m",
    ).exec(recv.stdout);
    assert.ok(joined, `no joined line of ${prefix}:\n${recv.stdout}`);
    const from = Number(joined[1]);
    // Each sender's address tells its session: the lines are the usual
    // ones, and those from one sender are its bulletins, once, in order.
    const mine = lines.filter((line) =>
      line.startsWith("received bulletin ") &&
      line.includes(` from ${loopback(from)} : `)
    );
    assert.deepEqual(
      mine,
      texts(prefix).map((text, k) => bulletinLine(k + 1, text, from)),
    );
  }
  assert.match(
    lines.at(-1)!,
    withPath(
      new RegExp(
        `^statistics: ${
          2 * count
        } bulletins \\([0-9]+ bytes\\), [0-9]+ datagrams, [0-9]+ repaired, 0 duplicates, 0 unrecoverable, 0 discarded, [0-9]+ NACKs?, [0-9]+ ACKs?, 0 dropped$`,
      ),
    ),
  );
});

/**
 * A primary killed with SIGKILL mid-feed and the standby's takeover on
 * loopback; with `keyed`, every tool has the group key, the senders encrypt
 * and sign with the same keys, and the receivers trust only that signer.
 */
async function standbyOnLoopback(keyed: boolean): Promise<void> {
  const port = testPort();
  const count = 1000;
  await withTempDir("mcast-standby-", async (dir) => {
    const feed = `${dir}/feed.txt`;
    await Deno.writeTextFile(feed, feedText(count));
    const key = `${dir}/group.key`;
    const sign = `${dir}/sign.key`;
    if (keyed) {
      await generateKeyFile(key);
      await generateKeyFile(sign, { kind: "ed25519" });
    }
    const recvKeys = keyed ? ["--key-file", key, "--trust", `${sign}.pub`] : [];
    const sendKeys = keyed
      ? ["--key-file", key, "--encrypt", "--sign-key", sign]
      : [];
    const receive = (name: string) =>
      spawnTool("recv", [
        ...at(GROUP, port),
        "--name",
        name,
        "--count",
        String(count),
        ...recvKeys,
      ]);
    await using one = receive("desk-1");
    await using two = receive("desk-2");
    await one.waitForOutput(WAITING);
    await two.waitForOutput(WAITING);
    const sendArgs = [
      ...at(GROUP, port),
      "--reliable",
      "--lines",
      "--file",
      feed,
      "--receivers",
      "desk-1,desk-2",
      ...sendKeys,
    ];
    await using standby = spawnTool("send", [...sendArgs, "--standby"]);
    await standby.waitForOutput("standing by on ");
    await using primary = spawnTool("send", [...sendArgs, "--rate", "400"]);
    // Mid-feed, past the rate's first burst: a receiver has bulletin 600.
    await one.waitForOutput(`received bulletin 600 `, { timeoutMs: 15_000 });
    primary.kill("SIGKILL");
    const killedAt = performance.now();
    const killed = await primary.finish(5_000);
    assert.equal(killed.signal, "SIGKILL");
    await standby.waitForOutput("took over session ", { timeoutMs: 5_000 });
    const takeover = assertTakeover(
      standby.stdout,
      `${GROUP}:${port}`,
      /^\('127\.0\.0\.1', [0-9]+\)$/,
    );
    await one.waitForOutput(`received bulletin ${takeover.bulletin} `, {
      timeoutMs: 5_000,
    });
    const resumedAfter = performance.now() - killedAt;
    const sent = await standby.finish(20_000);
    assertOk(sent, "standby");
    const results = [await one.finish(10_000), await two.finish(10_000)];
    const session = /^session ([0-9a-f]{16}) to /.exec(killed.stdout)?.[1];
    assert.equal(session, takeover.session, killed.stdout);
    const primaryAt = /^following session [0-9a-f]{16} from (.*)$/m.exec(
      sent.stdout,
    )![1]!;
    for (const [k, result] of results.entries()) {
      assertOk(result, `desk-${k + 1}`);
      assertReceiverOutput(result.stdout, {
        name: `desk-${k + 1}`,
        count,
        session: takeover.session,
        primary: primaryAt,
        standby: /^\('127\.0\.0\.1', [0-9]+\)$/,
        takeover: takeover.bulletin,
        keyed,
      });
    }
    // The primary had sent the bulletins before the takeover's: the
    // standby sent the rest, and its report says both have everything.
    assert.ok(takeover.bulletin > 600 && takeover.bulletin <= count);
    assert.ok(takeover.silence >= 1 && takeover.silence < 2);
    assert.match(
      sent.stdout,
      new RegExp(
        `^sent ${
          count + 1 - takeover.bulletin
        } bulletins? in [0-9]+ datagrams?, waiting for acknowledgements$`,
        "m",
      ),
    );
    assert.match(
      sent.stdout,
      new RegExp(
        `^delivery report for session ${takeover.session}: delivered to every receiver in [0-9.]+ s\n  desk-1 \\('127\\.0\\.0\\.1', ${port}\\): complete, has ${count} bulletins\n  desk-2 \\('127\\.0\\.0\\.1', ${port}\\): complete, has ${count} bulletins$`,
        "m",
      ),
    );
    console.log(
      `  ${
        keyed ? "keyed: " : ""
      }took over session ${takeover.session} at sequence ${takeover.seq} (bulletin ${takeover.bulletin}) after ${takeover.silence} s of silence; the first bulletin from the standby reached desk-1 ${
        (resumedAfter / 1000).toFixed(3)
      } s after the SIGKILL`,
    );
  });
}

Deno.test("hot standby on loopback: the primary is killed mid-feed, the standby takes the session over, both receivers print 1..1000 exactly once in order", async () => {
  await standbyOnLoopback(false);
});

Deno.test("hot standby with keys: encrypted and signed with the same keys, the takeover passes the receivers' replay, signature and decryption checks", async () => {
  await standbyOnLoopback(true);
});

Deno.test("a standby stopped before any primary was heard exits 0 with its one line; bad standby options exit 2 with one line", async () => {
  const port = testPort();
  await using standby = spawnTool("send", [
    ...at(GROUP, port),
    "--reliable",
    "--standby",
    "--takeover",
    "0.5",
    "-m",
    "flash",
  ]);
  await standby.waitForOutput("standing by on ");
  standby.kill("SIGTERM");
  const result = await standby.finish(5_000);
  assertOk(result, "standby");
  assert.equal(
    result.stdout,
    `standing by on ${GROUP}:${port}: taking over after 0.5 s of silence\n`,
  );
  const bad = await runTool("send", [
    "--reliable",
    "--standby",
    "--journal",
    "j",
  ]);
  assert.equal(bad.code, 2);
  assert.equal(bad.stdout, "");
  assert.equal(
    bad.stderr,
    'mcast-send: Options "--standby" and "--journal" exclude each other\n',
  );
});
