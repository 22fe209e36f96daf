// `npm start` runs this first (prestart): the web app in web/dist is built when
// it is missing or was built from other sources, so a fresh clone serves the app
// after `npm ci && npm start` with no third command. A build takes a second or
// two (Vite, no type check: `npm run build:web` and CI type-check it).
//
// "Other sources": a SHA-256 over the files the bundle is made of (web/, the SDK
// in client/src, gen/, the lockfile), kept in web/dist/.build-hash. An unchanged
// tree costs one hash of a few hundred KB and no build.
//
// Skipped when WEB_DIR points elsewhere or is `off`. Without Vite (a
// production install, `npm ci --omit=dev`) a missing or stale build is reported
// loudly and the server starts anyway with what is there (the Docker image
// builds the app in its own stage and does not run this).
//
// `node scripts/ensure-web.ts [--out DIR]` (--out: for tests).

import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";

const ROOT = path.join(import.meta.dirname, "..");
const DEFAULT_OUT = path.join(ROOT, "web", "dist");
const INPUTS = ["web/index.html", "web/vite.config.ts", "web/src", "client/src", "gen", "package-lock.json"];
const STAMP = ".build-hash";

function files(rel: string): string[] {
  const abs = path.join(ROOT, rel);
  if (!existsSync(abs)) return [];
  if (!statSync(abs).isDirectory()) return [rel];
  return readdirSync(abs, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((e) => files(path.join(rel, e.name)));
}

function sourceHash(): string {
  const h = createHash("sha256");
  for (const rel of INPUTS.flatMap(files)) {
    h.update(rel.split(path.sep).join("/") + "\0");
    h.update(readFileSync(path.join(ROOT, rel)));
    h.update("\0");
  }
  return h.digest("hex");
}

async function main(): Promise<number> {
  const outArg = process.argv.indexOf("--out");
  const out = outArg > 0 ? path.resolve(process.argv[outArg + 1]) : DEFAULT_OUT;
  const webDir = process.env.WEB_DIR;
  if (outArg < 0 && webDir && (webDir === "off" || path.resolve(webDir) !== DEFAULT_OUT)) return 0;

  const hash = sourceHash();
  const stampFile = path.join(out, STAMP);
  const built = existsSync(path.join(out, "index.html"));
  if (built && existsSync(stampFile) && readFileSync(stampFile, "utf8").trim() === hash) return 0;

  let vite: typeof import("vite");
  try {
    vite = await import("vite");
  } catch {
    console.error(
      `web app: ${built ? "web/dist is out of date" : "web/dist is not built"} and Vite is not installed ` +
        "(a production install?): run `npm ci && npm run build:web`. Starting with what is there.",
    );
    return 0;
  }
  console.error(`web app: ${built ? "sources changed, rebuilding" : "building"} ${path.relative(ROOT, out) || out} (Vite)`);
  const started = performance.now();
  await vite.build({ configFile: path.join(ROOT, "web", "vite.config.ts"), logLevel: "warn", build: { outDir: out } });
  writeFileSync(stampFile, hash + "\n");
  console.error(`web app: built in ${Math.round(performance.now() - started)} ms`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    // A broken build must not pass for a served app: stop `npm start` with the reason.
    console.error("web app: build failed:", err);
    process.exit(1);
  },
);
