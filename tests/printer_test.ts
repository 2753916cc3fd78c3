import assert from "node:assert/strict";
import type { Group } from "../lib/address.ts";
import type {
  ReceiverEvent,
  ReliableSenderEvent,
  SenderEvent,
} from "../lib/events.ts";
import {
  eventJson,
  receiverText,
  reliableSenderText,
  reportText,
  senderText,
} from "../lib/printer.ts";
import {
  type DropCounts,
  emptyDrops,
  type ReceiverStats,
  type SenderReport,
} from "../lib/stats.ts";

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

const GROUP: Group = { family: 4, address: "224.1.1.1" };
const GROUP6: Group = { family: 6, address: "ff02::1:2" };
const SENDER = { address: "127.0.0.1", port: 41000 };
const RECEIVER = { address: "127.0.0.1", port: 10000 };
const LINK_LOCAL = { address: "fe80::1", port: 41000, scopeId: 2 };
const DATA = utf8("very important data");

/** 2024-05-06T07:08:09.010Z, a fixed clock. */
const CLOCK = { now: () => Date.UTC(2024, 4, 6, 7, 8, 9, 10) };
const TIME = '"time":"2024-05-06T07:08:09.010Z"';

Deno.test("senderText prints the exercise's sender output", () => {
  const events: SenderEvent[] = [
    { type: "sending", group: GROUP, port: 10000, payload: DATA },
    { type: "waiting" },
    { type: "ack", from: RECEIVER, payload: utf8("ack") },
    { type: "closing", acks: 1 },
  ];
  assert.deepEqual(events.flatMap(senderText), [
    'sending "very important data"',
    "waiting to receive",
    "received \"ack\" from ('127.0.0.1', 10000)",
    "closing socket",
  ]);
});

Deno.test("senderText escapes quotes and control bytes in payloads", () => {
  assert.deepEqual(
    senderText({
      type: "sending",
      group: GROUP,
      port: 10000,
      payload: utf8('say "hi"\n\x1b[2J'),
    }),
    ['sending "say \\"hi\\"\\n\\x1b[2J"'],
  );
  assert.deepEqual(
    senderText({
      type: "ack",
      from: LINK_LOCAL,
      payload: new Uint8Array([0x61, 0xff, 0x22]),
    }),
    ['received "a\\xff\\"" from (\'fe80::1\', 41000, 0, 2)'],
  );
  assert.deepEqual(
    senderText({ type: "ack", from: RECEIVER, payload: new Uint8Array() }),
    ["received \"\" from ('127.0.0.1', 10000)"],
  );
  assert.deepEqual(senderText({ type: "closing", acks: 0, expected: 3 }), [
    "closing socket",
  ]);
});

Deno.test("receiverText prints the exercise's receiver output", () => {
  const events: ReceiverEvent[] = [
    { type: "waiting", group: GROUP, port: 10000, messages: 0 },
    { type: "message", from: SENDER, payload: DATA },
    { type: "ack-sent", to: SENDER, payload: utf8("ack") },
    { type: "waiting", group: GROUP, port: 10000, messages: 1 },
    { type: "message", from: SENDER, payload: DATA },
    { type: "ack-sent", to: SENDER, payload: utf8("ack") },
    { type: "waiting", group: GROUP, port: 10000, messages: 2 },
    { type: "stopped", messages: 2, reason: "signal" },
  ];
  assert.equal(
    events.flatMap(receiverText).join("\n") + "\n",
    `waiting to receive message
received 19 bytes from ('127.0.0.1', 41000) : very important data
sending acknowledgement to ('127.0.0.1', 41000)

waiting to receive message
received 19 bytes from ('127.0.0.1', 41000) : very important data
sending acknowledgement to ('127.0.0.1', 41000)

waiting to receive message
`,
  );
});

Deno.test("receiverText: blank line before every wait but the first", () => {
  assert.deepEqual(
    receiverText({ type: "waiting", group: GROUP, port: 10000, messages: 0 }),
    ["waiting to receive message"],
  );
  assert.deepEqual(
    receiverText({ type: "waiting", group: GROUP, port: 10000, messages: 1 }),
    ["", "waiting to receive message"],
  );
  assert.deepEqual(
    receiverText({ type: "waiting", group: GROUP6, port: 5, messages: 7 }),
    ["", "waiting to receive message"],
  );
});

Deno.test("receiverText counts bytes, escapes payloads and prints IPv6 peers", () => {
  // 11 bytes: "日本" is 6; the tab and ESC are escaped; quotes are not.
  assert.deepEqual(
    receiverText({
      type: "message",
      from: LINK_LOCAL,
      payload: utf8('日本\t"x"\x1b'),
    }),
    [
      "received 11 bytes from ('fe80::1', 41000, 0, 2) : 日本\\t\"x\"\\x1b",
    ],
  );
  assert.deepEqual(
    receiverText({
      type: "message",
      from: SENDER,
      payload: new Uint8Array(),
    }),
    ["received 0 bytes from ('127.0.0.1', 41000) : "],
  );
  assert.deepEqual(
    receiverText({
      type: "ack-sent",
      to: { address: "::1", port: 9 },
      payload: utf8("ack"),
    }),
    ["sending acknowledgement to ('::1', 9, 0, 0)"],
  );
});

Deno.test("receiverText prints nothing for ack-failed and stopped", () => {
  assert.deepEqual(
    receiverText({ type: "ack-failed", to: SENDER, reason: "unreachable" }),
    [],
  );
  assert.deepEqual(
    receiverText({ type: "stopped", messages: 3, reason: "count" }),
    [],
  );
});

Deno.test("eventJson: sender events", () => {
  assert.equal(
    eventJson(
      { type: "sending", group: GROUP, port: 10000, payload: DATA },
      CLOCK,
    ),
    `{"event":"sending",${TIME},"group":"224.1.1.1","port":10000,"bytes":19,"text":"very important data"}`,
  );
  assert.equal(
    eventJson({ type: "waiting" }, CLOCK),
    `{"event":"waiting",${TIME}}`,
  );
  assert.equal(
    eventJson({ type: "ack", from: RECEIVER, payload: utf8("ack") }, CLOCK),
    `{"event":"ack",${TIME},"from":{"address":"127.0.0.1","port":10000},"bytes":3,"text":"ack"}`,
  );
  assert.equal(
    eventJson({ type: "closing", acks: 2 }, CLOCK),
    `{"event":"closing",${TIME},"acks":2}`,
  );
  assert.equal(
    eventJson({ type: "closing", acks: 1, expected: 3 }, CLOCK),
    `{"event":"closing",${TIME},"acks":1,"expected":3,"missing":2}`,
  );
  assert.equal(
    eventJson({ type: "closing", acks: 4, expected: 3 }, CLOCK),
    `{"event":"closing",${TIME},"acks":4,"expected":3,"missing":0}`,
  );
});

Deno.test("eventJson: receiver events", () => {
  assert.equal(
    eventJson(
      { type: "waiting", group: GROUP, port: 10000, messages: 0 },
      CLOCK,
    ),
    `{"event":"waiting",${TIME},"group":"224.1.1.1","port":10000,"messages":0}`,
  );
  assert.equal(
    eventJson({ type: "message", from: SENDER, payload: DATA }, CLOCK),
    `{"event":"message",${TIME},"from":{"address":"127.0.0.1","port":41000},"bytes":19,"text":"very important data"}`,
  );
  assert.equal(
    eventJson({ type: "ack-sent", to: SENDER, payload: utf8("ack") }, CLOCK),
    `{"event":"ack-sent",${TIME},"to":{"address":"127.0.0.1","port":41000},"bytes":3}`,
  );
  assert.equal(
    eventJson(
      { type: "ack-failed", to: SENDER, reason: "Network is unreachable" },
      CLOCK,
    ),
    `{"event":"ack-failed",${TIME},"to":{"address":"127.0.0.1","port":41000},"error":"Network is unreachable"}`,
  );
  assert.equal(
    eventJson({ type: "stopped", messages: 5, reason: "count" }, CLOCK),
    `{"event":"stopped",${TIME},"messages":5,"reason":"count"}`,
  );
  assert.equal(
    eventJson({ type: "stopped", messages: 0, reason: "signal" }, CLOCK),
    `{"event":"stopped",${TIME},"messages":0,"reason":"signal"}`,
  );
});

Deno.test("eventJson: IPv6 peers carry their scopeId", () => {
  assert.equal(
    eventJson(
      { type: "waiting", group: GROUP6, port: 5000, messages: 1 },
      CLOCK,
    ),
    `{"event":"waiting",${TIME},"group":"ff02::1:2","port":5000,"messages":1}`,
  );
  assert.equal(
    eventJson({ type: "message", from: LINK_LOCAL, payload: DATA }, CLOCK),
    `{"event":"message",${TIME},"from":{"address":"fe80::1","port":41000,"scopeId":2},"bytes":19,"text":"very important data"}`,
  );
  assert.equal(
    eventJson(
      {
        type: "ack-sent",
        to: { address: "fe80::2", port: 5000, scopeId: 0 },
        payload: utf8("ack"),
      },
      CLOCK,
    ),
    `{"event":"ack-sent",${TIME},"to":{"address":"fe80::2","port":5000,"scopeId":0},"bytes":3}`,
  );
});

Deno.test("eventJson: non-UTF-8 payloads are base64", () => {
  const payload = new Uint8Array([0xff, 0x00, 0x61, 0xc0, 0x80]);
  const line = eventJson({ type: "message", from: SENDER, payload }, CLOCK);
  assert.equal(
    line,
    `{"event":"message",${TIME},"from":{"address":"127.0.0.1","port":41000},"bytes":5,"base64":"/wBhwIA="}`,
  );
  const decoded = Uint8Array.from(
    atob(JSON.parse(line).base64),
    (c) => c.charCodeAt(0),
  );
  assert.deepEqual(decoded, payload);
  assert.equal(
    eventJson(
      {
        type: "sending",
        group: GROUP,
        port: 1,
        payload: new Uint8Array(256).map((_, k) => k),
      },
      CLOCK,
    ).includes(`"bytes":256,"base64":"AAECAwQFBgc`),
    true,
  );
});

Deno.test("eventJson: text keeps every byte (BOM) and escapes invisible characters", () => {
  const payload = utf8('\ufeffa"\\\n\x1b\x7f\u0085\u202e\u200d\u2028😀é');
  const line = eventJson({ type: "message", from: SENDER, payload }, CLOCK);
  assert.equal(
    line,
    `{"event":"message",${TIME},"from":{"address":"127.0.0.1","port":41000},"bytes":${payload.length},"text":"\\ufeffa\\"\\\\\\n\\u001b\\u007f\\u0085\\u202e\\u200d\\u2028😀é"}`,
  );
  // Still the same value once parsed.
  assert.equal(
    JSON.parse(line).text,
    '\ufeffa"\\\n\x1b\x7f\u0085\u202e\u200d\u2028😀é',
  );
  // Astral private-use characters are escaped as a surrogate pair.
  const astral = eventJson(
    { type: "ack", from: RECEIVER, payload: utf8("\u{f0000}") },
    CLOCK,
  );
  assert.equal(
    astral,
    `{"event":"ack",${TIME},"from":{"address":"127.0.0.1","port":10000},"bytes":4,"text":"\\udb80\\udc00"}`,
  );
  assert.equal(JSON.parse(astral).text, "\u{f0000}");
});

Deno.test("eventJson: no control or invisible character in any line", () => {
  const payload = new Uint8Array(0x800);
  const chars = Array.from(
    { length: 0x3000 },
    (_, k) => String.fromCodePoint(k),
  )
    .join("");
  for (
    const event of [
      { type: "message", from: SENDER, payload: utf8(chars) },
      { type: "ack", from: RECEIVER, payload: utf8(chars) },
      { type: "ack-failed", to: SENDER, reason: chars },
      { type: "message", from: SENDER, payload },
    ] as const
  ) {
    const line = eventJson(event, CLOCK);
    assert.equal(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u.test(line), false);
    assert.equal(typeof JSON.parse(line), "object");
  }
});

Deno.test("eventJson uses Date.now without a clock", () => {
  const before = Date.now();
  const line = eventJson({ type: "waiting" });
  const after = Date.now();
  const time = Date.parse(JSON.parse(line).time);
  assert.ok(time >= before && time <= after, line);
});
