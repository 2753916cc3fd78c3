/**
 * Helpers of the hot standby's process tests (loopback and namespaces): the
 * feed, and the exact checks of what the standby and the receivers print
 * when a primary is killed mid-feed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { WAITING } from "./_exercise.ts";
import { withPath } from "./_reliable.ts";

/** Line `n` of a feed (from 1). */
export function feedLine(n: number): string {
  return `bulletin ${String(n).padStart(4, "0")} of the feed`;
}

/** A feed of `count` lines, each ending with a newline. */
export function feedText(count: number): string {
  let text = "";
  for (let n = 1; n <= count; n++) text += `${feedLine(n)}\n`;
  return text;
}

/** What the standby's `took over` line says. */
export interface Takeover {
  session: string;
  seq: number;
  bulletin: number;
  /** Seconds of silence before it took over, as printed. */
  silence: number;
  held: number;
}

/**
 * Checks the standby's first three lines (standing by, following the
 * primary's session from `primary`, took over) and returns the takeover.
 *
 * @param stdout The standby's standard output.
 * @param to `GROUP:PORT` as the standby prints it.
 * @param primary The primary's address as the standby prints it, port
 * masked as `PORT`.
 */
export function assertTakeover(
  stdout: string,
  to: string,
  primary: RegExp,
): Takeover {
  const lines = stdout.split("\n");
  assert.equal(
    lines[0],
    `standing by on ${to}: taking over after 1.0 s of silence`,
  );
  const following = /^following session ([0-9a-f]{16}) from (.*)$/.exec(
    lines[1] ?? "",
  );
  assert.ok(following, `no following line in:\n${stdout}`);
  assert.match(following[2]!, primary);
  const took =
    /^took over session ([0-9a-f]{16}) at sequence ([0-9]+) \(bulletin ([0-9]+)\) after ([0-9]+\.[0-9]{3}) s of silence, holding ([0-9]+) datagrams? for repairs$/
      .exec(lines[2] ?? "");
  assert.ok(took, `no took-over line in:\n${stdout}`);
  assert.equal(took[1], following[1], "the session taken over");
  return {
    session: took[1]!,
    seq: Number(took[2]),
    bulletin: Number(took[3]),
    silence: Number(took[4]),
    held: Number(took[5]),
  };
}

/**
 * Checks a receiver's whole output: one session joined at sequence 1 from
 * the primary, bulletins 1 to `count` each exactly once and in order with
 * their exact text, from the primary up to a bulletin before the
 * takeover's and from the standby from there on, then the statistics.
 *
 * @returns The standby's address as the receiver shows it.
 */
export function assertReceiverOutput(
  stdout: string,
  options: {
    name: string;
    count: number;
    session: string;
    primary: string;
    /** Matches the standby's address as the receiver shows it. */
    standby: RegExp;
    takeover: number;
    /** With keys: the statistics name the crypto backend. */
    keyed?: boolean;
  },
): string {
  const { name, count, session, primary } = options;
  const lines = stdout.split("\n");
  assert.equal(lines.pop(), "", `${name}: output ends with a newline`);
  assert.equal(lines.length, 3 + count, `${name}: number of lines`);
  assert.equal(lines[0], WAITING, `${name}: first line`);
  assert.equal(
    lines[1],
    `joined session ${session} from ${primary} at sequence 1`,
    `${name}: session line`,
  );
  // The primary's bulletins, then the standby's: those the primary sent
  // before it died, less the last ones when the standby repaired them (with
  // signatures, the primary's last datagrams wait for a signature that
  // never comes; the standby's repair signs itself).
  const fromOf = (n: number) =>
    /^received bulletin [0-9]+ \([0-9]+ bytes\) from (.*) : /.exec(
      lines[n + 1] ?? "",
    )?.[1];
  let switched = 1;
  while (switched < count && fromOf(switched) === primary) switched += 1;
  assert.ok(
    switched <= options.takeover,
    `${name}: bulletin ${options.takeover} came from the primary`,
  );
  const first = fromOf(switched);
  assert.ok(first, `${name}: no line of bulletin ${switched}`);
  assert.match(first, options.standby, `${name}: the standby's address`);
  assert.notEqual(first, primary);
  for (let n = 1; n <= count; n++) {
    const from: string = n < switched ? primary : first;
    const want: string = `received bulletin ${n} (${
      feedLine(n).length
    } bytes) from ${from} : ${feedLine(n)}`;
    if (lines[n + 1] !== want) {
      assert.equal(lines[n + 1], want, `${name}: line of bulletin ${n}`);
    }
  }
  assert.match(
    lines[2 + count]!,
    withPath(
      new RegExp(
        `^statistics: ${count} bulletins \\([0-9]+ bytes\\), [0-9]+ datagrams, [0-9]+ repaired, [0-9]+ duplicates?, 0 unrecoverable, 0 discarded, [0-9]+ NACKs?, [0-9]+ ACKs?, 0 dropped$`,
      ),
      options.keyed,
    ),
    `${name}: statistics`,
  );
  return first;
}
