// Roles and status end to end (grpc-js, real server, Postgres and PGlite):
// admin-only RPCs, role changes reaching access tokens, suspension ending
// sessions and logins, and their audit rows.

import { afterAll, beforeAll, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { AuthService, UserRole, UserStatus } from "../../gen/chat/v1/auth_pb.js";
import { forEachBackend } from "../support/backends.ts";
import { provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { GrpcJsClient } from "../support/clients.ts";
import { DEFAULT_TEST_PASSWORD, registerUser } from "../support/users.ts";
import { SessionRevocations, type SessionRevokedMessage } from "../../src/auth/revocations.ts";
import { auditRows, eventually, grpcFailure, violatedFields } from "./helpers.ts";

forEachBackend("auth admin", ["postgres", "pglite"] as const, (sqlName) => {
  let backends: ProvisionedBackends;
  let server: TestServer;
  let c: GrpcJsClient;
  let admin: { id: string; token: string };

  beforeAll(async () => {
    backends = await provisionBackends({ sql: sqlName });
    server = await startTestServer(backends.env);
    c = new GrpcJsClient(server.address);
    // Bootstrap: the first admin is made in the database (as src/auth/cli.ts does).
    const u = await registerUser(server.baseUrl);
    await server.app.stores.sql.query("UPDATE users SET roles = '{user,admin}' WHERE id = $1", [u.user.id]);
    const res = await c.unary(AuthService.method.login, { login: u.user.username, password: DEFAULT_TEST_PASSWORD, deviceId: "admin-desk" });
    expect(res.user!.roles).toEqual([UserRole.USER, UserRole.ADMIN]);
    admin = { id: u.user.id, token: res.tokens!.accessToken };
  });
  afterAll(async () => {
    c?.close();
    await server?.close();
    await backends?.cleanup();
  });

  const getMe = (token: string) => c.unary(AuthService.method.getMe, {}, { token });

  it("refuses admin RPCs to a non-admin with PERMISSION_DENIED", async () => {
    const u = await registerUser(server.baseUrl);
    const other = await registerUser(server.baseUrl);
    const roles = await grpcFailure(
      c.unary(AuthService.method.setUserRoles, { userId: u.user.id, roles: [UserRole.ADMIN] }, { token: u.accessToken }),
    );
    expect(roles.code).toBe(grpc.status.PERMISSION_DENIED);
    const status = await grpcFailure(
      c.unary(AuthService.method.setUserStatus, { userId: other.user.id, status: UserStatus.SUSPENDED }, { token: u.accessToken }),
    );
    expect(status.code).toBe(grpc.status.PERMISSION_DENIED);
    expect((await getMe(other.accessToken)).user!.status).toBe(UserStatus.ACTIVE);
  });

  it("validates admin input", async () => {
    const u = await registerUser(server.baseUrl);
    const cases = [
      [c.unary(AuthService.method.setUserRoles, { userId: "x", roles: [UserRole.USER] }, { token: admin.token }), "user_id"],
      [c.unary(AuthService.method.setUserRoles, { userId: u.user.id, roles: [] }, { token: admin.token }), "roles"],
      [c.unary(AuthService.method.setUserRoles, { userId: u.user.id, roles: [UserRole.UNSPECIFIED] }, { token: admin.token }), "roles[0]"],
      [c.unary(AuthService.method.setUserStatus, { userId: u.user.id, status: UserStatus.UNSPECIFIED }, { token: admin.token }), "status"],
    ] as const;
    for (const [call, field] of cases) {
      const err = await grpcFailure(call);
      expect(err.code, field).toBe(grpc.status.INVALID_ARGUMENT);
      expect(violatedFields(err)).toEqual([field]);
    }
    const missing = await grpcFailure(
      c.unary(AuthService.method.setUserRoles, { userId: crypto.randomUUID(), roles: [UserRole.USER] }, { token: admin.token }),
    );
    expect(missing.code).toBe(grpc.status.NOT_FOUND);
    const self = await grpcFailure(c.unary(AuthService.method.setUserRoles, { userId: admin.id, roles: [UserRole.USER] }, { token: admin.token }));
    expect(self.code).toBe(grpc.status.FAILED_PRECONDITION);
  });

  it("a role change makes the user's current access tokens refresh, and the new token carries the role", async () => {
    const u = await registerUser(server.baseUrl);
    const res = await c.unary(AuthService.method.setUserRoles, { userId: u.user.id, roles: [UserRole.ADMIN] }, { token: admin.token });
    expect(res.user!.roles).toEqual([UserRole.USER, UserRole.ADMIN]);
    expect(res.user!.email).toBe("");

    const outdated = await grpcFailure(getMe(u.accessToken));
    expect(outdated.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(outdated.details).toMatch(/refresh/);
    const refreshed = await c.unary(AuthService.method.refresh, { refreshToken: u.refreshToken });
    const token = refreshed.tokens!.accessToken;
    expect((await getMe(token)).user!.roles).toContain(UserRole.ADMIN);
    // The new admin can use admin RPCs (on someone else).
    const victim = await registerUser(server.baseUrl);
    await c.unary(AuthService.method.setUserRoles, { userId: victim.user.id, roles: [UserRole.USER] }, { token });

    const rows = await auditRows(server.app.stores.sql, { action: "auth.user.roles_changed", entityId: u.user.id });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ actor_id: admin.id, entity_type: "user", metadata: { from: ["user"], to: ["user", "admin"] } });
  });

  it("suspending a user ends their sessions, refuses login and refresh, announces it; re-activating lets them back", async () => {
    const messages: SessionRevokedMessage[] = [];
    const unsubscribe = await SessionRevocations.subscribe(server.app.stores.ephemeral, (m) => messages.push(m));
    const u = await registerUser(server.baseUrl, { deviceId: "one" });
    const two = await c.unary(AuthService.method.login, { login: u.user.username, password: DEFAULT_TEST_PASSWORD, deviceId: "two" });

    const res = await c.unary(AuthService.method.setUserStatus, { userId: u.user.id, status: UserStatus.SUSPENDED }, { token: admin.token });
    expect(res.user!.status).toBe(UserStatus.SUSPENDED);
    for (const t of [u.accessToken, two.tokens!.accessToken]) expect((await grpcFailure(getMe(t))).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await grpcFailure(c.unary(AuthService.method.refresh, { refreshToken: two.tokens!.refreshToken }))).code).toBe(
      grpc.status.UNAUTHENTICATED,
    );
    const blocked = await grpcFailure(c.unary(AuthService.method.login, { login: u.user.username, password: DEFAULT_TEST_PASSWORD }));
    expect(blocked.code).toBe(grpc.status.PERMISSION_DENIED);
    // A wrong password still gets the ordinary answer: suspension is not revealed to guessers.
    const guess = await grpcFailure(c.unary(AuthService.method.login, { login: u.user.username, password: "wrong password" }));
    expect(guess.code).toBe(grpc.status.UNAUTHENTICATED);

    const msg = await eventually(() => messages.find((m) => m.userId === u.user.id && m.reason === "suspended"));
    expect(msg.sessionIds.sort()).toEqual([u.sessionId, two.tokens!.sessionId].sort());
    await unsubscribe();

    await c.unary(AuthService.method.setUserStatus, { userId: u.user.id, status: UserStatus.ACTIVE }, { token: admin.token });
    const back = await c.unary(AuthService.method.login, { login: u.user.username, password: DEFAULT_TEST_PASSWORD });
    expect(back.user!.status).toBe(UserStatus.ACTIVE);

    const rows = await auditRows(server.app.stores.sql, { action: "auth.user.status_changed", entityId: u.user.id });
    expect(rows.map((r) => r.metadata.to)).toEqual(["suspended", "active"]);
    expect(rows[0]).toMatchObject({ actor_id: admin.id, metadata: { from: "active" } });
  });
});
