/**
 * The frame guard: authentication, encryption, replay protection and
 * source signatures, between the socket and the codec. A
 * {@linkcode GuardedEndpoint} wraps a {@linkcode DatagramEndpoint}: what the
 * protocol sends is sealed on the way out, and what arrives is let through
 * only once it verifies, with its trailer removed, so the codec and the
 * state machines above see frames exactly as without keys.
 *
 * With a group key every frame ends with a trailer (its length in the
 * header's tag-length byte):
 *
 * | field | size | when |
 * |---|---|---|
 * | GCM tag | 16 | DATA with the `encrypted` flag |
 * | previous datagram's chain hash | 32 | DATA with the `chained` flag |
 * | Ed25519 signature of this datagram's chain hash | 64 | DATA with the `signed` flag |
 * | send time, µs since the Unix epoch | 8 | always |
 * | HMAC-SHA-256 of everything before, first 16 bytes | 16 | always |
 *
 * The cryptography is that of a {@linkcode CryptoBackend}: WebCrypto by
 * default, OpenSSL's (`openNativeCrypto()`) for speed; both put the same
 * bytes on the wire.
 *
 * Keys come from the group key with HKDF-SHA-256: one HMAC key for every
 * frame, and one AES-256-GCM key per session (salt: the session id). A DATA
 * frame's records are encrypted with the nonce `0^32 ‖ seq` and the header's
 * session, seq, version and type as associated data: every transmission of a
 * sequence number carries the same records, so a repair, or a sender resumed
 * from its journal, encrypts the same plaintext under the same nonce and
 * produces the same ciphertext; a nonce never covers two plaintexts.
 *
 * Replays: a frame sent longer ago than the clock-skew bound (or further in
 * the future) is dropped as stale; within it, each party (the sender of a
 * session; each receiver, by name, in a session) stamps strictly increasing
 * send times, and a window per party rejects a send time seen before.
 *
 * Signatures: each DATA frame's chain hash covers its session, sequence and
 * plaintext records and the previous datagram's chain hash. The sender signs
 * every 32nd hash, the last one whenever it pauses (it sends that datagram
 * once more, signed) and every repair, so one signature vouches for a run of
 * datagrams and a repair vouches for itself. A receiver that trusts a key
 * lets a DATA frame through only once a signature covers it.
 *
 * @module
 */

import type { Peer } from "../net/address.ts";
import {
  asRetransmission,
  FLAGS,
  FRAME_TYPES,
  hasMagic,
} from "../wire/frame.ts";
import type { GroupKey, SigningKey } from "./keys.ts";
import {
  type AeadKey,
  type CryptoBackend,
  type CryptoName,
  type MacKey,
  type Signer,
  type Verifier,
  WEB_CRYPTO,
} from "./crypto.ts";
import type { Datagram, DatagramEndpoint } from "../net/socket.ts";
import type { DropCounts } from "../reliable/stats.ts";
import { readU64, writeU64 } from "../wire/bytes.ts";

/** Size of the send time in the trailer. */
export const TIME_SIZE = 8;
/** Size of the truncated HMAC at the end of the trailer. */
export const MAC_SIZE = 16;
/** Size of the AES-GCM tag of an encrypted DATA frame. */
export const GCM_TAG_SIZE = 16;
/** Size of a chain hash (SHA-256). */
export const CHAIN_SIZE = 32;
/** Size of an Ed25519 signature. */
export const SIGNATURE_SIZE = 64;
/** Default clock-skew bound: frames sent longer ago (or ahead) are stale. */
export const DEFAULT_MAX_SKEW_MS = 10_000;
/** The sender signs at least every this many DATA datagrams. */
export const SIGN_EVERY = 32;

/** Datagrams a guard seals, or checks, at once. */
export const MAX_IN_FLIGHT = 32;
/** How long a sender waits for the next datagram before signing the last. */
const IDLE_SIGN_MS = 2;
/** Reordering a party's frames may show, in µs of send time. */
const REPLAY_WINDOW_US = 2_000_000;
/** Where a DATA frame's encrypted part starts: after the header, timestamp and low. */
const PAYLOAD_AT = 24 + 16;
const DATA_TYPE = FRAME_TYPES.data;
const SECURITY_FLAGS = FLAGS.encrypted | FLAGS.chained | FLAGS.signed;
const ZERO_HASH = new Uint8Array(CHAIN_SIZE);
const encoder = new TextEncoder();
const CHAIN_DOMAIN = encoder.encode("mcast-v1 chain");
const SIGN_DOMAIN = encoder.encode("mcast-v1 signature");
const AUTH_INFO = encoder.encode("mcast-v1 frame authentication");
const PAYLOAD_INFO = encoder.encode("mcast-v1 payload encryption");
/** Receiver frames carry the receiver's name right after the header. */
const RECEIVER_TYPES = new Set<number>([
  FRAME_TYPES.ack,
  FRAME_TYPES.nack,
  FRAME_TYPES.hello,
  FRAME_TYPES.bye,
]);

/** Options of {@linkcode GuardedEndpoint}. */
export interface GuardOptions {
  /** The shared group key. */
  key: GroupKey;
  /** Encrypt the records of DATA frames this side sends. */
  encrypt?: boolean;
  /** Sign the DATA frames this side sends (a sender's `--sign-key`). */
  signingKey?: SigningKey;
  /** Let DATA frames through only once one of these keys signed them. */
  trust?: Uint8Array[];
  /** Let plain (unframed) datagrams through; dropped otherwise. */
  allowPlain?: boolean;
  /** Clock-skew bound in ms (default {@linkcode DEFAULT_MAX_SKEW_MS}). */
  maxSkewMs?: number;
  /** Counters to add drops to (shared with the state machine's). */
  dropped: DropCounts;
  /** The clock, in µs since the Unix epoch (for tests). */
  nowMicros?: () => number;
  /**
   * Keep each opened frame's bytes as they arrived, in
   * {@linkcode Datagram.sealed} (a bridge forwards them verbatim).
   */
  keepSealed?: boolean;
  /**
   * The cryptography (default {@linkcode WEB_CRYPTO}). Its owner closes it,
   * after the guard; the guard never does.
   */
  crypto?: CryptoBackend;
}

/** A sent DATA frame's place in the chain: made once, reused by repairs. */
interface Chain {
  prev: Uint8Array;
  hash: Uint8Array;
  signature?: Uint8Array;
}

interface Outgoing {
  sealed: Promise<Uint8Array>;
  to: Peer;
  sent: Promise<void>;
  done: () => void;
}

/** What a trusting receiver knows of one session's signatures. */
interface TrustState {
  /** Datagrams waiting for a signature to cover them. */
  held: Map<number, Held>;
  /** Chain hashes that sequences must have, vouched for by a successor. */
  expect: Map<number, Uint8Array>;
  /** Chain hashes of the sequences let through. */
  passed: Map<number, Uint8Array>;
}

function remember(state: TrustState, seq: number, hash: Uint8Array): void {
  state.expect.delete(seq);
  state.passed.set(seq, hash);
  if (state.passed.size > MAX_REMEMBERED) {
    state.passed.delete(state.passed.keys().next().value!);
  }
}

/** Memory a held datagram keeps alive, roughly. */
function heldSize(held: Held): number {
  return 256 + held.datagram.payload.buffer.byteLength;
}

interface Held {
  hash: Uint8Array;
  prev: Uint8Array;
  datagram: Datagram;
}

/** Keys derived once from the group key. */
interface DerivedKeys {
  mac: MacKey;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function isZero(bytes: Uint8Array): boolean {
  return equalBytes(bytes, ZERO_HASH);
}

/** The message an Ed25519 signature covers: the domain, then the hash. */
function signedMessage(hash: Uint8Array): Uint8Array {
  const message = new Uint8Array(SIGN_DOMAIN.length + CHAIN_SIZE);
  message.set(SIGN_DOMAIN, 0);
  message.set(hash, SIGN_DOMAIN.length);
  return message;
}

function wallMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/**
 * The trailer length a frame's flags call for.
 *
 * @param flags The header's flags byte.
 * @param type The header's type byte.
 * @returns Bytes of trailer.
 */
export function trailerSize(flags: number, type: number): number {
  let size = TIME_SIZE + MAC_SIZE;
  if (type === DATA_TYPE) {
    if (flags & FLAGS.encrypted) size += GCM_TAG_SIZE;
    if (flags & FLAGS.chained) size += CHAIN_SIZE;
    if (flags & FLAGS.signed) size += SIGNATURE_SIZE;
  }
  return size;
}

/**
 * A window of send times seen from one party: rejects a time seen before,
 * or older than the window.
 */
class ReplayWindow {
  #floor = -1;
  #high = -1;
  /** The send times accepted above the floor, ascending, from `#head` on. */
  #times: number[] = [];
  #head = 0;
  readonly #cap: number;

  constructor(cap: number) {
    this.#cap = cap;
  }

  accept(time: number): boolean {
    if (time <= this.#floor) return false;
    const times = this.#times;
    if (time > this.#high) {
      // The common case, a party's next frame: nothing to search.
      times.push(time);
      this.#high = time;
      this.#floor = Math.max(this.#floor, time - REPLAY_WINDOW_US);
    } else {
      // Out of order: seen before, or inserted in its place.
      let low = this.#head;
      let high = times.length;
      while (low < high) {
        const middle = (low + high) >>> 1;
        if (times[middle]! < time) low = middle + 1;
        else high = middle;
      }
      if (times[low] === time) return false;
      times.splice(low, 0, time);
    }
    while (
      this.#head < times.length &&
      (times[this.#head]! <= this.#floor ||
        times.length - this.#head > this.#cap)
    ) {
      const old = times[this.#head++]!;
      if (old > this.#floor) this.#floor = old;
    }
    if (this.#head > 1024 && this.#head * 2 > times.length) {
      this.#times = times.slice(this.#head);
      this.#head = 0;
    }
    return true;
  }
}

/** Most receivers' windows a guard keeps (the roster cap, and some). */
const MAX_PARTIES = 20_000;
/** Most bytes of datagrams held for a signature, all sessions together. */
const MAX_HELD_BYTES = 8 * 1024 * 1024;
/** Most chain hashes remembered per session. */
const MAX_REMEMBERED = 65_536;
/** Sessions whose signature state a receiver keeps. */
const TRUST_SESSIONS = 4;

/**
 * An endpoint that authenticates everything it sends and lets through only
 * what verifies. See the module documentation for the trailer.
 */
export class GuardedEndpoint implements DatagramEndpoint {
  readonly #inner: DatagramEndpoint;
  readonly #options: GuardOptions;
  readonly #dropped: DropCounts;
  readonly #maxSkewUs: number;
  readonly #now: () => number;
  readonly #crypto: CryptoBackend;
  #derived: Promise<DerivedKeys> | undefined;
  #imported: Promise<Verifier[]> | undefined;
  #signer: Promise<Signer> | undefined;
  readonly #trusting: boolean;
  #payloadKeys = new Map<string, Promise<AeadKey>>();
  /** The derived keys once made, for the synchronous path. */
  #keysNow: DerivedKeys | undefined;
  /** The last session's payload key once made: its id and the key. */
  #payloadKeyNow: { session: Uint8Array; key: AeadKey } | undefined;
  /** The buffer {@linkcode GuardedEndpoint.trySend} seals into. */
  #scratch = new Uint8Array(2048);
  #lastTime = 0;
  #windows = new Map<string, ReplayWindow>();
  #ready: Datagram[] = [];
  #closed = false;
  // Sending side of signatures.
  #chains = new Map<number, Promise<Chain>>();
  #chainsLow = 0;
  #chainSeq = -1;
  #chainHash: Promise<Uint8Array> = Promise.resolve(ZERO_HASH);
  #unsigned = 0;
  #lastFirst: { bytes: Uint8Array; to: Peer; seq: number } | undefined;
  #signTimer: ReturnType<typeof setTimeout> | undefined;
  #out: Outgoing[] = [];
  #flushing: Promise<void> | undefined;
  #opening: Promise<Datagram | null>[] = [];
  #pumping: Promise<void> | undefined;
  #ended = false;
  #wake: (() => void) | undefined;
  #pumpWake: (() => void) | undefined;
  // Receiving side of signatures, per session (the last few).
  #trust = new Map<string, TrustState>();
  #heldBytes = 0;

  /**
   * Wraps a socket.
   *
   * @param inner The socket to wrap; closed with this endpoint.
   * @param options The keys and what to enforce.
   */
  constructor(inner: DatagramEndpoint, options: GuardOptions) {
    this.#inner = inner;
    this.#options = options;
    this.#dropped = options.dropped;
    this.#maxSkewUs = (options.maxSkewMs ?? DEFAULT_MAX_SKEW_MS) * 1000;
    this.#now = options.nowMicros ?? wallMicros;
    this.#trusting = (options.trust?.length ?? 0) > 0;
    this.#crypto = options.crypto ?? WEB_CRYPTO;
  }

  /** Which crypto backend seals and opens frames. */
  get crypto(): CryptoName {
    return this.#crypto.name;
  }

  /** The derived keys, made on first use (nothing is pending before). */
  #keys(): Promise<DerivedKeys> {
    return this.#derived ??= deriveKeys(this.#crypto, this.#options.key)
      .then((keys) => this.#keysNow = keys);
  }

  /** The trusted public keys, imported on first use. */
  #trusted(): Promise<Verifier[]> {
    return this.#imported ??= Promise.all(
      (this.#options.trust ?? []).map((key) => this.#crypto.verifier(key)),
    );
  }

  /** The wrapped socket's address. */
  get local(): Peer {
    return this.#inner.local;
  }

  /** The largest trailer this guard adds to a frame it sends. */
  get overhead(): number {
    let size = TIME_SIZE + MAC_SIZE;
    if (this.#options.encrypt) size += GCM_TAG_SIZE;
    if (this.#options.signingKey) size += CHAIN_SIZE + SIGNATURE_SIZE;
    return size;
  }

  /**
   * Seals a frame (plain datagrams pass unchanged) and sends it. Frames
   * leave in the order they were given. A DATA frame resolves as soon as it
   * is queued, while fewer than {@linkcode MAX_IN_FLIGHT} wait for their
   * cryptography, so that sealing overlaps; any other frame resolves once
   * it is sent.
   *
   * @param payload An encoded frame without a trailer, or a plain datagram.
   * @param to Where to.
   */
  send(payload: Uint8Array, to: Peer): Promise<void> {
    if (!hasMagic(payload) || payload.length < 24) {
      return this.#inner.send(payload, to);
    }
    // At once where it can: nothing then waits in the queue, and the
    // frames after it can take the synchronous path too.
    if (this.trySend(payload, to)) return Promise.resolve();
    if (this.#closed) return Promise.resolve();
    const data = payload[5] === DATA_TYPE;
    if (!data && this.#signTimer !== undefined) {
      // A heartbeat or GONE after the last datagram: its signature first.
      this.#signNow();
    }
    // The caller may reuse its buffer once this resolves: seal a copy.
    const frame = payload.slice();
    const sent = this.#enqueue(this.#seal(frame, to), to);
    if (!data) return sent;
    const oldest = this.#out.length > MAX_IN_FLIGHT ? this.#out[0] : undefined;
    return oldest ? oldest.sent : Promise.resolve();
  }

  /**
   * Seals and hands over a frame at once, where everything needed is
   * at hand: a backend that works synchronously, its keys made, nothing
   * queued before it, no signatures (their chain waits on the signer), and
   * an inner endpoint that takes datagrams at once. Returns false, having
   * sent nothing, otherwise; the caller then uses {@linkcode send}.
   *
   * @param payload An encoded frame without a trailer.
   * @param to Where to.
   * @returns Whether it was taken.
   */
  trySend(payload: Uint8Array, to: Peer): boolean {
    const inner = this.#inner;
    const keys = this.#keysNow;
    if (
      inner.trySend === undefined || keys?.mac.signIntoSync === undefined ||
      this.#closed || this.#out.length > 0 ||
      this.#options.signingKey !== undefined || payload.length < 24 ||
      !hasMagic(payload)
    ) {
      return false;
    }
    const type = payload[5]!;
    let aead: AeadKey | undefined;
    if (
      this.#options.encrypt && type === DATA_TYPE &&
      payload.length >= PAYLOAD_AT
    ) {
      const now = this.#payloadKeyNow;
      if (
        now === undefined || !equalBytes(payload.subarray(8, 16), now.session)
      ) {
        return false;
      }
      aead = now.key;
      if (aead.sealIntoSync === undefined) return false;
    }
    const flags = (payload[6]! & ~SECURITY_FLAGS) |
      (aead ? FLAGS.encrypted : 0);
    const trailer = trailerSize(flags, type);
    const body = payload.length;
    if (this.#scratch.length < body + trailer) {
      this.#scratch = new Uint8Array(body + trailer);
    }
    const out = this.#scratch.subarray(0, body + trailer);
    let at = startSealed(payload, out, flags, aead !== undefined);
    if (aead) {
      aead.sealIntoSync!(
        nonceOf(payload),
        associatedData(payload),
        payload.subarray(PAYLOAD_AT),
        out.subarray(PAYLOAD_AT, body + GCM_TAG_SIZE),
      );
    }
    writeU64(out, at, this.#sendTime());
    at += TIME_SIZE;
    keys.mac.signIntoSync(out.subarray(0, at), out.subarray(at));
    // The inner endpoint copies what it takes: the scratch buffer is free.
    return inner.trySend(out, to);
  }

  #enqueue(sealed: Promise<Uint8Array>, to: Peer): Promise<void> {
    // A failure to seal is a lost datagram, like a failure to send.
    sealed.catch(() => {});
    let done = (): void => {};
    const sent = new Promise<void>((resolve) => done = resolve);
    this.#out.push({ sealed, to, sent, done });
    this.#flushing ??= this.#flush();
    return sent;
  }

  async #flush(): Promise<void> {
    while (this.#out.length > 0) {
      const item = this.#out[0]!;
      try {
        await this.#inner.send(await item.sealed, item.to);
      } catch {
        // Lost on the way: receivers ask again.
      }
      this.#out.shift();
      item.done();
    }
    this.#flushing = undefined;
    if (this.#closed) this.#inner.close();
  }

  /**
   * Waits for the next datagram that verifies. Up to
   * {@linkcode MAX_IN_FLIGHT} datagrams are read ahead and checked at once;
   * they come out in the order they arrived (with `trust`, DATA frames in
   * the order signatures cover them).
   *
   * @returns It, with its trailer removed, or `null` once closed.
   */
  async receive(): Promise<Datagram | null> {
    this.#pumping ??= this.#pump();
    for (;;) {
      const ready = this.#ready.shift();
      if (ready) return ready;
      const next = this.#opening[0];
      if (next === undefined) {
        if (this.#ended) return null;
        await new Promise<void>((resolve) => this.#wake = resolve);
        continue;
      }
      const opened = await next;
      this.#opening.shift();
      this.#wakePump();
      if (opened) return opened;
    }
  }

  async #pump(): Promise<void> {
    for (;;) {
      while (this.#opening.length >= MAX_IN_FLIGHT) {
        await new Promise<void>((resolve) => this.#pumpWake = resolve);
      }
      const datagram = await this.#inner.receive();
      if (datagram === null) {
        this.#ended = true;
        this.#wakeReader();
        return;
      }
      const opening = this.#open(datagram).catch(() => null);
      this.#opening.push(opening);
      this.#wakeReader();
    }
  }

  #wakeReader(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #wakePump(): void {
    const wake = this.#pumpWake;
    this.#pumpWake = undefined;
    wake?.();
  }

  /**
   * Stops signing and closes the wrapped socket once every frame already
   * given to {@linkcode send} has left.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#signTimer);
    this.#signTimer = undefined;
    if (this.#flushing === undefined) this.#inner.close();
  }

  // ---- sealing ------------------------------------------------------------

  #sendTime(): number {
    const now = this.#now();
    this.#lastTime = now > this.#lastTime ? now : this.#lastTime + 1;
    return this.#lastTime;
  }

  async #seal(payload: Uint8Array, to: Peer): Promise<Uint8Array> {
    // Stamped in the order frames are given, whatever order their
    // cryptography completes in.
    const time = this.#sendTime();
    const type = payload[5]!;
    const data = type === DATA_TYPE && payload.length >= PAYLOAD_AT;
    // Before the first await: see #chainFor.
    const chaining = data && this.#options.signingKey
      ? this.#chainFor(payload, to)
      : undefined;
    const keying = data && this.#options.encrypt
      ? this.#payloadKey(payload)
      : undefined;
    const keys = await this.#keys();
    let flags = payload[6]! & ~SECURITY_FLAGS;
    let chain: Chain | undefined;
    // The signature as it is now: an idle signature may add one to the
    // shared chain entry while the records are encrypted below, and the
    // trailer has room only for what the flags say.
    let signature: Uint8Array | undefined;
    if (data) {
      if (keying) flags |= FLAGS.encrypted;
      if (chaining) {
        chain = await chaining;
        signature = chain.signature;
        flags |= FLAGS.chained;
        if (signature) flags |= FLAGS.signed;
      }
    }
    const trailer = trailerSize(flags, type);
    const body = payload.length;
    const out = new Uint8Array(body + trailer);
    let at = startSealed(payload, out, flags, keying !== undefined);
    if (keying) {
      // The records, encrypted, with the GCM tag after them.
      const key = await keying;
      await key.sealInto(
        nonceOf(payload),
        associatedData(payload),
        payload.subarray(PAYLOAD_AT),
        out.subarray(PAYLOAD_AT, body + GCM_TAG_SIZE),
      );
    }
    if (chain) {
      out.set(chain.prev, at);
      at += CHAIN_SIZE;
      if (signature) {
        out.set(signature, at);
        at += SIGNATURE_SIZE;
      }
    }
    writeU64(out, at, time);
    at += TIME_SIZE;
    await keys.mac.signInto(out.subarray(0, at), out.subarray(at));
    return out;
  }

  /**
   * The chain entry of a DATA frame, made on its first transmission. The
   * entry is registered before anything is awaited, so that a repair racing
   * the first transmission shares it.
   */
  #chainFor(payload: Uint8Array, to: Peer): Promise<Chain> {
    const seq = readU64(payload, 16);
    const low = readU64(payload, 32);
    // The sender no longer holds anything below `low`: forget it too.
    if (low > this.#chainsLow) {
      if (low - this.#chainsLow > this.#chains.size) {
        for (const old of this.#chains.keys()) {
          if (old < low) this.#chains.delete(old);
        }
      } else {
        for (let old = this.#chainsLow; old < low; old++) {
          this.#chains.delete(old);
        }
      }
      this.#chainsLow = low;
    }
    const retransmit = (payload[6]! & FLAGS.retransmit) !== 0;
    const known = this.#chains.get(seq);
    if (known) {
      if (!retransmit) return known;
      // A repair covers itself: a receiver that lost the chain around it
      // (or never had it) can still take it.
      const signed = known.then(async (chain) => {
        chain.signature ??= await this.#sign(chain.hash);
        return chain;
      });
      this.#chains.set(seq, signed);
      return signed;
    }
    const first = !retransmit && seq === this.#chainSeq + 1;
    const prev = first ? this.#chainHash : Promise.resolve(ZERO_HASH);
    // A repair of a datagram this guard never sent (a sender resumed from
    // its journal) has no chain to hang on: it is signed by itself.
    let sign = retransmit;
    if (!retransmit) {
      this.#unsigned += 1;
      clearTimeout(this.#signTimer);
      this.#signTimer = undefined;
      if (this.#unsigned >= SIGN_EVERY) {
        sign = true;
        this.#unsigned = 0;
        this.#lastFirst = undefined;
      } else {
        this.#lastFirst = { bytes: payload, to, seq };
        this.#signTimer = setTimeout(() => {
          this.#signTimer = undefined;
          this.#signNow();
        }, IDLE_SIGN_MS);
      }
    }
    // The guard's own copy of the frame, never written to: no copy needed.
    const records = payload.subarray(PAYLOAD_AT);
    const entry = (async (): Promise<Chain> => {
      const link = await prev;
      const hash = await chainHash(this.#crypto, payload, records, link);
      const chain: Chain = { prev: link, hash };
      if (sign) chain.signature = await this.#sign(hash);
      return chain;
    })();
    this.#chains.set(seq, entry);
    if (!retransmit) {
      this.#chainSeq = seq;
      this.#chainHash = entry.then((chain) => chain.hash);
    }
    return entry;
  }

  /** Signs the last datagram sent unsigned and queues it once more, signed. */
  #signNow(): void {
    clearTimeout(this.#signTimer);
    this.#signTimer = undefined;
    const last = this.#lastFirst;
    this.#lastFirst = undefined;
    const entry = last && this.#chains.get(last.seq);
    if (!last || !entry || this.#closed) return;
    this.#unsigned = 0;
    const copy = asRetransmission(last.bytes, {
      timestamp: Math.floor(this.#now()),
      low: readU64(last.bytes, 32),
    });
    const sealed = (async () => {
      const chain = await entry;
      chain.signature ??= await this.#sign(chain.hash);
      return await this.#seal(copy, last.to);
    })();
    void this.#enqueue(sealed, last.to);
  }

  async #sign(hash: Uint8Array): Promise<Uint8Array> {
    this.#signer ??= this.#crypto.signer(this.#options.signingKey!);
    const signer = await this.#signer;
    return await signer.sign(signedMessage(hash));
  }

  #payloadKey(frame: Uint8Array): Promise<AeadKey> {
    const session = toHexKey(frame.subarray(8, 16));
    let key = this.#payloadKeys.get(session);
    if (!key) {
      key = derivePayloadKey(
        this.#crypto,
        this.#options.key,
        frame.slice(8, 16),
      );
      if (this.#payloadKeys.size >= 16) {
        this.#payloadKeys.delete(this.#payloadKeys.keys().next().value!);
      }
      this.#payloadKeys.set(session, key);
      const id = frame.slice(8, 16);
      key.then((made) => this.#payloadKeyNow = { session: id, key: made })
        .catch(() => {});
    }
    return key;
  }

  // ---- opening --------------------------------------------------------------

  async #open(datagram: Datagram): Promise<Datagram | null> {
    const bytes = datagram.payload;
    if (!hasMagic(bytes)) {
      if (this.#options.allowPlain) return datagram;
      this.#dropped.plain += 1;
      return null;
    }
    // Frames the codec rejects anyway (version, length) keep its reasons.
    if (bytes.length < 24 || bytes[4] !== 1) return datagram;
    const type = bytes[5]!;
    const flags = bytes[6]!;
    const trailer = bytes[7]!;
    if (
      trailer === 0 || trailer !== trailerSize(flags, type) ||
      bytes.length < 24 + trailer ||
      (type !== DATA_TYPE && (flags & SECURITY_FLAGS) !== 0)
    ) {
      this.#dropped.auth += 1;
      return null;
    }
    const body = bytes.length - trailer;
    // Opening rewrites the flags and tag length in place.
    const sealed = this.#options.keepSealed ? bytes.slice() : undefined;
    const encrypted = type === DATA_TYPE && (flags & FLAGS.encrypted) !== 0;
    if (encrypted && body < PAYLOAD_AT) {
      this.#dropped.auth += 1;
      return null;
    }
    // Decryption starts with the MAC check; its result is used only if the
    // MAC verifies.
    const plain = encrypted ? new Uint8Array(body) : bytes.subarray(0, body);
    const decrypting = encrypted ? this.#decrypt(bytes, plain) : undefined;
    const keys = await this.#keys();
    const macAt = bytes.length - MAC_SIZE;
    if (
      !(await keys.mac.verify(bytes.subarray(0, macAt), bytes.subarray(macAt)))
    ) {
      this.#dropped.auth += 1;
      return null;
    }
    const time = readU64(bytes, macAt - TIME_SIZE);
    if (Math.abs(this.#now() - time) > this.#maxSkewUs) {
      this.#dropped.stale += 1;
      return null;
    }
    if (!this.#window(bytes, type).accept(time)) {
      this.#dropped.replay += 1;
      return null;
    }
    let at = body;
    if (decrypting) {
      if (!(await decrypting)) {
        this.#dropped.auth += 1;
        return null;
      }
      plain.set(bytes.subarray(0, PAYLOAD_AT), 0);
      at += GCM_TAG_SIZE;
    }
    plain[6] = flags & ~SECURITY_FLAGS;
    plain[7] = 0;
    const result: Datagram = sealed
      ? { payload: plain, from: datagram.from, sealed }
      : { payload: plain, from: datagram.from };
    if (type !== DATA_TYPE || !this.#trusting) return result;
    if ((flags & FLAGS.chained) === 0 || body < PAYLOAD_AT) {
      this.#dropped.forged += 1;
      return null;
    }
    const prev = bytes.slice(at, at + CHAIN_SIZE);
    at += CHAIN_SIZE;
    const signature = (flags & FLAGS.signed) !== 0
      ? bytes.subarray(at, at + SIGNATURE_SIZE)
      : undefined;
    return await this.#attest(result, prev, signature);
  }

  /** A DATA frame's records decrypted, or `null` when they do not verify. */
  async #decrypt(bytes: Uint8Array, plain: Uint8Array): Promise<boolean> {
    try {
      const key = await this.#payloadKey(bytes);
      return await key.openInto(
        nonceOf(bytes),
        associatedData(bytes),
        bytes.subarray(PAYLOAD_AT, plain.length + GCM_TAG_SIZE),
        plain.subarray(PAYLOAD_AT),
      );
    } catch {
      return false;
    }
  }

  #window(bytes: Uint8Array, type: number): ReplayWindow {
    let party = toHexKey(bytes.subarray(8, 16));
    let cap = 65_536;
    if (RECEIVER_TYPES.has(type)) {
      const length = Math.min(bytes[24] ?? 0, bytes.length - 25);
      party += "/" + toHexKey(bytes.subarray(25, 25 + Math.max(0, length)));
      cap = 256;
    }
    let window = this.#windows.get(party);
    if (!window) {
      if (this.#windows.size >= MAX_PARTIES) {
        this.#windows.delete(this.#windows.keys().next().value!);
      }
      window = new ReplayWindow(cap);
      this.#windows.set(party, window);
    }
    return window;
  }

  /**
   * Lets a DATA frame through once a trusted signature covers it: its own,
   * or its successor's chain once that is covered. Returns it when it was
   * let through before (a repair); frames covered now, it and those its
   * chain vouches for, are queued for `receive()` in sequence order.
   * Everything after the cryptography runs without a pause, so checks of
   * several datagrams at once cannot interleave their updates.
   */
  async #attest(
    datagram: Datagram,
    prev: Uint8Array,
    signature: Uint8Array | undefined,
  ): Promise<Datagram | null> {
    const frame = datagram.payload;
    const seq = readU64(frame, 16);
    const hash = await chainHash(
      this.#crypto,
      frame,
      frame.subarray(PAYLOAD_AT),
      prev,
    );
    if (signature && !(await this.#verify(hash, signature))) {
      this.#dropped.forged += 1;
      return null;
    }
    const state = this.#trustState(toHexKey(frame.subarray(8, 16)));
    const passed = state.passed.get(seq);
    if (passed) {
      // Already let through: a repair of it may pass again (the state
      // machine counts it), anything else claiming its number may not.
      if (equalBytes(passed, hash)) return datagram;
      this.#dropped.forged += 1;
      return null;
    }
    let covered = signature !== undefined;
    const expected = state.expect.get(seq);
    if (!covered && expected) {
      if (!equalBytes(expected, hash)) {
        this.#dropped.forged += 1;
        return null;
      }
      covered = true;
    }
    if (!covered) {
      this.#hold(state, seq, { hash, prev, datagram });
      return null;
    }
    // The first copy to arrive goes on (a signed re-send of a datagram held
    // unsigned is a copy, not a repair).
    const original = this.#unhold(state, seq);
    if (original && equalBytes(original.hash, hash)) {
      datagram = original.datagram;
    }
    remember(state, seq, hash);
    // Walk down the chain: each covered datagram vouches for the one before.
    const released: Datagram[] = [];
    let link = prev;
    for (let k = seq - 1; k >= 0 && !isZero(link); k--) {
      if (state.passed.has(k)) break;
      const held = this.#unhold(state, k);
      if (!held) {
        state.expect.set(k, link);
        if (state.expect.size > MAX_REMEMBERED) {
          state.expect.delete(state.expect.keys().next().value!);
        }
        break;
      }
      if (!equalBytes(held.hash, link)) {
        this.#dropped.forged += 1;
        state.expect.set(k, link);
        break;
      }
      remember(state, k, held.hash);
      released.push(held.datagram);
      link = held.prev;
    }
    for (let i = released.length - 1; i >= 0; i--) {
      this.#ready.push(released[i]!);
    }
    this.#ready.push(datagram);
    return null;
  }

  /** The signature state of a session; the last few sessions are kept. */
  #trustState(session: string): TrustState {
    let state = this.#trust.get(session);
    if (state) {
      // Most recently used last.
      this.#trust.delete(session);
      this.#trust.set(session, state);
      return state;
    }
    if (this.#trust.size >= TRUST_SESSIONS) {
      const [oldest, old] = this.#trust.entries().next().value!;
      for (const seq of [...old.held.keys()]) this.#unhold(old, seq);
      this.#trust.delete(oldest);
    }
    state = { held: new Map(), expect: new Map(), passed: new Map() };
    this.#trust.set(session, state);
    return state;
  }

  /**
   * Holds a datagram until a signature covers it, within
   * {@linkcode MAX_HELD_BYTES} for all sessions: the lowest sequence numbers
   * of this session make room first (they come back as repairs).
   */
  #hold(state: TrustState, seq: number, held: Held): void {
    this.#unhold(state, seq);
    const size = heldSize(held);
    while (this.#heldBytes + size > MAX_HELD_BYTES && state.held.size > 0) {
      let lowest = Infinity;
      for (const key of state.held.keys()) lowest = Math.min(lowest, key);
      this.#unhold(state, lowest);
    }
    if (this.#heldBytes + size > MAX_HELD_BYTES) return;
    state.held.set(seq, held);
    this.#heldBytes += size;
  }

  #unhold(state: TrustState, seq: number): Held | undefined {
    const held = state.held.get(seq);
    if (held) {
      state.held.delete(seq);
      this.#heldBytes -= heldSize(held);
    }
    return held;
  }

  async #verify(hash: Uint8Array, signature: Uint8Array): Promise<boolean> {
    const keys = await this.#trusted();
    const message = signedMessage(hash);
    for (const key of keys) {
      if (await key.verify(message, signature)) return true;
    }
    return false;
  }
}

async function deriveKeys(
  backend: CryptoBackend,
  key: GroupKey,
): Promise<DerivedKeys> {
  const raw = await backend.hkdf(key.bytes, {
    salt: new Uint8Array(0),
    info: AUTH_INFO,
    length: 32,
  });
  try {
    return { mac: await backend.macKey(raw) };
  } finally {
    raw.fill(0);
  }
}

/** The AES-256-GCM key of a session (HKDF salt: the session id). */
async function derivePayloadKey(
  backend: CryptoBackend,
  key: GroupKey,
  session: Uint8Array,
): Promise<AeadKey> {
  const raw = await backend.hkdf(key.bytes, {
    salt: session,
    info: PAYLOAD_INFO,
    length: 32,
  });
  try {
    return await backend.aeadKey(raw);
  } finally {
    raw.fill(0);
  }
}

/**
 * Lays out a frame being sealed in `out`: its header (flags and trailer
 * length set) and, unless its records are to be encrypted there, the
 * records. Returns where the trailer starts (after the GCM tag if any).
 */
function startSealed(
  payload: Uint8Array,
  out: Uint8Array,
  flags: number,
  encrypted: boolean,
): number {
  out.set(encrypted ? payload.subarray(0, PAYLOAD_AT) : payload, 0);
  out[6] = flags;
  out[7] = out.length - payload.length;
  return payload.length + (encrypted ? GCM_TAG_SIZE : 0);
}

function toHexKey(bytes: Uint8Array): string {
  // One session's frames follow one another: its key is made once.
  if (bytes.length === 8 && equalBytes(bytes, lastKeyBytes)) return lastKey;
  let text = "";
  for (const b of bytes) text += (b < 16 ? "0" : "") + b.toString(16);
  if (bytes.length === 8) {
    lastKeyBytes.set(bytes);
    lastKey = text;
  }
  return text;
}

const lastKeyBytes = new Uint8Array(8);
let lastKey = "0000000000000000";

/**
 * Where {@linkcode nonceOf} and {@linkcode associatedData} write: every
 * backend reads its inputs before it returns, so one buffer of each serves
 * every call.
 */
const NONCE = new Uint8Array(12);
const AAD = new Uint8Array(22);

/**
 * The GCM nonce of a DATA frame: 32 zero bits and its sequence number.
 * Valid until the next call.
 */
function nonceOf(frame: Uint8Array): Uint8Array {
  for (let i = 0; i < 8; i++) NONCE[4 + i] = frame[16 + i]!;
  return NONCE;
}

/**
 * What GCM authenticates besides the records: magic, version, type,
 * session, seq. Valid until the next call.
 */
function associatedData(frame: Uint8Array): Uint8Array {
  for (let i = 0; i < 6; i++) AAD[i] = frame[i]!;
  for (let i = 0; i < 16; i++) AAD[6 + i] = frame[8 + i]!;
  return AAD;
}

/** SHA-256 over a DATA frame's identity, its plaintext records and the previous hash. */
function chainHash(
  backend: CryptoBackend,
  frame: Uint8Array,
  records: Uint8Array,
  prev: Uint8Array,
): Promise<Uint8Array> {
  return backend.sha256Parts([
    CHAIN_DOMAIN,
    frame.subarray(8, 24),
    records,
    prev,
  ]);
}
