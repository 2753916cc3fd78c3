/**
 * Tests of the key files (`lib/security/keys.ts`): generated group and signing keys
 * (content, exact file modes under any umask, no overwriting), the checks on
 * reading them (modes others can read, the wrong kind of key, damaged and
 * missing files), the signing key's public half and signatures that verify
 * with it, and that no message ever shows key material.
 *
 * Every message is compared literally; every one is also recorded and
 * checked against every secret key of this file.
 *
 * @module
 */

import assert from "node:assert/strict";
import { McastError } from "../../lib/errors.ts";
import {
  ED25519_KEY_SIZE,
  generateKeyFile,
  GROUP_KEY_SIZE,
  KeyError,
  readGroupKey,
  readPublicKey,
  readSigningKey,
  toHex,
} from "../../lib/security/keys.ts";
import { withTempDir } from "../_tools.ts";

const PREFIX = "mcast_keys_test_";
const KEY_LINE =
  /^mcast-key-v1 (group|ed25519-private|ed25519-public) ([0-9a-f]{64})\n$/;

/** The hex of every secret key this file made or wrote. */
const secrets = new Set<string>();
/** Every error message this file produced. */
const messages: string[] = [];

/** Asserts that `text` contains none of the secret keys seen so far. */
function assertNoSecret(text: string, what: string): void {
  for (const secret of secrets) {
    assert.ok(
      !text.toLowerCase().includes(secret),
      `${what} shows key material: ${text}`,
    );
  }
}

/** Checks a thrown value: a KeyError, exit code 2, one line, no key. */
function checkKeyError(error: unknown, message: string | RegExp): true {
  assert.ok(error instanceof KeyError, `not a KeyError: ${error}`);
  assert.ok(error instanceof McastError);
  assert.equal(error.name, "KeyError");
  assert.equal(error.exitCode, 2);
  messages.push(error.message);
  assertNoSecret(error.message, "message");
  assert.ok(!/[\n\r]/.test(error.message), `one line: ${error.message}`);
  if (typeof message === "string") {
    assert.equal(error.message, message);
  } else {
    assert.match(error.message, message);
  }
  return true;
}

/** Asserts that `fn` throws a {@linkcode KeyError} with exactly `message`. */
function assertKeyError(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (error: unknown) => checkKeyError(error, message));
}

/** Asserts that `fn` rejects with a {@linkcode KeyError} with exactly `message`. */
async function assertKeyRejects(
  fn: () => Promise<unknown>,
  message: string | RegExp,
): Promise<void> {
  await assert.rejects(fn, (error: unknown) => checkKeyError(error, message));
}

/** The kind and hex of a key file, checking its one line. */
async function keyLine(path: string): Promise<{ kind: string; hex: string }> {
  const text = await Deno.readTextFile(path);
  const match = KEY_LINE.exec(text);
  assert.ok(match, `not one key line: ${JSON.stringify(text)}`);
  return { kind: match[1]!, hex: match[2]! };
}

/** A file's permission bits. */
async function modeOf(path: string): Promise<number> {
  const mode = (await Deno.stat(path)).mode;
  assert.notEqual(mode, null);
  return mode! & 0o777;
}

/** Writes `text` to a new file with exactly `mode`. */
async function writeFile(path: string, text: string, mode = 0o600) {
  await Deno.writeTextFile(path, text, { mode });
  await Deno.chmod(path, mode);
}

/** Generates a group key at `dir/name` and records it as a secret. */
async function groupKey(dir: string, name = "group.key"): Promise<string> {
  const path = `${dir}/${name}`;
  assert.deepEqual(await generateKeyFile(path), { path });
  secrets.add((await keyLine(path)).hex);
  return path;
}

/** Generates a signing key at `dir/name` and records it as a secret. */
async function signingKey(
  dir: string,
  name = "sign.key",
): Promise<{ path: string; pub: string; publicKey: string }> {
  const path = `${dir}/${name}`;
  const made = await generateKeyFile(path, { kind: "ed25519" });
  secrets.add((await keyLine(path)).hex);
  const pub = `${path}.pub`;
  assert.equal(made.path, path);
  assert.equal(made.publicPath, pub);
  assert.match(made.publicKey ?? "", /^[0-9a-f]{64}$/);
  return { path, pub, publicKey: made.publicKey! };
}

/** Runs `fn` with the process umask set to `mask`, restored afterwards. */
async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const old = Deno.umask(mask);
  try {
    return await fn();
  } finally {
    Deno.umask(old);
  }
}

const POSIX = Deno.build.os !== "windows";

/** `text` as a regular expression that matches it literally. */
function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

Deno.test("a group key file is one line with 32 random bytes, mode 0600", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const path = await groupKey(dir);
    const { kind, hex } = await keyLine(path);
    assert.equal(kind, "group");
    assert.notEqual(hex, "0".repeat(64));
    if (POSIX) assert.equal(await modeOf(path), 0o600);
    const key = readGroupKey(path);
    assert.equal(key.bytes.length, GROUP_KEY_SIZE);
    assert.equal(toHex(key.bytes), hex);
    // Two keys differ.
    const other = await groupKey(dir, "other.key");
    assert.notEqual((await keyLine(other)).hex, hex);
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).toSorted(),
      ["group.key", "other.key"],
    );
  });
});

Deno.test("a signing key file holds the seed, mode 0600, and PATH.pub the public key, mode 0644", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const { path, pub, publicKey } = await signingKey(dir);
    const secret = await keyLine(path);
    const open = await keyLine(pub);
    assert.equal(secret.kind, "ed25519-private");
    assert.equal(open.kind, "ed25519-public");
    assert.equal(open.hex, publicKey);
    assert.notEqual(secret.hex, open.hex);
    if (POSIX) {
      assert.equal(await modeOf(path), 0o600);
      assert.equal(await modeOf(pub), 0o644);
    }
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).toSorted(),
      ["sign.key", "sign.key.pub"],
    );
  });
});

Deno.test({
  name:
    "key files get exactly 0600 and 0644 under a permissive or a strict umask",
  ignore: !POSIX,
  async fn() {
    await withTempDir(PREFIX, async (dir) => {
      for (const mask of [0o000, 0o002, 0o077, 0o277]) {
        const name = `m${mask.toString(8)}`;
        const [group, signing] = await withUmask(mask, async () => [
          await groupKey(dir, `${name}.key`),
          await signingKey(dir, `${name}.sign`),
        ]);
        assert.equal(await modeOf(group), 0o600, `group key, umask ${name}`);
        assert.equal(await modeOf(signing.path), 0o600, `signing, ${name}`);
        assert.equal(await modeOf(signing.pub), 0o644, `public, ${name}`);
        // And they read back.
        assert.equal(readGroupKey(group).bytes.length, GROUP_KEY_SIZE);
        await readSigningKey(signing.path);
      }
    });
  },
});

Deno.test("an existing key file is never overwritten", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const path = await groupKey(dir);
    const before = await Deno.readTextFile(path);
    await assertKeyRejects(
      () => generateKeyFile(path),
      `Key file ${path} already exists: refusing to overwrite a key`,
    );
    await assertKeyRejects(
      () => generateKeyFile(path, { kind: "ed25519" }),
      `Key file ${path} already exists: refusing to overwrite a key`,
    );
    assert.equal(await Deno.readTextFile(path), before);
    if (POSIX) assert.equal(await modeOf(path), 0o600);

    const signing = await signingKey(dir);
    const secret = await Deno.readTextFile(signing.path);
    const open = await Deno.readTextFile(signing.pub);
    await assertKeyRejects(
      () => generateKeyFile(signing.path, { kind: "ed25519" }),
      `Key file ${signing.path} already exists: refusing to overwrite a key`,
    );
    assert.equal(await Deno.readTextFile(signing.path), secret);
    assert.equal(await Deno.readTextFile(signing.pub), open);

    // Any existing file, not only a key, is kept.
    const notes = `${dir}/notes.txt`;
    await writeFile(notes, "my notes\n", 0o644);
    await assertKeyRejects(
      () => generateKeyFile(notes),
      `Key file ${notes} already exists: refusing to overwrite a key`,
    );
    assert.equal(await Deno.readTextFile(notes), "my notes\n");
    if (POSIX) assert.equal(await modeOf(notes), 0o644);
  });
});

Deno.test("a signing key whose PATH.pub exists is refused and leaves no file behind", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const path = `${dir}/sign.key`;
    await writeFile(`${path}.pub`, "someone's public key\n", 0o644);
    await assertKeyRejects(
      () => generateKeyFile(path, { kind: "ed25519" }),
      `Key file ${path}.pub already exists: refusing to overwrite a key`,
    );
    assert.equal(
      await Deno.readTextFile(`${path}.pub`),
      "someone's public key\n",
    );
    // A private key without its public half would make the next attempt
    // fail on the private key instead.
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name),
      ["sign.key.pub"],
    );
  });
});

Deno.test("a key file cannot be written into a missing directory", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const path = `${dir}/missing/group.key`;
    await assertKeyRejects(
      () => generateKeyFile(path),
      new RegExp(
        `^Cannot write key file ${escape(path)}: no such file or directory`,
      ),
    );
  });
});

Deno.test({
  name: "a secret key file others can read is refused; 0600 and 0400 are read",
  ignore: !POSIX,
  async fn() {
    await withTempDir(PREFIX, async (dir) => {
      const path = await groupKey(dir);
      const signing = await signingKey(dir);
      const hex = (await keyLine(path)).hex;
      for (const mode of [0o640, 0o644, 0o604, 0o660, 0o606, 0o620]) {
        const octal = `0${mode.toString(8)}`;
        await Deno.chmod(path, mode);
        assertKeyError(
          () => readGroupKey(path),
          `Key file ${path} can be read by others (mode ${octal}): run chmod 600 ${path}`,
        );
        await Deno.chmod(signing.path, mode);
        await assertKeyRejects(
          () => readSigningKey(signing.path),
          `Key file ${signing.path} can be read by others (mode ${octal}): run chmod 600 ${signing.path}`,
        );
      }
      for (const mode of [0o600, 0o400, 0o700]) {
        await Deno.chmod(path, mode);
        assert.equal(toHex(readGroupKey(path).bytes), hex, mode.toString(8));
        await Deno.chmod(signing.path, mode);
        const key = await readSigningKey(signing.path);
        assert.equal(toHex(key.publicKey), signing.publicKey);
      }
      // A public key file is not secret: 0644 is fine.
      assert.equal(toHex(readPublicKey(signing.pub)), signing.publicKey);
    });
  },
});

Deno.test("a key file of the wrong kind is named as such", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const group = await groupKey(dir);
    const signing = await signingKey(dir);
    assertKeyError(
      () => readGroupKey(signing.path),
      `Key file ${signing.path} holds an ed25519-private key, not a group key`,
    );
    await assertKeyRejects(
      () => readSigningKey(group),
      `Key file ${group} holds a group key, not an ed25519-private key`,
    );
    assertKeyError(
      () => readPublicKey(group),
      `Public key file ${group} holds a group key, not an ed25519-public key`,
    );
    assertKeyError(
      () => readPublicKey(signing.path),
      `Public key file ${signing.path} holds an ed25519-private key, not an ed25519-public key`,
    );
    // A public key file where a secret one belongs, as generated (0644) and
    // made private (0600): the same message, not advice to chmod it.
    for (const mode of [0o644, 0o600]) {
      await Deno.chmod(signing.pub, mode);
      assertKeyError(
        () => readGroupKey(signing.pub),
        `Key file ${signing.pub} holds an ed25519-public key, not a group key`,
      );
      await assertKeyRejects(
        () => readSigningKey(signing.pub),
        `Key file ${signing.pub} holds an ed25519-public key, not an ed25519-private key`,
      );
    }
  });
});

Deno.test("a damaged key file is refused without showing its content", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const hex = (await keyLine(await groupKey(dir))).hex;
    const path = `${dir}/damaged.key`;
    const cases: [string, string][] = [
      [`mcast-key-v1 group ${hex.slice(0, 62)}\n`, "damaged"],
      [`mcast-key-v1 group ${hex.slice(0, 63)}\n`, "damaged"],
      [`mcast-key-v1 group ${hex}00\n`, "damaged"],
      [`mcast-key-v1 group ${hex.slice(0, 63)}g\n`, "damaged"],
      [`mcast-key-v1 group 0x${hex.slice(2)}\n`, "damaged"],
      ["", "not"],
      ["\n", "not"],
      ["hello world\n", "not"],
      [`${hex}\n`, "not"],
      [`group ${hex}\n`, "not"],
      [`mcast-key-v2 group ${hex}\n`, "not"],
      [`MCAST-KEY-V1 group ${hex}\n`, "not"],
      [`mcast-key-v1 group ${hex} extra\n`, "not"],
      [`mcast-key-v1 group\n`, "not"],
      [`mcast-key-v1 group ${hex}\nmcast-key-v1 group ${hex}\n`, "not"],
      ["-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n", "not"],
    ];
    for (const [text, problem] of cases) {
      await Deno.remove(path).catch(() => {});
      await writeFile(path, text);
      assertKeyError(
        () => readGroupKey(path),
        problem === "damaged"
          ? `Key file ${path} is damaged: the key must be 64 hex digits`
          : `Key file ${path} is not an mcast key`,
      );
    }
    // Bytes that are not UTF-8 at all.
    await Deno.remove(path);
    await Deno.writeFile(path, new Uint8Array([0xff, 0xfe, 0x00, 0x01]), {
      mode: 0o600,
    });
    await Deno.chmod(path, 0o600);
    assertKeyError(
      () => readGroupKey(path),
      `Key file ${path} is not an mcast key`,
    );
  });
});

Deno.test("a key file's content is not shown even where its kind should be", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const hex = (await keyLine(await groupKey(dir))).hex;
    const path = `${dir}/swapped.key`;
    // Fields in the wrong order, a hand-edited kind: the message must name
    // the file, and never show the 64 hex digits in it.
    for (
      const text of [
        `mcast-key-v1 ${hex} group\n`,
        `mcast-key-v1 ${hex} ${hex}\n`,
        `mcast-key-v1 ${hex.toUpperCase()} group\n`,
      ]
    ) {
      await Deno.remove(path).catch(() => {});
      await writeFile(path, text);
      assert.throws(
        () => readGroupKey(path),
        (error: unknown) => {
          assert.ok(error instanceof KeyError, `not a KeyError: ${error}`);
          assert.ok(
            error.message.startsWith(`Key file ${path} `),
            error.message,
          );
          assert.ok(
            !error.message.toLowerCase().includes(hex),
            `message shows the key: ${error.message}`,
          );
          return true;
        },
      );
    }
  });
});

Deno.test("a missing key file is named", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const path = `${dir}/none.key`;
    assertKeyError(
      () => readGroupKey(path),
      `Key file ${path} does not exist`,
    );
    await assertKeyRejects(
      () => readSigningKey(path),
      `Key file ${path} does not exist`,
    );
    assertKeyError(
      () => readPublicKey(`${path}.pub`),
      `Key file ${path}.pub does not exist`,
    );
  });
});

Deno.test("readSigningKey gives the .pub file's key and a private key that signs", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const signing = await signingKey(dir);
    const key = await readSigningKey(signing.path);
    assert.equal(key.publicKey.length, ED25519_KEY_SIZE);
    assert.equal(toHex(key.publicKey), signing.publicKey);
    assert.equal(toHex(key.publicKey), (await keyLine(signing.pub)).hex);
    assert.equal(key.privateKey.type, "private");
    assert.equal(key.privateKey.algorithm.name, "Ed25519");
    assert.deepEqual(key.privateKey.usages, ["sign"]);

    const data = new TextEncoder().encode("mcast-v1 signature test");
    const signature = new Uint8Array(
      await crypto.subtle.sign("Ed25519", key.privateKey, data),
    );
    assert.equal(signature.length, 64);
    const other = await signingKey(dir, "other.key");
    const cases = [
      [signing.publicKey, true],
      [signing.publicKey.toUpperCase(), true],
      [` ${signing.publicKey}\n`, true],
      [signing.pub, true],
      [other.publicKey, false],
      [other.pub, false],
    ] as const;
    for (const [value, valid] of cases) {
      const bytes = readPublicKey(value);
      assert.equal(bytes.length, ED25519_KEY_SIZE);
      const publicKey = await crypto.subtle.importKey(
        "raw",
        bytes as Uint8Array<ArrayBuffer>,
        { name: "Ed25519" },
        false,
        ["verify"],
      );
      assert.equal(
        await crypto.subtle.verify("Ed25519", publicKey, signature, data),
        valid,
        value,
      );
    }
    // A changed message does not verify.
    const changed = data.slice();
    changed[0]! ^= 1;
    assert.equal(
      await crypto.subtle.verify(
        "Ed25519",
        await crypto.subtle.importKey(
          "raw",
          readPublicKey(signing.pub) as Uint8Array<ArrayBuffer>,
          { name: "Ed25519" },
          false,
          ["verify"],
        ),
        signature,
        changed,
      ),
      false,
    );
  });
});

Deno.test("readPublicKey takes 64 hex digits or a .pub file, nothing else", async () => {
  await withTempDir(PREFIX, async (dir) => {
    const signing = await signingKey(dir);
    assert.equal(toHex(readPublicKey(signing.publicKey)), signing.publicKey);
    for (
      const value of [
        signing.publicKey.slice(0, 63),
        `${signing.publicKey}0`,
        `0x${signing.publicKey}`,
      ]
    ) {
      assertKeyError(
        () => readPublicKey(value),
        `Key file ${value} does not exist`,
      );
    }
    const damaged = `${dir}/damaged.pub`;
    await writeFile(
      damaged,
      `mcast-key-v1 ed25519-public ${signing.publicKey.slice(1)}\n`,
      0o644,
    );
    assertKeyError(
      () => readPublicKey(damaged),
      `Public key file ${damaged} is damaged: the key must be 64 hex digits`,
    );
    await Deno.remove(damaged);
    await writeFile(damaged, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 me@host\n");
    assertKeyError(
      () => readPublicKey(damaged),
      `Public key file ${damaged} is not an mcast key`,
    );
  });
});

Deno.test("no message of this file showed a secret key", () => {
  assert.ok(secrets.size > 0, "keys were made");
  assert.ok(messages.length > 0, "messages were checked");
  for (const message of messages) assertNoSecret(message, "message");
});
