/**
 * The benchmark's chart, a hand-written SVG: grouped bars of throughput
 * (bulletins/s and MB/s, log scale) per size and variant, one-way latency
 * percentiles, the targets with their measured ratios and, when measured,
 * the cost of keys (each variant's bulletins/s over the keyless baseline's,
 * linear scale). Pure: results in, SVG text out; unit-tested in
 * `tests/bench_test.ts`.
 *
 * @module
 */

import {
  type AckRow,
  type LatencyRow,
  type MemoryRow,
  SECURITY_VARIANTS,
  type SecurityRow,
  type SecurityVariant,
  type Target,
  type ThroughputRow,
  type Variant,
  VARIANTS,
} from "./report.ts";

/** What the chart shows. */
export interface ChartInput {
  /** First line. */
  title: string;
  /** Second line (machine, date, command). */
  subtitle: string;
  /** Throughput cells. */
  throughput: ThroughputRow[];
  /** Latency rows. */
  latency: LatencyRow[];
  /** Ack-time rows. */
  ack: AckRow[];
  /** The memory run. */
  memory: MemoryRow | null;
  /** The targets. */
  targets: Target[];
  /** The security cells (ratios set); the chart grows a row for them. */
  security?: SecurityRow[];
}

/** Bar colours per variant. */
export const COLORS: Record<Variant, string> = {
  "bare": "#4c78a8",
  "plain": "#72b7b2",
  "reliable-1": "#f58518",
  "reliable-3": "#e45756",
  "iperf2": "#54a24b",
  "sockperf": "#b279a2",
};

const LATENCY_COLORS = ["#9ecae9", "#4c78a8", "#1d3557"];

/** Bar colours per security variant. */
export const SECURITY_COLORS: Record<SecurityVariant, string> = {
  "none": "#f58518",
  "key": "#9d755d",
  "key+encrypt": "#bab0ac",
  "key+encrypt+sign": "#5d5d5d",
};

/**
 * Escapes text for SVG content and attribute values.
 *
 * @param text Any text.
 * @returns The text with `& < > " '` escaped.
 */
export function escapeXml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) =>
      c === "&"
        ? "&amp;"
        : c === "<"
        ? "&lt;"
        : c === ">"
        ? "&gt;"
        : c === '"'
        ? "&quot;"
        : "&apos;",
  );
}

/**
 * A short number: 1234 → `1.2k`, 2500000 → `2.5M`, 12.34 → `12.3`.
 *
 * @param value The number.
 * @returns Its short form.
 */
export function shortNumber(value: number): string {
  const abs = Math.abs(value);
  const trim = (x: number) =>
    (x >= 100 ? x.toFixed(0) : x.toFixed(1)).replace(/\.0$/, "");
  if (abs >= 1e6) return `${trim(value / 1e6)}M`;
  if (abs >= 1e3) return `${trim(value / 1e3)}k`;
  return trim(value);
}

/**
 * Breaks text into lines of at most `width` characters at spaces, keeping
 * at most `lines` lines (the last one ends with `…` when cut).
 *
 * @param content The text.
 * @param width Longest line.
 * @param lines Most lines.
 * @returns The lines.
 */
export function wrap(content: string, width: number, lines: number): string[] {
  const out: string[] = [];
  let line = "";
  for (const word of content.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = "";
    }
    line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  if (out.length > lines) {
    const kept = out.slice(0, lines);
    kept[lines - 1] = `${kept[lines - 1]!.slice(0, width - 1)}…`;
    return kept;
  }
  return out;
}

function sizeLabel(size: number): string {
  return size >= 1024 && size % 1024 === 0 ? `${size / 1024} KiB` : `${size} B`;
}

function n(x: number): string {
  return (Math.round(x * 10) / 10).toString();
}

function text(
  x: number,
  y: number,
  content: string,
  attrs: Record<string, string | number> = {},
): string {
  const extra = Object.entries(attrs).map(([k, v]) =>
    ` ${k}="${escapeXml(String(v))}"`
  ).join("");
  return `<text x="${n(x)}" y="${n(y)}"${extra}>${escapeXml(content)}</text>`;
}

/**
 * A linear axis from 0 to 15% above the largest value (at least 1), rounded
 * up to a step of 0.25 (up to 1.25), 0.5 (up to 2.5) or 1: room for the
 * labels above the bars.
 */
function linearScale(values: number[], height: number): {
  y: (v: number) => number;
  ticks: number[];
} {
  const top = Math.max(1, ...values.filter((v) => Number.isFinite(v)));
  const step = top * 1.15 <= 1.25 ? 0.25 : top * 1.15 <= 2.5 ? 0.5 : 1;
  const hi = Math.ceil(top * 1.15 / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let k = 0; k * step <= hi + 1e-9; k++) ticks.push(k * step);
  return {
    y: (v: number) => height - Math.max(0, Math.min(v, hi)) / hi * height,
    ticks,
  };
}

/** A log-scale axis from a decade below the smallest value to one above the largest. */
function logScale(values: number[], height: number): {
  y: (v: number) => number;
  ticks: number[];
} {
  const positive = values.filter((v) => v > 0);
  const lo = Math.floor(
    Math.log10(positive.length ? Math.min(...positive) : 1),
  );
  const hi = Math.max(
    lo + 1,
    Math.ceil(Math.log10(positive.length ? Math.max(...positive) : 10)),
  );
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e++) ticks.push(10 ** e);
  return {
    y: (v: number) =>
      height - (Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo) * height,
    ticks,
  };
}

interface Bar {
  label: string;
  value: number | null;
  color: string;
  /** Shown instead of a bar (skipped, refused), or under an invalid bar. */
  note?: string;
  invalid?: boolean;
  /** A second level drawn as a tick across the bar (the flat-out rate). */
  mark?: number | null;
}

interface Group {
  label: string;
  bars: Bar[];
}

/** How a panel draws its axis and labels. */
interface PanelOptions {
  /** A linear axis from 0 instead of a log one. */
  linear?: boolean;
  /** Formats tick and value labels (default {@linkcode shortNumber}). */
  format?: (value: number) => string;
}

/** One panel of grouped bars on a log (or linear) axis, at (x, y). */
function barPanel(
  x: number,
  y: number,
  width: number,
  height: number,
  title: string,
  groups: Group[],
  options: PanelOptions = {},
): string {
  const format = options.format ?? shortNumber;
  const parts: string[] = [`<g transform="translate(${n(x)},${n(y)})">`];
  parts.push(text(0, -8, title, { class: "panel" }));
  const plotLeft = 46;
  const plotWidth = width - plotLeft;
  const values = groups.flatMap((g) =>
    g.bars.flatMap((b) => [b.value ?? 0, b.mark ?? 0])
  );
  const scale = options.linear
    ? linearScale(values, height)
    : logScale(values, height);
  for (const tick of scale.ticks) {
    const ty = scale.y(tick);
    parts.push(
      `<line x1="${plotLeft}" y1="${n(ty)}" x2="${width}" y2="${
        n(ty)
      }" class="grid"/>`,
    );
    parts.push(
      text(plotLeft - 4, ty + 3, format(tick), {
        class: "tick",
        "text-anchor": "end",
      }),
    );
  }
  parts.push(
    `<line x1="${plotLeft}" y1="${height}" x2="${width}" y2="${height}" class="axis"/>`,
  );
  const groupWidth = plotWidth / Math.max(1, groups.length);
  groups.forEach((group, gi) => {
    const gx = plotLeft + gi * groupWidth;
    const barWidth = (groupWidth - 12) / Math.max(1, group.bars.length);
    group.bars.forEach((bar, bi) => {
      const bx = gx + 6 + bi * barWidth;
      const cx = bx + barWidth / 2;
      if (bar.value === null || !(bar.value > 0)) {
        parts.push(
          text(cx, height - 4, bar.note ?? "n/a", {
            class: "missing",
            transform: `rotate(-90 ${n(cx)} ${n(height - 4)})`,
          }),
        );
        return;
      }
      const top = scale.y(bar.value);
      parts.push(
        `<rect x="${n(bx + 1)}" y="${n(top)}" width="${
          n(Math.max(1, barWidth - 2))
        }" height="${n(height - top)}" fill="${
          bar.invalid ? "url(#hatch)" : bar.color
        }" stroke="${bar.color}"><title>${
          escapeXml(
            `${bar.label}: ${bar.value}${bar.note ? ` (${bar.note})` : ""}`,
          )
        }</title></rect>`,
      );
      if (bar.mark && bar.mark > 0) {
        const my = scale.y(bar.mark);
        parts.push(
          `<line x1="${n(bx)}" y1="${n(my)}" x2="${n(bx + barWidth)}" y2="${
            n(my)
          }" class="mark"><title>${
            escapeXml(`${bar.label}: ${bar.mark} with the sender flat out`)
          }</title></line>`,
        );
      }
      // The value sits on its bar, or above the tick when the tick would
      // cross it.
      const markY = bar.mark ? scale.y(bar.mark) : Infinity;
      const ly = (markY < top && markY > top - 36 ? markY : top) - 3;
      parts.push(
        text(
          cx + 3,
          ly,
          `${format(bar.value)}${bar.invalid ? " ✗" : ""}`,
          {
            class: "value",
            transform: `rotate(-90 ${n(cx + 3)} ${n(ly)})`,
          },
        ),
      );
    });
    parts.push(
      text(gx + groupWidth / 2, height + 14, group.label, {
        class: "group",
        "text-anchor": "middle",
      }),
    );
  });
  parts.push("</g>");
  return parts.join("\n");
}

function throughputGroups(
  rows: ThroughputRow[],
  field: "bulletinsPerSecond" | "megabytesPerSecond",
): Group[] {
  const sizes = [...new Set(rows.map((r) => r.size))].sort((a, b) => a - b);
  const variants = VARIANTS.filter((v) => rows.some((r) => r.variant === v));
  return sizes.map((size) => ({
    label: sizeLabel(size),
    bars: variants.map((variant) => {
      const row = rows.find((r) => r.variant === variant && r.size === size);
      const note = row?.note?.split(":")[0];
      const flat = row?.flatOutPerSecond ?? null;
      return {
        label: `${variant} ${sizeLabel(size)}`,
        value: row?.[field] ?? null,
        mark: flat === null
          ? null
          : field === "bulletinsPerSecond"
          ? flat
          : Math.round(flat * size / 1e4) / 100,
        color: COLORS[variant],
        note: row ? note : "not run",
        invalid: row !== undefined && !row.valid,
      };
    }),
  }));
}

function latencyGroups(rows: LatencyRow[]): Group[] {
  return rows.map((row) => ({
    label: `${row.variant} ${shortNumber(row.rate)}/s`,
    bars: (["p50", "p99", "p999"] as const).map((p, k) => ({
      label: `${row.variant} ${row.rate}/s ${p}`,
      value: row.latency?.[p] ?? null,
      color: LATENCY_COLORS[k]!,
      note: row.note?.split(":")[0],
      invalid: !row.valid,
    })),
  }));
}

function securityGroups(rows: SecurityRow[]): Group[] {
  const sizes = [...new Set(rows.map((r) => r.size))].sort((a, b) => a - b);
  return sizes.map((size) => ({
    label: sizeLabel(size),
    bars: SECURITY_VARIANTS.map((variant) => {
      const row = rows.find((r) => r.variant === variant && r.size === size);
      return {
        label: `${variant} ${sizeLabel(size)} × no key${
          row?.bulletinsPerSecond ? ` (${row.bulletinsPerSecond}/s)` : ""
        }`,
        value: row?.ratio ?? null,
        color: SECURITY_COLORS[variant],
        note: !row
          ? "not run"
          : !row.valid
          ? row.note?.split(":")[0]
          : row.ratio === null
          ? "no baseline"
          : undefined,
        invalid: row !== undefined && !row.valid,
      };
    }),
  }));
}

/** The security row of the chart, from `top` down (about 190 px). */
function securitySection(rows: SecurityRow[], top: number): string {
  const parts: string[] = [];
  parts.push(
    barPanel(
      20,
      top,
      510,
      140,
      "Cost of keys: bulletins/s × the keyless baseline (reliable, 1 receiver)",
      securityGroups(rows),
      { linear: true, format: (v) => v.toFixed(2) },
    ),
  );
  SECURITY_VARIANTS.forEach((variant, k) => {
    const lx = 66 + k * 118;
    parts.push(
      `<rect x="${lx}" y="${top + 162}" width="10" height="10" fill="${
        SECURITY_COLORS[variant]
      }"/>`,
    );
    parts.push(text(lx + 14, top + 171, variant, { class: "legend" }));
  });
  const tx = 570;
  let ty = top;
  parts.push(
    text(tx, ty - 8, "Cost of keys: bulletins/s (× no key, same run)", {
      class: "panel",
    }),
  );
  const sizes = [...new Set(rows.map((r) => r.size))].sort((a, b) => a - b);
  for (const variant of SECURITY_VARIANTS) {
    ty += 18;
    const cells = sizes.map((size) => {
      const row = rows.find((r) => r.variant === variant && r.size === size);
      const figure = row?.bulletinsPerSecond
        ? `${shortNumber(row.bulletinsPerSecond)}/s${
          row.ratio === null ? "" : ` (×${row.ratio.toFixed(2)})`
        }`
        : row?.note?.split(":")[0] ?? "not run";
      return `${sizeLabel(size)} ${figure}`;
    });
    parts.push(
      text(tx, ty, `${variant}: ${cells.join(", ")}`, { class: "small" }),
    );
  }
  ty += 18;
  for (
    const line of wrap(
      "key = HMAC on every frame; encrypt = AES-256-GCM on DATA records; sign = one Ed25519 signature per 32 datagrams, checked by a receiver that trusts the key. Medians of the runs; variants interleaved in each repetition.",
      88,
      3,
    )
  ) {
    parts.push(text(tx, ty, line, { class: "small" }));
    ty += 14;
  }
  return parts.join("\n");
}

/**
 * Renders the chart.
 *
 * @param input Results and captions.
 * @returns A standalone SVG document.
 */
export function renderChart(input: ChartInput): string {
  const width = 1100;
  const security = input.security ?? [];
  const height = security.length > 0 ? 1000 : 800;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
  );
  parts.push(
    `<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#eeeeee"/><line x1="0" y1="0" x2="0" y2="6" stroke="#999999" stroke-width="2"/></pattern></defs>`,
  );
  parts.push(
    `<style>.title{font-size:18px;font-weight:bold}.subtitle{font-size:11px;fill:#555}.panel{font-size:13px;font-weight:bold}.tick{font-size:10px;fill:#555}.group{font-size:11px}.value{font-size:9px;fill:#222}.missing{font-size:9px;fill:#999}.grid{stroke:#e4e4e4}.mark{stroke:#111;stroke-width:2.5}.axis{stroke:#333}.legend{font-size:11px}.target{font-size:12px}.pass{fill:#2e7d32;font-weight:bold}.fail{fill:#c62828;font-weight:bold}.small{font-size:11px;fill:#333}</style>`,
  );
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(text(20, 28, input.title, { class: "title" }));
  parts.push(text(20, 46, input.subtitle, { class: "subtitle" }));
  // Legend.
  const variants = VARIANTS.filter((v) =>
    input.throughput.some((r) => r.variant === v)
  );
  variants.forEach((variant, k) => {
    const lx = 20 + k * 120;
    parts.push(
      `<rect x="${lx}" y="60" width="12" height="12" fill="${
        COLORS[variant]
      }"/>`,
    );
    parts.push(text(lx + 16, 70, variant, { class: "legend" }));
  });
  parts.push(
    `<rect x="${
      20 + variants.length * 120
    }" y="60" width="12" height="12" fill="url(#hatch)" stroke="#999999"/>`,
  );
  parts.push(
    text(36 + variants.length * 120, 70, "invalid (loss > 1%), not in ratios", {
      class: "legend",
    }),
  );
  parts.push(
    `<line x1="20" y1="88" x2="32" y2="88" class="mark"/>`,
  );
  parts.push(
    text(
      36,
      92,
      "bare / plain / iperf2 / sockperf: bar = receiver's rate in the accepted run (loss ≤ 1%, offered rate lowered until then); tick = receiver's rate with the sender flat out (lossy)",
      { class: "legend" },
    ),
  );
  parts.push(
    barPanel(
      20,
      122,
      510,
      260,
      "Throughput: bulletins/s received (log scale)",
      throughputGroups(input.throughput, "bulletinsPerSecond"),
    ),
  );
  parts.push(
    barPanel(
      570,
      122,
      510,
      260,
      "Throughput: payload MB/s (log scale)",
      throughputGroups(input.throughput, "megabytesPerSecond"),
    ),
  );
  parts.push(
    barPanel(
      20,
      440,
      510,
      240,
      "One-way latency, µs: p50 / p99 / p99.9 (log scale)",
      latencyGroups(input.latency),
    ),
  );
  ["p50", "p99", "p99.9"].forEach((label, k) => {
    const lx = 330 + k * 65;
    parts.push(
      `<rect x="${lx}" y="412" width="10" height="10" fill="${
        LATENCY_COLORS[k]
      }"/>`,
    );
    parts.push(text(lx + 14, 421, label, { class: "legend" }));
  });
  // Targets and the other figures.
  const tx = 570;
  let ty = 440;
  parts.push(
    text(tx, ty - 8, "Targets (ratios measured in this run)", {
      class: "panel",
    }),
  );
  for (const target of input.targets) {
    ty += 18;
    const measured = target.measured === null ? "n/a" : String(target.measured);
    const flat = target.measuredVsFlatOut === undefined
      ? ""
      : `; vs flat-out bare ${target.measuredVsFlatOut ?? "n/a"}`;
    parts.push(
      `<text x="${tx}" y="${ty}" class="target"><tspan class="${
        target.pass ? "pass" : "fail"
      }">${target.pass ? "PASS" : "FAIL"}</tspan> ${
        escapeXml(
          `${target.id}: ${measured} (needs ${target.comparison} ${target.threshold}${flat})`,
        )
      }</text>`,
    );
    for (const line of wrap(target.detail, 88, 3)) {
      ty += 14;
      parts.push(text(tx + 40, ty, line, { class: "small" }));
    }
  }
  ty += 26;
  parts.push(
    text(tx, ty, "Time until every receiver acknowledged (1000 × 1 KiB)", {
      class: "panel",
    }),
  );
  for (const row of input.ack) {
    ty += 16;
    parts.push(
      text(
        tx,
        ty,
        `${row.receivers} receiver${row.receivers === 1 ? "" : "s"}: ${
          row.elapsedMs === null ? "n/a" : `${row.elapsedMs} ms`
        } (stream ${row.streamMs === null ? "n/a" : `${row.streamMs} ms`})${
          row.valid ? "" : ` — ${row.note ?? "invalid"}`
        }`,
        { class: "small" },
      ),
    );
  }
  const memory = input.memory;
  if (memory) {
    ty += 26;
    parts.push(
      text(
        tx,
        ty,
        `Peak RSS streaming ${
          (memory.bytes / 2 ** 30).toFixed(2)
        } GiB (reliable, ${sizeLabel(memory.size)})`,
        {
          class: "panel",
        },
      ),
    );
    for (const who of ["sender", "receiver"] as const) {
      ty += 16;
      const m = memory[who];
      parts.push(
        text(
          tx,
          ty,
          `${who}: peak ${m.peakMiB ?? "n/a"} MiB, idle ${
            m.idleMiB ?? "n/a"
          } MiB, halves ${m.firstHalfMiB ?? "n/a"} → ${
            m.secondHalfMiB ?? "n/a"
          } MiB`,
          { class: "small" },
        ),
      );
    }
  }
  if (security.length > 0) parts.push(securitySection(security, 800));
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
