import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const DOC = Deno.readTextFileSync(new URL("docs/security.md", ROOT));

/** The table rows of docs/security.md: a claim and the tests it cites. */
function claims(): { claim: string; tests: string }[] {
  const rows: { claim: string; tests: string }[] = [];
  for (const line of DOC.split("\n")) {
    const cells = /^\| (.+?) +\| (.+?) +\|$/.exec(line);
    if (!cells || cells[1] === "Claim" || /^-+$/.test(cells[1]!)) continue;
    rows.push({ claim: cells[1]!, tests: cells[2]! });
  }
  return rows;
}

/** Test names cited in a cell, per file: `tests/x.ts`: "a", "b"; … */
function cited(cell: string): Map<string, string[]> {
  const byFile = new Map<string, string[]>();
  for (const part of cell.split(/;\s*(?=`tests\/)/)) {
    const file = /^`(tests\/[a-z_/]+\.ts)`/.exec(part.trim())?.[1];
    assert.ok(file, `no test file in: ${part}`);
    const names = [...part.matchAll(/"((?:[^"\\]|\\.)+)"/g)].map((m) => m[1]!);
    assert.ok(names.length > 0, `no test name in: ${part}`);
    byFile.set(file, [...(byFile.get(file) ?? []), ...names]);
  }
  return byFile;
}

Deno.test("docs/security.md: every claim cites tests that exist", () => {
  const rows = claims();
  assert.ok(rows.length >= 24, `only ${rows.length} claims`);
  let names = 0;
  for (const { claim, tests } of rows) {
    for (const [file, list] of cited(tests)) {
      const source = Deno.readTextFileSync(new URL(file, ROOT));
      for (const name of list) {
        names += 1;
        assert.ok(
          source.includes(`Deno.test("${name}"`),
          `"${claim}" cites a test ${file} does not have: "${name}"`,
        );
      }
    }
  }
  assert.ok(names >= rows.length, `${names} test names`);
});

Deno.test("docs/security.md: the threat model names what is not protected", () => {
  const section = DOC.slice(DOC.indexOf("## What is not protected"));
  for (
    const topic of [
      "Traffic analysis",
      "Flooding the segment",
      "A compromised group key",
      "A compromised signing key",
    ]
  ) {
    assert.ok(section.includes(`**${topic}.**`), topic);
  }
});
