// The browser tests' shared harness: Debian's Chromium through playwright-core
// (one launch recipe), the app built with Vite once per run (the first browser
// file to need it builds it into the folder global setup reserved, the others
// wait for it), where screenshots go, and an axe-core accessibility check run
// inside the page.

import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { env } from "./backends.ts";
import { buildWeb, sharedWebBuild, WEB_BUILD_ENV } from "./web-build.ts";

export { buildWeb };
import { provisionBackends, startTestServer, type TestServer } from "./server.ts";

export const ROOT = join(import.meta.dirname, "../..");
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-quic",
  "--no-first-run",
  "--disable-component-update",
  "--disable-sync",
];
/** Screenshots for review (gitignored). */
export const ARTIFACTS = join(ROOT, "test-results", "browser");
export const TRANSPORTS = ["connect", "grpc-web"] as const;
export type TransportKind = (typeof TRANSPORTS)[number];

export const haveChromium = existsSync(CHROMIUM);

/** Says loudly that the browser tests are skipped (or, under REQUIRE_ALL_BACKENDS=1, fails). */
export function reportMissingChromium(describe: (name: string, f: () => void) => void, it: (name: string, f: () => void) => void): void {
  if (haveChromium) return;
  const line = `SKIPPED browser tests: no Chromium at ${CHROMIUM}. Install it (apt-get install -y --no-install-recommends chromium) or set CHROMIUM_PATH.`;
  if (process.env.REQUIRE_ALL_BACKENDS === "1") {
    describe("browser tests", () => {
      it("has a browser", () => {
        throw new Error(`REQUIRE_ALL_BACKENDS=1 but ${line}`);
      });
    });
  } else {
    console.warn(`\n${"!".repeat(100)}\n!! ${line}\n${"!".repeat(100)}\n`);
  }
}

export function launchChromium(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/** The production build the browser tests serve: the run's shared one under Vitest's global setup, else a private one. */
async function webBuild(): Promise<{ dir: string; remove(): void }> {
  const root = process.env[WEB_BUILD_ENV];
  if (root && existsSync(root)) return { dir: await sharedWebBuild(root), remove: () => {} };
  return buildWeb();
}

/** What a browser test runs against: the real production build served by a real server, and Chromium. */
export interface BrowserStack {
  server: TestServer;
  browser: Browser;
  close(): Promise<void>;
}

/**
 * Gets the app's build (see webBuild), starts a server on whatever real stores this machine offers
 * (CI: all of them; `mongo: false` keeps messages in SQL) or else the embedded
 * default, with `overrides` on top, and launches Chromium. Whatever started is
 * stopped by close(), also when a later step failed.
 */
export async function startBrowserStack(overrides: Record<string, string>, opts: { mongo?: boolean } = {}): Promise<BrowserStack> {
  const cleanups: (() => unknown)[] = [];
  const close = async () => {
    for (const c of cleanups.reverse()) await c();
  };
  try {
    const web = await webBuild();
    cleanups.push(() => web.remove());
    const backends = await provisionBackends({
      sql: env.postgres ? "postgres" : "pglite",
      mongo: (opts.mongo ?? true) && Boolean(env.mongo),
      redis: Boolean(env.redis),
    });
    cleanups.push(() => backends.cleanup());
    const server = await startTestServer(backends.env, { WEB_DIR: web.dir, ...overrides });
    cleanups.push(() => server.close());
    const browser = await launchChromium();
    cleanups.push(() => browser.close());
    return { server, browser, close };
  } catch (err) {
    await close();
    throw err;
  }
}

let axeSource: string | null = null;

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/**
 * Runs axe-core (injected from its npm package with addScriptTag) on the page
 * as it is now, with the WCAG 2 A and AA rules (2.0, 2.1, 2.2), and returns
 * the violations (an empty list is a pass).
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  axeSource ??= readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
  if (!(await page.evaluate(() => "axe" in window))) {
    // The app's CSP allows same-origin scripts only (no inline): serve axe from a same-origin
    // path this page intercepts, so the check runs under the real CSP.
    const url = new URL("/__test__/axe.min.js", page.url()).href;
    const source = axeSource;
    await page.route(url, (route) => route.fulfill({ status: 200, contentType: "text/javascript", body: source }));
    await page.addScriptTag({ url });
  }
  return page.evaluate(async () => {
    type Result = { id: string; impact?: string | null; help: string; nodes: { target: string[]; failureSummary?: string }[] };
    const axe = (window as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: Result[] }> } }).axe;
    const res = await axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] },
      resultTypes: ["violations"],
    });
    return res.violations.map((v) => ({
      id: v.id,
      impact: v.impact ?? null,
      help: v.help,
      nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary ?? ""}`),
    }));
  });
}
