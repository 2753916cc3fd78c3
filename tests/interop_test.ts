/**
 * Interoperation with plain peers nobody here controls: the exercise's
 * Python sender and receiver (`tests/peers/`, standard library only) and
 * `socat`, each talking to our tools on loopback (senders bind 127.0.0.1,
 * receivers join on 127.0.0.1, TTL 1). Each test has its own port and group.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  ackLine,
  assertOk,
  type Exchanged,
  exchangeWith,
  loopback,
  MESSAGE,
  oneDatagram,
  senderOutput,
  senderPort,
} from "./_exercise.ts";
import { ROOT, RunningProcess, spawnTool, testPort } from "./_tools.ts";

const PYTHON_SENDER = `${ROOT}tests/peers/exercise_sender.py`;
const PYTHON_RECEIVER = `${ROOT}tests/peers/exercise_receiver.py`;

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

/**
 * Registers a test that runs `body` with its own port and group; ignored
 * when `unavailable` says why the peer it needs cannot run here.
 */
function interopTest(
  name: string,
  unavailable: string | undefined,
  body: (port: number, group: string) => Promise<void>,
): void {
  Deno.test({
    name,
    ignore: unavailable !== undefined,
    fn: () => body(testPort(), testGroup()),
  });
}

/**
 * Asserts both sides of the exercise for the default message sent to the
 * group's `port`: one acknowledgement from `port`, the datagram from the
 * sender's own port; the receiver then stops or `after` says it waits.
 */
function assertExercise(
  run: Exchanged<[RunningProcess]>,
  port: number,
  after: "stop" | "wait",
): void {
  const [recv] = run.recv;
  assert.equal(
    run.send.stdout,
    senderOutput(MESSAGE, [ackLine(loopback(port))]),
  );
  const from = senderPort(recv.stdout);
  assert.notEqual(from, port);
  assert.equal(
    recv.stdout,
    oneDatagram(loopback(from), 19, MESSAGE, { after }),
  );
}

/** The exercise's Python receiver, ending after `count` datagrams. */
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

interopTest(
  "interop: Python sender -> mcast-recv, the exercise's output",
  NO_PYTHON,
  async (port, group) => {
    await using receiver = spawnTool("recv", ["-g", group, "-p", `${port}`]);
    const python = [PYTHON_SENDER, group, `${port}`, MESSAGE, "1"];
    const run = await exchangeWith(
      [receiver],
      () => new RunningProcess(["python3", ...python]),
      { stop: "SIGTERM" },
    );
    assertExercise(run, port, "wait");
  },
);

interopTest(
  "interop: mcast-send -> Python receiver, one acknowledgement",
  NO_PYTHON,
  async (port, group) => {
    await using receiver = pythonReceiver(group, port, 1);
    const run = await exchangeWith(
      [receiver],
      () => spawnTool("send", ["-g", group, "-p", `${port}`, "--expect", "1"]),
    );
    assertExercise(run, port, "stop");
  },
);

interopTest(
  "interop: mcast-recv and a Python receiver on one group, two acks",
  NO_PYTHON,
  async (port, group) => {
    const message = "urgent bulletin ✓";
    const bytes = new TextEncoder().encode(message).length;
    const args = ["-g", group, "-p", `${port}`];
    await using ours = spawnTool("recv", [...args, "-c", "1"]);
    await using theirs = pythonReceiver(group, port, 1);
    const { recv, send } = await exchangeWith(
      [ours, theirs],
      () => spawnTool("send", [...args, "-m", message, "--expect", "2"]),
    );

    const ack = ackLine(loopback(port));
    assert.equal(send.stdout, senderOutput(message, [ack, ack]));
    const from = senderPort(recv[0].stdout);
    for (const received of recv) {
      assert.equal(
        received.stdout,
        oneDatagram(loopback(from), bytes, message),
      );
    }
  },
);

interopTest(
  "interop: socat sender -> mcast-recv, socat reads the ack",
  NO_SOCAT,
  async (port, group) => {
    const sourcePort = testPort();
    const args = ["-g", group, "-p", `${port}`, "-c", "1"];
    await using receiver = spawnTool("recv", args);
    // Standard input (the payload, then end of file) goes to the group; the
    // ack comes back on the same socket and goes to standard output; socat
    // ends 1 s after the end of its input.
    const { recv: [received], send } = await exchangeWith(
      [receiver],
      () =>
        new RunningProcess([
          "socat",
          "-t",
          "1",
          "-",
          `UDP4-DATAGRAM:${group}:${port},bind=127.0.0.1:${sourcePort},` +
          "ip-multicast-if=127.0.0.1,ip-multicast-ttl=1",
        ], { stdin: MESSAGE }),
    );

    assert.equal(send.stdout, "ack");
    assert.equal(
      received.stdout,
      oneDatagram(loopback(sourcePort), 19, MESSAGE),
    );
  },
);

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

interopTest(
  "interop: mcast-send -> socat receiver, the payload byte for byte",
  NO_SOCAT,
  async (port, group) => {
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

    assertOk(sent, "sender");
    assert.equal(
      sent.stdout,
      senderOutput("bin ✓\\x00\\x80\\xff\\x7f\\n", []),
    );
    assert.deepEqual(got, payload);
    await socat.waitForStderr(
      `received packet with ${payload.length} bytes from AF=2 127.0.0.1:`,
    );
  },
);
