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

const SIMPLE_ESCAPES: Record<number, string> = {
  0x09: "\\t",
  0x0a: "\\n",
  0x0d: "\\r",
  0x5c: "\\\\",
};

// Control (Cc), format (Cf, e.g. bidirectional overrides), line and paragraph
// separators, unassigned and private-use code points are shown escaped.
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cn}\p{Co}]/u;

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, "0");
}

function escapeCodePoint(cp: number, quoted: boolean): string {
  const simple = SIMPLE_ESCAPES[cp];
  if (simple !== undefined) return simple;
  if (quoted && cp === 0x22) return '\\"';
  const char = String.fromCodePoint(cp);
  if (!UNSAFE.test(char)) return char;
  if (cp < 0x100) return `\\x${hex(cp, 2)}`;
  if (cp < 0x10000) return `\\u${hex(cp, 4)}`;
  return `\\U${hex(cp, 8)}`;
}

/**
 * Decodes one UTF-8 sequence at `index`.
 *
 * @returns The code point and its length, or `undefined` when the bytes at
 * `index` are not a valid, shortest-form sequence.
 */
function decodeAt(
  bytes: Uint8Array,
  index: number,
): [number, number] | undefined {
  const b0 = bytes[index]!;
  if (b0 < 0x80) return [b0, 1];
  let length: number;
  let cp: number;
  let min: number;
  if (b0 >= 0xc2 && b0 <= 0xdf) [length, cp, min] = [2, b0 & 0x1f, 0x80];
  else if (b0 >= 0xe0 && b0 <= 0xef) [length, cp, min] = [3, b0 & 0x0f, 0x800];
  else if (b0 >= 0xf0 && b0 <= 0xf4) {
    [length, cp, min] = [4, b0 & 0x07, 0x10000];
  } else return undefined;
  if (index + length > bytes.length) return undefined;
  for (let k = 1; k < length; k++) {
    const b = bytes[index + k]!;
    if ((b & 0xc0) !== 0x80) return undefined;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    return undefined;
  }
  return [cp, length];
}

/**
 * Renders payload bytes as one line of terminal-safe text. Valid UTF-8 is
 * shown as is, except for backslash (`\\`), tab, newline and carriage return
 * (`\t`, `\n`, `\r`), other control and invisible format characters
 * (`\xNN`, `\uNNNN`) and, with `quoted`, the double quote (`\"`). Bytes that
 * are not valid UTF-8 are shown as `\xNN`.
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
  let out = "";
  let index = 0;
  while (index < bytes.length) {
    const decoded = decodeAt(bytes, index);
    if (decoded === undefined) {
      out += `\\x${hex(bytes[index]!, 2)}`;
      index += 1;
    } else {
      out += escapeCodePoint(decoded[0], quoted);
      index += decoded[1];
    }
  }
  return out;
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
