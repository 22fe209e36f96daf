// SessionRevocations: revocations pushed to every instance (Redis pub/sub, or
// the in-process twin), the catch-up from the database, and the fail-safe when
// the subscription is lost (a revoked token is never let through; with the
// database also unreachable the answer is UNAVAILABLE). Real Postgres with
// Redis, PGlite with the in-process store.

import { afterAll, beforeAll, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { env, forEachBackend, isolatedPostgres, isolatedRedisPrefix } from "../support/backends.ts";
import { until } from "../support/poll.ts";
import { openMigratedSql } from "../support/seed.ts";
import type { SqlDatabase } from "../../src/stores/sql/sql.ts";
import { createPostgres } from "../../src/stores/sql/postgres.ts";
import { loadMigrations, migrate } from "../../src/stores/sql/migrate.ts";
import { MIGRATIONS_DIR } from "../../src/stores/stores.ts";
import { SqlAuthStore } from "../../src/auth/auth-store.ts";
import { hashRefreshToken, newRefreshToken, type AccessClaims } from "../../src/auth/tokens.ts";
import { createRevocationMetrics, SessionRevocations, type RevocationMetrics, type SessionRevokedMessage } from "../../src/auth/revocations.ts";
import type { EphemeralStore } from "../../src/stores/ephemeral/ephemeral.ts";
import { createRedisStore } from "../../src/stores/ephemeral/redis.ts";
import { createMemoryStore } from "../../src/stores/ephemeral/memory.ts";
import { AppError } from "../../src/shared/errors.ts";

const HOUR = 3600_000;

/** Resolves to the refusal's kind, or "ok". */
async function outcome(p: void | Promise<void> | (() => void | Promise<void>)): Promise<string> {
  try {
    await (typeof p === "function" ? p() : p);
    return "ok";
  } catch (err) {
    if (err instanceof AppError) return err.kind;
    throw err;
  }
}

forEachBackend("session revocations", ["redis", "memory"] as const, (name) => {
  let db: SqlDatabase;
  let drop: () => Promise<void> = async () => {};
  let store: SqlAuthStore;
  let prefix: string;
  const ephemerals: EphemeralStore[] = [];
  const started: SessionRevocations[] = [];
  let shared: EphemeralStore | null = null;

  beforeAll(async () => {
    if (name === "redis") {
      const iso = await isolatedPostgres();
      db = createPostgres(iso.url);
      drop = iso.drop;
      await migrate(db, await loadMigrations(MIGRATIONS_DIR));
    } else {
      // The run's migrated image, copied (its cleanup closes it).
      ({ db, cleanup: drop } = await openMigratedSql("pglite"));
    }
    store = new SqlAuthStore(db);
    prefix = isolatedRedisPrefix();
  });
  afterAll(async () => {
    for (const r of started) await r.close();
    for (const e of ephemerals) await e.close();
    if (name === "redis") await db?.close();
    await drop();
  });

  /** One node's ephemeral store: its own Redis connections (same prefix: one deployment), or the one in-process store. */
  async function nodeStore(ownPrefix = prefix): Promise<EphemeralStore> {
    if (name === "memory") return (shared ??= createMemoryStore());
    const e = await createRedisStore(env.redis!, ownPrefix);
    ephemerals.push(e);
    return e;
  }

  async function node(opts: { ephemeral?: EphemeralStore; source?: SqlAuthStore; catchupIntervalMs?: number; maxLagMs?: number } = {}) {
    const metrics = createRevocationMetrics();
    const r = new SessionRevocations({
      ephemeral: opts.ephemeral ?? (await nodeStore()),
      source: opts.source ?? store,
      // No periodic catch-up during a test unless asked: only the push and the fail-safe can make a revocation visible.
      settings: { accessTokenTtlSec: 900, catchupIntervalMs: opts.catchupIntervalMs ?? HOUR, maxLagMs: opts.maxLagMs ?? 100 },
      metrics,
    });
    await r.start();
    started.push(r);
    return { r, metrics };
  }

  async function liveSession(): Promise<{ userId: string; sessionId: string }> {
    const n = randomUUID().slice(0, 8);
    const userId = randomUUID();
    const sessionId = randomUUID();
    const token = newRefreshToken();
    await store.createUser(
      {
        id: userId,
        email: `r${n}@example.test`,
        emailNormalized: `r${n}@example.test`,
        username: `r${n}`,
        displayName: "r",
        passwordHash: "$argon2id$x",
      },
      { id: sessionId, userId, deviceId: "d", deviceName: "d", expiresAt: new Date(Date.now() + HOUR) },
      { hash: hashRefreshToken(token), expiresAt: new Date(Date.now() + HOUR) },
    );
    return { userId, sessionId };
  }

  const claims = (s: { userId: string; sessionId: string }, issuedAtMs = Date.now()): AccessClaims => ({ ...s, roles: ["user"], issuedAtMs });
  const lookups = async (m: RevocationMetrics) => (await m.lookups.get()).values[0]?.value ?? 0;

  it("a revocation on one node is refused on another within 1 s, answered from memory (no store read per check)", async () => {
    const here = await node();
    const there = await node();
    const heard: SessionRevokedMessage[] = [];
    const unsubscribe = await SessionRevocations.subscribe(there.r["ephemeral"], (m) => heard.push(m));
    const s = await liveSession();
    for (let i = 0; i < 100; i++) expect(there.r.check(claims(s))).toBeUndefined(); // synchronous: no promise at all

    await store.revokeSessions(s.userId, { sessionIds: [s.sessionId] }, "logout", new Date());
    await here.r.revoked(s.userId, [s.sessionId], "logout");
    expect(await outcome(() => here.r.check(claims(s)))).toBe("unauthenticated"); // the revoking node: at once
    // The other node: polled, with a bound (the property is "< 1 s"; on a loaded machine the push takes milliseconds).
    await until(async () => (await outcome(() => there.r.check(claims(s)))) === "unauthenticated", 1_000, "revocation seen on the other node");
    await until(() => heard.some((m) => m.sessionIds.includes(s.sessionId) && m.reason === "logout"), 1_000, "revocation announced");
    expect(await lookups(there.metrics)).toBe(0);
    expect(await lookups(here.metrics)).toBe(0);
    await unsubscribe();
  });

  it("a stale mark refuses only older tokens, on every node, and never downgrades a revocation", async () => {
    const here = await node();
    const there = await node();
    const s = await liveSession();
    const mark = Date.now();
    const stale = await store.markSessionsStale(s.userId, new Date(mark), new Date());
    expect(stale).toEqual([s.sessionId]);
    await here.r.staleBefore(s.userId, stale, mark);
    await until(
      async () => (await outcome(() => there.r.check(claims(s, mark - 1)))) === "unauthenticated",
      1_000,
      "stale mark seen on the other node",
    );
    expect(await outcome(() => there.r.check(claims(s, mark)))).toBe("ok");
    await store.revokeSessions(s.userId, { sessionIds: [s.sessionId] }, "revoked", new Date());
    await here.r.revoked(s.userId, [s.sessionId], "revoked");
    await here.r.staleBefore(s.userId, [s.sessionId], Date.now());
    await until(async () => (await outcome(() => there.r.check(claims(s, Date.now() + 1000)))) === "unauthenticated", 1_000, "revocation kept");
  });

  it("catches up from the database: a revocation whose message was lost, and all recent ones at start", async () => {
    const there = await node();
    const s = await liveSession();
    // Revoked in the database only (the revoking node died before publishing).
    await store.revokeSessions(s.userId, { sessionIds: [s.sessionId] }, "revoked", new Date());
    expect(await outcome(() => there.r.check(claims(s)))).toBe("ok"); // the gap the catch-up closes
    await there.r.catchup();
    expect(await outcome(() => there.r.check(claims(s)))).toBe("unauthenticated");
    const later = await node(); // a node started afterwards loads it
    expect(await outcome(() => later.r.check(claims(s)))).toBe("unauthenticated");
    const t = await liveSession();
    const mark = Date.now();
    await store.markSessionsStale(t.userId, new Date(mark), new Date());
    await there.r.catchup();
    expect(await outcome(() => there.r.check(claims(t, mark - 1)))).toBe("unauthenticated");
    expect(await outcome(() => there.r.check(claims(t, mark)))).toBe("ok");
    // The periodic catch-up does the same by itself.
    const periodic = await node({ catchupIntervalMs: 50 });
    const u = await liveSession();
    await store.revokeSessions(u.userId, { sessionIds: [u.sessionId] }, "revoked", new Date());
    await until(async () => (await outcome(() => periodic.r.check(claims(u)))) === "unauthenticated", 5_000, "periodic catch-up");
  });

  if (name !== "redis") return;

  /** Kills this store's subscriber connection the way a network fault or a Redis restart would. */
  async function killSubscriber(ownPrefix: string): Promise<void> {
    const admin = new Redis(env.redis!);
    try {
      const list = (await admin.client("LIST")) as string;
      const ids = list
        .split("\n")
        .filter((line) => line.includes(` name=${ownPrefix}sub `))
        .map((line) => /\bid=(\d+)/.exec(line)![1]);
      expect(ids).toHaveLength(1);
      await admin.client("KILL", "ID", ids[0]);
    } finally {
      admin.disconnect();
    }
  }

  it("a lost subscription never lets a revoked token through: database reads until the feed is back and caught up", async () => {
    const own = isolatedRedisPrefix();
    const ephemeral = await nodeStore(own);
    const lost: boolean[] = [];
    ephemeral.onSubscriptionState((live) => lost.push(live));
    const there = await node({ ephemeral });
    const s = await liveSession();
    await store.revokeSessions(s.userId, { sessionIds: [s.sessionId] }, "revoked", new Date());
    expect(await outcome(() => there.r.check(claims(s)))).toBe("ok"); // not pushed, no periodic catch-up: unknown here yet
    await killSubscriber(own);
    // Whatever the check finds (a database read while the feed is down, or the catch-up that follows its return), it refuses.
    await until(async () => (await outcome(() => there.r.check(claims(s)))) === "unauthenticated", 5_000, "refused after the feed was lost");
    await until(() => lost.join(",") === "false,true", 5_000, "subscription lost and restored");
    await until(() => there.r.isCurrent(), 5_000, "view current again");
    expect((await there.metrics.feedLost.get()).values[0].value).toBe(1);
    // Back to answering from memory.
    const before = await lookups(there.metrics);
    const t = await liveSession();
    expect(await outcome(() => there.r.check(claims(t)))).toBe("ok");
    expect(await lookups(there.metrics)).toBe(before);
  });

  it("with the subscription lost and the database unreachable, checks answer UNAVAILABLE, never a pass", async () => {
    const own = isolatedRedisPrefix();
    const ephemeral = await nodeStore(own);
    const iso = await isolatedPostgres();
    const db2 = createPostgres(iso.url);
    await migrate(db2, await loadMigrations(MIGRATIONS_DIR));
    const source = new SqlAuthStore(db2);
    const there = await node({ ephemeral, source });
    const s = { userId: randomUUID(), sessionId: randomUUID() };
    expect(await outcome(() => there.r.check(claims(s)))).toBe("ok"); // unknown session, view current: from memory
    await db2.close();
    await iso.drop();
    await killSubscriber(own);
    await until(async () => (await outcome(() => there.r.check(claims(s)))) === "unavailable", 5_000, "UNAVAILABLE while nothing can vouch");
    expect(await lookups(there.metrics)).toBeGreaterThan(0);
  });
});
