/**
 * `mcast-check`'s round-trip times against a bare Deno UDP ping-pong
 * measured in the same run, on loopback, at the same interval: the ratio
 * tells what the check's own path adds (about 1 when it adds nothing; the
 * absolute figures depend on the machine's wake-up latency).
 *
 * ```
 * deno run --allow-all --unstable-net bench/check_rtt.ts [--io deno|native]
 *   [--count 30] [--interval 0.05]
 * ```
 *
 * Not part of `deno task bench`; it spawns two `mcast-check` instances on
 * 127.0.0.1 (ports 4401, 4402) and a bare pair (ports 4411, 4412).
 *
 * @module
 */

import { parseArgs } from "node:util";

const ROOT = new URL("..", import.meta.url).pathname;
const CHECK_FLAGS = [
  "run",
  "--unstable-net",
  "--allow-net",
  "--allow-read",
  "--allow-sys=networkInterfaces,hostname",
  "--allow-ffi",
];

/** Round trips, ms: min, median, mean, max. */
interface Rtts {
  min: number;
  median: number;
  avg: number;
  max: number;
}

function summary(values: number[]): Rtts {
  const sorted = values.toSorted((a, b) => a - b);
  return {
    min: sorted[0]!,
    median: sorted[sorted.length >> 1]!,
    avg: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    max: sorted.at(-1)!,
  };
}

/** The bare pair's echo side: answers every datagram until the last. */
async function echo(port: number): Promise<void> {
  const conn = Deno.listenDatagram({
    transport: "udp",
    hostname: "127.0.0.1",
    port,
  });
  const buffer = new Uint8Array(64);
  try {
    while (true) {
      const [data, from] = await conn.receive(buffer);
      await conn.send(data, from);
      if (data[8] === 1) break;
    }
  } finally {
    conn.close();
  }
}

/** The bare pair's pinging side: `count` pings, `intervalMs` apart. */
async function ping(
  port: number,
  target: number,
  count: number,
  intervalMs: number,
): Promise<number[]> {
  const conn = Deno.listenDatagram({
    transport: "udp",
    hostname: "127.0.0.1",
    port,
  });
  const to = { transport: "udp" as const, hostname: "127.0.0.1", port: target };
  const buffer = new Uint8Array(64);
  const rtts: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
      const bytes = new Uint8Array(28);
      bytes[8] = i === count - 1 ? 1 : 0;
      const start = performance.now();
      await conn.send(bytes, to);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        conn.receive(buffer),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error("bare ping: no answer")),
            2000,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      rtts.push(performance.now() - start);
    }
  } finally {
    conn.close();
  }
  return rtts;
}

async function bare(count: number, intervalMs: number): Promise<Rtts> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-net",
      "--allow-net",
      new URL(import.meta.url).pathname,
      "--echo",
    ],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    await new Promise((resolve) => setTimeout(resolve, 700));
    // The first ping wakes cold code on both sides: left out, as below.
    const rtts = await ping(4411, 4412, count + 1, intervalMs);
    return summary(rtts.slice(1));
  } finally {
    await child.status;
  }
}

async function check(
  io: string,
  count: number,
  interval: string,
): Promise<Rtts> {
  function spawn(port: number, peer: number): Deno.ChildProcess {
    return new Deno.Command(Deno.execPath(), {
      args: [
        ...CHECK_FLAGS,
        "check.ts",
        "--json",
        "--io",
        io,
        "-u",
        String(port),
        "-c",
        String(count),
        "--interval",
        interval,
        `127.0.0.1:${peer}`,
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
  }
  const outputs = await Promise.all([
    spawn(4401, 4402).output(),
    spawn(4402, 4401).output(),
  ]);
  // Each instance reports a mean per channel: weigh them equally.
  const avgs: number[] = [];
  const mins: number[] = [];
  const maxes: number[] = [];
  for (const output of outputs) {
    for (const line of new TextDecoder().decode(output.stdout).split("\n")) {
      if (!line.startsWith('{"type":"peer"')) continue;
      const peer = JSON.parse(line);
      for (const channel of [peer.unicast, peer.multicast]) {
        if (channel.rtt === undefined) throw new Error("check: no answers");
        avgs.push(channel.rtt.avg);
        mins.push(channel.rtt.min);
        maxes.push(channel.rtt.max);
      }
    }
  }
  if (avgs.length !== 4) throw new Error("check: missing results");
  return {
    min: Math.min(...mins),
    median: Number.NaN,
    avg: avgs.reduce((a, b) => a + b, 0) / avgs.length,
    max: Math.max(...maxes),
  };
}

function ms(value: number): string {
  return Number.isNaN(value) ? "-" : value.toFixed(3);
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      echo: { type: "boolean" },
      io: { type: "string", default: "deno" },
      count: { type: "string", default: "30" },
      interval: { type: "string", default: "0.05" },
    },
  });
  if (values.echo) {
    await echo(4412);
  } else {
    const count = Number(values.count);
    const intervalMs = Number(values.interval) * 1000;
    const base = await bare(count, intervalMs);
    const measured = await check(values.io, count, values.interval);
    console.log(
      `bare deno ping-pong: rtt min/median/avg/max ${ms(base.min)}/${
        ms(base.median)
      }/${ms(base.avg)}/${ms(base.max)} ms`,
    );
    console.log(
      `mcast-check --io ${values.io}: rtt min/avg/max ${ms(measured.min)}/${
        ms(measured.avg)
      }/${ms(measured.max)} ms`,
    );
    console.log(
      `ratio (check avg / bare avg): ${(measured.avg / base.avg).toFixed(2)}`,
    );
  }
}
