/**
 * The messages `mcast-check` instances exchange: 28 bytes, big-endian.
 *
 * ```
 * 0  "MCCK"   magic
 * 4  u8       version (1)
 * 5  u8       kind: 1 hello, 2 hello answer, 3 probe, 4 answer
 * 6  u8       flags: bit 0 set when the probe went to the group
 * 7  u8       probe: the TTL it was sent with; answer: the hop distance the
 *             probe was measured at (0: unknown)
 * 8  u32      the sending instance's id (random, per run)
 * 12 u32      sequence number of the probe (per peer for unicast probes,
 *             per group for multicast ones)
 * 16 u32      probe, hello: how many probes the sender sends in all
 * 20 f64      probe: the prober's send time (ms); answer: the same, echoed
 * ```
 *
 * @module
 */

/** What a message is. */
export type CheckKind = "hello" | "hello-answer" | "probe" | "answer";

/** One decoded `mcast-check` message. */
export interface CheckMessage {
  /** What it is. */
  kind: CheckKind;
  /** True for a probe sent to the group, or the answer to one. */
  multicast: boolean;
  /**
   * Probe: the TTL it was sent with. Answer: the hop distance measured
   * from the probe's received TTL (0: unknown).
   */
  ttl: number;
  /** The sending instance's id. */
  id: number;
  /** The probe's sequence number. */
  seq: number;
  /** Probe and hello: how many probes the sender sends in all. */
  count: number;
  /** Probe: the prober's send time in ms; answer: echoed. */
  time: number;
}

/** Bytes of every message. */
export const CHECK_MESSAGE_SIZE = 28;

const MAGIC = [0x4d, 0x43, 0x43, 0x4b];
const VERSION = 1;
const KINDS: readonly CheckKind[] = [
  "hello",
  "hello-answer",
  "probe",
  "answer",
];

/**
 * Encodes a message.
 *
 * @param message The message.
 * @returns Its {@linkcode CHECK_MESSAGE_SIZE} bytes.
 */
export function encodeCheckMessage(message: CheckMessage): Uint8Array {
  const bytes = new Uint8Array(CHECK_MESSAGE_SIZE);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  view.setUint8(4, VERSION);
  view.setUint8(5, KINDS.indexOf(message.kind) + 1);
  view.setUint8(6, message.multicast ? 1 : 0);
  view.setUint8(7, message.ttl);
  view.setUint32(8, message.id);
  view.setUint32(12, message.seq);
  view.setUint32(16, message.count);
  view.setFloat64(20, message.time);
  return bytes;
}

/**
 * Decodes a message; anything else (another program's datagram on the
 * port, a truncated or unknown message) gives `undefined`.
 *
 * @param bytes A received datagram.
 * @returns The message, or `undefined`.
 */
export function decodeCheckMessage(
  bytes: Uint8Array,
): CheckMessage | undefined {
  if (bytes.byteLength !== CHECK_MESSAGE_SIZE) return undefined;
  if (MAGIC.some((byte, i) => bytes[i] !== byte)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint8(4) !== VERSION) return undefined;
  const kind = KINDS[view.getUint8(5) - 1];
  if (kind === undefined) return undefined;
  const time = view.getFloat64(20);
  if (!Number.isFinite(time)) return undefined;
  return {
    kind,
    multicast: (view.getUint8(6) & 1) === 1,
    ttl: view.getUint8(7),
    id: view.getUint32(8),
    seq: view.getUint32(12),
    count: view.getUint32(16),
    time,
  };
}
