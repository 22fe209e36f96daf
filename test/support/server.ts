// Starting the real server for tests: in-process (the same composition root
// main.ts uses) or as a separate process (for multi-node, kill and shutdown tests).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/shared/logger.ts";
import { startApp, type App, type AppHooks } from "../../src/app.ts";
import { copyPgliteImage } from "./pglite-image.ts";
import { env, isolatedMongo, isolatedPostgres, isolatedRedisPrefix, type ServerBackendName, type SqlBackendName } from "./backends.ts";

export const TEST_SECRET = "test-access-token-secret-0123456789abcdef";
const ROOT = join(import.meta.dirname, "../..");

export interface BackendChoice {
  sql: SqlBackendName;
  mongo?: boolean;
  redis?: boolean;
}

export interface ProvisionedBackends {
  /** Environment for the server: every node started with it shares the same stores. */
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

/** The stores behind a ServerBackendName (see forEachBackend). */
export function backendChoice(name: ServerBackendName): BackendChoice {
  return name === "embedded" ? { sql: "pglite" } : { sql: "postgres", redis: true };
}

/** Isolated stores (fresh schema, database, key prefix, data dir) for one test file. */
export async function provisionBackends(choice: BackendChoice): Promise<ProvisionedBackends> {
  const cleanups: (() => Promise<void> | void)[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), "chat-test-"));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const vars: Record<string, string> = {
    HOST: "127.0.0.1",
    PORT: "0",
    ADMIN_PORT: "0",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    ACCESS_TOKEN_SECRET: TEST_SECRET,
    DATA_DIR: dataDir,
    SHUTDOWN_GRACE_MS: "5000",
  };
  // The embedded store starts from the run's migrated image (the app finds its schema up to date).
  if (choice.sql === "pglite") copyPgliteImage(join(dataDir, "pglite"));
  if (choice.sql === "postgres") {
    const db = await isolatedPostgres();
    vars.DATABASE_URL = db.url;
    cleanups.push(db.drop);
  }
  if (choice.mongo) {
    const db = await isolatedMongo();
    vars.MONGO_URL = db.url;
    cleanups.push(db.drop);
  }
  if (choice.redis) {
    if (!env.redis) throw new Error("TEST_REDIS_URL is not set");
    vars.REDIS_URL = env.redis;
    vars.REDIS_PREFIX = isolatedRedisPrefix();
  }
  return {
    env: vars,
    async cleanup() {
      for (const c of cleanups.reverse()) await c();
    },
  };
}

export interface TestServer {
  app: App;
  port: number;
  baseUrl: string;
  address: string;
  close(): Promise<void>;
}

/** Starts the app in this process with the given environment. */
export async function startTestServer(
  vars: Record<string, string>,
  overrides: Record<string, string> = {},
  hooks: AppHooks = {},
): Promise<TestServer> {
  const config = loadConfig({ ...vars, ...overrides });
  const app = await startApp(config, createLogger(config.logLevel, config.nodeId), hooks);
  return {
    app,
    port: app.port,
    baseUrl: `http://127.0.0.1:${app.port}`,
    address: `127.0.0.1:${app.port}`,
    close: () => app.close(),
  };
}

export interface ServerProcess {
  child: ChildProcess;
  port: number;
  address: string;
  baseUrl: string;
  /** Everything the process wrote to stdout/stderr so far. */
  output(): string;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, as a crash. */
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

/** Runs `node src/main.ts` as its own process and waits until it serves. */
export async function spawnServer(vars: Record<string, string>, overrides: Record<string, string> = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, ["src/main.ts"], {
    cwd: ROOT,
    env: { ...process.env, ...vars, LOG_LEVEL: "info", ...overrides },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /"port":(\d+),"adminPort".*"msg":"serving/.exec(out);
      if (m) resolve(Number(m[1]));
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
    exited.then((code) => reject(new Error(`server exited (${code}) before serving:\n${out}`)));
    setTimeout(() => reject(new Error(`server did not start in 60s:\n${out}`)), 60_000).unref();
  });
  return {
    child,
    port,
    address: `127.0.0.1:${port}`,
    baseUrl: `http://127.0.0.1:${port}`,
    output: () => out,
    exited,
    async stop() {
      child.kill("SIGTERM");
      return exited;
    },
    async kill() {
      child.kill("SIGKILL");
      await exited;
    },
  };
}
