// Shared test fixtures, in one place: the test user, the seeder that makes
// users and their tokens without going through Register, migrated SQL stores,
// and rows inserted straight into the relational tables.
//
// The seeder writes through the product's own auth store (user, session and
// refresh-token rows exactly as Register writes them) and signs access tokens
// with the server's own secret, so a seeded user is indistinguishable from a
// registered one to every RPC; it only skips argon2id (the one hash of the
// test password is made once per run in global setup). Tests of Register and
// Login themselves (test/auth) still go through the real thing.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes, randomUUID } from "node:crypto";
import { argon2id, hash as argon2Hash } from "argon2";
import type { App } from "../../src/app.ts";
import { loadConfig, type Config } from "../../src/config.ts";
import type { SqlDatabase, SqlExecutor } from "../../src/stores/sql/sql.ts";
import { createPostgres } from "../../src/stores/sql/postgres.ts";
import { createPglite } from "../../src/stores/sql/pglite.ts";
import { loadMigrations, migrate } from "../../src/stores/sql/migrate.ts";
import { MIGRATIONS_DIR } from "../../src/stores/stores.ts";
import { SqlAuthStore } from "../../src/auth/auth-store.ts";
import { AccessTokens, hashRefreshToken, newRefreshToken } from "../../src/auth/tokens.ts";
import { isolatedPostgres, type SqlBackendName } from "./backends.ts";
import { copyPgliteImage } from "./pglite-image.ts";

export const DEFAULT_TEST_PASSWORD = "correct horse battery staple";
/** Set by global setup: an argon2id hash of DEFAULT_TEST_PASSWORD. */
export const PASSWORD_HASH_ENV = "TEST_PASSWORD_HASH";

/** A user as the tests hold it: who, and a live session's tokens. */
export interface TestUser {
  id: string;
  username: string;
  token: string;
  sessionId: string;
  refreshToken: string;
}

/** argon2id of the test password with the minimum parameters the server accepts (it verifies any). */
export function hashTestPassword(): Promise<string> {
  return argon2Hash(DEFAULT_TEST_PASSWORD, { type: argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 });
}

let passwordHash: Promise<string> | null = null;
function testPasswordHash(): Promise<string> {
  const fromSetup = process.env[PASSWORD_HASH_ENV];
  passwordHash ??= fromSetup ? Promise.resolve(fromSetup) : hashTestPassword();
  return passwordHash;
}

export function uniqueUsername(prefix = "u"): string {
  return `${prefix}_${randomBytes(6).toString("hex")}`;
}

/** Where to seed: the app's relational store and its auth settings (secret, TTLs). */
export interface SeedTarget {
  sql: SqlDatabase;
  auth: Config["auth"];
}

/** An in-process server (TestServer or App) as a seed target. */
export function seedTargetOf(server: { app: App } | App): SeedTarget {
  const app = "app" in server ? server.app : server;
  return { sql: app.stores.sql, auth: app.config.auth };
}

/**
 * A seed target on the stores of server processes started with `vars`
 * (spawnServer): Postgres only, as a PGlite directory belongs to its one
 * process. Close it when done.
 */
export function seedTargetForEnv(vars: Record<string, string>): SeedTarget & { close(): Promise<void> } {
  const config = loadConfig(vars);
  if (!config.databaseUrl) throw new Error("seedTargetForEnv needs DATABASE_URL: seed a PGlite-backed server in its own process instead");
  const sql = createPostgres(config.databaseUrl, { max: 4 });
  return { sql, auth: config.auth, close: () => sql.close() };
}

/**
 * Inserts `n` users with one session each (device "test") and mints their
 * access tokens. They can also log in with DEFAULT_TEST_PASSWORD.
 */
export async function seedUsers(
  target: SeedTarget | { app: App } | App,
  n: number,
  opts: { usernames?: string[]; roles?: ("user" | "admin")[] } = {},
): Promise<TestUser[]> {
  const t: SeedTarget = "sql" in target ? target : seedTargetOf(target);
  if (t.auth.accessTokenSecretGenerated) throw new Error("seedUsers needs a server started with ACCESS_TOKEN_SECRET (startTestServer sets one)");
  const store = new SqlAuthStore(t.sql);
  const tokens = new AccessTokens(t.auth.accessTokenSecret, t.auth.accessTokenTtlSec);
  const hash = await testPasswordHash();
  const out: TestUser[] = [];
  for (let i = 0; i < n; i++) {
    const username = opts.usernames?.[i] ?? uniqueUsername();
    const email = `${username}.${randomBytes(3).toString("hex")}@example.test`;
    const now = Date.now();
    const userId = randomUUID();
    const sessionId = randomUUID();
    const refreshToken = newRefreshToken();
    await store.createUser(
      { id: userId, email, emailNormalized: email, username, displayName: username, passwordHash: hash },
      { id: sessionId, userId, deviceId: randomUUID(), deviceName: "test", expiresAt: new Date(now + t.auth.sessionAbsoluteTtlSec * 1000) },
      { hash: hashRefreshToken(refreshToken), expiresAt: new Date(now + t.auth.refreshIdleTtlSec * 1000) },
    );
    const roles = opts.roles ?? ["user"];
    if (opts.roles) await t.sql.query("UPDATE users SET roles = $2 WHERE id = $1", [userId, roles]);
    const { token } = await tokens.sign({ userId, sessionId, roles }, now);
    out.push({ id: userId, username, token, sessionId, refreshToken });
  }
  return out;
}

/** An isolated, migrated relational store: a fresh Postgres schema, or a PGlite directory from the run's image. */
export async function openMigratedSql(name: SqlBackendName): Promise<{ db: SqlDatabase; cleanup(): Promise<void> }> {
  let db: SqlDatabase;
  let drop: () => Promise<void>;
  if (name === "postgres") {
    const iso = await isolatedPostgres();
    db = createPostgres(iso.url, { max: 30 });
    drop = iso.drop;
  } else {
    const dir = mkdtempSync(join(tmpdir(), "chat-pglite-"));
    copyPgliteImage(dir);
    db = await createPglite(dir);
    drop = async () => rmSync(dir, { recursive: true, force: true });
  }
  await migrate(db, await loadMigrations(MIGRATIONS_DIR));
  return {
    db,
    async cleanup() {
      await db.close();
      await drop();
    },
  };
}

/** Inserts `n` users straight into the users table (store-level tests need no session) and returns their ids. */
export async function insertUsers(db: SqlExecutor, n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, () => randomUUID());
  const names = ids.map(() => uniqueUsername());
  await db.query(
    `INSERT INTO users (id, email, email_normalized, username, display_name, password_hash)
     SELECT id, name || '@example.test', name || '@example.test', name, name, 'x'
       FROM unnest($1::uuid[], $2::text[]) AS t(id, name)`,
    [ids, names],
  );
  return ids;
}

/** A group with `members` (the first is its owner), inserted straight into the tables. */
export async function insertConversation(db: SqlExecutor, members: string[]): Promise<string> {
  const id = randomUUID();
  await db.query(
    `INSERT INTO conversations (id, type, visibility, owner_id, member_count, last_message_at)
     VALUES ($1, 'group', 'private', $2, $3, now() - interval '1 hour')`,
    [id, members[0], members.length],
  );
  await db.query(
    `INSERT INTO conversation_members (conversation_id, user_id, role)
     SELECT $1, u, CASE WHEN ord = 1 THEN 'owner' ELSE 'member' END FROM unnest($2::uuid[]) WITH ORDINALITY AS t(u, ord)`,
    [id, members],
  );
  return id;
}
