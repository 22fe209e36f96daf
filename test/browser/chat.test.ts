// The web client in a real browser (Debian's Chromium, headless, through
// playwright-core) against the real server serving the real build, on the
// Connect protocol and on gRPC-Web: two people sign up, DM, see each other
// live, type, react, read; one goes offline and gets what it missed exactly
// once, in order; the access token expires and the app refreshes it; history
// scrolls back. Screenshots land in test-results/browser/.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { Browser, BrowserContext, Page, Request } from "playwright-core";
import { fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { AuthService } from "../../gen/chat/v1/auth_pb.js";
import { ConversationService } from "../../gen/chat/v1/conversation_pb.js";
import { MessageService, SubscribeRequestSchema } from "../../gen/chat/v1/message_pb.js";
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

// Short-lived access tokens, so every scenario also lives through expiry and Refresh.
const ACCESS_TOKEN_TTL_SEC = 10;
const WAIT_MS = 20_000;
reportMissingChromium(describe, it);

let stack: BrowserStack | undefined;
let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  if (!haveChromium) return;
  stack = await startBrowserStack({ ACCESS_TOKEN_TTL_SEC: String(ACCESS_TOKEN_TTL_SEC) });
  ({ server, browser } = stack);
}, 180_000);

afterAll(async () => stack?.close());

// ---- helpers ------------------------------------------------------------------

interface Person {
  username: string;
  displayName: string;
  context: BrowserContext;
  page: Page;
  /** RPC requests the page made: method path and protocol content-type. */
  rpcs: { path: string; contentType: string; request: Request }[];
  errors: string[];
}

async function openApp(transport: TransportKind, username: string, displayName: string): Promise<Person> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 }, locale: "en-US" });
  const page = await context.newPage();
  const person: Person = { username, displayName, context, page, rpcs: [], errors: [] };
  page.on("request", (req) => {
    const path = new URL(req.url()).pathname;
    if (/^\/(chat|grpc)\./.test(path)) person.rpcs.push({ path, contentType: req.headers()["content-type"] ?? "", request: req });
  });
  page.on("pageerror", (err) => person.errors.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    // Failed fetches while offline are expected; anything else is a bug.
    if (msg.type() === "error" && !/ERR_INTERNET_DISCONNECTED|Failed to load resource/.test(msg.text())) person.errors.push(`console: ${msg.text()}`);
  });
  await page.goto(`${server.baseUrl}/?transport=${transport}`);
  return person;
}

async function signUp(p: Person): Promise<void> {
  const { page } = p;
  await page.getByLabel("Email").fill(`${p.username}@example.test`);
  await page.getByLabel("Username").fill(p.username);
  await page.getByLabel("Display name").fill(p.displayName);
  await page.getByLabel("Password").fill(DEFAULT_TEST_PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByTestId("me").waitFor();
  await waitFor(() => linkState(p), "live", `${p.username}'s stream`);
}

async function logIn(p: Person, password = DEFAULT_TEST_PASSWORD): Promise<void> {
  const { page } = p;
  await page.getByTestId("auth-switch").click();
  await page.getByLabel("Email or username").fill(p.username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByTestId("me").waitFor();
  await waitFor(() => linkState(p), "live", `${p.username}'s stream`);
}

const linkState = (p: Person) => p.page.getByTestId("connection-status").getAttribute("data-state");
const composer = (p: Person) => p.page.getByLabel("Message", { exact: true });

async function send(p: Person, text: string): Promise<void> {
  await composer(p).fill(text);
  await composer(p).press("Enter");
}

/** Texts of the messages shown in the open conversation, top to bottom. */
function shownMessages(p: Person): Promise<{ text: string; state: string; mine: string }[]> {
  return p.page.getByTestId("message").evaluateAll((els) =>
    els.map((el) => ({
      text: el.querySelector("[data-testid=message-content]")?.textContent ?? "",
      state: (el as HTMLElement).dataset.state ?? "",
      mine: (el as HTMLElement).dataset.mine ?? "",
    })),
  );
}

const texts = async (p: Person) => (await shownMessages(p)).map((m) => m.text);

/** Polls until `read()` equals `expected` (deep), failing with what it saw last. */
async function waitFor<T>(read: () => Promise<T>, expected: T, what: string, timeout = WAIT_MS): Promise<void> {
  await expect.poll(read, { timeout, interval: 100, message: what }).toEqual(expected);
}

function conversationItem(p: Person, name: string) {
  return p.page.getByTestId("conversation-item").filter({ has: p.page.getByTestId("conversation-name").getByText(name, { exact: true }) });
}

function messageEl(p: Person, text: string) {
  return p.page.getByTestId("message").filter({ has: p.page.getByTestId("message-content").getByText(text, { exact: true }) });
}

/** Each RPC the page made used the chosen protocol. */
function expectProtocol(p: Person, transport: TransportKind): void {
  expect(p.rpcs.length).toBeGreaterThan(0);
  for (const r of p.rpcs) {
    if (transport === "grpc-web") expect(r.contentType, r.path).toMatch(/^application\/grpc-web(\+proto)?$/);
    else expect(r.contentType, r.path).toMatch(/^application\/(json|connect\+json)/);
  }
}

/** The resume_token a Subscribe request carried. */
function resumeTokenOf(r: Person["rpcs"][number], transport: TransportKind): string {
  const body = r.request.postDataBuffer() ?? Buffer.alloc(0);
  const payload = body.subarray(5); // both protocols frame a streaming request: 1 flag byte + 4 length bytes
  if (transport === "grpc-web") return fromBinary(SubscribeRequestSchema, payload).resumeToken;
  return (JSON.parse(payload.toString("utf8")) as { resumeToken?: string }).resumeToken ?? "";
}

async function screenshot(p: Person, name: string): Promise<string> {
  const path = join(ARTIFACTS, `${name}.png`);
  await p.page.screenshot({ path });
  console.log(`screenshot: ${path}`);
  return path;
}

const unique = (prefix: string) => `${prefix}_${randomBytes(4).toString("hex")}`;

// ---- the scenarios ----------------------------------------------------------------

describe.runIf(haveChromium).each(TRANSPORTS)("web client in Chromium over %s", (transport) => {
  let alice: Person;
  let bob: Person;

  afterAll(async () => {
    await alice?.context.close();
    await bob?.context.close();
  });

  it("two people sign up, DM, and see each other live: messages, typing, reactions, seen, presence", async () => {
    alice = await openApp(transport, unique("alice"), "Alice");
    bob = await openApp(transport, unique("bob"), "Bob");
    await signUp(alice);
    await signUp(bob);

    // Alice starts the DM by username and sends; her message shows at once, then as stored.
    await alice.page.getByLabel("Message someone").fill(bob.username);
    await alice.page.getByLabel("Message someone").press("Enter");
    await waitFor(() => alice.page.getByTestId("conversation-title").textContent(), "Bob", "DM opened");
    await waitFor(() => alice.page.evaluate(() => document.activeElement?.id), "composer", "focus moves to the composer");
    await send(alice, "Hi Bob!");
    await waitFor(() => shownMessages(alice), [{ text: "Hi Bob!", state: "sent", mine: "true" }], "Alice's message stored");

    // Bob, without reloading, gets the new conversation with one unread message, and opens it.
    const dmForBob = conversationItem(bob, "Alice");
    await waitFor(() => dmForBob.getByTestId("unread-badge").textContent(), "1", "unread badge on Bob's side");
    await dmForBob.click();
    await waitFor(() => texts(bob), ["Hi Bob!"], "Bob sees Alice's message");
    await waitFor(() => conversationItem(bob, "Alice").getByTestId("unread-badge").count(), 0, "read once open");

    // Alice learns Bob read it.
    await waitFor(() => messageEl(alice, "Hi Bob!").getByTestId("seen-receipt").textContent(), "Seen", "read receipt for Alice");

    // Bob replies; Alice sees it live, exactly once.
    await send(bob, "Hey Alice, good to see you here.");
    await waitFor(() => texts(alice), ["Hi Bob!", "Hey Alice, good to see you here."], "Alice sees the reply");

    // Alice types (without sending): Bob sees the indicator; it goes away when she sends.
    await composer(alice).pressSequentially("Let me think", { delay: 20 });
    await waitFor(() => bob.page.getByTestId("typing-indicator").textContent(), "Alice is typing…", "typing indicator");
    await composer(alice).press("Enter");
    await waitFor(() => bob.page.getByTestId("typing-indicator").textContent(), "", "typing indicator cleared by the message");
    await waitFor(() => texts(bob), ["Hi Bob!", "Hey Alice, good to see you here.", "Let me think"], "Bob sees the third message");

    // Bob reacts to Alice's first message with the keyboard-reachable picker; Alice sees the count.
    await messageEl(bob, "Hi Bob!").getByRole("button", { name: "Add reaction" }).click();
    await bob.page.getByRole("button", { name: "React with 👍" }).click();
    await waitFor(() => messageEl(bob, "Hi Bob!").getByTestId("reaction").getAttribute("aria-pressed"), "true", "Bob's own reaction");
    const aliceChip = messageEl(alice, "Hi Bob!").getByTestId("reaction");
    await waitFor(
      async () => [
        await aliceChip.getAttribute("data-emoji"),
        await aliceChip.getAttribute("data-count"),
        await aliceChip.getAttribute("aria-pressed"),
      ],
      ["👍", "1", "false"],
      "Alice sees Bob's reaction",
    );
    // Alice adds hers to the same emoji: both see 2.
    await aliceChip.click();
    await waitFor(() => messageEl(bob, "Hi Bob!").getByTestId("reaction").getAttribute("data-count"), "2", "Bob sees two");

    // Presence: each sees the other online, in the list and in the conversation header.
    await waitFor(() => conversationItem(alice, "Bob").getByTestId("presence").getAttribute("data-presence"), "online", "Bob online for Alice");
    await waitFor(() => conversationItem(bob, "Alice").getByTestId("presence").getAttribute("data-presence"), "online", "Alice online for Bob");

    await screenshot(alice, `${transport}-conversation-alice`);
    expectProtocol(alice, transport);
    expectProtocol(bob, transport);
    expect(alice.errors).toEqual([]);
    expect(bob.errors).toEqual([]);
  });

  it("a client that was offline shows every message it missed exactly once, in order (Subscribe resume)", async () => {
    const before = await texts(bob);
    await bob.context.setOffline(true);
    await waitFor(async () => ["offline", "reconnecting"].includes((await linkState(bob)) ?? ""), true, "Bob's app notices");
    const rpcsBefore = bob.rpcs.length;

    const missed = [1, 2, 3, 4, 5].map((i) => `While you were away #${i}`);
    for (const text of missed) await send(alice, text);
    await waitFor(
      async () => (await shownMessages(alice)).slice(-5).map((m) => [m.text, m.state]),
      missed.map((t) => [t, "sent"]),
      "Alice's five stored",
    );
    expect(await texts(bob)).toEqual(before); // nothing reached Bob while offline

    await bob.context.setOffline(false);
    await waitFor(() => texts(bob), [...before, ...missed], "Bob has all five, once, in order");
    await waitFor(() => linkState(bob), "live", "Bob live again");
    expect(await bob.page.getByTestId("message").count()).toBe(before.length + 5);

    // They came through the resumed stream: it carried a cursor, and no history reload was needed.
    const after = bob.rpcs.slice(rpcsBefore);
    const resumed = after.filter((r) => r.path === `/${MessageService.typeName}/Subscribe`);
    expect(resumed.length).toBeGreaterThan(0);
    for (const r of resumed) expect(resumeTokenOf(r, transport)).not.toBe("");
    expect(after.filter((r) => r.path === `/${MessageService.typeName}/ListMessages`)).toEqual([]);

    await screenshot(bob, `${transport}-conversation-bob-after-offline`);
    expect(bob.errors).toEqual([]);
  });

  it("keeps working across access-token expiry: UNAUTHENTICATED, one Refresh, the call retried", async () => {
    const refreshes = () => alice.rpcs.filter((r) => r.path === "/chat.v1.AuthService/Refresh").length;
    const startCount = refreshes();
    // Poll on the condition (a refresh happened), sending now and then to make calls.
    let i = 0;
    await expect
      .poll(
        async () => {
          await send(alice, `Still here ${++i}`);
          await waitFor(async () => (await shownMessages(alice)).at(-1)?.state, "sent", "stored");
          return refreshes() > startCount;
        },
        { timeout: (ACCESS_TOKEN_TTL_SEC + 20) * 1000, interval: 1000 },
      )
      .toBe(true);
    const last = `Still here ${i}`;
    await waitFor(async () => (await texts(bob)).at(-1), last, "Bob gets the message sent after the refresh");
    expect(await messageEl(bob, last).count()).toBe(1);
    expect(await alice.page.getByTestId("auth-error").count()).toBe(0); // still signed in
    expect(alice.errors).toEqual([]);
  });

  it("creates a group; the member gets it live, reads it, and the sender sees who read", async () => {
    const title = `Plans ${transport}`;
    await alice.page.getByText("New group").click();
    await alice.page.getByLabel("Group name").fill(title);
    await alice.page.getByLabel("Members").fill(bob.username);
    await alice.page.getByRole("button", { name: "Create group" }).click();
    await waitFor(() => alice.page.getByTestId("conversation-title").textContent(), title, "group opened");
    await send(alice, "Group hello");
    await waitFor(async () => (await shownMessages(alice)).map((m) => [m.text, m.state]), [["Group hello", "sent"]], "stored");

    const groupForBob = conversationItem(bob, title);
    await waitFor(() => groupForBob.getByTestId("unread-badge").textContent(), "1", "Bob gets the group with one unread");
    await groupForBob.click();
    await waitFor(() => texts(bob), ["Group hello"], "Bob sees the group message");
    await waitFor(() => bob.page.getByTestId("conversation-subtitle").textContent(), "2 members", "member count");
    await waitFor(() => messageEl(alice, "Group hello").getByTestId("seen-receipt").textContent(), "Seen by Bob", "group receipt");
    expect(alice.errors).toEqual([]);
    expect(bob.errors).toEqual([]);
  });
});

describe.runIf(haveChromium)("web client forms", () => {
  it("shows the server's field violations next to the field, and a wrong password as such", async () => {
    const p = await openApp("connect", unique("erin"), "Erin");
    try {
      const { page } = p;
      await page.getByLabel("Email").fill(`${p.username}@example.test`);
      await page.getByLabel("Username").fill("x"); // too short: INVALID_ARGUMENT on `username`
      await page.getByLabel("Password").fill(DEFAULT_TEST_PASSWORD);
      await page.getByRole("button", { name: "Create account" }).click();
      await waitFor(() => page.getByLabel("Username").getAttribute("aria-invalid"), "true", "username marked invalid");
      expect(await page.locator("#auth-username-error").textContent()).not.toBe("");
      expect(await page.evaluate(() => document.activeElement?.id)).toBe("auth-username");
      await page.screenshot({ path: join(ARTIFACTS, "auth-field-error.png") });

      await page.getByTestId("auth-switch").click();
      await page.getByLabel("Email or username").fill("nobody_here");
      await page.getByLabel("Password").fill("wrong password 123");
      await page.getByRole("button", { name: "Log in" }).click();
      await waitFor(() => page.getByTestId("auth-error").textContent(), "Wrong login or password.", "login error");
      expect(p.errors).toEqual([]);
    } finally {
      await p.context.close();
    }
  });
});

describe.runIf(haveChromium)("web client history", () => {
  it("scrolls back through a long conversation (ListMessages before_seq), each message once, in order", async () => {
    const carol = await registerUser(server.baseUrl, { username: unique("carol") });
    const dave = await registerUser(server.baseUrl, { username: unique("dave") });
    // Tokens live 10 s on this server and 130 sends can outlast that on a loaded
    // machine: refresh on UNAUTHENTICATED, as any client does, and resend.
    let token = carol.accessToken;
    let refreshToken = carol.refreshToken;
    const auth = connectClient(AuthService, "connect", server.baseUrl);
    const conversations = connectClient(ConversationService, "connect", server.baseUrl, () => token);
    const messages = connectClient(MessageService, "connect", server.baseUrl, () => token);
    const dm = (await conversations.getOrCreateDirect({ userId: dave.user.id })).conversation!;
    const all = Array.from({ length: 130 }, (_, i) => `history ${String(i + 1).padStart(3, "0")}`);
    for (const content of all) {
      const send = () => messages.sendMessage({ conversationId: dm.id, clientMessageId: `h-${content}`, content });
      await send().catch(async (err) => {
        if (ConnectError.from(err).code !== Code.Unauthenticated) throw err;
        const tokens = (await auth.refresh({ refreshToken })).tokens!;
        token = tokens.accessToken;
        refreshToken = tokens.refreshToken;
        return send();
      });
    }

    const p = await openApp("grpc-web", dave.user.username, "");
    try {
      await logIn(p);
      await conversationItem(p, carol.user.username).click();
      await waitFor(async () => (await texts(p)).at(-1), all.at(-1), "newest page shown");
      expect((await texts(p)).length).toBeLessThan(all.length); // not everything at once
      // Scroll to the top until the beginning of the conversation is reached.
      await expect
        .poll(
          async () => {
            await p.page.getByTestId("message-list").evaluate((el) => (el.scrollTop = 0));
            return p.page.getByTestId("history-state").getAttribute("data-state");
          },
          { timeout: WAIT_MS, interval: 200 },
        )
        .toBe("start");
      expect(await texts(p)).toEqual(all);
      expect(p.errors).toEqual([]);
    } finally {
      await p.context.close();
    }
  });
});
