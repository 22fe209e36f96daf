// The auth store: users, device sessions and refresh tokens. One interface,
// one SQL adapter that runs on Postgres and on the embedded PGlite.

import type { SqlDatabase, SqlExecutor } from "../stores/sql/sql.ts";
import { sqlState, UNIQUE_VIOLATION } from "../stores/sql/sql.ts";
import { alreadyExists } from "../shared/errors.ts";

export type Role = "user" | "admin";
export type UserStatus = "active" | "suspended";

export interface UserRecord {
  id: string;
  email: string;
  emailNormalized: string;
  username: string;
  displayName: string;
  passwordHash: string;
  roles: Role[];
  status: UserStatus;
  createdAt: Date;
  updatedAt: Date;
}

export interface SessionRecord {
  id: string;
  userId: string;
  deviceId: string;
  deviceName: string;
  createdAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
  idleExpiresAt: Date;
  revokedAt: Date | null;
  revokeReason: string | null;
}

export interface NewUser {
  id: string;
  email: string;
  emailNormalized: string;
  username: string;
  displayName: string;
  passwordHash: string;
}

export interface NewSession {
  id: string;
  userId: string;
  deviceId: string;
  deviceName: string;
  expiresAt: Date;
}

export interface NewRefreshToken {
  hash: Buffer;
  expiresAt: Date;
}

/** What presenting a refresh token found. Only "rotated" issued a new one. */
export type RotateOutcome =
  | { kind: "rotated"; session: SessionRecord; user: UserRecord }
  | { kind: "unknown" }
  | { kind: "reused"; session: SessionRecord }
  | { kind: "ended"; session: SessionRecord; reason: "revoked" | "expired" | "idle" | "suspended" };

/** A position in SearchUsers' order: rank 0 (username matches) before rank 1 (display name only), then username. */
export interface UserSearchCursor {
  rank: 0 | 1;
  username: string;
}

export interface AuthStore {
  /** Creates the user and its first session atomically; ALREADY_EXISTS on a taken email or username. */
  createUser(user: NewUser, session: NewSession, refresh: NewRefreshToken): Promise<UserRecord>;
  getUser(id: string): Promise<UserRecord | null>;
  findUserByEmail(emailNormalized: string): Promise<UserRecord | null>;
  findUserByUsername(username: string): Promise<UserRecord | null>;
  getUsers(ids: string[]): Promise<UserRecord[]>;
  /**
   * Prefix match on username or lower-cased display name; active users only.
   * Username matches first, then display-name-only matches, each by username;
   * `after` is the keyset position of the previous page's last user.
   */
  /** Users by username or display-name prefix; with `workspaceId`, only that workspace's members. */
  searchUsers(prefix: string, limit: number, after?: UserSearchCursor | null, workspaceId?: string): Promise<UserRecord[]>;
  setPasswordHash(userId: string, hash: string): Promise<void>;
  setDisplayName(userId: string, displayName: string): Promise<UserRecord | null>;
  /** Returns the roles before and the user after, or null when there is no such user. */
  setRoles(userId: string, roles: Role[]): Promise<{ before: Role[]; user: UserRecord } | null>;
  setStatus(userId: string, status: UserStatus): Promise<{ before: UserStatus; user: UserRecord } | null>;

  /**
   * Starts a session for a device, revoking that device's previous session
   * (one session per device) in the same transaction. Returns the replaced ids.
   */
  startSession(session: NewSession, refresh: NewRefreshToken, now: Date): Promise<{ replaced: string[] }>;
  /**
   * Presents a refresh token: when it is current and its session live, marks
   * it used and stores `next` (its expiry capped by the session's absolute
   * end), atomically. Two concurrent presentations: one rotates, the other
   * sees a used token.
   */
  rotateRefreshToken(presented: Buffer, next: NewRefreshToken, now: Date): Promise<RotateOutcome>;
  /** Replaces the session's unused refresh tokens with `next` (after a password change). */
  replaceRefreshToken(sessionId: string, next: NewRefreshToken, now: Date): Promise<void>;
  getSession(sessionId: string): Promise<SessionRecord | null>;
  /** Sessions not revoked and not past either expiry, newest first. */
  listLiveSessions(userId: string, now: Date): Promise<SessionRecord[]>;
  /**
   * Revokes live sessions of a user: the given ids, or all of them (optionally
   * but one). Returns the ids that were live and are now revoked.
   */
  revokeSessions(userId: string, which: { sessionIds: string[] } | { all: true; except?: string }, reason: string, now: Date): Promise<string[]>;
  /** Deletes sessions (and their tokens) that ended before `cutoff`. Returns how many. */
  purgeEndedSessions(cutoff: Date): Promise<number>;
  /** Refuses the user's live sessions' access tokens issued before `at` (roles changed). Returns their ids. */
  markSessionsStale(userId: string, at: Date, now: Date): Promise<string[]>;
}

/** A session whose access changed (revoked, or tokens before a time refused). */
export interface SessionAccessChange {
  sessionId: string;
  revoked: boolean;
  staleBeforeMs: number | null;
  /** When it changed (database clock), ms. */
  changedAtMs: number;
}

/** What the revocation catch-up and the per-call fallback read (the database is the authority). */
export interface SessionAccessSource {
  /**
   * Sessions whose access changed after `since` (database clock), or within
   * the last `windowMs` when `since` is null; with the database's time at the
   * read, the next call's `since`.
   */
  accessChangesSince(since: Date | null, windowMs: number): Promise<{ changes: SessionAccessChange[]; now: Date }>;
  /** One session's access; null when there is no such session. */
  sessionAccess(sessionId: string): Promise<{ revoked: boolean; staleBeforeMs: number | null } | null>;
}

interface UserRow {
  id: string;
  email: string;
  email_normalized: string;
  username: string;
  display_name: string;
  password_hash: string;
  roles: string[];
  status: string;
  created_at: Date;
  updated_at: Date;
}

interface SessionRow {
  id: string;
  user_id: string;
  device_id: string;
  device_name: string;
  created_at: Date;
  last_used_at: Date;
  expires_at: Date;
  idle_expires_at: Date;
  revoked_at: Date | null;
  revoke_reason: string | null;
}

const USER_COLS = "id, email, email_normalized, username, display_name, password_hash, roles, status, created_at, updated_at";
const SESSION_COLS = "id, user_id, device_id, device_name, created_at, last_used_at, expires_at, idle_expires_at, revoked_at, revoke_reason";

const toUser = (r: UserRow): UserRecord => ({
  id: r.id,
  email: r.email,
  emailNormalized: r.email_normalized,
  username: r.username,
  displayName: r.display_name,
  passwordHash: r.password_hash,
  roles: r.roles as Role[],
  status: r.status as UserStatus,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const toSession = (r: SessionRow): SessionRecord => ({
  id: r.id,
  userId: r.user_id,
  deviceId: r.device_id,
  deviceName: r.device_name,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  expiresAt: r.expires_at,
  idleExpiresAt: r.idle_expires_at,
  revokedAt: r.revoked_at,
  revokeReason: r.revoke_reason,
});

/** Escapes LIKE metacharacters so user input is matched literally. */
const likePrefix = (s: string) => `${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

export class SqlAuthStore implements AuthStore, SessionAccessSource {
  private readonly db: SqlDatabase;

  constructor(db: SqlDatabase) {
    this.db = db;
  }

  async createUser(user: NewUser, session: NewSession, refresh: NewRefreshToken): Promise<UserRecord> {
    try {
      return await this.db.transaction(async (tx) => {
        const { rows } = await tx.query<UserRow>(
          `INSERT INTO users (id, email, email_normalized, username, display_name, password_hash)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${USER_COLS}`,
          [user.id, user.email, user.emailNormalized, user.username, user.displayName, user.passwordHash],
        );
        await insertSession(tx, session, refresh, rows[0].created_at);
        return toUser(rows[0]);
      });
    } catch (err) {
      if (sqlState(err) !== UNIQUE_VIOLATION) throw err;
      const constraint = String((err as { constraint?: unknown }).constraint ?? "");
      let field = constraint.includes("email") ? "email" : constraint.includes("username") ? "username" : "";
      if (!field) {
        // Some drivers do not report the constraint: look which one is taken.
        field = (await this.findUserByEmail(user.emailNormalized)) ? "email" : "username";
      }
      throw field === "email"
        ? alreadyExists("EMAIL_TAKEN", "email is already registered")
        : alreadyExists("USERNAME_TAKEN", "username is already taken");
    }
  }

  async getUser(id: string): Promise<UserRecord | null> {
    const { rows } = await this.db.query<UserRow>(`SELECT ${USER_COLS} FROM users WHERE id = $1`, [id]);
    return rows[0] ? toUser(rows[0]) : null;
  }

  async findUserByEmail(emailNormalized: string): Promise<UserRecord | null> {
    const { rows } = await this.db.query<UserRow>(`SELECT ${USER_COLS} FROM users WHERE email_normalized = $1`, [emailNormalized]);
    return rows[0] ? toUser(rows[0]) : null;
  }

  async findUserByUsername(username: string): Promise<UserRecord | null> {
    const { rows } = await this.db.query<UserRow>(`SELECT ${USER_COLS} FROM users WHERE username = $1`, [username]);
    return rows[0] ? toUser(rows[0]) : null;
  }

  async getUsers(ids: string[]): Promise<UserRecord[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.db.query<UserRow>(`SELECT ${USER_COLS} FROM users WHERE id = ANY($1::uuid[])`, [ids]);
    return rows.map(toUser);
  }

  async searchUsers(prefix: string, limit: number, after: UserSearchCursor | null = null, workspaceId?: string): Promise<UserRecord[]> {
    const pattern = likePrefix(prefix.toLowerCase());
    // Workspace scope (docs/WORKSPACES.md): a primary-key probe of workspace_members per candidate.
    const inWorkspace = "($5::uuid IS NULL OR EXISTS (SELECT 1 FROM workspace_members w WHERE w.workspace_id = $5::uuid AND w.user_id = users.id))";
    // Two index-friendly branches rather than one OR, so each uses its prefix
    // index: username matches (rank 0), then display-name-only matches (rank
    // 1), each by username, so the keyset (rank, username) pages with no gap
    // and no overlap. The status filter is inside each branch, so a branch's
    // LIMIT never counts users the page would drop.
    const { rows } = await this.db.query<UserRow>(
      `SELECT ${USER_COLS} FROM users WHERE id IN (
         (SELECT id FROM users WHERE username LIKE $1 AND status = 'active'
            AND ($3::int IS NULL OR ($3 = 0 AND username > $4)) AND ${inWorkspace}
          ORDER BY username LIMIT $2)
         UNION
         (SELECT id FROM users WHERE lower(display_name) LIKE $1 AND username NOT LIKE $1 AND status = 'active'
            AND ($3::int IS NULL OR $3 = 0 OR username > $4) AND ${inWorkspace}
          ORDER BY username LIMIT $2)
       )
       ORDER BY (username LIKE $1) DESC, username
       LIMIT $2`,
      [pattern, limit, after?.rank ?? null, after?.username ?? "", workspaceId ?? null],
    );
    return rows.map(toUser);
  }

  async setPasswordHash(userId: string, hash: string): Promise<void> {
    await this.db.query("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1", [userId, hash]);
  }

  async setDisplayName(userId: string, displayName: string): Promise<UserRecord | null> {
    const { rows } = await this.db.query<UserRow>(`UPDATE users SET display_name = $2, updated_at = now() WHERE id = $1 RETURNING ${USER_COLS}`, [
      userId,
      displayName,
    ]);
    return rows[0] ? toUser(rows[0]) : null;
  }

  setRoles(userId: string, roles: Role[]): Promise<{ before: Role[]; user: UserRecord } | null> {
    return this.db.transaction(async (tx) => {
      const prev = await tx.query<{ roles: string[] }>("SELECT roles FROM users WHERE id = $1 FOR UPDATE", [userId]);
      if (!prev.rows[0]) return null;
      const { rows } = await tx.query<UserRow>(`UPDATE users SET roles = $2::text[], updated_at = now() WHERE id = $1 RETURNING ${USER_COLS}`, [
        userId,
        roles,
      ]);
      return { before: prev.rows[0].roles as Role[], user: toUser(rows[0]) };
    });
  }

  setStatus(userId: string, status: UserStatus): Promise<{ before: UserStatus; user: UserRecord } | null> {
    return this.db.transaction(async (tx) => {
      const prev = await tx.query<{ status: string }>("SELECT status FROM users WHERE id = $1 FOR UPDATE", [userId]);
      if (!prev.rows[0]) return null;
      const { rows } = await tx.query<UserRow>(`UPDATE users SET status = $2, updated_at = now() WHERE id = $1 RETURNING ${USER_COLS}`, [
        userId,
        status,
      ]);
      return { before: prev.rows[0].status as UserStatus, user: toUser(rows[0]) };
    });
  }

  startSession(session: NewSession, refresh: NewRefreshToken, now: Date): Promise<{ replaced: string[] }> {
    return this.db.transaction(async (tx) => {
      // Serialise logins of one device: two concurrent ones would otherwise
      // both see no live session and one would hit the unique index.
      await tx.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`session:${session.userId}:${session.deviceId}`]);
      const { rows } = await tx.query<{ id: string }>(
        `UPDATE sessions SET revoked_at = $3, revoke_reason = 'replaced'
         WHERE user_id = $1 AND device_id = $2 AND revoked_at IS NULL RETURNING id`,
        [session.userId, session.deviceId, now],
      );
      await insertSession(tx, session, refresh, now);
      return { replaced: rows.map((r) => r.id) };
    });
  }

  rotateRefreshToken(presented: Buffer, next: NewRefreshToken, now: Date): Promise<RotateOutcome> {
    return this.db.transaction(async (tx): Promise<RotateOutcome> => {
      // Lock the token and its session: concurrent presentations queue here.
      const found = await tx.query<{ used_at: Date | null; token_expires_at: Date } & SessionRow>(
        `SELECT rt.used_at, rt.expires_at AS token_expires_at, ${SESSION_COLS.split(", ")
          .map((c) => `s.${c}`)
          .join(", ")}
         FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id
         WHERE rt.token_hash = $1 FOR UPDATE OF rt, s`,
        [presented],
      );
      const row = found.rows[0];
      if (!row) return { kind: "unknown" };
      const session = toSession(row);
      if (row.used_at !== null) return { kind: "reused", session };
      if (session.revokedAt !== null) return { kind: "ended", session, reason: "revoked" };
      if (session.expiresAt <= now) return { kind: "ended", session, reason: "expired" };
      if (row.token_expires_at <= now || session.idleExpiresAt <= now) return { kind: "ended", session, reason: "idle" };
      const users = await tx.query<UserRow>(`SELECT ${USER_COLS} FROM users WHERE id = $1`, [session.userId]);
      const user = toUser(users.rows[0]);
      if (user.status !== "active") return { kind: "ended", session, reason: "suspended" };

      const expiresAt = next.expiresAt < session.expiresAt ? next.expiresAt : session.expiresAt;
      await tx.query("UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1", [presented, now]);
      await tx.query("INSERT INTO refresh_tokens (token_hash, session_id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)", [
        next.hash,
        session.id,
        session.userId,
        now,
        expiresAt,
      ]);
      const updated = await tx.query<SessionRow>(
        `UPDATE sessions SET last_used_at = $2, idle_expires_at = $3 WHERE id = $1 RETURNING ${SESSION_COLS}`,
        [session.id, now, expiresAt],
      );
      return { kind: "rotated", session: toSession(updated.rows[0]), user };
    });
  }

  replaceRefreshToken(sessionId: string, next: NewRefreshToken, now: Date): Promise<void> {
    return this.db.transaction(async (tx) => {
      const s = await tx.query<{ user_id: string; expires_at: Date }>("SELECT user_id, expires_at FROM sessions WHERE id = $1 FOR UPDATE", [
        sessionId,
      ]);
      if (!s.rows[0]) return;
      const expiresAt = next.expiresAt < s.rows[0].expires_at ? next.expiresAt : s.rows[0].expires_at;
      // Deleted, not marked used: the old token is then simply unknown, not a reuse.
      await tx.query("DELETE FROM refresh_tokens WHERE session_id = $1 AND used_at IS NULL", [sessionId]);
      await tx.query("INSERT INTO refresh_tokens (token_hash, session_id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)", [
        next.hash,
        sessionId,
        s.rows[0].user_id,
        now,
        expiresAt,
      ]);
      await tx.query("UPDATE sessions SET last_used_at = $2, idle_expires_at = $3 WHERE id = $1", [sessionId, now, expiresAt]);
    });
  }

  async getSession(sessionId: string): Promise<SessionRecord | null> {
    const { rows } = await this.db.query<SessionRow>(`SELECT ${SESSION_COLS} FROM sessions WHERE id = $1`, [sessionId]);
    return rows[0] ? toSession(rows[0]) : null;
  }

  async listLiveSessions(userId: string, now: Date): Promise<SessionRecord[]> {
    const { rows } = await this.db.query<SessionRow>(
      `SELECT ${SESSION_COLS} FROM sessions
       WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 AND idle_expires_at > $2
       ORDER BY created_at DESC, id`,
      [userId, now],
    );
    return rows.map(toSession);
  }

  async revokeSessions(
    userId: string,
    which: { sessionIds: string[] } | { all: true; except?: string },
    reason: string,
    now: Date,
  ): Promise<string[]> {
    if ("sessionIds" in which) {
      if (which.sessionIds.length === 0) return [];
      const { rows } = await this.db.query<{ id: string }>(
        `UPDATE sessions SET revoked_at = $3, revoke_reason = $4
         WHERE user_id = $1 AND id = ANY($2::uuid[]) AND revoked_at IS NULL RETURNING id`,
        [userId, which.sessionIds, now, reason],
      );
      return rows.map((r) => r.id);
    }
    const { rows } = await this.db.query<{ id: string }>(
      `UPDATE sessions SET revoked_at = $2, revoke_reason = $3
       WHERE user_id = $1 AND revoked_at IS NULL AND ($4::uuid IS NULL OR id <> $4::uuid) RETURNING id`,
      [userId, now, reason, which.except ?? null],
    );
    return rows.map((r) => r.id);
  }

  async markSessionsStale(userId: string, at: Date, now: Date): Promise<string[]> {
    const { rows } = await this.db.query<{ id: string }>(
      `UPDATE sessions SET access_stale_before = GREATEST(access_stale_before, $2)
       WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $3 AND idle_expires_at > $3 RETURNING id`,
      [userId, at, now],
    );
    return rows.map((r) => r.id);
  }

  async accessChangesSince(since: Date | null, windowMs: number): Promise<{ changes: SessionAccessChange[]; now: Date }> {
    const { rows } = await this.db.query<{ id: string; revoked: boolean; stale_before: Date | null; changed_at: Date; db_now: Date }>(
      `SELECT s.id, s.revoked_at IS NOT NULL AS revoked, s.access_stale_before AS stale_before, s.access_changed_at AS changed_at, t.db_now
       FROM (SELECT clock_timestamp() AS db_now) t
       LEFT JOIN sessions s ON s.access_changed_at > COALESCE($1::timestamptz, t.db_now - $2::bigint * interval '1 millisecond')
       ORDER BY s.access_changed_at`,
      [since, windowMs],
    );
    const changes = rows
      .filter((r) => r.id !== null)
      .map((r) => ({ sessionId: r.id, revoked: r.revoked, staleBeforeMs: r.stale_before?.getTime() ?? null, changedAtMs: r.changed_at.getTime() }));
    return { changes, now: rows[0].db_now };
  }

  async sessionAccess(sessionId: string): Promise<{ revoked: boolean; staleBeforeMs: number | null } | null> {
    const { rows } = await this.db.query<{ revoked: boolean; stale_before: Date | null }>(
      "SELECT revoked_at IS NOT NULL AS revoked, access_stale_before AS stale_before FROM sessions WHERE id = $1",
      [sessionId],
    );
    return rows[0] ? { revoked: rows[0].revoked, staleBeforeMs: rows[0].stale_before?.getTime() ?? null } : null;
  }

  async purgeEndedSessions(cutoff: Date): Promise<number> {
    const { rowCount } = await this.db.query(
      `DELETE FROM sessions WHERE (revoked_at IS NOT NULL AND revoked_at < $1) OR expires_at < $1 OR idle_expires_at < $1`,
      [cutoff],
    );
    return rowCount;
  }
}

async function insertSession(tx: SqlExecutor, s: NewSession, refresh: NewRefreshToken, now: Date): Promise<void> {
  const idle = refresh.expiresAt < s.expiresAt ? refresh.expiresAt : s.expiresAt;
  await tx.query(
    `INSERT INTO sessions (id, user_id, device_id, device_name, created_at, last_used_at, expires_at, idle_expires_at)
     VALUES ($1, $2, $3, $4, $5, $5, $6, $7)`,
    [s.id, s.userId, s.deviceId, s.deviceName, now, s.expiresAt, idle],
  );
  await tx.query("INSERT INTO refresh_tokens (token_hash, session_id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)", [
    refresh.hash,
    s.id,
    s.userId,
    now,
    idle,
  ]);
}
