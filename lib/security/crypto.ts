/**
 * The cryptography the frame guard needs, behind one interface with two
 * implementations that produce the same bytes: {@linkcode WEB_CRYPTO}
 * (`crypto.subtle`, everywhere) and OpenSSL's libcrypto through FFI
 * (`openNativeCrypto()` in `native_crypto.ts`, with `--allow-ffi`).
 *
 * The interface is asynchronous because WebCrypto is, and the guard keeps
 * up to `MAX_IN_FLIGHT` frames' cryptography pending at once; the native
 * backend does its work synchronously and returns resolved promises.
 *
 * @module
 */

import type { BulletinHasher } from "../reliable/digest.ts";
import type { SigningKey } from "./keys.ts";

/** The backends. */
export type CryptoName = "webcrypto" | "openssl";

/** An HMAC-SHA-256 key. */
export interface MacKey {
  /**
   * The full 32-byte HMAC-SHA-256 of `data`.
   *
   * @param data The message.
   */
  sign(data: Uint8Array): Promise<Uint8Array>;
  /**
   * Writes the first `into.length` bytes (at most 32) of the HMAC of
   * `data` into `into`, without allocating where the backend can.
   *
   * @param data The message.
   * @param into Where the (truncated) MAC goes; not `data`.
   */
  signInto(data: Uint8Array, into: Uint8Array): Promise<void>;
  /**
   * {@linkcode MacKey.signInto} at once, where the backend works
   * synchronously (OpenSSL's); absent otherwise.
   *
   * @param data The message.
   * @param into Where the (truncated) MAC goes; not `data`.
   */
  signIntoSync?(data: Uint8Array, into: Uint8Array): void;
  /**
   * Whether `tag` is the first `tag.length` bytes (1 to 32) of the HMAC of
   * `data`, compared in constant time.
   *
   * @param data The message.
   * @param tag The (truncated) MAC to check.
   */
  verify(data: Uint8Array, tag: Uint8Array): Promise<boolean>;
}

/** An AES-256-GCM key: 12-byte nonces, the 16-byte tag after the ciphertext. */
export interface AeadKey {
  /**
   * Encrypts and authenticates.
   *
   * @param nonce 12 bytes, never used twice for two plaintexts.
   * @param aad Associated data, authenticated only.
   * @param plain The plaintext.
   * @returns The ciphertext (as long as `plain`) and the tag.
   */
  seal(
    nonce: Uint8Array,
    aad: Uint8Array,
    plain: Uint8Array,
  ): Promise<Uint8Array>;
  /**
   * Checks and decrypts what {@linkcode AeadKey.seal} made.
   *
   * @param nonce The nonce it was sealed with.
   * @param aad The associated data it was sealed with.
   * @param sealed The ciphertext and the tag.
   * @returns The plaintext, or `null` when it does not verify.
   */
  open(
    nonce: Uint8Array,
    aad: Uint8Array,
    sealed: Uint8Array,
  ): Promise<Uint8Array | null>;
  /**
   * {@linkcode AeadKey.seal} into a buffer the caller made.
   *
   * @param nonce 12 bytes, never used twice for two plaintexts.
   * @param aad Associated data, authenticated only.
   * @param plain The plaintext.
   * @param into `plain.length + 16` bytes for the ciphertext and tag; it
   * may start where `plain` does (in place), but not overlap it otherwise.
   */
  sealInto(
    nonce: Uint8Array,
    aad: Uint8Array,
    plain: Uint8Array,
    into: Uint8Array,
  ): Promise<void>;
  /**
   * {@linkcode AeadKey.sealInto} at once, where the backend works
   * synchronously (OpenSSL's); absent otherwise.
   *
   * @param nonce 12 bytes, never used twice for two plaintexts.
   * @param aad Associated data, authenticated only.
   * @param plain The plaintext.
   * @param into `plain.length + 16` bytes, as for `sealInto`.
   */
  sealIntoSync?(
    nonce: Uint8Array,
    aad: Uint8Array,
    plain: Uint8Array,
    into: Uint8Array,
  ): void;
  /**
   * {@linkcode AeadKey.open} into a buffer the caller made.
   *
   * @param nonce The nonce it was sealed with.
   * @param aad The associated data it was sealed with.
   * @param sealed The ciphertext and the tag.
   * @param into `sealed.length - 16` bytes for the plaintext, not
   * overlapping `sealed`; its contents are unspecified when this is `false`.
   * @returns Whether it verified.
   */
  openInto(
    nonce: Uint8Array,
    aad: Uint8Array,
    sealed: Uint8Array,
    into: Uint8Array,
  ): Promise<boolean>;
}

/** An Ed25519 private key. */
export interface Signer {
  /**
   * The 64-byte Ed25519 signature of a message.
   *
   * @param message The message.
   */
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/** An Ed25519 public key. */
export interface Verifier {
  /**
   * Whether `signature` is this key's signature of `message`.
   *
   * @param message The message.
   * @param signature The signature (anything but 64 bytes is `false`).
   */
  verify(message: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

/** Options of {@linkcode CryptoBackend.hkdf}. */
export interface HkdfOptions {
  /** The salt (empty: HashLen zero bytes, as RFC 5869 says). */
  salt: Uint8Array;
  /** The context and application specific information. */
  info: Uint8Array;
  /** Bytes of output, at most 255 × 32. */
  length: number;
}

/**
 * A crypto implementation. Key objects it makes belong to it: they stop
 * working once it is closed. Raw key bytes given to it are copied; the
 * caller may zero them once the promise resolves. Every method reads its
 * inputs before it returns (WebCrypto copies them; OpenSSL is done by
 * then), so the caller may reuse an input buffer at once; `into` buffers
 * are written by the time the promise resolves.
 */
export interface CryptoBackend extends BulletinHasher {
  /** Which implementation this is. */
  readonly name: CryptoName;
  /**
   * SHA-256 of the concatenation of `parts`, without concatenating them
   * where the backend can.
   *
   * @param parts The pieces, in order.
   */
  sha256Parts(parts: readonly Uint8Array[]): Promise<Uint8Array>;
  /**
   * HKDF-SHA-256 (RFC 5869): extract, then expand.
   *
   * @param ikm The input keying material.
   * @param options Salt, info and output length.
   * @returns `options.length` bytes.
   */
  hkdf(ikm: Uint8Array, options: HkdfOptions): Promise<Uint8Array>;
  /**
   * An HMAC-SHA-256 key.
   *
   * @param raw The key bytes (32 here; any length works).
   */
  macKey(raw: Uint8Array): Promise<MacKey>;
  /**
   * An AES-256-GCM key.
   *
   * @param raw The 32 key bytes.
   */
  aeadKey(raw: Uint8Array): Promise<AeadKey>;
  /**
   * An Ed25519 signer for a signing key.
   *
   * @param key The key, as `readSigningKey` gives it.
   */
  signer(key: SigningKey): Promise<Signer>;
  /**
   * An Ed25519 verifier.
   *
   * @param publicKey The 32 bytes of the public key.
   */
  verifier(publicKey: Uint8Array): Promise<Verifier>;
  /** Releases native resources; a no-op for WebCrypto. */
  close(): void;
}

/** WebCrypto wants its buffers backed by an `ArrayBuffer`. */
function buf(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>;
}

/**
 * The concatenation of byte arrays.
 *
 * @param parts The pieces, in order.
 * @returns One new array.
 */
export function concatBytes(
  parts: readonly Uint8Array[],
): Uint8Array<ArrayBuffer> {
  let size = 0;
  for (const part of parts) size += part.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

async function webSha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", buf(data)));
}

class WebMacKey implements MacKey {
  readonly #key: CryptoKey;

  constructor(key: CryptoKey) {
    this.#key = key;
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(
      await crypto.subtle.sign("HMAC", this.#key, buf(data)),
    );
  }

  async signInto(data: Uint8Array, into: Uint8Array): Promise<void> {
    const mac = await this.sign(data);
    into.set(mac.subarray(0, into.length));
  }

  async verify(data: Uint8Array, tag: Uint8Array): Promise<boolean> {
    const mac = await this.sign(data);
    return tag.length > 0 && tag.length <= mac.length &&
      equalPrefix(mac, tag);
  }
}

/**
 * Whether `tag` equals the first `tag.length` bytes of `mac`, in time that
 * depends only on the length.
 *
 * @param mac The full MAC.
 * @param tag At most as long.
 * @returns Whether they agree.
 */
export function equalPrefix(mac: Uint8Array, tag: Uint8Array): boolean {
  if (tag.length > mac.length) return false;
  let diff = 0;
  for (let i = 0; i < tag.length; i++) diff |= mac[i]! ^ tag[i]!;
  return diff === 0;
}

class WebAeadKey implements AeadKey {
  readonly #key: CryptoKey;

  constructor(key: CryptoKey) {
    this.#key = key;
  }

  async seal(
    nonce: Uint8Array,
    aad: Uint8Array,
    plain: Uint8Array,
  ): Promise<Uint8Array> {
    return new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv: buf(nonce), additionalData: buf(aad) },
        this.#key,
        buf(plain),
      ),
    );
  }

  async open(
    nonce: Uint8Array,
    aad: Uint8Array,
    sealed: Uint8Array,
  ): Promise<Uint8Array | null> {
    try {
      return new Uint8Array(
        await crypto.subtle.decrypt(
          { name: "AES-GCM", iv: buf(nonce), additionalData: buf(aad) },
          this.#key,
          buf(sealed),
        ),
      );
    } catch {
      return null;
    }
  }

  async sealInto(
    nonce: Uint8Array,
    aad: Uint8Array,
    plain: Uint8Array,
    into: Uint8Array,
  ): Promise<void> {
    into.set(await this.seal(nonce, aad, plain));
  }

  async openInto(
    nonce: Uint8Array,
    aad: Uint8Array,
    sealed: Uint8Array,
    into: Uint8Array,
  ): Promise<boolean> {
    const plain = await this.open(nonce, aad, sealed);
    if (plain === null) return false;
    into.set(plain);
    return true;
  }
}

class WebSigner implements Signer {
  readonly #key: CryptoKey;

  constructor(key: CryptoKey) {
    this.#key = key;
  }

  async sign(message: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(
      await crypto.subtle.sign("Ed25519", this.#key, buf(message)),
    );
  }
}

class WebVerifier implements Verifier {
  readonly #key: CryptoKey;

  constructor(key: CryptoKey) {
    this.#key = key;
  }

  async verify(message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    if (signature.length !== 64) return false;
    try {
      return await crypto.subtle.verify(
        "Ed25519",
        this.#key,
        buf(signature),
        buf(message),
      );
    } catch {
      return false;
    }
  }
}

/** WebCrypto (`crypto.subtle`): available everywhere, 25–50 µs a call. */
export const WEB_CRYPTO: CryptoBackend = {
  name: "webcrypto",
  sha256: webSha256,
  sha256Parts(parts: readonly Uint8Array[]): Promise<Uint8Array> {
    return webSha256(parts.length === 1 ? parts[0]! : concatBytes(parts));
  },
  async hkdf(ikm: Uint8Array, options: HkdfOptions): Promise<Uint8Array> {
    const key = await crypto.subtle.importKey(
      "raw",
      buf(ikm),
      "HKDF",
      false,
      ["deriveBits"],
    );
    return new Uint8Array(
      await crypto.subtle.deriveBits(
        {
          name: "HKDF",
          hash: "SHA-256",
          salt: buf(options.salt),
          info: buf(options.info),
        },
        key,
        options.length * 8,
      ),
    );
  },
  async macKey(raw: Uint8Array): Promise<MacKey> {
    const key = await crypto.subtle.importKey(
      "raw",
      buf(raw),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    return new WebMacKey(key);
  },
  async aeadKey(raw: Uint8Array): Promise<AeadKey> {
    const key = await crypto.subtle.importKey(
      "raw",
      buf(raw),
      { name: "AES-GCM" },
      false,
      ["encrypt", "decrypt"],
    );
    return new WebAeadKey(key);
  },
  signer(key: SigningKey): Promise<Signer> {
    return Promise.resolve(new WebSigner(key.privateKey));
  },
  async verifier(publicKey: Uint8Array): Promise<Verifier> {
    const key = await crypto.subtle.importKey(
      "raw",
      buf(publicKey),
      { name: "Ed25519" },
      false,
      ["verify"],
    );
    return new WebVerifier(key);
  },
  close(): void {},
};
