/**
 * Big-endian unsigned integers in byte arrays, byte by byte: a DataView per
 * call would be an allocation per frame encoded, sealed or opened. A 64-bit
 * value is a JavaScript number, exact up to `Number.MAX_SAFE_INTEGER`.
 *
 * @module
 */

/**
 * Reads a big-endian 32-bit unsigned integer.
 *
 * @param bytes Where it is.
 * @param at Its offset.
 * @returns The value.
 */
export function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) |
    bytes[at + 3]!) >>> 0;
}

/**
 * Reads a big-endian 64-bit unsigned integer.
 *
 * @param bytes Where it is.
 * @param at Its offset.
 * @returns The value (not exact above `Number.MAX_SAFE_INTEGER`).
 */
export function readU64(bytes: Uint8Array, at: number): number {
  return readU32(bytes, at) * 0x1_0000_0000 + readU32(bytes, at + 4);
}

/**
 * Writes a big-endian 32-bit unsigned integer.
 *
 * @param bytes Where to write.
 * @param at The offset.
 * @param value The value.
 */
export function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 24;
  bytes[at + 1] = (value >>> 16) & 0xff;
  bytes[at + 2] = (value >>> 8) & 0xff;
  bytes[at + 3] = value & 0xff;
}

/**
 * Writes a big-endian 64-bit unsigned integer.
 *
 * @param bytes Where to write.
 * @param at The offset.
 * @param value The value, a non-negative safe integer.
 */
export function writeU64(bytes: Uint8Array, at: number, value: number): void {
  writeU32(bytes, at, Math.floor(value / 0x1_0000_0000));
  writeU32(bytes, at + 4, value >>> 0);
}

/**
 * Bytes as lowercase hex, two digits each (a session or link id).
 *
 * @param bytes The bytes.
 * @returns `2 * bytes.length` hex digits.
 */
export function hexText(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) text += (b < 16 ? "0" : "") + b.toString(16);
  return text;
}
