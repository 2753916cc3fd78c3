/**
 * The SHA-256 a fragmented bulletin carries in its first record: how the
 * reliable sender and receiver compute it. By default with the runtime's
 * `node:crypto` hash, which is incremental and synchronous (100 MB in about
 * 60 ms here, against 360 ms for one WebCrypto digest), so the receiver
 * hashes fragments as they arrive and a large bulletin is checked the
 * moment its last fragment lands. A crypto backend may bring its own.
 *
 * @module
 */

import { createHash } from "node:crypto";

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

/** The runtime's `node:crypto` SHA-256, one-shot and incremental. */
export const NODE_HASHER: BulletinHasher = {
  sha256(data: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(
      new Uint8Array(createHash("sha256").update(data).digest()),
    );
  },
  sha256Stream(): Sha256Stream {
    const hash = createHash("sha256");
    return {
      update(data: Uint8Array): void {
        hash.update(data);
      },
      digest(): Uint8Array {
        return new Uint8Array(hash.digest());
      },
    };
  },
};
