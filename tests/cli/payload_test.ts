import assert from "node:assert/strict";
import { UsageError } from "../../lib/errors.ts";
import { MAX_PAYLOAD } from "../../lib/cli/options.ts";
import {
  FILE_BODY_THRESHOLD,
  loadPayload,
  openFileBody,
  readLines,
} from "../../lib/cli/payload.ts";
import { createHash } from "node:crypto";

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** A stream of the given chunks that records whether it was cancelled. */
function chunkStream(
  chunks: Uint8Array[],
): {
  stream: ReadableStream<Uint8Array>;
  cancelled: () => boolean;
} {
  let index = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = chunks[index++];
      if (chunk === undefined) controller.close();
      else controller.enqueue(chunk);
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { stream, cancelled: () => cancelled };
}

async function assertRejectsUsage(
  promise: Promise<unknown>,
  message: string,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof UsageError, `not a UsageError: ${error}`);
    assert.equal(error.message, message);
    assert.equal(error.exitCode, 2);
    return true;
  });
}

const TOO_LARGE_STDIN =
  "Payload from standard input is too large: more than 65507 bytes (one datagram carries at most 65507)";

Deno.test("text payloads are encoded as UTF-8", async () => {
  assert.deepEqual(
    await loadPayload({ kind: "text", text: "very important data" }),
    utf8("very important data"),
  );
  assert.deepEqual(
    await loadPayload({ kind: "text", text: "é😀" }),
    new Uint8Array([0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80]),
  );
  assert.deepEqual(
    await loadPayload({ kind: "text", text: "" }),
    new Uint8Array(),
  );
});

Deno.test("standard input is read as raw bytes, chunk by chunk", async () => {
  const { stream, cancelled } = chunkStream([
    utf8("very "),
    new Uint8Array([0xff, 0x00]),
    utf8("data\n"),
  ]);
  assert.deepEqual(
    await loadPayload({ kind: "stdin" }, { stdin: stream }),
    new Uint8Array([...utf8("very "), 0xff, 0x00, ...utf8("data\n")]),
  );
  assert.equal(cancelled(), false);
});

Deno.test("empty standard input is an empty payload", async () => {
  const { stream } = chunkStream([]);
  assert.deepEqual(
    await loadPayload({ kind: "stdin" }, { stdin: stream }),
    new Uint8Array(),
  );
});

Deno.test("exactly 65507 bytes of standard input are accepted", async () => {
  const data = new Uint8Array(MAX_PAYLOAD).map((_, k) => k % 251);
  const { stream } = chunkStream([
    data.slice(0, 1000),
    data.slice(1000, 65000),
    data.slice(65000),
  ]);
  const payload = await loadPayload({ kind: "stdin" }, { stdin: stream });
  assert.equal(payload.length, 65507);
  assert.deepEqual(payload, data);
});

Deno.test("65508 bytes of standard input are rejected", async () => {
  const { stream } = chunkStream([new Uint8Array(65508)]);
  await assertRejectsUsage(
    loadPayload({ kind: "stdin" }, { stdin: stream }),
    TOO_LARGE_STDIN,
  );
  const split = chunkStream([new Uint8Array(65507), new Uint8Array(1)]);
  await assertRejectsUsage(
    loadPayload({ kind: "stdin" }, { stdin: split.stream }),
    TOO_LARGE_STDIN,
  );
  // Reading stopped at the byte too many: the rest was cancelled.
  assert.equal(split.cancelled(), true);
});

Deno.test("an endless standard input stops being read past one datagram", async () => {
  let pulls = 0;
  let cancelled = false;
  const endless = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulls += 1;
      controller.enqueue(new Uint8Array(4096));
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  await assertRejectsUsage(
    loadPayload({ kind: "stdin" }, { stdin: endless }),
    TOO_LARGE_STDIN,
  );
  // 16 chunks of 4096 bytes are 65536 > 65507: no more than that is read.
  assert.equal(pulls, 16);
  assert.equal(cancelled, true);
});

Deno.test("a failing standard input is a usage error", async () => {
  const broken = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.error(new Error("device\nnot ready"));
    },
  });
  await assertRejectsUsage(
    loadPayload({ kind: "stdin" }, { stdin: broken }),
    "Cannot read standard input: device not ready",
  );
});

Deno.test("a file's bytes are the payload", async () => {
  const path = await Deno.makeTempFile({ prefix: "mcast_payload_" });
  try {
    const data = new Uint8Array([...utf8("bulletin\n"), 0xff, 0x00, 0x1b]);
    await Deno.writeFile(path, data);
    assert.deepEqual(await loadPayload({ kind: "file", path }), data);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("a file of exactly 65507 bytes is accepted, 65508 rejected", async () => {
  const path = await Deno.makeTempFile({ prefix: "mcast_payload_" });
  try {
    const data = new Uint8Array(MAX_PAYLOAD).map((_, k) => (k * 7) % 256);
    await Deno.writeFile(path, data);
    assert.deepEqual(await loadPayload({ kind: "file", path }), data);
    await Deno.writeFile(path, new Uint8Array(65508));
    await assertRejectsUsage(
      loadPayload({ kind: "file", path }),
      `Payload from file "${path}" is too large: more than 65507 bytes (one datagram carries at most 65507)`,
    );
    await Deno.writeFile(path, new Uint8Array(1_000_000));
    await assertRejectsUsage(
      loadPayload({ kind: "file", path }),
      `Payload from file "${path}" is too large: more than 65507 bytes (one datagram carries at most 65507)`,
    );
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("an empty file is an empty payload", async () => {
  const path = await Deno.makeTempFile({ prefix: "mcast_payload_" });
  try {
    assert.deepEqual(
      await loadPayload({ kind: "file", path }),
      new Uint8Array(),
    );
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("a missing file is a usage error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mcast_payload_" });
  try {
    const path = `${dir}/missing.txt`;
    await assertRejectsUsage(
      loadPayload({ kind: "file", path }),
      `Cannot read file "${path}": no such file`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a directory is a usage error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mcast_payload_" });
  try {
    await assertRejectsUsage(
      loadPayload({ kind: "file", path: dir }),
      `Cannot read file "${dir}": is a directory`,
    );
  } finally {
    await Deno.remove(dir);
  }
});

Deno.test("an injected file opener is used and its errors are mapped", async () => {
  const opened: string[] = [];
  const payload = await loadPayload({ kind: "file", path: "x.txt" }, {
    openFile(path) {
      opened.push(path);
      return Promise.resolve(
        chunkStream([utf8("from "), utf8("opener")]).stream,
      );
    },
  });
  assert.deepEqual(payload, utf8("from opener"));
  assert.deepEqual(opened, ["x.txt"]);
  for (
    const [error, reason] of [
      [new Deno.errors.NotFound("gone"), "no such file"],
      [new Deno.errors.PermissionDenied("EACCES"), "permission denied"],
      [
        new Deno.errors.NotCapable("Requires read access"),
        "read permission not granted (run with --allow-read)",
      ],
      [
        new Deno.errors.NotCapable(
          'Requires all access to "/dev/shm/x", run again with the --allow-all flag',
        ),
        "read permission not granted: Deno opens paths under /dev/ only with --allow-all (run with --allow-all, or use a file elsewhere)",
      ],
      [new Deno.errors.IsADirectory("dir"), "is a directory"],
      [new Error("Input/output\r\nerror"), "Input/output error"],
    ] as const
  ) {
    await assertRejectsUsage(
      loadPayload({ kind: "file", path: "f" }, {
        openFile: () => Promise.reject(error),
      }),
      `Cannot read file "f": ${reason}`,
    );
  }
});

// ---- readLines (--lines) ----------------------------------------------------

/** Reads every line, as text, and the error that ended the reading, if any. */
async function collectLines(
  lines: AsyncGenerator<Uint8Array>,
): Promise<{ lines: string[]; error?: unknown }> {
  const decoder = new TextDecoder();
  const out: string[] = [];
  try {
    for await (const line of lines) out.push(decoder.decode(line));
  } catch (error) {
    return { lines: out, error };
  }
  return { lines: out };
}

function assertUsage(error: unknown, message: string): void {
  assert.ok(error instanceof UsageError, `not a UsageError: ${error}`);
  assert.equal(error.message, message);
  assert.equal(error.exitCode, 2);
}

async function linesOf(
  chunks: string[],
  limit?: number,
): Promise<{ lines: string[]; error?: unknown }> {
  const { stream } = chunkStream(chunks.map(utf8));
  return await collectLines(
    readLines({ kind: "stdin" }, { stdin: stream, limit }),
  );
}

Deno.test("readLines: \\n and \\r\\n endings", async () => {
  assert.deepEqual(await linesOf(["one\ntwo\r\nthree\n"]), {
    lines: ["one", "two", "three"],
  });
  // A CR anywhere but before the LF is part of the line.
  assert.deepEqual(await linesOf(["a\rb\n\rc\r\r\n"]), {
    lines: ["a\rb", "\rc\r"],
  });
});

Deno.test("readLines: a final line without a newline is a bulletin", async () => {
  assert.deepEqual(await linesOf(["one\ntwo"]), { lines: ["one", "two"] });
  assert.deepEqual(await linesOf(["only"]), { lines: ["only"] });
  // A final CR ends the line as CR LF would.
  assert.deepEqual(await linesOf(["one\r\ntwo\r"]), {
    lines: ["one", "two"],
  });
});

Deno.test("readLines: empty lines are empty bulletins", async () => {
  assert.deepEqual(await linesOf(["\n\na\n\r\n"]), {
    lines: ["", "", "a", ""],
  });
  assert.deepEqual(await linesOf(["\n"]), { lines: [""] });
  assert.deepEqual(await linesOf(["\r\n"]), { lines: [""] });
  // Empty input has no line at all; empty chunks change nothing.
  assert.deepEqual(await linesOf([]), { lines: [] });
  assert.deepEqual(await linesOf(["", "", ""]), { lines: [] });
  assert.deepEqual(await linesOf(["", "x", "", "\n", ""]), { lines: ["x"] });
});

Deno.test("readLines: lines keep their raw bytes", async () => {
  const { stream } = chunkStream([
    new Uint8Array([0xff, 0x00, 0x0a, 0xc3]),
    new Uint8Array([0xa9, 0x0d, 0x0a, 0x1b]),
  ]);
  const lines: Uint8Array[] = [];
  for await (const line of readLines({ kind: "stdin" }, { stdin: stream })) {
    lines.push(line);
  }
  assert.deepEqual(lines, [
    new Uint8Array([0xff, 0x00]),
    new Uint8Array([0xc3, 0xa9]),
    new Uint8Array([0x1b]),
  ]);
});

Deno.test("readLines: any chunk boundaries give the same lines", async () => {
  const text = "alpha\r\n\nbeta\n\r\ngamma\r\ndelta";
  const expected = ["alpha", "", "beta", "", "gamma", "delta"];
  assert.deepEqual(await linesOf([text]), { lines: expected });
  // Every way of cutting it in three, including empty pieces and cuts
  // between CR and LF.
  for (let i = 0; i <= text.length; i++) {
    for (let j = i; j <= text.length; j++) {
      const chunks = [text.slice(0, i), text.slice(i, j), text.slice(j)];
      assert.deepEqual(
        await linesOf(chunks),
        { lines: expected },
        JSON.stringify(chunks),
      );
    }
  }
  // One byte at a time.
  assert.deepEqual(await linesOf([...text]), { lines: expected });
});

Deno.test("readLines: a line is yielded before the next chunk is read", async () => {
  let pulls = 0;
  const chunks = [utf8("first\nsec"), utf8("ond\n"), utf8("third")];
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = chunks[pulls++];
      if (chunk === undefined) controller.close();
      else controller.enqueue(chunk);
    },
  }, { highWaterMark: 0 });
  const lines = readLines({ kind: "stdin" }, { stdin: stream });
  const first = await lines.next();
  assert.deepEqual(first, { value: utf8("first"), done: false });
  assert.equal(pulls, 1);
  assert.deepEqual(await lines.next(), { value: utf8("second"), done: false });
  assert.equal(pulls, 2);
  assert.deepEqual(await lines.next(), { value: utf8("third"), done: false });
  assert.deepEqual(await lines.next(), { value: undefined, done: true });
});

Deno.test("readLines: a line over the limit ends the input after the lines before it", async () => {
  const result = await linesOf(["abc\nabcde\nabcdef\nx\n"], 5);
  assert.deepEqual(result.lines, ["abc", "abcde"]);
  assertUsage(
    result.error,
    "Line 3 of standard input is too large: more than 5 bytes (--max-size)",
  );
});

Deno.test("readLines: the limit counts the line without its ending", async () => {
  assert.deepEqual(await linesOf(["abcde\r\nvwxyz\n12345"], 5), {
    lines: ["abcde", "vwxyz", "12345"],
  });
  const empty = await linesOf(["\n\nabcdef"], 5);
  assert.deepEqual(empty.lines, ["", ""]);
  assertUsage(
    empty.error,
    "Line 3 of standard input is too large: more than 5 bytes (--max-size)",
  );
  // A final line's CR is its ending, not part of it.
  assert.deepEqual(await linesOf(["abcde\r"], 5), { lines: ["abcde"] });
  const long = await linesOf(["abcdef\r"], 5);
  assert.deepEqual(long.lines, []);
  assertUsage(
    long.error,
    "Line 1 of standard input is too large: more than 5 bytes (--max-size)",
  );
});

Deno.test("readLines: a line of exactly the limit split between CR and LF", async () => {
  assert.deepEqual(await linesOf(["abcde\r", "\nxy\n"], 5), {
    lines: ["abcde", "xy"],
  });
  assert.deepEqual(await linesOf(["ab", "cde\r", "\n"], 5), {
    lines: ["abcde"],
  });
});

Deno.test("readLines: a long line is caught across chunks, before its end", async () => {
  const result = await linesOf(["ok\nabc", "def", "ghi\n"], 5);
  assert.deepEqual(result.lines, ["ok"]);
  assertUsage(
    result.error,
    "Line 2 of standard input is too large: more than 5 bytes (--max-size)",
  );
  // An endless line stops being read once it is too long.
  let pulls = 0;
  let cancelled = false;
  const endless = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulls += 1;
      controller.enqueue(utf8(pulls === 1 ? "one\ntwo\nxxxx" : "xxxx"));
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  const endlessResult = await collectLines(
    readLines({ kind: "stdin" }, { stdin: endless, limit: 10 }),
  );
  assert.deepEqual(endlessResult.lines, ["one", "two"]);
  assertUsage(
    endlessResult.error,
    "Line 3 of standard input is too large: more than 10 bytes (--max-size)",
  );
  // 4, 8, 12 > 10 bytes of line 3: three reads.
  assert.equal(pulls, 3);
  assert.equal(cancelled, true);
});

Deno.test("readLines: the default limit is one datagram's payload", async () => {
  const ok = "x".repeat(MAX_PAYLOAD);
  const fine = await linesOf([ok + "\n"]);
  assert.equal(fine.error, undefined);
  assert.deepEqual(fine.lines.map((line) => line.length), [MAX_PAYLOAD]);
  const long = await linesOf([ok, "x\n"]);
  assert.deepEqual(long.lines, []);
  assertUsage(
    long.error,
    "Line 1 of standard input is too large: more than 65507 bytes (--max-size)",
  );
});

Deno.test("readLines: stopping early cancels the input", async () => {
  const { stream, cancelled } = chunkStream([
    utf8("one\ntwo\n"),
    utf8("three\n"),
  ]);
  for await (const line of readLines({ kind: "stdin" }, { stdin: stream })) {
    assert.deepEqual(line, utf8("one"));
    break;
  }
  assert.equal(cancelled(), true);
});

Deno.test("readLines: a read error is a usage error after the lines before it", async () => {
  let pulls = 0;
  const broken = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulls += 1;
      if (pulls === 1) controller.enqueue(utf8("one\ntw"));
      else controller.error(new Error("device\nnot ready"));
    },
  }, { highWaterMark: 0 });
  const result = await collectLines(
    readLines({ kind: "stdin" }, { stdin: broken }),
  );
  assert.deepEqual(result.lines, ["one"]);
  assertUsage(result.error, "Cannot read standard input: device not ready");
});

Deno.test("readLines: a file's lines", async () => {
  const path = await Deno.makeTempFile({ prefix: "mcast_lines_" });
  try {
    await Deno.writeFile(path, utf8("first\r\nsecond\n\nlast"));
    assert.deepEqual(
      await collectLines(readLines({ kind: "file", path })),
      { lines: ["first", "second", "", "last"] },
    );
    const result = await collectLines(
      readLines({ kind: "file", path }, { limit: 5 }),
    );
    assert.deepEqual(result.lines, ["first"]);
    assertUsage(
      result.error,
      `Line 2 of file "${path}" is too large: more than 5 bytes (--max-size)`,
    );
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("readLines: a missing file is a usage error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mcast_lines_" });
  try {
    const path = `${dir}/missing.txt`;
    const result = await collectLines(readLines({ kind: "file", path }));
    assert.deepEqual(result.lines, []);
    assertUsage(result.error, `Cannot read file "${path}": no such file`);
    const opened = await collectLines(
      readLines({ kind: "file", path: "f" }, {
        openFile: () => Promise.reject(new Deno.errors.NotFound("gone")),
      }),
    );
    assertUsage(opened.error, `Cannot read file "f": no such file`);
  } finally {
    await Deno.remove(dir);
  }
});

Deno.test("readLines: text yields its lines", async () => {
  assert.deepEqual(
    await collectLines(
      readLines({ kind: "text", text: "one\r\ntwo\n\nthree\n" }),
    ),
    { lines: ["one", "two", "", "three"] },
  );
});

// ---- loadPayload with a bulletin's limit (--reliable) ----------------------

Deno.test("loadPayload: a larger limit accepts more than one datagram", async () => {
  const data = new Uint8Array(100_000).map((_, k) => k % 253);
  const { stream } = chunkStream([data.slice(0, 70_000), data.slice(70_000)]);
  assert.deepEqual(
    await loadPayload({ kind: "stdin" }, {
      stdin: stream,
      limit: 100_000,
      limitName: "--max-size is 100000",
    }),
    data,
  );
});

Deno.test("loadPayload: limit and limitName name the bound in the error", async () => {
  const exact = chunkStream([utf8("0123456789")]);
  assert.deepEqual(
    await loadPayload({ kind: "stdin" }, {
      stdin: exact.stream,
      limit: 10,
      limitName: "--max-size is 10",
    }),
    utf8("0123456789"),
  );
  const over = chunkStream([
    utf8("01234"),
    utf8("56789"),
    utf8("x"),
    utf8("y"),
  ]);
  await assertRejectsUsage(
    loadPayload({ kind: "stdin" }, {
      stdin: over.stream,
      limit: 10,
      limitName: "--max-size is 10",
    }),
    "Payload from standard input is too large: more than 10 bytes (--max-size is 10)",
  );
  // Reading stopped at the byte too many.
  assert.equal(over.cancelled(), true);
  const path = await Deno.makeTempFile({ prefix: "mcast_payload_" });
  try {
    await Deno.writeFile(path, new Uint8Array(11));
    await assertRejectsUsage(
      loadPayload({ kind: "file", path }, {
        limit: 10,
        limitName: "--max-size is 10",
      }),
      `Payload from file "${path}" is too large: more than 10 bytes (--max-size is 10)`,
    );
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("openFileBody: a large file is hashed, then read in order in pieces; small ones are loaded whole", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mcast_body_" });
  try {
    const bytes = new Uint8Array(FILE_BODY_THRESHOLD + 12345);
    for (let k = 0; k < bytes.length; k++) {
      bytes[k] = (k * 7 + (k >> 11)) & 0xff;
    }
    await Deno.writeFile(`${dir}/big`, bytes);
    await Deno.writeFile(`${dir}/small`, bytes.subarray(0, 1000));
    const limits = {
      limit: 16 * 1024 * 1024,
      limitName: "--max-size is 16777216",
    };
    const body = await openFileBody(`${dir}/big`, limits);
    assert.ok(body);
    try {
      assert.equal(body.size, bytes.length);
      assert.deepEqual(
        await body.sha256(),
        new Uint8Array(createHash("sha256").update(bytes).digest()),
      );
      const copy = new Uint8Array(bytes.length);
      for (let at = 0; at < bytes.length; at += 1024 * 1024) {
        body.read(
          at,
          copy.subarray(at, Math.min(at + 1024 * 1024, bytes.length)),
        );
      }
      assert.deepEqual(copy, bytes);
    } finally {
      body.close();
      body.close();
    }
    assert.equal(await openFileBody(`${dir}/small`, limits), undefined);
    assert.equal(await openFileBody(dir, limits), undefined);
    await assert.rejects(
      () =>
        openFileBody(`${dir}/big`, {
          limit: 1000,
          limitName: "--max-size is 1000",
        }),
      new UsageError(
        `Payload from file "${dir}/big" is too large: more than 1000 bytes (--max-size is 1000)`,
      ),
    );
    await assert.rejects(
      () => openFileBody(`${dir}/none`, limits),
      new UsageError(`Cannot read file "${dir}/none": no such file`),
    );
    // A file cut short while being sent ends the send with a clear error.
    const cut = await openFileBody(`${dir}/big`, limits);
    assert.ok(cut);
    try {
      await Deno.truncate(`${dir}/big`, 100);
      assert.throws(
        () => cut.read(0, new Uint8Array(1000)),
        {
          message:
            `File "${dir}/big" changed while being sent: it ends before ${bytes.length} bytes`,
        },
      );
    } finally {
      cut.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
