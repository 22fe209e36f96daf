// MessageService benchmark, through the real server (gRPC, unary):
//
//  1. persisted SendMessage throughput against a bare unary echo
//     (grpc.health.v1.Health/Check) on the same server stack in the same run:
//     one hot conversation (every send serialised on its seq) and 8
//     conversations side by side. Twice: on the whole app (with realtime's
//     event log and fan-out in the request path, as shipped) and on a
//     bench-only server with the same stack (startHttpServer, connectNodeAdapter,
//     edge + auth interceptors, the real auth verifier) serving only Health
//     and MessageService with a no-op EventSink: the message module alone;
//  2. ListMessages latency (p50/p99) on a conversation holding BENCH_LIST_SIZE
//     messages (default 1,000,000), bulk-loaded straight into the store:
//     the newest page, pages before / after a random seq; on the bench-only
//     server, once the app is closed (its background jobs would otherwise
//     share the CPU, and on FerretDB scan the big collection).
//
// For the relational adapter (Postgres) and the MongoDB adapter (MongoDB or
// FerretDB for messages, Postgres for conversations). Load comes from ghz
// (~/go/bin/ghz or $GHZ), a separate process, so the client's work is not the
// server's; the server runs in this process with LOG_LEVEL=warn.
//
//   TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres TEST_MONGO_URL=mongodb://127.0.0.1:27017/ node bench/messages.ts
//
// Settings (environment): BENCH_DURATION (per throughput run, default 10s),
// BENCH_CONCURRENCY (default 50), BENCH_LIST_SIZE (default 1000000),
// BENCH_MONGO_LIST_SIZE (default BENCH_LIST_SIZE), BENCH_LIST_CALLS (default
// 2000), BENCH_MONGO_LIST_CALLS (default 200), BENCH_ONLY=postgres|mongo.

import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { homedir, loadavg } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { MongoClient } from "mongodb";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createLogger } from "../src/shared/logger.ts";
import { loadConfig } from "../src/config.ts";
import { openStores } from "../src/stores/stores.ts";
import { createAuthModule } from "../src/auth/module.ts";
import { createMetrics } from "../src/server/metrics.ts";
import { authInterceptor, edgeInterceptor } from "../src/server/interceptors.ts";
import { HealthState, registerHealth } from "../src/server/health.ts";
import { registerReflection } from "../src/server/reflection.ts";
import { startHttpServer } from "../src/server/http.ts";
import { SqlConversationStore } from "../src/conversations/sql-store.ts";
import { SqlMessageStore } from "../src/messages/sql-store.ts";
import { RecordingEventSink } from "../src/events/events.ts";
import { MongoMessageStore } from "../src/messages/mongo-store.ts";
import { MessageService as Messages } from "../src/messages/service.ts";
import { messageHandler } from "../src/messages/handler.ts";
import type { SqlDatabase } from "../src/stores/sql/sql.ts";
import type { MessageStore } from "../src/messages/store.ts";
import { ConversationService, ConversationType, file_chat_v1_conversation } from "../gen/chat/v1/conversation_pb.js";
import { MessageService, file_chat_v1_message } from "../gen/chat/v1/message_pb.js";
import { Health, file_grpc_health_v1_health } from "../gen/grpc/health/v1/health_pb.js";
import * as reflectionV1 from "../gen/grpc/reflection/v1/reflection_pb.js";
import { provisionBackends, startTestServer, type TestServer } from "../test/support/server.ts";
import { bearer, transportFor } from "../test/support/clients.ts";
import { registerUser } from "../test/support/users.ts";

const GHZ = process.env.GHZ ?? join(homedir(), "go/bin/ghz");
const DURATION = process.env.BENCH_DURATION ?? "10s";
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 50);
const LIST_SIZE = Number(process.env.BENCH_LIST_SIZE ?? 1_000_000);
const MONGO_LIST_SIZE = Number(process.env.BENCH_MONGO_LIST_SIZE ?? LIST_SIZE);
const LIST_CALLS = Number(process.env.BENCH_LIST_CALLS ?? 2000);
const MONGO_LIST_CALLS = Number(process.env.BENCH_MONGO_LIST_CALLS ?? 200);
const ONLY = process.env.BENCH_ONLY ?? "";
const SPREAD = 8;

if (!process.env.TEST_DATABASE_URL) {
  console.error("set TEST_DATABASE_URL (Postgres); TEST_MONGO_URL adds the Mongo adapter");
  process.exit(2);
}

interface GhzReport {
  count: number;
  total: number; // ns
  rps: number;
  average: number;
  latencyDistribution: { percentage: number; latency: number }[] | null;
  statusCodeDistribution: Record<string, number>;
  errorDistribution?: Record<string, number> | null;
}

interface Row {
  variant: string;
  scenario: string;
  calls: number;
  rps: number | null;
  p50: number;
  p99: number;
  errors: number;
}

const rows: Row[] = [];
const ms = (ns: number) => ns / 1e6;
const pct = (r: GhzReport, p: number) => ms(r.latencyDistribution?.find((d) => d.percentage === p)?.latency ?? NaN);
const errorsOf = (r: GhzReport) => Object.entries(r.statusCodeDistribution ?? {}).reduce((n, [code, c]) => (code === "OK" ? n : n + c), 0);

function ghz(args: string[]): Promise<GhzReport> {
  return new Promise((resolve, reject) => {
    // In-flight calls at the end of a timed run are left out, not counted as errors.
    const child = spawn(GHZ, ["--insecure", "-O", "json", "--duration-stop", "ignore", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.on("error", reject);
    // "close", not "exit": the JSON (with every call's details) can still be in the pipe at exit.
    child.on("close", (code) => {
      try {
        resolve(JSON.parse(out) as GhzReport);
      } catch {
        // A run where nothing completed can end without a report: record it as such.
        console.log(`  ghz exited ${code} without a report: ${(err || out).trim().slice(0, 300)}`);
        resolve({ count: 0, total: 0, rps: 0, average: 0, latencyDistribution: null, statusCodeDistribution: {}, errorDistribution: null });
      }
    });
  });
}

function record(variant: string, scenario: string, reports: GhzReport[], withRps: boolean): void {
  const calls = reports.reduce((n, r) => n + r.count, 0);
  // Several parallel ghz runs: throughput adds up; latencies are call-weighted.
  const rps = withRps ? reports.reduce((n, r) => n + r.rps, 0) : null;
  const measured = reports.filter((r) => r.count > 0 && Number.isFinite(pct(r, 50)));
  const weighted = (p: number) =>
    measured.reduce((n, r) => n + pct(r, p) * r.count, 0) /
    Math.max(
      1,
      measured.reduce((n, r) => n + r.count, 0),
    );
  const row = { variant, scenario, calls, rps, p50: weighted(50), p99: weighted(99), errors: reports.reduce((n, r) => n + errorsOf(r), 0) };
  rows.push(row);
  const errs = reports.flatMap((r) => Object.keys(r.errorDistribution ?? {}));
  console.log(
    `${variant.padEnd(9)} ${scenario.padEnd(44)} ${String(calls).padStart(7)} calls ${rps === null ? "" : `${rps.toFixed(0).padStart(6)} rps `}p50 ${row.p50.toFixed(2)} ms p99 ${row.p99.toFixed(2)} ms${row.errors ? ` ERRORS ${row.errors} ${errs.slice(0, 2).join("; ")}` : ""}`,
  );
}

async function runVariant(variant: "postgres" | "mongo"): Promise<void> {
  const backends = await provisionBackends({ sql: "postgres", mongo: variant === "mongo" });
  let app: TestServer | null = null;
  let moduleOnly: ModuleServer | null = null;
  try {
    app = await startTestServer(backends.env, { LOG_LEVEL: "warn", ACCESS_TOKEN_TTL_SEC: "3600", REGISTER_MAX_PER_ADDRESS: "1000" });
    const me = await registerUser(app.baseUrl);
    const peer = await registerUser(app.baseUrl);
    const conversations = createClient(ConversationService, transportFor("connect", app.baseUrl, [bearer(me.accessToken)]));
    const group = async () =>
      (await conversations.createConversation({ type: ConversationType.GROUP, title: "", memberIds: [peer.user.id] })).conversation!.id;
    // Every conversation up front, while nothing else runs.
    const convs = {
      app: await Promise.all(Array.from({ length: SPREAD + 2 }, () => group())),
      module: await Promise.all(Array.from({ length: SPREAD + 2 }, () => group())),
    };
    const big = await group();
    const auth = JSON.stringify({ authorization: `Bearer ${me.accessToken}` });
    const sendData = (conversationId: string) =>
      JSON.stringify({
        conversation_id: conversationId,
        client_message_id: "{{newUUID}}",
        content: "benchmark message {{.RequestNumber}} with some text in it",
      });

    const throughput = async (stack: "app" | "module", address: string) => {
      const [warm, hot, ...spread] = convs[stack];
      const echo = () => ghz(["--call", "grpc.health.v1.Health/Check", "-d", "{}", "-c", String(CONCURRENCY), "-z", DURATION, address]);
      const send = (conversationId: string, c: number) =>
        ghz(["--call", "chat.v1.MessageService/SendMessage", "-m", auth, "-d", sendData(conversationId), "-c", String(c), "-z", DURATION, address]);
      // Warm-up (JIT, pools, indexes), not recorded.
      await ghz(["--call", "grpc.health.v1.Health/Check", "-d", "{}", "-c", "10", "-z", "2s", address]);
      await ghz(["--call", "chat.v1.MessageService/SendMessage", "-m", auth, "-d", sendData(warm), "-c", "10", "-z", "2s", address]);

      record(variant, `${stack}: echo Health/Check c=${CONCURRENCY}`, [await echo()], true);
      record(variant, `${stack}: SendMessage, 1 conversation c=${CONCURRENCY}`, [await send(hot, CONCURRENCY)], true);
      const per = Math.max(1, Math.round(CONCURRENCY / SPREAD));
      record(variant, `${stack}: SendMessage, ${SPREAD} conversations c=${per * SPREAD}`, await Promise.all(spread.map((c) => send(c, per))), true);
      record(variant, `${stack}: echo Health/Check c=${CONCURRENCY} (again)`, [await echo()], true);
    };
    await throughput("app", app.address);
    // The app's background jobs (realtime repair, presence sweeps) must not run during the rest.
    await app.close();
    app = null;
    moduleOnly = await startModuleServer(backends.env);
    await throughput("module", moduleOnly.address);

    // ListMessages on one big conversation, on the module-only server (same stack, nothing else running).
    const size = variant === "mongo" ? MONGO_LIST_SIZE : LIST_SIZE;
    const calls = variant === "mongo" ? MONGO_LIST_CALLS : LIST_CALLS;
    const t0 = performance.now();
    await bulkLoad(moduleOnly.sql, variant, big, me.user.id, size, backends.env.MONGO_URL);
    console.log(`${variant.padEnd(9)} bulk-loaded ${size} messages in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const target = moduleOnly.address;
    const list = (data: object) =>
      ghz([
        "--call",
        "chat.v1.MessageService/ListMessages",
        "-m",
        auth,
        "-d",
        JSON.stringify(data),
        "-c",
        "1",
        "-n",
        String(calls),
        "-t",
        "600s",
        target,
      ]);
    const label = size.toLocaleString("en-US");
    // The floor for one call at a time on this stack: the bare echo, c=1.
    record(
      variant,
      "echo Health/Check c=1",
      [await ghz(["--call", "grpc.health.v1.Health/Check", "-d", "{}", "-c", "1", "-n", String(calls), target])],
      false,
    );
    record(variant, `ListMessages newest 50 of ${label} c=1`, [await list({ conversation_id: big, limit: 50 })], false);
    record(
      variant,
      `ListMessages 50 before a random seq of ${label} c=1`,
      [await list({ conversation_id: big, limit: 50, before_seq: `{{randomInt 2 ${size}}}` })],
      false,
    );
    record(
      variant,
      `ListMessages 50 after a random seq of ${label} c=1`,
      [await list({ conversation_id: big, limit: 50, after_seq: `{{randomInt 1 ${size}}}` })],
      false,
    );
    // The store's query alone, in this process (no RPC, auth or membership check).
    const took: number[] = [];
    for (let i = 0; i < calls; i++) {
      const t = performance.now();
      await moduleOnly.store.list({
        conversationId: big,
        direction: "before",
        seq: 2 + Math.floor(Math.random() * (size - 1)),
        limit: 50,
        parentMessageId: null,
      });
      took.push(performance.now() - t);
    }
    took.sort((a, b) => a - b);
    const at = (p: number) => took[Math.min(took.length - 1, Math.floor((p / 100) * took.length))];
    rows.push({
      variant,
      scenario: `store.list 50 before a random seq of ${label} (in process)`,
      calls,
      rps: null,
      p50: at(50),
      p99: at(99),
      errors: 0,
    });
    console.log(`${variant.padEnd(9)} store.list in process: p50 ${at(50).toFixed(2)} ms p99 ${at(99).toFixed(2)} ms`);
  } finally {
    await app?.close();
    await moduleOnly?.close();
    await backends.cleanup();
  }
}

interface ModuleServer {
  address: string;
  sql: SqlDatabase;
  store: MessageStore;
  close(): Promise<void>;
}

/**
 * The bench-only server: the same stack as the app (startHttpServer,
 * connectNodeAdapter, edge + auth interceptors with the real token verifier,
 * the real stores) but only Health, reflection and MessageService, with a
 * no-op EventSink. Shares the provisioned stores with the app.
 */
async function startModuleServer(env: Record<string, string>): Promise<ModuleServer> {
  const config = loadConfig({ ...env, LOG_LEVEL: "warn", ACCESS_TOKEN_TTL_SEC: "3600", NODE_ID: "bench-module" });
  const logger = createLogger(config.logLevel, config.nodeId);
  const stores = await openStores(config, logger);
  const auth = await createAuthModule(config, stores, logger);
  const store: MessageStore = stores.mongo ? new MongoMessageStore(stores.mongo, stores.sql) : new SqlMessageStore(stores.sql);
  await store.init();
  const messages = new Messages({ store, members: new SqlConversationStore(stores.sql), events: new RecordingEventSink(), limits: config.limits });
  const health = new HealthState([MessageService.typeName], () => stores.ping());
  const names = [MessageService.typeName, Health.typeName, reflectionV1.ServerReflection.typeName];
  const handler = connectNodeAdapter({
    routes: (router) => {
      registerHealth(router, health);
      registerReflection(
        router,
        [file_chat_v1_message, file_chat_v1_conversation, file_grpc_health_v1_health, reflectionV1.file_grpc_reflection_v1_reflection],
        names,
      );
      router.service(MessageService, messageHandler(messages));
    },
    interceptors: [
      edgeInterceptor(logger, createMetrics()),
      authInterceptor(auth.service, new Set([Health.typeName, reflectionV1.ServerReflection.typeName])),
    ],
    readMaxBytes: config.maxMessageBytes,
  });
  const http = await startHttpServer({ host: "127.0.0.1", port: 0, tls: null, maxConcurrentStreams: config.maxConcurrentStreams }, handler);
  return {
    address: `127.0.0.1:${http.port}`,
    sql: stores.sql,
    store,
    async close() {
      http.stopAccepting();
      http.destroy();
      await auth.close();
      await stores.close();
    },
  };
}

/** `n` messages straight into the store the server uses, then the conversation row to match. */
async function bulkLoad(
  sql: SqlDatabase,
  variant: "postgres" | "mongo",
  conversationId: string,
  senderId: string,
  n: number,
  mongoUrl?: string,
): Promise<void> {
  if (variant === "postgres") {
    const batch = 250_000;
    for (let from = 1; from <= n; from += batch) {
      const to = Math.min(n, from + batch - 1);
      await sql.query(
        `INSERT INTO messages (id, conversation_id, seq, sender_id, client_message_id, content, created_at)
         SELECT gen_random_uuid(), $1, g, $2, 'bulk-' || g, 'bulk message number ' || g || ' about nothing in particular',
                now() - ($4 - g) * interval '10 milliseconds'
           FROM generate_series($3::bigint, $5::bigint) AS g`,
        [conversationId, senderId, from, n, to],
      );
    }
    await sql.query("ANALYZE messages");
  } else {
    const client = new MongoClient(mongoUrl!);
    await client.connect();
    try {
      const coll = client.db().collection("messages");
      const now = Date.now();
      const batch = 10_000;
      for (let from = 1; from <= n; from += batch) {
        const docs = [];
        for (let seq = from; seq < Math.min(n + 1, from + batch); seq++) {
          docs.push({
            _id: randomUUID() as never,
            conversationId,
            seq,
            senderId,
            clientMessageId: `bulk-${seq}`,
            content: `bulk message number ${seq} about nothing in particular`,
            parentMessageId: null,
            mentions: [],
            attachments: [],
            replyCount: 0,
            lastReplyAt: null,
            createdAt: new Date(now - (n - seq) * 10),
            editedAt: null,
            deletedAt: null,
          });
        }
        await coll.insertMany(docs, { ordered: false });
        if (from % 200_000 === 1) process.stdout.write(`  loaded ${from - 1 + docs.length}\n`);
      }
    } finally {
      await client.close();
    }
  }
  await sql.query("UPDATE conversations SET last_seq = $2, last_message_at = now() WHERE id = $1", [conversationId, n]);
}

const variants: ("postgres" | "mongo")[] = [];
if (ONLY !== "mongo") variants.push("postgres");
if (ONLY !== "postgres" && process.env.TEST_MONGO_URL) variants.push("mongo");
// The machine is shared: say how busy it was.
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");
console.log(`load average before: ${load()}`);
for (const v of variants) {
  await runVariant(v);
  console.log(`load average after ${v}: ${load()}`);
}

console.log("\n| store | scenario | calls | throughput (rps) | p50 (ms) | p99 (ms) | errors |\n|---|---|---:|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(
    `| ${r.variant} | ${r.scenario} | ${r.calls} | ${r.rps === null ? "" : r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.errors} |`,
  );
}
for (const v of variants) {
  for (const stack of ["app", "module"]) {
    const echoes = rows.filter((r) => r.variant === v && r.scenario.startsWith(`${stack}: echo`));
    const echoRps = echoes.reduce((n, r) => n + (r.rps ?? 0), 0) / Math.max(1, echoes.length);
    for (const r of rows.filter((x) => x.variant === v && x.scenario.startsWith(`${stack}: SendMessage`))) {
      console.log(`${v} ${r.scenario}: ${((r.rps ?? 0) / echoRps).toFixed(2)}x the echo on the same stack (mean of its two echo runs)`);
    }
  }
}
process.exit(0);
