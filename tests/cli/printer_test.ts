import assert from "node:assert/strict";
import type { Group } from "../../lib/net/address.ts";
import type {
  ReceiverEvent,
  ReliableSenderEvent,
  SenderEvent,
} from "../../lib/events.ts";
import {
  eventJson,
  receiverText,
  reliableSenderText,
  reportText,
  senderText,
} from "../../lib/cli/printer.ts";
import {
  type DropCounts,
  emptyDrops,
  type ReceiverStats,
  type SenderReport,
} from "../../lib/reliable/stats.ts";

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

// ---- reliable mode ---------------------------------------------------------

const SESSION = "0123456789abcdef";
const GROUP7: Group = { family: 4, address: "239.7.7.7" };
const R1 = { address: "127.0.0.1", port: 17001 };
const R2 = { address: "127.0.0.1", port: 17002 };
const R3 = { address: "127.0.0.1", port: 17003 };
/** Microseconds since the epoch, as DATA frames carry them. */
const SENT_AT = 1_700_000_000_123_456;
/**
 * A receiver name straight off the wire: an escape sequence, a bidirectional
 * override and a newline, none of which may reach a terminal raw.
 */
const EVIL_NAME = "r\x1b[31m\u202e\n1";
/** {@linkcode EVIL_NAME} as the text printers show it. */
const EVIL_TEXT = "r\\x1b[31m\\u202e\\n1";
/** {@linkcode EVIL_NAME} inside a JSON line (JSON source text). */
const EVIL_JSON = '"r\\u001b[31m\\u202e\\n1"';
/** Any character a terminal must not see raw in a JSON line. */
const UNSAFE_IN_JSON = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

const STATS: ReceiverStats = {
  name: "r1",
  session: SESSION,
  data: 12,
  bulletins: 10,
  bytes: 190,
  duplicates: 2,
  repaired: 3,
  unrecoverable: 4,
  failed: 5,
  nacks: 6,
  acks: 7,
  dropped: {
    version: 1,
    type: 2,
    truncated: 3,
    malformed: 4,
    tag: 5,
    unexpected: 6,
    ahead: 7,
    auth: 0,
    replay: 0,
    stale: 0,
    forged: 0,
    plain: 0,
    roster: 0,
  },
};

function report(fields: Partial<SenderReport>): SenderReport {
  return {
    session: SESSION,
    delivered: true,
    reason: "complete",
    bulletins: 3,
    packets: 1,
    bytes: 13,
    retransmitted: 0,
    nacks: 0,
    acks: 2,
    feedback: 4,
    gone: 0,
    dropped: emptyDrops(),
    elapsedMs: 1234,
    receivers: [],
    ...fields,
  };
}

const COMPLETE = report({
  receivers: [
    {
      name: "r1",
      from: R1,
      acked: 1,
      bulletins: 3,
      missing: [],
      missingBulletins: [],
      status: "complete",
      nacks: 0,
    },
    {
      name: "r2",
      from: R2,
      acked: 1,
      bulletins: 3,
      missing: [],
      missingBulletins: [],
      status: "complete",
      nacks: 0,
    },
  ],
});

const DEADLINE = report({
  delivered: false,
  reason: "deadline",
  bulletins: 12,
  packets: 12,
  bytes: 1200,
  retransmitted: 7,
  nacks: 3,
  acks: 9,
  feedback: 14,
  gone: 2,
  dropped: { ...emptyDrops(), version: 1, unexpected: 2 },
  elapsedMs: 5000,
  receivers: [
    {
      name: "r1",
      from: R1,
      acked: 12,
      bulletins: 12,
      missing: [],
      missingBulletins: [],
      status: "complete",
      nacks: 0,
    },
    {
      name: "r2",
      from: R2,
      acked: 2,
      bulletins: 2,
      missing: [{ first: 3, last: 4 }, { first: 7, last: 7 }, {
        first: 9,
        last: 12,
      }],
      missingBulletins: [{ first: 3, last: 4 }, { first: 7, last: 7 }, {
        first: 9,
        last: 12,
      }],
      status: "incomplete",
      nacks: 2,
    },
    {
      name: "r3",
      from: R3,
      acked: 1,
      bulletins: 1,
      missing: [{ first: 2, last: 2 }],
      missingBulletins: [{ first: 2, last: 2 }],
      status: "incomplete",
      nacks: 1,
    },
  ],
});

const SILENT_EVICTED = report({
  delivered: false,
  reason: "evicted",
  bulletins: 5,
  packets: 5,
  bytes: 50,
  elapsedMs: 61_005,
  receivers: [
    {
      name: "left-early",
      from: R2,
      acked: 4,
      bulletins: 4,
      missing: [{ first: 5, last: 5 }],
      missingBulletins: [{ first: 5, last: 5 }],
      status: "left",
      nacks: 0,
    },
    {
      name: "quiet",
      acked: 0,
      bulletins: 0,
      missing: [{ first: 1, last: 5 }],
      missingBulletins: [{ first: 1, last: 5 }],
      status: "silent",
      nacks: 0,
    },
    {
      name: "slow",
      from: R3,
      acked: 2,
      bulletins: 2,
      missing: [{ first: 3, last: 5 }],
      missingBulletins: [{ first: 3, last: 5 }],
      status: "evicted",
      nacks: 4,
    },
  ],
});

Deno.test("receiverText: a session joined or resumed", () => {
  assert.deepEqual(
    receiverText({
      type: "session",
      session: SESSION,
      from: SENDER,
      start: 1,
      resumed: false,
    }),
    [
      "joined session 0123456789abcdef from ('127.0.0.1', 41000) at sequence 1",
    ],
  );
  assert.deepEqual(
    receiverText({
      type: "session",
      session: SESSION,
      from: LINK_LOCAL,
      start: 42,
      resumed: true,
    }),
    [
      "resumed session 0123456789abcdef from ('fe80::1', 41000, 0, 2) at sequence 42",
    ],
  );
});

Deno.test("receiverText: a delivered bulletin, shown or saved", () => {
  assert.deepEqual(
    receiverText({
      type: "bulletin",
      session: SESSION,
      number: 3,
      from: SENDER,
      payload: DATA,
      sentAt: SENT_AT,
    }),
    [
      "received bulletin 3 (19 bytes) from ('127.0.0.1', 41000) : very important data",
    ],
  );
  // 21 bytes; the escape sequence, CR LF and the override are escaped.
  assert.deepEqual(
    receiverText({
      type: "bulletin",
      session: SESSION,
      number: 4,
      from: SENDER,
      payload: utf8("breaking\x1b[2J\r\nnews\u202e"),
      sentAt: SENT_AT,
    }),
    [
      "received bulletin 4 (21 bytes) from ('127.0.0.1', 41000) : breaking\\x1b[2J\\r\\nnews\\u202e",
    ],
  );
  assert.deepEqual(
    receiverText({
      type: "bulletin",
      session: SESSION,
      number: 5,
      from: SENDER,
      payload: new Uint8Array([0x61, 0xff]),
      sentAt: SENT_AT,
    }),
    ["received bulletin 5 (2 bytes) from ('127.0.0.1', 41000) : a\\xff"],
  );
  assert.deepEqual(
    receiverText({
      type: "bulletin",
      session: SESSION,
      number: 6,
      from: SENDER,
      payload: new Uint8Array(),
      sentAt: SENT_AT,
    }),
    ["received bulletin 6 (0 bytes) from ('127.0.0.1', 41000) : "],
  );
  assert.deepEqual(
    receiverText({
      type: "bulletin",
      session: SESSION,
      number: 3,
      from: SENDER,
      payload: DATA,
      sentAt: SENT_AT,
      path: "/tmp/out/0123456789abcdef-3",
    }),
    [
      "received bulletin 3 (19 bytes) from ('127.0.0.1', 41000) saved to /tmp/out/0123456789abcdef-3",
    ],
  );
  // The payload is not shown when saved; an odd path is escaped.
  assert.deepEqual(
    receiverText({
      type: "bulletin",
      session: SESSION,
      number: 7,
      from: LINK_LOCAL,
      payload: utf8("\x1b[2J"),
      sentAt: SENT_AT,
      path: "out\n\x1b]0;x\x07/7",
    }),
    [
      "received bulletin 7 (4 bytes) from ('fe80::1', 41000, 0, 2) saved to out\\n\\x1b]0;x\\x07/7",
    ],
  );
});

Deno.test("receiverText: unrecoverable ranges, singular and plural", () => {
  assert.deepEqual(
    receiverText({
      type: "unrecoverable",
      session: SESSION,
      first: 5,
      last: 9,
      bulletins: 2,
    }),
    [
      "unrecoverable: sequences 5-9 are no longer held by the sender (2 bulletins lost)",
    ],
  );
  assert.deepEqual(
    receiverText({
      type: "unrecoverable",
      session: SESSION,
      first: 7,
      last: 7,
      bulletins: 1,
    }),
    [
      "unrecoverable: sequence 7 is no longer held by the sender (1 bulletin lost)",
    ],
  );
  assert.deepEqual(
    receiverText({
      type: "unrecoverable",
      session: SESSION,
      first: 10,
      last: 11,
      bulletins: 0,
    }),
    [
      "unrecoverable: sequences 10-11 are no longer held by the sender (0 bulletins lost)",
    ],
  );
});

Deno.test("receiverText: a discarded bulletin, for either reason", () => {
  assert.deepEqual(
    receiverText({
      type: "bulletin-failed",
      session: SESSION,
      number: 4,
      reason: "digest",
    }),
    ["discarded bulletin 4: digest mismatch"],
  );
  assert.deepEqual(
    receiverText({
      type: "bulletin-failed",
      session: SESSION,
      number: 5,
      reason: "too-large",
    }),
    ["discarded bulletin 5: larger than --max-size"],
  );
});

Deno.test("receiverText: stopped with statistics prints the statistics line", () => {
  assert.deepEqual(
    receiverText({
      type: "stopped",
      messages: 10,
      reason: "count",
      stats: STATS,
    }),
    [
      "statistics: 10 bulletins (190 bytes), 12 datagrams, 3 repaired, 2 duplicates, 4 unrecoverable, 5 discarded, 6 NACKs, 7 ACKs, 28 dropped (version 1, type 2, truncated 3, malformed 4, tag 5, unexpected 6, ahead 7)",
    ],
  );
  const one: ReceiverStats = {
    name: "r1",
    data: 1,
    bulletins: 1,
    bytes: 1,
    duplicates: 0,
    repaired: 0,
    unrecoverable: 0,
    failed: 0,
    nacks: 0,
    acks: 2,
    dropped: emptyDrops(),
  };
  assert.deepEqual(
    receiverText({
      type: "stopped",
      messages: 1,
      reason: "signal",
      stats: one,
    }),
    [
      "statistics: 1 bulletin (1 byte), 1 datagram, 0 repaired, 0 duplicates, 0 unrecoverable, 0 discarded, 0 NACKs, 2 ACKs, 0 dropped",
    ],
  );
});

Deno.test("reliableSenderText: session started or resumed", () => {
  assert.deepEqual(
    reliableSenderText({
      type: "session",
      session: SESSION,
      group: GROUP7,
      port: 17001,
      local: { address: "127.0.0.1", port: 40000 },
      resumed: false,
      recovered: 0,
    }),
    ["session 0123456789abcdef to 239.7.7.7:17001"],
  );
  assert.deepEqual(
    reliableSenderText({
      type: "session",
      session: SESSION,
      group: GROUP7,
      port: 17001,
      local: { address: "127.0.0.1", port: 40000 },
      resumed: true,
      recovered: 5,
    }),
    [
      "resumed session 0123456789abcdef to 239.7.7.7:17001 from the journal (5 datagrams held)",
    ],
  );
});

Deno.test("reliableSenderText: one datagram held is singular", () => {
  assert.deepEqual(
    reliableSenderText({
      type: "session",
      session: SESSION,
      group: GROUP7,
      port: 17001,
      local: { address: "127.0.0.1", port: 40000 },
      resumed: true,
      recovered: 1,
    }),
    [
      "resumed session 0123456789abcdef to 239.7.7.7:17001 from the journal (1 datagram held)",
    ],
  );
});

Deno.test("reliableSenderText: an IPv6 group is bracketed before its port", () => {
  assert.deepEqual(
    reliableSenderText({
      type: "session",
      session: SESSION,
      group: GROUP6,
      port: 5000,
      local: { address: "127.0.0.1", port: 40000 },
      resumed: false,
      recovered: 0,
    }),
    ["session 0123456789abcdef to [ff02::1:2]:5000"],
  );
});

Deno.test("reliableSenderText: receivers joining, leaving, evicted", () => {
  assert.deepEqual(
    reliableSenderText({ type: "receiver", name: "r1", from: R1 }),
    ["receiver r1 joined from ('127.0.0.1', 17001)"],
  );
  assert.deepEqual(
    reliableSenderText({ type: "receiver", name: "日本-7", from: LINK_LOCAL }),
    ["receiver 日本-7 joined from ('fe80::1', 41000, 0, 2)"],
  );
  assert.deepEqual(
    reliableSenderText({ type: "receiver-left", name: "r1", complete: true }),
    ["receiver r1 left (up to date)"],
  );
  assert.deepEqual(
    reliableSenderText({ type: "receiver-left", name: "r2", complete: false }),
    ["receiver r2 left (behind)"],
  );
  assert.deepEqual(
    reliableSenderText({
      type: "evicted",
      name: "slow",
      acked: 40,
      high: 100,
    }),
    [
      "evicted slow: it acknowledged 40 of 100 datagrams and held the stream back (--drop-slow)",
    ],
  );
});

Deno.test("reliableSenderText: receiver names from the wire are escaped", () => {
  assert.deepEqual(
    reliableSenderText({ type: "receiver", name: EVIL_NAME, from: R1 }),
    [`receiver ${EVIL_TEXT} joined from ('127.0.0.1', 17001)`],
  );
  assert.deepEqual(
    reliableSenderText({
      type: "receiver-left",
      name: EVIL_NAME,
      complete: true,
    }),
    [`receiver ${EVIL_TEXT} left (up to date)`],
  );
  assert.deepEqual(
    reliableSenderText({
      type: "evicted",
      name: EVIL_NAME,
      acked: 40,
      high: 100,
    }),
    [
      `evicted ${EVIL_TEXT}: it acknowledged 40 of 100 datagrams and held the stream back (--drop-slow)`,
    ],
  );
});

Deno.test("reliableSenderText: sent, singular and plural", () => {
  assert.deepEqual(
    reliableSenderText({ type: "sent", bulletins: 3, packets: 1 }),
    ["sent 3 bulletins in 1 datagram, waiting for acknowledgements"],
  );
  assert.deepEqual(
    reliableSenderText({ type: "sent", bulletins: 1, packets: 1 }),
    ["sent 1 bulletin in 1 datagram, waiting for acknowledgements"],
  );
  assert.deepEqual(
    reliableSenderText({ type: "sent", bulletins: 1, packets: 12 }),
    ["sent 1 bulletin in 12 datagrams, waiting for acknowledgements"],
  );
  assert.deepEqual(
    reliableSenderText({ type: "sent", bulletins: 0, packets: 0 }),
    ["sent 0 bulletins in 0 datagrams, waiting for acknowledgements"],
  );
});

Deno.test("reliableSenderText: the report event prints the report", () => {
  for (const r of [COMPLETE, DEADLINE, SILENT_EVICTED]) {
    assert.deepEqual(
      reliableSenderText({ type: "report", report: r }),
      reportText(r),
    );
  }
});

Deno.test("reportText: a complete delivery", () => {
  assert.deepEqual(reportText(COMPLETE), [
    "delivery report for session 0123456789abcdef: delivered to every receiver in 1.234 s",
    "  r1 ('127.0.0.1', 17001): complete, has 3 bulletins",
    "  r2 ('127.0.0.1', 17002): complete, has 3 bulletins",
    "statistics: 3 bulletins (13 bytes) in 1 datagram, 0 retransmitted, 0 NACKs, 2 ACKs, 4 feedback frames, 0 gone notices, 0 dropped",
  ]);
});

Deno.test("reportText: a deadline report lists the missing ranges", () => {
  assert.deepEqual(reportText(DEADLINE), [
    "delivery report for session 0123456789abcdef: NOT delivered to every receiver by the deadline in 5.000 s",
    "  r1 ('127.0.0.1', 17001): complete, has 12 bulletins",
    "  r2 ('127.0.0.1', 17002): incomplete, has 2 bulletins, missing bulletins 3-4, 7, 9-12 (datagrams 3-4, 7, 9-12)",
    "  r3 ('127.0.0.1', 17003): incomplete, has 1 bulletin, missing bulletins 2 (datagrams 2)",
    "statistics: 12 bulletins (1200 bytes) in 12 datagrams, 7 retransmitted, 3 NACKs, 9 ACKs, 14 feedback frames, 2 gone notices, 3 dropped (version 1, unexpected 2)",
  ]);
});

Deno.test("reportText: missing bulletins and datagrams are formatted apart", () => {
  // Fragments: bulletin 2 spans datagrams 2-4, bulletins 5-6 share datagram 8.
  const lines = reportText(report({
    delivered: false,
    reason: "deadline",
    bulletins: 6,
    packets: 8,
    bytes: 4000,
    receivers: [{
      name: "r1",
      from: R1,
      acked: 1,
      bulletins: 1,
      missing: [{ first: 3, last: 3 }, { first: 8, last: 8 }],
      missingBulletins: [{ first: 2, last: 2 }, { first: 5, last: 6 }],
      status: "incomplete",
      nacks: 0,
    }],
  }));
  assert.equal(
    lines[1],
    "  r1 ('127.0.0.1', 17001): incomplete, has 1 bulletin, missing bulletins 2, 5-6 (datagrams 3, 8)",
  );
});

Deno.test("reportText: silent, evicted and departed receivers", () => {
  assert.deepEqual(reportText(SILENT_EVICTED), [
    "delivery report for session 0123456789abcdef: NOT delivered to every receiver (evicted) in 61.005 s",
    "  left-early ('127.0.0.1', 17002): left, has 4 bulletins, missing bulletins 5 (datagrams 5)",
    "  quiet: silent, has 0 bulletins, missing bulletins 1-5 (datagrams 1-5)",
    "  slow ('127.0.0.1', 17003): evicted, has 2 bulletins, missing bulletins 3-5 (datagrams 3-5)",
    "statistics: 5 bulletins (50 bytes) in 5 datagrams, 0 retransmitted, 0 NACKs, 2 ACKs, 4 feedback frames, 0 gone notices, 0 dropped",
  ]);
});

Deno.test("reportText: every headline, and singular counts", () => {
  function headline(fields: Partial<SenderReport>): string {
    return reportText(report(fields))[0]!;
  }
  assert.equal(
    headline({ delivered: false, reason: "signal", elapsedMs: 0 }),
    "delivery report for session 0123456789abcdef: NOT delivered to every receiver (interrupted) in 0.000 s",
  );
  assert.equal(
    headline({ delivered: true, reason: "no-receivers", elapsedMs: 999 }),
    "delivery report for session 0123456789abcdef: no receiver answered in 0.999 s",
  );
  assert.equal(
    headline({ delivered: false, reason: "no-receivers", elapsedMs: 10 }),
    "delivery report for session 0123456789abcdef: no receiver answered in 0.010 s",
  );
  const single = reportText(report({
    bulletins: 1,
    packets: 1,
    bytes: 1,
    dropped: { ...emptyDrops(), tag: 1 },
    receivers: [],
  }));
  assert.deepEqual(single.slice(1), [
    "statistics: 1 bulletin (1 byte) in 1 datagram, 0 retransmitted, 0 NACKs, 2 ACKs, 4 feedback frames, 0 gone notices, 1 dropped (tag 1)",
  ]);
});

Deno.test("reportText: feedback beyond the roster cap is reported on its own line", () => {
  const lines = reportText(report({
    bulletins: 1,
    packets: 1,
    bytes: 1,
    dropped: { ...emptyDrops(), roster: 80_002, auth: 3 },
    receivers: [],
  }));
  assert.deepEqual(lines.slice(1), [
    "roster full: 80002 feedback frames from receivers beyond the roster cap ignored",
    "statistics: 1 bulletin (1 byte) in 1 datagram, 0 retransmitted, 0 NACKs, 2 ACKs, 4 feedback frames, 0 gone notices, 80005 dropped (auth 3, roster 80002)",
  ]);
});

Deno.test("reportText: receiver names are escaped", () => {
  const lines = reportText(report({
    receivers: [{
      name: EVIL_NAME,
      from: R1,
      acked: 1,
      bulletins: 3,
      missing: [],
      missingBulletins: [],
      status: "complete",
      nacks: 0,
    }],
  }));
  assert.equal(
    lines[1],
    `  ${EVIL_TEXT} ('127.0.0.1', 17001): complete, has 3 bulletins`,
  );
  assert.equal(lines.some((line) => UNSAFE_IN_JSON.test(line)), false);
});

Deno.test("eventJson: reliable receiver events", () => {
  const session = eventJson({
    type: "session",
    session: SESSION,
    from: SENDER,
    start: 1,
    resumed: false,
  }, CLOCK);
  assert.equal(
    session,
    `{"event":"session",${TIME},"session":"0123456789abcdef","from":{"address":"127.0.0.1","port":41000},"start":1,"resumed":false}`,
  );
  assert.deepEqual(
    JSON.parse(eventJson({
      type: "session",
      session: SESSION,
      from: LINK_LOCAL,
      start: 42,
      resumed: true,
    }, CLOCK)),
    {
      event: "session",
      time: "2024-05-06T07:08:09.010Z",
      session: SESSION,
      from: { address: "fe80::1", port: 41000, scopeId: 2 },
      start: 42,
      resumed: true,
    },
  );
  assert.equal(
    eventJson({
      type: "bulletin",
      session: SESSION,
      number: 3,
      from: SENDER,
      payload: DATA,
      sentAt: SENT_AT,
    }, CLOCK),
    `{"event":"bulletin",${TIME},"session":"0123456789abcdef","number":3,"from":{"address":"127.0.0.1","port":41000},"sentAt":1700000000123456,"bytes":19,"text":"very important data"}`,
  );
  assert.deepEqual(
    JSON.parse(eventJson({
      type: "bulletin",
      session: SESSION,
      number: 4,
      from: SENDER,
      payload: new Uint8Array([0xff, 0x00]),
      sentAt: SENT_AT,
      path: "/tmp/out/4",
    }, CLOCK)),
    {
      event: "bulletin",
      time: "2024-05-06T07:08:09.010Z",
      session: SESSION,
      number: 4,
      from: { address: "127.0.0.1", port: 41000 },
      sentAt: SENT_AT,
      path: "/tmp/out/4",
      bytes: 2,
    },
  );
  assert.equal(
    eventJson({
      type: "unrecoverable",
      session: SESSION,
      first: 5,
      last: 9,
      bulletins: 2,
    }, CLOCK),
    `{"event":"unrecoverable",${TIME},"session":"0123456789abcdef","first":5,"last":9,"bulletins":2}`,
  );
  for (const reason of ["digest", "too-large"] as const) {
    assert.equal(
      eventJson({
        type: "bulletin-failed",
        session: SESSION,
        number: 4,
        reason,
      }, CLOCK),
      `{"event":"bulletin-failed",${TIME},"session":"0123456789abcdef","number":4,"reason":"${reason}"}`,
    );
  }
});

Deno.test("eventJson: stopped carries the statistics when there are any", () => {
  const line = eventJson(
    { type: "stopped", messages: 10, reason: "count", stats: STATS },
    CLOCK,
  );
  assert.equal(
    line,
    `{"event":"stopped",${TIME},"messages":10,"reason":"count","stats":{"name":"r1","session":"0123456789abcdef","data":12,"bulletins":10,"bytes":190,"duplicates":2,"repaired":3,"unrecoverable":4,"failed":5,"nacks":6,"acks":7,"dropped":{"version":1,"type":2,"truncated":3,"malformed":4,"tag":5,"unexpected":6,"ahead":7,"auth":0,"replay":0,"stale":0,"forged":0,"plain":0,"roster":0}}}`,
  );
  assert.deepEqual(JSON.parse(line).stats, STATS);
  assert.equal(
    "stats" in
      JSON.parse(eventJson({ type: "stopped", messages: 1, reason: "count" })),
    false,
  );
});

Deno.test("eventJson: reliable sender events", () => {
  const events: [ReliableSenderEvent, string][] = [
    [
      {
        type: "session",
        session: SESSION,
        group: GROUP7,
        port: 17001,
        local: { address: "127.0.0.1", port: 40000 },
        resumed: false,
        recovered: 0,
      },
      `{"event":"session",${TIME},"session":"0123456789abcdef","group":"239.7.7.7","port":17001,"local":{"address":"127.0.0.1","port":40000},"resumed":false,"recovered":0}`,
    ],
    [
      {
        type: "session",
        session: SESSION,
        group: GROUP6,
        port: 5000,
        local: { address: "127.0.0.1", port: 40000 },
        resumed: true,
        recovered: 5,
      },
      `{"event":"session",${TIME},"session":"0123456789abcdef","group":"ff02::1:2","port":5000,"local":{"address":"127.0.0.1","port":40000},"resumed":true,"recovered":5}`,
    ],
    [
      { type: "receiver", name: "r1", from: R1 },
      `{"event":"receiver",${TIME},"name":"r1","from":{"address":"127.0.0.1","port":17001}}`,
    ],
    [
      { type: "receiver", name: "r6", from: LINK_LOCAL },
      `{"event":"receiver",${TIME},"name":"r6","from":{"address":"fe80::1","port":41000,"scopeId":2}}`,
    ],
    [
      { type: "receiver-left", name: "r1", complete: true },
      `{"event":"receiver-left",${TIME},"name":"r1","complete":true}`,
    ],
    [
      { type: "receiver-left", name: "r2", complete: false },
      `{"event":"receiver-left",${TIME},"name":"r2","complete":false}`,
    ],
    [
      { type: "evicted", name: "slow", acked: 40, high: 100 },
      `{"event":"evicted",${TIME},"name":"slow","acked":40,"high":100}`,
    ],
    [
      { type: "sent", bulletins: 3, packets: 1 },
      `{"event":"sent",${TIME},"bulletins":3,"packets":1}`,
    ],
  ];
  for (const [event, expected] of events) {
    assert.equal(eventJson(event, CLOCK), expected);
  }
});

Deno.test("eventJson: the report, with every receiver's state", () => {
  for (const r of [COMPLETE, DEADLINE, SILENT_EVICTED]) {
    const line = eventJson({ type: "report", report: r }, CLOCK);
    assert.equal(line.startsWith(`{"event":"report",${TIME},`), true);
    assert.deepEqual(JSON.parse(line), {
      event: "report",
      time: "2024-05-06T07:08:09.010Z",
      ...r,
    });
  }
  const line = eventJson({ type: "report", report: COMPLETE }, CLOCK);
  assert.equal(
    line,
    `{"event":"report",${TIME},"session":"0123456789abcdef","delivered":true,"reason":"complete","bulletins":3,"packets":1,"bytes":13,"retransmitted":0,"nacks":0,"acks":2,"feedback":4,"gone":0,"dropped":{"version":0,"type":0,"truncated":0,"malformed":0,"tag":0,"unexpected":0,"ahead":0,"auth":0,"replay":0,"stale":0,"forged":0,"plain":0,"roster":0},"elapsedMs":1234,"receivers":[{"name":"r1","from":{"address":"127.0.0.1","port":17001},"acked":1,"bulletins":3,"missing":[],"missingBulletins":[],"status":"complete","nacks":0},{"name":"r2","from":{"address":"127.0.0.1","port":17002},"acked":1,"bulletins":3,"missing":[],"missingBulletins":[],"status":"complete","nacks":0}]}`,
  );
  // A silent receiver has no "from"; a link-local one keeps its scope.
  const parsed = JSON.parse(
    eventJson({
      type: "report",
      report: report({
        receivers: [
          { ...SILENT_EVICTED.receivers[1]! },
          { ...COMPLETE.receivers[0]!, name: "r6", from: LINK_LOCAL },
        ],
      }),
    }, CLOCK),
  );
  assert.equal("from" in parsed.receivers[0], false);
  assert.deepEqual(parsed.receivers[1].from, {
    address: "fe80::1",
    port: 41000,
    scopeId: 2,
  });
});

Deno.test("eventJson: names, payloads and paths from the wire are escaped", () => {
  const dropped: DropCounts = emptyDrops();
  const lines = [
    eventJson({ type: "receiver", name: EVIL_NAME, from: R1 }, CLOCK),
    eventJson(
      { type: "receiver-left", name: EVIL_NAME, complete: false },
      CLOCK,
    ),
    eventJson(
      { type: "evicted", name: EVIL_NAME, acked: 1, high: 2 },
      CLOCK,
    ),
    eventJson({
      type: "report",
      report: report({
        dropped,
        receivers: [{ ...COMPLETE.receivers[0]!, name: EVIL_NAME }],
      }),
    }, CLOCK),
    eventJson({
      type: "stopped",
      messages: 0,
      reason: "signal",
      stats: { ...STATS, name: EVIL_NAME },
    }, CLOCK),
  ];
  for (const line of lines) {
    assert.equal(UNSAFE_IN_JSON.test(line), false, line);
    assert.equal(line.includes(EVIL_JSON), true, line);
  }
  assert.equal(JSON.parse(lines[0]!).name, EVIL_NAME);
  assert.equal(JSON.parse(lines[1]!).name, EVIL_NAME);
  assert.equal(JSON.parse(lines[2]!).name, EVIL_NAME);
  assert.equal(JSON.parse(lines[3]!).receivers[0].name, EVIL_NAME);
  assert.equal(JSON.parse(lines[4]!).stats.name, EVIL_NAME);

  const text = "breaking\x1b[2J\r\nnews\u202e\u2028";
  const bulletin = eventJson({
    type: "bulletin",
    session: SESSION,
    number: 1,
    from: SENDER,
    payload: utf8(text),
    sentAt: SENT_AT,
  }, CLOCK);
  assert.equal(UNSAFE_IN_JSON.test(bulletin), false, bulletin);
  assert.equal(
    bulletin.endsWith(
      `"bytes":24,"text":"breaking\\u001b[2J\\r\\nnews\\u202e\\u2028"}`,
    ),
    true,
    bulletin,
  );
  assert.equal(JSON.parse(bulletin).text, text);
  // Saved to a file: the path instead of the payload, escaped the same way.
  const saved = eventJson({
    type: "bulletin",
    session: SESSION,
    number: 1,
    from: SENDER,
    payload: utf8(text),
    sentAt: SENT_AT,
    path: "out/\x1b]0;x\x07\u202e",
  }, CLOCK);
  assert.equal(UNSAFE_IN_JSON.test(saved), false, saved);
  assert.equal(
    saved.endsWith(`"path":"out/\\u001b]0;x\\u0007\\u202e","bytes":24}`),
    true,
    saved,
  );
  assert.equal(JSON.parse(saved).path, "out/\x1b]0;x\x07\u202e");
});
