/**
 * Known-answer tests of both crypto backends (`lib/security/crypto.ts`,
 * `lib/security/native_crypto.ts`): every primitive the frame guard uses,
 * against published vectors, exact bytes asserted, the same test body run
 * once with WebCrypto and once with OpenSSL.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type CryptoBackend,
  type CryptoName,
  WEB_CRYPTO,
} from "../../lib/security/crypto.ts";
import {
  NativeCryptoError,
  nativeCryptoUnavailable,
  openNativeCrypto,
} from "../../lib/security/native_crypto.ts";
import type { SigningKey } from "../../lib/security/keys.ts";

const encoder = new TextEncoder();
const NATIVE_REASON = nativeCryptoUnavailable();

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function bytes(text: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

/** Runs `body` once per backend; the native one is closed afterwards. */
function bothBackends(
  name: string,
  body: (backend: CryptoBackend) => Promise<void>,
): void {
  for (const which of ["webcrypto", "openssl"] as CryptoName[]) {
    Deno.test({
      name: `${which}: ${name}`,
      ignore: which === "openssl" && NATIVE_REASON !== undefined,
      async fn() {
        const backend = which === "openssl" ? openNativeCrypto() : WEB_CRYPTO;
        try {
          assert.equal(backend.name, which);
          await body(backend);
        } finally {
          backend.close();
        }
      },
    });
  }
}

/** A signing key from a raw seed, as readSigningKey makes it. */
async function signingKeyOf(
  seed: Uint8Array,
  publicKey: Uint8Array,
  withSeed: boolean,
): Promise<SigningKey> {
  const pkcs8 = new Uint8Array([
    ...bytes("302e020100300506032b657004220420"),
    ...seed,
  ]);
  const privateKey = await crypto.subtle.importKey(
    "pkcs8",
    pkcs8,
    { name: "Ed25519" },
    true,
    ["sign"],
  );
  return withSeed ? { privateKey, publicKey, seed } : { privateKey, publicKey };
}

bothBackends("HMAC-SHA-256, RFC 4231 test case 2", async (backend) => {
  const key = await backend.macKey(encoder.encode("Jefe"));
  const data = encoder.encode("what do ya want for nothing?");
  const expected =
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  assert.equal(hex(await key.sign(data)), expected);
  // The key is reused, not consumed.
  assert.equal(hex(await key.sign(data)), expected);
  // The empty message (RFC 4231 has none; this is HMAC("Jefe", "")).
  const empty = await key.sign(new Uint8Array(0));
  assert.equal(empty.length, 32);
  assert.equal(hex(await key.sign(new Uint8Array(0))), hex(empty));
  // Truncated into a caller's buffer, and checked against a truncated tag.
  const into = new Uint8Array(20).fill(0xee);
  await key.signInto(data, into.subarray(2, 18));
  assert.equal(hex(into.subarray(2, 18)), expected.slice(0, 32));
  assert.equal(into[1], 0xee);
  assert.equal(into[18], 0xee);
  assert.equal(await key.verify(data, bytes(expected.slice(0, 32))), true);
  assert.equal(await key.verify(data, bytes(expected)), true);
  const wrong = bytes(expected.slice(0, 32));
  wrong[15]! ^= 1;
  assert.equal(await key.verify(data, wrong), false);
  assert.equal(await key.verify(data, new Uint8Array(0)), false);
});

bothBackends("HKDF-SHA-256, RFC 5869 test cases 1 and 3", async (backend) => {
  const okm = await backend.hkdf(bytes("0b".repeat(22)), {
    salt: bytes("000102030405060708090a0b0c"),
    info: bytes("f0f1f2f3f4f5f6f7f8f9"),
    length: 42,
  });
  assert.equal(
    hex(okm),
    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
  );
  // Test case 3: empty salt and info.
  const okm3 = await backend.hkdf(bytes("0b".repeat(22)), {
    salt: new Uint8Array(0),
    info: new Uint8Array(0),
    length: 42,
  });
  assert.equal(
    hex(okm3),
    "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
  );
});

bothBackends(
  'SHA-256 of "abc", whole, in parts and streamed',
  async (backend) => {
    const abc =
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const empty =
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert.equal(hex(await backend.sha256(encoder.encode("abc"))), abc);
    assert.equal(hex(await backend.sha256(new Uint8Array(0))), empty);
    const parts = [
      encoder.encode("a"),
      new Uint8Array(0),
      encoder.encode("bc"),
    ];
    assert.equal(hex(await backend.sha256Parts(parts)), abc);
    assert.equal(hex(await backend.sha256Parts([])), empty);
    // A million "a"s (FIPS 180-2), whole and in uneven pieces.
    const million = new Uint8Array(1_000_000).fill(0x61);
    const expected =
      "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    assert.equal(hex(await backend.sha256(million)), expected);
    const stream = backend.sha256Stream?.();
    if (backend.name === "openssl") assert.ok(stream);
    if (stream) {
      for (let at = 0; at < million.length;) {
        const end = Math.min(million.length, at + 1 + (at % 7919));
        stream.update(million.subarray(at, end));
        at = end;
      }
      assert.equal(hex(stream.digest()), expected);
      assert.throws(() => stream.digest());
    }
  },
);

// McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16.
const GCM16 = {
  key: "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
  plain: "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d" +
    "8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
  aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
  nonce: "cafebabefacedbaddecaf888",
  cipher: "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd" +
    "2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
  tag: "76fc6ece0f4e1768cddf8853bb2d551b",
};

bothBackends(
  "AES-256-GCM, GCM spec test case 16, and tampering",
  async (backend) => {
    const key = await backend.aeadKey(bytes(GCM16.key));
    const nonce = bytes(GCM16.nonce);
    const aad = bytes(GCM16.aad);
    const sealed = await key.seal(nonce, aad, bytes(GCM16.plain));
    assert.equal(hex(sealed), GCM16.cipher + GCM16.tag);
    const opened = await key.open(nonce, aad, sealed);
    assert.ok(opened);
    assert.equal(hex(opened), GCM16.plain);
    // Twice in a row with the same key: the contexts are reused.
    assert.equal(
      hex(await key.seal(nonce, aad, bytes(GCM16.plain))),
      hex(sealed),
    );
    // A sealed buffer that is a view into a larger one.
    const framed = new Uint8Array(sealed.length + 9);
    framed.set(sealed, 5);
    const view = framed.subarray(5, 5 + sealed.length);
    assert.equal(hex((await key.open(nonce, aad, view))!), GCM16.plain);
    for (
      const at of [0, sealed.length - 17, sealed.length - 16, sealed.length - 1]
    ) {
      const bad = sealed.slice();
      bad[at]! ^= 1;
      assert.equal(await key.open(nonce, aad, bad), null, `byte ${at}`);
    }
    const badAad = aad.slice();
    badAad[0]! ^= 0x80;
    assert.equal(await key.open(nonce, badAad, sealed), null);
    const badNonce = nonce.slice();
    badNonce[11]! ^= 1;
    assert.equal(await key.open(badNonce, aad, sealed), null);
    assert.equal(await key.open(nonce, aad, sealed.subarray(0, 15)), null);
    // After a failure the key still works.
    assert.equal(hex((await key.open(nonce, aad, sealed))!), GCM16.plain);
    // Into a caller's buffer, in place, and back.
    const frame = new Uint8Array(7 + sealed.length);
    frame.set(bytes(GCM16.plain), 7);
    await key.sealInto(
      nonce,
      aad,
      frame.subarray(7, 7 + 60),
      frame.subarray(7),
    );
    assert.equal(hex(frame.subarray(7)), GCM16.cipher + GCM16.tag);
    const plainInto = new Uint8Array(60);
    assert.equal(
      await key.openInto(nonce, aad, frame.subarray(7), plainInto),
      true,
    );
    assert.equal(hex(plainInto), GCM16.plain);
    frame[9]! ^= 1;
    assert.equal(
      await key.openInto(nonce, aad, frame.subarray(7), plainInto),
      false,
    );
    // No associated data, no plaintext: the tag alone.
    const tagOnly = await key.seal(nonce, new Uint8Array(0), new Uint8Array(0));
    assert.equal(tagOnly.length, 16);
    const none = await key.open(nonce, new Uint8Array(0), tagOnly);
    assert.ok(none);
    assert.equal(none.length, 0);
  },
);

// RFC 8032 section 7.1, test 1 (the empty message) and test 2.
const ED1 = {
  seed: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
  publicKey: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
  signature:
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155" +
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
};
const ED2 = {
  seed: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
  publicKey: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
  message: "72",
  signature:
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da" +
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
};

bothBackends("Ed25519, RFC 8032 tests 1 and 2", async (backend) => {
  for (const withSeed of [true, false]) {
    const key = await signingKeyOf(
      bytes(ED1.seed),
      bytes(ED1.publicKey),
      withSeed,
    );
    const signer = await backend.signer(key);
    const signature = await signer.sign(new Uint8Array(0));
    assert.equal(hex(signature), ED1.signature);
    const key2 = await signingKeyOf(
      bytes(ED2.seed),
      bytes(ED2.publicKey),
      withSeed,
    );
    const signer2 = await backend.signer(key2);
    assert.equal(hex(await signer2.sign(bytes(ED2.message))), ED2.signature);
    // Each signer keeps its key, used in any order and again.
    assert.equal(hex(await signer.sign(new Uint8Array(0))), ED1.signature);
    assert.equal(hex(await signer2.sign(bytes(ED2.message))), ED2.signature);
  }
  const verifier = await backend.verifier(bytes(ED1.publicKey));
  assert.equal(
    await verifier.verify(new Uint8Array(0), bytes(ED1.signature)),
    true,
  );
  const bad = bytes(ED1.signature);
  bad[7]! ^= 4;
  assert.equal(await verifier.verify(new Uint8Array(0), bad), false);
  assert.equal(
    await verifier.verify(new Uint8Array([0]), bytes(ED1.signature)),
    false,
  );
  assert.equal(
    await verifier.verify(new Uint8Array(0), bytes(ED1.signature).subarray(1)),
    false,
  );
  // Another key's signature does not verify, and a failure changes nothing.
  assert.equal(
    await verifier.verify(bytes(ED2.message), bytes(ED2.signature)),
    false,
  );
  const verifier2 = await backend.verifier(bytes(ED2.publicKey));
  assert.equal(
    await verifier2.verify(bytes(ED2.message), bytes(ED2.signature)),
    true,
  );
});

Deno.test({
  name:
    "openssl: refuses a seed that does not match the public key, and use after close",
  ignore: NATIVE_REASON !== undefined,
  async fn() {
    const backend = openNativeCrypto();
    let closed = false;
    try {
      const key = await signingKeyOf(
        bytes(ED1.seed),
        bytes(ED2.publicKey),
        true,
      );
      await assert.rejects(() => backend.signer(key), NativeCryptoError);
      await assert.rejects(
        () => backend.aeadKey(new Uint8Array(16)),
        NativeCryptoError,
      );
      const mac = await backend.macKey(new Uint8Array(32));
      backend.close();
      closed = true;
      backend.close();
      await assert.rejects(
        () => mac.sign(new Uint8Array(1)),
        NativeCryptoError,
      );
      await assert.rejects(
        () => backend.sha256(new Uint8Array(1)),
        NativeCryptoError,
      );
    } finally {
      if (!closed) backend.close();
    }
  },
});

Deno.test("nativeCryptoUnavailable: undefined with --allow-ffi and libcrypto 3", () => {
  assert.equal(nativeCryptoUnavailable(), undefined);
});
