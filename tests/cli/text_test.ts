import { seededRandom } from "../../lib/net/fault.ts";
import assert from "node:assert/strict";
import { decodeUtf8, escapeText, isUtf8 } from "../../lib/cli/text.ts";

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function bytes(...values: number[]): Uint8Array {
  return new Uint8Array(values);
}

/** The fault shim's seeded generator (mulberry32): repeatable property runs. */
const random = seededRandom;

// What must never reach a terminal: C0 and C1 controls, DEL, format
// characters, line/paragraph separators, lone surrogates.
const FORBIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

Deno.test("escapeText shows plain ASCII as is", () => {
  assert.equal(escapeText(utf8("very important data")), "very important data");
  const printable = Array.from(
    { length: 0x7f - 0x20 },
    (_, k) => String.fromCharCode(0x20 + k),
  ).join("");
  assert.equal(
    escapeText(utf8(printable)),
    printable.replace("\\", "\\\\"),
  );
  assert.equal(escapeText(new Uint8Array()), "");
});

Deno.test("escapeText escapes newline, tab, carriage return and backslash", () => {
  assert.equal(escapeText(utf8("a\nb")), "a\\nb");
  assert.equal(escapeText(utf8("a\tb")), "a\\tb");
  assert.equal(escapeText(utf8("a\rb")), "a\\rb");
  assert.equal(escapeText(utf8("a\\b")), "a\\\\b");
  assert.equal(escapeText(utf8("\r\n")), "\\r\\n");
  assert.equal(escapeText(utf8("\\n")), "\\\\n");
});

Deno.test("escapeText escapes double quotes only when quoted", () => {
  assert.equal(escapeText(utf8('say "hi"')), 'say "hi"');
  assert.equal(escapeText(utf8('say "hi"'), { quoted: false }), 'say "hi"');
  assert.equal(escapeText(utf8('say "hi"'), { quoted: true }), 'say \\"hi\\"');
  assert.equal(escapeText(utf8("it's"), { quoted: true }), "it's");
  assert.equal(escapeText(utf8('\\"'), { quoted: true }), '\\\\\\"');
});

Deno.test("escapeText escapes C0 controls, ESC and DEL as \\xNN", () => {
  assert.equal(escapeText(bytes(0x00)), "\\x00");
  assert.equal(escapeText(bytes(0x07)), "\\x07");
  assert.equal(escapeText(bytes(0x08)), "\\x08");
  assert.equal(escapeText(bytes(0x0b, 0x0c)), "\\x0b\\x0c");
  assert.equal(escapeText(bytes(0x1f)), "\\x1f");
  assert.equal(escapeText(bytes(0x7f)), "\\x7f");
  assert.equal(
    escapeText(utf8("\x1b[31mred\x1b[0m")),
    "\\x1b[31mred\\x1b[0m",
  );
  assert.equal(escapeText(utf8("\x1b]0;title\x07")), "\\x1b]0;title\\x07");
  assert.equal(escapeText(bytes(0x68, 0x07, 0xff)), "h\\x07\\xff");
});

Deno.test("escapeText escapes C1 controls (U+0080-U+009F)", () => {
  assert.equal(escapeText(utf8("\u0085")), "\\x85");
  assert.equal(escapeText(utf8("\u0080")), "\\x80");
  assert.equal(escapeText(utf8("\u009b31m")), "\\x9b31m"); // CSI
  assert.equal(escapeText(utf8("\u009f")), "\\x9f");
  // U+00A0 (no-break space) is a printable separator, shown as is.
  assert.equal(escapeText(utf8("\u00a0")), "\u00a0");
});

Deno.test("escapeText escapes bidi overrides and other format characters", () => {
  assert.equal(escapeText(utf8("abc\u202edef")), "abc\\u202edef");
  assert.equal(
    escapeText(utf8("\u202a\u202b\u202c\u202d")),
    "\\u202a\\u202b\\u202c\\u202d",
  );
  assert.equal(
    escapeText(utf8("\u2066\u2067\u2068\u2069")),
    "\\u2066\\u2067\\u2068\\u2069",
  );
  assert.equal(escapeText(utf8("\u200e\u200f")), "\\u200e\\u200f");
  assert.equal(escapeText(utf8("a\u200db")), "a\\u200db"); // zero-width joiner
  assert.equal(escapeText(utf8("a\u200bb")), "a\\u200bb"); // zero-width space
  assert.equal(escapeText(utf8("a\u200cb")), "a\\u200cb"); // zero-width non-joiner
  assert.equal(escapeText(utf8("\u00ad")), "\\xad"); // soft hyphen (Cf)
  assert.equal(escapeText(utf8("\ufeffx")), "\\ufeffx"); // BOM
  assert.equal(escapeText(utf8("\u2028\u2029")), "\\u2028\\u2029");
  assert.equal(escapeText(utf8("\ue000")), "\\ue000"); // private use
  assert.equal(escapeText(utf8("\u{e0001}")), "\\U000e0001"); // language tag
  assert.equal(escapeText(utf8("\u{f0000}")), "\\U000f0000"); // private use
});

Deno.test("escapeText shows invalid UTF-8 bytes as \\xNN", () => {
  assert.equal(escapeText(bytes(0xff)), "\\xff");
  assert.equal(escapeText(bytes(0xfe, 0xff)), "\\xfe\\xff");
  assert.equal(escapeText(bytes(0x80)), "\\x80"); // lone continuation
  assert.equal(escapeText(bytes(0xbf, 0x41)), "\\xbfA");
  // Truncated sequences, at the end and followed by ASCII.
  assert.equal(escapeText(bytes(0xc3)), "\\xc3");
  assert.equal(escapeText(bytes(0xe6, 0x97)), "\\xe6\\x97");
  assert.equal(escapeText(bytes(0xe6, 0x97, 0x41)), "\\xe6\\x97A");
  assert.equal(escapeText(bytes(0xf0, 0x9f, 0x98)), "\\xf0\\x9f\\x98");
  assert.equal(escapeText(bytes(0x61, 0xc3, 0x62)), "a\\xc3b");
  // Overlong encodings.
  assert.equal(escapeText(bytes(0xc0, 0x80)), "\\xc0\\x80");
  assert.equal(escapeText(bytes(0xc1, 0xbf)), "\\xc1\\xbf");
  assert.equal(escapeText(bytes(0xe0, 0x80, 0xaf)), "\\xe0\\x80\\xaf");
  assert.equal(
    escapeText(bytes(0xf0, 0x80, 0x80, 0xaf)),
    "\\xf0\\x80\\x80\\xaf",
  );
  // UTF-16 surrogates encoded in UTF-8 (CESU-8).
  assert.equal(escapeText(bytes(0xed, 0xa0, 0x80)), "\\xed\\xa0\\x80");
  assert.equal(escapeText(bytes(0xed, 0xbf, 0xbf)), "\\xed\\xbf\\xbf");
  // Beyond U+10FFFF and bytes that never start a sequence.
  assert.equal(
    escapeText(bytes(0xf4, 0x90, 0x80, 0x80)),
    "\\xf4\\x90\\x80\\x80",
  );
  assert.equal(
    escapeText(bytes(0xf5, 0x80, 0x80, 0x80)),
    "\\xf5\\x80\\x80\\x80",
  );
  // A valid character right after an invalid byte is kept.
  assert.equal(escapeText(bytes(0xff, 0xc3, 0xa9)), "\\xffé");
});

Deno.test("escapeText shows valid multibyte characters as is", () => {
  assert.equal(escapeText(utf8("café")), "café");
  assert.equal(escapeText(bytes(0x63, 0x61, 0x66, 0xc3, 0xa9)), "café");
  assert.equal(escapeText(utf8("日本")), "日本");
  assert.equal(escapeText(utf8("😀")), "😀");
  assert.equal(escapeText(utf8("Ωμέγα ß ñ")), "Ωμέγα ß ñ");
  assert.equal(escapeText(utf8("e\u0301")), "e\u0301"); // combining accent
  assert.equal(escapeText(utf8("𝄞")), "𝄞");
  assert.equal(escapeText(utf8("\u07ff\u0800\uffe0")), "\u07ff\u0800\uffe0");
  // A family emoji keeps its characters; its joiners are shown escaped.
  assert.equal(
    escapeText(utf8("👨\u200d👩\u200d👧")),
    "👨\\u200d👩\\u200d👧",
  );
});

Deno.test("escapeText output never holds a control or invisible character (random bytes)", () => {
  const next = random(0x5eed);
  for (let run = 0; run < 4000; run++) {
    const length = Math.floor(next() * 48);
    const input = new Uint8Array(length);
    for (let k = 0; k < length; k++) {
      // Half the runs favour high bytes, which build (broken) sequences.
      input[k] = run % 2 === 0
        ? Math.floor(next() * 256)
        : 0x80 + Math.floor(next() * 128);
    }
    for (const quoted of [false, true]) {
      const out = escapeText(input, { quoted });
      for (const char of out) {
        const code = char.codePointAt(0)!;
        assert.ok(
          code >= 0x20 && code !== 0x7f && !FORBIDDEN.test(char),
          `run ${run}: U+${code.toString(16)} in ${JSON.stringify(out)} ` +
            `for bytes ${Array.from(input)}`,
        );
      }
      if (quoted) {
        // Every double quote in the output is escaped.
        assert.equal(/(^|[^\\])(\\\\)*"/.test(out), false, out);
      }
    }
  }
});

Deno.test("escapeText keeps valid, printable UTF-8 unchanged (random text)", () => {
  const next = random(42);
  const pool = [..."abcXYZ019 .,;:!?'éßΩжあ日本語😀🎉𝄞"];
  for (let run = 0; run < 2000; run++) {
    let text = "";
    const length = Math.floor(next() * 32);
    for (let k = 0; k < length; k++) {
      text += pool[Math.floor(next() * pool.length)];
    }
    assert.equal(escapeText(utf8(text)), text);
    assert.equal(escapeText(utf8(text), { quoted: true }), text);
  }
});

Deno.test("isUtf8 tells valid UTF-8 from invalid bytes", () => {
  assert.equal(isUtf8(new Uint8Array()), true);
  assert.equal(isUtf8(utf8("very important data")), true);
  assert.equal(isUtf8(utf8("日本 😀 é")), true);
  assert.equal(isUtf8(utf8("\ufeffbom")), true);
  assert.equal(isUtf8(bytes(0x00, 0x1b, 0x7f)), true);
  assert.equal(isUtf8(bytes(0xff)), false);
  assert.equal(isUtf8(bytes(0xc3)), false);
  assert.equal(isUtf8(bytes(0xc0, 0x80)), false);
  assert.equal(isUtf8(bytes(0xed, 0xa0, 0x80)), false);
  assert.equal(isUtf8(bytes(0xf4, 0x90, 0x80, 0x80)), false);
  assert.equal(isUtf8(bytes(0x61, 0x80)), false);
});

Deno.test("decodeUtf8 keeps a byte order mark and refuses invalid bytes", () => {
  assert.equal(decodeUtf8(utf8("\ufeffbom é")), "\ufeffbom é");
  assert.equal(decodeUtf8(bytes(0x61, 0xff)), undefined);
});

Deno.test("escapeText escapes a datagram's worth of invalid bytes, and reuses no text between calls", () => {
  const bytes = new Uint8Array(65_507).fill(0xff);
  const text = escapeText(bytes);
  assert.equal(text, "\\xff".repeat(65_507));
  // A second, shorter call does not show the first one's tail.
  assert.equal(
    escapeText(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])),
    "\\ufeffA",
  );
  assert.equal(text.length, 4 * 65_507);
});
