// Presence fan-out cost: Redis operations per connect and per disconnect, and
// presence events fanned out per second, for users in 200 conversations.
//
//   node bench/presence.ts
//
// It starts its own redis-server on a free port (so the command counts are
// this benchmark's alone), uses Postgres from BENCH_DATABASE_URL /
// TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) in a
// throw-away schema, and runs the real server as a child process. Users and
// their 200 groups are made through the real RPCs. The watcher is a member of
// every group, holding a real grpc-js stream.
// Settings: BENCH_CONVERSATIONS (200), BENCH_CYCLES (20), BENCH_USERS (20).

import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { Redis } from "ioredis";
import { ConversationService, ConversationType } from "../gen/chat/v1/conversation_pb.js";
import { PresenceStatus } from "../gen/chat/v1/presence_pb.js";
import { spawnServer } from "../test/support/server.ts";
import { connectClient } from "../test/support/clients.ts";
import { registerUser } from "../test/support/users.ts";
import { StreamClient } from "../test/support/stream-client.ts";
import { channel } from "../test/realtime/helpers.ts";

const CONVERSATIONS = Number(process.env.BENCH_CONVERSATIONS ?? 200);
const CYCLES = Number(process.env.BENCH_CYCLES ?? 20);
const USERS = Number(process.env.BENCH_USERS ?? 20);
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

async function commands(redis: Redis): Promise<number> {
  const info = await redis.info("stats");
  return Number(/total_commands_processed:(\d+)/.exec(info)![1]);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function presenceEvents(s: StreamClient, userId: string, status: PresenceStatus): number {
  return s.frames.filter(
    (f) =>
      f.frame.case === "event" &&
      f.frame.value.payload.case === "presenceUpdated" &&
      f.frame.value.payload.value.userId === userId &&
      f.frame.value.payload.value.status === status,
  ).length;
}

async function main() {
  const redisPort = await freePort();
  const redisDir = mkdtempSync(join(tmpdir(), "bench-redis-"));
  const redisProc = spawn(
    "redis-server",
    ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", redisDir],
    { stdio: "ignore" },
  );
  const redis = new Redis(`redis://127.0.0.1:${redisPort}`, { lazyConnect: true, maxRetriesPerRequest: 50 });
  redis.on("error", () => {}); // while redis-server starts
  for (let i = 0; i < 50; i++) {
    try {
      await redis.connect();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const schema = `bench_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  const dbUrl = new URL(DATABASE_URL);
  dbUrl.searchParams.set("options", `-c search_path=${schema}`);
  const dataDir = mkdtempSync(join(tmpdir(), "bench-presence-"));
  const server = await spawnServer(
    {
      HOST: "127.0.0.1",
      PORT: "0",
      ADMIN_PORT: "off",
      DATA_DIR: dataDir,
      DATABASE_URL: dbUrl.toString(),
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      ACCESS_TOKEN_SECRET: randomBytes(32).toString("hex"),
    },
    // No grace: a disconnect turns into offline at the next sweep, so cycles are short.
    { PRESENCE_GRACE_MS: "0", PRESENCE_SWEEP_MS: "50", PRESENCE_COALESCE_MS: "10" },
  );
  try {
    const watcher = await registerUser(server.baseUrl);
    const users: Awaited<ReturnType<typeof registerUser>>[] = [];
    for (let i = 0; i < USERS; i++) users.push(await registerUser(server.baseUrl));
    // Every user shares CONVERSATIONS groups with the watcher.
    const convs = connectClient(ConversationService, "grpc", server.baseUrl, watcher.accessToken);
    for (let c = 0; c < CONVERSATIONS; c++) {
      await convs.createConversation({ type: ConversationType.GROUP, title: `g${c}`, memberIds: users.map((u) => u.user.id) });
    }
    const watch = StreamClient.open(channel(server.address, { own: true }), watcher.accessToken);
    await watch.until((s) => s.ready(), 30_000, "watcher ready");

    // 1. One user, connect and disconnect cycles: Redis commands and time to reach the watcher.
    const subject = users[0];
    const connectOps: number[] = [];
    const disconnectOps: number[] = [];
    const onlineMs: number[] = [];
    const offlineMs: number[] = [];
    let onlineSeen = 0;
    let offlineSeen = 0;
    for (let i = 0; i < CYCLES; i++) {
      let before = await commands(redis);
      let t0 = performance.now();
      const s = StreamClient.open(channel(server.address, { own: true }), subject.accessToken);
      await watch.until(() => presenceEvents(watch, subject.user.id, PresenceStatus.ONLINE) > onlineSeen, 30_000, "online");
      onlineMs.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 100)); // let the fan-out finish before counting
      connectOps.push((await commands(redis)) - before - 1);
      onlineSeen = presenceEvents(watch, subject.user.id, PresenceStatus.ONLINE);

      before = await commands(redis);
      t0 = performance.now();
      s.cancel();
      await watch.until(() => presenceEvents(watch, subject.user.id, PresenceStatus.OFFLINE) > offlineSeen, 30_000, "offline");
      offlineMs.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 100));
      disconnectOps.push((await commands(redis)) - before - 1);
      offlineSeen = presenceEvents(watch, subject.user.id, PresenceStatus.OFFLINE);
    }
    const eventsPerChange = presenceEvents(watch, subject.user.id, PresenceStatus.ONLINE) / CYCLES;

    // 2. Many users at once: presence events fanned out per second.
    const t0 = performance.now();
    const streams = users.slice(1).map((u) => StreamClient.open(channel(server.address, { own: true }), u.accessToken));
    await watch.until(() => users.slice(1).every((u) => presenceEvents(watch, u.user.id, PresenceStatus.ONLINE) > 0), 60_000, "all online");
    const elapsed = (performance.now() - t0) / 1000;
    const published = (USERS - 1) * CONVERSATIONS;
    for (const s of streams) s.cancel();

    const med = (xs: number[]) =>
      percentile(
        [...xs].sort((a, b) => a - b),
        50,
      );
    const p99 = (xs: number[]) =>
      percentile(
        [...xs].sort((a, b) => a - b),
        99,
      );
    const sweepsPerSec = 1000 / 50;
    console.log(`\nPresence fan-out, user in ${CONVERSATIONS} conversations (${CYCLES} cycles; own redis-server; Postgres; 1 node)\n`);
    console.log("| measure | median | p99 |");
    console.log("|---|---|---|");
    console.log(`| Redis commands per connect (incl. ${CONVERSATIONS} PUBLISH + background sweeps) | ${med(connectOps)} | ${p99(connectOps)} |`);
    console.log(
      `| Redis commands per disconnect (incl. ${CONVERSATIONS} PUBLISH + background sweeps) | ${med(disconnectOps)} | ${p99(disconnectOps)} |`,
    );
    console.log(`| connect -> watcher sees ONLINE (ms) | ${med(onlineMs).toFixed(1)} | ${p99(onlineMs).toFixed(1)} |`);
    console.log(
      `| disconnect -> watcher sees OFFLINE (ms, includes the ${50} ms sweep period) | ${med(offlineMs).toFixed(1)} | ${p99(offlineMs).toFixed(1)} |`,
    );
    console.log(
      `\npresence_updated frames the watcher got per change: ${eventsPerChange.toFixed(1)} (it shares ${CONVERSATIONS} conversations with the user)`,
    );
    console.log(
      `burst: ${USERS - 1} users online at once -> ${published} conversation publishes in ${elapsed.toFixed(2)} s = ${Math.round(published / elapsed)} presence events/s fanned out`,
    );
    console.log(`(background: each node sweeps the expiry index ${sweepsPerSec}x/s = ${sweepsPerSec} ZRANGEBYSCORE/s, counted in the figures above)`);
  } finally {
    await server.stop();
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
    redis.disconnect();
    redisProc.kill();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(redisDir, { recursive: true, force: true });
  }
}

await main();
