// After Vitest's own summary, prints one line naming everything that was
// skipped and what enables it, then one plain closing line,
// "N passed, N failed, N skipped", so any log reader can tell what ran.
//
// A suite skipped for a missing service carries "(needs VAR ...)" in its
// title (forEachBackend in ./backends.ts); other skips are named by file.

import { relative } from "node:path";
import type { Reporter, TestCase, TestModule, TestSuite } from "vitest/node";

const NEEDS = /\s*\(needs ([^)]+)\)$/;

function markedSuite(test: TestCase): { title: string; needs: string } | null {
  for (let p: TestSuite | TestModule = test.parent; p.type === "suite"; p = p.parent) {
    const m = NEEDS.exec(p.name);
    if (m) return { title: p.name.replace(NEEDS, ""), needs: m[1] };
  }
  return null;
}

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, errors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    // needs -> suite title -> skipped tests; file -> skipped tests (other reasons)
    const byNeeds = new Map<string, Map<string, number>>();
    const other = new Map<string, number>();
    for (const mod of modules) {
      let failedHere = 0;
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failedHere++;
        else {
          skipped++;
          const marked = markedSuite(test);
          if (marked) {
            const suites = byNeeds.get(marked.needs) ?? new Map<string, number>();
            suites.set(marked.title, (suites.get(marked.title) ?? 0) + 1);
            byNeeds.set(marked.needs, suites);
          } else {
            const file = relative(process.cwd(), mod.moduleId);
            other.set(file, (other.get(file) ?? 0) + 1);
          }
        }
      }
      // A failing hook (beforeAll) or import fails the file while its tests only count as skipped.
      if (mod.state() === "failed" && failedHere === 0) failedHere = 1;
      failed += failedHere;
    }
    failed += errors.length;
    if (skipped > 0) {
      const parts = [...byNeeds].map(([needs, suites]) => `set ${needs} to run ${[...suites].map(([t, n]) => `"${t}" (${n})`).join(", ")}`);
      if (other.size) parts.push(`skipped in the file itself (see its warning): ${[...other].map(([f, n]) => `${f} (${n})`).join(", ")}`);
      process.stdout.write(`\nSKIPPED ${skipped}: ${parts.join("; ")}\n`);
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
