// Login throttling without malicious lockout (docs/AUTH.md "Login throttling"),
// end to end: real servers on Postgres + Redis (two nodes sharing the
// counters) and on the embedded stores with the in-process twin, real Connect
// and gRPC-Web clients, each bound to its own loopback address (127.0.0.x) so
// that the server sees distinct client addresses.
//
// - a stranger's failures from another address do not stop the owner logging
//   in from a known device (device token), nor changing the password;
// - an unknown device gets RESOURCE_EXHAUSTED LOGIN_THROTTLED with a retry
//   hint that grows, and once it has waited, the right password gets in;
// - parallel guesses get no more than the free failures and one gate slot;
// - a forged, expired, foreign or garbage device token is ignored (the client
//   is an unknown device), never an error;
// - the per-address bucket slows unknown devices from that address only;
//   known devices behind it and other addresses are unaffected.

import { afterAll, beforeAll, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { AuthService } from "../../gen/chat/v1/auth_pb.js";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { forEachBackend, type ServerBackendName } from "../support/backends.ts";
import { backendChoice, provisionBackends, startTestServer, TEST_SECRET, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { bearer } from "../support/clients.ts";
import { connectErrorInfo, failure } from "../support/errors.ts";
import { DEFAULT_TEST_PASSWORD } from "../support/users.ts";
import { DeviceTokens } from "../../src/auth/device-tokens.ts";
import { auditRows } from "./helpers.ts";

type Auth = Client<typeof AuthService>;

/** An AuthService client whose connections come from `localAddress` (a 127.0.0.x address). */
function clientFrom(baseUrl: string, localAddress: string, protocol: "connect" | "grpc-web" = "connect", token?: string): Auth {
  const o = { baseUrl, httpVersion: "1.1" as const, nodeOptions: { localAddress }, interceptors: token ? [bearer(token)] : [] };
  return createClient(AuthService, protocol === "connect" ? createConnectTransport(o) : createGrpcWebTransport(o));
}

const rnd = () => Math.random().toString(36).slice(2, 10);

/** Registers a user from `from`; returns its profile, tokens and device token. */
async function register(c: Auth) {
  const username = `u_${rnd()}`;
  const res = await c.register({ email: `${username}@example.test`, username, password: DEFAULT_TEST_PASSWORD, deviceName: "test" });
  return { id: res.user!.id, username, accessToken: res.tokens!.accessToken, deviceToken: res.deviceToken };
}

/** The call's error as a ConnectError (fails the test when it succeeded). */
async function refused(call: Promise<unknown>): Promise<ConnectError> {
  return ConnectError.from(await failure(call));
}

function retryMs(err: ConnectError): number {
  const d = err.findDetails(RetryInfoSchema)[0]?.retryDelay;
  if (!d) throw new Error(`no RetryInfo on ${err.code} ${err.rawMessage}`);
  return Number(d.seconds) * 1000 + Math.round(d.nanos / 1e6);
}

function expectThrottled(err: ConnectError, message?: RegExp): number {
  expect(err.code, err.rawMessage).toBe(Code.ResourceExhausted);
  expect(connectErrorInfo(err)?.reason).toBe("LOGIN_THROTTLED");
  if (message) expect(err.rawMessage).toMatch(message);
  const ms = retryMs(err);
  expect(ms).toBeGreaterThan(0);
  return ms;
}

/** A wrong password: refused as a failed login (counted), or as throttled (not counted). */
async function wrong(c: Auth, login: string, deviceToken = ""): Promise<Code> {
  const err = await refused(c.login({ login, password: `wrong ${rnd()}`, deviceId: "dev", deviceToken }));
  expect([Code.Unauthenticated, Code.ResourceExhausted]).toContain(err.code);
  return err.code;
}

forEachBackend("login throttling", ["postgres+redis", "embedded"] as const satisfies readonly ServerBackendName[], (name) => {
  let backends: ProvisionedBackends;
  const servers: TestServer[] = [];

  beforeAll(async () => {
    backends = await provisionBackends(backendChoice(name));
  });
  afterAll(async () => {
    for (const s of servers) await s.close();
    await backends?.cleanup();
  });

  /** One node (embedded) or two sharing Redis (postgres+redis): the second is where "other" clients go. */
  async function start(overrides: Record<string, string>): Promise<{ a: TestServer; b: TestServer }> {
    for (const s of servers.splice(0)) await s.close();
    const a = await startTestServer(backends.env, { REGISTER_MAX_PER_ADDRESS: "1000", ...overrides });
    servers.push(a);
    if (name === "embedded") return { a, b: a };
    const b = await startTestServer(backends.env, { REGISTER_MAX_PER_ADDRESS: "1000", ...overrides });
    servers.push(b);
    return { a, b };
  }

  it("a stranger's failures from another address do not stop the owner on a known device", async () => {
    // Small budgets so that the stranger exhausts every bucket an unknown device has; long delays so they stay shut.
    const { a, b } = await start({
      LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS: "3",
      LOGIN_MAX_FAILURES_PER_ACCOUNT: "4",
      LOGIN_MAX_FAILURES_PER_DEVICE: "3",
      LOGIN_BACKOFF_BASE_SEC: "600",
    });
    const home = clientFrom(a.baseUrl, "127.0.0.1");
    const owner = await register(home);
    expect(owner.deviceToken).toMatch(/^dt1\./);

    // The stranger, from 127.0.0.2 and 127.0.0.3, on the other node: every bucket of unknown devices runs out.
    const strangers = [clientFrom(b.baseUrl, "127.0.0.2", "grpc-web"), clientFrom(b.baseUrl, "127.0.0.3")];
    const codes: Code[] = [];
    for (let i = 0; i < 10; i++) codes.push(await wrong(strangers[i % 2], owner.username));
    expect(codes.filter((c) => c === Code.Unauthenticated)).toHaveLength(4);
    expect(codes.at(-1)).toBe(Code.ResourceExhausted);

    // An unknown device of the owner's is slowed too (that is what the stranger can do)...
    expectThrottled(await refused(home.login({ login: owner.username, password: DEFAULT_TEST_PASSWORD })), /unknown devices/);
    // ...but the device that logged in before gets in at once, here and even from the stranger's own address.
    const again = await home.login({ login: owner.username, password: DEFAULT_TEST_PASSWORD, deviceToken: owner.deviceToken });
    expect(again.user!.id).toBe(owner.id);
    expect(again.deviceToken).toMatch(/^dt1\./);
    expect(again.deviceToken).not.toBe(owner.deviceToken);
    const viaStrangerAddress = await strangers[0].login({ login: owner.username, password: DEFAULT_TEST_PASSWORD, deviceToken: again.deviceToken });
    expect(viaStrangerAddress.user!.id).toBe(owner.id);

    // The stranger is still held back.
    expectThrottled(await refused(strangers[1].login({ login: owner.username, password: DEFAULT_TEST_PASSWORD })));

    // A signed-in session changes its password whatever strangers did.
    const session = clientFrom(a.baseUrl, "127.0.0.1", "connect", again.tokens!.accessToken);
    await session.changePassword({ currentPassword: DEFAULT_TEST_PASSWORD, newPassword: `${DEFAULT_TEST_PASSWORD}-2` });

    // The known device's own failures count only against it: after its free ones it is slowed, and no one else is by it.
    const device = viaStrangerAddress.deviceToken;
    for (let i = 0; i < 3; i++) expect(await wrong(home, owner.username, device)).toBe(Code.Unauthenticated);
    expectThrottled(await refused(home.login({ login: owner.username, password: `${DEFAULT_TEST_PASSWORD}-2`, deviceToken: device })), /device/);
    expect((await home.login({ login: owner.username, password: `${DEFAULT_TEST_PASSWORD}-2`, deviceToken: again.deviceToken })).user!.id).toBe(
      owner.id,
    );

    const limited = await auditRows(a.app.stores.sql, { action: "auth.login.rate_limited", entityId: owner.id });
    expect(limited.map((r) => r.metadata.scope)).toContain("account");
    expect(limited.some((r) => r.metadata.known_device === true)).toBe(true);
  });

  it("an unknown device waits a growing delay, then gets in with the right password", async () => {
    const { a, b } = await start({ LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS: "2", LOGIN_BACKOFF_BASE_SEC: "1" });
    const owner = await register(clientFrom(a.baseUrl, "127.0.0.1"));
    // A new device: no device token. Its attempts alternate between the nodes (which share the counters).
    const nodes = [clientFrom(a.baseUrl, "127.0.0.4"), clientFrom(b.baseUrl, "127.0.0.4", "grpc-web")];
    let k = 0;
    const next = () => nodes[k++ % 2];

    expect(await wrong(next(), owner.username)).toBe(Code.Unauthenticated);
    expect(await wrong(next(), owner.username)).toBe(Code.Unauthenticated);
    // Past the free failures: even the right password is held back, with a retry hint.
    const first = expectThrottled(await refused(next().login({ login: owner.username, password: DEFAULT_TEST_PASSWORD })), /this address/);
    expect(first).toBeLessThanOrEqual(1000);
    await sleep(first + 100);
    expect(await wrong(next(), owner.username)).toBe(Code.Unauthenticated);
    const second = expectThrottled(await refused(next().login({ login: owner.username, password: "still wrong" })));
    await sleep(second + 100);
    expect(await wrong(next(), owner.username)).toBe(Code.Unauthenticated);
    // Each failure doubled the wait: 1 s, 2 s, now 4 s.
    const third = expectThrottled(await refused(next().login({ login: owner.username, password: DEFAULT_TEST_PASSWORD })));
    expect(third).toBeGreaterThan(first);
    expect(third).toBeLessThanOrEqual(4000);
    await sleep(third + 100);
    const res = await next().login({ login: owner.username, password: DEFAULT_TEST_PASSWORD });
    expect(res.user!.id).toBe(owner.id);
    expect(res.deviceToken).toMatch(/^dt1\./);
    // The success reset the account's buckets for this address: the free failures are back.
    expect(await wrong(next(), owner.username)).toBe(Code.Unauthenticated);
    expect((await next().login({ login: owner.username, password: DEFAULT_TEST_PASSWORD })).user!.id).toBe(owner.id);
  });

  it("parallel guesses cannot slip past a bucket: exactly the free ones and one through the gate are checked", async () => {
    const { a, b } = await start({ LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS: "3", LOGIN_BACKOFF_BASE_SEC: "600" });
    const owner = await register(clientFrom(a.baseUrl, "127.0.0.1"));
    const nodes = [clientFrom(a.baseUrl, "127.0.0.8"), clientFrom(b.baseUrl, "127.0.0.8", "grpc-web")];
    const codes = await Promise.all(Array.from({ length: 20 }, (_, i) => wrong(nodes[i % 2], owner.username)));
    expect(codes.filter((c) => c === Code.Unauthenticated)).toHaveLength(3);
    expect(codes.filter((c) => c === Code.ResourceExhausted)).toHaveLength(17);
  });

  it("a forged, expired, foreign or garbage device token is ignored, never an error", async () => {
    const { a, b } = await start({ LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS: "2", LOGIN_MAX_FAILURES_PER_ACCOUNT: "2", LOGIN_BACKOFF_BASE_SEC: "600" });
    const home = clientFrom(a.baseUrl, "127.0.0.1");
    const owner = await register(home);
    const other = await register(home);
    const [, payload, mac] = owner.deviceToken.split(".");
    const [, otherPayload] = other.deviceToken.split(".");
    const bad: Record<string, string> = {
      garbage: "not a token",
      "wrong prefix": `dt2.${payload}.${mac}`,
      "another account's": other.deviceToken,
      "payload swapped": `dt1.${otherPayload}.${mac}`,
      "signed with another secret": new DeviceTokens("another-secret-0123456789abcdef-0123", 3600).issue(owner.id).token,
      expired: new DeviceTokens(TEST_SECRET, 60).issue(owner.id, Date.now() - 3600_000).token,
      "very long": "x".repeat(20_000),
      "bad base64": `dt1.${payload}!.${mac}`,
    };
    // Not yet throttled: with any of them the right password simply logs in (as an unknown device).
    for (const [what, token] of Object.entries(bad)) {
      const res = await home.login({ login: owner.username, password: DEFAULT_TEST_PASSWORD, deviceToken: token });
      expect(res.user!.id, what).toBe(owner.id);
    }
    const rows = await auditRows(a.app.stores.sql, { action: "auth.login.succeeded", actorId: owner.id });
    expect(rows.filter((r) => r.metadata.known_device === false).length).toBeGreaterThanOrEqual(Object.keys(bad).length);

    // A stranger shuts the account's bucket for unknown devices; each of those tokens is then an unknown device.
    const stranger = clientFrom(b.baseUrl, "127.0.0.5");
    for (let i = 0; i < 3; i++) await wrong(stranger, owner.username);
    for (const [what, token] of Object.entries(bad)) {
      const err = await refused(home.login({ login: owner.username, password: DEFAULT_TEST_PASSWORD, deviceToken: token }));
      expect(err.code, `${what}: ${err.rawMessage}`).toBe(Code.ResourceExhausted);
      expect(connectErrorInfo(err)?.reason, what).toBe("LOGIN_THROTTLED");
    }
    // The genuine one still works.
    expect((await home.login({ login: owner.username, password: DEFAULT_TEST_PASSWORD, deviceToken: owner.deviceToken })).user!.id).toBe(owner.id);
  });

  it("the per-address bucket slows unknown devices from that address only", async () => {
    const { a, b } = await start({ LOGIN_MAX_FAILURES_PER_ADDRESS: "4", LOGIN_BACKOFF_BASE_SEC: "600" });
    const home = clientFrom(a.baseUrl, "127.0.0.1");
    const users = [];
    for (let i = 0; i < 5; i++) users.push(await register(home));
    // Password spraying from 127.0.0.6: one guess at each of four accounts.
    const nat = clientFrom(b.baseUrl, "127.0.0.6", "grpc-web");
    for (let i = 0; i < 4; i++) expect(await wrong(nat, users[i].username)).toBe(Code.Unauthenticated);
    // Any unknown device behind that address now waits, whichever the account...
    expectThrottled(await refused(nat.login({ login: users[4].username, password: DEFAULT_TEST_PASSWORD })), /from this address/);
    expectThrottled(await refused(nat.login({ login: `nobody_${rnd()}`, password: "whatever" })), /from this address/);
    // ...but a known device behind the same address gets in,
    const known = await nat.login({ login: users[4].username, password: DEFAULT_TEST_PASSWORD, deviceToken: users[4].deviceToken });
    expect(known.user!.id).toBe(users[4].id);
    // and other addresses are not affected, known device or not.
    expect((await home.login({ login: users[0].username, password: DEFAULT_TEST_PASSWORD })).user!.id).toBe(users[0].id);
    expect((await clientFrom(a.baseUrl, "127.0.0.7").login({ login: users[1].username, password: DEFAULT_TEST_PASSWORD })).user!.id).toBe(
      users[1].id,
    );
  });
});
