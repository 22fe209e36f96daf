// Conformance suite for the AuthStore interface and the AuditLog, run against
// every SQL adapter (a real Postgres and the embedded PGlite), plus the session
// revocation markers against every ephemeral adapter (Redis and in-process).

import { afterAll, beforeAll, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { forEachBackend, isolatedPostgres } from "../support/backends.ts";
import type { SqlDatabase } from "../../src/stores/sql/sql.ts";
import { createPostgres } from "../../src/stores/sql/postgres.ts";
import { openMigratedSql } from "../support/seed.ts";
import { loadMigrations, migrate } from "../../src/stores/sql/migrate.ts";
import { MIGRATIONS_DIR } from "../../src/stores/stores.ts";
import { SqlAuthStore, type NewSession, type NewUser } from "../../src/auth/auth-store.ts";
import { AuditLog } from "../../src/audit/audit-log.ts";
import { AppError } from "../../src/shared/errors.ts";
import { hashRefreshToken, newRefreshToken } from "../../src/auth/tokens.ts";

const HOUR = 3600_000;
let seq = 0;

function newUser(over: Partial<NewUser> = {}): NewUser {
  const n = `${Date.now().toString(36)}${(seq++).toString(36)}`;
  return {
    id: randomUUID(),
    email: `U${n}@Example.test`,
    emailNormalized: `u${n}@example.test`,
    username: `u${n}`,
    displayName: `User ${n}`,
    passwordHash: "$argon2id$x",
    ...over,
  };
}
function newSession(userId: string, deviceId = "dev", expiresInMs = 24 * HOUR): NewSession {
  return { id: randomUUID(), userId, deviceId, deviceName: deviceId, expiresAt: new Date(Date.now() + expiresInMs) };
}
function refresh(expiresInMs = HOUR): { token: string; hash: Buffer; expiresAt: Date } {
  const token = newRefreshToken();
  return { token, hash: hashRefreshToken(token), expiresAt: new Date(Date.now() + expiresInMs) };
}

forEachBackend("auth store", ["postgres", "pglite"] as const, (name) => {
  let db: SqlDatabase;
  let drop: () => Promise<void> = async () => {};
  let store: SqlAuthStore;

  beforeAll(async () => {
    if (name === "postgres") {
      const iso = await isolatedPostgres();
      db = createPostgres(iso.url);
      drop = iso.drop;
      await migrate(db, await loadMigrations(MIGRATIONS_DIR));
    } else {
      // The run's migrated image, copied.
      ({ db, cleanup: drop } = await openMigratedSql("pglite"));
    }
    store = new SqlAuthStore(db);
  });
  afterAll(async () => {
    if (name === "postgres") await db?.close();
    await drop();
  });

  async function userWithSession(deviceId = "dev") {
    const u = newUser();
    const s = newSession(u.id, deviceId);
    const r = refresh();
    const user = await store.createUser(u, s, r);
    return { user, session: s, refresh: r };
  }

  it("creates a user with a first session, and refuses taken emails and usernames", async () => {
    const { user, session } = await userWithSession();
    expect(user).toMatchObject({ roles: ["user"], status: "active" });
    expect(user.createdAt).toBeInstanceOf(Date);
    expect((await store.getSession(session.id))!.userId).toBe(user.id);
    expect((await store.findUserByEmail(user.emailNormalized))!.id).toBe(user.id);
    expect((await store.findUserByUsername(user.username))!.id).toBe(user.id);

    const dupEmail = newUser({ emailNormalized: user.emailNormalized });
    const sameEmail = await store.createUser(dupEmail, newSession(dupEmail.id), refresh()).catch((e) => e);
    expect(sameEmail).toBeInstanceOf(AppError);
    expect(sameEmail).toMatchObject({ kind: "already_exists", message: expect.stringMatching(/email/) });
    const dupName = newUser({ username: user.username });
    const sameName = await store.createUser(dupName, newSession(dupName.id), refresh()).catch((e) => e);
    expect(sameName).toMatchObject({ kind: "already_exists", message: expect.stringMatching(/username/) });
    // Nothing half-made was left behind by the failed attempts.
    const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM users WHERE email_normalized = $1 OR username = $2", [
      user.emailNormalized,
      user.username,
    ]);
    expect(rows[0].n).toBe(1);
  });

  it("keeps one live session per device, also under concurrent logins", async () => {
    const { user, session } = await userWithSession("phone");
    const next = newSession(user.id, "phone");
    const res = await store.startSession(next, refresh(), new Date());
    expect(res.replaced).toEqual([session.id]);
    expect((await store.getSession(session.id))!.revokeReason).toBe("replaced");

    await Promise.all(Array.from({ length: 8 }, () => store.startSession(newSession(user.id, "phone"), refresh(), new Date())));
    const live = await store.listLiveSessions(user.id, new Date());
    expect(live.filter((s) => s.deviceId === "phone")).toHaveLength(1);
  });

  it("rotates a refresh token once; presenting it again is reuse", async () => {
    const { user, session, refresh: first } = await userWithSession();
    const second = refresh(2 * HOUR);
    const now = new Date();
    const rotated = await store.rotateRefreshToken(first.hash, second, now);
    expect(rotated.kind).toBe("rotated");
    if (rotated.kind !== "rotated") return;
    expect(rotated.user.id).toBe(user.id);
    expect(rotated.session.idleExpiresAt.getTime()).toBe(second.expiresAt.getTime());
    expect(rotated.session.lastUsedAt.getTime()).toBe(now.getTime());

    const again = await store.rotateRefreshToken(first.hash, refresh(), new Date());
    expect(again).toMatchObject({ kind: "reused", session: { id: session.id } });
    expect((await store.rotateRefreshToken(hashRefreshToken("never issued"), refresh(), new Date())).kind).toBe("unknown");
  });

  it("lets exactly one of several concurrent presentations rotate", async () => {
    const { refresh: first } = await userWithSession();
    const outcomes = await Promise.all(Array.from({ length: 6 }, () => store.rotateRefreshToken(first.hash, refresh(), new Date())));
    expect(outcomes.filter((o) => o.kind === "rotated")).toHaveLength(1);
    expect(outcomes.filter((o) => o.kind === "reused")).toHaveLength(5);
  });

  it("caps a rotated token's expiry at the session's absolute end", async () => {
    const u = newUser();
    const s = newSession(u.id, "dev", HOUR);
    const r = refresh(HOUR / 2);
    await store.createUser(u, s, r);
    const res = await store.rotateRefreshToken(r.hash, refresh(10 * HOUR), new Date());
    expect(res.kind === "rotated" && res.session.idleExpiresAt.getTime()).toBe(s.expiresAt.getTime());
  });

  it("reports why a session ended: revoked, expired, idle, suspended", async () => {
    const revoked = await userWithSession();
    await store.revokeSessions(revoked.user.id, { sessionIds: [revoked.session.id] }, "logout", new Date());
    expect(await store.rotateRefreshToken(revoked.refresh.hash, refresh(), new Date())).toMatchObject({ kind: "ended", reason: "revoked" });

    const expired = await userWithSession();
    const later = new Date(Date.now() + 48 * HOUR);
    expect(await store.rotateRefreshToken(expired.refresh.hash, refresh(), later)).toMatchObject({ kind: "ended", reason: "expired" });

    const idle = await userWithSession();
    const afterIdle = new Date(Date.now() + 2 * HOUR);
    expect(await store.rotateRefreshToken(idle.refresh.hash, refresh(), afterIdle)).toMatchObject({ kind: "ended", reason: "idle" });

    const suspended = await userWithSession();
    await store.setStatus(suspended.user.id, "suspended");
    expect(await store.rotateRefreshToken(suspended.refresh.hash, refresh(), new Date())).toMatchObject({ kind: "ended", reason: "suspended" });
    expect((await store.listLiveSessions(expired.user.id, later)).length).toBe(0);
    expect((await store.listLiveSessions(idle.user.id, afterIdle)).length).toBe(0);
  });

  it("revokes only the owner's sessions, all of them or all but one", async () => {
    const a = await userWithSession("a1");
    const b = await userWithSession("b1");
    expect(await store.revokeSessions(a.user.id, { sessionIds: [b.session.id] }, "revoked", new Date())).toEqual([]);
    expect((await store.getSession(b.session.id))!.revokedAt).toBeNull();

    const a2 = newSession(a.user.id, "a2");
    const a3 = newSession(a.user.id, "a3");
    await store.startSession(a2, refresh(), new Date());
    await store.startSession(a3, refresh(), new Date());
    const ended = await store.revokeSessions(a.user.id, { all: true, except: a3.id }, "password_changed", new Date());
    expect(ended.sort()).toEqual([a.session.id, a2.id].sort());
    expect((await store.listLiveSessions(a.user.id, new Date())).map((s) => s.id)).toEqual([a3.id]);
    expect(await store.revokeSessions(a.user.id, { all: true }, "logout", new Date())).toEqual([a3.id]);
  });

  it("replaces a session's refresh token without making the old one look reused", async () => {
    const { session, refresh: old } = await userWithSession();
    const next = refresh();
    await store.replaceRefreshToken(session.id, next, new Date());
    expect((await store.rotateRefreshToken(old.hash, refresh(), new Date())).kind).toBe("unknown");
    expect((await store.rotateRefreshToken(next.hash, refresh(), new Date())).kind).toBe("rotated");
  });

  it("looks users up by ids and by prefix (LIKE characters literal, active only)", async () => {
    const tag = `p${Date.now().toString(36)}`;
    const mk = async (username: string, displayName: string) => {
      const u = newUser({ username, displayName });
      return store.createUser(u, newSession(u.id), refresh());
    };
    const ua = await mk(`${tag}_a`, "Zoe");
    const ub = await mk(`${tag}xb`, `${tag.toUpperCase()} Bee`);
    const uc = await mk(`c${tag}`, "Carl");
    await store.setStatus(uc.id, "suspended");
    expect((await store.searchUsers(tag, 10)).map((u) => u.id).sort()).toEqual([ua.id, ub.id].sort());
    expect((await store.searchUsers(`${tag}_`, 10)).map((u) => u.id)).toEqual([ua.id]);
    expect(await store.searchUsers("%", 10)).toEqual([]);
    expect(await store.searchUsers(tag, 1)).toHaveLength(1);
    expect((await store.getUsers([ua.id, uc.id, randomUUID()])).map((u) => u.id).sort()).toEqual([ua.id, uc.id].sort());
  });

  it("search pages by (username match first, username) after a keyset position; suspended users never use up a page", async () => {
    const tag = `k${Date.now().toString(36)}`;
    const mk = async (username: string, displayName: string, suspended = false) => {
      const u = newUser({ username, displayName });
      const rec = await store.createUser(u, newSession(u.id), refresh());
      if (suspended) await store.setStatus(rec.id, "suspended");
      return rec;
    };
    // Suspended users sort ahead of the active ones in both branches.
    for (const s of ["a", "b", "c"]) await mk(`${tag}_0${s}`, "Nobody", true);
    for (const s of ["a", "b", "c"]) await mk(`a0${s}_${tag}`, `${tag} Hidden`, true);
    await mk(`${tag}_x`, "X");
    await mk(`${tag}_y`, "Y");
    await mk(`m_${tag}`, `${tag} Em`);
    await mk(`n_${tag}`, `${tag} En`);
    const names = async (limit: number, after: { rank: 0 | 1; username: string } | null = null) =>
      (await store.searchUsers(tag, limit, after)).map((u) => u.username);
    expect(await names(2)).toEqual([`${tag}_x`, `${tag}_y`]);
    expect(await names(2, { rank: 0, username: `${tag}_x` })).toEqual([`${tag}_y`, `m_${tag}`]);
    expect(await names(2, { rank: 0, username: `${tag}_y` })).toEqual([`m_${tag}`, `n_${tag}`]);
    expect(await names(2, { rank: 1, username: `m_${tag}` })).toEqual([`n_${tag}`]);
    expect(await names(2, { rank: 1, username: `n_${tag}` })).toEqual([]);
  });

  it("updates roles and status, reporting the previous value", async () => {
    const { user } = await userWithSession();
    expect(await store.setRoles(user.id, ["user", "admin"])).toMatchObject({ before: ["user"], user: { roles: ["user", "admin"] } });
    expect(await store.setStatus(user.id, "suspended")).toMatchObject({ before: "active", user: { status: "suspended" } });
    expect(await store.setRoles(randomUUID(), ["user"])).toBeNull();
    const bad = await store.setRoles(user.id, ["root" as "user"]).catch((e) => e);
    expect(bad).toBeInstanceOf(Error); // the CHECK constraint holds even if the domain slipped
  });

  it("purges sessions that ended before the cutoff, with their tokens", async () => {
    const { user, session } = await userWithSession();
    await store.revokeSessions(user.id, { sessionIds: [session.id] }, "logout", new Date(Date.now() - 40 * 24 * HOUR));
    const keep = await userWithSession();
    expect(await store.purgeEndedSessions(new Date(Date.now() - 30 * 24 * HOUR))).toBeGreaterThanOrEqual(1);
    expect(await store.getSession(session.id)).toBeNull();
    expect(await store.getSession(keep.session.id)).not.toBeNull();
    const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM refresh_tokens WHERE session_id = $1", [session.id]);
    expect(rows[0].n).toBe(0);
  });

  it("AuditLog records entries, in a caller's transaction too", async () => {
    const audit = new AuditLog(db);
    const entity = randomUUID();
    await audit.record({
      actorId: null,
      action: "test.action",
      entityType: "thing",
      entityId: entity,
      metadata: { a: 1 },
      clientAddress: "10.0.0.1",
    });
    await db
      .transaction(async (tx) => {
        await audit.record({ actorId: null, action: "test.rolled_back", entityType: "thing", entityId: entity }, tx);
        throw new Error("roll back");
      })
      .catch(() => {});
    const rows = await audit.list({ entityId: entity });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ action: "test.action", entityType: "thing", metadata: { a: 1 }, clientAddress: "10.0.0.1", actorId: null });
    expect(rows[0].createdAt).toBeInstanceOf(Date);
  });
});
