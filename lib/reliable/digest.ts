/**
 * The SHA-256 a fragmented bulletin carries in its first record: how the
 * reliable sender and receiver compute it. WebCrypto by default; a crypto
 * backend with an incremental hash (OpenSSL's, on the native path) lets the
 * receiver hash fragments as they arrive, so a large bulletin is checked
 * the moment its last fragment lands.
 *
 * @module
 */

/** An incremental SHA-256. */
export interface Sha256Stream {
  /** Adds bytes. */
  update(data: Uint8Array): void;
  /** The hash of everything added; the stream is spent afterwards. */
  digest(): Uint8Array;
}

/** What the reliable protocol needs to hash bulletins. */
export interface BulletinHasher {
  /** SHA-256 of one buffer. */
  sha256(data: Uint8Array): Promise<Uint8Array>;
  /** A new incremental SHA-256, where the backend has one. */
  sha256Stream?(): Sha256Stream;
}

/** WebCrypto's SHA-256 (no incremental hash). */
export const WEB_HASHER: BulletinHasher = {
  async sha256(data: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(
      await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>),
    );
  },
};
