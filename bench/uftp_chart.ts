/**
 * The chart of the uftp side-by-side section (`bench/uftp.svg`): for each
 * cell (1 or 3 receivers, plain or encrypted), one bar per tool and path,
 * MB/s of a 100 MB file, with mcast's ratio to uftp over its bar and the
 * target it has to reach drawn as a tick.
 *
 * @module
 */

import { escapeXml } from "./chart.ts";
import type { TransferRow, UftpSection } from "./uftp.ts";

const WIDTH = 760;
const HEIGHT = 340;
const LEFT = 56;
const TOP = 48;
const BOTTOM = 56;
const COLOURS: Record<string, string> = {
  uftp: "#7f7f7f",
  native: "#1f77b4",
  deno: "#9ecae1",
  default: "#1f77b4",
};

function label(row: TransferRow): string {
  return row.tool === "uftp" ? "uftp" : `mcast ${row.io ?? ""}`.trim();
}

function colour(row: TransferRow): string {
  return row.tool === "uftp" ? COLOURS.uftp! : COLOURS[row.io ?? "default"]!;
}

/**
 * Draws the section as an SVG bar chart.
 *
 * @param section The section's rows, as `uftpSection` made them.
 * @returns The SVG document.
 */
export function renderUftpChart(section: UftpSection): string {
  const cells = new Map<string, TransferRow[]>();
  for (const row of section.rows) {
    const id = `${row.receivers} ${row.mode}`;
    if (!cells.has(id)) cells.set(id, []);
    cells.get(id)!.push(row);
  }
  // The axis reaches the fastest bar and the highest target.
  const needs = section.rows.map((r) => {
    const uftp = section.rows.find((u) =>
      u.tool === "uftp" && u.receivers === r.receivers && u.mode === r.mode
    );
    return (uftp?.megabytesPerSecond ?? 0) * (r.threshold ?? 0);
  });
  const top = Math.max(
    1,
    ...section.rows.map((r) => r.megabytesPerSecond ?? 0),
    ...needs,
  );
  const scale = Math.ceil(top / 40) * 40;
  const plotHeight = HEIGHT - TOP - BOTTOM;
  const plotWidth = WIDTH - LEFT - 16;
  const groupWidth = plotWidth / Math.max(1, cells.size);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${LEFT}" y="20" font-size="14" font-weight="bold">${
      escapeXml("A 100 MB file to 1 and 3 receivers: mcast beside uftp")
    }</text>`,
    `<text x="${LEFT}" y="36" font-size="11" fill="#555">${
      escapeXml(
        "MB/s (file bytes / sender wall time), best run; over mcast's bars: × uftp, same run; tick: the target",
      )
    }</text>`,
  ];
  for (let k = 0; k <= 4; k++) {
    const value = scale * k / 4;
    const y = TOP + plotHeight - plotHeight * k / 4;
    parts.push(
      `<line x1="${LEFT}" y1="${y}" x2="${
        WIDTH - 16
      }" y2="${y}" stroke="#ddd"/>`,
      `<text x="${LEFT - 6}" y="${
        y + 4
      }" font-size="10" text-anchor="end">${value}</text>`,
    );
  }
  [...cells.entries()].forEach(([id, rows], g) => {
    const x0 = LEFT + g * groupWidth + 10;
    const bar = (groupWidth - 20) / Math.max(1, rows.length);
    const uftp = rows.find((r) => r.tool === "uftp");
    rows.forEach((row, k) => {
      const x = x0 + k * bar;
      const value = row.megabytesPerSecond ?? 0;
      const h = plotHeight * value / scale;
      const y = TOP + plotHeight - h;
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${
          (bar - 4).toFixed(1)
        }" height="${h.toFixed(1)}" fill="${colour(row)}"><title>${
          escapeXml(
            `${label(row)}, ${id}: ${
              row.megabytesPerSecond === null
                ? row.note ?? "no valid run"
                : `${row.megabytesPerSecond} MB/s`
            }`,
          )
        }</title></rect>`,
        `<text x="${(x + (bar - 4) / 2).toFixed(1)}" y="${
          (TOP + plotHeight + 12).toFixed(1)
        }" font-size="9" text-anchor="middle">${escapeXml(label(row))}</text>`,
      );
      if (row.tool === "mcast") {
        parts.push(
          `<text x="${(x + (bar - 4) / 2).toFixed(1)}" y="${
            (y - 4).toFixed(1)
          }" font-size="10" text-anchor="middle">${
            row.ratio === null ? "-" : `${row.ratio.toFixed(2)}×`
          }</text>`,
        );
        const needed = uftp?.megabytesPerSecond && row.threshold
          ? uftp.megabytesPerSecond * row.threshold
          : null;
        if (needed !== null) {
          const ty = TOP + plotHeight - plotHeight * needed / scale;
          parts.push(
            `<line x1="${x.toFixed(1)}" y1="${ty.toFixed(1)}" x2="${
              (x + bar - 4).toFixed(1)
            }" y2="${ty.toFixed(1)}" stroke="#d62728" stroke-width="2"/>`,
          );
        }
      }
    });
    parts.push(
      `<text x="${(x0 + (groupWidth - 20) / 2).toFixed(1)}" y="${
        HEIGHT - 18
      }" font-size="12" text-anchor="middle">${
        escapeXml(
          id.replace(/^1 /, "1 receiver, ").replace(/^3 /, "3 receivers, "),
        )
      }</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
