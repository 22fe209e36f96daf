// AuthService end to end through the real server with a grpc-js client, on a
// real Postgres and on the embedded PGlite: devices and sessions, refresh
// rotation with reuse detection, revocation, logout, expiry, password change,
// and the audit rows each of those leaves.

import { afterAll, beforeAll, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { AuthService } from "../../gen/chat/v1/auth_pb.js";
import { forEachBackend } from "../support/backends.ts";
import { provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { GrpcJsClient } from "../support/clients.ts";
import { DEFAULT_TEST_PASSWORD, registerUser } from "../support/users.ts";
import { SessionRevocations, type SessionRevokedMessage } from "../../src/auth/revocations.ts";
import { auditRows, eventually, grpcFailure, violatedFields } from "./helpers.ts";

forEachBackend("auth sessions", ["postgres", "pglite"] as const, (sqlName) => {
  let backends: ProvisionedBackends;
  let server: TestServer;
  let c: GrpcJsClient;

  beforeAll(async () => {
    backends = await provisionBackends({ sql: sqlName });
    server = await startTestServer(backends.env);
    c = new GrpcJsClient(server.address);
  });
  afterAll(async () => {
    c?.close();
    await server?.close();
    await backends?.cleanup();
  });

  const login = (loginName: string, deviceId: string, password = DEFAULT_TEST_PASSWORD) =>
    c.unary(AuthService.method.login, { login: loginName, password, deviceId, deviceName: `${deviceId} name` });
  const getMe = (token: string) => c.unary(AuthService.method.getMe, {}, { token });
  const refresh = (refreshToken: string) => c.unary(AuthService.method.refresh, { refreshToken });
  const listSessions = (token: string) => c.unary(AuthService.method.listSessions, {}, { token });

  it("register -> two devices -> rotate -> reuse revokes -> RevokeSession -> Logout(all_sessions)", async () => {
    const testStart = Date.now();
    const sql = server.app.stores.sql;
    const revokedMessages: SessionRevokedMessage[] = [];
    const unsubscribe = await SessionRevocations.subscribe(server.app.stores.ephemeral, (m) => revokedMessages.push(m));

    const reg = await registerUser(server.baseUrl, { deviceId: "phone" });
    const username = reg.user.username;

    // Logging in again on the phone replaces its session; the laptop gets its own.
    const phone = await login(username, "phone");
    const laptop = await login(username.toUpperCase(), "laptop");
    expect((await grpcFailure(getMe(reg.accessToken))).code).toBe(grpc.status.UNAUTHENTICATED); // replaced session
    const sessions = (await listSessions(phone.tokens!.accessToken)).sessions;
    expect(sessions.map((s) => s.deviceId).sort()).toEqual(["laptop", "phone"]);
    expect(sessions.find((s) => s.deviceId === "phone")).toMatchObject({
      current: true,
      sessionId: phone.tokens!.sessionId,
      deviceName: "phone name",
    });
    expect(sessions.find((s) => s.deviceId === "laptop")).toMatchObject({ current: false, sessionId: laptop.tokens!.sessionId });
    for (const s of sessions) {
      // Made during this test, used no earlier than made (seconds: the wire's resolution).
      expect(timestampMs(s.createdAt!)).toBeGreaterThanOrEqual(Math.floor(testStart / 1000) * 1000);
      expect(timestampMs(s.lastUsedAt!)).toBeGreaterThanOrEqual(timestampMs(s.createdAt!));
      expect(Number(s.expiresAt!.seconds)).toBeGreaterThan(Date.now() / 1000);
    }

    // Refresh rotates: a new refresh token, a working access token, same session.
    const rotated = await refresh(laptop.tokens!.refreshToken);
    expect(rotated.tokens!.refreshToken).not.toBe(laptop.tokens!.refreshToken);
    expect(rotated.tokens!.sessionId).toBe(laptop.tokens!.sessionId);
    expect((await getMe(rotated.tokens!.accessToken)).user!.id).toBe(reg.user.id);

    // The old refresh token again: reuse. The whole laptop session ends, new tokens included.
    const reuse = await grpcFailure(refresh(laptop.tokens!.refreshToken));
    expect(reuse.code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await grpcFailure(refresh(rotated.tokens!.refreshToken))).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await grpcFailure(getMe(rotated.tokens!.accessToken))).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await listSessions(phone.tokens!.accessToken)).sessions.map((s) => s.deviceId)).toEqual(["phone"]);

    // RevokeSession from the phone kills the tablet's access token on its next call.
    const tablet = await login(username, "tablet");
    expect((await getMe(tablet.tokens!.accessToken)).user!.id).toBe(reg.user.id);
    await c.unary(AuthService.method.revokeSession, { sessionId: tablet.tokens!.sessionId }, { token: phone.tokens!.accessToken });
    const killed = await grpcFailure(getMe(tablet.tokens!.accessToken));
    expect(killed.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(killed.details).toMatch(/revoked/);
    expect((await grpcFailure(refresh(tablet.tokens!.refreshToken))).code).toBe(grpc.status.UNAUTHENTICATED);

    // Logout(all_sessions) from the phone ends everything.
    const desktop = await login(username, "desktop");
    await c.unary(AuthService.method.logout, { allSessions: true }, { token: phone.tokens!.accessToken });
    for (const t of [phone.tokens!, desktop.tokens!]) {
      expect((await grpcFailure(getMe(t.accessToken))).code).toBe(grpc.status.UNAUTHENTICATED);
      expect((await grpcFailure(refresh(t.refreshToken))).code).toBe(grpc.status.UNAUTHENTICATED);
    }
    const live = await sql.query<{ n: number }>("SELECT count(*)::int AS n FROM sessions WHERE user_id = $1 AND revoked_at IS NULL", [reg.user.id]);
    expect(live.rows[0].n).toBe(0);

    // Every ended session was announced for the realtime layer to close streams.
    const announced = await eventually(() => {
      const ids = new Set(revokedMessages.filter((m) => m.userId === reg.user.id).flatMap((m) => m.sessionIds));
      const want = [reg.sessionId, laptop.tokens!.sessionId, tablet.tokens!.sessionId, phone.tokens!.sessionId, desktop.tokens!.sessionId];
      return want.every((id) => ids.has(id)) ? ids : null;
    });
    expect(announced.size).toBeGreaterThanOrEqual(5);
    await unsubscribe();

    // Audit trail for each step, with the client address.
    const rows = await auditRows(sql);
    const mine = rows.filter((r) => r.actor_id === reg.user.id || r.metadata.user_id === reg.user.id);
    const actions = mine.map((r) => r.action);
    expect(actions).toContain("auth.register");
    expect(actions.filter((a) => a === "auth.login.succeeded")).toHaveLength(4);
    expect(mine.find((r) => r.action === "auth.refresh.reuse_detected")).toMatchObject({
      entity_type: "session",
      entity_id: laptop.tokens!.sessionId,
    });
    expect(mine.find((r) => r.action === "auth.session.revoked")).toMatchObject({ entity_id: tablet.tokens!.sessionId });
    expect(mine.find((r) => r.action === "auth.logout")).toMatchObject({ metadata: expect.objectContaining({ all_sessions: true }) });
    expect(mine.every((r) => r.client_address === "127.0.0.1" || r.client_address === "::ffff:127.0.0.1")).toBe(true);
  });

  it("refuses another user's session id as not found and a malformed one as invalid", async () => {
    const a = await registerUser(server.baseUrl);
    const b = await registerUser(server.baseUrl);
    const notMine = await grpcFailure(c.unary(AuthService.method.revokeSession, { sessionId: b.sessionId }, { token: a.accessToken }));
    expect(notMine.code).toBe(grpc.status.NOT_FOUND);
    expect((await getMe(b.accessToken)).user!.id).toBe(b.user.id);
    const bad = await grpcFailure(c.unary(AuthService.method.revokeSession, { sessionId: "nope" }, { token: a.accessToken }));
    expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(violatedFields(bad)).toEqual(["session_id"]);
  });

  it("Logout without all_sessions ends only the current session", async () => {
    const u = await registerUser(server.baseUrl, { deviceId: "one" });
    const two = await login(u.user.username, "two");
    await c.unary(AuthService.method.logout, {}, { token: u.accessToken });
    expect((await grpcFailure(getMe(u.accessToken))).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await grpcFailure(refresh(u.refreshToken))).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await listSessions(two.tokens!.accessToken)).sessions.map((s) => s.deviceId)).toEqual(["two"]);
  });

  it("two concurrent refreshes with one token: one rotates, the other is a reuse that ends the session", async () => {
    const u = await registerUser(server.baseUrl);
    const results = await Promise.allSettled([refresh(u.refreshToken), refresh(u.refreshToken)]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const winner = results.find((r) => r.status === "fulfilled")!.value;
    expect((await grpcFailure(refresh(winner.tokens!.refreshToken))).code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("ends sessions past their absolute lifetime or idle timeout", async () => {
    const sql = server.app.stores.sql;
    const absolute = await registerUser(server.baseUrl);
    // Move the session's absolute end into the past rather than waiting for it.
    await sql.query("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = $1", [absolute.sessionId]);
    expect((await grpcFailure(refresh(absolute.refreshToken))).details).toMatch(/expired/);
    expect((await listSessions(absolute.accessToken)).sessions).toEqual([]);

    const idle = await registerUser(server.baseUrl);
    await sql.query("UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE session_id = $1", [idle.sessionId]);
    expect((await grpcFailure(refresh(idle.refreshToken))).details).toMatch(/idle/);
  });

  it("unknown refresh tokens are UNAUTHENTICATED, an empty one INVALID_ARGUMENT", async () => {
    expect((await grpcFailure(refresh("not-a-token"))).code).toBe(grpc.status.UNAUTHENTICATED);
    const empty = await grpcFailure(refresh(""));
    expect(empty.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(violatedFields(empty)).toEqual(["refresh_token"]);
  });

  it("ChangePassword needs the current password and ends every other session", async () => {
    const u = await registerUser(server.baseUrl, { deviceId: "main" });
    const other = await login(u.user.username, "other");
    const wrong = await grpcFailure(
      c.unary(AuthService.method.changePassword, { currentPassword: "wrong password!", newPassword: "a new password" }, { token: u.accessToken }),
    );
    expect(wrong.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(violatedFields(wrong)).toEqual(["current_password"]);
    const short = await grpcFailure(
      c.unary(AuthService.method.changePassword, { currentPassword: DEFAULT_TEST_PASSWORD, newPassword: "short" }, { token: u.accessToken }),
    );
    expect(violatedFields(short)).toEqual(["new_password"]);

    const res = await c.unary(
      AuthService.method.changePassword,
      { currentPassword: DEFAULT_TEST_PASSWORD, newPassword: "a brand new password" },
      { token: u.accessToken },
    );
    expect(res.tokens!.sessionId).toBe(u.sessionId);
    expect((await getMe(res.tokens!.accessToken)).user!.id).toBe(u.user.id);
    expect((await grpcFailure(getMe(other.tokens!.accessToken))).code).toBe(grpc.status.UNAUTHENTICATED);
    // The old refresh token of this session is gone (not a "reuse"), the new one works.
    expect((await grpcFailure(refresh(u.refreshToken))).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await refresh(res.tokens!.refreshToken)).tokens!.sessionId).toBe(u.sessionId);
    expect((await grpcFailure(login(u.user.username, "x", DEFAULT_TEST_PASSWORD))).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await login(u.user.username, "x", "a brand new password")).user!.id).toBe(u.user.id);
    expect((await auditRows(server.app.stores.sql, { action: "auth.password.changed", entityId: u.user.id })).length).toBe(1);
  });

  it("UpdateProfile changes the display name, validated", async () => {
    const u = await registerUser(server.baseUrl);
    expect(u.user.displayName).toBe(u.user.username);
    const res = await c.unary(AuthService.method.updateProfile, { displayName: "  Ada Lovelace " }, { token: u.accessToken });
    expect(res.user!.displayName).toBe("Ada Lovelace");
    expect((await getMe(u.accessToken)).user!.displayName).toBe("Ada Lovelace");
    const unchanged = await c.unary(AuthService.method.updateProfile, {}, { token: u.accessToken });
    expect(unchanged.user!.displayName).toBe("Ada Lovelace");
    for (const bad of ["", "x".repeat(65), "a\u0000b", "evil\u202Ename"]) {
      const err = await grpcFailure(c.unary(AuthService.method.updateProfile, { displayName: bad }, { token: u.accessToken }));
      expect(err.code, JSON.stringify(bad)).toBe(grpc.status.INVALID_ARGUMENT);
      expect(violatedFields(err)).toEqual(["display_name"]);
    }
  });
});
