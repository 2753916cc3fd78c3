/**
 * Process tests of the keys (`--gen-key`, `--gen-sign-key`, `--key-file`,
 * `--encrypt`, `--sign-key`, `--trust`, `--allow-plain`, `--max-skew`) on
 * loopback: key files written by the sender, keyed sessions end to end
 * (encrypted and signed, one bulletin and a feed of 100 lines), receivers
 * without the key, with another key or trusting another signer, a keyed
 * receiver and the plain exercise sender, and bad input.
 *
 * Senders bind 127.0.0.1 and receivers join on 127.0.0.1 (the tools'
 * default interface); every test uses its own `testPort()` and a 239.79.x.y
 * group. Output is compared literally, with session ids, ports, times and
 * counts of acknowledgements read from it or masked. Every output of every
 * run is also checked for the secret keys of this file: none may show.
 *
 * @module
 */

import assert from "node:assert/strict";
import { parseGroup } from "../lib/net/address.ts";
import { resolveInterface } from "../lib/net/interfaces.ts";
import { generateKeyFile } from "../lib/security/keys.ts";
import { openGroupSocket } from "../lib/net/socket.ts";
import {
  ackLine,
  assertOk,
  loopback,
  MESSAGE,
  oneDatagram,
  senderOutput,
  senderPort,
  WAITING,
} from "./_exercise.ts";
import {
  type Finished,
  type RunningProcess,
  runTool,
  type SpawnOptions,
  spawnTool,
  testPort,
  type Tool,
  withTempDir,
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
  withPath,
} from "./_reliable.ts";

const encoder = new TextEncoder();
const PREFIX = "mcast_secure_cli_test_";

/** The hex of every secret key this file made. */
const secrets = new Set<string>();
/** Every output of every run of this file, checked again at the end. */
const outputs: string[] = [];

/** Asserts that no secret key shows in a process's output. */
function assertNoSecret(result: Finished, what: string): Finished {
  for (const secret of secrets) {
    for (
      const [name, text] of [["stdout", result.stdout], [
        "stderr",
        result.stderr,
      ]]
    ) {
      assert.ok(
        !text!.toLowerCase().includes(secret),
        `${what} ${name} shows key material:\n${text}`,
      );
    }
  }
  outputs.push(result.stdout, result.stderr);
  return result;
}

/** Runs a tool to its end and checks its output for key material. */
async function run(
  tool: Tool,
  args: string[],
  options: SpawnOptions & { timeoutMs?: number } = {},
): Promise<Finished> {
  return assertNoSecret(
    await runTool(tool, args, { timeoutMs: 15_000, ...options }),
    `${tool} ${args.join(" ")}`,
  );
}

/** Waits for a started tool's end and checks its output for key material. */
async function finish(
  process: RunningProcess,
  what: string,
  timeoutMs = 10_000,
): Promise<Finished> {
  return assertNoSecret(await process.finish(timeoutMs), what);
}

/** Ends a started tool with SIGTERM and returns how it ended. */
async function stop(process: RunningProcess, what: string): Promise<Finished> {
  process.kill("SIGTERM");
  return await finish(process, what);
}

/** The hex of a key file's one line. */
async function keyHex(path: string): Promise<string> {
  const text = await Deno.readTextFile(path);
  const match = /^mcast-key-v1 [a-z0-9-]+ ([0-9a-f]{64})\n$/.exec(text);
  assert.ok(match, `not a key file: ${JSON.stringify(text)}`);
  return match[1]!;
}

/** A file's permission bits. */
async function modeOf(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}

/** Key files for one test, made with the library. */
interface Keys {
  /** The group key. */
  key: string;
  /** Another group key. */
  other: string;
  /** A signing key; its public key is `${sign}.pub`. */
  sign: string;
  /** Another signing key. */
  otherSign: string;
}

/** Makes the keys of one test in `dir` and records them as secrets. */
async function makeKeys(dir: string): Promise<Keys> {
  const keys: Keys = {
    key: `${dir}/group.key`,
    other: `${dir}/other.key`,
    sign: `${dir}/sign.key`,
    otherSign: `${dir}/other-sign.key`,
  };
  await generateKeyFile(keys.key);
  await generateKeyFile(keys.other);
  await generateKeyFile(keys.sign, { kind: "ed25519" });
  await generateKeyFile(keys.otherSign, { kind: "ed25519" });
  for (const path of Object.values(keys)) secrets.add(await keyHex(path));
  return keys;
}

/** A fresh group for one test. */
function testGroup(last: number): string {
  return `239.79.${Deno.pid % 250}.${last}`;
}

/** The sender's lines without those of receivers leaving (any time). */
function withoutLeaving(stdout: string): string[] {
  return lines(mask(stdout)).filter((line) =>
    !/^receiver [^ ]+ left \(up to date\)$/.test(line)
  );
}

/** A receiver's statistics line with nothing but `dropped` (`N dropped (...)`). */
function droppedOnly(dropped: string, keyed: boolean): string {
  return `statistics: 0 bulletins (0 bytes), 0 datagrams, 0 repaired, 0 duplicates, 0 unrecoverable, 0 discarded, 0 NACKs, 0 ACKs, ${dropped}${
    pathSuffix(keyed)
  }`;
}

/**
 * A receiver's statistics line after `bulletins` bulletins of `bytes` in
 * all, with nothing lost, discarded or dropped. How many datagrams it
 * counted, and whether as repaired or duplicate, depends on timing: the
 * guard holds unsigned datagrams until a signature covers them, the sender
 * sends its last datagram again, signed, and heartbeats may overtake them.
 */
function deliveredStats(bulletins: number, bytes: number): RegExp {
  return withPath(
    new RegExp(
      `^statistics: ${bulletins} bulletins? \\(${bytes} bytes\\), [0-9]+ datagrams?, [0-9]+ repaired, [0-9]+ duplicates?, 0 unrecoverable, 0 discarded, [0-9]+ NACKs?, [0-9]+ ACKs?, 0 dropped$`,
    ),
    true,
  );
}

/** Starts a receiver and waits until it is joined and waiting. */
async function receiver(args: string[]): Promise<RunningProcess> {
  const started = spawnTool("recv", args);
  await started.waitForOutput(WAITING);
  return started;
}

const UMASK_0 = ["sh", "-c", 'umask 0 && exec "$@"', "sh"];

Deno.test("--gen-key and --gen-sign-key write new key files, say where, and never overwrite", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const key = `${dir}/agency.key`;
    const sign = `${dir}/agency-sign.key`;
    const [group, signing] = await Promise.all([
      run("send", ["--gen-key", key]),
      run("send", ["--gen-sign-key", sign]),
    ]);
    assertOk(group, "--gen-key");
    assert.equal(
      group.stdout,
      `wrote a new group key to ${key} (mode 0600): copy it to every sender and receiver over a channel you trust\n`,
    );
    const keyText = await Deno.readTextFile(key);
    assert.match(keyText, /^mcast-key-v1 group [0-9a-f]{64}\n$/);
    secrets.add(await keyHex(key));
    assert.equal(await modeOf(key), 0o600);

    assertOk(signing, "--gen-sign-key");
    const signText = await Deno.readTextFile(sign);
    assert.match(signText, /^mcast-key-v1 ed25519-private [0-9a-f]{64}\n$/);
    secrets.add(await keyHex(sign));
    const pubText = await Deno.readTextFile(`${sign}.pub`);
    assert.match(pubText, /^mcast-key-v1 ed25519-public [0-9a-f]{64}\n$/);
    assert.equal(
      signing.stdout,
      `wrote a new signing key to ${sign} (mode 0600) and its public key to ${sign}.pub\n` +
        `public key: ${await keyHex(`${sign}.pub`)}\n`,
    );
    assert.equal(await modeOf(sign), 0o600);
    assert.equal(await modeOf(`${sign}.pub`), 0o644);
    // The outputs of both runs were checked before these keys were known.
    assertNoSecret(group, "--gen-key");
    assertNoSecret(signing, "--gen-sign-key");

    const [again, signAgain, alone, aloneFirst, recv, masked] = await Promise
      .all([
        run("send", ["--gen-key", key]),
        run("send", ["--gen-sign-key", sign]),
        run("send", ["--gen-key", `${dir}/k2`, "--reliable"]),
        run("send", ["--reliable", "--gen-sign-key", `${dir}/s2`]),
        run("recv", ["--gen-key", `${dir}/k3`]),
        // A permissive umask changes nothing.
        run("send", ["--gen-sign-key", `${dir}/s4`], { prefix: UMASK_0 }),
      ]);
    assertExit(
      again,
      2,
      `mcast-send: Key file ${key} already exists: refusing to overwrite a key\n`,
      "--gen-key again",
    );
    assertExit(
      signAgain,
      2,
      `mcast-send: Key file ${sign} already exists: refusing to overwrite a key\n`,
      "--gen-sign-key again",
    );
    assertExit(
      alone,
      2,
      'mcast-send: Option "--gen-key" is used alone: it writes a key file and exits (not with "--reliable")\n',
      "--gen-key --reliable",
    );
    assertExit(
      aloneFirst,
      2,
      'mcast-send: Option "--gen-sign-key" is used alone: it writes a key file and exits (not with "--reliable")\n',
      "--reliable --gen-sign-key",
    );
    assertExit(
      recv,
      2,
      'mcast-recv: Unknown option "--gen-key"\n',
      "mcast-recv --gen-key",
    );
    for (const result of [again, signAgain, alone, aloneFirst, recv]) {
      assert.equal(result.stdout, "");
    }
    assertOk(masked, "--gen-sign-key under umask 0");
    secrets.add(await keyHex(`${dir}/s4`));
    assertNoSecret(masked, "--gen-sign-key under umask 0");
    assert.equal(await modeOf(`${dir}/s4`), 0o600);
    assert.equal(await modeOf(`${dir}/s4.pub`), 0o644);
    // Nothing was overwritten, and nothing else was written.
    assert.equal(await Deno.readTextFile(key), keyText);
    assert.equal(await Deno.readTextFile(sign), signText);
    assert.equal(await Deno.readTextFile(`${sign}.pub`), pubText);
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).toSorted(),
      [
        "agency-sign.key",
        "agency-sign.key.pub",
        "agency.key",
        "s4",
        "s4.pub",
      ],
    );
  });
});

Deno.test("an encrypted, signed bulletin reaches a keyed receiver that trusts the signer", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const keys = await makeKeys(dir);
    const group = testGroup(1);
    const port = testPort();
    const text = "flash: markets closed ✓";
    await using recv = await receiver([
      ...at(group, port),
      "--key-file",
      keys.key,
      "--name",
      "r1",
      "--trust",
      `${keys.sign}.pub`,
      "--count",
      "1",
    ]);
    const send = await run("send", [
      ...at(group, port),
      "--reliable",
      "--key-file",
      keys.key,
      "--encrypt",
      "--sign-key",
      keys.sign,
      "--expect",
      "1",
      "-m",
      text,
    ]);
    assertOk(send, "sender");
    const received = await finish(recv, "receiver");
    assertOk(received, "receiver");
    const session = senderSession(send.stdout);
    const from = joinedPort(received.stdout);
    const bytes = encoder.encode(text).length;
    const out = lines(received.stdout);
    assert.deepEqual(out.slice(0, -1), [
      WAITING,
      `joined session ${session} from ${loopback(from)} at sequence 1`,
      bulletinLine(1, text, from),
    ]);
    assert.match(out.at(-1)!, deliveredStats(1, bytes));
    assert.deepEqual(withoutLeaving(send.stdout), [
      `session ${session} to ${group}:${port}`,
      `receiver r1 joined from ${loopback(port)}`,
      "sent 1 bulletin in 1 datagram, waiting for acknowledgements",
      `delivery report for session ${session}: delivered to every receiver in T s`,
      `  r1 ${loopback(port)}: complete, has 1 bulletin`,
      `statistics: 1 bulletin (${bytes} bytes) in 1 datagram, 0 retransmitted, 0 NACKs, N ACKs, N feedback frames, 0 gone notices, 0 dropped${
        pathSuffix(true)
      }`,
    ]);
  });
});

Deno.test("a keyed feed of 100 lines is delivered exactly once, in order", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const keys = await makeKeys(dir);
    const group = testGroup(2);
    const port = testPort();
    const texts = Array.from(
      { length: 100 },
      (_, k) => `line ${k + 1} ${"=".repeat(k % 50)}`,
    );
    const bytes = texts.reduce((n, t) => n + encoder.encode(t).length, 0);
    await using recv = await receiver([
      ...at(group, port),
      "--key-file",
      keys.key,
      "--name",
      "feed",
      "--trust",
      `${keys.sign}.pub`,
      "--count",
      "100",
    ]);
    const send = await run("send", [
      ...at(group, port),
      "--reliable",
      "--lines",
      "--key-file",
      keys.key,
      "--encrypt",
      "--sign-key",
      keys.sign,
      "--expect",
      "1",
    ], { stdin: texts.join("\n") + "\n" });
    assertOk(send, "sender");
    const received = await finish(recv, "receiver");
    assertOk(received, "receiver");
    const from = joinedPort(received.stdout);
    const out = lines(received.stdout);
    assert.equal(out[0], WAITING);
    assert.match(
      out[1]!,
      /^joined session [0-9a-f]{16} from .* at sequence 1$/,
    );
    assert.deepEqual(
      out.slice(2, -1),
      texts.map((text, k) => bulletinLine(k + 1, text, from)),
    );
    assert.match(
      out.at(-1)!,
      deliveredStats(100, bytes),
    );
    assert.match(
      send.stdout,
      /\n {2}feed \('127\.0\.0\.1', [0-9]+\): complete, has 100 bulletins\n/,
    );
  });
});

Deno.test("receivers without the key, or with another, see nothing of a keyed session", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const keys = await makeKeys(dir);
    const group = testGroup(3);
    const port = testPort();
    await using plain = await receiver(at(group, port));
    await using wrong = await receiver([
      ...at(group, port),
      "--key-file",
      keys.other,
      "--name",
      "wrong",
    ]);
    {
      // With a receiver that has the key, the bulletin is sent and
      // delivered to it alone.
      await using right = await receiver([
        ...at(group, port),
        "--key-file",
        keys.key,
        "--name",
        "right",
        "--count",
        "1",
      ]);
      const send = await run("send", [
        ...at(group, port),
        "--reliable",
        "--key-file",
        keys.key,
        "--encrypt",
        "--expect",
        "1",
        "-m",
        "for keyholders",
      ]);
      assertOk(send, "sender");
      const received = await finish(right, "receiver with the key");
      assertOk(received, "receiver with the key");
      assert.deepEqual(
        lines(received.stdout).slice(2, -1),
        [bulletinLine(1, "for keyholders", joinedPort(received.stdout))],
      );
      assert.match(
        send.stdout,
        /\n {2}right \('127\.0\.0\.1', [0-9]+\): complete, has 1 bulletin\n/,
      );
      assert.doesNotMatch(send.stdout, /wrong/);
    }
    // With only the receiver with another key, nothing is sent.
    const session = await run("send", [
      ...at(group, port),
      "--reliable",
      "--key-file",
      keys.key,
      "--expect",
      "1",
      "--deadline",
      "1",
      "-m",
      "for keyholders",
    ]);
    assertExit(
      session,
      1,
      "mcast-send: nothing sent: 0 of 1 receivers answered by the deadline\n",
      "sender",
    );
    const id = senderSession(session.stdout);
    assert.deepEqual(lines(mask(session.stdout)), [
      `session ${id} to ${group}:${port}`,
      `delivery report for session ${id}: NOTHING sent: not every expected receiver answered by the deadline in T s`,
      `statistics: 0 bulletins (0 bytes) in 0 datagrams, 0 retransmitted, 0 NACKs, N ACKs, N feedback frames, 0 gone notices, 0 dropped${
        pathSuffix(true)
      }`,
    ]);

    // The receiver without a key dropped every frame, and says so.
    const plainEnd = await stop(plain, "receiver without a key");
    assertOk(plainEnd, "receiver without a key");
    const plainLines = lines(plainEnd.stdout);
    assert.equal(plainLines.length, 2, plainEnd.stdout);
    assert.equal(plainLines[0], WAITING);
    // Each frame carries a tag a receiver without a key cannot check.
    const count = /, ([0-9]+) dropped \(tag [0-9]+\), io /.exec(plainLines[1]!)
      ?.[1];
    assert.ok(Number(count) > 0, plainLines[1]);
    assert.equal(
      plainLines[1],
      droppedOnly(`${count} dropped (tag ${count})`, false),
    );
    // The receiver with another key showed nothing (its statistics, if any,
    // are the subject of another test).
    const wrongEnd = await stop(wrong, "receiver with another key");
    assertOk(wrongEnd, "receiver with another key");
    assert.deepEqual(
      lines(wrongEnd.stdout).filter((l) => !l.startsWith("statistics: ")),
      [WAITING],
    );
  });
});

Deno.test("a keyed receiver's statistics count what it dropped as unauthenticated", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const keys = await makeKeys(dir);
    const group = testGroup(4);
    const port = testPort();
    await using recv = await receiver([
      ...at(group, port),
      "--key-file",
      keys.key,
    ]);
    const send = await run("send", [
      ...at(group, port),
      "--expect",
      "1",
      "--wait",
      "1",
    ]);
    assertExit(
      send,
      1,
      "mcast-send: expected 1 acknowledgements, received 0 (1 missing)\n",
      "plain sender",
    );
    const end = await stop(recv, "keyed receiver");
    assertOk(end, "keyed receiver");
    // One plain datagram, dropped: the operator can see that something
    // arrived that the key did not let through.
    assert.equal(
      end.stdout,
      `${WAITING}\n${droppedOnly("1 dropped (plain 1)", true)}\n`,
    );
  });
});

Deno.test("a keyed receiver ignores the plain exercise sender unless --allow-plain", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const keys = await makeKeys(dir);
    const group = testGroup(5);
    const port = testPort();
    {
      await using recv = await receiver([
        ...at(group, port),
        "--key-file",
        keys.key,
      ]);
      const send = await run("send", [
        ...at(group, port),
        "--expect",
        "1",
        "--wait",
        "1",
      ]);
      assertExit(
        send,
        1,
        "mcast-send: expected 1 acknowledgements, received 0 (1 missing)\n",
        "plain sender",
      );
      assert.equal(send.stdout, senderOutput(MESSAGE, []));
      const end = await stop(recv, "keyed receiver");
      assertOk(end, "keyed receiver");
      assert.deepEqual(
        lines(end.stdout).filter((l) => !l.startsWith("statistics: ")),
        [WAITING],
      );
    }
    await using recv = await receiver([
      ...at(group, port),
      "--key-file",
      keys.key,
      "--allow-plain",
      "--count",
      "1",
    ]);
    const send = await run("send", [
      ...at(group, port),
      "--expect",
      "1",
      "--wait",
      "5",
    ]);
    assertOk(send, "plain sender");
    const end = await finish(recv, "keyed receiver --allow-plain");
    assertOk(end, "keyed receiver --allow-plain");
    const from = senderPort(end.stdout);
    assert.equal(end.stdout, oneDatagram(loopback(from), 19, MESSAGE));
    assert.equal(
      send.stdout,
      senderOutput(MESSAGE, [ackLine(loopback(port))]),
    );
  });
});

Deno.test("a receiver that trusts a signer drops bulletins signed by another, or unsigned", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const keys = await makeKeys(dir);
    const group = testGroup(6);
    const ports = [testPort(), testPort()];
    const trusting = (port: number) =>
      receiver([
        ...at(group, port),
        "--key-file",
        keys.key,
        "--name",
        "careful",
        "--trust",
        `${keys.sign}.pub`,
      ]);
    await using forgedRecv = await trusting(ports[0]!);
    await using unsignedRecv = await trusting(ports[1]!);
    const common = ["--reliable", "--key-file", keys.key, "--expect", "1"];
    const [forged, unsigned] = await Promise.all([
      run("send", [
        ...at(group, ports[0]!),
        ...common,
        "--sign-key",
        keys.otherSign,
        "--deadline",
        "1",
        "-m",
        "signed by someone else",
      ]),
      run("send", [
        ...at(group, ports[1]!),
        ...common,
        "--deadline",
        "1",
        "-m",
        "not signed",
      ]),
    ]);
    for (
      const [result, port] of [[forged, ports[0]!], [
        unsigned,
        ports[1]!,
      ]] as const
    ) {
      assertExit(
        result,
        1,
        "mcast-send: not delivered to every receiver: 0 of 1 have everything (deadline)\n",
        "sender",
      );
      assert.match(
        result.stdout,
        new RegExp(
          `\n {2}careful \\('127\\.0\\.0\\.1', ${port}\\): incomplete, has 0 bulletins, missing bulletins 1 \\(datagrams 1\\)\n`,
        ),
      );
    }
    for (const process of [forgedRecv, unsignedRecv]) {
      const end = await stop(process, "trusting receiver");
      assertOk(end, "trusting receiver");
      const out = lines(end.stdout);
      assert.equal(out[0], WAITING);
      assert.match(out[1]!, /^joined session [0-9a-f]{16} from /);
      assert.equal(out.length, 3, end.stdout);
      assert.match(
        out[2]!,
        withPath(
          /^statistics: 0 bulletins \(0 bytes\), 0 datagrams, 0 repaired, 0 duplicates, 0 unrecoverable, 0 discarded, [0-9]+ NACKs, [0-9]+ ACKs, ([1-9][0-9]*) dropped \(forged \1\)$/,
          true,
        ),
      );
    }
  });
});

Deno.test("a keyed session with the largest --mtu still delivers", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const keys = await makeKeys(dir);
    const group = testGroup(7);
    const port = testPort();
    const payload = "0123456789".repeat(7000);
    const file = `${dir}/payload.txt`;
    await Deno.writeTextFile(file, payload);
    await using recv = await receiver([
      ...at(group, port),
      "--key-file",
      keys.key,
      "--name",
      "big",
      "--count",
      "1",
      "--output",
      `${dir}/inbox`,
    ]);
    const send = await run("send", [
      ...at(group, port),
      "--reliable",
      "--key-file",
      keys.key,
      "--encrypt",
      "--sign-key",
      keys.sign,
      "--mtu",
      "65507",
      "--expect",
      "1",
      "--deadline",
      "3",
      "-f",
      file,
    ]);
    // A receiver still waiting after a failed send is killed at once.
    assertOk(send, "sender");
    const end = await finish(recv, "receiver");
    assertOk(end, "receiver");
    const saved = /^received bulletin 1 \(70000 bytes\) from .* saved to (.*)$/m
      .exec(end.stdout)?.[1];
    assert.ok(saved, end.stdout);
    assert.equal(await Deno.readTextFile(saved), payload);
  });
});

Deno.test("with keys, no datagram is larger than --mtu", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const keys = await makeKeys(dir);
    const group = testGroup(10);
    const port = testPort();
    // An observer on the group: every datagram sent to it, by size.
    const observer = await openGroupSocket(
      parseGroup(group),
      resolveInterface("127.0.0.1", 4),
      { port },
    );
    const sizes: number[] = [];
    const observed = (async () => {
      for (;;) {
        const datagram = await observer.receive();
        if (datagram === null) return;
        sizes.push(datagram.payload.length);
      }
    })();
    try {
      await using recv = await receiver([
        ...at(group, port),
        "--key-file",
        keys.key,
        "--name",
        "sized",
        "--trust",
        `${keys.sign}.pub`,
        "--count",
        "1",
      ]);
      const send = await run("send", [
        ...at(group, port),
        "--reliable",
        "--key-file",
        keys.key,
        "--encrypt",
        "--sign-key",
        keys.sign,
        "--mtu",
        "1400",
        "--expect",
        "1",
        "--deadline",
        "3",
        "-m",
        "x".repeat(5000),
      ]);
      assertOk(send, "sender");
      assertOk(await finish(recv, "receiver"), "receiver");
    } finally {
      observer.close();
      await observed;
    }
    assert.ok(sizes.length >= 4, `${sizes}`);
    assert.ok(sizes.some((size) => size > 1200), `full datagrams: ${sizes}`);
    assert.deepEqual(sizes.filter((size) => size > 1400), [], `${sizes}`);
  });
});

Deno.test("bad keys and key options: one line, exit 2, before anything is sent", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const keys = await makeKeys(dir);
    const open = `${dir}/open.key`;
    await Deno.copyFile(keys.key, open);
    await Deno.chmod(open, 0o644);
    const missing = `${dir}/missing.key`;
    const group = testGroup(8);
    const port = testPort();
    const send = ["send", ...at(group, port), "--reliable", "--expect", "1"];
    const recv = ["recv", ...at(group, port)];
    const cases: [string[], string][] = [
      [
        [...send, "--key-file", open],
        `mcast-send: Key file ${open} can be read by others (mode 0644): run chmod 600 ${open}`,
      ],
      [
        [...recv, "--key-file", open],
        `mcast-recv: Key file ${open} can be read by others (mode 0644): run chmod 600 ${open}`,
      ],
      [
        [...send, "--key-file", missing],
        `mcast-send: Key file ${missing} does not exist`,
      ],
      [
        [...recv, "--key-file", missing],
        `mcast-recv: Key file ${missing} does not exist`,
      ],
      [
        [...send, "--key-file", keys.key, "--sign-key", missing],
        `mcast-send: Key file ${missing} does not exist`,
      ],
      [
        [...send, "--encrypt"],
        'mcast-send: Option "--encrypt" needs --key-file',
      ],
      [
        ["send", ...at(group, port), "--key-file", keys.key],
        'mcast-send: Option "--key-file" needs --reliable',
      ],
      [
        [...recv, "--trust", `${keys.sign}.pub`],
        'mcast-recv: Option "--trust" needs --key-file',
      ],
      [
        [...recv, "--key-file", keys.key, "--trust", "not-a-key"],
        "mcast-recv: Key file not-a-key does not exist",
      ],
      [
        [...recv, "--key-file", keys.key, "--trust", "ab".repeat(31) + "a"],
        `mcast-recv: Key file ${"ab".repeat(31)}a does not exist`,
      ],
      [
        [...recv, "--key-file", keys.key, "--max-skew", "0"],
        'mcast-recv: Invalid --max-skew "0": expected seconds from 1 to 86400',
      ],
      [
        [...send, "--key-file", keys.key, "--max-skew", "0"],
        'mcast-send: Invalid --max-skew "0": expected seconds from 1 to 86400',
      ],
    ];
    const results = await Promise.all(
      cases.map(([[tool, ...args]]) => run(tool as Tool, args)),
    );
    results.forEach((result, k) => {
      const [args, message] = cases[k]!;
      assertExit(result, 2, `${message}\n`, args.join(" "));
      assert.equal(result.stdout, "", args.join(" "));
    });
    // Nothing was written next to the keys.
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).toSorted(),
      [
        "group.key",
        "open.key",
        "other-sign.key",
        "other-sign.key.pub",
        "other.key",
        "sign.key",
        "sign.key.pub",
      ],
    );
  });
});

Deno.test("a key file of the wrong kind is named, in one line, exit 2", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const keys = await makeKeys(dir);
    const group = testGroup(9);
    const port = testPort();
    const send = ["send", ...at(group, port), "--reliable", "--expect", "1"];
    const recv = ["recv", ...at(group, port)];
    const pub = `${keys.sign}.pub`;
    const cases: [string[], string][] = [
      [
        [...send, "--key-file", keys.sign],
        `mcast-send: Key file ${keys.sign} holds an ed25519-private key, not a group key`,
      ],
      [
        [...recv, "--key-file", keys.sign],
        `mcast-recv: Key file ${keys.sign} holds an ed25519-private key, not a group key`,
      ],
      [
        [...send, "--key-file", keys.key, "--sign-key", keys.key],
        `mcast-send: Key file ${keys.key} holds a group key, not an ed25519-private key`,
      ],
      [
        [...recv, "--key-file", keys.key, "--trust", keys.sign],
        `mcast-recv: Public key file ${keys.sign} holds an ed25519-private key, not an ed25519-public key`,
      ],
      [
        [...recv, "--key-file", pub],
        `mcast-recv: Key file ${pub} holds an ed25519-public key, not a group key`,
      ],
      [
        [...send, "--key-file", keys.key, "--sign-key", pub],
        `mcast-send: Key file ${pub} holds an ed25519-public key, not an ed25519-private key`,
      ],
    ];
    const results = await Promise.all(
      cases.map(([[tool, ...args]]) => run(tool as Tool, args)),
    );
    results.forEach((result, k) => {
      const [args, message] = cases[k]!;
      assertExit(result, 2, `${message}\n`, args.join(" "));
      assert.equal(result.stdout, "", args.join(" "));
    });
  });
});

Deno.test("no output of this file showed a secret key", () => {
  assert.ok(secrets.size > 0, "keys were made");
  assert.ok(outputs.length > 0, "outputs were checked");
  for (const text of outputs) {
    for (const secret of secrets) {
      assert.ok(!text.toLowerCase().includes(secret), text);
    }
  }
});
