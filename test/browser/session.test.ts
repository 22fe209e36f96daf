// Browser sessions in real Chromium (Debian's, through playwright-core) against
// the real server serving the real build, over Connect and gRPC-Web: a reload
// keeps you signed in through the HttpOnly refresh cookie, which no script can
// read and which rotates; two tabs sharing the cookie refresh through token
// expiry without tripping reuse detection (Web Locks); logging out ends it.
// Also the review screenshots at 1280 and 390 px, light and dark, with emoji,
// in test-results/browser/.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { randomBytes, randomUUID } from "node:crypto";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { ConversationService } from "../../gen/chat/v1/conversation_pb.js";
import { MessageService } from "../../gen/chat/v1/message_pb.js";
import { AuthService } from "../../gen/chat/v1/auth_pb.js";
import type { TestServer } from "../support/server.ts";
import { connectClient } from "../support/clients.ts";
import { DEFAULT_TEST_PASSWORD, registerUser } from "../support/users.ts";
import {
  ARTIFACTS,
  type BrowserStack,
  haveChromium,
  reportMissingChromium,
  startBrowserStack,
  TRANSPORTS,
  type TransportKind,
} from "../support/browser.ts";

const ACCESS_TOKEN_TTL_SEC = 10;
const WAIT_MS = 30_000;
reportMissingChromium(describe, it);

let stack: BrowserStack | undefined;
let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  if (!haveChromium) return;
  // Long login delays: a browser held back by a stranger's failures stays held back for the whole test.
  stack = await startBrowserStack({ ACCESS_TOKEN_TTL_SEC: String(ACCESS_TOKEN_TTL_SEC), LOGIN_BACKOFF_BASE_SEC: "600" }, { mongo: false });
  ({ server, browser } = stack);
}, 180_000);

afterAll(async () => stack?.close());

const unique = (prefix: string) => `${prefix}_${randomBytes(4).toString("hex")}`;

interface Tab {
  page: Page;
  errors: string[];
  /** RPC paths requested, in order. */
  rpcs: string[];
}

async function openTab(context: BrowserContext, transport: TransportKind): Promise<Tab> {
  const page = await context.newPage();
  const tab: Tab = { page, errors: [], rpcs: [] };
  page.on("request", (req) => {
    const path = new URL(req.url()).pathname;
    if (/^\/(chat|grpc)\./.test(path)) tab.rpcs.push(path);
  });
  page.on("pageerror", (err) => tab.errors.push(`pageerror: ${err.message}`));
  // A refused Refresh (no cookie yet) is an HTTP 401 over Connect, which Chromium logs as a failed resource.
  page.on("console", (msg) => {
    if (msg.type() === "error" && !/Failed to load resource/.test(msg.text())) tab.errors.push(`console: ${msg.text()}`);
  });
  await page.goto(`${server.baseUrl}/?transport=${transport}`);
  return tab;
}

async function signUp(page: Page, username: string): Promise<void> {
  await page.getByLabel("Email").fill(`${username}@example.test`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Display name").fill(username);
  await page.getByLabel("Password").fill(DEFAULT_TEST_PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByTestId("me").waitFor();
}

const linkState = (page: Page) => page.getByTestId("connection-status").getAttribute("data-state");
const waitLive = (page: Page, what: string) => expect.poll(() => linkState(page), { timeout: WAIT_MS, interval: 100, message: what }).toBe("live");
const refreshCookie = async (context: BrowserContext) => (await context.cookies()).find((c) => c.name === "chat_refresh");
const refreshes = (tab: Tab) => tab.rpcs.filter((p) => p === "/chat.v1.AuthService/Refresh").length;

describe.runIf(haveChromium).each(TRANSPORTS)("browser sessions in Chromium over %s", (transport) => {
  it("a reload keeps you signed in; the refresh token is an HttpOnly cookie scripts cannot see, rotated by each Refresh; logout ends it", async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 720 }, locale: "en-US" });
    try {
      const tab = await openTab(context, transport);
      const username = unique("reload");
      await signUp(tab.page, username);
      await waitLive(tab.page, "stream after sign-up");

      const cookie = await refreshCookie(context);
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/chat.v1.AuthService/Refresh", secure: false });
      expect(cookie!.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
      // Invisible to scripts, and nowhere in storage.
      const visible = await tab.page.evaluate(() => ({
        cookie: document.cookie,
        local: JSON.stringify(Object.entries(localStorage)),
        session: JSON.stringify(Object.entries(sessionStorage)),
      }));
      expect(visible.cookie).not.toContain("chat_refresh");
      expect(visible.local + visible.session).not.toContain(cookie!.value);

      // Reload: no sign-in form, the same user, the stream live again, through one Refresh.
      tab.rpcs.length = 0;
      await tab.page.reload();
      await tab.page.getByTestId("me").waitFor({ timeout: WAIT_MS });
      await expect.poll(() => tab.page.getByTestId("me").textContent()).toContain(username);
      expect(await tab.page.getByRole("button", { name: "Create account" }).count()).toBe(0);
      await waitLive(tab.page, "stream after reload");
      expect(tab.rpcs[0]).toBe("/chat.v1.AuthService/Refresh");
      const rotated = await refreshCookie(context);
      expect(rotated!.value).not.toBe(cookie!.value);

      // Log out: the cookie is gone, and a reload shows the sign-in form.
      await tab.page.getByRole("button", { name: /log out/i }).click();
      await tab.page.getByRole("button", { name: "Create account" }).waitFor();
      expect(await refreshCookie(context)).toBeUndefined();
      await tab.page.reload();
      await tab.page.getByRole("button", { name: "Create account" }).waitFor({ timeout: WAIT_MS });
      expect(tab.errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it("the browser that signed in before keeps its HttpOnly device cookie and gets past a stranger's failed logins; a new browser is told how long to wait", async () => {
    const known = await browser.newContext({ viewport: { width: 1100, height: 720 }, locale: "en-US" });
    const fresh = await browser.newContext({ viewport: { width: 1100, height: 720 }, locale: "en-US" });
    try {
      const tab = await openTab(known, transport);
      const username = unique("device");
      await signUp(tab.page, username);
      const device = (await known.cookies()).find((c) => c.name.startsWith("chat_device_"));
      expect(device).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/chat.v1.AuthService/Login" });
      expect(await tab.page.evaluate(() => document.cookie + JSON.stringify(Object.entries(localStorage)))).not.toContain(device!.value);
      await tab.page.getByRole("button", { name: /log out/i }).click();
      await tab.page.getByRole("button", { name: "Create account" }).waitFor();

      // A stranger guesses at the account (a native client, from the same address as both browsers).
      const stranger = connectClient(AuthService, "connect", server.baseUrl);
      for (let i = 0; i < 6; i++) await stranger.login({ login: username, password: `guess ${i}` }).catch(() => undefined);

      const logIn = async (page: Page) => {
        await page.getByTestId("auth-switch").click();
        await page.getByLabel("Email or username").fill(username);
        await page.getByLabel("Password").fill(DEFAULT_TEST_PASSWORD);
        await page.getByRole("button", { name: "Log in" }).click();
      };
      // A browser that never signed in to it is held back, and told for how long.
      const other = await openTab(fresh, transport);
      await logIn(other.page);
      await expect
        .poll(() => other.page.getByTestId("auth-error").textContent(), { timeout: WAIT_MS })
        .toMatch(/^Too many attempts\. Try again in \d+ (seconds?|minutes)\.$/);
      // The one that did sends its device cookie and gets in.
      await logIn(tab.page);
      await tab.page.getByTestId("me").waitFor({ timeout: WAIT_MS });
      await expect.poll(() => tab.page.getByTestId("me").textContent()).toContain(username);
      expect(tab.errors).toEqual([]);
    } finally {
      await known.close();
      await fresh.close();
    }
  });

  it("two tabs share the cookie and refresh through token expiry without tripping reuse detection", async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 720 }, locale: "en-US" });
    try {
      const first = await openTab(context, transport);
      const username = unique("tabs");
      await signUp(first.page, username);
      await waitLive(first.page, "first tab live");
      // A second tab of the same browser: signed in from the cookie, no form.
      const second = await openTab(context, transport);
      await second.page.getByTestId("me").waitFor({ timeout: WAIT_MS });
      await waitLive(second.page, "second tab live");
      // Both tabs' access tokens (10 s) expire and are refreshed, with one cookie between them;
      // without serialisation two refreshes at once would present one token twice and end the session.
      const before = [refreshes(first), refreshes(second)];
      await expect.poll(() => refreshes(first) - before[0] >= 2 && refreshes(second) - before[1] >= 2, { timeout: 60_000, interval: 250 }).toBe(true);
      for (const tab of [first, second]) {
        await waitLive(tab.page, "still live after refreshes");
        expect(await tab.page.getByRole("button", { name: "Create account" }).count()).toBe(0);
        expect(tab.errors).toEqual([]);
      }
    } finally {
      await context.close();
    }
  });
});

describe.runIf(haveChromium)("screenshots for review", () => {
  it("1280 and 390 px, light and dark, a DM with emoji", async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US" });
    try {
      const tab = await openTab(context, "connect");
      const username = unique("sam");
      await signUp(tab.page, username);
      await waitLive(tab.page, "stream");
      // The peer, over the API (10-second access tokens on a loaded machine: a fresh one for each call).
      const peer = await registerUser(server.baseUrl, { username: unique("dana") });
      let refreshToken = peer.refreshToken;
      const token = async () => {
        const r = await connectClient(AuthService, "connect", server.baseUrl).refresh({ refreshToken });
        refreshToken = r.tokens!.refreshToken;
        return r.tokens!.accessToken;
      };
      const me = (await connectClient(AuthService, "connect", server.baseUrl, await token()).searchUsers({ query: username, pageSize: 1 })).users[0]!;
      const dm = await connectClient(ConversationService, "connect", server.baseUrl, await token()).getOrCreateDirect({ userId: me.id });
      for (const content of ["Morning! ☀️ Ready for the launch? 🚀", "Cake is in the kitchen 🎂🍰 — first come, first served 😄"]) {
        const messages = connectClient(MessageService, "connect", server.baseUrl, await token());
        await messages.sendMessage({ conversationId: dm.conversation!.id, clientMessageId: randomUUID(), content });
      }
      const item = tab.page.getByTestId("conversation-item").first();
      await item.waitFor({ timeout: WAIT_MS });
      await item.click();
      await tab.page.getByTestId("message").nth(1).waitFor({ timeout: WAIT_MS });
      for (const width of [1280, 390]) {
        await tab.page.setViewportSize({ width, height: width === 390 ? 844 : 800 });
        for (const scheme of ["light", "dark"] as const) {
          await tab.page.emulateMedia({ colorScheme: scheme });
          const path = join(ARTIFACTS, `review-${width}-${scheme}.png`);
          await tab.page.screenshot({ path });
          console.log(`screenshot: ${path}`);
          expect(existsSync(path)).toBe(true);
        }
      }
      // The emoji font is there (CI installs fonts-noto-color-emoji): a colour glyph, not a box.
      const hasEmojiFont = await tab.page.evaluate(() => document.fonts.check("16px 'Noto Color Emoji'", "🚀"));
      if (process.env.REQUIRE_ALL_BACKENDS === "1") expect(hasEmojiFont).toBe(true);
      expect(tab.errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
