// The process as an operator sees it: start-up that fails fast on bad config,
// the embedded default keeping its data across restarts, and a graceful
// shutdown that lets in-flight calls finish.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import http2 from "node:http2";
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { provisionBackends, spawnServer, type ProvisionedBackends } from "../support/server.ts";

const ROOT = join(import.meta.dirname, "../..");

function runMain(env: Record<string, string>): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["src/main.ts"], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    let stdout = "";
    child.stderr.on("data", (c) => (stderr += c));
    child.stdout.on("data", (c) => (stdout += c));
    child.on("exit", (code) => resolve({ code, stderr, stdout }));
  });
}

describe("configuration", () => {
  it.each([
    [{ PORT: "eighty" }, /^config error: PORT="eighty" is not an integer$/],
    [{ PORT: "70000" }, /^config error: PORT=70000 is out of range 0\.\.65535$/],
    [{ DATABASE_URL: "mysql://x" }, /^config error: DATABASE_URL must use postgres: or postgresql:/],
    [{ LOG_LEVEL: "loud" }, /^config error: LOG_LEVEL=loud is not one of/],
    [{ ACCESS_TOKEN_SECRET: "short" }, /^config error: ACCESS_TOKEN_SECRET must be at least 32 bytes$/],
    [{ NODE_ENV: "production" }, /^config error: ACCESS_TOKEN_SECRET is required when NODE_ENV=production$/],
    [{ TLS_CERT_FILE: "/x.pem" }, /^config error: TLS_CERT_FILE and TLS_KEY_FILE must be set together$/],
  ])("%o fails start-up with one clear line", async (env, message) => {
    const res = await runMain(env as Record<string, string>);
    expect(res.code).toBe(2);
    const lines = res.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
  });
});

describe("the embedded default across restarts", () => {
  let backends: ProvisionedBackends;
  beforeAll(async () => {
    backends = await provisionBackends({ sql: "pglite" });
  });
  afterAll(async () => backends?.cleanup());

  it("applies migrations on the first start only and keeps its data dir", async () => {
    // A fresh machine: no database yet (other suites start from the run's migrated image).
    rmSync(join(backends.env.DATA_DIR, "pglite"), { recursive: true, force: true });
    const first = await spawnServer(backends.env);
    expect(first.output()).toMatch(/"msg":"migrations applied"/);
    expect(await first.stop()).toBe(0);
    const second = await spawnServer(backends.env);
    expect(second.output()).toMatch(/"applied":\[\],"msg":"schema up to date"/);
    expect(await second.stop()).toBe(0);
  }, 180_000); // two process starts, the first migrating an empty PGlite: over a minute on a loaded 2-core box
});

describe("graceful shutdown", () => {
  let backends: ProvisionedBackends;
  beforeAll(async () => {
    backends = await provisionBackends({ sql: "pglite" });
  });
  afterAll(async () => backends?.cleanup());

  it("finishes an in-flight unary call after SIGTERM, then exits 0", async () => {
    const server = await spawnServer(backends.env);
    const session = http2.connect(server.baseUrl);
    const check = () =>
      new Promise<string>((resolve, reject) => {
        const r = session.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Check", "content-type": "application/json" });
        let body = "";
        r.on("data", (c) => (body += c));
        r.on("end", () => resolve(body));
        r.on("error", reject);
        r.end("{}");
      });
    expect(JSON.parse(await check())).toEqual({ status: "SERVING" });
    // A Connect unary call whose request body is still arriving when the signal comes.
    const req = session.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Check", "content-type": "application/json" });
    req.write('{"service":');
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      let status = 0;
      let body = "";
      req.on("response", (h) => (status = Number(h[":status"])));
      req.on("data", (c) => (body += c));
      req.on("end", () => resolve({ status, body }));
      req.on("error", reject);
    });
    // Frames on one connection are handled in order: once a later call has
    // answered, the server has seen the pending call's headers.
    expect(JSON.parse(await check())).toEqual({ status: "SERVING" });
    server.child.kill("SIGTERM");
    // Wait until the server has begun shutting down, then finish the request.
    for (let i = 0; i < 200 && !/"msg":"shutting down"/.test(server.output()); i++) await new Promise((r) => setTimeout(r, 10));
    expect(server.output()).toMatch(/"msg":"shutting down"/);
    req.end('""}');
    const res = await response;
    expect(res.status).toBe(200);
    // The call completed; health already reports the node as leaving.
    expect(JSON.parse(res.body)).toEqual({ status: "NOT_SERVING" });
    session.close();
    expect(await server.exited).toBe(0);
    expect(server.output()).toMatch(/"msg":"stopped"/);
  });
});
