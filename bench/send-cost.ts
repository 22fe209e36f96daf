// Where Postgres spends a SendMessage (issue 12), one command:
//
//   TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node bench/send-cost.ts
//
// pgbench runs the app's own send statement (SEND_SQL of
// src/messages/sql-store.ts, prepared, as the app runs it) on the app's tables
// (a fresh schema, migrated, 8 users in BENCH_CONVERSATIONS group
// conversations of 8 members, made through the app), then the same with one
// piece of its work taken away at a time, cumulatively:
//
//   0. the app's send statement parsed and planned on every call (pgbench
//      -M extended: what node-postgres does for a statement without a name);
//   1. the app's send statement, as shipped (prepared once per connection);
//   2. without the member-activity copy (trigger of migration 0007 disabled);
//   3. also without the full-text index entry (messages_search_idx dropped);
//   4. also without the outbox event row (conversation_events' insert: the
//      statement's `e` CTE answers without inserting);
//   5. also without the sender's watermark, un-archive and reply-count updates;
//   6. also without the membership checks (conversation and workspace);
//   7. pgbench's minimal send of bench/outbox.ts (lock, insert, bump).
//
// Per variant: sends/s and Postgres CPU per send (every postgres process,
// exited backends included), with BENCH_CLIENTS (8) clients for BENCH_SECONDS
// (5) each. A diagnostic: it says which part of the statement costs what, so
// the next change goes where the cost is.

import { execFileSync } from "node:child_process";
import { writeFileSync, mkdtempSync } from "node:fs";
import { postgresCpuSeconds } from "./proc-cpu.ts";
import { join } from "node:path";
import { loadavg, tmpdir, cpus } from "node:os";
import pg from "pg";
import { ConversationService, ConversationType } from "../gen/chat/v1/conversation_pb.js";
import { provisionBackends, startTestServer } from "../test/support/server.ts";
import { connectClient } from "../test/support/clients.ts";
import { registerUser } from "../test/support/users.ts";
import { SEND_SQL } from "../src/messages/sql-store.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 8);
const CONVERSATIONS = Number(process.env.BENCH_CONVERSATIONS ?? 10);
if (!process.env.TEST_DATABASE_URL) throw new Error("set TEST_DATABASE_URL");

const backends = await provisionBackends({ sql: "postgres", redis: false });
const server = await startTestServer(backends.env, { LOG_LEVEL: "warn" });
const url = backends.env.DATABASE_URL;
const db = new pg.Client({ connectionString: url });
await db.connect();
try {
  const people = [];
  for (let i = 0; i < 8; i++) people.push(await registerUser(server.baseUrl));
  const owner = connectClient(ConversationService, "connect", server.baseUrl, people[0].accessToken);
  const convs: string[] = [];
  for (let i = 0; i < CONVERSATIONS; i++) {
    const res = await owner.createConversation({ type: ConversationType.GROUP, title: `c${i}`, memberIds: people.slice(1).map((p) => p.user.id) });
    convs.push(res.conversation!.id);
  }
  await server.close();
  await db.query("CREATE TABLE bench_convs (n int PRIMARY KEY, id uuid NOT NULL, sender uuid NOT NULL)");
  await db.query("INSERT INTO bench_convs SELECT i, c, $2::uuid FROM unnest($1::uuid[]) WITH ORDINALITY AS x(c, i)", [convs, people[0].user.id]);

  // The app's statement with pgbench variables for its parameters.
  const appSend = (withEvent: boolean, withSideUpdates = true, withChecks = true) => {
    let text = SEND_SQL.replace(/\$1::uuid/g, "gen_random_uuid()")
      .replace(/\$2::uuid/g, ":conv::uuid")
      .replace(/\$3::uuid/g, ":sender::uuid")
      .replace(/\$4::text/g, "gen_random_uuid()::text")
      .replace(/\$5::text/g, "'bench message ' || :k")
      .replace(/\$6::uuid/g, "NULL::uuid")
      .replace(/\$7::uuid\[\]/g, "'{}'::uuid[]")
      .replace(/\$8::jsonb/g, "'[]'::jsonb")
      .replace(/\$9::timestamptz/g, "now()");
    if (/\$\d/.test(text)) throw new Error("a parameter was not replaced");
    if (!withEvent) {
      const e = /\), e AS \([\s\S]*?RETURNING event_seq, created_at\n\)/;
      if (!e.test(text)) throw new Error("the event CTE was not found");
      text = text.replace(e, "), e AS (SELECT h.last_event_seq AS event_seq, now() AS created_at FROM m, h)");
    }
    if (!withSideUpdates) {
      for (const cte of ["r", "a", "p"]) {
        const re = new RegExp(`\\), ${cte} AS \\(\\n  UPDATE[\\s\\S]*?\\n\\)`);
        if (!re.test(text)) throw new Error(`the ${cte} CTE was not found`);
        text = text.replace(re, `), ${cte} AS (SELECT 1\n)`);
      }
    }
    if (!withChecks) {
      const re = / AND EXISTS \(SELECT 1 FROM conversation_members[^\n]*\n[^\n]*\n/;
      if (!re.test(text)) throw new Error("the membership checks were not found");
      text = text.replace(re, "\n");
    }
    return `\\set k random(1, ${CONVERSATIONS})
SELECT id AS conv, sender FROM bench_convs WHERE n = :k \\gset
${text.trim()};
`;
  };
  const minimal = `\\set k random(1, ${CONVERSATIONS})
SELECT id AS conv, sender FROM bench_convs WHERE n = :k \\gset
WITH l AS (SELECT c.id, c.last_seq FROM conversations c WHERE c.id = :conv::uuid FOR NO KEY UPDATE),
m AS (INSERT INTO messages (id, conversation_id, seq, sender_id, client_message_id, content, created_at)
      SELECT gen_random_uuid(), l.id, l.last_seq + 1, :sender::uuid, gen_random_uuid()::text, 'bench', now() FROM l
      RETURNING conversation_id, seq)
UPDATE conversations SET last_seq = m.seq FROM m WHERE conversations.id = m.conversation_id;
`;
  const dir = mkdtempSync(join(tmpdir(), "bench-send-cost-"));
  const run = (name: string, script: string, mode = "prepared") => {
    const file = join(dir, `${name.replace(/\W+/g, "-")}.sql`);
    writeFileSync(file, script);
    const cpu0 = postgresCpuSeconds();
    const out = execFileSync(
      "pgbench",
      ["-n", "-M", mode, "-c", String(CLIENTS), "-j", "2", "-T", String(SECONDS), "-f", file, url.replace(/\+/g, "%20")],
      {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const cpu = postgresCpuSeconds() - cpu0;
    const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? NaN);
    const failed = Number(/number of failed transactions: (\d+)/.exec(out)?.[1] ?? 0);
    console.log(
      `| ${name} | ${tps.toFixed(0)}${failed ? ` (${failed} failed)` : ""} | ${((1000 * cpu) / (tps * SECONDS)).toFixed(2)} | ${loadavg()[0].toFixed(1)} |`,
    );
  };
  console.log(`send-cost bench: ${cpus().length} cores, ${CLIENTS} clients, ${CONVERSATIONS} conversations of 8 members, ${SECONDS} s each\n`);
  console.log("| variant | sends/s | Postgres CPU ms/send | load (1 min) |");
  console.log("|---|---:|---:|---:|");
  run("0. the app's send statement, parsed and planned per call (as before it was named)", appSend(true), "extended");
  run("1. the app's send statement", appSend(true));
  await db.query("ALTER TABLE conversations DISABLE TRIGGER conversations_activity_fanout");
  run("2. without the member-activity copy", appSend(true));
  await db.query("DROP INDEX messages_search_idx");
  run("3. also without the full-text index entry", appSend(true));
  run("4. also without the outbox event row", appSend(false));
  run("5. also without the sender's watermark, un-archiving and reply count", appSend(false, false));
  run("6. also without the membership checks", appSend(false, false, false));
  run("7. pgbench's minimal send (bench/outbox.ts)", minimal);
} finally {
  await db.end();
  await backends.cleanup();
}
process.exit(0);
