/**
 * The C ceiling: iperf2 and sockperf over loopback multicast, with every
 * interface explicit (iperf2 server `-B group%lo`, client `-B 127.0.0.1
 * -T 1`; sockperf `--mc-rx-if 127.0.0.1 --mc-tx-if 127.0.0.1 --mc-ttl 1`).
 * As root each run also happens inside a private network namespace
 * (`unshare -n`, then `ip link set lo up`), where no IGMP report can reach
 * a real interface. The output parsers are pure and unit-tested.
 *
 * @module
 */

import { lossyRun, type RunSummary } from "./report.ts";

/** The two external tools. */
export type Tool = "iperf2" | "sockperf";

/** What the iperf2 server reports for a UDP stream (CSV, `-y C`). */
export interface IperfServerReport {
  /** Seconds of the interval. */
  seconds: number;
  /** Bytes received. */
  bytes: number;
  /** Datagrams lost (sequence gaps). */
  lost: number;
  /** Datagrams sent, as the sequence numbers say. */
  total: number;
}

/**
 * Parses the iperf2 server's CSV report: the last line with loss figures
 * (`…,interval,bytes,bits/s,jitter,lost,total,loss%,out-of-order`).
 *
 * @param text The server's output.
 * @returns The report, or null when there is none.
 */
export function parseIperfServer(text: string): IperfServerReport | null {
  let found: IperfServerReport | null = null;
  for (const line of text.split("\n")) {
    const f = line.trim().split(",");
    if (f.length < 13) continue;
    const interval = /^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$/.exec(f[6] ?? "");
    const total = Number(f[11]);
    if (!interval || !(total > 0)) continue;
    found = {
      seconds: Number(interval[2]) - Number(interval[1]),
      bytes: Number(f[7]),
      lost: Number(f[10]),
      total,
    };
  }
  return found;
}

/**
 * Parses the iperf2 client's CSV report (`…,interval,bytes,bits/s,…`).
 *
 * @param text The client's output.
 * @returns Seconds and bytes sent, or null.
 */
export function parseIperfClient(
  text: string,
): { seconds: number; bytes: number } | null {
  let found: { seconds: number; bytes: number } | null = null;
  for (const line of text.split("\n")) {
    const f = line.trim().split(",");
    if (f.length < 9) continue;
    const interval = /^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$/.exec(f[6] ?? "");
    if (!interval) continue;
    found = {
      seconds: Number(interval[2]) - Number(interval[1]),
      bytes: Number(f[7]),
    };
  }
  return found;
}

/**
 * Parses sockperf's client summary (`Total of N messages sent in T sec`).
 *
 * @param text The client's output.
 * @returns Messages and seconds, or null.
 */
export function parseSockperfClient(
  text: string,
): { sent: number; seconds: number } | null {
  const match = /Total of (\d+) messages sent in ([\d.]+) sec/.exec(text);
  if (!match) return null;
  return { sent: Number(match[1]), seconds: Number(match[2]) };
}

/**
 * Parses sockperf's server summary (`Total N messages received`).
 *
 * @param text The server's output.
 * @returns Messages received, or null.
 */
export function parseSockperfServer(text: string): number | null {
  const match = /Total (\d+) messages received/.exec(text);
  return match ? Number(match[1]) : null;
}

/** The group's entry in `/proc/net/igmp`: the address as little-endian hex. */
export function igmpHex(group: string): string {
  return group.split(".").reverse().map((octet) =>
    Number(octet).toString(16).padStart(2, "0").toUpperCase()
  ).join("");
}

/**
 * Whether a program can be started.
 *
 * @param program The program.
 * @param args Arguments that make it print and exit (e.g. `-v`).
 * @returns True when it ran.
 */
export async function installed(
  program: string,
  args: string[],
): Promise<boolean> {
  try {
    await new Deno.Command(program, {
      args,
      stdout: "null",
      stderr: "null",
      signal: AbortSignal.timeout(5000),
    }).output();
    return true;
  } catch {
    return false;
  }
}

/** One run of an external tool. */
export interface ExternalOptions {
  /** Multicast group (239.255.x.y). */
  group: string;
  /** UDP port. */
  port: number;
  /** Datagram size. */
  size: number;
  /** Offered datagrams per second; null = flat out. */
  rate: number | null;
  /** Seconds of traffic (whole seconds: sockperf takes no fraction). */
  seconds: number;
  /** Run inside `unshare -n` (root). */
  namespace: boolean;
}

const SERVER_MARK = "=====SERVER=====";

/** The shell script that runs server and client, both bounded by `timeout`. */
function script(tool: Tool, options: ExternalOptions): string {
  const { group, port, size, rate, seconds } = options;
  const hex = igmpHex(group);
  const limit = seconds + 6;
  const server = tool === "iperf2"
    ? `iperf -s -u -B ${group}%lo -p ${port} -y C`
    : `sockperf sr -i ${group} -p ${port} --mc-rx-if 127.0.0.1 --mc-tx-if 127.0.0.1 --mc-ttl 1`;
  const client = tool === "iperf2"
    ? `iperf -c ${group} -u -B 127.0.0.1 -T 1 -p ${port} -l ${size} -b ${
      rate === null ? "100G" : `${Math.round(rate)}pps`
    } -t ${seconds} -y C`
    : `sockperf tp -i ${group} -p ${port} --mc-tx-if 127.0.0.1 --mc-ttl 1 -m ${size} -t ${seconds} --mps ${
      rate === null ? "max" : Math.round(rate)
    } --dontwarmup`;
  // The server's report: iperf2 prints it when the client's FIN arrives;
  // sockperf on SIGINT.
  const settle = tool === "iperf2"
    ? `i=0; while [ ! -s "$OUT" ] && [ $i -lt 100 ]; do i=$((i+1)); sleep 0.02; done`
    : `sleep 0.1`;
  return [
    "set -u",
    options.namespace ? "ip link set lo up" : ":",
    `OUT=$(mktemp)`,
    `timeout ${limit} ${server} > "$OUT" 2>&1 &`,
    "S=$!",
    // Wait (bounded) until the server has joined the group.
    `i=0; until grep -q ${hex} /proc/net/igmp; do i=$((i+1)); if [ $i -gt 250 ]; then echo "server did not join" >&2; kill $S; exit 3; fi; sleep 0.02; done`,
    `timeout ${limit} ${client} 2>&1`,
    settle,
    "kill -INT $S 2>/dev/null; wait $S 2>/dev/null",
    `echo ${SERVER_MARK}`,
    `cat "$OUT"; rm -f "$OUT"`,
  ].join("\n");
}

/**
 * Runs one measurement of iperf2 or sockperf.
 *
 * @param tool Which.
 * @param options Group, port, size, rate, time.
 * @returns The run (received rate, loss), judged by the loss policy.
 * @throws {Error} When the tools fail or print nothing usable.
 */
export async function runExternal(
  tool: Tool,
  options: ExternalOptions,
): Promise<RunSummary> {
  const words = options.namespace
    ? ["unshare", "-n", "sh", "-c", script(tool, options)]
    : ["sh", "-c", script(tool, options)];
  const output = await new Deno.Command(words[0]!, {
    args: words.slice(1),
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout((options.seconds + 15) * 1000),
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  const [clientText, serverText = ""] = text.split(SERVER_MARK);
  const fail = (what: string) =>
    new Error(
      `${tool}: ${what}: ${
        (clientText + serverText + new TextDecoder().decode(output.stderr))
          .trim().slice(-600)
      }`,
    );
  if (tool === "iperf2") {
    const server = parseIperfServer(serverText);
    const client = parseIperfClient(clientText ?? "");
    if (!server || !client) throw fail("no report");
    const received = server.total - server.lost;
    return lossyRun({
      offeredRate: options.rate,
      sent: server.total,
      received,
      sentPerSecond: client.bytes / options.size / client.seconds,
      receivedPerSecond: received / server.seconds,
      bytesPerSecond: received * options.size / server.seconds,
    });
  }
  const client = parseSockperfClient(clientText ?? "");
  const received = parseSockperfServer(serverText);
  if (!client || received === null) throw fail("no report");
  // sockperf's server reports no time: the client's is used.
  return lossyRun({
    offeredRate: options.rate,
    sent: client.sent,
    received: Math.min(received, client.sent),
    sentPerSecond: client.sent / client.seconds,
    receivedPerSecond: Math.min(received, client.sent) / client.seconds,
    bytesPerSecond: Math.min(received, client.sent) * options.size /
      client.seconds,
  });
}
