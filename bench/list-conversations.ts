// ListConversations benchmark: users in 100, 1,000 and 10,000 conversations
// (with unread counts), first page (page_size 50) and a keyset page, p50/p99 over many
// calls through the real server with @grpc/grpc-js, on Postgres and on the
// embedded default (PGlite). Also counts the SQL statements each call runs
// (no N+1) and prints EXPLAIN ANALYZE of the exact statement a call sends.
//
//   node bench/list-conversations.ts
//
// Settings (environment): BENCH_STORES (postgres,pglite), BENCH_WARMUP (200 calls per scenario), BENCH_CALLS (measured calls per scenario, default
// 1000), BENCH_SIZES (memberships of the measured users, default 100,1000,10000), BENCH_DATABASE_URL (default TEST_DATABASE_URL or
// postgres://postgres@127.0.0.1:5432/postgres), BENCH_NOISE_USERS (other
// users with 1,000 conversations each, so the tables are not tiny; default 20).
//
// The server runs in this process (so its SqlDatabase can be wrapped to count
// queries); the client's own work is therefore inside the measured latency.

import { randomBytes, randomUUID } from "node:crypto";
import { availableParallelism, loadavg } from "node:os";
import pg from "pg";
import { ConversationService } from "../gen/chat/v1/conversation_pb.js";
import { AuthService } from "../gen/chat/v1/auth_pb.js";
import { GrpcJsClient } from "../test/support/clients.ts";
import { provisionBackends, startTestServer } from "../test/support/server.ts";
import { registerUser } from "../test/support/users.ts";
import type { SqlDatabase } from "../src/stores/sql/sql.ts";

const CALLS = Number(process.env.BENCH_CALLS ?? 1000);
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const NOISE_USERS = Number(process.env.BENCH_NOISE_USERS ?? 20);
const NOISE_PER_USER = 1000;
const WARMUP = Number(process.env.BENCH_WARMUP ?? 200);
/** Which stores to run: "postgres,pglite" (default). */
const STORES = (process.env.BENCH_STORES ?? "postgres,pglite").split(",");
/** Memberships of the measured users. */
const SIZES = (process.env.BENCH_SIZES ?? "100,1000,10000").split(",").map(Number);

interface Result {
  setup: string;
  scenario: string;
  calls: number;
  p50: number;
  p99: number;
  max: number;
  queriesPerCall: number;
  /** CPU time this process (server + client) spent per call: less sensitive to a busy machine than wall time. */
  cpuMsPerCall: number;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/**
 * `count` conversations for each measured user (DMs, groups, channels; unread
 * state; ~5% archived; 1% channels with more members than the fan-out limit,
 * read through the conversation row; the latest message of each, for previews)
 * plus `noise` other users with 1,000 each, straight in SQL.
 */
async function seed(sql: SqlDatabase, measured: { userId: string; count: number }[], noise: number): Promise<void> {
  const noiseIds = Array.from({ length: noise }, () => randomUUID());
  const owners = [...measured.map((m) => m.userId), ...noiseIds];
  const counts = new Map<string, number>(measured.map((m) => [m.userId, m.count]));
  // Users: the noise owners plus one peer per conversation, so DMs have distinct pairs.
  await sql.query(
    `INSERT INTO users (id, email, email_normalized, username, display_name, password_hash)
     SELECT id, 'b' || md5(id::text) || '@example.test', 'b' || md5(id::text) || '@example.test', 'b' || substr(md5(id::text), 1, 20), 'bench', 'x'
     FROM unnest($1::uuid[]) AS id`,
    [noiseIds],
  );
  for (const owner of owners) {
    const count = counts.get(owner) ?? NOISE_PER_USER;
    await sql.transaction(async (tx) => {
      await tx.query(
        `CREATE TEMP TABLE seed ON COMMIT DROP AS
         SELECT g AS i, gen_random_uuid() AS conv, gen_random_uuid() AS peer,
                (CASE WHEN g % 5 = 0 THEN 'direct' WHEN g % 5 = 1 THEN 'channel' ELSE 'group' END) AS type,
                (random() * 500)::int AS last_seq
         FROM generate_series(1, ${count}) AS g`,
      );
      await tx.query(
        `INSERT INTO users (id, email, email_normalized, username, display_name, password_hash)
         SELECT peer, 'p' || md5(peer::text) || '@example.test', 'p' || md5(peer::text) || '@example.test', 'p' || substr(md5(peer::text), 1, 20), 'peer', 'x' FROM seed`,
      );
      await tx.query(
        `INSERT INTO conversations (id, type, title, visibility, owner_id, member_count, last_seq, last_message_at, created_at, direct_key)
         SELECT conv, type,
                CASE WHEN type = 'direct' THEN '' WHEN type = 'channel' THEN 'c-' || replace(conv::text, '-', '') ELSE 'group ' || i END,
                CASE WHEN type = 'channel' AND i % 2 = 0 THEN 'public' ELSE 'private' END,
                CASE WHEN type = 'direct' THEN NULL ELSE $1::uuid END,
                CASE WHEN i % 100 = 1 THEN 500 ELSE 2 END, last_seq,
                now() - random() * interval '30 days', now() - interval '31 days',
                CASE WHEN type = 'direct' THEN least($1::text, peer::text) || ':' || greatest($1::text, peer::text) END
         FROM seed`,
        [owner],
      );
      await tx.query(
        `INSERT INTO conversation_members (conversation_id, user_id, role, last_read_seq, delivered_seq, archived, muted_until)
         SELECT conv, $1::uuid, CASE WHEN type = 'direct' THEN 'member' ELSE 'owner' END,
                greatest(0, last_seq - (random() * 20)::int), last_seq, i % 20 = 0,
                CASE WHEN i % 7 = 0 THEN now() + interval '1 day' END
         FROM seed
         UNION ALL
         SELECT conv, peer, 'member', last_seq, last_seq, false, NULL FROM seed`,
        [owner],
      );
      // The latest message of each conversation, so the previews are real (relational message store).
      await tx.query(
        `INSERT INTO messages (id, conversation_id, seq, sender_id, client_message_id, content, created_at)
         SELECT gen_random_uuid(), conv, last_seq, peer, 'seed-' || i, 'the latest news in conversation ' || i, now() - interval '1 minute'
         FROM seed WHERE last_seq > 0`,
      );
    });
  }
  await sql.query("ANALYZE conversations");
  await sql.query("ANALYZE conversation_members");
}

async function benchSetup(setup: string, env: Record<string, string>): Promise<{ results: Result[]; plan: string }> {
  const server = await startTestServer(env, { REGISTER_MAX_PER_ADDRESS: "1000000", ACCESS_TOKEN_TTL_SEC: "86400" });
  const sql = server.app.stores.sql;
  const users: { count: number; reg: Awaited<ReturnType<typeof registerUser>> }[] = [];
  for (const count of SIZES) users.push({ count, reg: await registerUser(server.baseUrl) });
  const t0 = performance.now();
  await seed(
    sql,
    users.map((u) => ({ userId: u.reg.user.id, count: u.count })),
    NOISE_USERS,
  );
  const seeded = await sql.query<{ c: number; m: number }>(
    "SELECT (SELECT count(*) FROM conversations)::int AS c, (SELECT count(*) FROM conversation_members)::int AS m",
  );
  console.error(
    `[${setup}] seeded ${seeded.rows[0].c} conversations, ${seeded.rows[0].m} memberships in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );

  // Count every statement the running app sends through its SqlDatabase.
  let queries = 0;
  let statements: { text: string; params: unknown[] }[] = [];
  const original = sql.query.bind(sql);
  (sql as { query: SqlDatabase["query"] }).query = ((text: string, params?: unknown[]) => {
    queries++;
    statements.push({ text, params: params ?? [] });
    if (statements.length > 10) statements.shift();
    return original(text, params);
  }) as SqlDatabase["query"];

  const client = new GrpcJsClient(server.address);
  const list = (token: string, pageToken = "") => client.unary(ConversationService.method.listConversations, { pageSize: 50, pageToken }, { token });
  const scenarios: [string, () => Promise<unknown>][] = [];
  // The floor under the same conditions: an authenticated RPC doing one row read (first and last, to see drift).
  const getMe = () => client.unary(AuthService.method.getMe, {}, { token: users[0].reg.accessToken });
  scenarios.push(["baseline: AuthService/GetMe", getMe]);
  for (const u of users) {
    const first = await list(u.reg.accessToken);
    if (first.conversations.length !== 50 || !first.nextPageToken) throw new Error("expected a full first page");
    if (!first.conversations.some((c) => c.unreadCount > 0)) throw new Error("expected unread counts");
    if (!first.conversations.some((c) => c.lastMessage)) throw new Error("expected message previews");
    const secondToken = first.nextPageToken;
    const n = u.count.toLocaleString("en-US");
    scenarios.push([`first page (50 of ${n})`, () => list(u.reg.accessToken)]);
    scenarios.push([`second page (50 of ${n}, keyset token)`, () => list(u.reg.accessToken, secondToken)]);
  }
  scenarios.push(["baseline again: AuthService/GetMe", getMe]);

  const results: Result[] = [];
  for (const [scenario, call] of scenarios) {
    for (let i = 0; i < WARMUP; i++) await call(); // warm-up: JIT, plan cache, buffers
    const latencies: number[] = [];
    const before = queries;
    const cpuBefore = process.cpuUsage();
    for (let i = 0; i < CALLS; i++) {
      const s = performance.now();
      await call();
      latencies.push(performance.now() - s);
    }
    const cpu = process.cpuUsage(cpuBefore);
    const cpuMsPerCall = (cpu.user + cpu.system) / 1000 / CALLS;
    const perCall = (queries - before) / CALLS;
    latencies.sort((a, b) => a - b);
    results.push({
      setup,
      scenario,
      calls: CALLS,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies[latencies.length - 1],
      queriesPerCall: perCall,
      cpuMsPerCall,
    });
  }

  // EXPLAIN exactly the statements (and parameters) one first-page call sends:
  // the conversation list, and the batched last-message previews (message module).
  statements = [];
  await list(users[users.length - 1].reg.accessToken);
  (sql as { query: SqlDatabase["query"] }).query = original;
  const plans: string[] = [];
  for (const st of statements) {
    const { rows } = await sql.query<{ "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${st.text}`, st.params);
    plans.push(`${st.text.replace(/\s+/g, " ").trim().slice(0, 160)}...\n${rows.map((r) => r["QUERY PLAN"]).join("\n")}`);
  }
  const plan = plans.join("\n\n");
  client.close();
  await server.close();
  return { results, plan };
}

async function main(): Promise<void> {
  const out: { results: Result[]; plan: string; setup: string }[] = [];

  // Postgres: a fresh schema, dropped afterwards.
  if (STORES.includes("postgres")) await benchPostgres(out);
  // The embedded default.
  if (STORES.includes("pglite")) {
    const embedded = await provisionBackends({ sql: "pglite" });
    try {
      out.push({ setup: "pglite (embedded)", ...(await benchSetup("pglite (embedded)", embedded.env)) });
    } finally {
      await embedded.cleanup();
    }
  }
  report(out);
}

async function benchPostgres(out: { results: Result[]; plan: string; setup: string }[]): Promise<void> {
  const schema = `bench_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  try {
    const url = new URL(DATABASE_URL);
    url.searchParams.set("options", `-c search_path=${schema}`);
    const base = await provisionBackends({ sql: "pglite" }); // for its data dir and server env
    try {
      out.push({ setup: "postgres", ...(await benchSetup("postgres", { ...base.env, DATABASE_URL: url.toString() })) });
    } finally {
      await base.cleanup();
    }
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  }
}

function report(out: { results: Result[]; plan: string; setup: string }[]): void {
  console.log(
    `\nListConversations, users in ${SIZES.join(" / ")} conversations (+${NOISE_USERS} other users with 1,000 each), page_size 50, ${CALLS} sequential calls per row, grpc-js client, server in-process\n`,
  );
  console.log(
    `load average (1/5/15 min) at the end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" / ")} on ${availableParallelism()} cores\n`,
  );
  console.log("| store | scenario | calls | p50 ms | p99 ms | max ms | node CPU ms/call | SQL statements per call |");
  console.log("|---|---|---:|---:|---:|---:|---:|---:|");
  for (const o of out) {
    for (const r of o.results) {
      console.log(
        `| ${r.setup} | ${r.scenario} | ${r.calls} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.max.toFixed(2)} | ${r.cpuMsPerCall.toFixed(2)} | ${r.queriesPerCall.toFixed(2)} |`,
      );
    }
  }
  for (const o of out) {
    const floor = o.results.find((r) => r.scenario.startsWith("baseline:"))!.p50;
    const firstOf = (n: number) => o.results.find((r) => r.scenario === `first page (50 of ${n.toLocaleString("en-US")})`)?.p50;
    const lo = firstOf(SIZES[0]);
    const hi = firstOf(SIZES[SIZES.length - 1]);
    if (lo && hi)
      console.log(
        `\n${o.setup}: first page p50 at ${SIZES[SIZES.length - 1]} / at ${SIZES[0]} = ${(hi / lo).toFixed(2)}x; above the GetMe floor: ${(hi - floor).toFixed(2)} / ${(lo - floor).toFixed(2)} ms`,
      );
  }
  for (const o of out) console.log(`\nEXPLAIN ANALYZE (${o.setup}, the ${SIZES[SIZES.length - 1]}-membership user's first page):\n${o.plan}`);
}

await main();
