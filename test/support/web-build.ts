// The web app's production build for the browser tests: once per run (global
// setup reserves a folder, the first test file that needs the build makes it,
// the others wait for it and reuse it), or privately outside Vitest.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const ROOT = join(import.meta.dirname, "../..");

/** Where global setup reserves the run's one web build (see sharedWebBuild). */
export const WEB_BUILD_ENV = "TEST_WEB_BUILD";

function viteBuild(outDir: string): void {
  const built = spawnSync(
    process.execPath,
    [join(ROOT, "node_modules/vite/bin/vite.js"), "build", "web", "--outDir", outDir, "--emptyOutDir", "--logLevel", "warn"],
    {
      cwd: ROOT,
      encoding: "utf8",
    },
  );
  if (built.status !== 0) throw new Error(`vite build failed:\n${built.stdout}\n${built.stderr}`);
}

/** The real production build (a few seconds) in a temporary folder; `remove()` when done. */
export function buildWeb(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "chat-web-"));
  viteBuild(dir);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The run's one production build, in `root` (reserved by global setup, removed
 * by its teardown): the first caller, in whichever worker, takes the lock
 * (mkdir is atomic) and builds; the others wait for its "done" (or "failed").
 */
export async function sharedWebBuild(root: string, timeoutMs = 300_000): Promise<string> {
  const dist = join(root, "dist");
  const done = join(root, "done");
  const failed = join(root, "failed");
  try {
    mkdirSync(join(root, "lock"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const end = Date.now() + timeoutMs;
    while (!existsSync(done)) {
      if (existsSync(failed)) throw new Error(`the run's web build failed (in another test file):\n${readFileSync(failed, "utf8")}`);
      if (Date.now() > end) throw new Error(`the run's web build did not finish in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return dist;
  }
  try {
    viteBuild(dist);
  } catch (err) {
    writeFileSync(failed, (err as Error).message);
    throw err;
  }
  writeFileSync(done, "");
  return dist;
}
