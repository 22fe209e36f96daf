// SendMessage cost after issue 12 (one durable write per change), one command:
//
//   TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres TEST_REDIS_URL=redis://127.0.0.1:6379 node bench/outbox.ts
//
// 1. Statements and commits per SendMessage, counted by a wrapped client (every
//    query that goes through node-postgres' Client in this process: the app runs
//    in-process here), at 1 and 8 concurrent senders in one conversation. A
//    statement outside BEGIN/COMMIT is its own (implicit) transaction; "write
//    commits" counts the transactions that wrote (explicit COMMITs plus
//    standalone statements that are not plain SELECTs).
// 2. SendMessage sends/s through the real server (`node src/main.ts`, a child
//    process; Connect over HTTP/2, BENCH_SENDERS loops) against pgbench running
//    the minimal equivalent send on the same tables (lock the conversation,
//    insert with seq = last_seq + 1, bump last_seq: one statement), back to
//    back, at 8 and 32 senders on 1, 10 and 100 conversations; the server's CPU
//    per send; the ratio per cell.
//
// Settings: BENCH_SECONDS per cell (default 4), BENCH_COUNT_SENDS (phase 1,
// default 200), BENCH_ONLY=count|throughput.

import { execFileSync } from "node:child_process";
import { writeFileSync, mkdtempSync } from "node:fs";
import { postgresCpuSeconds, processCpuSeconds } from "./proc-cpu.ts";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { loadavg, tmpdir, cpus } from "node:os";
import pg from "pg";
import { ConversationService, ConversationType } from "../gen/chat/v1/conversation_pb.js";
import { MessageService } from "../gen/chat/v1/message_pb.js";
import { provisionBackends, spawnServer, startTestServer } from "../test/support/server.ts";
import { connectClient, transportFor } from "../test/support/clients.ts";
import { bearer } from "../test/support/clients.ts";
import { registerUser } from "../test/support/users.ts";
import { createClient, type Client } from "@connectrpc/connect";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const COUNT_SENDS = Number(process.env.BENCH_COUNT_SENDS ?? 200);
const ONLY = process.env.BENCH_ONLY ?? "";
const log = (s: string) => console.log(s);
const load = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(" ");

if (!process.env.TEST_DATABASE_URL) throw new Error("set TEST_DATABASE_URL");

// ---- the wrapped client ----------------------------------------------------------

const counts = { statements: 0, begins: 0, commits: 0, standaloneWrites: 0, standaloneReads: 0 };
let counting = false;
const inTx = new WeakSet<object>();
const origQuery = pg.Client.prototype.query as (...a: unknown[]) => unknown;
pg.Client.prototype.query = function (this: object, ...args: unknown[]) {
  if (counting) {
    const text = typeof args[0] === "string" ? args[0] : ((args[0] as { text?: string })?.text ?? "");
    const t = text.trim().toUpperCase();
    counts.statements++;
    if (process.env.BENCH_TRACE) console.log("SQL", text.replace(/\s+/g, " ").slice(0, 90));
    if (t.startsWith("BEGIN")) {
      counts.begins++;
      inTx.add(this);
    } else if (t.startsWith("COMMIT") || t.startsWith("ROLLBACK")) {
      if (t.startsWith("COMMIT")) counts.commits++;
      inTx.delete(this);
    } else if (!inTx.has(this)) {
      if (t.startsWith("SELECT")) counts.standaloneReads++;
      else counts.standaloneWrites++;
    }
  }
  return origQuery.apply(this, args);
} as typeof pg.Client.prototype.query;

type Api = Client<typeof MessageService>;

async function setup(baseUrl: string, users: number, conversations: number) {
  const people = [];
  for (let i = 0; i < users; i++) people.push(await registerUser(baseUrl));
  const owner = connectClient(ConversationService, "connect", baseUrl, people[0].accessToken);
  const convs: string[] = [];
  for (let i = 0; i < conversations; i++) {
    const res = await owner.createConversation({ type: ConversationType.GROUP, title: `b${i}`, memberIds: people.slice(1).map((p) => p.user.id) });
    convs.push(res.conversation!.id);
  }
  const apis: Api[] = people.map((p) => createClient(MessageService, transportFor("connect", baseUrl, [bearer(p.accessToken)], "2")));
  return { people, convs, apis };
}

/** `senders` loops sending until `seconds` pass (or `total` sends); returns sends and elapsed seconds. */
async function drive(apis: Api[], convs: string[], senders: number, opts: { seconds?: number; total?: number }) {
  let sent = 0;
  let errors = 0;
  let issued = 0;
  const t0 = performance.now();
  const deadline = t0 + (opts.seconds ?? 1e9) * 1000;
  await Promise.all(
    Array.from({ length: senders }, async (_, i) => {
      const api = apis[i % apis.length];
      while (performance.now() < deadline && (opts.total === undefined || issued < opts.total)) {
        issued++;
        try {
          await api.sendMessage({ conversationId: convs[Math.floor(Math.random() * convs.length)], clientMessageId: randomUUID(), content: "bench" });
          sent++;
        } catch {
          errors++;
        }
      }
    }),
  );
  return { sent, errors, seconds: (performance.now() - t0) / 1000 };
}

async function phaseCount(): Promise<void> {
  const backends = await provisionBackends({ sql: "postgres", redis: Boolean(process.env.TEST_REDIS_URL) });
  const server = await startTestServer(backends.env, { LOG_LEVEL: "warn", ACCESS_TOKEN_TTL_SEC: "3600" });
  try {
    const { apis, convs } = await setup(server.baseUrl, 8, 1);
    await drive(apis, convs, 1, { total: 20 }); // warm-up
    log(`\n## Statements and commits per SendMessage (wrapped node-postgres client, in-process server) — load ${load()}\n`);
    log(
      "| concurrent senders | sends | statements/send | explicit transactions/send | standalone writes/send | standalone reads/send | write commits/send |",
    );
    log("|---:|---:|---:|---:|---:|---:|---:|");
    for (const senders of [1, 8]) {
      Object.assign(counts, { statements: 0, begins: 0, commits: 0, standaloneWrites: 0, standaloneReads: 0 });
      counting = true;
      const r = await drive(apis, convs, senders, { total: COUNT_SENDS });
      await new Promise((res) => setTimeout(res, 300)); // publications after the replies (they issue no SQL) settle
      counting = false;
      const per = (n: number) => (n / r.sent).toFixed(2);
      log(
        `| ${senders} | ${r.sent} | ${per(counts.statements)} | ${per(counts.begins)} | ${per(counts.standaloneWrites)} | ${per(counts.standaloneReads)} | ${per(counts.commits + counts.standaloneWrites)} |`,
      );
    }
  } finally {
    await server.close();
    await backends.cleanup();
  }
}

async function phaseThroughput(): Promise<void> {
  const backends = await provisionBackends({ sql: "postgres", redis: Boolean(process.env.TEST_REDIS_URL) });
  const server = await spawnServer(backends.env, { ACCESS_TOKEN_TTL_SEC: "3600" });
  const url = backends.env.DATABASE_URL;
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const { apis, convs, people } = await setup(server.baseUrl, 8, 100);
    await db.query("CREATE TABLE bench_convs (n int PRIMARY KEY, id uuid NOT NULL)");
    await db.query("INSERT INTO bench_convs SELECT i, c FROM unnest($1::uuid[]) WITH ORDINALITY AS x(c, i)", [convs]);
    const dir = mkdtempSync(join(tmpdir(), "bench-outbox-"));
    // The minimal send, and the same with last_message_at set as the app's send does: that fires
    // the member-activity trigger (migration 0007: each member's activity_at, for ListConversations),
    // so the pair measures what that copy costs the database.
    const sendSql = (setActivity: boolean) => `\\set k random(1, :nconv)
WITH l AS (SELECT c.id, c.last_seq FROM conversations c WHERE c.id = (SELECT id FROM bench_convs WHERE n = :k) FOR NO KEY UPDATE),
m AS (INSERT INTO messages (id, conversation_id, seq, sender_id, client_message_id, content, created_at)
      SELECT gen_random_uuid(), l.id, l.last_seq + 1, '${people[0].user.id}', gen_random_uuid()::text, 'bench', now() FROM l
      RETURNING conversation_id, seq)
UPDATE conversations SET last_seq = m.seq${setActivity ? ", last_message_at = now()" : ""} FROM m WHERE conversations.id = m.conversation_id;
`;
    const script = join(dir, "send.sql");
    writeFileSync(script, sendSql(false));
    const scriptActivity = join(dir, "send-activity.sql");
    writeFileSync(scriptActivity, sendSql(true));
    await drive(apis, convs, 8, { seconds: 1 }); // warm-up
    log(`\n## SendMessage vs pgbench's minimal send (same tables, back to back, ${SECONDS} s each) — ${cpus().length} cores, load ${load()}\n`);
    log(
      "| senders | conversations | SendMessage sends/s | server CPU ms/send | Postgres CPU ms/send (app) | pgbench sends/s | Postgres CPU ms/send (pgbench) | ratio | pgbench + activity copy sends/s | load (1 min) |",
    );
    log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (const senders of [8, 32]) {
      for (const k of [1, 10, 100]) {
        const cpu0 = processCpuSeconds(server.child.pid!);
        const pg0 = postgresCpuSeconds();
        const app = await drive(apis, convs.slice(0, k), senders, { seconds: SECONDS });
        const cpu = processCpuSeconds(server.child.pid!) - cpu0;
        const pgCpu = postgresCpuSeconds() - pg0;
        const appRate = app.sent / app.seconds;
        const pgbench = (file: string) => {
          const out = execFileSync(
            "pgbench",
            ["-n", "-c", String(senders), "-j", "2", "-T", String(SECONDS), "-D", `nconv=${k}`, "-f", file, url.replace(/\+/g, "%20")],
            { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
          );
          return Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? NaN);
        };
        const pgBench0 = postgresCpuSeconds();
        const tps = pgbench(script);
        const pgBenchCpu = postgresCpuSeconds() - pgBench0;
        const tpsActivity = pgbench(scriptActivity);
        log(
          `| ${senders} | ${k} | ${appRate.toFixed(0)}${app.errors ? ` (${app.errors} errors)` : ""} | ${((1000 * cpu) / Math.max(1, app.sent)).toFixed(2)} | ${((1000 * pgCpu) / Math.max(1, app.sent)).toFixed(2)} | ${tps.toFixed(0)} | ${((1000 * pgBenchCpu) / Math.max(1, tps * SECONDS)).toFixed(2)} | ${(appRate / tps).toFixed(2)} | ${tpsActivity.toFixed(0)} | ${loadavg()[0].toFixed(1)} |`,
        );
      }
    }
  } finally {
    await db.end();
    await server.stop();
    await backends.cleanup();
  }
}

log(`outbox bench: ${cpus().length} cores, load ${load()}, node ${process.version}`);
if (ONLY !== "throughput") await phaseCount();
if (ONLY !== "count") await phaseThroughput();
process.exit(0);
