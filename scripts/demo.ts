/**
 * `deno task demo`: the exercise on loopback, then reliable mode. Starts a
 * receiver, waits until it has joined, runs the sender, waits until the
 * receiver has acknowledged, stops it, and prints both terminals' output.
 * Then two named receivers and a reliable sender fed three lines: prints the
 * deliveries and the sender's delivery report. Then keys: a group key and
 * a signing key, an encrypted and signed bulletin, a terminal with the keys
 * that shows it and one without that shows nothing. Then `mcast-check`:
 * two instances on loopback probe each other by unicast and multicast.
 * Last, `mcast-bridge` relays group 224.1.1.1 to group 224.1.1.2, and a
 * terminal on the second group gets the exercise's datagram. Exits 1 if
 * any part fails.
 *
 * @module
 */

import { ROOT, type Tool, toolCommand } from "./tools.ts";

const TIMEOUT_MS = 10_000;
const WAITING = "waiting to receive message\n";

function command(words: string[]): Deno.Command {
  const [program, ...args] = words;
  return new Deno.Command(program!, {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  });
}

/** The receiver's output, growing as it arrives, with a way to wait for it. */
class Output {
  text = "";
  #wake = () => {};

  async read(stream: ReadableStream<Uint8Array>): Promise<void> {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      this.text += chunk;
      this.#wake();
    }
    this.#wake();
  }

  /** Resolves true once `text` occurs `count` times, false at the deadline. */
  async waitFor(
    text: string,
    count: number,
    deadline: number,
  ): Promise<boolean> {
    while (this.text.split(text).length - 1 < count) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
    return true;
  }
}

/** A tool's process whose output is collected as it arrives. */
interface ToolProcess {
  child: Deno.ChildProcess;
  output: Output;
  reading: Promise<void>;
}

function startTool(tool: Tool, args: string[]): ToolProcess {
  const child = command(toolCommand(tool, args)).spawn();
  const output = new Output();
  return { child, output, reading: output.read(child.stdout) };
}

function startReceiver(args: string[]): ToolProcess {
  return startTool("recv", args);
}

/** Stops a tool with SIGINT (as Ctrl-C would) and waits for its output. */
async function stopTool(tool: ToolProcess): Promise<void> {
  try {
    tool.child.kill("SIGINT");
  } catch {
    // Already exited.
  }
  await tool.child.status;
  await tool.reading;
}

/** Part 1: the exercise itself, one datagram and one acknowledgement. */
async function exercise(deadline: number): Promise<boolean> {
  const receiver = startReceiver([]);
  try {
    if (!await receiver.output.waitFor(WAITING, 1, deadline)) {
      console.error("demo: the receiver did not join the group");
      return false;
    }
    const sent = new TextDecoder().decode(
      (await command(toolCommand("send", [])).output()).stdout,
    );
    await receiver.output.waitFor(WAITING, 2, deadline);
    console.log("== terminal 1: mcast-recv ==");
    console.log(receiver.output.text.trimEnd());
    console.log("\n== terminal 2: mcast-send ==");
    console.log(sent.trimEnd());
    return sent.includes('received "ack"');
  } finally {
    await stopTool(receiver);
  }
}

const BULLETINS = [
  "09:00 markets open higher",
  "09:05 central bank holds rates",
  "09:12 storm warning for the coast",
];

/** Part 2: reliable mode, two named terminals and a three-line feed. */
async function reliable(deadline: number): Promise<boolean> {
  const names = ["desk-1", "desk-2"];
  const receivers = names.map((name) =>
    startReceiver(["--name", name, "--count", `${BULLETINS.length}`])
  );
  try {
    for (const receiver of receivers) {
      if (!await receiver.output.waitFor(WAITING, 1, deadline)) {
        console.error("demo: a reliable receiver did not join the group");
        return false;
      }
    }
    const [program, ...args] = toolCommand("send", [
      "--reliable",
      "--lines",
      "--receivers",
      names.join(","),
    ]);
    const child = new Deno.Command(program!, {
      args,
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(BULLETINS.join("\n") + "\n"));
    await writer.close();
    const { code, stdout } = await child.output();
    for (const receiver of receivers) await receiver.child.status;
    names.forEach((name, k) => {
      console.log(`\n== terminal ${k + 3}: mcast-recv --name ${name} ==`);
      console.log(receivers[k]!.output.text.trimEnd());
    });
    console.log("\n== terminal 5: mcast-send --reliable --lines ==");
    console.log(new TextDecoder().decode(stdout).trimEnd());
    return code === 0;
  } finally {
    for (const receiver of receivers) await stopTool(receiver);
  }
}

async function run(words: string[]): Promise<string> {
  const { stdout } = await command(words).output();
  return new TextDecoder().decode(stdout).trimEnd();
}

/**
 * Part 3: keys. A group key and a signing key in a temporary directory; a
 * terminal with both, one without any key; an encrypted, signed bulletin.
 */
async function keyed(deadline: number): Promise<boolean> {
  const dir = await Deno.makeTempDir({ prefix: "mcast-demo-" });
  const key = `${dir}/agency.key`;
  const sign = `${dir}/agency-sign.key`;
  const receivers: ToolProcess[] = [];
  try {
    console.log("\n== terminal 6: mcast-send --gen-key, --gen-sign-key ==");
    console.log(await run(toolCommand("send", ["--gen-key", key])));
    console.log(await run(toolCommand("send", ["--gen-sign-key", sign])));
    receivers.push(
      startReceiver([
        "--name",
        "desk-3",
        "--key-file",
        key,
        "--trust",
        `${sign}.pub`,
        "--count",
        "1",
      ]),
      startReceiver(["--name", "intruder"]),
    );
    for (const receiver of receivers) {
      if (!await receiver.output.waitFor(WAITING, 1, deadline)) {
        console.error("demo: a receiver did not join the group");
        return false;
      }
    }
    const [program, ...args] = toolCommand("send", [
      "--reliable",
      "--key-file",
      key,
      "--encrypt",
      "--sign-key",
      sign,
      "--receivers",
      "desk-3",
      "-m",
      "09:30 embargoed: quarterly results",
    ]);
    const { code, stdout } = await new Deno.Command(program!, {
      args,
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).output();
    await receivers[0]!.child.status;
    await stopTool(receivers[1]!);
    console.log("\n== terminal 7: mcast-recv --key-file --trust ==");
    console.log(receivers[0]!.output.text.trimEnd());
    console.log("\n== terminal 8: mcast-recv without the key ==");
    console.log(receivers[1]!.output.text.trimEnd());
    console.log(
      "\n== terminal 9: mcast-send --key-file --encrypt --sign-key ==",
    );
    console.log(new TextDecoder().decode(stdout).trimEnd());
    return code === 0;
  } finally {
    for (const receiver of receivers) await stopTool(receiver);
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Part 4: `mcast-check`, two instances on loopback (unicast ports 4322 and
 * 4323), each probing the other.
 */
async function check(): Promise<boolean> {
  const peers = [["4322", "4323"], ["4323", "4322"]];
  const runs = peers.map(([own, other]) =>
    command(toolCommand("check", [
      "--unicast-port",
      own!,
      "--count",
      "3",
      `127.0.0.1:${other}`,
    ])).output()
  );
  const results = await Promise.all(runs);
  results.forEach((result, k) => {
    console.log(
      `\n== terminal ${k + 10}: mcast-check --unicast-port ${
        peers[k]![0]
      } 127.0.0.1:${peers[k]![1]} ==`,
    );
    console.log(new TextDecoder().decode(result.stdout).trimEnd());
  });
  return results.every((result) => result.code === 0);
}

/**
 * Part 5: `mcast-bridge` relays 224.1.1.1:10000 to 224.1.1.2:10000; a
 * terminal that joined only the second group gets the exercise's datagram
 * and its acknowledgement reaches the sender.
 */
async function bridge(deadline: number): Promise<boolean> {
  const far = startReceiver(["--group", "224.1.1.2", "--count", "1"]);
  const relay = startTool("bridge", [
    "--from",
    "224.1.1.1:10000@127.0.0.1",
    "--to",
    "224.1.1.2:10000@127.0.0.1",
    "--name",
    "bridge-1",
  ]);
  try {
    if (
      !await far.output.waitFor(WAITING, 1, deadline) ||
      !await relay.output.waitFor("bridge bridge-1:", 1, deadline)
    ) {
      console.error("demo: the bridge or the far terminal did not start");
      return false;
    }
    const sent = await run(toolCommand("send", []));
    await far.child.status;
    await stopTool(relay);
    console.log("\n== terminal 12: mcast-recv --group 224.1.1.2 ==");
    console.log(far.output.text.trimEnd());
    console.log(
      "\n== terminal 13: mcast-bridge --from 224.1.1.1:10000@127.0.0.1 --to 224.1.1.2:10000@127.0.0.1 ==",
    );
    console.log(relay.output.text.trimEnd());
    console.log("\n== terminal 14: mcast-send (to 224.1.1.1) ==");
    console.log(sent);
    return sent.includes('received "ack"');
  } finally {
    await stopTool(far);
    await stopTool(relay);
  }
}

async function main(): Promise<number> {
  const deadline = Date.now() + TIMEOUT_MS;
  if (!await exercise(deadline)) return 1;
  console.log("\n-- reliable mode: numbered, repaired, acknowledged --");
  if (!await reliable(Date.now() + TIMEOUT_MS)) return 1;
  console.log("\n-- keys: authenticated, encrypted, signed --");
  if (!await keyed(Date.now() + TIMEOUT_MS)) return 1;
  console.log("\n-- mcast-check: does multicast work between these hosts? --");
  if (!await check()) return 1;
  console.log("\n-- mcast-bridge: one group relayed onto another --");
  return await bridge(Date.now() + TIMEOUT_MS) ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
