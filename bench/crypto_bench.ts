/**
 * Per-datagram cost of the frame guard's cryptography, WebCrypto against
 * OpenSSL (`lib/security/crypto.ts`, `lib/security/native_crypto.ts`):
 * AES-256-GCM and HMAC-SHA-256 of a 1,400-byte datagram, and a guarded
 * endpoint's seal and open of encrypted DATA frames of that size, a
 * sending guard handing its datagrams straight to a receiving one (64
 * datagrams an iteration: divide by 64), so that only the guard and its
 * cryptography are measured.
 *
 * ```sh
 * deno bench --allow-ffi --unstable-net bench/crypto_bench.ts
 * ```
 *
 * @module
 */

import { type CryptoBackend, WEB_CRYPTO } from "../lib/security/crypto.ts";
import {
  nativeCryptoUnavailable,
  openNativeCrypto,
} from "../lib/security/native_crypto.ts";
import { GuardedEndpoint, type GuardOptions } from "../lib/security/guard.ts";
import type { Peer } from "../lib/net/address.ts";
import type { Datagram, DatagramEndpoint } from "../lib/net/socket.ts";
import { encodeFrame, nowMicros } from "../lib/wire/frame.ts";
import { emptyDrops } from "../lib/reliable/stats.ts";

/** Bytes of a datagram. */
const DATAGRAM = 1400;
/** Datagrams per guard iteration. */
const BATCH = 64;

const reason = nativeCryptoUnavailable();
if (reason !== undefined) console.error(`openssl skipped: ${reason}`);
const backends: CryptoBackend[] = reason === undefined
  ? [WEB_CRYPTO, openNativeCrypto()]
  : [WEB_CRYPTO];

const key = crypto.getRandomValues(new Uint8Array(32));
const nonce = crypto.getRandomValues(new Uint8Array(12));
const aad = crypto.getRandomValues(new Uint8Array(22));
const plain = crypto.getRandomValues(new Uint8Array(DATAGRAM - 40));
/** One end of an in-process pipe: what one end sends, the other receives. */
class Pipe implements DatagramEndpoint {
  readonly local: Peer;
  peer: Pipe | undefined;
  #queue: Datagram[] = [];
  #waiting: ((datagram: Datagram | null) => void) | undefined;
  #closed = false;

  constructor(port: number) {
    this.local = { address: "127.0.0.1", port };
  }

  send(payload: Uint8Array): Promise<void> {
    this.peer?.deliver({ payload, from: this.local });
    return Promise.resolve();
  }

  deliver(datagram: Datagram): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (waiting) waiting(datagram);
    else this.#queue.push(datagram);
  }

  receive(): Promise<Datagram | null> {
    const next = this.#queue.shift();
    if (next) return Promise.resolve(next);
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiting = resolve);
  }

  close(): void {
    this.#closed = true;
    this.#waiting?.(null);
    this.#waiting = undefined;
  }
}

function frame(seq: number): Uint8Array {
  // 40 bytes of trailer with encryption: 1,400 bytes on the wire.
  const data = plain.subarray(0, DATAGRAM - 40 - 24 - 16 - 22);
  return encodeFrame({
    type: "data",
    session: "00112233445566ff",
    seq,
    retransmit: false,
    timestamp: nowMicros(),
    low: 1,
    records: [{ bulletin: seq, total: data.length, offset: 0, data }],
  });
}

for (const backend of backends) {
  const name = backend.name;
  const aead = await backend.aeadKey(key);
  const mac = await backend.macKey(key);
  const sealed = await aead.seal(nonce, aad, plain);

  Deno.bench({
    name: `${name}: AES-256-GCM seal, 1,400 B`,
    group: "seal",
    baseline: name === "webcrypto",
    async fn() {
      await aead.seal(nonce, aad, plain);
    },
  });
  Deno.bench({
    name: `${name}: AES-256-GCM open, 1,400 B`,
    group: "open",
    baseline: name === "webcrypto",
    async fn() {
      await aead.open(nonce, aad, sealed);
    },
  });
  Deno.bench({
    name: `${name}: HMAC-SHA-256, 1,400 B`,
    group: "hmac",
    baseline: name === "webcrypto",
    async fn() {
      await mac.sign(sealed);
    },
  });
  Deno.bench({
    name: `${name}: SHA-256, 1,400 B`,
    group: "sha256",
    baseline: name === "webcrypto",
    async fn() {
      await backend.sha256(sealed);
    },
  });

  // A guarded sender and receiver, encrypting, on one memory network.
  const options = (): GuardOptions => ({
    key: { bytes: key },
    dropped: emptyDrops(),
    crypto: backend,
    encrypt: true,
  });
  const senderPipe = new Pipe(40001);
  const receiverPipe = new Pipe(40002);
  senderPipe.peer = receiverPipe;
  const receiver = new GuardedEndpoint(receiverPipe, options());
  const sender = new GuardedEndpoint(senderPipe, options());
  const to = receiverPipe.local;
  // The guard seals a copy: one frame serves every send.
  const datagram = frame(1);
  Deno.bench({
    name: `${name}: guard seal+open, ${BATCH} × 1,400 B`,
    group: "guard",
    baseline: name === "webcrypto",
    async fn() {
      for (let i = 0; i < BATCH; i++) await sender.send(datagram, to);
      for (let i = 0; i < BATCH; i++) {
        if ((await receiver.receive()) === null) throw new Error("closed");
      }
    },
  });
}
