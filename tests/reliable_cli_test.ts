/**
 * Process tests of the reliable mode (`mcast-send --reliable`, and
 * `mcast-recv` answering protocol frames) on loopback: end to end with three
 * receivers in text and JSON, `--output DIR` with a fragmented bulletin, an
 * incomplete roster, a receiver killed with SIGKILL and restarted with its
 * `--state`, a sender killed with SIGKILL and restarted with its
 * `--journal`, a receiver paused with SIGSTOP (held back by default, evicted
 * with `--drop-slow`), bad input, and plain datagrams mixed with a session.
 *
 * Senders bind 127.0.0.1 and receivers join on 127.0.0.1 (the tools'
 * default interface); every test uses its own `testPort()` and a 239.78.x.y
 * group. Session ids, ports, times and counts of acknowledgements are read
 * from the output (or masked); everything else is compared literally.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Journal } from "../lib/reliable/journal.ts";
import { assertOk, loopback, WAITING } from "./_exercise.ts";
import {
  type Finished,
  type RunningProcess,
  runTool,
  spawnTool,
  testPort,
} from "./_tools.ts";
import {
  assertExit,
  at,
  bulletinLine,
  joinedPort,
  lines,
  mask,
  pathSuffix,
  senderSession,
  TEST_IO,
  withPath,
} from "./_reliable.ts";

const encoder = new TextEncoder();

/** A fresh group for one test. */
function testGroup(last: number): string {
  return `239.78.${Deno.pid % 250}.${last}`;
}

/** Starts receivers and waits until each is joined and waiting. */
async function receivers(
  args: string[][],
): Promise<RunningProcess[]> {
  const started = args.map((a) => spawnTool("recv", a));
  for (const receiver of started) await receiver.waitForOutput(WAITING);
  return started;
}

/** Disposes of processes (kills those still running). */
async function disposeAll(processes: RunningProcess[]): Promise<void> {
  for (const process of processes) await process[Symbol.asyncDispose]();
}

/** One `received bulletin` line of the receiver. */
interface Shown {
  number: number;
  bytes: number;
  port: number;
  text: string;
}

const BULLETIN_LINE =
  /^received bulletin ([0-9]+) \(([0-9]+) bytes\) from \('127\.0\.0\.1', ([0-9]+)\) : (.*)$/;

/** Every `received bulletin` line of a receiver's output, in order. */
function bulletins(stdout: string): Shown[] {
  const shown: Shown[] = [];
  for (const line of stdout.split("\n")) {
    const match = BULLETIN_LINE.exec(line);
    if (match) {
      shown.push({
        number: Number(match[1]),
        bytes: Number(match[2]),
        port: Number(match[3]),
        text: match[4]!,
      });
    }
  }
  return shown;
}

/** Asserts that `shown` is exactly bulletins 1..texts.length with those texts. */
function assertBulletins(shown: Shown[], texts: string[], what: string): void {
  assert.deepEqual(
    shown.map((b) => [b.number, b.bytes, b.text]),
    texts.map((text, k) => [k + 1, encoder.encode(text).length, text]),
    what,
  );
}

/** The receiver's `joined session` line. */
function joinedLine(session: string, port: number, start = 1): string {
  return `joined session ${session} from ${
    loopback(port)
  } at sequence ${start}`;
}

/** `n` lines of news, each `bytes` long (at least 12). */
function newsLines(n: number, bytes = 0): string[] {
  return Array.from({ length: n }, (_, k) => {
    const line = `news ${k + 1} `;
    return line + ".".repeat(Math.max(0, bytes - line.length));
  });
}

/** Parses every line as JSON, checking and removing its `time`. */
function jsonLines(stdout: string): Record<string, unknown>[] {
  return lines(stdout).map((line) => {
    const value = JSON.parse(line) as Record<string, unknown>;
    const { time, ...rest } = value;
    assert.equal(typeof time, "string", `time in ${line}`);
    assert.equal(new Date(time as string).toISOString(), time, `time ${line}`);
    return rest;
  });
}

Deno.test("reliable: three receivers get five bulletins exactly once, in order, and the report names each", async () => {
  const group = testGroup(1);
  const port = testPort();
  const texts = [
    "first bulletin",
    "second: ünïcödé ✓",
    "third",
    "fourth, with  two spaces",
    "fifth and last",
  ];
  const bytes = texts.reduce((n, t) => n + encoder.encode(t).length, 0);
  const names = ["r1", "r2", "r3"];
  const running = await receivers(
    names.map((name) => [...at(group, port), "--name", name, "--count", "5"]),
  );
  try {
    const send = await runTool(
      "send",
      [...at(group, port), "--reliable", "--lines", "--expect", "3"],
      { stdin: texts.join("\n") + "\n" },
    );
    const recv = [];
    for (const receiver of running) recv.push(await receiver.finish(5000));
    assertOk(send, "sender");
    recv.forEach((result, k) => assertOk(result, names[k]!));

    const session = senderSession(send.stdout);
    const from = joinedPort(recv[0]!.stdout);
    for (const result of recv) {
      assert.equal(
        mask(result.stdout),
        [
          WAITING,
          joinedLine(session, from),
          ...texts.map((text, k) => bulletinLine(k + 1, text, from)),
          `statistics: 5 bulletins (${bytes} bytes), 1 datagram, 0 repaired, 0 duplicates, 0 unrecoverable, 0 discarded, 0 NACKs, N ACKs, 0 dropped${pathSuffix()}`,
        ].join("\n") + "\n",
      );
    }

    // Receivers join (and may leave once complete) in any order.
    const out = lines(mask(send.stdout));
    const joins = out.filter((line) => line.startsWith("receiver "))
      .filter((line) => line.includes(" joined from "));
    assert.deepEqual(
      joins.toSorted(),
      names.map((name) => `receiver ${name} joined from ${loopback(port)}`),
    );
    const left = out.filter((line) => / left \(/.test(line));
    for (const line of left) {
      assert.match(line, /^receiver r[123] left \(up to date\)$/);
    }
    assert.equal(new Set(left).size, left.length, "each leaves once");
    const rest = out.filter((line) =>
      !joins.includes(line) && !left.includes(line)
    );
    assert.deepEqual(rest, [
      `session ${session} to ${group}:${port}`,
      "sent 5 bulletins in 1 datagram, waiting for acknowledgements",
      `delivery report for session ${session}: delivered to every receiver in T s`,
      ...names.map((name) =>
        `  ${name} ${loopback(port)}: complete, has 5 bulletins`
      ),
      `statistics: 5 bulletins (${bytes} bytes) in 1 datagram, 0 retransmitted, 0 NACKs, N ACKs, N feedback frames, 0 gone notices, 0 dropped${pathSuffix()}`,
    ]);
    // The roster is complete before any data is sent; receivers that have
    // everything may leave before the sender printed that all was sent.
    const sentAt = out.indexOf(rest[1]!);
    for (const line of joins) assert.ok(out.indexOf(line) < sentAt, line);
    const reportAt = out.indexOf(rest[2]!);
    for (const line of left) assert.ok(out.indexOf(line) < reportAt, line);
  } finally {
    await disposeAll(running);
  }
});

Deno.test("reliable --json: every line is JSON and the report says who has what", async () => {
  const group = testGroup(2);
  const port = testPort();
  const texts = ["one", "two", "three", "four", "five"];
  const names = ["r1", "r2", "r3"];
  const running: RunningProcess[] = [];
  for (const name of names) {
    const receiver = spawnTool("recv", [
      ...at(group, port),
      "--name",
      name,
      "--count",
      "5",
      "--json",
    ]);
    running.push(receiver);
    await receiver.waitForOutput('"event":"waiting"');
  }
  try {
    const send = await runTool(
      "send",
      [...at(group, port), "--reliable", "--lines", "--expect", "3", "--json"],
      { stdin: texts.join("\n") + "\n" },
    );
    const recv = [];
    for (const receiver of running) recv.push(await receiver.finish(5000));
    assertOk(send, "sender");
    recv.forEach((result, k) => assertOk(result, names[k]!));

    const all = jsonLines(send.stdout);
    // Receivers that have everything may leave (BYE) at any time.
    const left = all.filter((e) => e.event === "receiver-left");
    assert.deepEqual(
      left.map((e) => e.complete),
      left.map(() => true),
    );
    assert.equal(new Set(left.map((e) => e.name)).size, left.length);
    // Progress events come once a second while a session lasts.
    const events = all.filter((e) =>
      e.event !== "receiver-left" && e.event !== "progress"
    );
    assert.deepEqual(
      events.map((e) => e.event),
      ["session", "receiver", "receiver", "receiver", "sent", "report"],
    );
    assert.equal(all.at(-1)!.event, "report");
    const first = events[0]!;
    const session = first.session as string;
    assert.match(session, /^[0-9a-f]{16}$/);
    // Where receivers answer: the sender's socket, on loopback.
    const local = first.local as { address: string; port: number };
    assert.equal(local.address, "127.0.0.1");
    assert.ok(Number.isInteger(local.port) && local.port > 0);
    assert.deepEqual(first, {
      event: "session",
      session,
      group,
      port,
      local,
      resumed: false,
      recovered: 0,
      io: TEST_IO,
    });
    const joined = events.slice(1, 4);
    assert.deepEqual(joined.map((e) => e.name).toSorted(), names);
    for (const e of joined) {
      assert.deepEqual(e.from, { address: "127.0.0.1", port });
    }
    assert.deepEqual(events[4], { event: "sent", bulletins: 5, packets: 1 });
    const report = events[5]!;
    const { acks, feedback, elapsedMs, receivers: rs, ...fields } = report;
    assert.deepEqual(fields, {
      event: "report",
      session,
      delivered: true,
      reason: "complete",
      bulletins: 5,
      packets: 1,
      bytes: 19,
      retransmitted: 0,
      nacks: 0,
      gone: 0,
      io: TEST_IO,
      dropped: {
        version: 0,
        type: 0,
        truncated: 0,
        malformed: 0,
        tag: 0,
        unexpected: 0,
        ahead: 0,
        auth: 0,
        replay: 0,
        stale: 0,
        forged: 0,
        plain: 0,
        roster: 0,
      },
    });
    assert.ok(Number.isInteger(acks) && (acks as number) >= 3, `acks ${acks}`);
    assert.ok((feedback as number) >= 6, `feedback ${feedback}`);
    assert.ok(Number.isInteger(elapsedMs) && (elapsedMs as number) >= 0);
    assert.deepEqual(
      rs,
      names.map((name) => ({
        name,
        acked: 1,
        bulletins: 5,
        missing: [],
        missingBulletins: [],
        status: "complete",
        nacks: 0,
        from: { address: "127.0.0.1", port },
      })),
    );

    for (const [k, result] of recv.entries()) {
      const got = jsonLines(result.stdout);
      assert.deepEqual(
        got.map((e) => e.event),
        ["waiting", "session", ...texts.map(() => "bulletin"), "stopped"],
      );
      const from = (got[1]!.from as { port: number }).port;
      assert.deepEqual(got[1], {
        event: "session",
        session,
        from: { address: "127.0.0.1", port: from },
        start: 1,
        resumed: false,
        io: TEST_IO,
      });
      const shown = got.slice(2, 7).map((e) => {
        const { sentAt, ...rest } = e;
        assert.ok(Number.isInteger(sentAt), `sentAt ${sentAt}`);
        return rest;
      });
      assert.deepEqual(
        shown,
        texts.map((text, n) => ({
          event: "bulletin",
          session,
          number: n + 1,
          from: { address: "127.0.0.1", port: from },
          bytes: text.length,
          text,
        })),
      );
      const stopped = got.at(-1)!;
      const stats = stopped.stats as Record<string, unknown>;
      assert.equal(stopped.messages, 5);
      assert.equal(stopped.reason, "count");
      assert.equal(stats.name, names[k]);
      assert.equal(stats.session, session);
      assert.equal(stats.bulletins, 5);
      assert.equal(stats.bytes, 19);
      assert.equal(stats.data, 1);
      assert.equal(stats.duplicates, 0);
      assert.equal(stats.unrecoverable, 0);
      assert.equal(stats.nacks, 0);
    }
  } finally {
    await disposeAll(running);
  }
});

Deno.test("reliable --output DIR: one file per bulletin with its exact bytes, a fragmented 200 KiB one too", async () => {
  const group = testGroup(3);
  const port = testPort();
  const dir = await Deno.makeTempDir({ prefix: "mcast_output_" });
  const inbox = `${dir}/inbox`;
  try {
    const texts = ["alpha", "", "gamma ✓"];
    // 200 KiB of bytes that are not text, with every byte value.
    const big = new Uint8Array(200 * 1024);
    let x = 12345;
    for (let k = 0; k < big.length; k++) {
      x = (x * 1103515245 + 12345) >>> 0;
      big[k] = x >>> 24;
    }
    const bigPath = `${dir}/big.bin`;
    await Deno.writeFile(bigPath, big);

    await using receiver = spawnTool("recv", [
      ...at(group, port),
      "--name",
      "archive",
      "--output",
      inbox,
      "--count",
      "4",
    ]);
    await receiver.waitForOutput(WAITING);
    const first = await runTool(
      "send",
      [...at(group, port), "--reliable", "--lines", "--expect", "1"],
      { stdin: texts.join("\n") + "\n" },
    );
    assertOk(first, "first sender");
    const second = await runTool("send", [
      ...at(group, port),
      "--reliable",
      "--file",
      bigPath,
      "--expect",
      "1",
    ]);
    assertOk(second, "second sender");
    const recv = await receiver.finish();
    assertOk(recv, "receiver");

    const s1 = senderSession(first.stdout);
    const s2 = senderSession(second.stdout);
    assert.notEqual(s1, s2, "a new session per sender run");
    const from1 = joinedPort(recv.stdout);
    const from2 = Number(
      new RegExp(
        `^joined session ${s2} from \\('127\\.0\\.0\\.1', ([0-9]+)\\)`,
        "m",
      )
        .exec(recv.stdout)?.[1],
    );
    const file = (session: string, n: number) =>
      `${session}-${String(n).padStart(8, "0")}`;
    const out = lines(recv.stdout);
    assert.deepEqual(out.slice(0, -1), [
      WAITING,
      joinedLine(s1, from1),
      ...texts.map((text, k) =>
        `received bulletin ${k + 1} (${
          encoder.encode(text).length
        } bytes) from ${loopback(from1)} saved to ${inbox}/${file(s1, k + 1)}`
      ),
      joinedLine(s2, from2),
      `received bulletin 1 (${big.length} bytes) from ${
        loopback(from2)
      } saved to ${inbox}/${file(s2, 1)}`,
    ]);
    assert.match(
      out.at(-1)!,
      withPath(
        /^statistics: 4 bulletins \(204814 bytes\), [0-9]+ datagrams, [0-9]+ repaired, 0 duplicates, 0 unrecoverable, 0 discarded, [0-9]+ NACKs?, [0-9]+ ACKs?, 0 dropped$/,
      ),
    );

    const names = [];
    for await (const entry of Deno.readDir(inbox)) names.push(entry.name);
    assert.deepEqual(
      names.toSorted(),
      [file(s1, 1), file(s1, 2), file(s1, 3), file(s2, 1)].toSorted(),
    );
    for (const [k, text] of texts.entries()) {
      assert.deepEqual(
        await Deno.readFile(`${inbox}/${file(s1, k + 1)}`),
        encoder.encode(text),
      );
    }
    assert.deepEqual(await Deno.readFile(`${inbox}/${file(s2, 1)}`), big);

    // The big bulletin went out in fragments of at most --mtu 1400 bytes.
    const sent = /^sent 1 bulletin in ([0-9]+) datagrams, /m.exec(
      second.stdout,
    );
    assert.ok(sent, second.stdout);
    assert.ok(Number(sent[1]) >= Math.ceil(big.length / 1400), sent[0]);
    assert.match(
      second.stdout,
      new RegExp(
        `^  archive \\('127\\.0\\.0\\.1', ${port}\\): complete, has 1 bulletin$`,
        "m",
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reliable --receivers with one that never answers: nothing is sent, exit 1, the report names it silent", async () => {
  const group = testGroup(4);
  const port = testPort();
  await using receiver = spawnTool("recv", [
    ...at(group, port),
    "--name",
    "r1",
  ]);
  await receiver.waitForOutput(WAITING);
  const started = Date.now();
  const send = await runTool("send", [
    ...at(group, port),
    "--reliable",
    "--lines",
    "--deadline",
    "1",
    "--receivers",
    "r1,ghost",
  ], { stdin: "one\ntwo\nthree\n" });
  const elapsed = Date.now() - started;
  // The receiver heard the session's heartbeats and answered them.
  await receiver.waitForOutput("joined session");
  receiver.kill("SIGTERM");
  const recv = await receiver.finish();

  assertExit(
    send,
    1,
    "mcast-send: nothing sent: receiver ghost did not answer by the deadline\n",
    "sender",
  );
  const session = senderSession(send.stdout);
  assert.equal(
    mask(send.stdout),
    [
      `session ${session} to ${group}:${port}`,
      `receiver r1 joined from ${loopback(port)}`,
      `delivery report for session ${session}: NOTHING sent: not every expected receiver answered by the deadline in T s`,
      "  ghost: silent, has 0 bulletins",
      `  r1 ${loopback(port)}: complete, has 0 bulletins`,
      `statistics: 0 bulletins (0 bytes) in 0 datagrams, 0 retransmitted, 0 NACKs, N ACKs, N feedback frames, 0 gone notices, 0 dropped${pathSuffix()}`,
    ].join("\n") + "\n",
  );
  const seconds = Number(/ in ([0-9.]+) s$/m.exec(send.stdout)![1]);
  assert.ok(seconds >= 1, `waited the deadline: ${seconds} s`);
  // One deadline, not a second one for acknowledgements of nothing.
  assert.ok(seconds < 1.5, `waited once: ${seconds} s`);
  assert.ok(elapsed < 8000, `ended in ${elapsed} ms`);

  assertOk(recv, "receiver");
  const from = joinedPort(recv.stdout);
  assert.equal(
    mask(recv.stdout),
    [
      WAITING,
      joinedLine(session, from),
      `statistics: 0 bulletins (0 bytes), 0 datagrams, 0 repaired, 0 duplicates, 0 unrecoverable, 0 discarded, 0 NACKs, N ACKs, 0 dropped${pathSuffix()}`,
    ].join("\n") + "\n",
  );
});

Deno.test("reliable: a receiver killed with SIGKILL and restarted with --state neither repeats nor misses a bulletin", async () => {
  const group = testGroup(5);
  const port = testPort();
  const dir = await Deno.makeTempDir({ prefix: "mcast_state_" });
  const state = `${dir}/r1.state`;
  const texts = newsLines(300);
  const recvArgs = [...at(group, port), "--name", "r1", "--state", state];
  try {
    const first = spawnTool("recv", recvArgs);
    await using _first = first;
    await first.waitForOutput(WAITING);
    await using sender = spawnTool("send", [
      ...at(group, port),
      "--reliable",
      "--lines",
      "--rate",
      "100",
      "--receivers",
      "r1",
      "--deadline",
      "20",
    ], { stdin: texts.join("\n") + "\n" });
    await first.waitForLine(/^received bulletin 50 /, { timeoutMs: 15_000 });
    first.kill("SIGKILL");
    const killed = await first.finish();
    assert.equal(killed.signal, "SIGKILL");
    assert.equal(killed.stderr, "");
    assert.ok(sender.running, "the sender still streams");

    const second = spawnTool("recv", recvArgs);
    await using _second = second;
    const send = await sender.finish(20_000);
    assertOk(send, "sender");
    // The sender saw everything acknowledged: the receiver printed it all.
    await second.waitForOutput(`received bulletin 300 `);
    second.kill("SIGTERM");
    const restarted = await second.finish();
    assertOk(restarted, "restarted receiver");

    const session = senderSession(send.stdout);
    const before = bulletins(killed.stdout);
    const after = bulletins(restarted.stdout);
    assert.ok(before.length >= 50 && before.length < 300, `${before.length}`);
    assertBulletins([...before, ...after], texts, "union of both runs");

    const from = joinedPort(killed.stdout);
    const head = lines(killed.stdout.replace(/[^\n]*$/, ""));
    assert.deepEqual(head.slice(0, 2), [WAITING, joinedLine(session, from)]);
    assert.deepEqual(
      head.slice(2),
      before.map((b) => bulletinLine(b.number, b.text, from)),
    );
    const out = lines(restarted.stdout);
    assert.equal(out[0], WAITING);
    assert.match(
      out[1]!,
      new RegExp(
        `^resumed session ${session} from \\('127\\.0\\.0\\.1', ${from}\\) at sequence [0-9]+$`,
      ),
    );
    assert.deepEqual(
      out.slice(2, -1),
      after.map((b) => bulletinLine(b.number, b.text, from)),
    );
    const stats = out.at(-1)!;
    const statsMatch = withPath(
      /^statistics: ([0-9]+) bulletins? \(([0-9]+) bytes\), [0-9]+ datagrams?, ([0-9]+) repaired, [0-9]+ duplicates, 0 unrecoverable, 0 discarded, [0-9]+ NACKs?, [0-9]+ ACKs?, 0 dropped$/,
    )
      .exec(stats);
    assert.ok(statsMatch, stats);
    assert.equal(Number(statsMatch[1]), after.length);
    assert.ok(Number(statsMatch[3]) > 0, `the gap was repaired: ${stats}`);

    const report = lines(mask(send.stdout));
    assert.deepEqual(report.slice(0, 2), [
      `session ${session} to ${group}:${port}`,
      `receiver r1 joined from ${loopback(port)}`,
    ]);
    assert.match(
      report[2]!,
      /^sent 300 bulletins in [0-9]+ datagrams, waiting for acknowledgements$/,
    );
    assert.deepEqual(report.slice(3, 5), [
      `delivery report for session ${session}: delivered to every receiver in T s`,
      `  r1 ${loopback(port)}: complete, has 300 bulletins`,
    ]);
    const retransmitted = /, ([0-9]+) retransmitted, ([0-9]+) NACKs?/.exec(
      report[5]!,
    );
    assert.ok(retransmitted && Number(retransmitted[1]) > 0, report[5]);
    assert.equal(report.length, 6, send.stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reliable: a sender killed with SIGKILL and restarted with --journal completes delivery of everything it journaled", async () => {
  const group = testGroup(6);
  const port = testPort();
  const dir = await Deno.makeTempDir({ prefix: "mcast_journal_" });
  const journal = `${dir}/journal`;
  const feed = `${dir}/feed.txt`;
  const texts = newsLines(300);
  await Deno.writeTextFile(feed, texts.join("\n") + "\n");
  const names = ["r1", "r2"];
  const running = await receivers(
    names.map((name) => [...at(group, port), "--name", name]),
  );
  try {
    const sendArgs = [
      ...at(group, port),
      "--reliable",
      "--lines",
      "--expect",
      "2",
      "--deadline",
      "20",
      "--journal",
      journal,
    ];
    const first = spawnTool("send", [
      ...sendArgs,
      "--file",
      feed,
      "--rate",
      "100",
    ]);
    await using _first = first;
    await running[0]!.waitForLine(/^received bulletin 50 /, {
      timeoutMs: 15_000,
    });
    first.kill("SIGKILL");
    const killed = await first.finish();
    assert.equal(killed.signal, "SIGKILL");
    assert.equal(killed.stderr, "");
    const session = senderSession(killed.stdout);
    const printed = Math.max(
      ...running.map((r) => bulletins(r.stdout).at(-1)?.number ?? 0),
    );

    // What the journal holds: every bulletin the first sender numbered.
    const held = Journal.open(journal);
    let journaled: number;
    try {
      const recovery = held.recover();
      assert.ok(recovery, "an unfinished session in the journal");
      assert.equal(recovery.meta.session, session);
      journaled = recovery.nextBulletin - 1;
    } finally {
      held.close();
    }
    // It journals a bulletin just before sending it: not the whole input
    // ahead of the rate (a few more than the receivers printed at most).
    assert.ok(
      journaled >= printed && journaled <= printed + 50,
      `journaled ${journaled}, printed ${printed}`,
    );

    const second = await runTool("send", [...sendArgs, "--file", "/dev/null"], {
      timeoutMs: 20_000,
    });
    assertOk(second, "restarted sender");
    const out = lines(mask(second.stdout));
    assert.match(
      out[0]!,
      new RegExp(
        `^resumed session ${session} to ${group}:${port} from the journal \\([0-9]+ datagrams? held\\)$`,
      ),
    );
    const joins = out.filter((line) => / joined from /.test(line));
    assert.deepEqual(
      joins.toSorted(),
      names.map((name) => `receiver ${name} joined from ${loopback(port)}`),
    );
    const rest = out.slice(1).filter((line) => !joins.includes(line));
    assert.deepEqual(rest.slice(1, 4), [
      `delivery report for session ${session}: delivered to every receiver in T s`,
      ...names.map((name) =>
        `  ${name} ${loopback(port)}: complete, has ${journaled} bulletins`
      ),
    ]);
    assert.match(
      rest[0]!,
      /^sent 0 bulletins in 0 datagrams, waiting for acknowledgements$/,
    );
    assert.equal(rest.length, 5, second.stdout);

    for (const [k, receiver] of running.entries()) {
      await receiver.waitForOutput(`received bulletin ${journaled} `);
      receiver.kill("SIGTERM");
      const recv = await receiver.finish();
      assertOk(recv, names[k]!);
      assertBulletins(
        bulletins(recv.stdout),
        texts.slice(0, journaled),
        `${names[k]} has every journaled bulletin once, in order`,
      );
      assert.equal(
        recv.stdout.split("joined session").length - 1,
        1,
        "one session throughout",
      );
      assert.doesNotMatch(recv.stdout, /unrecoverable: /);
    }
  } finally {
    await disposeAll(running);
    await Deno.remove(dir, { recursive: true });
  }
});

/** Arguments of the slow-receiver tests' sender. */
function slowSender(group: string, port: number, extra: string[]): string[] {
  return [
    ...at(group, port),
    "--reliable",
    "--lines",
    "--expect",
    "2",
    "--window",
    "32",
    "--rate",
    "2000",
    "--deadline",
    "20",
    ...extra,
  ];
}

Deno.test("reliable: a receiver paused with SIGSTOP holds the stream back, then both get everything", async () => {
  const group = testGroup(7);
  const port = testPort();
  // One bulletin per datagram: 1,000 bytes each, two do not fit --mtu 1400.
  const texts = newsLines(1000, 1000);
  const running = await receivers(
    ["fast", "slow"].map((name) => [
      ...at(group, port),
      "--name",
      name,
      "--count",
      "1000",
    ]),
  );
  const [fast, slow] = running as [RunningProcess, RunningProcess];
  try {
    await using sender = spawnTool("send", slowSender(group, port, []), {
      stdin: texts.join("\n") + "\n",
    });
    await slow.waitForLine(/^received bulletin 200 /);
    slow.pause();
    const pausedAt = Date.now();
    // Within a window of 32 datagrams, the stream stops.
    await fast.waitForLine(/^received bulletin [0-9]+ /);
    const ended = await sender.waitForEnd(2000);
    const fastCount = bulletins(fast.stdout).length;
    // What the paused one had when it stopped (it printed nothing since).
    const slowCount = bulletins(slow.stdout).length;
    slow.resume();
    assert.equal(ended, false, "the sender waits for the paused receiver");
    assert.ok(slowCount >= 200, `slow had ${slowCount}`);
    // The fast one runs at most a window (32) and the datagrams in flight
    // ahead of what the paused one had acknowledged.
    assert.ok(
      fastCount < slowCount + 32 + 16,
      `fast got ${fastCount} meanwhile, slow had ${slowCount}`,
    );
    const send = await sender.finish(20_000);
    assert.ok(Date.now() - pausedAt >= 2000);
    const recv = [await fast.finish(), await slow.finish()];
    assertOk(send, "sender");
    recv.forEach((result, k) => assertOk(result, `receiver ${k + 1}`));
    for (const result of recv) {
      assertBulletins(bulletins(result.stdout), texts, "every bulletin");
    }
    const seconds = Number(/ in ([0-9.]+) s$/m.exec(send.stdout)![1]);
    assert.ok(seconds >= 2, `the run took ${seconds} s`);
    assert.match(
      mask(send.stdout),
      new RegExp(
        `^  fast \\('127\\.0\\.0\\.1', ${port}\\): complete, has 1000 bulletins\n` +
          `  slow \\('127\\.0\\.0\\.1', ${port}\\): complete, has 1000 bulletins\n` +
          `statistics: 1000 bulletins \\(1000000 bytes\\) in 1000 datagrams, `,
        "m",
      ),
    );
    assert.doesNotMatch(send.stdout, /evicted/);
    // Nothing was lost on loopback (bursts are bounded by the window), so
    // the receiver that kept up neither asked for nor got anything twice.
    assert.match(
      lines(recv[0]!.stdout).at(-1)!,
      withPath(
        /^statistics: 1000 bulletins \(1000000 bytes\), 1000 datagrams, 0 repaired, 0 duplicates, 0 unrecoverable, 0 discarded, 0 NACKs, [0-9]+ ACKs?, 0 dropped$/,
      ),
    );
  } finally {
    slow.resume();
    await disposeAll(running);
  }
});

Deno.test("reliable --drop-slow: a receiver paused with SIGSTOP is evicted and the stream goes on without it", async () => {
  const group = testGroup(8);
  const port = testPort();
  const texts = newsLines(1000, 1000);
  const running = await receivers([
    [...at(group, port), "--name", "fast", "--count", "1000"],
    [...at(group, port), "--name", "slow"],
  ]);
  const [fast, slow] = running as [RunningProcess, RunningProcess];
  try {
    await using sender = spawnTool(
      "send",
      slowSender(group, port, ["--drop-slow"]),
      { stdin: texts.join("\n") + "\n" },
    );
    await slow.waitForLine(/^received bulletin 200 /);
    slow.pause();
    // The sender ends while the slow receiver is still stopped.
    const ended = await sender.waitForEnd(15_000);
    assert.ok(ended, "the sender ended while the receiver was paused");
    const send = await sender.finish();
    const fastResult = await fast.finish();
    slow.resume();
    slow.kill("SIGTERM");
    const slowResult = await slow.finish();

    assertExit(
      send,
      1,
      "mcast-send: not delivered to every receiver: 1 of 2 have everything (evicted)\n",
      "sender",
    );
    assertOk(fastResult, "fast receiver");
    assertBulletins(bulletins(fastResult.stdout), texts, "fast: everything");
    assertOk(slowResult, "slow receiver");
    const slowShown = bulletins(slowResult.stdout);
    assert.ok(slowShown.length >= 200 && slowShown.length < 1000);
    assertBulletins(
      slowShown,
      texts.slice(0, slowShown.length),
      "slow: a prefix, in order, no duplicate",
    );

    const session = senderSession(send.stdout);
    const evicted =
      /^evicted slow: it acknowledged ([0-9]+) of ([0-9]+) datagrams and held the stream back \(--drop-slow\)$/m
        .exec(send.stdout);
    assert.ok(evicted, send.stdout);
    const [acked, high] = [Number(evicted[1]), Number(evicted[2])];
    // It was evicted with the window full: 32 datagrams sent past its
    // acknowledgement (the next one numbered, waiting).
    assert.ok(
      acked > 0 && high >= acked + 32 && high <= acked + 33,
      evicted[0],
    );
    const report = lines(mask(send.stdout));
    const headline = report.indexOf(
      `delivery report for session ${session}: NOT delivered to every receiver (evicted) in T s`,
    );
    assert.ok(headline > 0, send.stdout);
    assert.equal(
      report[headline + 1],
      `  fast ${loopback(port)}: complete, has 1000 bulletins`,
    );
    assert.match(
      report[headline + 2]!,
      new RegExp(
        `^  slow \\('127\\.0\\.0\\.1', ${port}\\): evicted, has ${acked} bulletins, missing bulletins ${
          acked + 1
        }-1000 \\(datagrams ${acked + 1}-1000\\)$`,
      ),
    );
    assert.equal(report.length, headline + 4, send.stdout);
  } finally {
    slow.resume();
    await disposeAll(running);
  }
});

Deno.test("reliable --lines: a line longer than --max-size ends the input: the lines before it are delivered, exit 2", async () => {
  const group = testGroup(9);
  const port = testPort();
  await using receiver = spawnTool("recv", [
    ...at(group, port),
    "--name",
    "r1",
  ]);
  await receiver.waitForOutput(WAITING);
  const send = await runTool("send", [
    ...at(group, port),
    "--reliable",
    "--lines",
    "--max-size",
    "10",
    "--expect",
    "1",
  ], { stdin: "one\ntwo\nthis line is too long\nfour\n" });
  assertExit(
    send,
    2,
    "mcast-send: Line 3 of standard input is too large: more than 10 bytes (--max-size)\n",
    "sender",
  );
  const session = senderSession(send.stdout);
  assert.equal(
    mask(send.stdout),
    [
      `session ${session} to ${group}:${port}`,
      `receiver r1 joined from ${loopback(port)}`,
      "sent 2 bulletins in 1 datagram, waiting for acknowledgements",
      `delivery report for session ${session}: delivered to every receiver in T s`,
      `  r1 ${loopback(port)}: complete, has 2 bulletins`,
      `statistics: 2 bulletins (6 bytes) in 1 datagram, 0 retransmitted, 0 NACKs, N ACKs, N feedback frames, 0 gone notices, 0 dropped${pathSuffix()}`,
    ].join("\n") + "\n",
  );
  receiver.kill("SIGTERM");
  const recv = await receiver.finish();
  assertOk(recv, "receiver");
  const from = joinedPort(recv.stdout);
  assert.equal(
    mask(recv.stdout),
    [
      WAITING,
      joinedLine(session, from),
      bulletinLine(1, "one", from),
      bulletinLine(2, "two", from),
      `statistics: 2 bulletins (6 bytes), 1 datagram, 0 repaired, 0 duplicates, 0 unrecoverable, 0 discarded, 0 NACKs, N ACKs, 0 dropped${pathSuffix()}`,
    ].join("\n") + "\n",
  );
});

/** Runs `mcast-send` with `args` next to a listening receiver; asserts it heard nothing. */
async function assertNothingSent(
  group: string,
  port: number,
  args: string[],
): Promise<Finished> {
  await using receiver = spawnTool("recv", [
    ...at(group, port),
    "--name",
    "r1",
  ]);
  await receiver.waitForOutput(WAITING);
  const send = await runTool("send", [...at(group, port), ...args], {
    timeoutMs: 10_000,
  });
  // Let a heartbeat the sender might have sent arrive.
  await receiver.waitForEnd(200);
  receiver.kill("SIGTERM");
  const recv = await receiver.finish();
  assertOk(recv, "receiver");
  assert.equal(recv.stdout, `${WAITING}\n`, "the receiver heard nothing");
  return send;
}

Deno.test("reliable --file missing: exit 2 with one line, nothing sent", async () => {
  const send = await assertNothingSent(testGroup(10), testPort(), [
    "--reliable",
    "--file",
    "/nonexistent/news.txt",
    "--expect",
    "1",
  ]);
  assertExit(
    send,
    2,
    'mcast-send: Cannot read file "/nonexistent/news.txt": no such file\n',
    "sender",
  );
  assert.equal(send.stdout, "");
});

Deno.test("reliable --lines --file missing: exit 2 with one line, nothing sent", async () => {
  const send = await assertNothingSent(testGroup(11), testPort(), [
    "--reliable",
    "--lines",
    "--file",
    "/nonexistent/news.txt",
    "--expect",
    "1",
    "--deadline",
    "2",
  ]);
  assertExit(
    send,
    2,
    'mcast-send: Cannot read file "/nonexistent/news.txt": no such file\n',
    "sender",
  );
  assert.equal(send.stdout, "");
});

Deno.test("a plain sender still gets the exercise's answer from a receiver that joined a reliable session before", async () => {
  const group = testGroup(12);
  const port = testPort();
  await using receiver = spawnTool("recv", [
    ...at(group, port),
    "--name",
    "r1",
    "--count",
    "3",
  ]);
  await receiver.waitForOutput(WAITING);
  const reliable = await runTool(
    "send",
    [...at(group, port), "--reliable", "--lines", "--expect", "1"],
    { stdin: "first\nsecond\n" },
  );
  assertOk(reliable, "reliable sender");
  await receiver.waitForOutput("received bulletin 2 ");
  const plain = await runTool("send", [...at(group, port), "-m", "hello"]);
  assertOk(plain, "plain sender");
  const recv = await receiver.finish();
  assertOk(recv, "receiver");

  assert.equal(
    plain.stdout,
    'sending "hello"\n' +
      "waiting to receive\n" +
      `received "ack" from ${loopback(port)}\n` +
      "closing socket\n",
  );
  const session = senderSession(reliable.stdout);
  const from = joinedPort(recv.stdout);
  const plainFrom = Number(
    /^received 5 bytes from \('127\.0\.0\.1', ([0-9]+)\) : hello$/m.exec(
      recv.stdout,
    )?.[1],
  );
  assert.notEqual(plainFrom, from, "another sender, another port");
  assert.equal(
    mask(recv.stdout),
    [
      WAITING,
      joinedLine(session, from),
      bulletinLine(1, "first", from),
      bulletinLine(2, "second", from),
      `received 5 bytes from ${loopback(plainFrom)} : hello`,
      `sending acknowledgement to ${loopback(plainFrom)}`,
      `statistics: 2 bulletins (11 bytes), 1 datagram, 0 repaired, 0 duplicates, 0 unrecoverable, 0 discarded, 0 NACKs, N ACKs, 0 dropped${pathSuffix()}`,
    ].join("\n") + "\n",
  );
});
