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
// server RSS (VmRSS) before, at the peak, and after every stream is closed; the
// load average. Bounded: the burst is abandoned after BENCH_TIMEOUT_S (120).

import * as grpc from "@grpc/grpc-js";
import http2 from "node:http2";
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { loadavg } from "node:os";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { SubscribeRequestSchema, SubscribeResponseSchema } from "../gen/chat/v1/message_pb.js";
import { AccessTokens } from "../src/auth/tokens.ts";
import { provisionBackends, spawnServer, TEST_SECRET } from "../test/support/server.ts";

const OPENS = Number(process.env.BENCH_OPENS ?? 5000);
const PER_USER = Number(process.env.BENCH_PER_USER ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 25);
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S ?? 120);

const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
const pct = (xs: number[], p: number) =>
  xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] : NaN;

async function main() {
  const backends = await provisionBackends({
    sql: process.env.TEST_DATABASE_URL ? "postgres" : "pglite",
    redis: Boolean(process.env.TEST_REDIS_URL),
  });
  const server = await spawnServer(backends.env, { MAX_CONCURRENT_STREAMS: "1000" });
  const pid = server.child.pid!;
  const tokens = new AccessTokens(TEST_SECRET, 3600);
  const users = Math.ceil(OPENS / PER_USER);
  const toks: string[] = [];
  for (let u = 0; u < users; u++) toks.push((await tokens.sign({ userId: randomUUID(), sessionId: randomUUID(), roles: ["user"] })).token);

  // Health/Check over its own HTTP/2 connection (Connect JSON), every 20 ms.
  const hs = http2.connect(server.baseUrl);
  const check = () =>
    new Promise<number>((resolve, reject) => {
      const t0 = performance.now();
      const r = hs.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Check", "content-type": "application/json" });
      r.on("data", () => {});
      r.on("end", () => resolve(performance.now() - t0));
      r.on("error", reject);
      r.end("{}");
    });
  await check();
  const rssStart = rss(pid);
  let rssPeak = rssStart;
  const health: number[] = [];
  let probing = true;
  const prober = (async () => {
    while (probing) {
      health.push(await check());
      rssPeak = Math.max(rssPeak, rss(pid));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();

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
  const during = [...health];
  probing = false;
  await prober;

  for (const c of calls) c.cancel();
  for (const c of clients) c.close();
  // Let the server release what the streams held, then a GC-independent reading after a few seconds.
  await new Promise((r) => setTimeout(r, 5000));
  const rssAfter = rss(pid);
  hs.close();
  await server.stop();
  await backends.cleanup();

  const [l1, l5, l15] = loadavg().map((x) => x.toFixed(2));
  console.log(
    JSON.stringify(
      {
        opens: OPENS,
        perUser: PER_USER,
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
          afterClose: Math.round(rssAfter),
          afterVsStart: Number((rssAfter / rssStart).toFixed(2)),
        },
        loadAverage: `${l1} ${l5} ${l15}`,
      },
      null,
      2,
    ),
  );
  process.exit(0);
}

void main();
