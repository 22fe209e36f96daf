// `npm start`'s prestart (scripts/ensure-web.ts): a fresh clone's first start
// builds the web app, an unchanged tree is not rebuilt, a build made from other
// sources is. Builds into a temporary folder (--out), never into web/dist.

import { afterAll, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "../..");
const out = mkdtempSync(join(tmpdir(), "ensure-web-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** Runs the script; returns what it printed (it reports on stderr only). */
function ensureStderr(): string {
  try {
    return execFileSync("sh", ["-c", `"${process.execPath}" scripts/ensure-web.ts --out "${out}" 2>&1`], { cwd: ROOT, encoding: "utf8" });
  } catch (err) {
    throw new Error(`ensure-web failed: ${(err as { stdout?: string }).stdout}`);
  }
}

it("builds when missing, skips when current, rebuilds when the sources changed", { timeout: 180_000 }, () => {
  expect(existsSync(join(out, "index.html"))).toBe(false);
  expect(ensureStderr()).toMatch(/web app: building .*\n.*web app: built in \d+ ms/s);
  const html = readFileSync(join(out, "index.html"), "utf8");
  expect(html).toMatch(/<script type="module" crossorigin src="\/assets\/index-[\w-]+\.js"><\/script>/);
  const stamp = readFileSync(join(out, ".build-hash"), "utf8").trim();
  expect(stamp).toMatch(/^[0-9a-f]{64}$/);
  const mtime = statSync(join(out, "index.html")).mtimeMs;

  // Unchanged sources: nothing printed, nothing rebuilt.
  expect(ensureStderr()).toBe("");
  expect(statSync(join(out, "index.html")).mtimeMs).toBe(mtime);

  // A build from other sources (as after a pull): rebuilt, same hash as before.
  writeFileSync(join(out, ".build-hash"), `${"0".repeat(64)}\n`);
  expect(ensureStderr()).toMatch(/web app: sources changed, rebuilding/);
  expect(readFileSync(join(out, ".build-hash"), "utf8").trim()).toBe(stamp);
});
