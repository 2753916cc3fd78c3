/**
 * Reliable bulletins over a real kernel path (issue #3): a sender in one
 * network namespace streams 2,000 bulletins of 1,000 bytes at a fixed rate
 * to three receivers in others, behind a bridge (see `_netns.ts`). The
 * bridge port of one receiver is rate-limited with `tbf`, so that bursts
 * overflow its queue and drop; the bridge port of another is set down for
 * two seconds mid-stream, a pulled cable; the third is the control. Every
 * receiver must still deliver every bulletin exactly once and in order,
 * the sender must exit 0 with a report that says what was repaired.
 *
 * Runs only as root with `ip netns` and `tc`; otherwise each test is
 * ignored with a printed reason.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type Host,
  ip,
  type Lab,
  netnsUnavailable,
  tc,
  withLab,
} from "./_netns.ts";
import { assertOk, peer, WAITING } from "./_exercise.ts";
import { withPath } from "./_reliable.ts";
import { type RunningProcess, spawnTool, testPort } from "./_tools.ts";

/** Bulletins per session. */
const BULLETINS = 2000;
/** Bytes per bulletin: one per datagram (two do not fit 1,400 bytes). */
const SIZE = 1000;
/** The sender's `--rate`, in bulletins per second: a 5 s stream. */
const RATE = 400;
/**
 * The shaped receiver's bridge port: 4 Mbit/s is above the stream's
 * average (400 × 1,062 bytes ≈ 3.4 Mbit/s), but its queue holds about
 * 14 KB (4 KB of burst plus 20 ms at the rate), 13 datagrams: the sender's
 * first burst (a tenth of a second's worth, 40 datagrams) and its repair
 * bursts overflow it.
 */
const TBF = "tbf rate 4mbit burst 4kb latency 20ms";
/** How long the cut receiver's link stays down. */
const OUTAGE_MS = 2000;
/** The cut receiver's bulletin at which its link goes down. */
const CUT_AT = 400;
/** Longest the whole session may take, sender start to last exit. */
const SESSION_MS = 40_000;

const skip = await unavailable();
if (skip !== undefined) console.log(`skipped: ${skip}`);

/** Why these tests cannot run here, or `undefined`. */
async function unavailable(): Promise<string | undefined> {
  const reason = await netnsUnavailable();
  if (reason !== undefined) return reason;
  try {
    const status = await new Deno.Command("tc", {
      args: ["-V"],
      stdout: "null",
      stderr: "null",
    }).output();
    return status.success ? undefined : `"tc -V" failed`;
  } catch {
    return "tc is not installed";
  }
}

/** Bulletin `n` (from 1): its number, then letters up to {@linkcode SIZE} bytes. */
function bulletin(n: number): string {
  const head = `bulletin ${String(n).padStart(6, "0")} `;
  const letters = "abcdefghijklmnopqrstuvwxyz";
  let text = head;
  while (text.length < SIZE) text += letters[(n + text.length) % 26];
  return text;
}

/** The sender's standard input: one bulletin per line. */
function feed(): string {
  let text = "";
  for (let n = 1; n <= BULLETINS; n++) text += `${bulletin(n)}\n`;
  return text;
}

/** One variant of the session: the address family's group and addresses. */
interface Variant {
  /** The multicast group. */
  group: string;
  /** The `--interface` of a host's tool. */
  iface: (host: Host) => string;
  /** How a tool on host `on` shows `host`'s address with `port`. */
  show: (host: Host, port: number | string, on: Host) => string;
}

const IPV4: Variant = {
  group: "239.192.51.7",
  iface: (host) => host.ipv4,
  show: (host, port) => peer(host.ipv4, port),
};

const IPV6: Variant = {
  group: "ff02::6d63:7",
  iface: (host) => host.link,
  // A link-local address arrives scoped to the receiving host's link.
  show: (host, port, on) => peer(host.ipv6, port, on.index),
};

/** Counts `received bulletin` lines so far. */
function delivered(process: RunningProcess): number {
  return process.stdout.split("\nreceived bulletin ").length - 1;
}

/**
 * What a process printed, for a failure's message: every line but the
 * bulletins', which are counted instead, and its standard error.
 */
function summary(name: string, process: RunningProcess): string {
  const lines = process.stdout.split("\n");
  const others = lines.filter((line) => !line.startsWith("received bulletin "));
  const last = lines.findLast((line) => line.startsWith("received bulletin "));
  return [
    `--- ${name}: ${delivered(process)} bulletins delivered, last: ${
      last?.slice(0, 60) ?? "none"
    }`,
    ...others,
    ...(process.stderr === "" ? [] : [`stderr: ${process.stderr}`]),
  ].join("\n");
}

/**
 * Runs `check`; when it throws, adds what every process printed to the
 * error's message.
 */
async function explained(
  processes: Record<string, RunningProcess>,
  check: () => Promise<void>,
): Promise<void> {
  try {
    await check();
  } catch (error) {
    const outputs = Object.entries(processes).map(([name, process]) =>
      summary(name, process)
    );
    if (error instanceof Error) {
      error.message = [error.message, ...outputs].join("\n");
    }
    throw error;
  }
}

/** Resolves after `ms` milliseconds (the outage's length: a fault, not a wait for an event). */
function pause(ms: number): Promise<void> {
  return new Promise((wake) => setTimeout(wake, ms));
}

/** Datagrams the root qdisc of `dev` in namespace `ns` dropped. */
async function qdiscDrops(ns: string, dev: string): Promise<number> {
  const [qdisc] = JSON.parse(
    await tc(`-n ${ns} -s -j qdisc show dev ${dev}`),
  ) as { kind: string; drops: number }[];
  assert.ok(qdisc, `no qdisc on ${dev}`);
  assert.equal(qdisc.kind, "tbf");
  return qdisc.drops;
}

/** A receiver's `statistics:` line, parsed. */
interface ReceiverFigures {
  bulletins: number;
  bytes: number;
  datagrams: number;
  repaired: number;
  duplicates: number;
  unrecoverable: number;
  discarded: number;
  nacks: number;
  acks: number;
  dropped: number;
}

const RECEIVER_STATS = withPath(
  new RegExp(
    "^statistics: ([0-9]+) bulletins? \\(([0-9]+) bytes?\\), ([0-9]+) datagrams?, " +
      "([0-9]+) repaired, ([0-9]+) duplicates?, ([0-9]+) unrecoverable, " +
      "([0-9]+) discarded, ([0-9]+) NACKs?, ([0-9]+) ACKs?, ([0-9]+) dropped(?: \\(.*\\))?$",
  ),
);

function receiverFigures(line: string): ReceiverFigures {
  const match = RECEIVER_STATS.exec(line);
  assert.ok(match, `not a receiver statistics line: ${line}`);
  const [
    bulletins,
    bytes,
    datagrams,
    repaired,
    duplicates,
    unrecoverable,
    discarded,
    nacks,
    acks,
    dropped,
  ] = match.slice(1).map(Number) as number[];
  return {
    bulletins: bulletins!,
    bytes: bytes!,
    datagrams: datagrams!,
    repaired: repaired!,
    duplicates: duplicates!,
    unrecoverable: unrecoverable!,
    discarded: discarded!,
    nacks: nacks!,
    acks: acks!,
    dropped: dropped!,
  };
}

/** The sender's `statistics:` line, parsed. */
interface SenderFigures {
  retransmitted: number;
  nacks: number;
  acks: number;
  feedback: number;
  gone: number;
  dropped: number;
}

const SENDER_STATS = withPath(
  new RegExp(
    `^statistics: ${BULLETINS} bulletins \\(${
      BULLETINS * SIZE
    } bytes\\) in ${BULLETINS} datagrams, ([0-9]+) retransmitted, ` +
      "([0-9]+) NACKs?, ([0-9]+) ACKs?, ([0-9]+) feedback frames?, " +
      "([0-9]+) gone notices?, ([0-9]+) dropped(?: \\(.*\\))?$",
  ),
);

function senderFigures(line: string): SenderFigures {
  const match = SENDER_STATS.exec(line);
  assert.ok(match, `not the sender's statistics line: ${line}`);
  const [retransmitted, nacks, acks, feedback, gone, dropped] = match.slice(1)
    .map(Number) as number[];
  return {
    retransmitted: retransmitted!,
    nacks: nacks!,
    acks: acks!,
    feedback: feedback!,
    gone: gone!,
    dropped: dropped!,
  };
}

/**
 * Checks a receiver's whole output: the session joined at sequence 1,
 * bulletins 1 to {@linkcode BULLETINS} each once and in order with their
 * exact text, then its statistics.
 *
 * @returns The statistics.
 */
function assertReceiver(
  stdout: string,
  name: string,
  session: string,
  from: string,
): ReceiverFigures {
  const lines = stdout.split("\n");
  assert.equal(lines.pop(), "", `${name}: output ends with a newline`);
  assert.equal(lines.length, 3 + BULLETINS, `${name}: number of lines`);
  assert.equal(lines[0], WAITING, `${name}: first line`);
  assert.equal(
    lines[1],
    `joined session ${session} from ${from} at sequence 1`,
    `${name}: session line`,
  );
  for (let n = 1; n <= BULLETINS; n++) {
    const want = `received bulletin ${n} (${SIZE} bytes) from ${from} : ${
      bulletin(n)
    }`;
    // One comparison per line would make 2,000 assertions' messages: only
    // a mismatch builds one.
    if (lines[n + 1] !== want) {
      assert.equal(lines[n + 1], want, `${name}: line of bulletin ${n}`);
    }
  }
  return receiverFigures(lines[2 + BULLETINS]!);
}

/**
 * The session: receivers `shaped` (tbf), `cut` (link down 2 s) and
 * `control` on three hosts, a sender streaming to them; every bulletin
 * delivered everywhere, the repairs visible in both tools' statistics.
 */
async function faultySession(lab: Lab, variant: Variant): Promise<void> {
  const [shaped, cut, control] = lab.receivers as [Host, Host, Host];
  const sender = lab.sender;
  const port = String(testPort());
  const common = ["-g", variant.group, "-p", port];
  const receivers = [
    { name: "shaped", host: shaped },
    { name: "cut", host: cut },
    { name: "control", host: control },
  ];
  await tc(
    `-n ${lab.bridge} qdisc add dev ${shaped.bridgePort} root ${TBF}`,
  );
  const started = performance.now();
  function receive(host: Host, name: string): RunningProcess {
    return spawnTool("recv", [
      ...common,
      "-i",
      variant.iface(host),
      "--name",
      name,
      "--count",
      String(BULLETINS),
    ], { prefix: ["ip", "netns", "exec", host.ns] });
  }
  await using one = receive(shaped, "shaped");
  await using two = receive(cut, "cut");
  await using three = receive(control, "control");
  const processes = [one, two, three];
  for (const process of processes) await process.waitForOutput(WAITING);
  const sending = performance.now();
  await using send = spawnTool("send", [
    ...common,
    "-i",
    variant.iface(sender),
    "--reliable",
    "--lines",
    "--expect",
    "3",
    "--rate",
    String(RATE),
    "--deadline",
    "30",
  ], { prefix: ["ip", "netns", "exec", sender.ns], stdin: feed() });

  const named = { sender: send, shaped: one, cut: two, control: three };
  await explained(named, async () => {
    // Mid-stream: the cut receiver has bulletin CUT_AT, then loses its link.
    await two.waitForOutput(`received bulletin ${CUT_AT} `, {
      timeoutMs: 15_000,
    });
    const cutPort = `-n ${lab.bridge} link set ${cut.bridgePort}`;
    await ip(`${cutPort} down`);
    const down = { cut: delivered(two), control: delivered(three) };
    try {
      await pause(OUTAGE_MS);
    } finally {
      await ip(`${cutPort} up`);
    }
    const up = { cut: delivered(two), control: delivered(three) };
    // Still mid-stream when the link returns: the sender has not sent all.
    assert.doesNotMatch(send.stdout, /^sent /m, "the stream ended too soon");
    const outage = {
      cut: up.cut - down.cut,
      control: up.control - down.control,
    };
    // The cut receiver got (almost) nothing while the control one went on:
    // at most what was already in its socket when the link went down.
    assert.ok(
      outage.cut * 10 < outage.control,
      `during the outage the cut receiver delivered ${outage.cut} bulletins, the control one ${outage.control}`,
    );

    const sent = await send.finish(SESSION_MS);
    const results = [];
    for (const process of processes) results.push(await process.finish(10_000));
    const elapsedMs = performance.now() - sending;
    const drops = await qdiscDrops(lab.bridge, shaped.bridgePort);

    assertOk(sent, "sender");
    const lines = sent.stdout.split("\n");
    assert.equal(lines.pop(), "", "sender: output ends with a newline");
    const session = /^session ([0-9a-f]{16}) to /.exec(lines[0]!)?.[1];
    assert.ok(session, `sender: no session line in:\n${sent.stdout}`);
    const to = variant.group.includes(":")
      ? `[${variant.group}]:${port}`
      : `${variant.group}:${port}`;
    assert.equal(lines[0], `session ${session} to ${to}`);
    // With --expect 3 the sender waits for all three before sending.
    assert.deepEqual(
      lines.slice(1, 4).toSorted(),
      receivers.map(({ name, host }) =>
        `receiver ${name} joined from ${variant.show(host, port, sender)}`
      ).toSorted(),
    );
    // A receiver leaves (BYE) once it has every bulletin, which may be
    // before the sender's "sent" line; a BYE that arrives after the report
    // is not shown.
    const leaves = lines.slice(4).filter((line) => /^receiver /.test(line));
    const complete = receivers.map(({ name }) =>
      `receiver ${name} left (up to date)`
    );
    for (const line of leaves) assert.ok(complete.includes(line), line);
    assert.equal(new Set(leaves).size, leaves.length, "a receiver left twice");
    const rest = lines.slice(4).filter((line) => !/^receiver /.test(line));
    assert.equal(rest.length, 6, `sender: lines in:\n${sent.stdout}`);
    assert.equal(
      rest[0],
      `sent ${BULLETINS} bulletins in ${BULLETINS} datagrams, waiting for acknowledgements`,
    );
    const reported = new RegExp(
      `^delivery report for session ${session}: delivered to every receiver in ([0-9]+\\.[0-9]{3}) s$`,
    ).exec(rest[1]!)?.[1];
    assert.ok(reported, `sender: report headline ${rest[1]}`);
    // The report's receivers are sorted by name.
    assert.deepEqual(
      rest.slice(2, 5),
      receivers.toSorted((a, b) => a.name < b.name ? -1 : 1).map((
        { name, host },
      ) =>
        `  ${name} ${
          variant.show(host, port, sender)
        }: complete, has ${BULLETINS} bulletins`
      ),
    );
    const figures = senderFigures(rest[5]!);
    assert.ok(figures.retransmitted > 0, "sender: nothing retransmitted");
    assert.ok(figures.nacks > 0, "sender: no NACK received");
    // The buffer (8 MiB) holds the whole session: nothing is ever gone.
    assert.equal(figures.gone, 0, "sender: gone notices");
    assert.equal(figures.dropped, 0, "sender: dropped");

    const stats: Record<string, ReceiverFigures> = {};
    for (const [k, { name, host }] of receivers.entries()) {
      const result = results[k]!;
      assertOk(result, name);
      const figures = assertReceiver(
        result.stdout,
        name,
        session,
        variant.show(sender, portOf(result.stdout), host),
      );
      assert.equal(figures.bulletins, BULLETINS, `${name}: bulletins`);
      assert.equal(figures.bytes, BULLETINS * SIZE, `${name}: bytes`);
      assert.equal(figures.unrecoverable, 0, `${name}: unrecoverable`);
      assert.equal(figures.discarded, 0, `${name}: discarded`);
      assert.equal(figures.dropped, 0, `${name}: dropped`);
      // One bulletin per datagram: each sequence was kept once (first
      // transmission or repair), every other copy dropped as a duplicate.
      assert.equal(
        figures.datagrams,
        BULLETINS + figures.duplicates,
        `${name}: datagrams`,
      );
      stats[name] = figures;
    }
    // The feedback the sender counted is what the receivers sent (less
    // what was lost while a link was down or arrived after the report):
    // one HELLO each, ACKs, NACKs, and the BYEs (a receiver leaving on its
    // own says goodbye three times; the sender reports it once).
    const sum = (key: "acks" | "nacks") =>
      Object.values(stats).reduce((total, s) => total + s[key], 0);
    assert.ok(figures.acks <= sum("acks"), "sender: more ACKs than sent");
    assert.ok(figures.nacks <= sum("nacks"), "sender: more NACKs than sent");
    const base = figures.acks + figures.nacks + receivers.length;
    assert.ok(
      figures.feedback >= base + leaves.length &&
        figures.feedback <= base + 3 * receivers.length,
      `sender: ${figures.feedback} feedback frames for ${base} ACKs, NACKs and HELLOs and ${leaves.length} receivers seen leaving`,
    );
    assert.ok(drops > 0, "tbf dropped nothing: no burst overflowed its queue");
    for (const name of ["shaped", "cut"]) {
      assert.ok(stats[name]!.repaired > 0, `${name}: nothing repaired`);
      assert.ok(stats[name]!.nacks > 0, `${name}: no NACK sent`);
    }
    // Cut off for 2 s at 400 bulletins/s: hundreds of datagrams to repair.
    assert.ok(
      stats.cut!.repaired >= 100,
      `cut: only ${
        stats.cut!.repaired
      } repaired after a ${OUTAGE_MS} ms outage`,
    );

    const family = variant === IPV4 ? "IPv4" : "IPv6";
    console.log(
      `${family}: ${BULLETINS} bulletins of ${SIZE} bytes at ${RATE}/s to 3 receivers in ${
        (elapsedMs / 1000).toFixed(1)
      } s from the sender's start to the last receiver's exit (session ${reported} s by the sender's report; receivers started ${
        ((sending - started) / 1000).toFixed(1)
      } s before the sender); tbf on ${shaped.bridgePort} (${TBF}) dropped ${drops} datagrams; ${cut.bridgePort} down ${OUTAGE_MS} ms after bulletin ${CUT_AT} (cut delivered ${outage.cut} bulletins meanwhile, control ${outage.control})`,
    );
    console.log(
      `${family}: sender ${figures.retransmitted} retransmitted, ${figures.nacks} NACKs, ${figures.acks} ACKs, ${figures.feedback} feedback frames, ${figures.gone} gone, ${figures.dropped} dropped`,
    );
    for (const { name } of receivers) {
      const s = stats[name]!;
      console.log(
        `${family}: ${name}: ${s.bulletins} bulletins, ${s.datagrams} datagrams, ${s.repaired} repaired, ${s.duplicates} duplicates, ${s.nacks} NACKs, ${s.acks} ACKs, ${s.dropped} dropped`,
      );
    }
  });
}

/** The sender's port, from a receiver's first `received bulletin` line. */
function portOf(stdout: string): number {
  const match =
    /^received bulletin 1 \([0-9]+ bytes\) from \('[^']*', ([0-9]+)/m
      .exec(stdout);
  assert.ok(match, `no "received bulletin 1" line in:\n${stdout}`);
  return Number(match[1]);
}

Deno.test({
  name:
    "IPv4: tbf drops and a 2 s link cut are repaired: every bulletin, once, in order",
  ignore: skip !== undefined,
  fn: () => withLab((lab) => faultySession(lab, IPV4), { receivers: 3 }),
});

Deno.test({
  name:
    "IPv6 link-local group: tbf drops and a 2 s link cut are repaired: every bulletin, once, in order",
  ignore: skip !== undefined,
  fn: () => withLab((lab) => faultySession(lab, IPV6), { receivers: 3 }),
});
