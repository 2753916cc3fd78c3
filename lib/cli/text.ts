/**
 * Terminal-safe rendering of payload bytes. Bulletins come from the network,
 * so nothing in them may reach a terminal raw: control characters, escape
 * sequences, invisible format characters and invalid UTF-8 are all shown as
 * backslash escapes.
 *
 * @module
 */

/** Options of {@linkcode escapeText}. */
export interface EscapeTextOptions {
  /** Also escape `"`, for text shown between double quotes. */
  quoted?: boolean;
}

// Control (Cc), format (Cf, e.g. bidirectional overrides), line and paragraph
// separators, unassigned and private-use code points are shown escaped.
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cn}\p{Co}]/u;

/** Byte values of `0123456789abcdef`. */
const HEX_DIGITS = new TextEncoder().encode("0123456789abcdef");

/**
 * What is known of each code point of the Basic Multilingual Plane: 0 not
 * yet looked up, 1 shown as is, 2 escaped. Filled as code points are met,
 * so that escaping allocates no string per character.
 */
const BMP_KIND = new Uint8Array(0x10000);
const SAFE = 1;
const ESCAPED = 2;

function isUnsafe(cp: number): boolean {
  if (cp >= 0x10000) return UNSAFE.test(String.fromCodePoint(cp));
  let kind = BMP_KIND[cp]!;
  if (kind === 0) {
    kind = UNSAFE.test(String.fromCodePoint(cp)) ? ESCAPED : SAFE;
    BMP_KIND[cp] = kind;
  }
  return kind === ESCAPED;
}

/**
 * Decodes one UTF-8 sequence at `index`.
 *
 * @returns The length of the sequence (its code point in
 * {@linkcode decoded}), or 0 when the bytes at `index` are not a valid,
 * shortest-form sequence.
 */
function decodeAt(bytes: Uint8Array, index: number): number {
  const b0 = bytes[index]!;
  if (b0 < 0x80) {
    decoded = b0;
    return 1;
  }
  let length: number;
  let cp: number;
  let min: number;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    length = 2;
    cp = b0 & 0x1f;
    min = 0x80;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    length = 3;
    cp = b0 & 0x0f;
    min = 0x800;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    length = 4;
    cp = b0 & 0x07;
    min = 0x10000;
  } else return 0;
  if (index + length > bytes.length) return 0;
  for (let k = 1; k < length; k++) {
    const b = bytes[index + k]!;
    if ((b & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  decoded = cp;
  return length;
}

/** The code point {@linkcode decodeAt} found last. */
let decoded = 0;

/**
 * Largest output buffer kept between calls: the escaped text of a 64 KiB
 * datagram (at most 4 bytes of text per byte). Larger payloads get a
 * buffer of their own.
 */
const KEPT_BUFFER = 4 * 65_536;
let kept = new Uint8Array(1024);

// ignoreBOM: an escaped text never starts with a raw U+FEFF, but keep it so.
const TEXT = new TextDecoder("utf-8", { ignoreBOM: true });

/** Writes `\` and `letter` followed by `width` hex digits of `value`. */
function putEscape(
  out: Uint8Array,
  at: number,
  letter: number,
  value: number,
  width: number,
): number {
  out[at++] = 0x5c;
  out[at++] = letter;
  for (let shift = (width - 1) * 4; shift >= 0; shift -= 4) {
    out[at++] = HEX_DIGITS[(value >>> shift) & 0xf]!;
  }
  return at;
}

/**
 * Renders payload bytes as one line of terminal-safe text. Valid UTF-8 is
 * shown as is, except for backslash (`\\`), tab, newline and carriage return
 * (`\t`, `\n`, `\r`), other control and invisible format characters
 * (`\xNN`, `\uNNNN`) and, with `quoted`, the double quote (`\"`). Bytes that
 * are not valid UTF-8 are shown as `\xNN`.
 *
 * The text is assembled as UTF-8 in one reused buffer and decoded once: a
 * storm of large hostile payloads leaves one string each as garbage, not a
 * string per byte.
 *
 * @param bytes The payload.
 * @param options Whether the text is shown between double quotes.
 * @returns One line without any control character.
 *
 * @example Escape a bell and an invalid byte
 * ```ts
 * import assert from "node:assert/strict";
 * import { escapeText } from "./text.ts";
 * assert.equal(escapeText(new Uint8Array([0x68, 0x07, 0xff])), "h\\x07\\xff");
 * ```
 */
export function escapeText(
  bytes: Uint8Array,
  options: EscapeTextOptions = {},
): string {
  const quoted = options.quoted ?? false;
  // Each byte becomes at most 4 bytes of text (`\xNN`).
  const need = 4 * bytes.length;
  let out = kept;
  if (need > out.length) {
    out = new Uint8Array(need);
    if (need <= KEPT_BUFFER) kept = out;
  }
  let at = 0;
  let index = 0;
  const end = bytes.length;
  while (index < end) {
    const b = bytes[index]!;
    if (b >= 0x20 && b < 0x7f) {
      // Printable ASCII: as is, but for `\` and (quoted) `"`.
      if (b === 0x5c || (b === 0x22 && quoted)) out[at++] = 0x5c;
      out[at++] = b;
      index += 1;
      continue;
    }
    const length = decodeAt(bytes, index);
    if (length === 0) {
      at = putEscape(out, at, 0x78, b, 2);
      index += 1;
      continue;
    }
    const cp = decoded;
    if (cp === 0x09 || cp === 0x0a || cp === 0x0d) {
      out[at++] = 0x5c;
      out[at++] = cp === 0x09 ? 0x74 : cp === 0x0a ? 0x6e : 0x72;
    } else if (!isUnsafe(cp)) {
      for (let k = 0; k < length; k++) out[at++] = bytes[index + k]!;
    } else if (cp < 0x100) {
      at = putEscape(out, at, 0x78, cp, 2);
    } else if (cp < 0x10000) {
      at = putEscape(out, at, 0x75, cp, 4);
    } else {
      at = putEscape(out, at, 0x55, cp, 8);
    }
    index += length;
  }
  return TEXT.decode(out.subarray(0, at));
}

// ignoreBOM keeps a leading U+FEFF, so decoded text has exactly the bytes.
const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Decodes bytes that are valid UTF-8, keeping a leading byte order mark.
 *
 * @param bytes The payload.
 * @returns The text, or `undefined` when the bytes are not valid UTF-8.
 */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Tells whether bytes are valid UTF-8.
 *
 * @param bytes The payload.
 * @returns `true` when the bytes decode as UTF-8 without error.
 */
export function isUtf8(bytes: Uint8Array): boolean {
  return decodeUtf8(bytes) !== undefined;
}
