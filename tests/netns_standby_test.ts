/**
 * Hot standby over a real kernel path (issue 12): a primary on one host
 * (network namespace) streams a 1,000-line feed to receivers on three other
 * hosts; a standby on a fifth host (`mcast-send --standby`, the same
 * feed) follows the session silently. The primary is killed with SIGKILL
 * mid-feed; the standby takes the session over after a second of silence,
 * and each receiver must print bulletins 1 to 1,000 exactly once and in
 * order, the first ones from the primary's address, the rest from the
 * standby's. The takeover time is measured (send times, as one receiver
 * prints them in JSON) and printed.
 *
 * Runs only as root with `ip netns`; otherwise it is ignored with a printed
 * reason.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Host, type Lab, netnsUnavailable, withLab } from "./_netns.ts";
import { assertOk, peer, WAITING } from "./_exercise.ts";
import { type RunningProcess, spawnTool, testPort } from "./_tools.ts";
import { assertReceiverOutput, assertTakeover, feedText } from "./_standby.ts";

/** Lines of the feed. */
const COUNT = 1000;
/** The primary's `--rate`: a 2.5 s feed. */
const RATE = 400;
/** The receivers' bulletin at which the primary is killed. */
const KILL_AT = 600;
const GROUP = "239.192.51.12";

const skip = await netnsUnavailable();
if (skip !== undefined) console.log(`skipped: ${skip}`);

/** What every process printed, added to a failure's message. */
async function explained(
  processes: Record<string, RunningProcess>,
  check: () => Promise<void>,
): Promise<void> {
  try {
    await check();
  } catch (error) {
    if (error instanceof Error) {
      const outputs = Object.entries(processes).map(([name, process]) => {
        const lines = process.stdout.split("\n");
        const shown = lines.filter((line) =>
          !line.startsWith("received bulletin ")
        );
        const bulletins = lines.length - shown.length;
        return [
          `--- ${name}: ${bulletins} bulletin lines`,
          ...shown,
          ...(process.stderr === "" ? [] : [`stderr: ${process.stderr}`]),
        ].join("\n");
      });
      error.message = [error.message, ...outputs].join("\n");
    }
    throw error;
  }
}

async function takeover(lab: Lab): Promise<void> {
  const [standbyHost, first, second, third] = lab.receivers as [
    Host,
    Host,
    Host,
    Host,
  ];
  const primaryHost = lab.sender;
  const port = testPort();
  const dir = await Deno.makeTempDir({ prefix: "mcast-netns-standby-" });
  try {
    const feed = `${dir}/feed.txt`;
    await Deno.writeTextFile(feed, feedText(COUNT));
    const on = (host: Host) => ({
      prefix: ["ip", "netns", "exec", host.ns],
    });
    const common = (host: Host) => [
      "-g",
      GROUP,
      "-p",
      String(port),
      "-i",
      host.ipv4,
    ];
    const receive = (host: Host, name: string) =>
      spawnTool("recv", [
        ...common(host),
        "--name",
        name,
        "--count",
        String(COUNT),
      ], on(host));
    await using one = receive(first, "desk-1");
    await using two = receive(second, "desk-2");
    // A third receiver prints JSON: the send times of the last bulletin
    // from the primary and the first from the standby.
    await using timing = spawnTool("recv", [
      ...common(third),
      "--name",
      "desk-3",
      "--count",
      String(COUNT),
      "--json",
    ], on(third));
    await one.waitForOutput(WAITING);
    await two.waitForOutput(WAITING);
    await timing.waitForOutput('"event":"waiting"');
    const sendArgs = (host: Host) => [
      ...common(host),
      "--reliable",
      "--lines",
      "--file",
      feed,
      "--receivers",
      "desk-1,desk-2,desk-3",
      "--deadline",
      "20",
    ];
    await using standby = spawnTool(
      "send",
      [...sendArgs(standbyHost), "--standby"],
      on(standbyHost),
    );
    await standby.waitForOutput("standing by on ");
    await using primary = spawnTool(
      "send",
      [...sendArgs(primaryHost), "--rate", String(RATE)],
      on(primaryHost),
    );
    const processes = {
      primary,
      standby,
      "desk-1": one,
      "desk-2": two,
      "desk-3": timing,
    };
    await explained(processes, async () => {
      await one.waitForOutput(`received bulletin ${KILL_AT} `, {
        timeoutMs: 20_000,
      });
      primary.kill("SIGKILL");
      const killedAt = performance.now();
      const killed = await primary.finish(5_000);
      assert.equal(killed.signal, "SIGKILL", "the primary was killed");
      assert.doesNotMatch(killed.stdout, /^sent /m, "the feed ended too soon");
      await standby.waitForOutput("took over session ", { timeoutMs: 5_000 });
      const took = assertTakeover(
        standby.stdout,
        `${GROUP}:${port}`,
        new RegExp(
          `^\\('${primaryHost.ipv4.replaceAll(".", "\\.")}', [0-9]+\\)$`,
        ),
      );
      await one.waitForOutput(`received bulletin ${took.bulletin} `, {
        timeoutMs: 5_000,
      });
      const resumedAfter = performance.now() - killedAt;
      const sent = await standby.finish(30_000);
      const results = [await one.finish(10_000), await two.finish(10_000)];
      const timed = await timing.finish(10_000);
      assertOk(timed, "desk-3");
      const bulletins = timed.stdout.split("\n").filter((line) =>
        line.includes('"event":"bulletin"')
      ).map((line) =>
        JSON.parse(line) as {
          number: number;
          sentAt: number;
          from: { address: string };
        }
      );
      assert.deepEqual(
        bulletins.map((b) => b.number),
        Array.from({ length: COUNT }, (_, k) => k + 1),
        "desk-3: bulletins 1..1000 once, in order",
      );
      const handed = bulletins.findIndex((b) =>
        b.from.address === standbyHost.ipv4
      );
      assert.ok(handed > 0, "desk-3: no bulletin from the standby");
      assert.ok(
        bulletins.slice(handed).every((b) =>
          b.from.address === standbyHost.ipv4
        ),
      );
      // From the primary's last datagram to the standby's first.
      const gapMs =
        (bulletins[handed]!.sentAt - bulletins[handed - 1]!.sentAt) /
        1000;
      assert.ok(gapMs >= 1000 && gapMs < 2000, `takeover gap ${gapMs} ms`);
      assertOk(sent, "standby");
      const session = /^session ([0-9a-f]{16}) to /.exec(killed.stdout)?.[1];
      assert.equal(session, took.session, "the primary's session");
      const primaryAt = (host: Host) =>
        new RegExp(
          `^joined session [0-9a-f]{16} from (\\('${
            primaryHost.ipv4.replaceAll(".", "\\.")
          }', [0-9]+\\)) at sequence 1$`,
          "m",
        ).exec(results[host === first ? 0 : 1]!.stdout)?.[1] ?? "";
      const standbyAt = new RegExp(
        `^\\('${standbyHost.ipv4.replaceAll(".", "\\.")}', [0-9]+\\)$`,
      );
      for (const [k, host] of [first, second].entries()) {
        const name = `desk-${k + 1}`;
        assertOk(results[k]!, name);
        assertReceiverOutput(results[k]!.stdout, {
          name,
          count: COUNT,
          session: took.session,
          primary: primaryAt(host),
          standby: standbyAt,
          takeover: took.bulletin,
        });
      }
      assert.ok(took.bulletin > KILL_AT && took.bulletin <= COUNT);
      assert.ok(took.silence >= 1 && took.silence < 2, `${took.silence} s`);
      // The standby's report: both receivers have everything, from the
      // standby's host.
      const report = new RegExp(
        `^delivery report for session ${took.session}: delivered to every receiver in [0-9.]+ s\n` +
          `  desk-1 ${
            peer(first.ipv4, port).replace(/[().']/g, "\\$&")
          }: complete, has ${COUNT} bulletins\n` +
          `  desk-2 ${
            peer(second.ipv4, port).replace(/[().']/g, "\\$&")
          }: complete, has ${COUNT} bulletins\n` +
          `  desk-3 ${
            peer(third.ipv4, port).replace(/[().']/g, "\\$&")
          }: complete, has ${COUNT} bulletins$`,
        "m",
      );
      assert.match(sent.stdout, report);
      assert.match(
        sent.stdout,
        new RegExp(
          `^sent ${
            COUNT + 1 - took.bulletin
          } bulletins? in [0-9]+ datagrams?, waiting for acknowledgements$`,
          "m",
        ),
      );
      console.log(
        `IPv4: primary on ${primaryHost.ipv4} killed after bulletin ${KILL_AT} of ${COUNT} (${RATE}/s); standby on ${standbyHost.ipv4} took over session ${took.session} at sequence ${took.seq} (bulletin ${took.bulletin}) after ${took.silence} s of silence, holding ${took.held} datagrams; from the primary's last datagram to the standby's first (send times at desk-3): ${
          (gapMs / 1000).toFixed(3)
        } s; the standby's first bulletin reached desk-1 ${
          (resumedAfter / 1000).toFixed(3)
        } s after the SIGKILL; all three receivers printed 1..${COUNT} exactly once, in order`,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name:
    "hot standby across hosts: the primary is killed mid-feed, the standby takes over, three receivers print 1..1000 once, in order",
  ignore: skip !== undefined,
  fn: () => withLab(takeover, { receivers: 4 }),
});
