/**
 * Unit tests of the uftp side-by-side section's pure parts
 * (`bench/uftp.ts`): uftp's and mcast-send's report parsers, a cell's row
 * (best valid run, refusal), the ratios against uftp, the targets and the
 * table. No transfer runs here.
 */

import { renderUftpChart } from "../../bench/uftp_chart.ts";
import assert from "node:assert/strict";
import {
  formatUftpTable,
  parseMcastReport,
  parseUftpReport,
  transferRatios,
  type TransferRow,
  transferRow,
  type TransferRun,
  transferTargets,
  type UftpSection,
} from "../../bench/uftp.ts";

/** What uftp 4.10.2 printed on standard error for one receiver. */
const UFTP_OUTPUT = `
UFTP version 4.10.2  Copyright (C) 2001-2020  Dennis A. Bush
Starting at Sun Dec  6 04:44:28 2026
Loaded 2048 bit RSA key with fingerprint 84:76:08:AB:40:F9:B4:EA:F2:4C:40:8C:18:7F:7F:80:90:DE:24:18
Transfer rate: full interface speed
Using private multicast address 239.255.77.11  Group ID: AD4ECF38
Initializing group
Sending ANNOUNCE 1.1
Received REGISTER from client 0x00000101
Sending KEYINFO 1.1
Received KEYINFO_ACK from 0x00000101
Late registers:
----- f10 -----
File ID: 0001  Name: f10
  sending as: f10
Bytes: 10000000  Blocks: 7693  Sections: 1
Sending FILEINFO 1.1
Received FILEINFO_ACK from client 0x00000101
Sending file
Starting pass 1
Sending section 0
Sending DONE 1.1
Got COMPLETE from client 0x00000101
Transfer status:
Host: 0x00000101       Status: Completed   time:   0.105 seconds
Host: 0x00000102       Status: Aborted     time:   0.050 seconds
Total elapsed time: 0.105 seconds
Overall throughput: 93305.42 KB/s
-----------------------------
Finishing group
Group complete
uftp: Finishing at Sun Dec  6 04:44:28 2026
`;

Deno.test("parseUftpReport reads version, every host's status and the totals", () => {
  assert.deepEqual(parseUftpReport(UFTP_OUTPUT), {
    version: "4.10.2",
    hosts: [
      { id: "0x00000101", status: "Completed", seconds: 0.105 },
      { id: "0x00000102", status: "Aborted", seconds: 0.05 },
    ],
    elapsedSeconds: 0.105,
    throughputKBps: 93305.42,
  });
});

Deno.test("parseUftpReport: no host status line, no report", () => {
  assert.equal(
    parseUftpReport("Sending ANNOUNCE 20.1\nAnnounce timed out\n"),
    null,
  );
});

Deno.test("parseMcastReport reads the last report line among the JSON lines", () => {
  const lines = [
    '{"event":"session","session":"42be"}',
    "not json at all",
    '{"event":"report","delivered":true,"reason":"complete","elapsedMs":5123,"retransmitted":12,"receivers":[]}',
  ];
  assert.deepEqual(parseMcastReport(lines), {
    delivered: true,
    reason: "complete",
    elapsedMs: 5123,
    retransmitted: 12,
  });
  assert.deepEqual(
    parseMcastReport(['{"event":"report","delivered":false}']),
    { delivered: false, reason: null, elapsedMs: null, retransmitted: null },
  );
  assert.equal(parseMcastReport(['{"event":"sent","bulletins":1}']), null);
  assert.equal(parseMcastReport(['{"event":"report","delivered":tr']), null);
});

function run(rep: number, seconds: number | null, valid = true): TransferRun {
  const result: TransferRun = {
    rep,
    seconds,
    reportedSeconds: null,
    valid,
  };
  if (!valid) result.problems = ["receiver 1: payload.bin differs"];
  return result;
}

Deno.test("transferRow takes the fastest valid run; MB/s of 100 MB", () => {
  const row = transferRow(
    { tool: "uftp", io: null, receivers: 1, mode: "plain", topology: "lo" },
    [run(1, 1.25), run(2, 0.8)],
  );
  assert.equal(row.seconds, 0.8);
  assert.equal(row.megabytesPerSecond, 125);
  assert.equal(row.valid, true);
  assert.equal(row.note, undefined);
  assert.equal(row.ratio, null);
});

Deno.test("transferRow: a refused run makes the cell invalid, the others still give a figure", () => {
  const row = transferRow(
    {
      tool: "mcast",
      io: "native",
      receivers: 3,
      mode: "plain",
      topology: "bridge",
    },
    [run(1, 2), run(2, null, false)],
  );
  assert.equal(row.valid, false);
  assert.equal(row.seconds, 2);
  assert.equal(row.note, "refused 1/2: receiver 1: payload.bin differs");
  const empty = transferRow(
    { tool: "uftp", io: null, receivers: 3, mode: "plain", topology: "bridge" },
    [],
  );
  assert.equal(empty.valid, false);
  assert.equal(empty.seconds, null);
  assert.equal(empty.megabytesPerSecond, null);
  assert.equal(empty.note, "not run");
});

function rows(): TransferRow[] {
  return [
    transferRow(
      { tool: "uftp", io: null, receivers: 1, mode: "plain", topology: "lo" },
      [run(1, 1.3)],
    ),
    transferRow(
      {
        tool: "mcast",
        io: "native",
        receivers: 1,
        mode: "plain",
        topology: "lo",
      },
      [run(1, 1)],
    ),
    transferRow(
      {
        tool: "mcast",
        io: "deno",
        receivers: 1,
        mode: "plain",
        topology: "lo",
      },
      [run(1, 2.6)],
    ),
    transferRow(
      {
        tool: "uftp",
        io: null,
        receivers: 1,
        mode: "encrypted",
        topology: "lo",
      },
      [run(1, null, false)],
    ),
    transferRow(
      {
        tool: "mcast",
        io: "native",
        receivers: 1,
        mode: "encrypted",
        topology: "lo",
      },
      [run(1, 1)],
    ),
  ];
}

Deno.test("transferRatios: uftp seconds over mcast seconds, thresholds 1.3 plain and 1.0 encrypted", () => {
  const result = transferRatios(rows());
  assert.deepEqual(
    result.map((r) => [r.tool, r.io, r.mode, r.ratio, r.threshold, r.met]),
    [
      ["uftp", null, "plain", null, null, null],
      ["mcast", "native", "plain", 1.3, 1.3, true],
      ["mcast", "deno", "plain", 0.5, 1.3, false],
      ["uftp", null, "encrypted", null, null, null],
      // uftp's cell was refused: no ratio.
      ["mcast", "native", "encrypted", null, 1, null],
    ],
  );
});

Deno.test("transferTargets: one per mcast row, with the figures or the reason", () => {
  const targets = transferTargets(transferRatios(rows()));
  assert.deepEqual(targets, [
    {
      id: "plain 1 native",
      measured: 1.3,
      threshold: 1.3,
      met: true,
      detail: "uftp 1.3 s / mcast 1 s",
    },
    {
      id: "plain 1 deno",
      measured: 0.5,
      threshold: 1.3,
      met: false,
      detail: "uftp 1.3 s / mcast 2.6 s",
    },
    {
      id: "encrypted 1 native",
      measured: null,
      threshold: 1,
      met: false,
      detail: "uftp not usable (refused 1/1: receiver 1: payload.bin differs)",
    },
  ]);
});

Deno.test("formatUftpTable: the skip reason, or one line per cell", () => {
  const skipped: UftpSection = {
    skipped: "uftp not installed",
    settings: {},
    rows: [],
    targets: [],
  };
  assert.equal(
    formatUftpTable(skipped).split("\n")[1],
    "  skipped: uftp not installed",
  );
  const section: UftpSection = {
    skipped: null,
    settings: {},
    rows: transferRatios(rows()),
    targets: [],
  };
  const lines = formatUftpTable(section).split("\n");
  assert.equal(lines.length, 2 + 5);
  assert.match(lines[1]!, /^tool\s+io\s+recv\s+mode\s+net\s+seconds\s+MB\/s/);
  assert.match(
    lines[3]!,
    /^mcast\s+native\s+1\s+plain\s+lo\s+1\.000\s+100\.0\s+1\.300\s+≥ 1\.3 met\s+1\.00$/,
  );
  assert.match(
    lines[5]!,
    /^uftp\s+1\s+encrypted\s+lo\s+-\s+-\s+-\s+refused\s+refused 1\/1/,
  );
});

Deno.test("renderUftpChart: a bar per tool and path, mcast's ratios over theirs, a target tick each", () => {
  const section = {
    skipped: null,
    settings: {},
    rows: transferRatios(rows()),
    targets: [],
  };
  const svg = renderUftpChart(section);
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.endsWith("</svg>\n"));
  const bars = svg.match(/<rect x=/g) ?? [];
  assert.equal(bars.length, section.rows.length);
  const ratios = section.rows.filter((r) => r.tool === "mcast").map((r) =>
    r.ratio === null ? "-" : `${r.ratio.toFixed(2)}×`
  );
  for (const ratio of ratios) {
    assert.ok(svg.includes(`>${ratio}</text>`), ratio);
  }
  const ticks = svg.match(/stroke="#d62728"/g) ?? [];
  assert.equal(
    ticks.length,
    section.rows.filter((r) =>
      r.tool === "mcast" && r.threshold !== null &&
      section.rows.some((u) =>
        u.tool === "uftp" && u.receivers === r.receivers &&
        u.mode === r.mode && u.megabytesPerSecond
      )
    ).length,
  );
});
