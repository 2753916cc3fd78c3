/**
 * Tests of the receiver's state file (`lib/reliable/state.ts`): round trips, atomic
 * replacement, corrupt files, and a process killed with SIGKILL while
 * saving in a loop.
 *
 * @module
 */

import assert from "node:assert/strict";
import { killWhenReported, withTempDir } from "../_tools.ts";
import {
  loadState,
  type ReceiverState,
  saveState,
  StateError,
} from "../../lib/reliable/state.ts";

const STATE: ReceiverState = {
  version: 1,
  session: "0123456789abcdef",
  next: 42,
  delivered: 17,
  name: "desk-3f9a",
};

function assertStateError(fn: () => unknown, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof StateError, `not a StateError: ${error}`);
    assert.equal(error.message, message);
    assert.equal(error.exitCode, 1);
    assert.ok(!error.message.includes("\n"));
    return true;
  });
}

Deno.test("loadState returns null when the file does not exist", async () => {
  await withTempDir("mcast_state_test_", async (dir) => {
    assert.equal(loadState(`${dir}/missing.json`), null);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), []);
  });
});

Deno.test("saveState then loadState round-trips, one line of JSON", async () => {
  await withTempDir("mcast_state_test_", async (dir) => {
    const path = `${dir}/state.json`;
    saveState(path, STATE);
    assert.deepEqual(loadState(path), STATE);
    assert.equal(
      await Deno.readTextFile(path),
      '{"version":1,"session":"0123456789abcdef","next":42,"delivered":17,"name":"desk-3f9a"}\n',
    );
    const unicode = { ...STATE, name: "ünïcödé-✓", next: 1, delivered: 0 };
    saveState(path, unicode);
    assert.deepEqual(loadState(path), unicode);
    const largest = {
      ...STATE,
      next: Number.MAX_SAFE_INTEGER,
      delivered: Number.MAX_SAFE_INTEGER,
      name: "x".repeat(64),
    };
    saveState(path, largest);
    assert.deepEqual(loadState(path), largest);
    const names = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);
    assert.deepEqual(names, ["state.json"], "no temporary file left behind");
  });
});

Deno.test("loadState ignores extra fields and returns only the known ones", async () => {
  await withTempDir("mcast_state_test_", async (dir) => {
    const path = `${dir}/state.json`;
    await Deno.writeTextFile(path, JSON.stringify({ ...STATE, extra: true }));
    assert.deepEqual(loadState(path), STATE);
  });
});

Deno.test("a leftover .tmp from a crash is ignored and then replaced", async () => {
  await withTempDir("mcast_state_test_", async (dir) => {
    const path = `${dir}/state.json`;
    saveState(path, STATE);
    // A save killed after writing half of the temporary file.
    await Deno.writeTextFile(`${path}.tmp`, '{"version":1,"sess');
    assert.deepEqual(loadState(path), STATE);
    // A save killed after writing the whole temporary file, before renaming.
    await Deno.writeTextFile(
      `${path}.tmp`,
      JSON.stringify({ ...STATE, next: 43 }) + "\n",
    );
    assert.deepEqual(loadState(path), STATE);
    const newer = { ...STATE, next: 44, delivered: 18 };
    saveState(path, newer);
    assert.deepEqual(loadState(path), newer);
    await assert.rejects(Deno.stat(`${path}.tmp`), Deno.errors.NotFound);
    // The very first save, killed before the rename: no state yet.
    const first = `${dir}/first.json`;
    await Deno.writeTextFile(`${first}.tmp`, "");
    assert.equal(loadState(first), null);
  });
});

Deno.test("corrupt state files give one-line StateErrors naming the file", async () => {
  await withTempDir("mcast_state_test_", async (dir) => {
    const path = `${dir}/state.json`;
    const valid = JSON.stringify(STATE);
    const cases: [string | Uint8Array, string][] = [
      ["", "is corrupt: not JSON"],
      ["\n", "is corrupt: not JSON"],
      [valid.slice(0, 30), "is corrupt: not JSON"],
      [new Uint8Array([0x22, 0xff, 0xfe, 0x22]), "is corrupt: not JSON"],
      ["[1,2]", "is corrupt: not a JSON object"],
      ["null", "is corrupt: not a JSON object"],
      ['"text"', "is corrupt: not a JSON object"],
      [
        JSON.stringify({ ...STATE, version: undefined }),
        'is corrupt: "version" is missing',
      ],
      [
        JSON.stringify({ ...STATE, version: 2 }),
        "has format version 2; this mcast reads version 1",
      ],
      [
        JSON.stringify({ ...STATE, version: "1" }),
        'has format version "1"; this mcast reads version 1',
      ],
      [
        JSON.stringify({ ...STATE, session: "0123456789ABCDEF" }),
        'is corrupt: "session" must be 16 lowercase hex digits',
      ],
      [
        JSON.stringify({ ...STATE, session: "0123" }),
        'is corrupt: "session" must be 16 lowercase hex digits',
      ],
      [
        JSON.stringify({ ...STATE, next: 0 }),
        'is corrupt: "next" must be a whole number from 1 to 2^53-1',
      ],
      [
        JSON.stringify({ ...STATE, next: 1.5 }),
        'is corrupt: "next" must be a whole number from 1 to 2^53-1',
      ],
      [
        JSON.stringify({ ...STATE, next: 2 ** 53 }),
        'is corrupt: "next" must be a whole number from 1 to 2^53-1',
      ],
      [
        JSON.stringify({ ...STATE, delivered: -1 }),
        'is corrupt: "delivered" must be a whole number from 0 to 2^53-1',
      ],
      [
        JSON.stringify({ ...STATE, delivered: "17" }),
        'is corrupt: "delivered" must be a whole number from 0 to 2^53-1',
      ],
      [
        JSON.stringify({ ...STATE, name: 7 }),
        'is corrupt: "name" must be a string',
      ],
      [
        JSON.stringify({ ...STATE, name: "" }),
        'is corrupt: "name" must be 1-64 bytes of UTF-8',
      ],
      [
        JSON.stringify({ ...STATE, name: "é".repeat(33) }),
        'is corrupt: "name" must be 1-64 bytes of UTF-8',
      ],
    ];
    for (const [content, why] of cases) {
      if (typeof content === "string") {
        await Deno.writeTextFile(path, content);
      } else {
        await Deno.writeFile(path, content);
      }
      assertStateError(() => loadState(path), `State file "${path}" ${why}`);
    }
  });
});

Deno.test("an unreadable or unwritable state file gives a one-line StateError", async () => {
  await withTempDir("mcast_state_test_", async (dir) => {
    assertStateError(
      () => loadState(dir),
      `Cannot read state file "${dir}": is a directory`,
    );
    const nowhere = `${dir}/no/such/dir/state.json`;
    assertStateError(
      () => saveState(nowhere, STATE),
      `Cannot write state file "${nowhere}": no such file or directory`,
    );
    await Deno.mkdir(`${dir}/taken`);
    assertStateError(
      () => saveState(`${dir}/taken`, STATE),
      `Cannot write state file "${dir}/taken": is a directory`,
    );
  });
});

Deno.test("saveState refuses a state that loadState would reject", async () => {
  await withTempDir("mcast_state_test_", (dir) => {
    const path = `${dir}/state.json`;
    assertStateError(
      () => saveState(path, { ...STATE, next: 0 }),
      `Cannot save state file "${path}": "next" must be a whole number from 1 to 2^53-1`,
    );
    assertStateError(
      () => saveState(path, { ...STATE, version: 2 as 1 }),
      `Cannot save state file "${path}": "version" must be 1`,
    );
    assert.equal(loadState(path), null, "nothing was written");
  });
});

const SAVER = `
import { saveState } from ${
  JSON.stringify(import.meta.resolve("../../lib/reliable/state.ts"))
};
const path = Deno.args[0];
const encoder = new TextEncoder();
for (let next = 1; ; next++) {
  saveState(path, {
    version: 1,
    session: "00000000deadbeef",
    next,
    delivered: next - 1,
    name: "n".repeat(1 + (next % 64)),
  });
  Deno.stdout.writeSync(encoder.encode(next + "\\n"));
}
`;

Deno.test("a saver killed with SIGKILL leaves the old or the new state", async () => {
  await withTempDir("mcast_state_test_", async (dir) => {
    const script = `${dir}/saver.ts`;
    await Deno.writeTextFile(script, SAVER);
    for (const saves of [1, 37, 300]) {
      const path = `${dir}/state-${saves}.json`;
      const reported = await killWhenReported(script, path, saves);
      const state = loadState(path);
      assert.ok(state !== null);
      // Every save the child reported is on disk; at most one more started.
      assert.ok(
        state.next >= reported && state.next <= reported + 1,
        `next ${state.next}, last reported ${reported}`,
      );
      assert.deepEqual(state, {
        version: 1,
        session: "00000000deadbeef",
        next: state.next,
        delivered: state.next - 1,
        name: "n".repeat(1 + (state.next % 64)),
      });
    }
  });
});

Deno.test("the positions of several sessions round-trip after the first session's fields, and are checked", async () => {
  await withTempDir("mcast_state_test_", async (dir) => {
    const path = `${dir}/state.json`;
    const several: ReceiverState = {
      ...STATE,
      sessions: [{ session: "fedcba9876543210", next: 5, delivered: 9 }],
    };
    saveState(path, several);
    assert.equal(
      await Deno.readTextFile(path),
      '{"version":1,"session":"0123456789abcdef","next":42,"delivered":17,"name":"desk-3f9a","sessions":[{"session":"fedcba9876543210","next":5,"delivered":9}]}\n',
    );
    assert.deepEqual(loadState(path), several);
    // One session: the file is as before, without the list.
    saveState(path, { ...STATE, sessions: [] });
    assert.equal(
      await Deno.readTextFile(path),
      JSON.stringify(STATE) + "\n",
    );
    const cases: [unknown, string][] = [
      ["x", `"sessions" must be a list of at most 64 positions`],
      [[1], `"sessions" must hold JSON objects`],
      [
        [{ session: "0123", next: 1, delivered: 0 }],
        `in "sessions": "session" must be 16 lowercase hex digits`,
      ],
      [
        [{ session: "fedcba9876543210", next: 0, delivered: 0 }],
        `in "sessions": "next" must be a whole number from 1 to 2^53-1`,
      ],
    ];
    for (const [sessions, why] of cases) {
      await Deno.writeTextFile(path, JSON.stringify({ ...STATE, sessions }));
      assertStateError(
        () => loadState(path),
        `State file "${path}" is corrupt: ${why}`,
      );
    }
  });
});
