/**
 * Every OpenSSL libcrypto binding of the project, loaded on demand from
 * `libcrypto.so.3` (or `libcrypto.so`) with `Deno.dlopen` (and closed when
 * its last user is done), and the constants they take: AES-256-GCM through
 * `EVP_CIPHER_CTX`, HMAC-SHA-256 through `HMAC_CTX` (a context keyed once
 * and reset per message) and the one-shot `HMAC`, SHA-256 through the
 * one-shot `SHA256` and `EVP_MD_CTX`, and Ed25519 through raw `EVP_PKEY`s
 * with `EVP_DigestSign` / `EVP_DigestVerify`. OpenSSL 3.0 or later.
 *
 * Every call is synchronous: each is well under a microsecond of work for a
 * datagram, far less than a hop to a worker thread would cost.
 *
 * @module
 */

/** The symbols this module binds. */
const SYMBOLS = {
  ["OpenSSL_version"]: { parameters: ["i32"], result: "pointer" },
  ["ERR_clear_error"]: { parameters: [], result: "void" },
  // Algorithms, fetched once from the default provider.
  ["EVP_CIPHER_fetch"]: {
    parameters: ["pointer", "buffer", "pointer"],
    result: "pointer",
  },
  ["EVP_CIPHER_free"]: { parameters: ["pointer"], result: "void" },
  ["EVP_MD_fetch"]: {
    parameters: ["pointer", "buffer", "pointer"],
    result: "pointer",
  },
  ["EVP_MD_free"]: { parameters: ["pointer"], result: "void" },
  // Ciphers.
  ["EVP_CIPHER_CTX_new"]: { parameters: [], result: "pointer" },
  ["EVP_CIPHER_CTX_free"]: { parameters: ["pointer"], result: "void" },
  ["EVP_EncryptInit_ex"]: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer"],
    result: "i32",
  },
  ["EVP_DecryptInit_ex"]: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer"],
    result: "i32",
  },
  ["EVP_EncryptUpdate"]: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  ["EVP_DecryptUpdate"]: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  ["EVP_EncryptFinal_ex"]: {
    parameters: ["pointer", "buffer", "buffer"],
    result: "i32",
  },
  ["EVP_DecryptFinal_ex"]: {
    parameters: ["pointer", "buffer", "buffer"],
    result: "i32",
  },
  ["EVP_CIPHER_CTX_ctrl"]: {
    parameters: ["pointer", "i32", "i32", "buffer"],
    result: "i32",
  },
  // HMAC.
  ["HMAC"]: {
    parameters: [
      "pointer",
      "buffer",
      "i32",
      "buffer",
      "usize",
      "buffer",
      "pointer",
    ],
    result: "pointer",
  },
  ["HMAC_CTX_new"]: { parameters: [], result: "pointer" },
  ["HMAC_CTX_free"]: { parameters: ["pointer"], result: "void" },
  ["HMAC_Init_ex"]: {
    parameters: ["pointer", "buffer", "i32", "pointer", "pointer"],
    result: "i32",
  },
  ["HMAC_Update"]: {
    parameters: ["pointer", "buffer", "usize"],
    result: "i32",
  },
  ["HMAC_Final"]: {
    parameters: ["pointer", "buffer", "pointer"],
    result: "i32",
  },
  // Digests.
  ["SHA256"]: {
    parameters: ["buffer", "usize", "buffer"],
    result: "pointer",
  },
  ["EVP_MD_CTX_new"]: { parameters: [], result: "pointer" },
  ["EVP_MD_CTX_free"]: { parameters: ["pointer"], result: "void" },
  ["EVP_DigestInit_ex"]: {
    parameters: ["pointer", "pointer", "pointer"],
    result: "i32",
  },
  ["EVP_DigestUpdate"]: {
    parameters: ["pointer", "buffer", "usize"],
    result: "i32",
  },
  ["EVP_DigestFinal_ex"]: {
    parameters: ["pointer", "buffer", "pointer"],
    result: "i32",
  },
  // Ed25519.
  ["EVP_PKEY_new_raw_private_key"]: {
    parameters: ["i32", "pointer", "buffer", "usize"],
    result: "pointer",
  },
  ["EVP_PKEY_new_raw_public_key"]: {
    parameters: ["i32", "pointer", "buffer", "usize"],
    result: "pointer",
  },
  ["EVP_PKEY_get_raw_public_key"]: {
    parameters: ["pointer", "buffer", "buffer"],
    result: "i32",
  },
  ["EVP_PKEY_free"]: { parameters: ["pointer"], result: "void" },
  ["EVP_DigestSignInit"]: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  ["EVP_DigestSign"]: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "usize"],
    result: "i32",
  },
  ["EVP_DigestVerifyInit"]: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  ["EVP_DigestVerify"]: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize"],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded library's symbols. */
export type Libcrypto = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** The file names tried, in order. */
export const LIBCRYPTO_NAMES: readonly string[] = [
  "libcrypto.so.3",
  "libcrypto.so",
];

let library: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;
let users = 0;

function open(): Deno.DynamicLibrary<typeof SYMBOLS> {
  let first: unknown;
  for (const name of LIBCRYPTO_NAMES) {
    try {
      return Deno.dlopen(name, SYMBOLS);
    } catch (error) {
      // A missing permission is the same for every name.
      if (error instanceof Deno.errors.NotCapable) throw error;
      first ??= error;
    }
  }
  throw first;
}

/**
 * Loads libcrypto (needs `--allow-ffi`), or counts one more user of the
 * loaded library. Every call needs its {@linkcode releaseLibcrypto}: the
 * library is closed when its last user releases it, so a program (or a test
 * under the resource sanitizer) that closed every native crypto backend
 * holds no library.
 *
 * @returns The bound functions.
 * @throws {Error} What `Deno.dlopen` threw for `libcrypto.so.3`, when no
 * name loads (a `Deno.errors.NotCapable` without `--allow-ffi`).
 */
export function acquireLibcrypto(): Libcrypto {
  library ??= open();
  users += 1;
  return library.symbols;
}

/** Ends one {@linkcode acquireLibcrypto}; the last one closes the library. */
export function releaseLibcrypto(): void {
  if (users === 0) return;
  users -= 1;
  if (users === 0) {
    library?.close();
    library = undefined;
  }
}

/**
 * The loaded library's functions, for code that holds an
 * {@linkcode acquireLibcrypto}.
 *
 * @returns The bound functions.
 * @throws {Error} When nobody acquired the library.
 */
export function libcrypto(): Libcrypto {
  if (library === undefined) {
    throw new Error("libcrypto is not loaded (call acquireLibcrypto() first)");
  }
  return library.symbols;
}

/**
 * The loaded library's version text, e.g. "OpenSSL 3.0.13 30 Jan 2024".
 *
 * @returns `OpenSSL_version(OPENSSL_VERSION)`, or "" when it has none.
 */
export function libcryptoVersion(): string {
  const pointer = libcrypto().OpenSSL_version(0);
  return pointer === null
    ? ""
    : new Deno.UnsafePointerView(pointer).getCString();
}

/**
 * A NUL-terminated copy of a string, for the `const char *` parameters.
 *
 * @param text ASCII text, such as an algorithm name.
 * @returns Its bytes and a terminating zero.
 */
export function cString(text: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** `EVP_CIPHER_CTX_ctrl`: the GCM tag of the last encryption (get). */
export const EVP_CTRL_GCM_GET_TAG = 0x10;
/** `EVP_CIPHER_CTX_ctrl`: the GCM tag to check at decryption (set). */
export const EVP_CTRL_GCM_SET_TAG = 0x11;
/** `EVP_PKEY_ED25519` (`NID_ED25519`). */
export const EVP_PKEY_ED25519 = 1087;
/** Size of an AES-256 key. */
export const AES_256_KEY_SIZE = 32;
/** Size of the GCM nonce used here (OpenSSL's default IV length). */
export const GCM_NONCE_SIZE = 12;
/** Size of a full GCM tag. */
export const GCM_TAG_BYTES = 16;
/** Size of a SHA-256 digest (and HMAC-SHA-256). */
export const SHA256_SIZE = 32;
/** Size of an Ed25519 signature. */
export const ED25519_SIGNATURE_SIZE = 64;
/** Size of an Ed25519 seed or public key. */
export const ED25519_RAW_SIZE = 32;
