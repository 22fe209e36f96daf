// Stream-open burst (issue 11 item 2), one command:
//
//   node bench/stream-burst.ts
//
// One server process (`node src/main.ts`) on Postgres (TEST_DATABASE_URL, a fresh
// schema) + Redis (TEST_REDIS_URL) when set. BENCH_OPENS Subscribe streams
// (default 5,000; BENCH_PER_USER per user, default 10, the per-user cap) are
// opened in one burst over BENCH_CONNECTIONS HTTP/2 connections (default 25),
// while a separate connection calls Health/Check every 20 ms. Reported: how many
// opened (ready), how many were refused with RESOURCE_EXHAUSTED + RetryInfo,
// how many ended any other way (must be 0); health p50/p99/max during the burst;
// server RSS (VmRSS) before, at the peak, and 5 s and 30 s after every stream is
// closed; the server's first warnings; the load average. The health prober runs
// in its own process, so its figures are the server's, not this process's. Bounded: the burst is abandoned after BENCH_TIMEOUT_S (120).
// After the close: a forced full GC and the heap and RSS after it (BENCH_SMAPS=1: where the RSS is).
// BENCH_ROUNDS (default 1): bursts one after the other on the same server.

import * as grpc from "@grpc/grpc-js";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { SubscribeRequestSchema, SubscribeResponseSchema } from "../gen/chat/v1/message_pb.js";
import { provisionBackends, spawnServer } from "../test/support/server.ts";
import { seedTargetForEnv, seedUsers } from "../test/support/seed.ts";

const OPENS = Number(process.env.BENCH_OPENS ?? 5000);
const PER_USER = Number(process.env.BENCH_PER_USER ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 25);
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S ?? 120);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);

const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
const pct = (xs: number[], p: number) =>
  xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] : NaN;

/** The health prober (its own process): Health/Check every 20 ms until stdin says stop, then the latencies as JSON. */
const PROBER = `
const http2 = require("node:http2");
const hs = http2.connect(process.argv[1]);
const ms = [];
let on = true;
process.stdin.on("data", () => (on = false));
const check = () => new Promise((resolve, reject) => {
  const t0 = performance.now();
  const r = hs.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Check", "content-type": "application/json" });
  r.on("data", () => {});
  r.on("end", () => resolve(performance.now() - t0));
  r.on("error", reject);
  r.end("{}");
});
(async () => {
  await check();
  process.stdout.write("started\\n");
  while (on) {
    ms.push(await check());
    await new Promise((r) => setTimeout(r, 20));
  }
  process.stdout.write(JSON.stringify(ms));
  hs.close();
})();
`;

/** BENCH_SMAPS=1: where the server's RSS is (the largest mappings by RSS), to tell V8's heap from malloc's arenas. */
function largestMappings(pid: number): string[] {
  const out: { rssKb: number; desc: string }[] = [];
  let cur: { desc: string } | null = null;
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const sizeMb = (Number.parseInt(head[2], 16) - Number.parseInt(head[1], 16)) / 2 ** 20;
      cur = { desc: `${head[4] || "[anon]"} ${head[3]} size ${sizeMb.toFixed(1)} MB` };
    } else if (cur && line.startsWith("Rss:")) out.push({ rssKb: Number(line.split(/\s+/)[1]), desc: cur.desc });
  }
  // Grouped by kind and size: thousands of small anonymous mappings (V8 pages) look alike.
  const groups = new Map<string, { rssKb: number; n: number }>();
  for (const m of out) {
    const g = groups.get(m.desc) ?? { rssKb: 0, n: 0 };
    g.rssKb += m.rssKb;
    g.n++;
    groups.set(m.desc, g);
  }
  return [...groups]
    .sort((a, b) => b[1].rssKb - a[1].rssKb)
    .slice(0, 12)
    .map(([desc, g]) => `${(g.rssKb / 1024).toFixed(1)} MB rss in ${g.n} × ${desc}`);
}

async function main() {
  const backends = await provisionBackends({
    sql: process.env.TEST_DATABASE_URL ? "postgres" : "pglite",
    redis: Boolean(process.env.TEST_REDIS_URL),
  });
  // The GC hook (bench/realtime/gc-hook.ts): on SIGUSR2 a full GC and the memory figures, so what
  // the streams left behind is told apart from garbage V8 has not collected yet.
  const server = await spawnServer(backends.env, {
    MAX_CONCURRENT_STREAMS: "1000",
    NODE_OPTIONS: `--expose-gc --import ${join(import.meta.dirname, "realtime/gc-hook.ts")} ${process.env.BENCH_NODE_OPTIONS ?? ""}`,
  });
  const pid = server.child.pid!;
  // Real users with real sessions (what a burst of reconnects looks like), inserted directly.
  const seed = seedTargetForEnv(backends.env);
  const toks = (await seedUsers(seed, Math.ceil(OPENS / PER_USER))).map((u) => u.token);
  await seed.close();

  // BENCH_ROUNDS bursts one after the other on the same server: memory that stays after a burst
  // but does not grow with the next one is kept for reuse, not leaked.
  const rounds: Record<string, unknown>[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    // Health/Check every 20 ms over its own HTTP/2 connection (Connect JSON), from its own process:
    // measured here, the probe would also count this process's own work creating thousands of calls.
    const prober = spawn(process.execPath, ["-e", PROBER, server.baseUrl], { stdio: ["pipe", "pipe", "inherit"] });
    let probeOut = "";
    prober.stdout!.on("data", (c: Buffer) => (probeOut += c.toString()));
    await new Promise<void>((resolve) => {
      const onData = () => probeOut.includes("started") && (prober.stdout!.off("data", onData), resolve());
      prober.stdout!.on("data", onData);
    });
    // The V8 heap in use (prom-client's default metrics on the admin port): RSS alone cannot tell
    // retained state from memory V8 has not given back to the system.
    const adminPort = Number(/"adminPort":(\d+)/.exec(server.output())?.[1]);
    const heapUsedMb = async () => {
      const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
      return Math.round(Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1]) / 2 ** 20);
    };
    const heapStart = await heapUsedMb();
    const rssStart = rss(pid);
    let rssPeak = rssStart;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rss(pid))), 50);

    const clients = Array.from(
      { length: CONNECTIONS },
      () => new grpc.Client(server.address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }),
    );
    const calls: grpc.ClientReadableStream<unknown>[] = [];
    let ready = 0;
    let refusedWithRetry = 0;
    const other: string[] = [];
    const t0 = performance.now();
    const outcomes = Array.from({ length: OPENS }, (_, i) => {
      const md = new grpc.Metadata();
      md.set("authorization", `Bearer ${toks[Math.floor(i / PER_USER)]}`);
      const call = clients[i % CONNECTIONS].makeServerStreamRequest(
        "/chat.v1.MessageService/Subscribe",
        (m: unknown) => Buffer.from(toBinary(SubscribeRequestSchema, m as never)),
        (b: Buffer) => fromBinary(SubscribeResponseSchema, b),
        create(SubscribeRequestSchema, {}),
        md,
      );
      calls.push(call);
      return new Promise<void>((resolve) => {
        call.once("data", () => {
          ready++;
          resolve();
        });
        call.on("error", (e: grpc.ServiceError) => {
          const retry = e.metadata?.get("grpc-status-details-bin")?.length ?? 0;
          if (e.code === grpc.status.RESOURCE_EXHAUSTED && retry > 0) refusedWithRetry++;
          else if (e.code !== grpc.status.CANCELLED) other.push(`${grpc.status[e.code]}: ${e.details}`);
          resolve();
        });
      });
    });
    const bounded = await Promise.race([Promise.all(outcomes).then(() => true), new Promise((r) => setTimeout(() => r(false), TIMEOUT_S * 1000))]);
    const burstS = (performance.now() - t0) / 1000;
    prober.stdin!.end("stop");
    await new Promise((r) => prober.once("exit", r));
    clearInterval(sampler);
    const during = (JSON.parse(probeOut.slice(probeOut.indexOf("["))) as number[]).slice(0);

    for (const c of calls) c.cancel();
    for (const c of clients) c.close();
    // Let the server release what the streams held; V8 gives memory back to the system only after a
    // GC and its idle-time memory reducer, so read RSS 5 s and 30 s after the close.
    await new Promise((r) => setTimeout(r, 5000));
    const rssAfter5 = rss(pid);
    await new Promise((r) => setTimeout(r, 25_000));
    const rssAfter = rss(pid);
    const heapAfter = await heapUsedMb();
    // A forced full GC, then RSS and heap again: retained state, not uncollected garbage.
    const seen = server.output().length;
    process.kill(pid, "SIGUSR2");
    for (let i = 0; i < 200 && !server.output().slice(seen).includes("gcMemory"); i++) await new Promise((r) => setTimeout(r, 50));
    const gcLine = server
      .output()
      .slice(seen)
      .split("\n")
      .find((l) => l.includes("gcMemory"));
    const afterGc = gcLine
      ? (JSON.parse(gcLine) as { gcMemory: { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number } }).gcMemory
      : null;
    const mappings = process.env.BENCH_SMAPS === "1" ? largestMappings(pid) : undefined;
    rounds.push({
      round,
      completedWithinBound: bounded,
      burstSeconds: Number(burstS.toFixed(1)),
      ready,
      refusedWithRetryInfo: refusedWithRetry,
      otherOutcomes: other.length,
      otherSample: other.slice(0, 5),
      healthMs: {
        n: during.length,
        p50: Number(pct(during, 50).toFixed(1)),
        p99: Number(pct(during, 99).toFixed(1)),
        max: Number(Math.max(...during).toFixed(1)),
      },
      rssMb: {
        start: Math.round(rssStart),
        peak: Math.round(rssPeak),
        afterClose5s: Math.round(rssAfter5),
        afterClose30s: Math.round(rssAfter),
        afterVsStart: Number((rssAfter / rssStart).toFixed(2)),
      },
      heapUsedMb: { start: heapStart, afterClose30s: heapAfter },
      afterForcedGcMb: afterGc && {
        rss: Math.round(afterGc.rss / 2 ** 20),
        heapTotal: Math.round(afterGc.heapTotal / 2 ** 20),
        heapUsed: Math.round(afterGc.heapUsed / 2 ** 20),
        external: Math.round(afterGc.external / 2 ** 20),
        arrayBuffers: Math.round(afterGc.arrayBuffers / 2 ** 20),
      },
      ...(mappings ? { largestMappingsAfterGc: mappings } : {}),
    });
  }
  const serverErrors = server
    .output()
    .split("\n")
    .filter((l) => /"level":(40|50)/.test(l))
    .slice(0, 3);
  if (process.env.BENCH_SERVER_LOG) writeFileSync(process.env.BENCH_SERVER_LOG, server.output());
  await server.stop();
  await backends.cleanup();

  const [l1, l5, l15] = loadavg().map((x) => x.toFixed(2));
  console.log(JSON.stringify({ opens: OPENS, perUser: PER_USER, rounds, serverWarnings: serverErrors, loadAverage: `${l1} ${l5} ${l15}` }, null, 2));
  process.exit(0);
}

void main();
