// Message stores on real backends for the conformance suite: an isolated,
// migrated relational store (Postgres schema or PGlite directory), plus an
// isolated MongoDB database for the Mongo adapter. Users, conversations and
// members are inserted straight into the relational tables (no auth needed).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { pino } from "pino";
import { env, isolatedMongo, isolatedPostgres, type MessageBackendName } from "../support/backends.ts";
import { copyPgliteImage } from "../support/pglite-image.ts";
import type { SqlDatabase, SqlExecutor } from "../../src/stores/sql/sql.ts";
import { createPostgres } from "../../src/stores/sql/postgres.ts";
import { createPglite } from "../../src/stores/sql/pglite.ts";
import { loadMigrations, migrate } from "../../src/stores/sql/migrate.ts";
import { MIGRATIONS_DIR } from "../../src/stores/stores.ts";
import { connectMongo, type MongoStore } from "../../src/stores/mongo/mongo.ts";
import type { MessageStore } from "../../src/messages/store.ts";
import { SqlMessageStore } from "../../src/messages/sql-store.ts";
import { MongoMessageStore } from "../../src/messages/mongo-store.ts";
import type { NewMessage } from "../../src/messages/types.ts";

export interface StoreEnv {
  name: MessageBackendName;
  sql: SqlDatabase;
  mongo: MongoStore | null;
  store: MessageStore;
  /**
   * A second, independent store over the same databases, as another node
   * would have (its own pool, queue and hints). Null for PGlite: one process owns it.
   */
  openPeer(): Promise<MessageStore | null>;
  /** Second connections to the same databases, as another node holds them (null for PGlite). Closed by cleanup. */
  openPeerConnections(): Promise<{ sql: SqlDatabase; mongo: MongoStore | null } | null>;
  cleanup(): Promise<void>;
}

export async function openStoreEnv(name: MessageBackendName): Promise<StoreEnv> {
  const cleanups: (() => Promise<void>)[] = [];
  // The Mongo adapter keeps conversations relational: on Postgres when there is one.
  const sqlKind = name === "mongo" ? (env.postgres ? "postgres" : "pglite") : name;
  let sql: SqlDatabase;
  let pgUrl: string | null = null;
  if (sqlKind === "postgres") {
    const iso = await isolatedPostgres();
    pgUrl = iso.url;
    sql = createPostgres(iso.url, { max: 30 });
    cleanups.push(iso.drop);
  } else {
    const dir = mkdtempSync(join(tmpdir(), "msg-pglite-"));
    copyPgliteImage(dir);
    sql = await createPglite(dir);
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  }
  cleanups.push(() => sql.close());
  await migrate(sql, await loadMigrations(MIGRATIONS_DIR));

  let mongo: MongoStore | null = null;
  let mongoUrl: string | null = null;
  if (name === "mongo") {
    const iso = await isolatedMongo();
    mongoUrl = iso.url;
    cleanups.push(iso.drop);
    mongo = await connectMongo(iso.url, pino({ level: "silent" }));
    const m = mongo;
    cleanups.push(() => m.close());
  }
  const store: MessageStore = mongo ? new MongoMessageStore(mongo, sql) : new SqlMessageStore(sql);
  await store.init();

  const openPeerConnections = async (): Promise<{ sql: SqlDatabase; mongo: MongoStore | null } | null> => {
    if (sqlKind === "pglite") return null;
    const peerSql = createPostgres(pgUrl!, { max: 30 });
    cleanups.push(() => peerSql.close());
    if (!mongoUrl) return { sql: peerSql, mongo: null };
    const peerMongo = await connectMongo(mongoUrl, pino({ level: "silent" }));
    cleanups.push(() => peerMongo.close());
    return { sql: peerSql, mongo: peerMongo };
  };

  return {
    name,
    sql,
    mongo,
    store,
    async openPeer() {
      const peerConnections = await openPeerConnections();
      if (!peerConnections) return null;
      if (!peerConnections.mongo) return new SqlMessageStore(peerConnections.sql);
      const peer = new MongoMessageStore(peerConnections.mongo, peerConnections.sql);
      await peer.init();
      return peer;
    },
    openPeerConnections,
    async cleanup() {
      for (const c of cleanups.reverse()) await c().catch(() => {});
    },
  };
}

export { insertUsers, insertConversation } from "../support/seed.ts";

export async function conversationRow(db: SqlExecutor, id: string): Promise<{ lastSeq: number; lastMessageAt: Date }> {
  const { rows } = await db.query<{ last_seq: number; last_message_at: Date }>("SELECT last_seq, last_message_at FROM conversations WHERE id = $1", [
    id,
  ]);
  return { lastSeq: Number(rows[0].last_seq), lastMessageAt: rows[0].last_message_at };
}

export async function memberRow(
  db: SqlExecutor,
  conversationId: string,
  userId: string,
): Promise<{ lastReadSeq: number; deliveredSeq: number; archived: boolean }> {
  const { rows } = await db.query<{ last_read_seq: number; delivered_seq: number; archived: boolean }>(
    "SELECT last_read_seq, delivered_seq, archived FROM conversation_members WHERE conversation_id = $1 AND user_id = $2",
    [conversationId, userId],
  );
  return { lastReadSeq: Number(rows[0].last_read_seq), deliveredSeq: Number(rows[0].delivered_seq), archived: rows[0].archived };
}

let counter = 0;

export function newMessage(conversationId: string, senderId: string, over: Partial<NewMessage> = {}): NewMessage {
  return {
    conversationId,
    senderId,
    clientMessageId: `c-${++counter}-${randomBytes(4).toString("hex")}`,
    content: `message ${counter}`,
    parentMessageId: null,
    mentions: [],
    attachments: [],
    createdAt: new Date(),
    ...over,
  };
}

/** Asserts-friendly: the sorted seqs and whether they are exactly 1..n. */
export function isExactlyOneToN(seqs: number[], n: number): boolean {
  if (seqs.length !== n) return false;
  const sorted = [...seqs].sort((a, b) => a - b);
  return sorted.every((s, i) => s === i + 1);
}
