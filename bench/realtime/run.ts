// Realtime benchmark, one command:
//
//   node bench/realtime/run.ts
//
// Postgres from TEST_DATABASE_URL (a fresh schema) or, without it, the
// embedded PGlite; Redis from TEST_REDIS_URL (a fresh key prefix) or, without
// it, the in-process fan-out. In the same run, on the same machine:
//
//  1. the transport ceiling (bench/realtime/ceiling-server.ts: same HTTP/2 +
//     Connect stack, in-process fan-out, no persistence) and the real server
//     (`node src/main.ts`, a child process), each driven by the same load tool
//     (bench/realtime/load.ts): BENCH_STREAMS grpc-js streams (default 1,000)
//     in groups of BENCH_GROUP_SIZE (default 10), messages offered at doubling
//     rates until delivery falls behind; delivered events/s and send -> receive
//     latency p50/p99/max per step; then p99 at half of the saturation rate;
//  2. server RSS per idle stream at BENCH_IDLE_STREAMS (default 10,000) open
//     streams: /proc/<pid>/status VmRSS before and after, for both servers.
//
// Other settings: BENCH_STEP_SECONDS (default 5), BENCH_START_RATE (messages/s,
// default 50), BENCH_MAX_RATE (default 12800), BENCH_CONNECTIONS (HTTP/2
// connections for the fan-out fleet, default 20), BENCH_PROFILE=1 (CPU profile
// of the app during the run, summarised at the end), BENCH_ONLY=ceiling|app,
// BENCH_IDLE_PER_CONNECTION (streams per HTTP/2 connection in the idle phase,
// default 100), BENCH_PG_ASYNC_COMMIT=1 (diagnostic: the app's Postgres
// sessions with synchronous_commit=off, to see what commit flushes cost).

import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, readdirSync, mkdtempSync } from "node:fs";
import { randomUUID, randomBytes } from "node:crypto";
import { join } from "node:path";
import { loadavg, tmpdir, cpus } from "node:os";
import { createPostgres } from "../../src/stores/sql/postgres.ts";
import { createPglite } from "../../src/stores/sql/pglite.ts";
import { loadMigrations, migrate } from "../../src/stores/sql/migrate.ts";
import { MIGRATIONS_DIR } from "../../src/stores/stores.ts";
import type { SqlDatabase } from "../../src/stores/sql/sql.ts";
import { AccessTokens } from "../../src/auth/tokens.ts";
import { provisionBackends, spawnServer, TEST_SECRET, type ServerProcess } from "../../test/support/server.ts";
import { Fleet, waitFor, type DeviceSpec, type StepResult } from "./load.ts";

const STREAMS = Number(process.env.BENCH_STREAMS ?? 1000);
const GROUP = Number(process.env.BENCH_GROUP_SIZE ?? 10);
const IDLE = Number(process.env.BENCH_IDLE_STREAMS ?? 10_000);
const STEP_SECONDS = Number(process.env.BENCH_STEP_SECONDS ?? 5);
const START_RATE = Number(process.env.BENCH_START_RATE ?? 50);
const MAX_RATE = Number(process.env.BENCH_MAX_RATE ?? 12_800);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20);
const IDLE_PER_CONNECTION = Number(process.env.BENCH_IDLE_PER_CONNECTION ?? 100);
const PROFILE = process.env.BENCH_PROFILE === "1";
const ONLY = process.env.BENCH_ONLY ?? "";
const ASYNC_COMMIT = process.env.BENCH_PG_ASYNC_COMMIT === "1";
/**
 * A step "keeps up" when at least 97% of the expected deliveries arrived
 * (within the drain time) and the median latency shows no standing queue
 * (< 50 ms). The highest such rate is the saturation point.
 */
const keepsUp = (s: StepResult) => s.received >= 0.97 * s.expected && s.p50 < 50;
const ROOT = join(import.meta.dirname, "../..");

interface Target {
  name: "ceiling" | "app";
  address: string;
  pid: number;
  /** Everything the server printed so far. */
  output(): string;
  stop(): Promise<void>;
}

const GC_HOOK = `--expose-gc --import ${join(import.meta.dirname, "gc-hook.ts")}`;

/** Full GC in the server, then its RSS (KiB) and JS heap (bytes). */
async function settledMemory(t: Target): Promise<{ rssKb: number; heapUsed: number }> {
  const seen = t.output().length;
  process.kill(t.pid, "SIGUSR2");
  await waitFor(() => t.output().slice(seen).includes("gcMemory"), 10_000);
  const line = t
    .output()
    .slice(seen)
    .split("\n")
    .find((l) => l.includes("gcMemory"))!;
  const m = (JSON.parse(line) as { gcMemory: { heapUsed: number } }).gcMemory;
  return { rssKb: rssKb(t.pid), heapUsed: m.heapUsed };
}

/** CPU seconds used so far by the server, this process (the load tool), Postgres and Redis processes. */
function cpuTimes(serverPid: number): Record<string, number> {
  const ticks = (stat: string) => {
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in USER_HZ (100)
  };
  const out: Record<string, number> = { server: 0, "load tool": 0, postgres: 0, redis: 0 };
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue;
    }
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    if (Number(pid) === serverPid) out.server += ticks(stat);
    else if (Number(pid) === process.pid) out["load tool"] += ticks(stat);
    else if (comm === "postgres") out.postgres += ticks(stat);
    else if (comm.startsWith("redis-server")) out.redis += ticks(stat);
  }
  return out;
}

function cpuShare(before: Record<string, number>, after: Record<string, number>, seconds: number): string {
  return Object.keys(after)
    .map((k) => `${k} ${((100 * (after[k] - (before[k] ?? 0))) / seconds).toFixed(0)}%`)
    .join(", ");
}

const rssKb = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : "-");
const log = (s: string) => console.log(s);

async function main(): Promise<void> {
  const users = Math.max(STREAMS, IDLE);
  const backends = await provisionBackends({
    sql: process.env.TEST_DATABASE_URL ? "postgres" : "pglite",
    redis: Boolean(process.env.TEST_REDIS_URL),
  });
  const setup = `${process.env.TEST_DATABASE_URL ? "Postgres" : "PGlite (embedded)"} + ${process.env.TEST_REDIS_URL ? "Redis" : "in-process fan-out"}`;
  log(
    `realtime bench: ${setup}; ${STREAMS} streams in groups of ${GROUP}; ${IDLE} idle streams; ${cpus().length} cores; load ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );

  // Fixture straight into the database (no argon2 per user): users, groups, members.
  const t0 = performance.now();
  const groups = await fixture(backends.env, users);
  const tokens = new AccessTokens(TEST_SECRET, 24 * 3600);
  const specs: DeviceSpec[] = [];
  for (let i = 0; i < users; i++) {
    const { token } = await tokens.sign({ userId: groups.users[i], sessionId: randomUUID(), roles: ["user"] });
    specs.push({ token, group: groups.conversations[Math.floor(i / GROUP)] });
  }
  log(`fixture: ${users} users, ${groups.conversations.length} groups, tokens in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const results: Record<
    string,
    {
      steps: (StepResult & { rate: number })[];
      saturation: number;
      half: StepResult | null;
      idle: { before: number; after: number; perStreamKb: number; heapPerStreamKb: number } | null;
    }
  > = {};
  const profileDir = mkdtempSync(join(tmpdir(), "rt-prof-"));
  const order: Target["name"][] = ONLY === "app" ? ["app"] : ONLY === "ceiling" ? ["ceiling"] : ["ceiling", "app"];
  for (const name of order) {
    results[name] = { steps: [], saturation: 0, half: null, idle: null };
    const r = results[name];
    if (STREAMS > 0) {
      const target = name === "ceiling" ? await startCeiling() : await startApp(backends.env, profileDir);
      try {
        log(`\n== ${name}: ${STREAMS} streams in groups of ${GROUP} (pid ${target.pid}) ==`);
        const fleet = await Fleet.open(target.address, specs.slice(0, STREAMS), CONNECTIONS);
        await fleet.run(START_RATE, 2, 1000); // warm-up, not recorded
        let best = 0;
        let bestRate = 0;
        const step = async (rate: number): Promise<boolean> => {
          const cpu0 = cpuTimes(target.pid);
          const t0 = performance.now();
          const s = await fleet.run(rate, STEP_SECONDS);
          const cpu = cpuShare(cpu0, cpuTimes(target.pid), (performance.now() - t0) / 1000);
          r.steps.push({ ...s, rate });
          const ok = keepsUp(s);
          log(
            `  offer ${String(rate).padStart(5)} msg/s -> delivered ${fmt(s.deliveredPerSec, 0).padStart(7)} events/s (${fmt((100 * s.received) / s.expected, 1)}%)  p50 ${fmt(s.p50)} ms  p99 ${fmt(s.p99)} ms  max ${fmt(s.max)} ms  load ${loadavg()[0].toFixed(1)}${ok ? "" : "  <- saturated"}\n      cpu (of one core): ${cpu}`,
          );
          if (ok && s.deliveredPerSec > best) {
            best = s.deliveredPerSec;
            bestRate = rate;
          }
          // A step that fell behind leaves a backlog: let it drain before the next one.
          if (ok) await new Promise((res) => setTimeout(res, 1000));
          else await fleet.quiesce();
          return ok;
        };
        // Double until delivery falls behind, then narrow the bracket twice.
        let bad = 0;
        for (let rate = START_RATE; rate <= MAX_RATE; rate *= 2) {
          if (!(await step(rate))) {
            bad = rate;
            break;
          }
        }
        for (let i = 0; i < 2 && bad > 0 && bad - bestRate > START_RATE / 2; i++) {
          const mid = Math.round((bestRate + bad) / 2);
          if (!(await step(mid))) bad = mid;
        }
        r.saturation = best;
        const halfRate = Math.max(1, Math.round(bestRate / 2));
        r.half = await fleet.run(halfRate, Math.max(STEP_SECONDS, 10));
        log(
          `  half of saturation: offer ${halfRate} msg/s -> delivered ${fmt(r.half.deliveredPerSec, 0)} events/s p50 ${fmt(r.half.p50)} ms p99 ${fmt(r.half.p99)} ms max ${fmt(r.half.max)} ms`,
        );
        fleet.close();
      } finally {
        await target.stop();
      }
    }
    if (IDLE > 0) {
      // A fresh process: memory already grown under load is not given back to the OS.
      const target = name === "ceiling" ? await startCeiling() : await startApp(backends.env, null);
      try {
        log(`\n== ${name}: ${IDLE} idle streams (pid ${target.pid}) ==`);
        const warm = await Fleet.open(target.address, specs.slice(0, 200), 2);
        warm.close();
        await new Promise((res) => setTimeout(res, 2000));
        const before = await settledMemory(target);
        const idleFleet = await Fleet.open(target.address, specs.slice(0, IDLE), Math.ceil(IDLE / IDLE_PER_CONNECTION), 600_000);
        await new Promise((res) => setTimeout(res, 3000));
        const after = await settledMemory(target);
        r.idle = {
          before: before.rssKb,
          after: after.rssKb,
          perStreamKb: (after.rssKb - before.rssKb) / IDLE,
          heapPerStreamKb: (after.heapUsed - before.heapUsed) / 1024 / IDLE,
        };
        log(
          `  idle (after a full GC): RSS ${(before.rssKb / 1024).toFixed(1)} MiB -> ${(after.rssKb / 1024).toFixed(1)} MiB with ${IDLE} open streams: ${fmt(r.idle.perStreamKb, 2)} KiB RSS, ${fmt(r.idle.heapPerStreamKb, 2)} KiB JS heap per stream`,
        );
        idleFleet.close();
      } finally {
        await target.stop();
      }
    }
  }

  log("\n## Summary\n");
  log(`setup: ${setup}; ${STREAMS} streams in ${STREAMS / GROUP} groups of ${GROUP}; step ${STEP_SECONDS} s; ${cpus().length} cores`);
  log(
    "| server | saturation: delivered events/s (≥97% delivered, p50 < 50 ms) | p50 / p99 at saturation ms | best delivered events/s with p99 < 100 ms | p50 / p99 / max at half of saturation ms | RSS per idle stream KiB | JS heap per idle stream KiB |",
  );
  log("|---|---:|---:|---:|---|---:|---:|");
  for (const [name, r] of Object.entries(results)) {
    const sat = r.steps.find((s) => s.deliveredPerSec === r.saturation);
    const under100 = Math.max(0, ...r.steps.filter((x) => keepsUp(x) && x.p99 < 100).map((x) => x.deliveredPerSec));
    log(
      `| ${name} | ${fmt(r.saturation, 0)} | ${fmt(sat?.p50 ?? NaN)} / ${fmt(sat?.p99 ?? NaN)} | ${under100 ? fmt(under100, 0) : "none"} | ${fmt(r.half?.p50 ?? NaN)} / ${fmt(r.half?.p99 ?? NaN)} / ${fmt(r.half?.max ?? NaN)} | ${fmt(r.idle?.perStreamKb ?? NaN, 2)} | ${fmt(r.idle?.heapPerStreamKb ?? NaN, 2)} |`,
    );
  }
  if (results.app && results.ceiling) log(`\napp / ceiling at saturation: ${fmt(results.app.saturation / results.ceiling.saturation, 2)}x`);
  if (PROFILE) summariseProfile(profileDir);
  await backends.cleanup();
}

/** Users, groups of GROUP and their memberships, inserted directly. */
async function fixture(env: Record<string, string>, n: number): Promise<{ users: string[]; conversations: string[] }> {
  const db: SqlDatabase = env.DATABASE_URL ? createPostgres(env.DATABASE_URL) : await createPglite(join(env.DATA_DIR, "pglite"));
  try {
    await migrate(db, await loadMigrations(MIGRATIONS_DIR));
    const users = Array.from({ length: n }, () => randomUUID());
    const conversations = Array.from({ length: Math.ceil(n / GROUP) }, () => randomUUID());
    const names = users.map(() => `b_${randomBytes(6).toString("hex")}`);
    await db.query(
      `INSERT INTO users (id, email, email_normalized, username, display_name, password_hash)
       SELECT id, name || '@bench.test', name || '@bench.test', name, name, 'x' FROM unnest($1::uuid[], $2::text[]) AS t(id, name)`,
      [users, names],
    );
    await db.query(
      `INSERT INTO conversations (id, type, title, visibility, owner_id, member_count, last_message_at)
       SELECT id, 'group', 'bench', 'private', NULL, $2, now() FROM unnest($1::uuid[]) AS t(id)`,
      [conversations, GROUP],
    );
    await db.query(
      `INSERT INTO conversation_members (conversation_id, user_id, role)
       SELECT ($2::uuid[])[(i - 1) / $3 + 1], u, 'member' FROM unnest($1::uuid[]) WITH ORDINALITY AS t(u, i)`,
      [users, conversations, GROUP],
    );
    return { users, conversations };
  } finally {
    await db.close();
  }
}

async function startApp(env: Record<string, string>, profileDir: string | null): Promise<Target> {
  const server: ServerProcess = await spawnServer(env, {
    MAX_CONCURRENT_STREAMS: "1000",
    NODE_ID: "bench-app",
    NODE_OPTIONS: `${GC_HOOK}${PROFILE && profileDir ? ` --cpu-prof --cpu-prof-dir=${profileDir}` : ""}`,
    // Diagnostic only (never for production): is Postgres' commit flush the limit?
    ...(ASYNC_COMMIT && env.DATABASE_URL ? { DATABASE_URL: withOption(env.DATABASE_URL, "-c synchronous_commit=off") } : {}),
  });
  return {
    name: "app",
    address: server.address,
    pid: server.child.pid!,
    output: () => server.output(),
    async stop() {
      await server.stop();
    },
  };
}

function withOption(url: string, option: string): string {
  const u = new URL(url);
  u.searchParams.set("options", `${u.searchParams.get("options") ?? ""} ${option}`.trim());
  return u.toString();
}

async function startCeiling(): Promise<Target> {
  const child: ChildProcess = spawn(process.execPath, ["bench/realtime/ceiling-server.ts"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, NODE_OPTIONS: GC_HOOK },
  });
  let out = "";
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  await waitFor(() => /"port":\d+/.test(out), 30_000);
  const port = Number(/"port":(\d+)/.exec(out)![1]);
  return {
    name: "ceiling",
    address: `127.0.0.1:${port}`,
    pid: child.pid!,
    output: () => out,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    },
  };
}

/** Top functions by self time from the app's CPU profile. */
function summariseProfile(dir: string): void {
  const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
  if (files.length === 0) return log("no CPU profile written");
  interface Node {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    hitCount?: number;
  }
  const prof = JSON.parse(readFileSync(join(dir, files[0]), "utf8")) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const self = new Map<number, number>();
  prof.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
  const byFn = new Map<string, number>();
  const byArea = new Map<string, number>();
  let total = 0;
  for (const n of prof.nodes) {
    const t = self.get(n.id) ?? 0;
    total += t;
    const url = n.callFrame.url.replace(`file://${ROOT}/`, "");
    const key = `${n.callFrame.functionName || "(anonymous)"} ${url}:${n.callFrame.lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + t);
    const area = url.startsWith("node_modules/")
      ? url
          .split("/")
          .slice(0, url.startsWith("node_modules/@") ? 3 : 2)
          .join("/")
      : url.startsWith("src/")
        ? url.split("/").slice(0, 2).join("/")
        : url.startsWith("node:")
          ? `node:${url.slice(5).split("/")[0]}`
          : n.callFrame.functionName.startsWith("(")
            ? n.callFrame.functionName
            : "(other)";
    byArea.set(area, (byArea.get(area) ?? 0) + t);
  }
  log(`\n## CPU profile of the app (${(total / 1e6).toFixed(1)} s sampled)\n`);
  log("| area | self time |\n|---|---:|");
  for (const [k, t] of [...byArea].sort((a, b) => b[1] - a[1]).slice(0, 15)) log(`| ${k} | ${((100 * t) / total).toFixed(1)}% |`);
  log("\n| function | self time |\n|---|---:|");
  for (const [k, t] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, 20)) log(`| ${k} | ${((100 * t) / total).toFixed(1)}% |`);
}

await main();
process.exit(0);
