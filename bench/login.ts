// Login benchmark: latency (p50/p99) and logins per second of one server node,
// on the embedded default (PGlite + in-process ephemeral store) and on
// Postgres (+ Redis when reachable). The server runs as its own process
// (`node src/main.ts`), the load comes from this one over gRPC (HTTP/2).
//
//   node bench/login.ts
//
// Settings (environment): BENCH_SECONDS (per measurement, default 10),
// BENCH_CONCURRENCY (default: number of cores), BENCH_DATABASE_URL (default
// TEST_DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres),
// BENCH_REDIS_URL (default TEST_REDIS_URL or redis://127.0.0.1:6379; "off" to skip).
//
// argon2id (m=19 MiB, t=2, p=1) dominates a login: expect the CPU cores, not
// the stores, to set the ceiling. The figures say so rather than hiding it.

import { availableParallelism, loadavg, tmpdir } from "node:os";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { Redis } from "ioredis";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { hash, verify, argon2id } from "argon2";
import { AuthService } from "../gen/chat/v1/auth_pb.js";
import { spawnServer, type ServerProcess } from "../test/support/server.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? availableParallelism());
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const REDIS_URL = process.env.BENCH_REDIS_URL ?? process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const PASSWORD = "benchmark password 123";
const SECRET = randomBytes(32).toString("hex");

interface Row {
  setup: string;
  scenario: string;
  concurrency: number;
  count: number;
  perSec: number;
  p50: number;
  p99: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Runs `op` from `concurrency` workers for `seconds`; returns throughput and latency. */
async function measure(concurrency: number, seconds: number, op: (worker: number) => Promise<void>): Promise<Omit<Row, "setup" | "scenario">> {
  // Warm-up: connections, JIT, first argon2 allocations.
  await Promise.all(Array.from({ length: concurrency }, (_, w) => op(w)));
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await op(w);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { concurrency, count: latencies.length, perSec: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

async function expectFailure(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch {
    return;
  }
  throw new Error("expected a failed login");
}

async function benchSetup(setup: string, env: Record<string, string>): Promise<Row[]> {
  const server: ServerProcess = await spawnServer(env);
  const rows: Row[] = [];
  try {
    const transport = createGrpcTransport({ baseUrl: server.baseUrl });
    const client: Client<typeof AuthService> = createClient(AuthService, transport);
    const users: string[] = [];
    for (let i = 0; i < Math.max(CONCURRENCY, 8); i++) {
      const username = `bench_${randomBytes(5).toString("hex")}`;
      await client.register({ email: `${username}@example.test`, username, password: PASSWORD, deviceId: "bench" });
      users.push(username);
    }
    const run = async (scenario: string, concurrency: number, op: (w: number) => Promise<void>) => {
      const r = await measure(concurrency, SECONDS, op);
      rows.push({ setup, scenario, ...r });
      console.error(
        `${setup} | ${scenario} | c=${concurrency}: ${r.perSec.toFixed(1)}/s p50 ${r.p50.toFixed(1)} ms p99 ${r.p99.toFixed(1)} ms (n=${r.count})`,
      );
    };
    const login = (w: number) => client.login({ login: users[w % users.length], password: PASSWORD, deviceId: `bench-${w}` }).then(() => {});
    await run("Login (success)", CONCURRENCY, login);
    await run("Login (success)", CONCURRENCY * 4, login);
    // Failures should cost the same as successes, and unknown accounts the same
    // as known ones: no user enumeration by timing. (Throttles are lifted for
    // this run, see main(), so these measure the work, not the refusal.)
    let n = 0;
    await run("Login (wrong password)", CONCURRENCY, async () => {
      await expectFailure(client.login({ login: users[n++ % users.length], password: "not the password", deviceId: "x" }));
    });
    await run("Login (unknown account)", CONCURRENCY, async () => {
      await expectFailure(client.login({ login: `nobody_${randomBytes(6).toString("hex")}`, password: "not the password", deviceId: "x" }));
    });
    const { tokens } = await client.login({ login: users[0], password: PASSWORD, deviceId: "getme" });
    const authed = createClient(AuthService, transport);
    await run("GetMe (token check + 1 read)", CONCURRENCY, async () => {
      await authed.getMe({}, { headers: { authorization: `Bearer ${tokens!.accessToken}` } });
    });
    let refreshToken = tokens!.refreshToken;
    await run("Refresh (rotation)", 1, async () => {
      refreshToken = (await client.refresh({ refreshToken })).tokens!.refreshToken;
    });
  } finally {
    await server.stop();
  }
  return rows;
}

async function reachable(check: () => Promise<unknown>): Promise<boolean> {
  try {
    await check();
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  // The cost of one argon2id verify on this machine, for scale.
  const params = { type: argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;
  const h = await hash(PASSWORD, params);
  const t0 = performance.now();
  for (let i = 0; i < 20; i++) await verify(h, PASSWORD);
  const verifyMs = (performance.now() - t0) / 20;

  const loadBefore = loadavg()[0];
  const base = {
    HOST: "127.0.0.1",
    PORT: "0",
    ADMIN_PORT: "off",
    ACCESS_TOKEN_SECRET: SECRET,
    // One client address hammering failed logins on purpose: lift the throttles.
    LOGIN_MAX_FAILURES_PER_ACCOUNT: "1000000",
    LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS: "1000000",
    LOGIN_MAX_FAILURES_PER_ADDRESS: "1000000",
  };
  const rows: Row[] = [];

  const dataDir = mkdtempSync(join(tmpdir(), "bench-login-"));
  try {
    rows.push(...(await benchSetup("embedded (PGlite, in-process)", { ...base, DATA_DIR: dataDir })));
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }

  const pgOk = await reachable(async () => {
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    await c.end();
  });
  if (pgOk) {
    const schema = `bench_${randomBytes(4).toString("hex")}`;
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    const url = new URL(DATABASE_URL);
    url.searchParams.set("options", `-c search_path=${schema}`);
    const redisOk =
      REDIS_URL !== "off" &&
      (await reachable(async () => {
        const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0 });
        await r.connect();
        r.disconnect();
      }));
    const dir = mkdtempSync(join(tmpdir(), "bench-login-"));
    try {
      const env: Record<string, string> = { ...base, DATA_DIR: dir, DATABASE_URL: url.toString() };
      if (redisOk) Object.assign(env, { REDIS_URL, REDIS_PREFIX: `${schema}:` });
      rows.push(...(await benchSetup(redisOk ? "Postgres + Redis" : "Postgres", env)));
    } finally {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
      rmSync(dir, { recursive: true, force: true });
    }
  } else {
    console.error(`Postgres not reachable at ${DATABASE_URL}: skipped`);
  }

  const fmt = (n: number, d = 1) => n.toFixed(d);
  console.log(`\nLogin benchmark: ${availableParallelism()} cores, ${SECONDS}s per row, argon2id m=19456 KiB t=2 p=1`);
  console.log(
    `One argon2id verify alone: ${fmt(verifyMs)} ms, so ${availableParallelism()} cores can do at most ~${fmt((availableParallelism() * 1000) / verifyMs, 0)} verifies/s.`,
  );
  console.log(`1-min load average: ${fmt(loadBefore, 2)} before, ${fmt(loadavg()[0], 2)} after (other work on the machine skews the figures).\n`);
  console.log("| setup | scenario | concurrency | requests | per second | p50 ms | p99 ms |");
  console.log("|---|---|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    console.log(`| ${r.setup} | ${r.scenario} | ${r.concurrency} | ${r.count} | ${fmt(r.perSec)} | ${fmt(r.p50)} | ${fmt(r.p99)} |`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
