/**
 * The OpenSSL backend in the frame guard (`lib/security/native_crypto.ts`
 * behind `lib/security/guard.ts`): guards on a {@linkcode MemoryNetwork},
 * one per backend, with the same keys and the same fixed clock, put the
 * same bytes on the wire in every mode (authenticated only, encrypted,
 * signed and encrypted), and each backend opens what the other sealed.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Peer } from "../../lib/net/address.ts";
import { encodeFrame, FLAGS, nowMicros } from "../../lib/wire/frame.ts";
import {
  GuardedEndpoint,
  type GuardOptions,
} from "../../lib/security/guard.ts";
import {
  type CryptoBackend,
  type CryptoName,
  WEB_CRYPTO,
} from "../../lib/security/crypto.ts";
import {
  nativeCryptoUnavailable,
  openNativeCrypto,
} from "../../lib/security/native_crypto.ts";
import {
  generateKeyFile,
  type GroupKey,
  readSigningKey,
  type SigningKey,
} from "../../lib/security/keys.ts";
import { MemoryNetwork } from "../../lib/net/memory_net.ts";
import { emptyDrops } from "../../lib/reliable/stats.ts";
import { within } from "../_fakes.ts";

const ignore = nativeCryptoUnavailable() !== undefined;
const SESSION = "0123456789abcdef";
const BASE_PORT = 17980;

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Records of a datagram's worth: about 1,400 bytes, differing per seq. */
function dataFrame(seq: number, time: number, retransmit = false): Uint8Array {
  const data = new Uint8Array(1300 + (seq % 7));
  for (let k = 0; k < data.length; k++) data[k] = (seq * 31 + k * 7) & 0xff;
  return encodeFrame({
    type: "data",
    session: SESSION,
    seq,
    retransmit,
    timestamp: time,
    low: 1,
    records: [{ bulletin: seq, total: data.length, offset: 0, data }],
  });
}

/**
 * What a sender sends: 32 DATA frames (the 32nd is signed when signing),
 * a heartbeat, and a repair of seq 5 (signed by itself).
 */
function frames(time: number): Uint8Array[] {
  const list: Uint8Array[] = [];
  for (let seq = 1; seq <= 32; seq++) list.push(dataFrame(seq, time));
  list.push(encodeFrame({
    type: "heartbeat",
    session: SESSION,
    seq: 32,
    final: false,
    timestamp: time,
    low: 1,
  }));
  list.push(dataFrame(5, time, true));
  return list;
}

interface Mode {
  name: string;
  sender: Omit<GuardOptions, "key" | "dropped" | "crypto">;
  receiver: Omit<GuardOptions, "key" | "dropped" | "crypto">;
}

function modes(signer: SigningKey): Mode[] {
  return [
    { name: "authenticated", sender: {}, receiver: {} },
    { name: "encrypted", sender: { encrypt: true }, receiver: {} },
    {
      name: "signed and encrypted",
      sender: { encrypt: true, signingKey: signer },
      receiver: { trust: [signer.publicKey] },
    },
  ];
}

/** Seals `list` through a guard and returns the bytes as they left. */
async function seal(
  network: MemoryNetwork,
  port: number,
  options: GuardOptions,
  list: Uint8Array[],
): Promise<Uint8Array[]> {
  const tap = network.open({ address: "127.0.0.1", port });
  const to: Peer = tap.local;
  const guard = new GuardedEndpoint(
    network.open({ address: "127.0.0.1" }),
    options,
  );
  try {
    for (const frame of list) await guard.send(frame, to);
    const sealed: Uint8Array[] = [];
    for (let i = 0; i < list.length; i++) {
      const datagram = await within(5000, tap.receive());
      assert.ok(datagram, `sealed datagram ${i}`);
      sealed.push(datagram.payload);
    }
    return sealed;
  } finally {
    guard.close();
    tap.close();
  }
}

/**
 * Opens sealed datagrams through a guard and returns what it let through.
 * The last one (the repair) goes once the others are out: a trusting
 * receiver that took the original already passes a repair on, while one
 * that still held the original would pass on that instead.
 */
async function open(
  network: MemoryNetwork,
  port: number,
  options: GuardOptions,
  sealed: Uint8Array[],
): Promise<Uint8Array[]> {
  const guard = new GuardedEndpoint(
    network.open({ address: "127.0.0.1", port }),
    options,
  );
  const injector = network.open({ address: "127.0.0.1" });
  const opened: Uint8Array[] = [];
  async function pass(batch: Uint8Array[]): Promise<void> {
    for (const bytes of batch) await injector.send(bytes, guard.local);
    for (let i = 0; i < batch.length; i++) {
      const datagram = await within(5000, guard.receive()).catch((error) => {
        throw new Error(
          `${error.message}: ${opened.length} opened, drops ${
            JSON.stringify(options.dropped)
          }`,
        );
      });
      assert.ok(datagram);
      opened.push(datagram.payload.slice());
    }
  }
  try {
    await pass(sealed.slice(0, -1));
    await pass(sealed.slice(-1));
    return opened;
  } finally {
    injector.close();
    guard.close();
  }
}

async function withKeys(
  body: (signer: SigningKey, native: CryptoBackend) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mcast-native-crypto-" });
  const native = openNativeCrypto();
  try {
    await generateKeyFile(`${dir}/sign.key`, { kind: "ed25519" });
    const signer = await readSigningKey(`${dir}/sign.key`);
    assert.equal(signer.seed?.length, 32);
    await body(signer, native);
  } finally {
    native.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "openssl and webcrypto guards seal byte-identical frames in every mode",
  ignore,
  async fn() {
    await withKeys(async (signer, native) => {
      const key: GroupKey = {
        bytes: crypto.getRandomValues(new Uint8Array(32)),
      };
      const time = nowMicros();
      const list = frames(time);
      const network = new MemoryNetwork();
      try {
        let port = BASE_PORT;
        for (const mode of modes(signer)) {
          const sealed = new Map<CryptoName, Uint8Array[]>();
          for (const backend of [native, WEB_CRYPTO]) {
            const dropped = emptyDrops();
            const guard = {
              key,
              dropped,
              crypto: backend,
              nowMicros: () => time,
              ...mode.sender,
            };
            sealed.set(backend.name, await seal(network, port++, guard, list));
            assert.deepEqual(dropped, emptyDrops());
          }
          const a = sealed.get("openssl")!.map(hex);
          const b = sealed.get("webcrypto")!.map(hex);
          assert.equal(a.length, list.length);
          for (let i = 0; i < a.length; i++) {
            assert.equal(a[i], b[i], `${mode.name}: datagram ${i}`);
          }
          // The modes are what they claim: flags on the wire.
          const flags = sealed.get("openssl")![31]![6]!;
          assert.equal(
            (flags & FLAGS.encrypted) !== 0,
            mode.sender.encrypt === true,
          );
          assert.equal(
            (flags & FLAGS.signed) !== 0,
            mode.sender.signingKey !== undefined,
          );
          if (mode.sender.encrypt) {
            // The records are not on the wire in the clear.
            assert.notEqual(
              hex(sealed.get("openssl")![0]!.subarray(40, 80)),
              hex(list[0]!.subarray(40, 80)),
            );
          }
          // Each backend opens what either sealed.
          const expected = list.map(hex).sort();
          for (const [sealer, datagrams] of sealed) {
            for (const opener of [native, WEB_CRYPTO]) {
              const dropped = emptyDrops();
              const opened = await open(network, port++, {
                key,
                dropped,
                crypto: opener,
                nowMicros: () => time,
                ...mode.receiver,
              }, datagrams);
              assert.deepEqual(
                opened.map(hex).sort(),
                expected,
                `${mode.name}: ${sealer} sealed, ${opener.name} opened`,
              );
              assert.deepEqual(dropped, emptyDrops());
            }
          }
        }
      } finally {
        network.close();
      }
    });
  },
});

Deno.test({
  name:
    "an openssl guard drops what a wrong key or a flipped bit made, as webcrypto does",
  ignore,
  async fn() {
    await withKeys(async (signer, native) => {
      const key: GroupKey = {
        bytes: crypto.getRandomValues(new Uint8Array(32)),
      };
      const other: GroupKey = {
        bytes: crypto.getRandomValues(new Uint8Array(32)),
      };
      const time = nowMicros();
      const list = frames(time).slice(0, 32);
      const network = new MemoryNetwork();
      try {
        const sealed = await seal(network, BASE_PORT + 40, {
          key,
          dropped: emptyDrops(),
          crypto: native,
          nowMicros: () => time,
          encrypt: true,
          signingKey: signer,
        }, list);
        // A flipped bit in the ciphertext of one, the MAC of another.
        const damaged = sealed.map((bytes) => bytes.slice());
        damaged[3]![100]! ^= 1;
        damaged[4]![damaged[4]!.length - 1]! ^= 1;
        for (const crypto of [native, WEB_CRYPTO]) {
          const dropped = emptyDrops();
          const guard = new GuardedEndpoint(
            network.open({ address: "127.0.0.1", port: BASE_PORT + 41 }),
            { key, dropped, crypto, nowMicros: () => time },
          );
          const wrong = emptyDrops();
          const wrongGuard = new GuardedEndpoint(
            network.open({ address: "127.0.0.1", port: BASE_PORT + 42 }),
            { key: other, dropped: wrong, crypto, nowMicros: () => time },
          );
          const injector = network.open({ address: "127.0.0.1" });
          try {
            assert.equal(guard.crypto, crypto.name);
            // Its pump runs while something waits to receive.
            const nothing = wrongGuard.receive();
            for (const bytes of damaged) {
              await injector.send(bytes, guard.local);
              await injector.send(bytes, wrongGuard.local);
            }
            for (let i = 0; i < damaged.length - 2; i++) {
              assert.ok(await within(5000, guard.receive()));
            }
            // The other key lets nothing through.
            for (let i = 0; i < 100 && wrong.auth < damaged.length; i++) {
              await new Promise((resolve) => setTimeout(resolve, 5));
            }
            assert.deepEqual(dropped, { ...emptyDrops(), auth: 2 });
            assert.deepEqual(wrong, { ...emptyDrops(), auth: damaged.length });
            wrongGuard.close();
            assert.equal(await within(5000, nothing), null);
          } finally {
            injector.close();
            wrongGuard.close();
            guard.close();
          }
        }
      } finally {
        network.close();
      }
    });
  },
});

/** An inner endpoint that takes datagrams at once and records copies. */
function recordingEndpoint(): {
  endpoint: import("../../lib/net/socket.ts").DatagramEndpoint;
  sent: Uint8Array[];
  taken: number;
} {
  const record = {
    sent: [] as Uint8Array[],
    taken: 0,
    endpoint:
      undefined as unknown as import("../../lib/net/socket.ts").DatagramEndpoint,
  };
  record.endpoint = {
    local: { address: "127.0.0.1", port: 1 },
    send(payload: Uint8Array): Promise<void> {
      record.sent.push(payload.slice());
      return Promise.resolve();
    },
    trySend(payload: Uint8Array): boolean {
      record.sent.push(payload.slice());
      record.taken += 1;
      return true;
    },
    receive: () => Promise.resolve(null),
    close() {},
  };
  return record;
}

Deno.test({
  name:
    "trySend seals at once with openssl, the bytes send() would make; not before the keys, not when signing",
  ignore,
  async fn() {
    await withKeys(async (signer, native) => {
      const key: GroupKey = {
        bytes: crypto.getRandomValues(new Uint8Array(32)),
      };
      const time = nowMicros();
      const list = frames(time).slice(0, 32);
      const to: Peer = { address: "239.1.2.3", port: 5000 };
      for (const encrypt of [false, true]) {
        const options = (crypto: CryptoBackend) => ({
          key,
          encrypt,
          dropped: emptyDrops(),
          crypto,
          nowMicros: () => time,
        });
        const slow = recordingEndpoint();
        const slowGuard = new GuardedEndpoint(
          slow.endpoint,
          options(WEB_CRYPTO),
        );
        for (const frame of list) await slowGuard.send(frame, to);
        await within(
          5000,
          (async () => {
            while (slow.sent.length < list.length) {
              await new Promise((resolve) => setTimeout(resolve, 1));
            }
          })(),
        );
        const fast = recordingEndpoint();
        const fastGuard = new GuardedEndpoint(fast.endpoint, options(native));
        assert.equal(fastGuard.trySend(list[0]!, to), false, "keys not made");
        await fastGuard.send(list[0]!, to);
        // Let the key derivations settle.
        await new Promise((resolve) => setTimeout(resolve, 0));
        for (const frame of list.slice(1)) {
          assert.equal(fastGuard.trySend(frame, to), true);
        }
        assert.equal(fast.taken, list.length - 1);
        assert.equal(fast.sent.length, list.length);
        const differing = fast.sent.findIndex((bytes, k) =>
          hex(bytes) !== hex(slow.sent[k]!)
        );
        assert.equal(differing, -1, `datagram ${differing} differs`);
        slowGuard.close();
        fastGuard.close();
      }
      const signing = recordingEndpoint();
      const signingGuard = new GuardedEndpoint(signing.endpoint, {
        key,
        signingKey: signer,
        dropped: emptyDrops(),
        crypto: native,
      });
      await signingGuard.send(list[0]!, to);
      await new Promise((resolve) => setTimeout(resolve, 0));
      assert.equal(signingGuard.trySend(list[1]!, to), false, "signing");
      signingGuard.close();
    });
  },
});
