/**
 * Interoperation with plain peers nobody here controls: the exercise's
 * Python sender and receiver (`tests/peers/`, standard library only) and
 * `socat`, each talking to our tools on loopback (senders bind 127.0.0.1,
 * receivers join on 127.0.0.1, TTL 1). Each test has its own port and group.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ROOT, RunningProcess, spawnTool, testPort } from "./_tools.ts";

const PYTHON_SENDER = `${ROOT}tests/peers/exercise_sender.py`;
const PYTHON_RECEIVER = `${ROOT}tests/peers/exercise_receiver.py`;
const DATA = "very important data";

/** Runs `program args` to its end; `undefined` when it cannot be started. */
async function probe(
  program: string,
  args: string[],
): Promise<Deno.CommandOutput | undefined> {
  try {
    return await new Deno.Command(program, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch {
    return undefined;
  }
}

/** Why a peer cannot run here, or `undefined` when it can. */
async function missing(
  program: string,
  args: string[],
): Promise<string | undefined> {
  const output = await probe(program, args);
  if (output === undefined) return `${program} not installed`;
  if (!output.success) return `${program} ${args.join(" ")} failed`;
  return undefined;
}

const NO_PYTHON = await missing("python3", ["--version"]);
const NO_SOCAT = await missing("socat", ["-V"]);
if (NO_PYTHON) console.log(`skipped Python interop tests: ${NO_PYTHON}`);
if (NO_SOCAT) console.log(`skipped socat interop tests: ${NO_SOCAT}`);

let nextGroup = 0;

/** A group for one test: 239.255.N.M, an administratively scoped group. */
function testGroup(): string {
  nextGroup += 1;
  return `239.255.${70 + (Deno.pid % 100)}.${nextGroup}`;
}

/** The receiver's lines for one datagram, as the exercise prints them. */
function receiverLines(bytes: number, text: string, from: number): string {
  return [
    `received ${bytes} bytes from ('127.0.0.1', ${from}) : ${text}`,
    `sending acknowledgement to ('127.0.0.1', ${from})`,
  ].join("\n");
}

/** The sender's port that a receiver's output names (`received ... from`). */
function senderPortIn(output: string): number {
  const match = output.match(
    /^received \d+ bytes from \('127\.0\.0\.1', (\d+)\)/m,
  );
  assert.ok(match, `no "received" line in:\n${output}`);
  return Number(match[1]);
}

function pythonReceiver(
  group: string,
  port: number,
  count: number,
): RunningProcess {
  return new RunningProcess([
    "python3",
    PYTHON_RECEIVER,
    group,
    `${port}`,
    `${count}`,
  ]);
}

Deno.test({
  name: "interop: Python sender -> mcast-recv, the exercise's output",
  ignore: NO_PYTHON !== undefined,
  async fn() {
    const port = testPort();
    const group = testGroup();
    await using receiver = spawnTool("recv", ["-g", group, "-p", `${port}`]);
    await receiver.waitForOutput("waiting to receive message");
    await using sender = new RunningProcess([
      "python3",
      PYTHON_SENDER,
      group,
      `${port}`,
      DATA,
      "1",
    ]);
    const sent = await sender.finish();
    await receiver.waitForOutput("waiting to receive message", { count: 2 });
    receiver.kill("SIGTERM");
    const received = await receiver.finish();

    assert.equal(sent.stderr, "");
    assert.equal(sent.code, 0);
    assert.equal(
      sent.stdout,
      `sending "${DATA}"\nwaiting to receive\n` +
        `received "ack" from ('127.0.0.1', ${port})\nclosing socket\n`,
    );
    assert.equal(received.stderr, "");
    assert.equal(received.code, 0);
    const from = senderPortIn(received.stdout);
    assert.notEqual(from, port);
    assert.equal(
      received.stdout,
      `waiting to receive message\n${receiverLines(19, DATA, from)}\n\n` +
        `waiting to receive message\n`,
    );
  },
});

Deno.test({
  name: "interop: mcast-send -> Python receiver, one acknowledgement",
  ignore: NO_PYTHON !== undefined,
  async fn() {
    const port = testPort();
    const group = testGroup();
    await using receiver = pythonReceiver(group, port, 1);
    await receiver.waitForOutput("waiting to receive message");
    await using sender = spawnTool("send", [
      "-g",
      group,
      "-p",
      `${port}`,
      "--expect",
      "1",
    ]);
    const sent = await sender.finish();
    const received = await receiver.finish();

    assert.equal(sent.stderr, "");
    assert.equal(sent.code, 0);
    assert.equal(
      sent.stdout,
      `sending "${DATA}"\nwaiting to receive\n` +
        `received "ack" from ('127.0.0.1', ${port})\nclosing socket\n`,
    );
    assert.equal(received.stderr, "");
    assert.equal(received.code, 0);
    const from = senderPortIn(received.stdout);
    assert.notEqual(from, port);
    assert.equal(
      received.stdout,
      `waiting to receive message\n${receiverLines(19, DATA, from)}\n`,
    );
  },
});

Deno.test({
  name: "interop: mcast-recv and a Python receiver on one group, two acks",
  ignore: NO_PYTHON !== undefined,
  async fn() {
    const port = testPort();
    const group = testGroup();
    const message = "urgent bulletin ✓";
    const bytes = new TextEncoder().encode(message).length;
    await using ours = spawnTool("recv", [
      "-g",
      group,
      "-p",
      `${port}`,
      "-c",
      "1",
    ]);
    await using theirs = pythonReceiver(group, port, 1);
    await ours.waitForOutput("waiting to receive message");
    await theirs.waitForOutput("waiting to receive message");
    await using sender = spawnTool("send", [
      "-g",
      group,
      "-p",
      `${port}`,
      "-m",
      message,
      "--expect",
      "2",
    ]);
    const sent = await sender.finish();
    const [fromOurs, fromTheirs] = [await ours.finish(), await theirs.finish()];

    assert.equal(sent.stderr, "");
    assert.equal(sent.code, 0);
    const ack = `received "ack" from ('127.0.0.1', ${port})\n`;
    assert.equal(
      sent.stdout,
      `sending "${message}"\nwaiting to receive\n${ack}${ack}closing socket\n`,
    );
    const from = senderPortIn(fromOurs.stdout);
    for (const received of [fromOurs, fromTheirs]) {
      assert.equal(received.stderr, "");
      assert.equal(received.code, 0);
      assert.equal(
        received.stdout,
        `waiting to receive message\n${receiverLines(bytes, message, from)}\n`,
      );
    }
  },
});

Deno.test({
  name: "interop: socat sender -> mcast-recv, socat reads the ack",
  ignore: NO_SOCAT !== undefined,
  async fn() {
    const port = testPort();
    const sourcePort = testPort();
    const group = testGroup();
    await using receiver = spawnTool("recv", [
      "-g",
      group,
      "-p",
      `${port}`,
      "-c",
      "1",
    ]);
    await receiver.waitForOutput("waiting to receive message");
    // Standard input (the payload, then end of file) goes to the group; the
    // ack comes back on the same socket and goes to standard output; socat
    // ends 1 s after the end of its input.
    await using socat = new RunningProcess([
      "socat",
      "-t",
      "1",
      "-",
      `UDP4-DATAGRAM:${group}:${port},bind=127.0.0.1:${sourcePort},` +
      "ip-multicast-if=127.0.0.1,ip-multicast-ttl=1",
    ], { stdin: DATA });
    const sent = await socat.finish();
    const received = await receiver.finish();

    assert.equal(sent.stderr, "");
    assert.equal(sent.code, 0);
    assert.equal(sent.stdout, "ack");
    assert.equal(received.stderr, "");
    assert.equal(received.code, 0);
    assert.equal(
      received.stdout,
      `waiting to receive message\n${receiverLines(19, DATA, sourcePort)}\n`,
    );
  },
});

/** A process whose standard output is kept as bytes. */
class ByteProcess implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #done: Promise<unknown>;
  #stdout = new Uint8Array(0);
  stderr = "";
  #wake: (() => void) | undefined;

  constructor(program: string, args: string[]) {
    const child = new Deno.Command(program, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    const notify = () => this.#wake?.();
    const out = (async () => {
      for await (const chunk of child.stdout) {
        const joined = new Uint8Array(this.#stdout.length + chunk.length);
        joined.set(this.#stdout);
        joined.set(chunk, this.#stdout.length);
        this.#stdout = joined;
        notify();
      }
    })();
    const err = (async () => {
      const stream = child.stderr.pipeThrough(new TextDecoderStream());
      for await (const text of stream) {
        this.stderr += text;
        notify();
      }
    })();
    this.#done = Promise.all([child.status, out, err]);
  }

  /** Waits until `ready()` holds; throws after `timeoutMs`. */
  async #until(ready: () => boolean, what: string, timeoutMs: number) {
    const deadline = Date.now() + timeoutMs;
    while (!ready()) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`timed out waiting for ${what}:\n${this.stderr}`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((wake) => {
        this.#wake = wake;
        timer = setTimeout(wake, left);
      });
      clearTimeout(timer);
    }
  }

  /** Waits for `text` on standard error. */
  async waitForStderr(text: string, timeoutMs = 10_000): Promise<void> {
    await this.#until(() => this.stderr.includes(text), text, timeoutMs);
  }

  /** Waits for at least `length` bytes on standard output and returns them all. */
  async readStdout(length: number, timeoutMs = 10_000): Promise<Uint8Array> {
    await this.#until(
      () => this.#stdout.length >= length,
      `${length} bytes`,
      timeoutMs,
    );
    return this.#stdout;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already ended.
    }
    await this.#done;
  }
}

Deno.test({
  name: "interop: mcast-send -> socat receiver, the payload byte for byte",
  ignore: NO_SOCAT !== undefined,
  async fn() {
    const port = testPort();
    const group = testGroup();
    // Text, a NUL, a lone continuation byte, 0xff, DEL and a newline.
    const payload = new Uint8Array([
      ...new TextEncoder().encode("bin ✓"),
      0x00,
      0x80,
      0xff,
      0x7f,
      0x0a,
    ]);
    await using socat = new ByteProcess("socat", [
      "-d",
      "-d",
      "-u",
      `UDP4-RECV:${port},ip-add-membership=${group}:127.0.0.1,reuseaddr`,
      "-",
    ]);
    // Logged once the socket is bound and joined.
    await socat.waitForStderr("starting data transfer loop");
    await using sender = spawnTool("send", [
      "-g",
      group,
      "-p",
      `${port}`,
      "-f",
      "-",
      "-w",
      "0.2",
    ], { stdin: payload });
    const sent = await sender.finish();
    const got = await socat.readStdout(payload.length);

    assert.equal(sent.stderr, "");
    assert.equal(sent.code, 0);
    assert.equal(
      sent.stdout,
      'sending "bin ✓\\x00\\x80\\xff\\x7f\\n"\nwaiting to receive\n' +
        "closing socket\n",
    );
    assert.deepEqual(got, payload);
    await socat.waitForStderr(
      `received packet with ${payload.length} bytes from AF=2 127.0.0.1:`,
    );
  },
});
