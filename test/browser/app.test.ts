// The web app's features in real Chromium (Debian's, through playwright-core),
// two people in two browser contexts, on Connect and on gRPC-Web: editing and
// deleting messages (shown live on the other side), the reaction picker with
// who reacted; the settings panel (the protocol); the phone layout at 390 px
// (one pane at a time, a back button, 44 px targets, no horizontal scroll);
// keyboard paths; and axe-core (WCAG 2 A/AA) with zero violations in light and
// dark, at 1280 and 390 px. Screenshots go to test-results/browser/.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { randomBytes, randomUUID } from "node:crypto";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { MessageService } from "../../gen/chat/v1/message_pb.js";
import { AuthService } from "../../gen/chat/v1/auth_pb.js";
import { ConversationService, ConversationType } from "../../gen/chat/v1/conversation_pb.js";
import { connectClient } from "../support/clients.ts";
import type { TestServer } from "../support/server.ts";
import { DEFAULT_TEST_PASSWORD } from "../support/users.ts";
import {
  ARTIFACTS,
  axeViolations,
  type BrowserStack,
  haveChromium,
  reportMissingChromium,
  startBrowserStack,
  TRANSPORTS,
  type TransportKind,
} from "../support/browser.ts";

const WAIT_MS = 20_000;
reportMissingChromium(describe, it);

let stack: BrowserStack | undefined;
let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  if (!haveChromium) return;
  // Notifications batch for 200 ms (not 30 s), so the test sees them soon.
  stack = await startBrowserStack({ NOTIFY_BATCH_WINDOW_MS: "200" });
  ({ server, browser } = stack);
}, 180_000);

afterAll(async () => stack?.close());

// ---- helpers ------------------------------------------------------------------

interface Person {
  username: string;
  displayName: string;
  context: BrowserContext;
  page: Page;
  rpcs: { path: string; contentType: string }[];
  errors: string[];
}

const unique = (prefix: string) => `${prefix}_${randomBytes(4).toString("hex")}`;

async function openApp(transport: TransportKind, displayName: string, viewport = { width: 1100, height: 720 }): Promise<Person> {
  const context = await browser.newContext({ viewport, locale: "en-US", hasTouch: viewport.width <= 480 });
  const page = await context.newPage();
  const person: Person = { username: unique(displayName.toLowerCase()), displayName, context, page, rpcs: [], errors: [] };
  page.on("request", (req) => {
    const path = new URL(req.url()).pathname;
    if (/^\/(chat|grpc)\./.test(path)) person.rpcs.push({ path, contentType: req.headers()["content-type"] ?? "" });
  });
  page.on("pageerror", (err) => person.errors.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error" && !/Failed to load resource/.test(msg.text())) person.errors.push(`console: ${msg.text()}`);
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
  // The app's start is over when its first conversation list has come back (after the stream and
  // the workspaces): calls a test counts from here are the test's own.
  const listed = page.waitForResponse((r) => r.url().endsWith("/ListConversations"), { timeout: 30_000 });
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByTestId("me").waitFor({ state: "attached" }); // hidden on a phone
  await waitFor(() => p.page.getByTestId("connection-status").getAttribute("data-state"), "live", `${p.username}'s stream`);
  await listed;
}

async function waitFor<T>(read: () => Promise<T>, expected: T, what: string, timeout = WAIT_MS): Promise<void> {
  await expect.poll(read, { timeout, interval: 100, message: what }).toEqual(expected);
}

const composer = (p: Person) => p.page.getByLabel("Message", { exact: true });
const focusedId = (p: Person) => p.page.evaluate(() => document.activeElement?.id ?? "");

async function send(p: Person, text: string): Promise<void> {
  await composer(p).fill(text);
  await composer(p).press("Enter");
}

function shown(p: Person): Promise<{ text: string; state: string; edited: boolean; deleted: string }[]> {
  return p.page.getByTestId("message").evaluateAll((els) =>
    els.map((el) => ({
      text: el.querySelector("[data-testid=message-content]")?.textContent ?? "",
      state: (el as HTMLElement).dataset.state ?? "",
      edited: Boolean(el.querySelector("[data-testid=edited]")),
      deleted: (el as HTMLElement).dataset.deleted ?? "",
    })),
  );
}

function messageEl(p: Person, text: string) {
  return p.page.getByTestId("message").filter({ has: p.page.getByTestId("message-content").getByText(text, { exact: true }) });
}

function conversationItem(p: Person, name: string) {
  return p.page.getByTestId("conversation-item").filter({ has: p.page.getByTestId("conversation-name").getByText(name, { exact: true }) });
}

/** Alice opens a DM with Bob by username; Bob opens it from his list. */
async function startDm(alice: Person, bob: Person): Promise<void> {
  await alice.page.getByLabel("Message someone").fill(bob.username);
  await alice.page.getByLabel("Message someone").press("Enter");
  await waitFor(() => alice.page.getByTestId("conversation-title").textContent(), bob.displayName, "DM opened");
  await send(alice, "Hello there");
  await conversationItem(bob, alice.displayName).click();
  await waitFor(async () => (await shown(bob)).map((m) => m.text), ["Hello there"], "Bob opened the DM");
}

function expectProtocol(p: Person, transport: TransportKind): void {
  expect(p.rpcs.length).toBeGreaterThan(0);
  for (const r of p.rpcs) {
    if (transport === "grpc-web") expect(r.contentType, r.path).toMatch(/^application\/grpc-web(\+proto)?$/);
    else expect(r.contentType, r.path).toMatch(/^application\/(json|connect\+json)/);
  }
}

async function expectNoAxeViolations(p: Person, where: string): Promise<void> {
  const violations = await axeViolations(p.page);
  expect(violations, `axe (WCAG 2 A/AA) on ${where}:\n${JSON.stringify(violations, null, 2)}`).toEqual([]);
}

async function screenshot(p: Person, name: string): Promise<void> {
  const path = join(ARTIFACTS, `${name}.png`);
  await p.page.screenshot({ path });
  console.log(`screenshot: ${path}`);
}

// ---- features, both transports ----------------------------------------------------

describe.runIf(haveChromium).each(TRANSPORTS)("web app over %s", (transport) => {
  let alice: Person;
  let bob: Person;

  afterAll(async () => {
    await alice?.context.close();
    await bob?.context.close();
  });

  it("edits (Up arrow, Enter saves, Escape cancels) and deletes messages; the other side sees 'edited' and the tombstone live", async () => {
    alice = await openApp(transport, "Alice");
    bob = await openApp(transport, "Bob");
    await signUp(alice);
    await signUp(bob);
    await startDm(alice, bob);

    await send(alice, "first draft");
    await waitFor(async () => (await shown(bob)).map((m) => m.text), ["Hello there", "first draft"], "Bob has it");

    // Up in the empty composer edits her last message, in place, with the text selected for editing.
    await composer(alice).press("ArrowUp");
    const edit = alice.page.getByRole("textbox", { name: "Edit message" });
    await waitFor(() => edit.inputValue(), "first draft", "edit box holds the message");
    await waitFor(() => edit.evaluate((el) => el === document.activeElement), true, "focus in the edit box");
    // The message is drawn again while she edits (here: Bob's reaction arrives live); her selection
    // survives it, so typing over the selected draft replaces it (it used to land after it).
    await alice.page.keyboard.press("Control+A");
    await waitFor(
      () =>
        alice.page.evaluate(() => {
          const el = document.activeElement as HTMLTextAreaElement;
          return [el.selectionStart, el.selectionEnd];
        }),
      [0, "first draft".length],
      "the draft is selected",
    );
    await messageEl(bob, "first draft").getByRole("button", { name: "Add reaction" }).click();
    await bob.page.getByTestId("reaction-picker").getByRole("button", { name: "React with 👍" }).click();
    const editedMessage = alice.page.getByTestId("message").filter({ has: alice.page.getByTestId("edit-form") });
    await waitFor(() => editedMessage.getByTestId("reaction").getAttribute("data-count"), "1", "Bob's reaction reaches the message being edited");
    await waitFor(() => edit.evaluate((el) => el === document.activeElement), true, "focus still in the edit box");
    await waitFor(
      () =>
        alice.page.evaluate(() => {
          const el = document.activeElement as HTMLTextAreaElement;
          return [el.selectionStart, el.selectionEnd];
        }),
      [0, "first draft".length],
      "and the draft still selected",
    );
    await alice.page.keyboard.type("second version");
    await edit.press("Enter");
    await waitFor(() => focusedId(alice), "composer", "focus back in the composer");
    await waitFor(async () => (await shown(alice)).at(-1), { text: "second version", state: "sent", edited: true, deleted: "false" }, "edited here");
    await waitFor(
      async () => (await shown(bob)).at(-1),
      { text: "second version", state: "sent", edited: true, deleted: "false" },
      "edited live for Bob",
    );

    // Bob takes his reaction back (the reaction tests below start from none).
    await messageEl(bob, "second version").getByTestId("reaction").click();
    await waitFor(() => messageEl(alice, "second version").getByTestId("reaction").count(), 0, "the reaction is gone for Alice");

    // Escape cancels an edit and leaves the message as it was.
    await composer(alice).press("ArrowUp");
    await edit.fill("never saved");
    await edit.press("Escape");
    await waitFor(() => alice.page.getByRole("textbox", { name: "Edit message" }).count(), 0, "edit box closed");
    await waitFor(() => focusedId(alice), "composer", "focus back in the composer");
    expect((await shown(alice)).at(-1)?.text).toBe("second version");

    // Bob can react to it but not edit or delete it.
    expect(await messageEl(bob, "second version").getByRole("button", { name: "Edit message" }).count()).toBe(0);
    expect(await messageEl(bob, "second version").getByRole("button", { name: "Delete message" }).count()).toBe(0);

    // Delete, with a confirmation (Escape backs out of it, focus back on Delete).
    await send(alice, "oops, wrong chat");
    await waitFor(async () => (await shown(bob)).at(-1)?.text, "oops, wrong chat", "Bob has the mistake");
    const mistake = messageEl(alice, "oops, wrong chat");
    await mistake.getByRole("button", { name: "Delete message" }).click();
    await alice.page.getByTestId("confirm-delete").waitFor();
    await alice.page.keyboard.press("Escape");
    await waitFor(() => alice.page.getByTestId("confirm-delete").count(), 0, "Escape closes the question");
    await waitFor(
      () => alice.page.evaluate(() => (document.activeElement as HTMLElement | null)?.getAttribute("aria-label") ?? ""),
      "Delete message",
      "focus back on the Delete button",
    );
    await mistake.getByRole("button", { name: "Delete message" }).click();
    await alice.page.getByTestId("confirm-delete").getByRole("button", { name: "Delete", exact: true }).click();
    const tombstone = { text: "This message was deleted.", state: "sent", edited: false, deleted: "true" };
    await waitFor(async () => (await shown(alice)).at(-1), tombstone, "tombstone here");
    await waitFor(async () => (await shown(bob)).at(-1), tombstone, "tombstone live for Bob");
    await waitFor(() => conversationItem(bob, "Alice").locator(".conv-preview").textContent(), "(deleted)", "Bob's preview follows");

    await screenshot(bob, `app-${transport}-edited-deleted`);
    expectProtocol(alice, transport);
    expectProtocol(bob, transport);
    expect(alice.errors).toEqual([]);
    expect(bob.errors).toEqual([]);
  });

  it("the reaction picker: counts, who reacted, toggling; keyboard: Escape closes it and focus returns", async () => {
    const target = messageEl(alice, "second version");
    // Bob picks 🎉 from the picker.
    await messageEl(bob, "second version").getByRole("button", { name: "Add reaction" }).click();
    const picker = bob.page.getByTestId("reaction-picker");
    await picker.waitFor();
    expect(await picker.getByRole("button").count()).toBeGreaterThanOrEqual(12);
    await picker.getByRole("button", { name: "React with 🎉" }).click();
    await waitFor(() => picker.count(), 0, "picker closes after a pick");

    const chip = target.getByTestId("reaction");
    await waitFor(
      async () => [await chip.getAttribute("data-emoji"), await chip.getAttribute("data-count"), await chip.getAttribute("title")],
      ["🎉", "1", "🎉 Bob"],
      "Alice sees the count and who reacted",
    );
    // Alice adds hers through the chip: both see 2, and who.
    await chip.click();
    const bobChip = messageEl(bob, "second version").getByTestId("reaction");
    await waitFor(
      async () => [await bobChip.getAttribute("data-count"), await bobChip.getAttribute("title")],
      ["2", "🎉 You, Alice"],
      "Bob sees two",
    );

    // Keyboard: open the picker from its button, Escape closes it, focus returns to the button.
    const addButton = messageEl(alice, "second version").getByRole("button", { name: "Add reaction" });
    await addButton.focus();
    await alice.page.keyboard.press("Enter");
    await alice.page.getByTestId("reaction-picker").waitFor();
    expect(await alice.page.evaluate(() => document.activeElement?.getAttribute("aria-label"))).toBe("React with 👍");
    await alice.page.keyboard.press("Escape");
    await waitFor(() => alice.page.getByTestId("reaction-picker").count(), 0, "Escape closes the picker");
    expect(await alice.page.evaluate(() => document.activeElement?.getAttribute("aria-label"))).toBe("Add reaction");

    // After a reload Alice saw nobody react live: who reacted comes from ListReactions when she
    // points at the chip (the tooltip) or opens the picker (a list under the emoji).
    await alice.page.mouse.move(0, 0); // not over the chip when it is drawn again
    const callsBefore = alice.rpcs.length; // her click on the chip loaded who reacted before the reload
    await alice.page.reload();
    await waitFor(() => alice.page.getByTestId("connection-status").getAttribute("data-state"), "live", "Alice live again");
    await waitFor(() => chip.getAttribute("title"), "🎉 You, 1 more", "before loading: counts and herself only");
    const listCalls = () => alice.rpcs.slice(callsBefore).filter((r) => r.path.endsWith("/ListReactions")).length;
    expect(listCalls()).toBe(0);
    await chip.hover();
    await waitFor(() => chip.getAttribute("title"), "🎉 You, Bob", "the tooltip names Bob after ListReactions");
    expect(listCalls()).toBe(1);
    await messageEl(alice, "second version").getByRole("button", { name: "Add reaction" }).click();
    const reactors = alice.page.getByTestId("reaction-picker").getByTestId("reactors");
    await waitFor(() => reactors.locator("li").allTextContents(), ["🎉 You, Bob"], "the picker lists who reacted");
    await expectNoAxeViolations(alice, "the reaction picker with who reacted");
    await alice.page.keyboard.press("Escape");

    // Bob takes his back: Alice sees 1 again, and the loaded list follows live.
    await bobChip.click();
    await waitFor(() => chip.getAttribute("data-count"), "1", "Alice sees Bob's reaction go");
    await waitFor(() => chip.getAttribute("title"), "🎉 You", "and Bob leaves the tooltip");
    expect(listCalls()).toBe(1);
    expect(alice.errors).toEqual([]);
    expect(bob.errors).toEqual([]);
  });

  it("threads in a side panel: replies and reply counts live on both sides; replies reacted to, edited (Up arrow) and deleted in the panel, live on the other side; keyboard: Reply opens it with focus in the reply box, Escape closes it", async () => {
    const parentA = messageEl(alice, "second version");
    const replyTool = parentA.getByRole("button", { name: "Reply in thread" });
    await replyTool.focus();
    await alice.page.keyboard.press("Enter");
    const panelA = alice.page.getByTestId("thread-panel");
    await panelA.waitFor();
    await waitFor(() => focusedId(alice), "thread-composer", "focus in the reply box");
    expect(await panelA.getByTestId("thread-parent").getByTestId("message-content").textContent()).toBe("second version");
    await alice.page.keyboard.type("a reply in the thread");
    await alice.page.keyboard.press("Enter");
    const replies = (p: Person) =>
      p.page
        .getByTestId("thread-reply")
        .evaluateAll((els) => els.map((el) => [el.querySelector("[data-testid=message-content]")?.textContent, (el as HTMLElement).dataset.state]));
    await waitFor(() => replies(alice), [["a reply in the thread", "sent"]], "Alice's reply stored");
    await waitFor(() => parentA.getByTestId("reply-count").textContent(), "1 reply", "reply count on Alice's side");
    // The reply lives in the thread, not in the conversation.
    expect((await shown(alice)).map((m) => m.text)).not.toContain("a reply in the thread");

    // Bob sees the count live, opens the thread from it, and answers; Alice sees it in her open panel.
    const parentB = messageEl(bob, "second version");
    await waitFor(() => parentB.getByTestId("reply-count").textContent(), "1 reply", "reply count live for Bob");
    expect((await shown(bob)).map((m) => m.text)).not.toContain("a reply in the thread");
    await parentB.getByTestId("reply-count").click();
    await waitFor(() => replies(bob), [["a reply in the thread", "sent"]], "Bob reads the thread");
    await bob.page.getByLabel("Reply", { exact: true }).fill("and one from Bob");
    await bob.page.getByRole("button", { name: "Send reply" }).click();
    const both = [
      ["a reply in the thread", "sent"],
      ["and one from Bob", "sent"],
    ];
    await waitFor(() => replies(alice), both, "Bob's reply live in Alice's panel");
    await waitFor(() => parentA.getByTestId("reply-count").textContent(), "2 replies", "two replies for Alice");
    await waitFor(() => parentB.getByTestId("reply-count").textContent(), "2 replies", "two replies for Bob");

    // Replies have the timeline's tools in the panel: react, edit and delete (your own), live on the other side.
    const replyEl = (p: Person, text: string) =>
      p.page.getByTestId("thread-reply").filter({ has: p.page.getByTestId("message-content").getByText(text, { exact: true }) });
    const panelB = bob.page.getByTestId("thread-panel");
    // Bob reacts to Alice's reply through the picker; Alice sees the chip in her panel.
    await replyEl(bob, "a reply in the thread").getByRole("button", { name: "Add reaction" }).click();
    await panelB.getByTestId("reaction-picker").getByRole("button", { name: "React with 👀" }).click();
    const aliceReplyChip = replyEl(alice, "a reply in the thread").getByTestId("reaction");
    await waitFor(
      async () => [await aliceReplyChip.getAttribute("data-emoji"), await aliceReplyChip.getAttribute("data-count")],
      ["👀", "1"],
      "Alice sees Bob's reaction on her reply",
    );
    // Alice adds hers with the chip; Bob sees 2.
    await aliceReplyChip.click();
    await waitFor(() => replyEl(bob, "a reply in the thread").getByTestId("reaction").getAttribute("data-count"), "2", "Bob sees two on the reply");
    // Bob has no Edit/Delete on Alice's reply, and no "Reply in thread" in a thread.
    expect(await replyEl(bob, "a reply in the thread").getByRole("button", { name: "Edit message" }).count()).toBe(0);
    expect(await replyEl(bob, "a reply in the thread").getByRole("button", { name: "Delete message" }).count()).toBe(0);
    expect(await replyEl(bob, "a reply in the thread").getByRole("button", { name: "Reply in thread" }).count()).toBe(0);
    // Alice edits her reply: Up arrow in the empty reply box, Enter saves; focus back in the reply box; Bob sees "(edited)".
    await alice.page.getByTestId("thread-composer").focus();
    await alice.page.keyboard.press("ArrowUp");
    const editBox = panelA.getByTestId("edit-input");
    await waitFor(() => focusedId(alice).then((id) => id.startsWith("edit-")), true, "the edit box has focus");
    expect(await editBox.inputValue()).toBe("a reply in the thread");
    await editBox.fill("a reply, edited");
    await editBox.press("Enter");
    await waitFor(() => focusedId(alice), "thread-composer", "focus back in the reply box");
    await waitFor(() => replyEl(bob, "a reply, edited").locator(".edited").count(), 1, "Bob sees the edit live, marked (edited)");
    // The reaction survived the edit on both sides.
    expect(await replyEl(bob, "a reply, edited").getByTestId("reaction").getAttribute("data-count")).toBe("2");
    // Alice deletes it, after the question; Bob sees the tombstone live.
    await replyEl(alice, "a reply, edited").getByRole("button", { name: "Delete message" }).click();
    await panelA.getByTestId("confirm-delete").getByRole("button", { name: "Delete" }).click();
    await waitFor(
      () => replies(bob),
      [
        ["This message was deleted.", "sent"],
        ["and one from Bob", "sent"],
      ],
      "Bob sees the reply's tombstone live",
    );
    await waitFor(
      () => replies(alice),
      [
        ["This message was deleted.", "sent"],
        ["and one from Bob", "sent"],
      ],
      "Alice too",
    );
    await expectNoAxeViolations(alice, "a thread with reactions and a tombstone");

    // Escape closes the panel; focus returns to the button that opened it.
    await alice.page.keyboard.press("Escape");
    await waitFor(() => panelA.isVisible(), false, "panel closed");
    expect(await alice.page.evaluate(() => document.activeElement?.getAttribute("aria-label"))).toBe("Reply in thread");
    await bob.page.getByRole("button", { name: "Close thread" }).click();
    await waitFor(() => bob.page.getByTestId("thread-panel").isVisible(), false, "Bob's panel closed");
    expect(alice.errors).toEqual([]);
    expect(bob.errors).toEqual([]);
  });

  it("mentions: '@' lists the members (keyboard: arrows, Enter picks, Escape closes); the mentioned person sees the message highlighted live", async () => {
    const input = composer(alice);
    await input.fill("");
    await input.pressSequentially(`ping @${bob.username.slice(0, 3)}`);
    const list = alice.page.locator("#composer-mentions");
    await waitFor(() => list.getByRole("option").allTextContents(), [`Bob @${bob.username}`], "Bob offered");
    expect(await input.getAttribute("aria-activedescendant")).toBe("composer-mentions-0");
    await expectNoAxeViolations(alice, "the mention list");
    // Escape closes the list and keeps the text; typing on reopens it; Enter picks.
    await input.press("Escape");
    await waitFor(() => list.isVisible(), false, "list closed");
    expect(await input.inputValue()).toBe(`ping @${bob.username.slice(0, 3)}`);
    await input.pressSequentially(bob.username.slice(3, 5));
    await waitFor(() => list.isVisible(), true, "list again");
    await input.press("Enter");
    expect(await input.inputValue()).toBe(`ping @${bob.username} `);
    await input.pressSequentially("have a look");
    await input.press("Enter");
    const text = `ping @${bob.username} have a look`;
    await waitFor(() => messageEl(alice, text).getAttribute("data-state"), "sent", "sent");
    expect(await messageEl(alice, text).getAttribute("data-mentioned")).toBe("false");
    await waitFor(() => messageEl(bob, text).getAttribute("data-mentioned"), "true", "highlighted for Bob");
    expect(await messageEl(bob, text).getByTestId("mention-tag").textContent()).toBe("Mentioned you");
    expect(alice.errors).toEqual([]);
    expect(bob.errors).toEqual([]);
  });

  it("search across your conversations: a hit far back in the history is loaded, scrolled to, highlighted and focused", async () => {
    // Bob (over the API, as himself) buries a message under 70 newer ones.
    const auth = connectClient(AuthService, "connect", server.baseUrl);
    let tokens = (await auth.login({ login: bob.username, password: DEFAULT_TEST_PASSWORD, deviceId: randomUUID() })).tokens!;
    const token = async () => {
      if (Number(tokens.accessTokenExpiresAt?.seconds ?? 0) * 1000 - Date.now() < 5_000)
        tokens = (await auth.refresh({ refreshToken: tokens.refreshToken })).tokens!;
      return tokens.accessToken;
    };
    const conversationId = await alice.page.evaluate(() => location.pathname.split("/").at(-1) ?? ""); // /c/<id>
    const needle = `needle${randomBytes(3).toString("hex")}`;
    const bodies = [`the ${needle} in the haystack`, ...Array.from({ length: 70 }, (_, i) => `hay ${i + 1}`)];
    for (const content of bodies) {
      await connectClient(MessageService, "connect", server.baseUrl, await token()).sendMessage({
        conversationId,
        clientMessageId: randomUUID(),
        content,
      });
    }
    await waitFor(async () => (await shown(alice)).at(-1)?.text, "hay 70", "Alice has the newest");
    await alice.page.reload(); // a fresh tab: only the newest page is held
    await alice.page.getByTestId("me").waitFor();
    await waitFor(async () => (await shown(alice)).at(-1)?.text, "hay 70", "newest page after reload");
    expect((await shown(alice)).map((m) => m.text)).not.toContain(`the ${needle} in the haystack`);

    await alice.page.getByLabel("Search messages").fill(needle);
    await alice.page.getByLabel("Search messages").press("Enter");
    const hit = alice.page.getByTestId("search-hit");
    await waitFor(() => hit.count(), 1, "one hit");
    expect(await hit.textContent()).toBe(`Bob · Bobthe ${needle} in the haystack`);
    await hit.click();
    const target = messageEl(alice, `the ${needle} in the haystack`);
    await waitFor(() => target.getAttribute("data-hit"), "true", "the hit is highlighted");
    await waitFor(() => target.evaluate((el) => el === document.activeElement), true, "and focused");
    await waitFor(
      () =>
        target.evaluate((el) => {
          const r = el.getBoundingClientRect();
          const list = el.closest("[data-testid=message-list]")!.getBoundingClientRect();
          return r.top >= list.top && r.bottom <= list.bottom;
        }),
      true,
      "scrolled into view",
    );
    // Every message between it and the newest, once, in order.
    const texts = (await shown(alice)).map((m) => m.text);
    const from = texts.indexOf(`the ${needle} in the haystack`);
    expect(texts.slice(from)).toEqual(bodies);
    expect(alice.errors).toEqual([]);
  });

  it("presence on the DM header: online, then offline with when last seen once the other person leaves", async () => {
    await waitFor(() => alice.page.getByTestId("presence-text").textContent(), "online", "Bob online in the header");
    expect(await alice.page.getByTestId("last-seen").count()).toBe(0);
    await bob.context.close();
    await waitFor(() => alice.page.getByTestId("presence-text").textContent(), "offline", "Bob offline in the header", 60_000);
    await waitFor(() => alice.page.getByTestId("last-seen").textContent(), "· last seen just now", "last seen");
    expect(alice.errors).toEqual([]);
  });

  it("notifications: what arrived while you were away, an unseen count; opening the list marks them seen; an item opens its conversation", async () => {
    // Bob left (the test above). Alice mentions him while he is away.
    const text = `@${bob.username} are you there?`;
    await composer(alice).fill(text);
    await composer(alice).press("Enter");
    await waitFor(() => messageEl(alice, text).getAttribute("data-state"), "sent", "stored");

    // Bob comes back in a new browser and logs in: the badge counts it.
    const again = await openApp(transport, "Bob");
    again.username = bob.username;
    bob = again;
    await bob.page.getByTestId("auth-switch").click();
    await bob.page.getByLabel("Email or username").fill(bob.username);
    await bob.page.getByLabel("Password").fill(DEFAULT_TEST_PASSWORD);
    await bob.page.getByRole("button", { name: "Log in" }).click();
    const button = bob.page.getByTestId("notifications-button");
    await waitFor(() => bob.page.getByTestId("notifications-badge").textContent(), "1", "one unseen", 30_000);
    expect(await button.getAttribute("aria-label")).toBe("Notifications 1 unseen");

    await button.click();
    const dialog = bob.page.getByRole("dialog", { name: "Notifications" });
    await dialog.waitFor();
    const item = dialog.getByTestId("notification").first();
    await waitFor(() => item.getAttribute("data-type"), "mention", "a mention");
    expect(await item.locator(".notif-what").textContent()).toBe("Alice mentioned you");
    expect(await item.locator(".notif-preview").textContent()).toBe(text);
    await waitFor(() => bob.page.getByTestId("notifications-badge").isVisible(), false, "seen: no badge");
    await expectNoAxeViolations(bob, "the notifications list");
    await item.click();
    await waitFor(() => bob.page.getByTestId("conversation-title").textContent(), "Alice", "the conversation opened");
    await waitFor(async () => (await shown(bob)).at(-1)?.text, text, "with the message");
    expect(bob.errors).toEqual([]);
  });

  it("away when idle: after ?idle= seconds without input the app says away, a new notification updates its badge live (no re-read), and the next input makes it online", async () => {
    // Bob's app with a 1-second idle time (a reload: the session resumes from the cookie).
    await bob.page.goto(`${server.baseUrl}/?transport=${transport}&idle=1`);
    await waitFor(() => bob.page.getByTestId("connection-status").getAttribute("data-state"), "live", "bob live again");
    await waitFor(() => alice.page.getByTestId("presence-text").textContent(), "away", "Bob away in Alice's header", 30_000);
    const reads = () => bob.rpcs.filter((r) => r.path.endsWith("/ListNotifications")).length;
    const before = reads();
    const text = `@${bob.username} still there?`;
    await composer(alice).fill(text);
    await composer(alice).press("Enter");
    await waitFor(() => messageEl(alice, text).getAttribute("data-state"), "sent", "stored");
    await waitFor(() => bob.page.getByTestId("notifications-badge").textContent(), "1", "the badge, live", 30_000);
    expect(reads()).toBe(before); // from notification_created, not a re-read
    // Bob moves the mouse: online again.
    await bob.page.mouse.move(20, 20);
    await bob.page.mouse.move(60, 60);
    await waitFor(() => alice.page.getByTestId("presence-text").textContent(), "online", "Bob back online", 30_000);
    expect(bob.errors).toEqual([]);
    expect(alice.errors).toEqual([]);
  });

  it("channels: browse the public ones by name, join one; it opens, and the others see your message live", async () => {
    // Alice makes a public channel (over the API, as herself).
    const auth = connectClient(AuthService, "connect", server.baseUrl);
    const { tokens } = await auth.login({ login: alice.username, password: DEFAULT_TEST_PASSWORD, deviceId: randomUUID() });
    const name = `lobby${randomBytes(3).toString("hex")}`;
    await connectClient(ConversationService, "connect", server.baseUrl, tokens!.accessToken).createConversation({
      type: ConversationType.CHANNEL,
      title: name,
      description: "Say hello",
    });

    const { page } = bob;
    await page.getByText("Browse channels").click();
    await page.getByLabel("Channel name").fill(name.slice(0, 8));
    await page.getByLabel("Channel name").press("Enter");
    const row = page.getByTestId("channel-results").getByTestId("channel");
    await waitFor(() => row.allTextContents(), [`#${name}1 member · Say helloJoin`], "the channel is listed");
    await expectNoAxeViolations(bob, "the channel browser");
    await page.getByRole("button", { name: `Join #${name}` }).click();
    await waitFor(() => page.getByTestId("conversation-title").textContent(), `#${name}`, "joined and opened");
    await waitFor(() => page.getByTestId("conversation-subtitle").textContent(), "2 members", "two members");
    await send(bob, "hi all");
    await waitFor(() => conversationItem(alice, `#${name}`).getByTestId("unread-badge").textContent(), "1", "Alice gets it live");

    // Listed again: now "Open", with two members.
    await page.getByTestId("channel-form").getByRole("button", { name: "Show" }).click();
    await waitFor(() => row.allTextContents(), [`#${name}2 members · Say helloOpen`], "joined");
    expect(alice.errors).toEqual([]);
    expect(bob.errors).toEqual([]);
  });

  it("group members: the owner makes someone admin, removes them and adds them back; the other side follows live", async () => {
    const title = `Team ${transport}`;
    await alice.page.getByText("New group").click();
    await alice.page.getByLabel("Group name").fill(title);
    await alice.page.getByLabel("Members", { exact: true }).fill(bob.username);
    await alice.page.getByRole("button", { name: "Create group" }).click();
    await waitFor(() => alice.page.getByTestId("conversation-title").textContent(), title, "group opened");
    await conversationItem(bob, title).waitFor();

    const members = (p: Person) =>
      p.page
        .getByTestId("members-dialog")
        .getByTestId("member")
        .evaluateAll((els) => els.map((el) => [el.querySelector(".conv-title")?.textContent, (el as HTMLElement).dataset.role]));
    await alice.page.getByTestId("members-button").click();
    const dialog = alice.page.getByRole("dialog", { name: "People" });
    await dialog.waitFor();
    await waitFor(
      () => members(alice),
      [
        ["Alice (you)", "owner"],
        ["Bob", "member"],
      ],
      "the owner's view",
    );
    await dialog.getByLabel("Role of Bob").selectOption("admin");
    await waitFor(
      () => members(alice),
      [
        ["Alice (you)", "owner"],
        ["Bob", "admin"],
      ],
      "Bob is admin",
    );
    await expectNoAxeViolations(alice, "the members dialog");

    // Bob (an admin now) sees the roles; he cannot act on the owner.
    await conversationItem(bob, title).click();
    await bob.page.getByTestId("members-button").click();
    await waitFor(
      () => members(bob),
      [
        ["Alice", "owner"],
        ["Bob (you)", "admin"],
      ],
      "Bob's view",
    );
    expect(await bob.page.getByRole("button", { name: "Remove Alice" }).count()).toBe(0);
    await bob.page.keyboard.press("Escape");

    // Removed: the group leaves Bob's list live. Added back: it returns.
    await dialog.getByRole("button", { name: "Remove Bob" }).click();
    await waitFor(() => members(alice), [["Alice (you)", "owner"]], "one member left");
    await waitFor(() => conversationItem(bob, title).count(), 0, "gone from Bob's list");
    await dialog.getByLabel("Add people (usernames)").fill(bob.username);
    await dialog.getByRole("button", { name: "Add", exact: true }).click();
    await waitFor(
      () => members(alice),
      [
        ["Alice (you)", "owner"],
        ["Bob", "member"],
      ],
      "Bob back",
    );
    await waitFor(() => conversationItem(bob, title).count(), 1, "back in Bob's list");
    await alice.page.keyboard.press("Escape");
    expect(alice.errors).toEqual([]);
    expect(bob.errors).toEqual([]);
  });

  it("workspaces: Alice creates one and an invitation link; Bob opens it (a bad link says why), joins and sees its conversations live there and not in the default workspace; Carol, signed out, signs up through the link and joins", async () => {
    const switcher = (p: Person) => p.page.getByLabel("Workspace", { exact: true });
    const options = (p: Person) => switcher(p).locator("option").allTextContents();
    const name = `Design ${transport}`;
    const slug = `design-${transport}-${randomBytes(3).toString("hex")}`;

    // Alice: New workspace (a dialog; the short name follows the name until edited).
    await alice.page.getByRole("button", { name: "New workspace" }).click();
    const create = alice.page.getByRole("dialog", { name: "New workspace" });
    await create.getByLabel("Workspace name").fill(name);
    expect(await create.getByLabel("Short name").inputValue()).toBe(`design-${transport}`);
    await create.getByLabel("Short name").fill(slug);
    await expectNoAxeViolations(alice, "the new workspace dialog");
    await create.getByRole("button", { name: "Create workspace" }).click();
    await create.waitFor({ state: "hidden" });
    await waitFor(async () => (await switcher(alice).locator("option:checked").textContent()) ?? "", name, "Alice is in her new workspace");
    await waitFor(() => alice.page.getByTestId("conversation-list").textContent(), "No conversations yet.", "an empty workspace");
    await expectNoAxeViolations(alice, "the workspace switcher");

    // Invite people: a copyable link to the app.
    await alice.page.getByRole("button", { name: "Invite people" }).click();
    const invite = alice.page.getByRole("dialog", { name: `Invite people to ${name}` });
    const linkBox = invite.getByLabel("Invitation link");
    await expect.poll(() => linkBox.inputValue(), { timeout: WAIT_MS }).toMatch(new RegExp(`^${server.baseUrl}/join/[A-Za-z0-9_-]+$`));
    const link = await linkBox.inputValue();
    await screenshot(alice, `app-${transport}-invite`);
    await expectNoAxeViolations(alice, "the invite dialog");
    await alice.page.keyboard.press("Escape");
    await invite.waitFor({ state: "hidden" });

    // Bob: a link that is no invitation says so; the real one joins and shows the workspace.
    await bob.page.goto(`${server.baseUrl}/join/not-a-real-token?transport=${transport}`);
    await waitFor(
      () => bob.page.getByTestId("error-banner").textContent(),
      "This invitation link is not valid (unknown, or meant for someone else). Ask the person who invited you for a new link.Dismiss",
      "a clear message",
    );
    await bob.page.goto(`${link}?transport=${transport}`);
    await waitFor(async () => (await switcher(bob).locator("option:checked").textContent()) ?? "", name, "Bob joined and sees the workspace");
    expect(new URL(bob.page.url()).pathname).toBe("/");
    await waitFor(() => bob.page.getByTestId("conversation-list").textContent(), "No conversations yet.", "nothing of the default workspace");

    // A group Alice makes here is in this workspace; Bob gets it live. A channel here is listed here only.
    const auth = connectClient(AuthService, "connect", server.baseUrl);
    const { tokens } = await auth.login({ login: alice.username, password: DEFAULT_TEST_PASSWORD, deviceId: randomUUID() });
    const workspaceId = await switcher(alice).inputValue();
    const channel = `studio${randomBytes(3).toString("hex")}`;
    await connectClient(ConversationService, "connect", server.baseUrl, tokens!.accessToken).createConversation({
      type: ConversationType.CHANNEL,
      title: channel,
      workspaceId,
    });
    const group = `Crits ${transport}`;
    await alice.page.getByText("New group").click();
    await alice.page.getByLabel("Group name").fill(group);
    await alice.page.getByLabel("Members", { exact: true }).fill(bob.username);
    await alice.page.getByRole("button", { name: "Create group" }).click();
    await waitFor(() => alice.page.getByTestId("conversation-title").textContent(), group, "group opened");
    await conversationItem(bob, group).waitFor({ timeout: WAIT_MS });
    const channels = bob.page.getByTestId("channel-results").getByTestId("channel");
    await bob.page.getByText("Browse channels").click();
    await waitFor(() => channels.evaluateAll((els) => els.map((el) => (el as HTMLElement).dataset.channel)), [channel], "the workspace's channel");

    // Back in the default workspace: the DM, not the group; a message in the group marks the other workspace unread.
    // (Its entry may say "(n unread)": Bob skipped it since his reload.)
    const defaultId = await switcher(bob)
      .locator("option", { hasText: /^Default/ })
      .getAttribute("value");
    await switcher(bob).selectOption(defaultId!);
    await conversationItem(bob, alice.displayName).waitFor({ timeout: WAIT_MS });
    expect(await conversationItem(bob, group).count()).toBe(0);
    await bob.page.getByTestId("channel-form").getByRole("button", { name: "Show" }).click();
    await waitFor(
      async () => (await channels.evaluateAll((els) => els.map((el) => (el as HTMLElement).dataset.channel))).includes(channel),
      false,
      "not listed in the default workspace",
    );
    await send(alice, "new crit at 3");
    await waitFor(async () => (await options(bob)).includes(`${name} (1 unread)`), true, "the other workspace is marked unread");
    expect(await conversationItem(bob, group).count()).toBe(0);
    await switcher(bob).selectOption({ label: `${name} (1 unread)` });
    await waitFor(() => conversationItem(bob, group).getByTestId("unread-badge").textContent(), "1", "the group with its unread message");

    // Carol, signed out, opens the link: she signs up, then joins.
    const carol = await openApp(transport, "Carol");
    try {
      await carol.page.goto(`${link}?transport=${transport}`);
      await carol.page.getByText("Log in or create an account to join the workspace you were invited to.").waitFor();
      await signUp(carol);
      await waitFor(async () => (await switcher(carol).locator("option:checked").textContent()) ?? "", name, "Carol joined");
      expect(carol.errors).toEqual([]);
    } finally {
      await carol.context.close();
    }
    expect(alice.errors).toEqual([]);
    expect(bob.errors).toEqual([]);
  });
});

// ---- settings, phone layout, accessibility --------------------------------------------

describe.runIf(haveChromium)("web app settings, phone layout and accessibility", () => {
  it("the protocol is a setting (a dialog), not on the sign-up form or the top bar; switching moves calls and the stream to gRPC-Web", async () => {
    const p = await openApp("connect", "Frank");
    try {
      // Nothing about protocols on the sign-up form.
      expect(await p.page.getByLabel("Protocol").count()).toBe(0);
      expect(await p.page.getByText(/gRPC-Web|Connect/).count()).toBe(0);
      await signUp(p);
      expect(
        await p.page
          .locator(".topbar")
          .getByText(/Protocol|gRPC-Web/)
          .count(),
      ).toBe(0);
      expectProtocol(p, "connect");

      const from = p.rpcs.length;
      await p.page.getByRole("button", { name: "Settings" }).click();
      const dialog = p.page.getByRole("dialog", { name: "Settings" });
      await dialog.waitFor();
      expect(await dialog.getByLabel("Connect").isChecked()).toBe(true);
      await dialog.getByLabel("gRPC-Web").check();
      expect(new URL(p.page.url()).searchParams.get("transport")).toBe("grpc-web");
      // Escape closes the dialog; focus returns to the button that opened it.
      await p.page.keyboard.press("Escape");
      await waitFor(() => dialog.isVisible(), false, "dialog closed");
      expect(await p.page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.testid)).toBe("settings-button");

      await waitFor(
        () => Promise.resolve(p.rpcs.slice(from).some((r) => r.path === `/${MessageService.typeName}/Subscribe`)),
        true,
        "stream re-opened",
      );
      await waitFor(() => p.page.getByTestId("connection-status").getAttribute("data-state"), "live", "live again");
      await p.page.getByLabel("Message someone").fill(p.username);
      await p.page.getByLabel("Message someone").press("Enter");
      await waitFor(() => p.page.getByTestId("dm-results").textContent(), `Nobody found for “${p.username}”.`, "search answered");
      const later = p.rpcs.slice(from);
      expect(later.length).toBeGreaterThan(1);
      for (const r of later) expect(r.contentType, r.path).toMatch(/^application\/grpc-web/);

      // The choice is remembered: a reload (no ?transport=) stays on gRPC-Web.
      await p.page.goto(server.baseUrl);
      await p.page.getByTestId("me").waitFor({ state: "attached" });
      await p.page.getByRole("button", { name: "Settings" }).click();
      expect(await p.page.getByRole("dialog", { name: "Settings" }).getByLabel("gRPC-Web").isChecked()).toBe(true);
      expect(p.errors).toEqual([]);
    } finally {
      await p.context.close();
    }
  });

  it("at 390 px: one pane at a time with a back button, 44 px touch targets, no horizontal scroll; axe finds nothing in light and dark, at 390 and 1280 px", async () => {
    const phone = { width: 390, height: 844 };
    const amy = await openApp("connect", "Amy", phone);
    const ben = await openApp("grpc-web", "Ben");
    try {
      for (const scheme of ["light", "dark"] as const) {
        await amy.page.emulateMedia({ colorScheme: scheme });
        await expectNoAxeViolations(amy, `the sign-up form (390 px, ${scheme})`);
      }
      await signUp(amy);
      await signUp(ben);
      await ben.page.getByLabel("Message someone").fill(amy.username);
      await ben.page.getByLabel("Message someone").press("Enter");
      await waitFor(() => ben.page.getByTestId("conversation-title").textContent(), "Amy", "DM opened");
      await send(ben, "Hello there");
      await send(ben, "Lunch at noon? 🍜 The place with the long queue, it is worth it.");
      await messageEl(ben, "Hello there").getByRole("button", { name: "Add reaction" }).click();
      await ben.page.getByRole("button", { name: "React with 👍" }).click();

      const page = amy.page;
      const visible = (testId: string) => page.getByTestId(testId).isVisible();
      const noHorizontalScroll = () => page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth);
      /** Visible controls smaller than 44 x 44 px (their accessible name or tag). */
      const smallTargets = () =>
        page.evaluate(() =>
          Array.from(document.querySelectorAll<HTMLElement>("button, input, select, textarea, summary, a[href]"))
            .filter((el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden" && !el.closest("[hidden]"))
            .filter((el) => !(el as HTMLInputElement).type?.match(/^(radio|checkbox)$/))
            .filter((el) => !el.classList.contains("skip-link"))
            .map((el) => ({ el, r: el.getBoundingClientRect() }))
            .filter(({ r }) => r.width > 0 && (r.width < 44 || r.height < 44))
            .map(
              ({ el, r }) =>
                `${el.getAttribute("aria-label") || el.textContent?.trim() || el.tagName} ${Math.round(r.width)}x${Math.round(r.height)}`,
            ),
        );

      // The list pane only.
      await conversationItem(amy, "Ben").waitFor();
      expect(await visible("conversation-list")).toBe(true);
      expect(await visible("conversation-view")).toBe(false);
      expect(await noHorizontalScroll()).toBe(true);
      expect(await smallTargets()).toEqual([]);
      for (const scheme of ["light", "dark"] as const) {
        await page.emulateMedia({ colorScheme: scheme });
        await screenshot(amy, `app-390-list-${scheme}`);
        await expectNoAxeViolations(amy, `the conversation list (390 px, ${scheme})`);
      }

      // Tap a conversation: the conversation pane only, with a back button.
      await conversationItem(amy, "Ben").tap();
      await waitFor(() => visible("conversation-view"), true, "conversation shown");
      expect(await visible("conversation-list")).toBe(false);
      expect(await visible("back-button")).toBe(true);
      await waitFor(async () => (await shown(amy)).length, 2, "messages shown");
      await messageEl(amy, "Hello there").getByTestId("reaction").waitFor();
      expect(await noHorizontalScroll()).toBe(true);
      expect(await smallTargets()).toEqual([]);
      // A tap on a message shows its tools (44 px too).
      await messageEl(amy, "Hello there").getByTestId("message-content").tap();
      await messageEl(amy, "Hello there").getByRole("button", { name: "Add reaction" }).waitFor();
      expect(await smallTargets()).toEqual([]);
      for (const scheme of ["light", "dark"] as const) {
        await page.emulateMedia({ colorScheme: scheme });
        await screenshot(amy, `app-390-conversation-${scheme}`);
        await expectNoAxeViolations(amy, `a conversation (390 px, ${scheme})`);
      }
      // Her own message, in the edit box and with the picker open: still clean.
      await send(amy, "Yes! See you there 🙂");
      await waitFor(async () => (await shown(amy)).at(-1)?.state, "sent", "stored");
      await composer(amy).press("ArrowUp");
      await page.getByRole("textbox", { name: "Edit message" }).waitFor();
      expect(await noHorizontalScroll()).toBe(true);
      await expectNoAxeViolations(amy, "the edit box (390 px)");
      await page.getByRole("textbox", { name: "Edit message" }).press("Escape");
      // (Its tools are still shown from the tap above; another tap would hide them.)
      await messageEl(amy, "Hello there").getByRole("button", { name: "Add reaction" }).tap();
      await page.getByTestId("reaction-picker").waitFor();
      expect(await noHorizontalScroll()).toBe(true);
      expect(await smallTargets()).toEqual([]);
      await expectNoAxeViolations(amy, "the reaction picker (390 px)");

      // A thread on a phone: the thread pane only; closing it returns to the conversation.
      await page.keyboard.press("Escape"); // closes the picker
      await messageEl(amy, "Hello there").getByRole("button", { name: "Reply in thread" }).tap();
      await waitFor(() => visible("thread-panel"), true, "thread shown");
      expect(await visible("conversation-view")).toBe(false);
      expect(await visible("conversation-list")).toBe(false);
      await page.getByLabel("Reply", { exact: true }).fill("On my way 🏃");
      await page.getByLabel("Reply", { exact: true }).press("Enter");
      await waitFor(() => page.getByTestId("thread-reply").getAttribute("data-state"), "sent", "reply stored");
      expect(await noHorizontalScroll()).toBe(true);
      expect(await smallTargets()).toEqual([]);
      for (const scheme of ["light", "dark"] as const) {
        await page.emulateMedia({ colorScheme: scheme });
        await screenshot(amy, `app-390-thread-${scheme}`);
        await expectNoAxeViolations(amy, `a thread (390 px, ${scheme})`);
      }
      await page.getByRole("button", { name: "Close thread" }).tap();
      await waitFor(() => visible("conversation-view"), true, "conversation again");

      // Back: the list again, focus on the conversation just left.
      await page.getByTestId("back-button").tap();
      await waitFor(() => visible("conversation-list"), true, "list again");
      expect(await visible("conversation-view")).toBe(false);
      expect(await page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.testid)).toBe("conversation-item");

      // The settings dialog on a phone.
      await page.getByRole("button", { name: "Settings" }).tap();
      await page.getByRole("dialog", { name: "Settings" }).waitFor();
      expect(await smallTargets()).toEqual([]);
      await expectNoAxeViolations(amy, "the settings dialog (390 px)");
      await page.keyboard.press("Escape");

      // The desktop layout, both panes, light and dark.
      await page.setViewportSize({ width: 1280, height: 800 });
      await conversationItem(amy, "Ben").click();
      await waitFor(() => visible("conversation-list"), true, "both panes");
      expect(await visible("back-button")).toBe(false);
      await messageEl(amy, "Hello there").getByTestId("reply-count").click();
      await waitFor(() => visible("thread-panel"), true, "thread beside the conversation");
      expect(await visible("conversation-view")).toBe(true);
      await messageEl(amy, "Hello there").hover();
      for (const scheme of ["light", "dark"] as const) {
        await page.emulateMedia({ colorScheme: scheme });
        await screenshot(amy, `app-1280-conversation-${scheme}`);
        await expectNoAxeViolations(amy, `a conversation with its thread (1280 px, ${scheme})`);
      }
      expect(amy.errors).toEqual([]);
      expect(ben.errors).toEqual([]);
    } finally {
      await amy.context.close();
      await ben.context.close();
    }
  });
});
