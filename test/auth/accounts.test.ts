// Accounts end to end (grpc-js and Connect clients, real server, Postgres and
// PGlite): uniqueness, input validation with field violations, access-token
// checks, argon2id storage and re-hashing, rate limits, profiles and search.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { Code } from "@connectrpc/connect";
import { SignJWT, UnsecuredJWT } from "jose";
import { AuthService } from "../../gen/chat/v1/auth_pb.js";
import { ConversationService } from "../../gen/chat/v1/conversation_pb.js";
import { grpcErrorInfo } from "../support/errors.ts";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { forEachBackend } from "../support/backends.ts";
import { provisionBackends, startTestServer, TEST_SECRET, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { connectClient, GrpcJsClient } from "../support/clients.ts";
import { DEFAULT_TEST_PASSWORD, registerUser } from "../support/users.ts";
import { AccessTokens } from "../../src/auth/tokens.ts";
import { auditRows, connectFailure, grpcFailure, retryDelayMs, violatedFields } from "./helpers.ts";

/** The m, t, p parameters of a PHC string, in whatever order it lists them. */
function argon2Params(hash: string): { m: number; t: number; p: number } {
  const section = hash.split("$")[3] ?? "";
  const kv = Object.fromEntries(section.split(",").map((x) => x.split("=")));
  return { m: Number(kv.m), t: Number(kv.t), p: Number(kv.p) };
}

const rnd = () => Math.random().toString(36).slice(2, 10);

forEachBackend("auth accounts", ["postgres", "pglite"] as const, (sqlName) => {
  let backends: ProvisionedBackends;
  let server: TestServer;
  let c: GrpcJsClient;

  beforeAll(async () => {
    backends = await provisionBackends({ sql: sqlName });
    // Long login delays, so that a refusal right after a failure does not depend on how fast the machine is.
    server = await startTestServer(backends.env, { LOGIN_BACKOFF_BASE_SEC: "60" });
    c = new GrpcJsClient(server.address);
  });
  afterAll(async () => {
    c?.close();
    await server?.close();
    await backends?.cleanup();
  });

  const register = (r: { email?: string; username?: string; password?: string; displayName?: string; deviceId?: string }) =>
    c.unary(AuthService.method.register, {
      email: r.email ?? `${rnd()}@example.test`,
      username: r.username ?? `u_${rnd()}`,
      password: r.password ?? DEFAULT_TEST_PASSWORD,
      displayName: r.displayName ?? "",
      deviceId: r.deviceId ?? "",
    });
  const login = (loginName: string, password: string, deviceId = "dev") =>
    c.unary(AuthService.method.login, { login: loginName, password, deviceId });

  describe("uniqueness", () => {
    it("normalises email and username, and refuses case-insensitive duplicates with ALREADY_EXISTS", async () => {
      const name = `Ada_${rnd()}`;
      const email = `  Ada.${rnd()}@Example.TEST `;
      const res = await register({ email, username: name });
      expect(res.user!.username).toBe(name.toLowerCase());
      expect(res.user!.email).toBe(email.trim());
      expect(res.user!.displayName).toBe(name.toLowerCase());

      const dupName = await grpcFailure(register({ username: name.toUpperCase() }));
      expect(dupName.code).toBe(grpc.status.ALREADY_EXISTS);
      expect(dupName.details).toMatch(/username/);
      const dupEmail = await grpcFailure(register({ email: email.trim().toLowerCase() }));
      expect(dupEmail.code).toBe(grpc.status.ALREADY_EXISTS);
      expect(dupEmail.details).toMatch(/email/);

      // Either spelling logs in.
      expect((await login(email.toUpperCase(), DEFAULT_TEST_PASSWORD)).user!.id).toBe(res.user!.id);
      expect((await login(name.toUpperCase(), DEFAULT_TEST_PASSWORD)).user!.id).toBe(res.user!.id);
    });

    it("lets exactly one of several concurrent registrations of one username win", async () => {
      const name = `race_${rnd()}`;
      const results = await Promise.allSettled(Array.from({ length: 5 }, () => register({ username: name })));
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      for (const r of results) if (r.status === "rejected") expect((r.reason as grpc.ServiceError).code).toBe(grpc.status.ALREADY_EXISTS);
    });
  });

  describe("validation", () => {
    const cases: { name: string; call: () => Promise<unknown>; field: string }[] = [
      { name: "empty email", call: () => register({ email: "" }), field: "email" },
      { name: "malformed email", call: () => register({ email: "not-an-email" }), field: "email" },
      { name: "email with spaces", call: () => register({ email: "a b@example.test" }), field: "email" },
      { name: "username too short", call: () => register({ username: "ab" }), field: "username" },
      { name: "username too long", call: () => register({ username: "a".repeat(33) }), field: "username" },
      { name: "username with bad characters", call: () => register({ username: "bad-name!" }), field: "username" },
      { name: "password too short", call: () => register({ password: "1234567" }), field: "password" },
      { name: "password too long (not truncated)", call: () => register({ password: "p".repeat(129) }), field: "password" },
      { name: "password too long in characters", call: () => register({ password: "é".repeat(129) }), field: "password" },
      { name: "very common password", call: () => register({ password: "Password123" }), field: "password" },
      { name: "one repeated character", call: () => register({ password: "zzzzzzzzzz" }), field: "password" },
      { name: "password containing the username", call: () => register({ username: "frodo_b", password: "my frodo_b secret" }), field: "password" },
      { name: "display name too long", call: () => register({ displayName: "d".repeat(65) }), field: "display_name" },
      { name: "device id too long", call: () => register({ deviceId: "x".repeat(129) }), field: "device_id" },
      { name: "empty login", call: () => login("", "whatever password"), field: "login" },
      { name: "empty login password", call: () => login("someone", ""), field: "password" },
      { name: "over-long login password", call: () => login("someone", "p".repeat(129)), field: "password" },
    ];
    it.each(cases)("$name -> INVALID_ARGUMENT naming $field (grpc-js)", async ({ call, field }) => {
      const err = await grpcFailure(call());
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(violatedFields(err)).toEqual([field]);
      expect(err.details).not.toMatch(/\.ts:\d+/);
    });

    it("gives the same field violations to a Connect client", async () => {
      const client = connectClient(AuthService, "connect", server.baseUrl);
      const err = await connectFailure(client.register({ email: "x@example.test", username: "okname", password: "p".repeat(200) }));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.findDetails(BadRequestSchema)[0].fieldViolations.map((v) => v.field)).toEqual(["password"]);
    });

    it("keeps every character of a long password (no truncation)", async () => {
      const base = "x".repeat(100);
      const u = await registerUser(server.baseUrl, { password: base + "A".repeat(28) }); // 128 characters
      expect((await grpcFailure(login(u.user.username, base + "B".repeat(28)))).code).toBe(grpc.status.UNAUTHENTICATED);
      expect((await login(u.user.username, base + "A".repeat(28))).user!.id).toBe(u.user.id);
    });

    it("validates GetUsers and SearchUsers input", async () => {
      const u = await registerUser(server.baseUrl);
      const badId = await grpcFailure(c.unary(AuthService.method.getUsers, { userIds: ["nope"] }, { token: u.accessToken }));
      // The proto's rules name the element (protovalidate paths).
      expect(violatedFields(badId)).toEqual(["user_ids[0]"]);
      const tooMany = Array.from({ length: 501 }, () => crypto.randomUUID());
      const many = await grpcFailure(c.unary(AuthService.method.getUsers, { userIds: tooMany }, { token: u.accessToken }));
      expect(many.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(violatedFields(many)).toEqual(["user_ids"]);
      const ok = await c.unary(AuthService.method.getUsers, { userIds: tooMany.slice(0, 500) }, { token: u.accessToken });
      expect(ok.users).toEqual([]);
      const empty = await grpcFailure(c.unary(AuthService.method.searchUsers, { query: "  " }, { token: u.accessToken }));
      expect(violatedFields(empty)).toEqual(["query"]);
      const neg = await grpcFailure(c.unary(AuthService.method.searchUsers, { query: "a", pageSize: -1 }, { token: u.accessToken }));
      expect(violatedFields(neg)).toEqual(["page_size"]);
    });
  });

  describe("access tokens", () => {
    const getMe = (token: string) => c.unary(AuthService.method.getMe, {}, { token });

    it("accepts a token signed with the configured secret and refuses expired, tampered and foreign ones", async () => {
      const u = await registerUser(server.baseUrl);
      const signer = new AccessTokens(TEST_SECRET, 900);
      const fresh = await signer.sign({ userId: u.user.id, sessionId: u.sessionId, roles: ["user"] });
      expect((await getMe(fresh.token)).user!.id).toBe(u.user.id); // control: the test secret is the server's

      const expired = await signer.sign({ userId: u.user.id, sessionId: u.sessionId, roles: ["user"] }, Date.now() - 3600_000);
      const expiredErr = await grpcFailure(getMe(expired.token));
      expect(expiredErr.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(expiredErr.details).toMatch(/expired/);

      const [h, p, s] = u.accessToken.split(".");
      const payload = JSON.parse(Buffer.from(p, "base64url").toString());
      const forged = Buffer.from(JSON.stringify({ ...payload, roles: ["user", "admin"] })).toString("base64url");
      const flipped = s.slice(0, -2) + (s.at(-2) === "A" ? "B" : "A") + s.at(-1);
      const wrongKey = await new AccessTokens("another-secret-that-is-32-bytes-long!!", 900).sign({
        userId: u.user.id,
        sessionId: u.sessionId,
        roles: ["user"],
      });
      const noType = await new SignJWT({ sid: u.sessionId, roles: ["user"] })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(u.user.id)
        .setIssuer("chat.v1")
        .setAudience("chat.v1")
        .setIssuedAt()
        .setExpirationTime("5m")
        .sign(new TextEncoder().encode(TEST_SECRET));
      const unsigned = new UnsecuredJWT({ sid: u.sessionId, roles: ["admin"] })
        .setSubject(u.user.id)
        .setIssuer("chat.v1")
        .setAudience("chat.v1")
        .setIssuedAt()
        .setExpirationTime("5m")
        .encode();
      const key = new TextEncoder().encode(TEST_SECRET);
      // Well signed with the server's own secret, but wrong in shape: each must be UNAUTHENTICATED, never INTERNAL.
      const signed = (claims: Record<string, unknown>, header: Record<string, unknown> = {}, alg = "HS256") =>
        new SignJWT({ sid: u.sessionId, roles: ["user"], ...claims })
          .setProtectedHeader({ alg, typ: "at+jwt", ...header })
          .setSubject(typeof claims.sub === "string" ? claims.sub : u.user.id)
          .setIssuer("chat.v1")
          .setAudience("chat.v1")
          .setIssuedAt(typeof claims.iat === "number" ? claims.iat : Math.floor(Date.now() / 1000))
          .setExpirationTime("5m")
          .sign(key);
      // The last base64url character of a 32-byte signature carries 2 unused bits: same bytes, other text.
      const last = s.at(-1)!;
      const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
      const sameBytes = s.slice(0, -1) + alphabet[alphabet.indexOf(last) ^ 1];
      for (const [what, token] of [
        ["sub not a uuid", await signed({ sub: "not-a-uuid" })],
        ["sid not a uuid", await signed({ sid: "1; DROP TABLE users" })],
        ["roles not strings", await signed({ roles: [1] })],
        ["HS512 with the same secret", await signed({}, {}, "HS512")],
        ["header with kid", await signed({}, { kid: "k1" })],
        ["issued in the future", await signed({ iat: Math.floor(Date.now() / 1000) + 3600 })],
        ["not before in the future", await signed({ nbf: Math.floor(Date.now() / 1000) + 3600 })],
        ["non-canonical signature text", `${h}.${p}.${sameBytes}`],
        ["four parts", `${u.accessToken}.x`],
        ["tampered payload", `${h}.${forged}.${s}`],
        ["tampered signature", `${h}.${p}.${flipped}`],
        ["other secret", wrongKey.token],
        ["no at+jwt type", noType],
        ["alg none", unsigned],
        ["garbage", "abc.def.ghi"],
      ] as const) {
        const err = await grpcFailure(getMe(token));
        expect(err.code, what).toBe(grpc.status.UNAUTHENTICATED);
      }
      expect((await grpcFailure(c.unary(AuthService.method.getMe, {}))).code).toBe(grpc.status.UNAUTHENTICATED);
    });

    it("requires a token on every AuthService RPC except Register, Login and Refresh", async () => {
      const open = new Set(["Register", "Login", "Refresh"]);
      const guarded = AuthService.methods.filter((m) => !open.has(m.name));
      expect(guarded.length).toBe(AuthService.methods.length - 3);
      for (const m of guarded) {
        const err = await grpcFailure(c.unary(m as never, {}));
        expect(err.code, m.name).toBe(grpc.status.UNAUTHENTICATED);
      }
    });
  });

  describe("password storage", () => {
    it("stores an argon2id hash with at least the configured parameters", async () => {
      const u = await registerUser(server.baseUrl);
      const { rows } = await server.app.stores.sql.query<{ password_hash: string }>("SELECT password_hash FROM users WHERE id = $1", [u.user.id]);
      const hash = rows[0].password_hash;
      expect(hash.startsWith("$argon2id$")).toBe(true);
      const params = argon2Params(hash);
      const cfg = server.app.config.auth.argon2;
      expect(params.m).toBeGreaterThanOrEqual(Math.max(19456, cfg.memoryCost));
      expect(params.t).toBeGreaterThanOrEqual(Math.max(2, cfg.timeCost));
      expect(params.p).toBeGreaterThanOrEqual(1);
      expect(hash).not.toContain(DEFAULT_TEST_PASSWORD);
    });
  });

  describe("login throttling", () => {
    it("answers the 6th rapid failed login for one account with RESOURCE_EXHAUSTED and a retry delay", async () => {
      const u = await registerUser(server.baseUrl);
      const sameMessage: string[] = [];
      for (let i = 1; i <= 5; i++) {
        const err = await grpcFailure(login(i % 2 ? u.user.username : u.user.email, `wrong password ${i}`));
        expect(err.code, `attempt ${i}`).toBe(grpc.status.UNAUTHENTICATED);
        sameMessage.push(err.details);
      }
      // Even the right password is held back now, for the first delay (then longer ones: login-throttling.test.ts).
      const sixth = await grpcFailure(login(u.user.username, DEFAULT_TEST_PASSWORD));
      expect(sixth.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      const delay = retryDelayMs(sixth);
      expect(delay).toBeGreaterThan(0);
      expect(delay).toBeLessThanOrEqual(server.app.config.auth.rateLimits.loginBackoffBaseSec * 1000);

      // An unknown account gets the very same message as a wrong password.
      const unknown = await grpcFailure(login(`nobody_${rnd()}`, "some password"));
      expect(unknown.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(new Set([...sameMessage, unknown.details])).toEqual(new Set(["invalid login or password"]));

      // Other accounts are not affected.
      const other = await registerUser(server.baseUrl);
      expect((await login(other.user.username, DEFAULT_TEST_PASSWORD)).user!.id).toBe(other.user.id);

      const failed = await auditRows(server.app.stores.sql, { action: "auth.login.failed", entityId: u.user.id });
      expect(failed).toHaveLength(5);
      expect(failed[0]).toMatchObject({ actor_id: u.user.id, metadata: expect.objectContaining({ reason: "wrong_password" }) });
      expect(await auditRows(server.app.stores.sql, { action: "auth.login.rate_limited", entityId: u.user.id })).toHaveLength(1);
      const unknownRows = (await auditRows(server.app.stores.sql, { action: "auth.login.failed" })).filter((r) => r.actor_id === null);
      expect(unknownRows.at(-1)!.metadata).toMatchObject({ reason: "unknown_account" });
    });

    it("a success resets the account's count", async () => {
      const u = await registerUser(server.baseUrl);
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < 4; i++) await grpcFailure(login(u.user.username, "wrong password"));
        expect((await login(u.user.username, DEFAULT_TEST_PASSWORD)).user!.id).toBe(u.user.id);
      }
    });
  });

  describe("profiles and search", () => {
    it("GetUsers returns public profiles without email, in request order, unknown ids left out", async () => {
      const a = await registerUser(server.baseUrl);
      const b = await registerUser(server.baseUrl);
      const res = await c.unary(
        AuthService.method.getUsers,
        { userIds: [b.user.id, crypto.randomUUID(), a.user.id, b.user.id] },
        { token: a.accessToken },
      );
      expect(res.users.map((u) => u.id)).toEqual([b.user.id, a.user.id]);
      for (const u of res.users) expect(u.email).toBe("");
      expect((await c.unary(AuthService.method.getMe, {}, { token: a.accessToken })).user!.email).toContain("@");
      expect((await grpcFailure(c.unary(AuthService.method.getUsers, { userIds: [a.user.id] }))).code).toBe(grpc.status.UNAUTHENTICATED);
    });

    it("SearchUsers matches username and display-name prefixes, case-insensitively, LIKE characters literally", async () => {
      const tag = rnd().replace(/\d/g, "q").slice(0, 6);
      const me = await registerUser(server.baseUrl);
      const ann = await register({ username: `${tag}_ann`, displayName: "Zed Person" });
      const bob = await register({ username: `${tag}xbob`, displayName: `${tag.toUpperCase()} Bobby` });
      const carl = await register({ username: `carl_${tag}`, displayName: `${tag} Carl` });
      const search = (query: string, pageSize = 0) => c.unary(AuthService.method.searchUsers, { query, pageSize }, { token: me.accessToken });

      const all = await search(tag.toUpperCase());
      expect(all.users.map((u) => u.id).sort()).toEqual([ann.user!.id, bob.user!.id, carl.user!.id].sort());
      for (const u of all.users) expect(u.email).toBe("");
      // "_" is literal: it matches ann's underscore, not bob's "x".
      expect((await search(`${tag}_`)).users.map((u) => u.id)).toEqual([ann.user!.id]);
      expect((await search("%")).users).toEqual([]);
      expect((await search(tag, 1)).users).toHaveLength(1);
      expect((await search("zed pers")).users.map((u) => u.id)).toContain(ann.user!.id);
    });

    it("SearchUsers pages with next_page_token: username matches first, no overlap, no gap; bad tokens are INVALID_ARGUMENT", async () => {
      const tag = rnd().replace(/\d/g, "q").slice(0, 6);
      const me = await registerUser(server.baseUrl);
      // Four username matches (rank 0) and three display-name-only matches (rank 1), registered out of order.
      const ids: Record<string, string> = {};
      for (const [username, displayName] of [
        [`${tag}_d`, "Dee"],
        [`zz_${tag}_y`, `${tag} Yan`],
        [`${tag}_a`, "Ann"],
        [`${tag}.c`, "Cee"],
        [`aa_${tag}_x`, `${tag.toUpperCase()} Xi`],
        [`${tag}_b`, "Bea"],
        [`mm_${tag}_z`, `${tag} Zed`],
      ]) {
        ids[username] = (await register({ username, displayName })).user!.id;
      }
      const search = (pageSize: number, pageToken = "") =>
        c.unary(AuthService.method.searchUsers, { query: tag, pageSize, pageToken }, { token: me.accessToken });
      const walked: string[] = [];
      const tokens: string[] = [];
      let token = "";
      do {
        const page = await search(2, token);
        expect(page.users.length).toBeLessThanOrEqual(2);
        walked.push(...page.users.map((u) => u.username));
        token = page.nextPageToken;
        tokens.push(token);
      } while (token !== "" && tokens.length < 10);
      expect(tokens).toHaveLength(4); // 2 + 2 + 2 + 1, the last page without a token
      const usernameMatches = Object.keys(ids)
        .filter((u) => u.startsWith(tag))
        .sort();
      const displayMatches = Object.keys(ids)
        .filter((u) => !u.startsWith(tag))
        .sort();
      expect(walked).toEqual([...usernameMatches, ...displayMatches]);
      // One big page agrees with the walk.
      const one = await search(50);
      expect(one.users.map((u) => u.username)).toEqual(walked);
      expect(one.nextPageToken).toBe("");
      // A token is strict: not a token, another list's token, out-of-range parts.
      const other = (await c.unary(ConversationService.method.listConversations, { pageSize: 1 }, { token: me.accessToken })).nextPageToken;
      for (const bad of [
        "not a token",
        "e30",
        Buffer.from(`usr1:2:${tag}_a`).toString("base64url"),
        Buffer.from("usr1:0:No Caps").toString("base64url"),
        Buffer.from(`usr1:0:${tag}_a:extra`).toString("base64url"),
        Buffer.from(`conv1:1:${crypto.randomUUID()}`).toString("base64url"),
        other || "Y29udjE6MTox",
      ]) {
        const err = await grpcFailure(search(2, bad));
        expect(err.code, bad).toBe(grpc.status.INVALID_ARGUMENT);
        expect(violatedFields(err)).toEqual(["page_token"]);
        expect(grpcErrorInfo(err)).toMatchObject({ domain: "chat.v1", reason: "PAGE_TOKEN_INVALID" });
      }
    });
  });
});

forEachBackend("auth limits and re-hashing", ["postgres", "pglite"] as const, (sqlName) => {
  let backends: ProvisionedBackends;
  let server: TestServer | undefined;

  beforeAll(async () => {
    backends = await provisionBackends({ sql: sqlName });
  });
  afterAll(async () => {
    await server?.close();
    await backends?.cleanup();
  });

  it("limits registrations and failed logins per client address, as configured", async () => {
    server = await startTestServer(backends.env, {
      REGISTER_MAX_PER_ADDRESS: "3",
      LOGIN_MAX_FAILURES_PER_ADDRESS: "4",
      LOGIN_BACKOFF_BASE_SEC: "60",
    });
    const c = new GrpcJsClient(server.address);
    try {
      const users = [];
      for (let i = 0; i < 3; i++) users.push(await registerUser(server.baseUrl));
      const fourth = await grpcFailure(
        c.unary(AuthService.method.register, { email: `${rnd()}@example.test`, username: `u_${rnd()}`, password: DEFAULT_TEST_PASSWORD }),
      );
      expect(fourth.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(retryDelayMs(fourth)).toBeGreaterThan(0);

      // Four failures spread over accounts exhaust the address, not any one account.
      for (let i = 0; i < 4; i++) {
        const err = await grpcFailure(c.unary(AuthService.method.login, { login: users[i % 3].user.username, password: "wrong password" }));
        expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
      }
      const fifth = await grpcFailure(c.unary(AuthService.method.login, { login: users[0].user.username, password: DEFAULT_TEST_PASSWORD }));
      expect(fifth.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(fifth.details).toMatch(/address/);
    } finally {
      c.close();
      await server.close();
      server = undefined;
    }
  });

  it("re-hashes a password on login when the argon2 parameters were raised", async () => {
    server = await startTestServer(backends.env);
    const u = await registerUser(server.baseUrl);
    const hashOf = async () =>
      (await server!.app.stores.sql.query<{ password_hash: string }>("SELECT password_hash FROM users WHERE id = $1", [u.user.id])).rows[0]
        .password_hash;
    const before = await hashOf();
    expect(argon2Params(before)).toEqual({ m: 19456, t: 2, p: 1 });
    await server.close();

    server = await startTestServer(backends.env, { ARGON2_MEMORY_KIB: "24576", ARGON2_TIME_COST: "3" });
    const c = new GrpcJsClient(server.address);
    try {
      await c.unary(AuthService.method.login, { login: u.user.username, password: DEFAULT_TEST_PASSWORD });
      const after = await hashOf();
      expect(after.startsWith("$argon2id$")).toBe(true);
      expect(argon2Params(after)).toEqual({ m: 24576, t: 3, p: 1 });
      // And the new hash still verifies.
      await c.unary(AuthService.method.login, { login: u.user.username, password: DEFAULT_TEST_PASSWORD });
      expect(await hashOf()).toBe(after);
    } finally {
      c.close();
    }
  });
});
