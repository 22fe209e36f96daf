// Browser sessions: the refresh token in an HttpOnly cookie (x-refresh-cookie: 1),
// end to end through the real server over HTTP/1.1 with Connect and gRPC-Web
// clients that behave like a browser on the server's own origin (Origin header,
// a cookie jar). Cookie attributes, rotation, the CSRF refusals, reuse
// detection, logout, and native clients left unchanged.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { AuthService } from "../../gen/chat/v1/auth_pb.js";
import { provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { bearer, transportFor, type ProtocolName } from "../support/clients.ts";
import { connectErrorInfo, failure } from "../support/errors.ts";
import { DEFAULT_TEST_PASSWORD } from "../support/users.ts";
import { loadConfig } from "../../src/config.ts";
import { DEVICE_COOKIE_PATH, DEVICE_COOKIE_PREFIX, REFRESH_COOKIE_NAME, readRefreshCookie, refreshCookie } from "../../src/auth/refresh-cookie.ts";

/** What a browser tab does: Origin on every request, a cookie jar, the cookie-mode header. */
class BrowserLike {
  /** The refresh cookie's value ("" when none). */
  jar = "";
  /** Every Set-Cookie of the refresh cookie received, in order. */
  setCookies: string[] = [];
  /** Device cookies by name (sent to Login only, their Path), and every Set-Cookie of them. */
  deviceJar = new Map<string, string>();
  deviceSetCookies: string[] = [];
  headers: Record<string, string>;
  readonly baseUrl: string;
  constructor(baseUrl: string, opts: { cookieMode?: boolean; origin?: string | null; fetchSite?: string } = {}) {
    this.baseUrl = baseUrl;
    this.headers = {};
    if (opts.cookieMode !== false) this.headers["x-refresh-cookie"] = "1";
    if (opts.origin !== null) this.headers.origin = opts.origin ?? baseUrl;
    if (opts.fetchSite) this.headers["sec-fetch-site"] = opts.fetchSite;
  }
  private take(h: Headers) {
    for (const c of h.getSetCookie()) {
      const [pair] = c.split(";");
      const value = pair.slice(pair.indexOf("=") + 1);
      const name = pair.slice(0, pair.indexOf("="));
      if (name.startsWith(DEVICE_COOKIE_PREFIX)) {
        this.deviceSetCookies.push(c);
        this.deviceJar.set(name, value);
        continue;
      }
      this.setCookies.push(c);
      // Max-Age=0 deletes, like a browser.
      this.jar = /max-age=0(;|$)/i.test(c) ? "" : value;
    }
  }
  interceptor(): Interceptor {
    return (next) => async (req) => {
      for (const [k, v] of Object.entries(this.headers)) req.header.set(k, v);
      // The cookie's Path is the Refresh RPC: a browser sends it there only.
      if (this.jar && req.method.name === "Refresh") req.header.set("cookie", `${REFRESH_COOKIE_NAME}=${this.jar}`);
      if (this.deviceJar.size > 0 && req.method.name === "Login") {
        req.header.set("cookie", [...this.deviceJar].map(([k, v]) => `${k}=${v}`).join("; "));
      }
      try {
        const res = await next(req);
        this.take(res.header);
        return res;
      } catch (err) {
        this.take(ConnectError.from(err).metadata);
        throw err;
      }
    };
  }
  client(protocol: ProtocolName, token?: () => string | undefined) {
    return createClient(AuthService, transportFor(protocol, this.baseUrl, [this.interceptor(), ...(token ? [bearer(token)] : [])]));
  }
}

const reason = (err: unknown) => connectErrorInfo(err)?.reason;
const fresh = () => `c_${randomBytes(5).toString("hex")}`;
const registration = (username: string) => ({
  email: `${username}@example.test`,
  username,
  password: DEFAULT_TEST_PASSWORD,
  displayName: "",
  deviceId: "browser-tab",
  deviceName: "Chromium",
});

describe("refresh cookie (browser sessions)", () => {
  let backends: ProvisionedBackends;
  let server: TestServer;

  beforeAll(async () => {
    backends = await provisionBackends({ sql: "pglite" });
    server = await startTestServer(backends.env, { REFRESH_IDLE_TTL_SEC: "3600", LOGIN_BACKOFF_BASE_SEC: "600" });
  });
  afterAll(async () => {
    await server?.close();
    await backends?.cleanup();
  });

  for (const protocol of ["connect", "grpc-web"] as const) {
    it(`${protocol}: register sets an HttpOnly SameSite=Strict cookie on the Refresh path, the body holds no refresh token; Refresh rotates it`, async () => {
      const tab = new BrowserLike(server.baseUrl);
      const auth = tab.client(protocol);
      const reg = await auth.register(registration(fresh()));
      expect(reg.tokens!.refreshToken).toBe("");
      expect(reg.tokens!.accessToken).not.toBe("");
      expect(tab.setCookies).toHaveLength(1);
      const attrs = tab.setCookies[0].split("; ");
      expect(attrs[0]).toMatch(new RegExp(`^${REFRESH_COOKIE_NAME}=[A-Za-z0-9_-]{43}$`));
      // Max-Age: until the refresh token's idle expiry (REFRESH_IDLE_TTL_SEC=3600), counted from when it was issued.
      const maxAge = attrs.find((a) => a.startsWith("Max-Age="));
      expect(Number(maxAge!.slice(8))).toBeGreaterThan(3500);
      expect(Number(maxAge!.slice(8))).toBeLessThanOrEqual(3600);
      expect(
        attrs
          .slice(1)
          .filter((a) => a !== maxAge)
          .sort(),
      ).toEqual(["HttpOnly", "Path=/chat.v1.AuthService/Refresh", "SameSite=Strict"]);
      const first = tab.jar;

      // Refresh with nothing in the body: the cookie is read and rotated.
      const r1 = await auth.refresh({});
      expect(r1.tokens!.refreshToken).toBe("");
      expect(r1.tokens!.sessionId).toBe(reg.tokens!.sessionId);
      expect(tab.jar).not.toBe(first);
      expect(tab.jar).not.toBe("");
      let access = r1.tokens!.accessToken;
      const me = await tab.client(protocol, () => access).getMe({});
      expect(me.user!.username).toBe(reg.user!.username);

      // And again: each Refresh hands out a new one.
      const second = tab.jar;
      const r2 = await auth.refresh({});
      access = r2.tokens!.accessToken;
      expect(tab.jar).not.toBe(second);
      expect((await tab.client(protocol, () => access).getMe({})).user!.id).toBe(reg.user!.id);
    });
  }

  it("refused without the CSRF proof (no header, foreign Origin, no Origin, cross-site fetch); the cookie is not consumed", async () => {
    const tab = new BrowserLike(server.baseUrl);
    await tab.client("connect").register(registration(fresh()));
    const cookie = tab.jar;
    const withCookie = (t: BrowserLike) => {
      t.jar = cookie;
      return t.client("connect");
    };

    // No header: the cookie is ignored; the body has no token.
    const noHeader = await failure(withCookie(new BrowserLike(server.baseUrl, { cookieMode: false })).refresh({}));
    expect(ConnectError.from(noHeader).code).toBe(Code.InvalidArgument);

    for (const opts of [{ origin: "http://evil.example" }, { origin: null }, { fetchSite: "cross-site" }, { fetchSite: "same-site" }]) {
      const err = await failure(withCookie(new BrowserLike(server.baseUrl, opts)).refresh({}));
      expect(ConnectError.from(err).code, JSON.stringify(opts)).toBe(Code.PermissionDenied);
      expect(reason(err)).toBe("CSRF_CHECK_FAILED");
    }
    // Also on Login (login CSRF) and Register.
    const loginErr = await failure(
      new BrowserLike(server.baseUrl, { origin: "http://evil.example" }).client("connect").login({ login: "x", password: DEFAULT_TEST_PASSWORD }),
    );
    expect(reason(loginErr)).toBe("CSRF_CHECK_FAILED");

    // None of those used the token: the right origin still refreshes with it.
    const ok = withCookie(new BrowserLike(server.baseUrl, { fetchSite: "same-origin" }));
    expect((await ok.refresh({})).tokens!.accessToken).not.toBe("");
  });

  it("cookie mode keeps the device token in an HttpOnly cookie sent only to Login, one per account, and it lets the owner past a stranger's failures", async () => {
    const tab = new BrowserLike(server.baseUrl);
    const name = fresh();
    const reg = await tab.client("grpc-web").register(registration(name));
    expect(reg.deviceToken).toBe("");
    expect(tab.deviceSetCookies).toHaveLength(1);
    const attrs = tab.deviceSetCookies[0].split("; ");
    expect(attrs[0]).toBe(`${DEVICE_COOKIE_PREFIX}${reg.user!.id.replaceAll("-", "")}=${[...tab.deviceJar.values()][0]}`);
    expect(attrs.slice(1).filter((a) => !a.startsWith("Max-Age="))).toEqual([`Path=${DEVICE_COOKIE_PATH}`, "HttpOnly", "SameSite=Strict"]);
    // A second account signed in on the same browser gets its own cookie.
    await tab.client("connect").register(registration(fresh()));
    expect(tab.deviceJar.size).toBe(2);

    // A stranger (a native client, same address here) exhausts the account's budget for unknown devices.
    const stranger = new BrowserLike(server.baseUrl, { cookieMode: false, origin: null }).client("connect");
    for (let i = 0; i < 6; i++) await failure(stranger.login({ login: name, password: `wrong ${i}` }));
    const locked = await failure(new BrowserLike(server.baseUrl).client("connect").login({ login: name, password: DEFAULT_TEST_PASSWORD }));
    expect(ConnectError.from(locked).code).toBe(Code.ResourceExhausted);
    expect(reason(locked)).toBe("LOGIN_THROTTLED");
    // The browser that signed in before sends its cookies and gets in; its cookie is renewed.
    const before = tab.deviceJar.get(attrs[0].split("=")[0]);
    const res = await tab.client("connect").login({ login: name, password: DEFAULT_TEST_PASSWORD, deviceId: "browser-tab" });
    expect(res.user!.id).toBe(reg.user!.id);
    expect(res.deviceToken).toBe("");
    expect(tab.deviceJar.get(attrs[0].split("=")[0])).not.toBe(before);
  });

  it("no cookie: UNAUTHENTICATED REFRESH_COOKIE_MISSING", async () => {
    const err = await failure(new BrowserLike(server.baseUrl).client("connect").refresh({}));
    expect(ConnectError.from(err).code).toBe(Code.Unauthenticated);
    expect(reason(err)).toBe("REFRESH_COOKIE_MISSING");
  });

  it("reuse detection still works: a replayed cookie revokes the session and is cleared", async () => {
    const tab = new BrowserLike(server.baseUrl);
    const auth = tab.client("connect");
    await auth.register(registration(fresh()));
    const stolen = tab.jar;
    const r = await auth.refresh({});
    const access = r.tokens!.accessToken;
    const current = tab.jar;

    // The thief presents the old value.
    const thief = new BrowserLike(server.baseUrl);
    thief.jar = stolen;
    const err = await failure(thief.client("connect").refresh({}));
    expect(reason(err)).toBe("REFRESH_TOKEN_REUSED");
    expect(thief.setCookies.at(-1)).toMatch(/^chat_refresh=; .*Max-Age=0/);
    expect(thief.jar).toBe("");

    // The whole session is over: the victim's current cookie and access token too.
    expect(tab.jar).toBe(current);
    const again = await failure(auth.refresh({}));
    expect(ConnectError.from(again).code).toBe(Code.Unauthenticated);
    expect(tab.jar).toBe("");
    const me = await failure(tab.client("connect", () => access).getMe({}));
    expect(ConnectError.from(me).code).toBe(Code.Unauthenticated);
  });

  it("Login and ChangePassword in cookie mode set the cookie; Logout clears it", async () => {
    const username = fresh();
    await new BrowserLike(server.baseUrl).client("connect").register(registration(username));
    const tab = new BrowserLike(server.baseUrl);
    const login = await tab.client("connect").login({ login: username, password: DEFAULT_TEST_PASSWORD, deviceId: "tab2" });
    expect(login.tokens!.refreshToken).toBe("");
    expect(tab.jar).not.toBe("");
    let access = login.tokens!.accessToken;
    const authed = tab.client("connect", () => access);
    const before = tab.jar;
    const changed = await authed.changePassword({ currentPassword: DEFAULT_TEST_PASSWORD, newPassword: "another long passphrase 42" });
    expect(changed.tokens!.refreshToken).toBe("");
    expect(tab.jar).not.toBe(before);
    access = changed.tokens!.accessToken;
    await authed.logout({});
    expect(tab.setCookies.at(-1)).toMatch(/^chat_refresh=; .*Max-Age=0/);
    expect(tab.jar).toBe("");
  });

  it("native clients (no header) keep the refresh token in the body and get no cookie", async () => {
    const native = new BrowserLike(server.baseUrl, { cookieMode: false, origin: null });
    const auth = native.client("grpc-web");
    const reg = await auth.register(registration(fresh()));
    expect(reg.tokens!.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const r = await auth.refresh({ refreshToken: reg.tokens!.refreshToken });
    expect(r.tokens!.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(native.setCookies).toEqual([]);
  });

  it("Secure: on with TLS by default, or by REFRESH_COOKIE_SECURE; the cookie parser finds its cookie among others", () => {
    const base = { ACCESS_TOKEN_SECRET: "x".repeat(32) };
    expect(loadConfig(base).auth.refreshCookieSecure).toBe(false);
    expect(loadConfig({ ...base, TLS_CERT_FILE: "/c.pem", TLS_KEY_FILE: "/k.pem" }).auth.refreshCookieSecure).toBe(true);
    expect(loadConfig({ ...base, REFRESH_COOKIE_SECURE: "on" }).auth.refreshCookieSecure).toBe(true);
    expect(loadConfig({ ...base, TLS_CERT_FILE: "/c.pem", TLS_KEY_FILE: "/k.pem", REFRESH_COOKIE_SECURE: "off" }).auth.refreshCookieSecure).toBe(
      false,
    );
    expect(() => loadConfig({ ...base, REFRESH_COOKIE_SECURE: "yes" })).toThrow(/REFRESH_COOKIE_SECURE/);
    expect(refreshCookie("abc", new Date(Date.now() + 60_000), true)).toMatch(/; Secure$/);
    expect(readRefreshCookie(new Headers({ cookie: "a=1; chat_refresh=tok; b=2" }))).toBe("tok");
    expect(readRefreshCookie(new Headers({ cookie: "a=1, chat_refresh=tok" }))).toBe("tok");
    expect(readRefreshCookie(new Headers({ cookie: "xchat_refresh=no" }))).toBe("");
  });
});
