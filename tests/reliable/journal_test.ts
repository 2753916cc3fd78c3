/**
 * Tests of the sender's journal (`lib/reliable/journal.ts`): round trips, torn final
 * records, corruption, the directory lock, acknowledgement and compaction,
 * and a process killed with SIGKILL while appending.
 *
 * @module
 */

import assert from "node:assert/strict";
import { killWhenReported, withTempDir } from "../_tools.ts";
import {
  decodeFrame,
  encodeFrame,
  type Frame,
  newSessionId,
} from "../../lib/wire/frame.ts";
import {
  Journal,
  JournalError,
  type JournalMeta,
  type JournalRecovery,
} from "../../lib/reliable/journal.ts";

const META: JournalMeta = {
  session: "0123456789abcdef",
  group: "239.1.2.3",
  port: 41000,
};

/** The payload of packet `seq` in these tests: its length and bytes vary. */
function payload(seq: number): Uint8Array {
  return new Uint8Array(1 + (seq * 37) % 200).fill(seq & 0xff);
}

/** An encoded DATA frame holding bulletin `bulletin` (default: `seq`). */
function packet(
  seq: number,
  bulletin = seq,
  session = META.session,
): Uint8Array {
  const data = payload(seq);
  return encodeFrame({
    type: "data",
    session,
    seq,
    retransmit: false,
    timestamp: 1_700_000_000_000_000 + seq,
    low: 1,
    records: [{ bulletin, total: data.length, offset: 0, data }],
  });
}

function packets(first: number, last: number): Uint8Array[] {
  const list: Uint8Array[] = [];
  for (let seq = first; seq <= last; seq++) list.push(packet(seq));
  return list;
}

/** Size of a packet's record in the log. */
function recordSize(seq: number): number {
  return 4 + packet(seq).length;
}

/** Size of the log's header record for a session. */
function headerSize(acked: number, nextBulletin: number): number {
  return 4 + JSON.stringify({
    format: "mcast-journal",
    version: 1,
    session: META.session,
    group: META.group,
    port: META.port,
    acked,
    nextBulletin,
  }).length;
}

function record(frame: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(4 + frame.length);
  new DataView(bytes.buffer).setUint32(0, frame.length);
  bytes.set(frame, 4);
  return bytes;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

/** Opens the journal in `dir`, recovers it and closes it again. */
function recoverIn(dir: string): JournalRecovery | null {
  using journal = Journal.open(dir);
  return journal.recover();
}

function assertJournalError(fn: () => unknown, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof JournalError, `not a JournalError: ${error}`);
    assert.equal(error.message, message);
    assert.equal(error.exitCode, 1);
    assert.ok(!error.message.includes("\n"));
    return true;
  });
}

async function names(dir: string): Promise<string[]> {
  const entries = await Array.fromAsync(Deno.readDir(dir));
  return entries.map((entry) => entry.name).sort();
}

Deno.test("open creates the directory with mode 0700; an empty journal recovers to null", async () => {
  await withTempDir("mcast_journal_test_", async (dir) => {
    const path = `${dir}/a/b/journal`;
    {
      using journal = Journal.open(path);
      assert.equal(journal.recover(), null);
      assert.equal(journal.path, `${path}/journal`);
    }
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o700);
    assert.deepEqual(await names(path), ["lock"]);
    assert.equal(await Deno.readTextFile(`${path}/lock`), "", "closed cleanly");
  });
});

Deno.test("begin, append, close, recover: the same packets, sequence and bulletin", async () => {
  await withTempDir("mcast_journal_test_", async (dir) => {
    const written = packets(1, 10);
    {
      using journal = Journal.open(dir);
      assert.equal(journal.recover(), null);
      journal.begin(META);
      journal.append(written.slice(0, 1));
      journal.append([]);
      journal.append(written.slice(1, 7));
      journal.append(written.slice(7));
      assert.ok((await Deno.readTextFile(`${dir}/lock`)).startsWith(
        `${Deno.pid}\n`,
      ));
    }
    const size = headerSize(0, 1) +
      written.reduce((n, bytes) => n + 4 + bytes.length, 0);
    assert.equal((await Deno.stat(`${dir}/journal`)).size, size);
    assert.deepEqual(recoverIn(dir), {
      meta: META,
      packets: written,
      nextSeq: 11,
      nextBulletin: 11,
      acked: 0,
    });
  });
});

Deno.test("a recovered session continues: appends after recover() are kept", async () => {
  await withTempDir("mcast_journal_test_", (dir) => {
    {
      using journal = Journal.open(dir);
      journal.begin(META);
      journal.append(packets(1, 3));
    }
    {
      using journal = Journal.open(dir);
      const recovery = journal.recover();
      assert.equal(recovery?.nextSeq, 4);
      journal.append(packets(4, 6));
      journal.markAcked(2);
    }
    const recovery = recoverIn(dir);
    assert.deepEqual(recovery?.packets, packets(3, 6));
    assert.equal(recovery?.nextSeq, 7);
    assert.equal(recovery?.acked, 2);
  });
});

Deno.test("a begun session without packets is recovered empty", async () => {
  await withTempDir("mcast_journal_test_", (dir) => {
    {
      using journal = Journal.open(dir);
      journal.begin(META);
    }
    assert.deepEqual(recoverIn(dir), {
      meta: META,
      packets: [],
      nextSeq: 1,
      nextBulletin: 1,
      acked: 0,
    });
  });
});

Deno.test("nextBulletin is 1 + the highest bulletin in any record, packed or fragmented", async () => {
  await withTempDir("mcast_journal_test_", (dir) => {
    const packed = encodeFrame({
      type: "data",
      session: META.session,
      seq: 1,
      retransmit: false,
      timestamp: 0,
      low: 1,
      records: [1, 2, 3].map((bulletin) => ({
        bulletin,
        total: 1,
        offset: 0,
        data: new Uint8Array([bulletin]),
      })),
    });
    const fragment = encodeFrame({
      type: "data",
      session: META.session,
      seq: 2,
      retransmit: false,
      timestamp: 0,
      low: 1,
      records: [{
        bulletin: 4,
        total: 3000,
        offset: 0,
        digest: new Uint8Array(32),
        data: new Uint8Array(1000),
      }],
    });
    {
      using journal = Journal.open(dir);
      journal.begin(META);
      journal.append([packed, fragment]);
    }
    const recovery = recoverIn(dir);
    assert.equal(recovery?.nextBulletin, 5);
    assert.deepEqual(recovery?.packets, [packed, fragment]);
  });
});

Deno.test("finish removes the session: the next run recovers nothing and may begin", async () => {
  await withTempDir("mcast_journal_test_", async (dir) => {
    using journal = Journal.open(dir);
    journal.begin(META);
    journal.append(packets(1, 5));
    journal.finish();
    assert.deepEqual(await names(dir), ["lock"]);
    assertJournalError(
      () => journal.append(packets(6, 6)),
      `Cannot append in journal "${dir}": no session begun or recovered`,
    );
    assert.equal(journal.recover(), null);
    const other = { ...META, session: newSessionId() };
    journal.begin(other);
    journal.close();
    assert.deepEqual(recoverIn(dir)?.meta, other);
  });
});

Deno.test("begin refuses to discard an unfinished session that was not recovered", async () => {
  await withTempDir("mcast_journal_test_", (dir) => {
    {
      using journal = Journal.open(dir);
      journal.begin(META);
      journal.append(packets(1, 2));
    }
    const other = { ...META, session: "fedcba9876543210" };
    {
      using journal = Journal.open(dir);
      assertJournalError(
        () => journal.begin(other),
        `Journal "${dir}" holds an unfinished session: recover it first`,
      );
      assert.equal(journal.recover()?.nextSeq, 3);
      journal.begin(other); // Abandoning it on purpose.
    }
    assert.deepEqual(recoverIn(dir), {
      meta: other,
      packets: [],
      nextSeq: 1,
      nextBulletin: 1,
      acked: 0,
    });
  });
});

Deno.test("append and begin reject what recovery could not read back", async () => {
  await withTempDir("mcast_journal_test_", (dir) => {
    using journal = Journal.open(dir);
    assertJournalError(
      () => journal.append(packets(1, 1)),
      `Cannot append in journal "${dir}": no session begun or recovered`,
    );
    assertJournalError(
      () => journal.begin({ ...META, session: "xyz" }),
      `Cannot begin journal "${dir}": session id must be 16 lowercase hex digits`,
    );
    assertJournalError(
      () => journal.begin({ ...META, port: 0 }),
      `Cannot begin journal "${dir}": port must be a whole number from 1 to 65535`,
    );
    journal.begin(META);
    journal.append(packets(1, 2));
    const heartbeat = encodeFrame({
      type: "heartbeat",
      session: META.session,
      seq: 3,
      final: false,
      timestamp: 0,
      low: 1,
    });
    const bad: [Uint8Array[], string][] = [
      [[packet(4)], "packet 0 is not DATA frame 3"],
      [[packet(3), packet(5)], "packet 1 is not DATA frame 4"],
      [[packet(2)], "packet 0 is not DATA frame 3"],
      [[packet(3, 3, "fedcba9876543210")], "packet 0 is not DATA frame 3"],
      [[heartbeat], "packet 0 is not DATA frame 3"],
      [[new TextEncoder().encode("plain")], "packet 0 is not DATA frame 3"],
    ];
    for (const [list, why] of bad) {
      assertJournalError(
        () => journal.append(list),
        `Cannot append to journal "${dir}": ${why} of session ${META.session}`,
      );
    }
    journal.append(packets(3, 3));
    journal.close();
    assert.deepEqual(recoverIn(dir)?.packets, packets(1, 3));
  });
});

Deno.test("a torn final record, cut at every byte, is truncated and the log goes on", async () => {
  await withTempDir("mcast_journal_test_", async (dir) => {
    {
      using journal = Journal.open(dir);
      journal.begin(META);
      journal.append(packets(1, 4));
      journal.markAcked(1);
      journal.append(packets(5, 5));
    }
    const path = `${dir}/journal`;
    const whole = await Deno.readFile(path);
    const lastStart = whole.length - recordSize(5);
    for (let cut = lastStart; cut < whole.length; cut++) {
      await Deno.writeFile(path, whole.subarray(0, cut));
      {
        using journal = Journal.open(dir);
        assert.deepEqual(journal.recover(), {
          meta: META,
          packets: packets(2, 4),
          nextSeq: 5,
          nextBulletin: 5,
          acked: 1,
        }, `cut at ${cut}`);
        assert.equal((await Deno.stat(path)).size, lastStart);
        journal.append(packets(5, 6));
      }
      assert.deepEqual(recoverIn(dir)?.packets, packets(2, 6));
    }
    // A torn acknowledgement mark: the packets stay unacknowledged.
    await Deno.writeFile(path, whole.subarray(0, lastStart - 1));
    const recovery = recoverIn(dir);
    assert.deepEqual(recovery?.packets, packets(1, 4));
    assert.equal(recovery?.acked, 0);
  });
});

Deno.test("a tail of zero bytes (unwritten blocks after a power loss) is truncated", async () => {
  await withTempDir("mcast_journal_test_", async (dir) => {
    {
      using journal = Journal.open(dir);
      journal.begin(META);
      journal.append(packets(1, 3));
    }
    const path = `${dir}/journal`;
    const whole = await Deno.readFile(path);
    for (const zeros of [1, 3, 4, 5, 4096]) {
      await Deno.writeFile(path, concat(whole, new Uint8Array(zeros)));
      assert.deepEqual(recoverIn(dir)?.packets, packets(1, 3));
      assert.deepEqual(await Deno.readFile(path), whole);
    }
  });
});

Deno.test("a leftover journal.tmp from a crash is removed and changes nothing", async () => {
  await withTempDir("mcast_journal_test_", async (dir) => {
    {
      using journal = Journal.open(dir);
      journal.begin(META);
      journal.append(packets(1, 3));
    }
    await Deno.writeFile(`${dir}/journal.tmp`, new Uint8Array([0, 0, 1]));
    assert.deepEqual(recoverIn(dir)?.packets, packets(1, 3));
    assert.deepEqual(await names(dir), ["journal", "lock"]);
    // A session whose first write was interrupted before its rename: none.
    await Deno.remove(`${dir}/journal`);
    await Deno.writeFile(`${dir}/journal.tmp`, new Uint8Array([0, 0]));
    assert.equal(recoverIn(dir), null);
    assert.deepEqual(await names(dir), ["lock"]);
  });
});

Deno.test("corrupt journals give one-line JournalErrors naming the file and offset", async () => {
  await withTempDir("mcast_journal_test_", async (dir) => {
    {
      using journal = Journal.open(dir);
      journal.begin(META);
    }
    const path = `${dir}/journal`;
    const header = await Deno.readFile(path);
    const h = header.length;
    const one = record(packet(1));
    const heartbeat = encodeFrame({
      type: "heartbeat",
      session: META.session,
      seq: 1,
      final: false,
      timestamp: 0,
      low: 1,
    });
    const ack = (seq: number, name: string): Uint8Array =>
      record(encodeFrame({
        type: "ack",
        session: META.session,
        seq,
        name,
        ranges: [],
      }));
    const huge = new Uint8Array(8);
    new DataView(huge.buffer).setUint32(0, 0x10_0000);
    const wrongVersion = new TextEncoder().encode(
      new TextDecoder().decode(header.subarray(4)).replace(
        '"version":1',
        '"version":2',
      ),
    );
    const cases: [Uint8Array, number, string][] = [
      [new Uint8Array(0), 0, "no header"],
      [new Uint8Array([0, 0, 0]), 0, "no header"],
      [header.subarray(0, h - 1), 0, "no header"],
      [
        concat(new Uint8Array([0, 0, 0, 2]), new TextEncoder().encode("{}")),
        0,
        "not an mcast journal header",
      ],
      [record(wrongVersion), 0, "not an mcast journal header"],
      [concat(header, huge, one), h, "record length 1048576"],
      [
        concat(header, new Uint8Array([0, 0, 0, 0, 1]), one),
        h,
        "record length 0",
      ],
      [
        concat(header, record(new TextEncoder().encode("hello"))),
        h,
        "record is not a frame",
      ],
      [
        concat(header, record(packet(1).subarray(0, 30))),
        h,
        "record is not a frame",
      ],
      [
        concat(header, one, record(heartbeat)),
        h + one.length,
        "record is not a DATA frame but heartbeat",
      ],
      [
        concat(header, one, ack(1, "somebody")),
        h + one.length,
        "record is not a DATA frame but ack",
      ],
      [
        concat(header, record(packet(2))),
        h,
        "DATA frame 2 where 1 was expected",
      ],
      [
        concat(header, one, one),
        h + one.length,
        "DATA frame 1 where 2 was expected",
      ],
      [
        concat(header, one, record(packet(3))),
        h + one.length,
        "DATA frame 3 where 2 was expected",
      ],
      [
        concat(header, record(packet(1, 1, "fedcba9876543210"))),
        h,
        "frame of another session fedcba9876543210",
      ],
      [
        concat(header, one, ack(2, "journal")),
        h + one.length,
        "acknowledgement of 2 before DATA frame 2",
      ],
    ];
    for (const [bytes, offset, why] of cases) {
      await Deno.writeFile(path, bytes);
      using journal = Journal.open(dir);
      assertJournalError(
        () => journal.recover(),
        `Journal file "${path}" is corrupt at offset ${offset}: ${why}`,
      );
      assert.deepEqual(await Deno.readFile(path), bytes, "left as it was");
    }
  });
});

Deno.test("a second open of the same journal in this process is refused", async () => {
  await withTempDir("mcast_journal_test_", async (dir) => {
    const first = Journal.open(dir);
    try {
      assertJournalError(
        () => Journal.open(dir),
        `Journal "${dir}" is in use by process ${Deno.pid}`,
      );
      assertJournalError(
        () => Journal.open(`${dir}/.`),
        `Journal "${dir}/." is in use by process ${Deno.pid}`,
      );
    } finally {
      first.close();
    }
    first.close(); // A second close does nothing.
    assertJournalError(() => first.recover(), `Journal "${dir}" is closed`);
    using again = Journal.open(dir);
    assert.equal(again.recover(), null);
    assert.equal(await Deno.readTextFile(`${dir}/lock`), `${Deno.pid}\n`);
  });
});

Deno.test("a journal held by another process is refused naming it; once it dies it is taken over", async () => {
  await withTempDir("mcast_journal_test_", async (dir) => {
    const journalDir = `${dir}/journal`;
    const script = `${dir}/holder.ts`;
    await Deno.writeTextFile(
      script,
      `import { Journal } from ${
        JSON.stringify(import.meta.resolve("../../lib/reliable/journal.ts"))
      };
const journal = Journal.open(Deno.args[0]);
journal.begin(${JSON.stringify(META)});
console.log("locked");
setTimeout(() => journal.close(), 60_000);
`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-config",
        "--allow-read",
        "--allow-write",
        script,
        journalDir,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    let text = "";
    let checked = false;
    try {
      for await (
        const chunk of child.stdout.pipeThrough(new TextDecoderStream())
      ) {
        text += chunk;
        if (!checked && text.includes("locked\n")) {
          checked = true;
          try {
            assertJournalError(
              () => Journal.open(journalDir),
              `Journal "${journalDir}" is in use by process ${child.pid}`,
            );
          } finally {
            child.kill("SIGKILL");
          }
        }
      }
    } finally {
      clearTimeout(timer);
      await child.status;
    }
    assert.ok(checked, `holder did not lock: ${await stderr}`);
    await stderr;
    // The holder died without closing: its lock file still names it.
    assert.equal(
      await Deno.readTextFile(`${journalDir}/lock`),
      `${child.pid}\n`,
    );
    using journal = Journal.open(journalDir);
    assert.equal(
      await Deno.readTextFile(`${journalDir}/lock`),
      `${Deno.pid}\n`,
    );
    assert.equal(journal.recover()?.meta.session, META.session);
  });
});

Deno.test("a lock file naming a process that does not exist is taken over", async () => {
  await withTempDir("mcast_journal_test_", async (dir) => {
    await Deno.writeTextFile(`${dir}/lock`, "4194304000\n");
    using journal = Journal.open(dir);
    assert.equal(journal.recover(), null);
    assert.equal(await Deno.readTextFile(`${dir}/lock`), `${Deno.pid}\n`);
  });
});

Deno.test("open refuses a path that is a file", async () => {
  await withTempDir("mcast_journal_test_", async (dir) => {
    await Deno.writeTextFile(`${dir}/file`, "");
    assertJournalError(
      () => Journal.open(`${dir}/file`),
      `Cannot open journal "${dir}/file": not a directory`,
    );
  });
});

Deno.test("markAcked: recovery returns exactly the unacknowledged packets; compaction keeps only them", async () => {
  await withTempDir("mcast_journal_test_", async (dir) => {
    const path = `${dir}/journal`;
    const markSize = 4 + 24 + 1 + "journal".length + 2;
    using journal = Journal.open(dir, { compactAfter: 0 });
    journal.begin(META);
    journal.append(packets(1, 10));
    let size = headerSize(0, 1);
    for (let seq = 1; seq <= 10; seq++) size += recordSize(seq);
    assert.equal((await Deno.stat(path)).size, size);

    journal.markAcked(3); // 3 of 10 records: a mark, no compaction.
    size += markSize;
    assert.equal((await Deno.stat(path)).size, size);
    journal.markAcked(2); // Lower: ignored.
    journal.markAcked(3); // The same: ignored.
    assert.equal((await Deno.stat(path)).size, size);
    assert.deepEqual(
      (({ packets, acked, nextSeq }) => ({ packets, acked, nextSeq }))(
        recoverWithOtherHandle(journal),
      ),
      { packets: packets(4, 10), acked: 3, nextSeq: 11 },
    );

    journal.markAcked(6); // More than half: compacted to packets 7-10.
    size = headerSize(6, 11);
    for (let seq = 7; seq <= 10; seq++) size += recordSize(seq);
    assert.equal((await Deno.stat(path)).size, size);
    assert.deepEqual(recoverWithOtherHandle(journal), {
      meta: META,
      packets: packets(7, 10),
      nextSeq: 11,
      nextBulletin: 11,
      acked: 6,
    });

    journal.append(packets(11, 12));
    journal.markAcked(12); // Everything: only the header is left.
    assert.equal((await Deno.stat(path)).size, headerSize(12, 13));
    journal.append(packets(13, 13));
    assertJournalError(
      () => journal.markAcked(14),
      `Cannot acknowledge in journal "${dir}": packet 14 was never appended`,
    );
    journal.close();
    assert.deepEqual(recoverIn(dir), {
      meta: META,
      packets: packets(13, 13),
      nextSeq: 14,
      nextBulletin: 14,
      acked: 12,
    });
    assert.deepEqual(await names(dir), ["journal", "lock"]);
  });
});

Deno.test("with the default threshold a small log is not compacted, but recovery still skips acknowledged packets", async () => {
  await withTempDir("mcast_journal_test_", async (dir) => {
    const path = `${dir}/journal`;
    {
      using journal = Journal.open(dir);
      journal.begin(META);
      journal.append(packets(1, 20));
      const before = (await Deno.stat(path)).size;
      journal.markAcked(19);
      assert.ok((await Deno.stat(path)).size > before, "a mark was appended");
    }
    const recovery = recoverIn(dir);
    assert.deepEqual(recovery?.packets, packets(20, 20));
    assert.equal(recovery?.acked, 19);
  });
});

Deno.test("compaction of a long log keeps every unacknowledged packet, in order", async () => {
  await withTempDir("mcast_journal_test_", (dir) => {
    const session = newSessionId();
    const meta = { ...META, session };
    {
      using journal = Journal.open(dir, { compactAfter: 4096 });
      journal.begin(meta);
      let next = 1;
      for (let round = 0; round < 200; round++) {
        const batch: Uint8Array[] = [];
        for (let i = 0; i < 1 + round % 5; i++) {
          batch.push(packet(next, next, session));
          next++;
        }
        journal.append(batch);
        if (round % 3 === 2) journal.markAcked(Math.max(0, next - 8));
      }
      journal.markAcked(next - 8);
    }
    const recovery = recoverIn(dir)!;
    assert.equal(recovery.packets.length, 7);
    assert.equal(recovery.acked, recovery.nextSeq - 8);
    recovery.packets.forEach((bytes, i) => {
      assert.deepEqual(
        bytes,
        packet(recovery.acked + 1 + i, undefined, session),
      );
    });
  });
});

/** Recovers the journal's directory through a second handle, briefly. */
function recoverWithOtherHandle(journal: Journal): JournalRecovery {
  // The lock belongs to `journal`: read the log as a restarted sender would,
  // by copying it into a fresh directory.
  const copy = Deno.makeTempDirSync({ prefix: "mcast_journal_copy_" });
  try {
    Deno.copyFileSync(journal.path, `${copy}/journal`);
    const recovery = recoverIn(copy);
    assert.ok(recovery !== null);
    return recovery;
  } finally {
    Deno.removeSync(copy, { recursive: true });
  }
}

const APPENDER = `
import { Journal } from ${
  JSON.stringify(import.meta.resolve("../../lib/reliable/journal.ts"))
};
import { encodeFrame } from ${
  JSON.stringify(import.meta.resolve("../../lib/wire/frame.ts"))
};
const session = "00000000deadbeef";
const journal = Journal.open(Deno.args[0], { compactAfter: 2048 });
journal.begin({ session, group: "239.1.2.3", port: 41000 });
const encoder = new TextEncoder();
let next = 1;
for (let round = 1; ; round++) {
  const batch = [];
  for (let i = 0; i < 1 + round % 4; i++, next++) {
    const data = new Uint8Array(1 + (next * 37) % 200).fill(next & 0xff);
    batch.push(encodeFrame({
      type: "data", session, seq: next, retransmit: false,
      timestamp: 1_700_000_000_000_000 + next, low: 1,
      records: [{ bulletin: next, total: data.length, offset: 0, data }],
    }));
  }
  journal.append(batch);
  if (round % 5 === 0 && next > 10) journal.markAcked(next - 10);
  Deno.stdout.writeSync(encoder.encode((next - 1) + "\\n"));
}
`;

Deno.test("an appender killed with SIGKILL leaves a contiguous, decodable journal", async () => {
  await withTempDir("mcast_journal_test_", async (dir) => {
    const script = `${dir}/appender.ts`;
    await Deno.writeTextFile(script, APPENDER);
    const session = "00000000deadbeef";
    for (const target of [1, 150, 1500, 4000]) {
      const journalDir = `${dir}/run-${target}`;
      const reported = await killWhenReported(script, journalDir, target);
      const recovery = recoverIn(journalDir);
      assert.ok(recovery !== null);
      // Everything the child reported appended is there, plus at most the
      // batch it was writing when it died (up to 4 packets).
      const last = recovery.nextSeq - 1;
      assert.ok(
        last >= reported && last <= reported + 4,
        `recovered up to ${last}, reported ${reported}`,
      );
      assert.equal(recovery.nextBulletin, recovery.nextSeq);
      assert.ok(recovery.acked <= Math.max(0, last - 1));
      assert.equal(recovery.packets.length, last - recovery.acked);
      recovery.packets.forEach((bytes, i) => {
        const seq = recovery.acked + 1 + i;
        const decoded = decodeFrame(bytes);
        assert.equal(decoded.kind, "frame");
        const frame = (decoded as { frame: Frame }).frame;
        assert.equal(frame.type, "data");
        assert.equal(frame.seq, seq);
        assert.deepEqual(bytes, packet(seq, seq, session));
      });
      // The recovered journal goes on where the dead sender stopped.
      {
        using journal = Journal.open(journalDir);
        journal.recover();
        journal.append([packet(last + 1, last + 1, session)]);
        journal.finish();
      }
      assert.equal(recoverIn(journalDir), null);
    }
  });
});
