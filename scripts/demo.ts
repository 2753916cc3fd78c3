/**
 * `deno task demo`: the exercise on loopback. Starts a receiver, waits until
 * it has joined, runs the sender, waits until the receiver has acknowledged,
 * stops it, and prints both terminals' output. Exits 1 if the sender got no
 * acknowledgement.
 *
 * @module
 */

import { ROOT, toolCommand } from "./tools.ts";

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

async function main(): Promise<number> {
  const deadline = Date.now() + TIMEOUT_MS;
  const receiver = command(toolCommand("recv", [])).spawn();
  const received = new Output();
  const reading = received.read(receiver.stdout);
  try {
    if (!await received.waitFor(WAITING, 1, deadline)) {
      console.error("demo: the receiver did not join the group");
      return 1;
    }
    const sent = new TextDecoder().decode(
      (await command(toolCommand("send", [])).output()).stdout,
    );
    await received.waitFor(WAITING, 2, deadline);
    console.log("== terminal 1: mcast-recv ==");
    console.log(received.text.trimEnd());
    console.log("\n== terminal 2: mcast-send ==");
    console.log(sent.trimEnd());
    return sent.includes('received "ack"') ? 0 : 1;
  } finally {
    receiver.kill("SIGINT");
    await receiver.status;
    await reading;
  }
}

if (import.meta.main) Deno.exit(await main());
