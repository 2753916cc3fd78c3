import assert from "node:assert/strict";
import { UsageError } from "../lib/errors.ts";
import { MAX_PAYLOAD } from "../lib/options.ts";
import { loadPayload } from "../lib/payload.ts";

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
