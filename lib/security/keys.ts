/**
 * Key files: the shared 256-bit group key that authenticates (and may
 * encrypt) every frame, and the Ed25519 signing key a sender signs
 * bulletins with, with its public half for receivers' `--trust`.
 *
 * Every key file is one line of text, `mcast-key-v1 <kind> <hex>`, so that
 * one kind of key is never taken for another. Secret key files are created
 * with mode 0600 and refused when others can read them. Key material never
 * appears in a message.
 *
 * @module
 */

import { errorLine, McastError, permissionHint } from "../errors.ts";

/** Size of a group key in bytes (256 bits). */
export const GROUP_KEY_SIZE = 32;
/** Size of an Ed25519 public key or private seed in bytes. */
export const ED25519_KEY_SIZE = 32;

/** The kinds of key file. */
export type KeyKind = "group" | "ed25519-private" | "ed25519-public";

/** A key file that cannot be written, read or used (exit status 2). */
export class KeyError extends McastError {
  /**
   * Creates one.
   *
   * @param message What is wrong, in one line, without key material.
   */
  constructor(message: string) {
    super(message, 2);
    this.name = "KeyError";
  }
}

/** A group key, ready for the frame guard. */
export interface GroupKey {
  /** The 32 secret bytes. */
  readonly bytes: Uint8Array;
}

/** A sender's Ed25519 signing key. */
export interface SigningKey {
  /** The private key, for signing. */
  readonly privateKey: CryptoKey;
  /** The public key's 32 bytes, as receivers trust them. */
  readonly publicKey: Uint8Array;
  /**
   * The 32-byte private seed, for crypto backends that cannot use a
   * WebCrypto key (OpenSSL's). {@linkcode readSigningKey} sets it; a key
   * made elsewhere may leave it out if `privateKey` is extractable.
   */
  readonly seed?: Uint8Array;
}

/** Options of {@linkcode generateKeyFile}. */
export interface GenerateKeyOptions {
  /** Which key to create: a group key (default) or an Ed25519 signing key. */
  kind?: "group" | "ed25519";
}

/** What {@linkcode generateKeyFile} wrote. */
export interface GeneratedKey {
  /** The secret key file (mode 0600). */
  path: string;
  /** For a signing key: the public key file `<path>.pub`. */
  publicPath?: string;
  /** For a signing key: its public key, as `--trust` takes it (64 hex digits). */
  publicKey?: string;
}

const PREFIX = "mcast-key-v1";
const HEX_PATTERN = /^[0-9a-f]{64}$/;
/** DER prefix of an Ed25519 private key in PKCS #8, before its 32-byte seed. */
const PKCS8_ED25519 = [
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x04,
  0x22,
  0x04,
  0x20,
];

/**
 * Formats bytes as lowercase hex.
 *
 * @param bytes Any bytes.
 * @returns Two hex digits per byte.
 */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function fromHex(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length / 2);
  for (let i = 0; i < bytes.length; i++) {
    bytes[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  }
  return bytes;
}

function keyLine(kind: KeyKind, bytes: Uint8Array): string {
  return `${PREFIX} ${kind} ${toHex(bytes)}\n`;
}

function writeError(path: string, error: unknown): KeyError {
  if (error instanceof Deno.errors.AlreadyExists) {
    return new KeyError(
      `Key file ${path} already exists: refusing to overwrite a key`,
    );
  }
  if (error instanceof Deno.errors.NotCapable) {
    return new KeyError(`Cannot write key file ${path}: needs --allow-write`);
  }
  return new KeyError(
    `Cannot write key file ${path}: ${
      errorLine(error).replace(/^./, (c) => c.toLowerCase())
    }`,
  );
}

function writeSecret(path: string, text: string, mode: number): void {
  try {
    Deno.writeTextFileSync(path, text, { createNew: true, mode });
    // The mode given at creation is masked by the umask: set it exactly.
    Deno.chmodSync(path, mode);
  } catch (error) {
    throw writeError(path, error);
  }
}

/**
 * Creates a new key file that does not exist yet: a random group key, or an
 * Ed25519 signing key (the private key at `path`, mode 0600, and the public
 * key at `path.pub`, mode 0644).
 *
 * @param path Where to write the secret key.
 * @param options Which kind of key.
 * @returns The paths written and, for a signing key, its public key.
 * @throws {KeyError} When a file exists already or cannot be written.
 */
export async function generateKeyFile(
  path: string,
  options: GenerateKeyOptions = {},
): Promise<GeneratedKey> {
  if (options.kind !== "ed25519") {
    const key = crypto.getRandomValues(new Uint8Array(GROUP_KEY_SIZE));
    writeSecret(path, keyLine("group", key), 0o600);
    key.fill(0);
    return { path };
  }
  const pair = await crypto.subtle.generateKey(
    { name: "Ed25519" },
    true,
    ["sign", "verify"],
  ) as CryptoKeyPair;
  const pkcs8 = new Uint8Array(
    await crypto.subtle.exportKey("pkcs8", pair.privateKey),
  );
  const seed = pkcs8.slice(PKCS8_ED25519.length);
  const publicKey = new Uint8Array(
    await crypto.subtle.exportKey("raw", pair.publicKey),
  );
  const publicPath = `${path}.pub`;
  writeSecret(path, keyLine("ed25519-private", seed), 0o600);
  seed.fill(0);
  pkcs8.fill(0);
  try {
    writeSecret(publicPath, keyLine("ed25519-public", publicKey), 0o644);
  } catch (error) {
    await Deno.remove(path).catch(() => {});
    throw error;
  }
  return { path, publicPath, publicKey: toHex(publicKey) };
}

function checkPrivate(path: string, text: string, kind: KeyKind): void {
  const fields = text.trim().split(/\s+/);
  if (
    fields.length === 3 && fields[0] === PREFIX && KINDS.has(fields[1]!) &&
    fields[1] !== kind
  ) return;
  if (Deno.build.os === "windows") return;
  const mode = Deno.statSync(path).mode;
  if (mode !== null && (mode & 0o077) !== 0) {
    const octal = (mode & 0o777).toString(8).padStart(4, "0");
    throw new KeyError(
      `Key file ${path} can be read by others (mode ${octal}): run chmod 600 ${path}`,
    );
  }
}

function readKeyText(path: string, secret: KeyKind | false): string {
  try {
    const text = Deno.readTextFileSync(path);
    if (secret) checkPrivate(path, text, secret);
    return text;
  } catch (error) {
    if (error instanceof KeyError) throw error;
    if (error instanceof Deno.errors.NotFound) {
      throw new KeyError(`Key file ${path} does not exist`);
    }
    if (error instanceof Deno.errors.NotCapable) {
      throw new KeyError(
        `Cannot read key file ${path}: ${
          permissionHint(error, "--allow-read")
        }`,
      );
    }
    throw new KeyError(
      `Cannot read key file ${path}: ${
        errorLine(error).replace(/^./, (c) => c.toLowerCase())
      }`,
    );
  }
}

const KINDS: ReadonlySet<string> = new Set([
  "group",
  "ed25519-private",
  "ed25519-public",
]);

function withArticle(kind: string): string {
  return kind === "group" ? "a group" : `an ${kind}`;
}

function parseKeyText(text: string, kind: KeyKind, what: string): Uint8Array {
  const fields = text.trim().split(/\s+/);
  if (fields.length !== 3 || fields[0] !== PREFIX || !KINDS.has(fields[1]!)) {
    throw new KeyError(`${what} is not an mcast key`);
  }
  if (fields[1] !== kind) {
    throw new KeyError(
      `${what} holds ${withArticle(fields[1]!)} key, not ${
        withArticle(kind)
      } key`,
    );
  }
  const hex = fields[2]!.toLowerCase();
  if (!HEX_PATTERN.test(hex)) {
    throw new KeyError(`${what} is damaged: the key must be 64 hex digits`);
  }
  return fromHex(hex);
}

/**
 * Reads a group key file made by {@linkcode generateKeyFile}.
 *
 * @param path The key file.
 * @returns The key.
 * @throws {KeyError} When the file is missing, readable by others, damaged
 * or holds another kind of key.
 */
export function readGroupKey(path: string): GroupKey {
  const text = readKeyText(path, "group");
  return { bytes: parseKeyText(text, "group", `Key file ${path}`) };
}

/**
 * Reads an Ed25519 signing key file made by {@linkcode generateKeyFile}.
 *
 * @param path The private key file.
 * @returns The signing key and its public half.
 * @throws {KeyError} When the file is missing, readable by others, damaged
 * or holds another kind of key.
 */
export async function readSigningKey(path: string): Promise<SigningKey> {
  const text = readKeyText(path, "ed25519-private");
  const seed = parseKeyText(text, "ed25519-private", `Key file ${path}`);
  const pkcs8 = new Uint8Array(PKCS8_ED25519.length + ED25519_KEY_SIZE);
  pkcs8.set(PKCS8_ED25519, 0);
  pkcs8.set(seed, PKCS8_ED25519.length);
  let privateKey: CryptoKey;
  try {
    // Extractable only to derive the public key here; never exported else.
    privateKey = await crypto.subtle.importKey(
      "pkcs8",
      pkcs8,
      { name: "Ed25519" },
      true,
      ["sign"],
    );
  } catch {
    seed.fill(0);
    throw new KeyError(`Key file ${path} is damaged: not an Ed25519 key`);
  } finally {
    pkcs8.fill(0);
  }
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  const publicKey = base64UrlBytes(jwk.x ?? "");
  return { privateKey, publicKey, seed };
}

function base64UrlBytes(text: string): Uint8Array {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - base64.length % 4) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/**
 * Reads a public key to trust, given as 64 hex digits or as the path of a
 * `.pub` file made by {@linkcode generateKeyFile}.
 *
 * @param value The `--trust` argument.
 * @returns The public key's 32 bytes.
 * @throws {KeyError} When it is neither.
 */
export function readPublicKey(value: string): Uint8Array {
  const hex = value.trim().toLowerCase();
  if (HEX_PATTERN.test(hex)) return fromHex(hex);
  const text = readKeyText(value, false);
  return parseKeyText(text, "ed25519-public", `Public key file ${value}`);
}
