// The auth domain: accounts, device sessions, token rotation, roles and status.
// Knows nothing about protobuf; the handler translates.

import type { WorkspaceAccess } from "../conversations/ports.ts";
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { AuthContext } from "../server/context.ts";
import type { AccessTokenVerifier } from "../server/interceptors.ts";
import { failedPrecondition, invalidArgument, notFound, permissionDenied, unauthenticated } from "../shared/errors.ts";
import type { AuditLog } from "../audit/audit-log.ts";
import type { AuthStore, Role, SessionRecord, UserRecord, UserSearchCursor, UserStatus } from "./auth-store.ts";
import { decodePageToken, encodePageToken } from "../shared/page-token.ts";
import type { PasswordHasher } from "./passwords.ts";
import type { DeviceTokens } from "./device-tokens.ts";
import { LoginThrottled, loginThrottledError, type AuthRateLimits, type LoginAttempt } from "./rate-limits.ts";
import type { SessionRevocations } from "./revocations.ts";
import { hashRefreshToken, newRefreshToken, type AccessTokens } from "./tokens.ts";
import * as v from "./validation.ts";

/** The one answer for a wrong password and an unknown account: no account enumeration. */
export const INVALID_LOGIN = "invalid login or password";
const ROLE_ORDER: Role[] = ["user", "admin"];
export const SEARCH_DEFAULT_PAGE = 20;
/** SearchUsers pages are capped here, not refused (the proto only asks for page_size >= 0). */
export const SEARCH_MAX_PAGE = 50;
/** Ended sessions are kept this long for ListSessions-free forensics, then swept. */
const ENDED_SESSION_RETENTION_MS = 30 * 24 * 3600 * 1000;

export interface TokenPair {
  accessToken: string;
  accessTokenExpiresAt: Date;
  refreshToken: string;
  refreshTokenExpiresAt: Date;
  sessionId: string;
}

export interface SessionView extends SessionRecord {
  current: boolean;
}

export interface RequestMeta {
  clientAddress: string;
}

/** A device token for the client to keep and send with its next Login of this account. */
export interface IssuedDeviceToken {
  token: string;
  expiresAt: Date;
}

/** At most this many device tokens are looked at per Login (body plus cookies). */
export const MAX_DEVICE_TOKEN_CANDIDATES = 8;

export interface AuthSettings {
  accessTokenTtlSec: number;
  refreshIdleTtlSec: number;
  sessionAbsoluteTtlSec: number;
}

export interface AuthServiceDeps {
  store: AuthStore;
  hasher: PasswordHasher;
  tokens: AccessTokens;
  revocations: SessionRevocations;
  rateLimits: AuthRateLimits;
  deviceTokens: DeviceTokens;
  audit: AuditLog;
  settings: AuthSettings;
  logger?: Logger;
  /** The clock; tests of expiry move it instead of sleeping. */
  now?: () => Date;
  /** Which workspace SearchUsers searches (src/workspaces); without it, every user. */
  workspaces?: WorkspaceAccess;
}

export class AuthService implements AccessTokenVerifier {
  private readonly d: AuthServiceDeps;
  private readonly now: () => Date;

  constructor(deps: AuthServiceDeps) {
    this.d = deps;
    this.now = deps.now ?? (() => new Date());
  }

  // ---- access tokens -------------------------------------------------------

  /**
   * The auth interceptor's check: signature, claims and expiry (synchronous,
   * cached until expiry), then the revocation check (in memory while the
   * revocation feed vouches for it; a database read otherwise).
   */
  verify(token: string): Promise<AuthContext> {
    try {
      const claims = this.d.tokens.verify(token);
      const pending = this.d.revocations.check(claims);
      const caller = { userId: claims.userId, sessionId: claims.sessionId, roles: claims.roles };
      return pending ? pending.then(() => caller) : Promise.resolve(caller);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  // ---- accounts ------------------------------------------------------------

  async register(
    input: { email: string; username: string; password: string; displayName: string; deviceId: string; deviceName: string },
    meta: RequestMeta,
  ): Promise<{ user: UserRecord; tokens: TokenPair; deviceToken: IssuedDeviceToken }> {
    // The request's shape was checked against the proto's rules at the edge (server/validation.ts).
    const { email, normalized } = v.normalizeEmail(input.email);
    const username = v.normalizeUsername(input.username);
    const password = input.password;
    v.checkPasswordNotGuessable("password", password, { username, email: normalized });
    const displayName = v.trimmed(input.displayName) || username;
    const deviceId = v.trimmed(input.deviceId) || randomUUID();
    const deviceName = v.trimmed(input.deviceName);
    await this.d.rateLimits.beginRegister(normalized, meta.clientAddress);

    const now = this.now();
    const userId = randomUUID();
    const sessionId = randomUUID();
    const refresh = this.newRefresh(now);
    const user = await this.d.store.createUser(
      { id: userId, email, emailNormalized: normalized, username, displayName, passwordHash: await this.d.hasher.hash(password) },
      { id: sessionId, userId, deviceId, deviceName, expiresAt: this.sessionEnd(now) },
      { hash: refresh.hash, expiresAt: refresh.expiresAt },
    );
    await this.audit(userId, "auth.register", "user", userId, meta, { username, session_id: sessionId, device_id: deviceId });
    return {
      user,
      tokens: await this.pair(user, sessionId, refresh.token, refresh.expiresAt, now),
      deviceToken: this.d.deviceTokens.issue(user.id, now.getTime()),
    };
  }

  /**
   * `deviceTokens`: the device tokens the client sent (body, cookies); one
   * issued for this account makes it a known device (docs/AUTH.md "Login
   * throttling"). Anything else in it is ignored.
   */
  async login(
    input: { login: string; password: string; deviceId: string; deviceName: string; deviceTokens?: string[] },
    meta: RequestMeta,
  ): Promise<{ user: UserRecord; tokens: TokenPair; deviceToken: IssuedDeviceToken }> {
    // The proto's rules have passed: a login of 1 to 254 characters, a password no longer than any valid one
    // (refused before spending argon2 time on it).
    const login = input.login.trim();
    const deviceId = v.trimmed(input.deviceId) || randomUUID();
    const deviceName = v.trimmed(input.deviceName);

    const key = login.toLowerCase();
    const user = key.includes("@") ? await this.d.store.findUserByEmail(key) : await this.d.store.findUserByUsername(key);
    // Count per account (by id when it exists, so email and username share one budget).
    const accountKey = user ? `user:${user.id}` : `login:${key}`;
    const device = user ? this.knownDevice(user.id, input.deviceTokens ?? []) : null;
    const attempt: LoginAttempt = { accountKey, address: meta.clientAddress, deviceKey: device };
    try {
      await this.d.rateLimits.beginLogin(attempt);
    } catch (err) {
      if (!(err instanceof LoginThrottled)) throw err;
      await this.audit(user?.id ?? null, "auth.login.rate_limited", "user", user?.id ?? key, meta, {
        login: key,
        scope: err.scope,
        known_device: device !== null,
        retry_after_ms: Math.ceil(err.retryAfterMs),
      });
      throw loginThrottledError(err);
    }

    const ok = user ? await this.d.hasher.verify(user.passwordHash, input.password) : await this.d.hasher.verifyDummy(input.password);
    if (!user || !ok) {
      await this.audit(user?.id ?? null, "auth.login.failed", "user", user?.id ?? key, meta, {
        login: key,
        reason: user ? "wrong_password" : "unknown_account",
        known_device: device !== null,
      });
      throw unauthenticated("LOGIN_FAILED", INVALID_LOGIN);
    }
    if (user.status !== "active") {
      // Said only after the right password, so it reveals nothing to a guesser.
      await this.audit(user.id, "auth.login.failed", "user", user.id, meta, { login: key, reason: "suspended" });
      throw permissionDenied("ACCOUNT_SUSPENDED", "account suspended");
    }
    await this.d.rateLimits.loginSucceeded(attempt);
    if (this.d.hasher.needsRehash(user.passwordHash)) {
      // Parameters were raised since this hash was made: upgrade it now that we know the password.
      await this.d.store.setPasswordHash(user.id, await this.d.hasher.hash(input.password));
    }

    const now = this.now();
    const sessionId = randomUUID();
    const refresh = this.newRefresh(now);
    const { replaced } = await this.d.store.startSession(
      { id: sessionId, userId: user.id, deviceId, deviceName, expiresAt: this.sessionEnd(now) },
      { hash: refresh.hash, expiresAt: refresh.expiresAt },
      now,
    );
    await this.d.revocations.revoked(user.id, replaced, "replaced");
    await this.audit(user.id, "auth.login.succeeded", "session", sessionId, meta, { device_id: deviceId, replaced, known_device: device !== null });
    return {
      user,
      tokens: await this.pair(user, sessionId, refresh.token, refresh.expiresAt, now),
      // A fresh one each time (new device key, new expiry): the old one's failure count is left to expire.
      deviceToken: this.d.deviceTokens.issue(user.id, now.getTime()),
    };
  }

  /** The device key of the first candidate issued for this account and not expired; null when none is. */
  private knownDevice(userId: string, candidates: string[]): string | null {
    const now = this.now().getTime();
    for (const t of candidates.slice(0, MAX_DEVICE_TOKEN_CANDIDATES)) {
      const claims = this.d.deviceTokens.verify(t, userId, now);
      if (claims) return claims.deviceKey;
    }
    return null;
  }

  async refresh(refreshToken: string, meta: RequestMeta): Promise<TokenPair> {
    if (refreshToken === "") throw invalidArgument("refresh_token", "is required");
    if (refreshToken.length > 512) throw unauthenticated("REFRESH_TOKEN_INVALID", "invalid refresh token");
    const now = this.now();
    const next = this.newRefresh(now);
    const outcome = await this.d.store.rotateRefreshToken(hashRefreshToken(refreshToken), { hash: next.hash, expiresAt: next.expiresAt }, now);
    switch (outcome.kind) {
      case "rotated":
        return this.pair(outcome.user, outcome.session.id, next.token, outcome.session.idleExpiresAt, now);
      case "unknown":
        throw unauthenticated("REFRESH_TOKEN_INVALID", "invalid refresh token");
      case "reused": {
        // A used token came back: either the client or a thief holds a copy.
        // We cannot tell which, so the whole session ends (RFC 9700 4.14.2).
        const s = outcome.session;
        const revoked = await this.d.store.revokeSessions(s.userId, { sessionIds: [s.id] }, "refresh_token_reuse", now);
        await this.d.revocations.revoked(s.userId, [s.id], "refresh_token_reuse");
        await this.audit(null, "auth.refresh.reuse_detected", "session", s.id, meta, {
          user_id: s.userId,
          session_was_live: revoked.length > 0,
        });
        throw unauthenticated("REFRESH_TOKEN_REUSED", "refresh token already used; session revoked");
      }
      case "ended":
        throw unauthenticated("SESSION_REVOKED", outcome.reason === "suspended" ? "account suspended" : `session ${outcome.reason}`, {
          cause: outcome.reason,
        });
    }
  }

  async logout(caller: AuthContext, allSessions: boolean, meta: RequestMeta): Promise<void> {
    const now = this.now();
    const which = allSessions ? ({ all: true } as const) : { sessionIds: [caller.sessionId] };
    const ended = await this.d.store.revokeSessions(caller.userId, which, "logout", now);
    // The current session is marked even if the database had it ended already.
    const marked = [...new Set([...ended, caller.sessionId])];
    await this.d.revocations.revoked(caller.userId, marked, "logout");
    await this.audit(caller.userId, "auth.logout", "session", caller.sessionId, meta, { all_sessions: allSessions, ended });
  }

  // ---- the caller's account ------------------------------------------------

  async getMe(caller: AuthContext): Promise<UserRecord> {
    const user = await this.d.store.getUser(caller.userId);
    if (!user) throw unauthenticated("ACCOUNT_GONE", "account no longer exists");
    return user;
  }

  async listSessions(caller: AuthContext): Promise<SessionView[]> {
    const sessions = await this.d.store.listLiveSessions(caller.userId, this.now());
    return sessions.map((s) => ({ ...s, current: s.id === caller.sessionId }));
  }

  async revokeSession(caller: AuthContext, sessionIdRaw: string, meta: RequestMeta): Promise<void> {
    const sessionId = sessionIdRaw.toLowerCase();
    const session = await this.d.store.getSession(sessionId);
    // Someone else's session is "not found": never confirm that it exists.
    if (!session || session.userId !== caller.userId) throw notFound("SESSION_NOT_FOUND", "session not found");
    const ended = await this.d.store.revokeSessions(caller.userId, { sessionIds: [sessionId] }, "revoked", this.now());
    await this.d.revocations.revoked(caller.userId, [sessionId], "revoked");
    await this.audit(caller.userId, "auth.session.revoked", "session", sessionId, meta, { was_live: ended.length > 0, by_session: caller.sessionId });
  }

  async updateProfile(caller: AuthContext, displayName: string | undefined): Promise<UserRecord> {
    if (displayName === undefined) return this.getMe(caller);
    const user = await this.d.store.setDisplayName(caller.userId, v.trimmed(displayName));
    if (!user) throw unauthenticated("ACCOUNT_GONE", "account no longer exists");
    return user;
  }

  async changePassword(caller: AuthContext, current: string, next: string, meta: RequestMeta): Promise<TokenPair> {
    const user = await this.getMe(caller);
    v.checkPasswordNotGuessable("new_password", next, { username: user.username, email: user.emailNormalized });
    // Guessing the current password here is throttled like a login from a
    // known device, per session: only the session's holder can reach it, so
    // strangers' failed logins do not slow it, nor it them.
    const attempt: LoginAttempt = { accountKey: `user:${user.id}`, address: meta.clientAddress, deviceKey: `session:${caller.sessionId}` };
    try {
      await this.d.rateLimits.beginLogin(attempt);
    } catch (err) {
      if (err instanceof LoginThrottled) throw loginThrottledError(err);
      throw err;
    }
    if (!(await this.d.hasher.verify(user.passwordHash, current))) {
      await this.audit(user.id, "auth.password.change_failed", "user", user.id, meta, {});
      throw invalidArgument("current_password", "is incorrect", "PASSWORD_INCORRECT");
    }
    await this.d.rateLimits.loginSucceeded(attempt);
    await this.d.store.setPasswordHash(user.id, await this.d.hasher.hash(next));
    const now = this.now();
    // Whoever else held a session on the old password loses it.
    const ended = await this.d.store.revokeSessions(user.id, { all: true, except: caller.sessionId }, "password_changed", now);
    await this.d.revocations.revoked(user.id, ended, "password_changed");
    const refresh = this.newRefresh(now);
    await this.d.store.replaceRefreshToken(caller.sessionId, { hash: refresh.hash, expiresAt: refresh.expiresAt }, now);
    const session = await this.d.store.getSession(caller.sessionId);
    await this.audit(user.id, "auth.password.changed", "user", user.id, meta, { ended });
    return this.pair(user, caller.sessionId, refresh.token, session?.idleExpiresAt ?? refresh.expiresAt, now);
  }

  // ---- other users ---------------------------------------------------------

  async getUsers(ids: string[]): Promise<UserRecord[]> {
    const unique = [...new Set(ids.map((id) => id.toLowerCase()))];
    const users = await this.d.store.getUsers(unique);
    // In the order asked, unknown ids left out.
    const byId = new Map(users.map((u) => [u.id, u]));
    return unique.flatMap((id) => byId.get(id) ?? []);
  }

  /** A page of matches and the token of the next one ("" on the last page). */
  /** Users among the members of `workspaceId` (unset: the caller's default workspace) when workspaces are wired in. */
  async searchUsers(
    callerId: string,
    query: string,
    pageSize: number,
    pageToken = "",
    workspaceId?: string,
  ): Promise<{ users: UserRecord[]; nextPageToken: string }> {
    const q = query.trim();
    const after = decodeUserSearchToken(pageToken);
    const limit = pageSize === 0 ? SEARCH_DEFAULT_PAGE : Math.min(pageSize, SEARCH_MAX_PAGE);
    const scope = this.d.workspaces ? (await this.d.workspaces.resolve(callerId, workspaceId)).workspaceId : undefined;
    // One more than the page, to know whether there is a next one.
    const found = await this.d.store.searchUsers(q, limit + 1, after, scope);
    const users = found.slice(0, limit);
    const last = users[users.length - 1];
    const nextPageToken = found.length > limit && last ? encodeUserSearchToken(userSearchCursor(q, last)) : "";
    return { users, nextPageToken };
  }

  // ---- administration ------------------------------------------------------

  async setUserRoles(caller: AuthContext, userIdRaw: string, roles: Role[], meta: RequestMeta): Promise<UserRecord> {
    requireAdmin(caller);
    const userId = userIdRaw.toLowerCase();
    // Everyone keeps "user"; a fixed order keeps stored arrays comparable.
    const asked = new Set<Role>(["user", ...roles]);
    const wanted = ROLE_ORDER.filter((r) => asked.has(r));
    if (userId === caller.userId && !wanted.includes("admin")) {
      throw failedPrecondition("SELF_ADMIN_CHANGE", "an admin cannot remove their own admin role");
    }
    const res = await this.d.store.setRoles(userId, wanted);
    if (!res) throw notFound("USER_NOT_FOUND", "user not found");
    const now = this.now();
    // Their access tokens carry the old roles: make them refresh (recorded in the database, then pushed to every node).
    const stale = await this.d.store.markSessionsStale(userId, now, now);
    await this.d.revocations.staleBefore(userId, stale, now.getTime());
    await this.audit(caller.userId, "auth.user.roles_changed", "user", userId, meta, { from: res.before, to: wanted });
    return res.user;
  }

  async setUserStatus(caller: AuthContext, userIdRaw: string, status: UserStatus, meta: RequestMeta): Promise<UserRecord> {
    requireAdmin(caller);
    const userId = userIdRaw.toLowerCase();
    if (userId === caller.userId && status !== "active") throw failedPrecondition("SELF_ADMIN_CHANGE", "an admin cannot suspend themselves");
    const res = await this.d.store.setStatus(userId, status);
    if (!res) throw notFound("USER_NOT_FOUND", "user not found");
    let ended: string[] = [];
    if (status === "suspended") {
      ended = await this.d.store.revokeSessions(userId, { all: true }, "suspended", this.now());
      await this.d.revocations.revoked(userId, ended, "suspended");
    }
    await this.audit(caller.userId, "auth.user.status_changed", "user", userId, meta, { from: res.before, to: status, ended });
    return res.user;
  }

  /** Deletes sessions that ended more than the retention period ago. */
  purgeEndedSessions(): Promise<number> {
    return this.d.store.purgeEndedSessions(new Date(this.now().getTime() - ENDED_SESSION_RETENTION_MS));
  }

  // ---- helpers ---------------------------------------------------------------

  private sessionEnd(now: Date): Date {
    return new Date(now.getTime() + this.d.settings.sessionAbsoluteTtlSec * 1000);
  }

  private newRefresh(now: Date): { token: string; hash: Buffer; expiresAt: Date } {
    const token = newRefreshToken();
    return { token, hash: hashRefreshToken(token), expiresAt: new Date(now.getTime() + this.d.settings.refreshIdleTtlSec * 1000) };
  }

  private async pair(user: UserRecord, sessionId: string, refreshToken: string, refreshExpiresAt: Date, now: Date): Promise<TokenPair> {
    const access = await this.d.tokens.sign({ userId: user.id, sessionId, roles: user.roles }, now.getTime());
    return {
      accessToken: access.token,
      accessTokenExpiresAt: access.expiresAt,
      refreshToken,
      refreshTokenExpiresAt: refreshExpiresAt < this.sessionEnd(now) ? refreshExpiresAt : this.sessionEnd(now),
      sessionId,
    };
  }

  private async audit(
    actorId: string | null,
    action: string,
    entityType: string,
    entityId: string,
    meta: RequestMeta,
    metadata: Record<string, unknown>,
  ): Promise<void> {
    try {
      await this.d.audit.record({ actorId, action, entityType, entityId, metadata, clientAddress: meta.clientAddress });
    } catch (err) {
      // No silent gaps in the trail: the call fails (retryable) and the miss is logged.
      this.d.logger?.error({ err, action, entityId }, "audit write failed");
      throw err;
    }
  }
}

function requireAdmin(caller: AuthContext): void {
  if (!caller.roles.includes("admin")) throw permissionDenied("ADMIN_REQUIRED", "admin role required");
}

// SearchUsers page tokens: opaque to clients, a keyset position (rank, username) to us.
function userSearchCursor(query: string, user: UserRecord): UserSearchCursor {
  // The store's rank: 0 when the username has the (lower-cased) query as a prefix.
  return { rank: user.username.startsWith(query.toLowerCase()) ? 0 : 1, username: user.username };
}

export function encodeUserSearchToken(c: UserSearchCursor): string {
  return encodePageToken("usr1", [c.rank, c.username]);
}

export function decodeUserSearchToken(token: string): UserSearchCursor | null {
  const v = decodePageToken("page_token", "usr1", token, ["flag", "username"]);
  return v && { rank: v[0] as 0 | 1, username: v[1] };
}
