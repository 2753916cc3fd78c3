/**
 * The OpenSSL crypto backend: the {@linkcode CryptoBackend} interface on
 * libcrypto through FFI (`--allow-ffi`, OpenSSL 3), byte for byte what
 * {@linkcode WEB_CRYPTO} produces, at well under a microsecond of work per
 * datagram instead of tens (AES-NI, no promise hop to a worker thread).
 *
 * Contexts are made once per key and reused: an `EVP_CIPHER_CTX` for
 * encryption and one for decryption per AES-GCM key (keyed once; each call
 * sets only the nonce), an `HMAC_CTX` per HMAC key (reset, not rekeyed,
 * per message), and one `EVP_MD_CTX` each for hashing, signing and
 * verifying per backend. Everything runs synchronously on the calling
 * thread, so nothing is shared between calls in flight.
 *
 * @module
 */

import { errorLine, McastError, UsageError } from "../errors.ts";
import type { IoChoice } from "../net/io.ts";
import {
  acquireLibcrypto,
  AES_256_KEY_SIZE,
  cString,
  ED25519_RAW_SIZE,
  ED25519_SIGNATURE_SIZE,
  EVP_CTRL_GCM_GET_TAG,
  EVP_CTRL_GCM_SET_TAG,
  EVP_PKEY_ED25519,
  GCM_NONCE_SIZE,
  GCM_TAG_BYTES,
  type Libcrypto,
  LIBCRYPTO_NAMES,
  libcryptoVersion,
  releaseLibcrypto,
  SHA256_SIZE,
} from "../native/libcrypto.ts";
import type { Sha256Stream } from "../reliable/digest.ts";
import {
  type AeadKey,
  type CryptoBackend,
  equalPrefix,
  type HkdfOptions,
  type MacKey,
  type Signer,
  type Verifier,
  WEB_CRYPTO,
} from "./crypto.ts";
import type { SigningKey } from "./keys.ts";

/**
 * The OpenSSL backend cannot be used: no FFI permission, no loadable
 * libcrypto 3, a key OpenSSL refuses, or a backend used after its
 * {@linkcode CryptoBackend.close}. Exit status 1.
 */
export class NativeCryptoError extends McastError {
  /**
   * Creates one.
   *
   * @param message What failed, in one line, without key material.
   */
  constructor(message: string) {
    super(message, 1);
    this.name = "NativeCryptoError";
  }
}

let unavailable: string | undefined | null = null;

/**
 * Says why {@linkcode openNativeCrypto} would fail, without throwing: FFI
 * permitted (asked without prompting), libcrypto 3 loadable, AES-256-GCM
 * and SHA-256 available from its default provider. The answer is cached.
 *
 * @returns `undefined` when it can, else a one-line reason.
 */
export function nativeCryptoUnavailable(): string | undefined {
  if (unavailable === null) unavailable = findUnavailable();
  return unavailable;
}

function findUnavailable(): string | undefined {
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    return "FFI not permitted (run with --allow-ffi)";
  }
  let lib: Libcrypto;
  try {
    lib = acquireLibcrypto();
  } catch (error) {
    return `${LIBCRYPTO_NAMES[0]} cannot be loaded: ${errorLine(error)}`;
  }
  try {
    const cipher = lib.EVP_CIPHER_fetch(null, AES_NAME, null);
    const md = lib.EVP_MD_fetch(null, SHA256_NAME, null);
    lib.EVP_CIPHER_free(cipher);
    lib.EVP_MD_free(md);
    lib.ERR_clear_error();
    if (cipher === null || md === null) {
      return `${libcryptoVersion()} has no AES-256-GCM or SHA-256`;
    }
    return undefined;
  } finally {
    releaseLibcrypto();
  }
}

const AES_NAME = cString("AES-256-GCM");
const SHA256_NAME = cString("SHA256");
/** Stands for an empty buffer: some calls want a pointer even for 0 bytes. */
const EMPTY = new Uint8Array(1);
const ZERO_SALT = new Uint8Array(SHA256_SIZE);
const RAW_SIZE = BigInt(ED25519_RAW_SIZE);
const SIGNATURE_SIZE = BigInt(ED25519_SIGNATURE_SIZE);

function nonEmpty(bytes: Uint8Array): Uint8Array {
  return bytes.length === 0 ? EMPTY : bytes;
}

/**
 * Opens the OpenSSL backend. Close it when done: that frees its contexts
 * and keys and releases the library (the guard never closes it).
 *
 * @returns The backend, named "openssl".
 * @throws {NativeCryptoError} When {@linkcode nativeCryptoUnavailable}
 * gives a reason.
 */
export function openNativeCrypto(): CryptoBackend {
  const reason = nativeCryptoUnavailable();
  if (reason !== undefined) {
    throw new NativeCryptoError(`Cannot use OpenSSL crypto: ${reason}`);
  }
  return new NativeCrypto();
}

type Free = () => void;

/** The backend; see the module documentation. */
class NativeCrypto implements CryptoBackend {
  readonly name = "openssl" as const;
  readonly #lib: Libcrypto;
  readonly #cipher: Deno.PointerObject;
  readonly #md: Deno.PointerObject;
  /** For {@linkcode sha256Parts}. */
  readonly #hashCtx: Deno.PointerObject;
  /** An `int` out-parameter. */
  readonly #outLength = new Int32Array(1);
  /** A `size_t` in/out parameter. */
  readonly #size = new BigUint64Array(1);
  /** Where a MAC is computed before it is compared or truncated. */
  readonly #scratch = new Uint8Array(SHA256_SIZE);
  /** Where a GCM tag is fetched. */
  readonly #tag = new Uint8Array(GCM_TAG_BYTES);
  #closed = false;
  /** What this backend allocated and has not freed yet, by token. */
  readonly #live = new Map<object, Free>();
  /** Frees what an owner collected without being released held. */
  readonly #registry = new FinalizationRegistry<Free>((free) => free());

  constructor() {
    const lib = acquireLibcrypto();
    this.#lib = lib;
    const cipher = lib.EVP_CIPHER_fetch(null, AES_NAME, null);
    const md = lib.EVP_MD_fetch(null, SHA256_NAME, null);
    const hashCtx = lib.EVP_MD_CTX_new();
    if (!cipher || !md || !hashCtx) {
      lib.EVP_CIPHER_free(cipher);
      lib.EVP_MD_free(md);
      lib.EVP_MD_CTX_free(hashCtx);
      releaseLibcrypto();
      throw new NativeCryptoError(
        "Cannot use OpenSSL crypto: cannot set up AES-256-GCM and SHA-256",
      );
    }
    this.#cipher = cipher;
    this.#md = md;
    this.#hashCtx = hashCtx;
  }

  /** The library, while open. */
  lib(): Libcrypto {
    if (this.#closed) {
      throw new NativeCryptoError("The OpenSSL crypto backend is closed");
    }
    return this.#lib;
  }

  /** The fetched AES-256-GCM. */
  get cipher(): Deno.PointerObject {
    return this.#cipher;
  }

  /** The fetched SHA-256. */
  get md(): Deno.PointerObject {
    return this.#md;
  }

  /** The shared `int` out-parameter. */
  get outLength(): Int32Array {
    return this.#outLength;
  }

  /** The shared MAC scratch buffer (32 bytes). */
  get scratch(): Uint8Array {
    return this.#scratch;
  }

  /** The shared GCM tag buffer (16 bytes). */
  get tag(): Uint8Array {
    return this.#tag;
  }

  /** The shared `size_t` in/out parameter. */
  get size(): BigUint64Array {
    return this.#size;
  }

  /**
   * Ties native memory to an owner: freed by {@linkcode close}, by the
   * returned function, or when the owner is collected, whichever is first.
   */
  own(owner: object, free: Free): Free {
    // Neither the map nor the registry may reach the owner.
    const token = {};
    let done = false;
    const once = (): void => {
      if (done || this.#closed) return;
      done = true;
      this.#live.delete(token);
      this.#registry.unregister(token);
      free();
    };
    this.#live.set(token, once);
    this.#registry.register(owner, once, token);
    return once;
  }

  sha256(data: Uint8Array): Promise<Uint8Array> {
    return settle(() => this.sha256Sync(data));
  }

  /** {@linkcode sha256}, synchronously. */
  sha256Sync(data: Uint8Array): Uint8Array {
    const out = new Uint8Array(SHA256_SIZE);
    this.lib().SHA256(nonEmpty(data), BigInt(data.length), out);
    return out;
  }

  sha256Parts(parts: readonly Uint8Array[]): Promise<Uint8Array> {
    return settle(() => this.sha256PartsSync(parts));
  }

  /** {@linkcode sha256Parts}, synchronously. */
  sha256PartsSync(parts: readonly Uint8Array[]): Uint8Array {
    const lib = this.lib();
    const ctx = this.#hashCtx;
    const out = new Uint8Array(SHA256_SIZE);
    if (lib.EVP_DigestInit_ex(ctx, this.#md, null) !== 1) {
      throw failed("EVP_DigestInit_ex");
    }
    for (const part of parts) {
      if (part.length > 0) lib.EVP_DigestUpdate(ctx, part, BigInt(part.length));
    }
    lib.EVP_DigestFinal_ex(ctx, out, null);
    return out;
  }

  sha256Stream(): Sha256Stream {
    return new NativeSha256Stream(this);
  }

  /** One-shot HMAC-SHA-256, for HKDF. */
  hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
    const out = new Uint8Array(SHA256_SIZE);
    const result = this.lib().HMAC(
      this.#md,
      nonEmpty(key),
      key.length,
      nonEmpty(data),
      BigInt(data.length),
      out,
      null,
    );
    if (result === null) throw failed("HMAC");
    return out;
  }

  hkdf(ikm: Uint8Array, options: HkdfOptions): Promise<Uint8Array> {
    return settle(() => this.hkdfSync(ikm, options));
  }

  /** {@linkcode hkdf}, synchronously. */
  hkdfSync(ikm: Uint8Array, options: HkdfOptions): Uint8Array {
    const { info, length } = options;
    if (!Number.isInteger(length) || length < 0 || length > 255 * SHA256_SIZE) {
      throw new RangeError(`Invalid HKDF length ${length}: not 0 to 8160`);
    }
    const salt = options.salt.length === 0 ? ZERO_SALT : options.salt;
    const prk = this.hmac(salt, ikm);
    const out = new Uint8Array(length);
    const block = new Uint8Array(SHA256_SIZE + info.length + 1);
    let previous = 0;
    let i = 0;
    for (let at = 0; at < length; at += SHA256_SIZE) {
      i += 1;
      // T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i)
      block.set(info, previous);
      block[previous + info.length] = i;
      const t = this.hmac(prk, block.subarray(0, previous + info.length + 1));
      out.set(t.subarray(0, Math.min(SHA256_SIZE, length - at)), at);
      block.set(t, 0);
      previous = SHA256_SIZE;
      t.fill(0);
    }
    prk.fill(0);
    block.fill(0);
    return out;
  }

  macKey(raw: Uint8Array): Promise<MacKey> {
    return settle(() => new NativeMacKey(this, raw));
  }

  aeadKey(raw: Uint8Array): Promise<AeadKey> {
    return settle(() => new NativeAeadKey(this, raw));
  }

  async signer(key: SigningKey): Promise<Signer> {
    let seed = key.seed;
    let copy: Uint8Array | undefined;
    if (seed === undefined) {
      // A key made without its seed: take it from the WebCrypto key.
      try {
        const pkcs8 = new Uint8Array(
          await crypto.subtle.exportKey("pkcs8", key.privateKey),
        );
        copy = pkcs8.slice(pkcs8.length - ED25519_RAW_SIZE);
        pkcs8.fill(0);
        seed = copy;
      } catch {
        throw new NativeCryptoError(
          "Cannot sign with OpenSSL: the signing key has no seed and cannot be exported",
        );
      }
    }
    try {
      return new NativeSigner(this, seed, key.publicKey);
    } finally {
      copy?.fill(0);
    }
  }

  verifier(publicKey: Uint8Array): Promise<Verifier> {
    return settle(() => new NativeVerifier(this, publicKey));
  }

  close(): void {
    if (this.#closed) return;
    for (const free of [...this.#live.values()]) free();
    this.#closed = true;
    const lib = this.#lib;
    lib.EVP_MD_CTX_free(this.#hashCtx);
    lib.EVP_CIPHER_free(this.#cipher);
    lib.EVP_MD_free(this.#md);
    releaseLibcrypto();
  }
}

/** What `run` returns, or throws, as a promise. */
function settle<T>(run: () => T): Promise<T> {
  try {
    return Promise.resolve(run());
  } catch (error) {
    return Promise.reject(error);
  }
}

function failed(call: string): NativeCryptoError {
  return new NativeCryptoError(`OpenSSL ${call} failed`);
}

class NativeSha256Stream implements Sha256Stream {
  readonly #backend: NativeCrypto;
  readonly #ctx: Deno.PointerObject;
  readonly #free: Free;
  #spent = false;

  constructor(backend: NativeCrypto) {
    const lib = backend.lib();
    const ctx = lib.EVP_MD_CTX_new();
    if (ctx === null) throw failed("EVP_MD_CTX_new");
    if (lib.EVP_DigestInit_ex(ctx, backend.md, null) !== 1) {
      lib.EVP_MD_CTX_free(ctx);
      throw failed("EVP_DigestInit_ex");
    }
    this.#backend = backend;
    this.#ctx = ctx;
    this.#free = backend.own(this, () => lib.EVP_MD_CTX_free(ctx));
  }

  update(data: Uint8Array): void {
    if (this.#spent) throw new NativeCryptoError("The hash stream is spent");
    if (data.length === 0) return;
    this.#backend.lib().EVP_DigestUpdate(this.#ctx, data, BigInt(data.length));
  }

  digest(): Uint8Array {
    if (this.#spent) throw new NativeCryptoError("The hash stream is spent");
    this.#spent = true;
    const out = new Uint8Array(SHA256_SIZE);
    this.#backend.lib().EVP_DigestFinal_ex(this.#ctx, out, null);
    this.#free();
    return out;
  }
}

class NativeMacKey implements MacKey {
  readonly #backend: NativeCrypto;
  readonly #ctx: Deno.PointerObject;

  constructor(backend: NativeCrypto, raw: Uint8Array) {
    const lib = backend.lib();
    const ctx = lib.HMAC_CTX_new();
    if (ctx === null) throw failed("HMAC_CTX_new");
    if (
      lib.HMAC_Init_ex(ctx, nonEmpty(raw), raw.length, backend.md, null) !== 1
    ) {
      lib.HMAC_CTX_free(ctx);
      throw failed("HMAC_Init_ex");
    }
    this.#backend = backend;
    this.#ctx = ctx;
    backend.own(this, () => lib.HMAC_CTX_free(ctx));
  }

  sign(data: Uint8Array): Promise<Uint8Array> {
    return settle(() => this.signSync(data));
  }

  /** {@linkcode sign}, synchronously. */
  signSync(data: Uint8Array): Uint8Array {
    const out = new Uint8Array(SHA256_SIZE);
    this.#mac(data, out);
    return out;
  }

  signInto(data: Uint8Array, into: Uint8Array): Promise<void> {
    return settle(() => this.signIntoSync(data, into));
  }

  /** {@linkcode signInto}, synchronously. */
  signIntoSync(data: Uint8Array, into: Uint8Array): void {
    if (into.length > SHA256_SIZE) {
      throw new RangeError(`An HMAC-SHA-256 is 32 bytes, not ${into.length}`);
    }
    const scratch = this.#backend.scratch;
    this.#mac(data, scratch);
    into.set(
      into.length === SHA256_SIZE ? scratch : scratch.subarray(0, into.length),
    );
  }

  verify(data: Uint8Array, tag: Uint8Array): Promise<boolean> {
    return settle(() => this.verifySync(data, tag));
  }

  /** {@linkcode verify}, synchronously. */
  verifySync(data: Uint8Array, tag: Uint8Array): boolean {
    const scratch = this.#backend.scratch;
    this.#mac(data, scratch);
    return tag.length > 0 && equalPrefix(scratch, tag);
  }

  #mac(data: Uint8Array, out: Uint8Array): void {
    const lib = this.#backend.lib();
    const ctx = this.#ctx;
    // No key: start over with the key given at creation.
    if (
      lib.HMAC_Init_ex(ctx, null, 0, null, null) !== 1 ||
      (data.length > 0 &&
        lib.HMAC_Update(ctx, data, BigInt(data.length)) !== 1) ||
      lib.HMAC_Final(ctx, out, null) !== 1
    ) {
      throw failed("HMAC");
    }
  }
}

class NativeAeadKey implements AeadKey {
  readonly #backend: NativeCrypto;
  readonly #encrypt: Deno.PointerObject;
  readonly #decrypt: Deno.PointerObject;

  constructor(backend: NativeCrypto, raw: Uint8Array) {
    if (raw.length !== AES_256_KEY_SIZE) {
      throw new NativeCryptoError(
        `An AES-256-GCM key is ${AES_256_KEY_SIZE} bytes, not ${raw.length}`,
      );
    }
    const lib = backend.lib();
    const encrypt = lib.EVP_CIPHER_CTX_new();
    const decrypt = lib.EVP_CIPHER_CTX_new();
    const free = (): void => {
      lib.EVP_CIPHER_CTX_free(encrypt);
      lib.EVP_CIPHER_CTX_free(decrypt);
    };
    if (
      encrypt === null || decrypt === null ||
      lib.EVP_EncryptInit_ex(encrypt, backend.cipher, null, raw, null) !== 1 ||
      lib.EVP_DecryptInit_ex(decrypt, backend.cipher, null, raw, null) !== 1
    ) {
      free();
      throw failed("EVP_CipherInit_ex");
    }
    this.#backend = backend;
    this.#encrypt = encrypt;
    this.#decrypt = decrypt;
    backend.own(this, free);
  }

  seal(
    nonce: Uint8Array,
    aad: Uint8Array,
    plain: Uint8Array,
  ): Promise<Uint8Array> {
    return settle(() => this.sealSync(nonce, aad, plain));
  }

  /** {@linkcode seal}, synchronously. */
  sealSync(nonce: Uint8Array, aad: Uint8Array, plain: Uint8Array): Uint8Array {
    const out = new Uint8Array(plain.length + GCM_TAG_BYTES);
    this.sealIntoSync(nonce, aad, plain, out);
    return out;
  }

  sealInto(
    nonce: Uint8Array,
    aad: Uint8Array,
    plain: Uint8Array,
    into: Uint8Array,
  ): Promise<void> {
    return settle(() => this.sealIntoSync(nonce, aad, plain, into));
  }

  /** {@linkcode sealInto}, synchronously. */
  sealIntoSync(
    nonce: Uint8Array,
    aad: Uint8Array,
    plain: Uint8Array,
    into: Uint8Array,
  ): void {
    const size = plain.length;
    if (nonce.length !== GCM_NONCE_SIZE) throw badNonce(nonce);
    if (into.length !== size + GCM_TAG_BYTES) {
      throw new RangeError(
        `Sealing ${size} bytes needs ${
          size + GCM_TAG_BYTES
        }, not ${into.length}`,
      );
    }
    const backend = this.#backend;
    const lib = backend.lib();
    const ctx = this.#encrypt;
    const outLength = backend.outLength;
    const tag = backend.tag;
    if (
      lib.EVP_EncryptInit_ex(ctx, null, null, null, nonce) !== 1 ||
      (aad.length > 0 &&
        lib.EVP_EncryptUpdate(ctx, null, outLength, aad, aad.length) !== 1) ||
      (size > 0 &&
        lib.EVP_EncryptUpdate(ctx, into, outLength, plain, size) !== 1) ||
      lib.EVP_EncryptFinal_ex(ctx, tag, outLength) !== 1 ||
      lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG_BYTES, tag) !==
        1
    ) {
      lib.ERR_clear_error();
      throw failed("AES-256-GCM encryption");
    }
    into.set(tag, size);
  }

  open(
    nonce: Uint8Array,
    aad: Uint8Array,
    sealed: Uint8Array,
  ): Promise<Uint8Array | null> {
    return settle(() => this.openSync(nonce, aad, sealed));
  }

  /** {@linkcode open}, synchronously. */
  openSync(
    nonce: Uint8Array,
    aad: Uint8Array,
    sealed: Uint8Array,
  ): Uint8Array | null {
    if (nonce.length !== GCM_NONCE_SIZE) throw badNonce(nonce);
    if (sealed.length < GCM_TAG_BYTES) return null;
    const out = new Uint8Array(sealed.length - GCM_TAG_BYTES);
    return this.openIntoSync(nonce, aad, sealed, out) ? out : null;
  }

  openInto(
    nonce: Uint8Array,
    aad: Uint8Array,
    sealed: Uint8Array,
    into: Uint8Array,
  ): Promise<boolean> {
    return settle(() => this.openIntoSync(nonce, aad, sealed, into));
  }

  /** {@linkcode openInto}, synchronously. */
  openIntoSync(
    nonce: Uint8Array,
    aad: Uint8Array,
    sealed: Uint8Array,
    into: Uint8Array,
  ): boolean {
    if (nonce.length !== GCM_NONCE_SIZE) throw badNonce(nonce);
    if (sealed.length < GCM_TAG_BYTES) return false;
    const size = sealed.length - GCM_TAG_BYTES;
    if (into.length !== size) {
      throw new RangeError(
        `Opening ${sealed.length} bytes needs ${size}, not ${into.length}`,
      );
    }
    const backend = this.#backend;
    const lib = backend.lib();
    const ctx = this.#decrypt;
    const outLength = backend.outLength;
    if (
      lib.EVP_DecryptInit_ex(ctx, null, null, null, nonce) !== 1 ||
      (aad.length > 0 &&
        lib.EVP_DecryptUpdate(ctx, null, outLength, aad, aad.length) !== 1) ||
      (size > 0 &&
        lib.EVP_DecryptUpdate(ctx, into, outLength, sealed, size) !== 1) ||
      lib.EVP_CIPHER_CTX_ctrl(
          ctx,
          EVP_CTRL_GCM_SET_TAG,
          GCM_TAG_BYTES,
          sealed.subarray(size),
        ) !== 1 ||
      lib.EVP_DecryptFinal_ex(ctx, backend.tag, outLength) !== 1
    ) {
      lib.ERR_clear_error();
      into.fill(0);
      return false;
    }
    return true;
  }
}

function badNonce(nonce: Uint8Array): RangeError {
  return new RangeError(
    `An AES-GCM nonce is ${GCM_NONCE_SIZE} bytes here, not ${nonce.length}`,
  );
}

function newPkey(
  backend: NativeCrypto,
  raw: Uint8Array,
  kind: "private" | "public",
): Deno.PointerObject {
  const what = kind === "private" ? "seed" : "public key";
  if (raw.length !== ED25519_RAW_SIZE) {
    throw new NativeCryptoError(
      `An Ed25519 ${what} is ${ED25519_RAW_SIZE} bytes, not ${raw.length}`,
    );
  }
  const lib = backend.lib();
  const pkey = kind === "private"
    ? lib.EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, null, raw, RAW_SIZE)
    : lib.EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, null, raw, RAW_SIZE);
  if (pkey === null) {
    lib.ERR_clear_error();
    throw new NativeCryptoError(`OpenSSL refuses the Ed25519 ${what}`);
  }
  return pkey;
}

/**
 * A key's own `EVP_MD_CTX` (OpenSSL keeps the key's context in it across
 * initialisations, so two keys must never share one), both freed with
 * `owner`.
 */
function keyContext(
  backend: NativeCrypto,
  pkey: Deno.PointerObject,
  owner: object,
): Deno.PointerObject {
  const lib = backend.lib();
  const ctx = lib.EVP_MD_CTX_new();
  if (ctx === null) {
    lib.EVP_PKEY_free(pkey);
    throw failed("EVP_MD_CTX_new");
  }
  backend.own(owner, () => {
    lib.EVP_MD_CTX_free(ctx);
    lib.EVP_PKEY_free(pkey);
  });
  return ctx;
}

class NativeSigner implements Signer {
  readonly #backend: NativeCrypto;
  readonly #pkey: Deno.PointerObject;
  readonly #ctx: Deno.PointerObject;

  constructor(backend: NativeCrypto, seed: Uint8Array, publicKey: Uint8Array) {
    const lib = backend.lib();
    const pkey = newPkey(backend, seed, "private");
    // The public half must be the one receivers trust.
    const derived = new Uint8Array(ED25519_RAW_SIZE);
    const size = backend.size;
    size[0] = RAW_SIZE;
    const ok = lib.EVP_PKEY_get_raw_public_key(pkey, derived, size) === 1 &&
      size[0] === RAW_SIZE && publicKey.length === ED25519_RAW_SIZE &&
      derived.every((b, i) => b === publicKey[i]);
    if (!ok) {
      lib.EVP_PKEY_free(pkey);
      lib.ERR_clear_error();
      throw new NativeCryptoError(
        "The signing key's seed does not match its public key",
      );
    }
    this.#backend = backend;
    this.#pkey = pkey;
    this.#ctx = keyContext(backend, pkey, this);
  }

  sign(message: Uint8Array): Promise<Uint8Array> {
    return settle(() => this.signSync(message));
  }

  /** {@linkcode sign}, synchronously. */
  signSync(message: Uint8Array): Uint8Array {
    const backend = this.#backend;
    const lib = backend.lib();
    const ctx = this.#ctx;
    const out = new Uint8Array(ED25519_SIGNATURE_SIZE);
    const size = backend.size;
    size[0] = SIGNATURE_SIZE;
    const length = BigInt(message.length);
    if (
      lib.EVP_DigestSignInit(ctx, null, null, null, this.#pkey) !== 1 ||
      lib.EVP_DigestSign(ctx, out, size, nonEmpty(message), length) !== 1 ||
      size[0] !== SIGNATURE_SIZE
    ) {
      lib.ERR_clear_error();
      throw failed("Ed25519 signing");
    }
    return out;
  }
}

class NativeVerifier implements Verifier {
  readonly #backend: NativeCrypto;
  readonly #pkey: Deno.PointerObject;
  readonly #ctx: Deno.PointerObject;

  constructor(backend: NativeCrypto, publicKey: Uint8Array) {
    const pkey = newPkey(backend, publicKey, "public");
    this.#backend = backend;
    this.#pkey = pkey;
    this.#ctx = keyContext(backend, pkey, this);
  }

  verify(message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    return settle(() => this.verifySync(message, signature));
  }

  /** {@linkcode verify}, synchronously. */
  verifySync(message: Uint8Array, signature: Uint8Array): boolean {
    if (signature.length !== ED25519_SIGNATURE_SIZE) return false;
    const lib = this.#backend.lib();
    const ctx = this.#ctx;
    const ok =
      lib.EVP_DigestVerifyInit(ctx, null, null, null, this.#pkey) === 1 &&
      lib.EVP_DigestVerify(
          ctx,
          signature,
          SIGNATURE_SIZE,
          nonEmpty(message),
          BigInt(message.length),
        ) === 1;
    if (!ok) lib.ERR_clear_error();
    return ok;
  }
}

/**
 * The crypto backend for `--io`: OpenSSL's for `native` (an error when it
 * cannot load) and, where it loads, for `auto`; WebCrypto for `deno` and
 * wherever libcrypto is missing. The caller closes it after the session.
 *
 * @param choice What `--io` asked for.
 * @returns The backend.
 * @throws {UsageError} When `native` was asked for and libcrypto cannot be
 * used (exit status 2), saying why.
 */
export function chooseCrypto(choice: IoChoice): CryptoBackend {
  if (choice === "deno") return WEB_CRYPTO;
  const reason = nativeCryptoUnavailable();
  if (reason === undefined) return openNativeCrypto();
  if (choice === "native") {
    throw new UsageError(`Option "--io native" cannot be used here: ${reason}`);
  }
  return WEB_CRYPTO;
}
