// MessageService end to end: the real server (two app instances on the same
// stores where the backend allows), real users, @grpc/grpc-js as native stubs
// and Connect (JSON) as browsers. Variants: Postgres, MongoDB (FerretDB here)
// with Postgres for conversations, and the embedded PGlite default.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { ChatMessage } from "../../gen/chat/v1/message_pb.js";
import { ConversationType } from "../../gen/chat/v1/conversation_pb.js";
import { forEachBackend } from "../support/backends.ts";
import { grpcErrorInfo } from "../support/errors.ts";
import { CS, MS, connectViolations, failure, grpcViolations, startMessageHarness, type MessageHarness, type TestUser } from "./e2e-harness.ts";

const NIL = "00000000-0000-4000-8000-000000000000";
const seqs = (ms: ChatMessage[]) => ms.map((m) => Number(m.seq));

forEachBackend("messages e2e", ["postgres", "mongo", "pglite"] as const, (variant) => {
  let h: MessageHarness;
  let alice: TestUser, bob: TestUser, carol: TestUser, outsider: TestUser;

  beforeAll(async () => {
    h = await startMessageHarness(variant, 2);
    [alice, bob, carol, outsider] = await h.users(4);
  });
  afterAll(async () => {
    await h?.close();
  });

  const send = async (user: TestUser, conversationId: string, over: Record<string, unknown> = {}, node = 0) =>
    (await h.call(user, MS.sendMessage, { conversationId, clientMessageId: randomUUID(), content: "hello", ...over }, { node })).message!;
  const list = async (user: TestUser, conversationId: string, over: Record<string, unknown> = {}, node = 0) =>
    h.call(user, MS.listMessages, { conversationId, ...over }, { node });
  const get = async (user: TestUser, messageId: string) => (await h.call(user, MS.getMessage, { messageId })).message!;

  describe("send", () => {
    it("stores a message and returns it the same way to grpc-js and Connect clients", async () => {
      const conv = await h.group(alice, [bob]);
      const cmid = randomUUID();
      const before = Date.now();
      const m = await send(alice, conv, { clientMessageId: cmid, content: "Hello, 世界 👋" });
      expect(m).toMatchObject({
        conversationId: conv,
        seq: 1n,
        senderId: alice.id,
        clientMessageId: cmid,
        content: "Hello, 世界 👋",
        deleted: false,
        replyCount: 0,
      });
      expect(m.id).toMatch(/^[0-9a-f-]{36}$/);
      // Stamped by the server during the call (ms resolution on the wire).
      expect(timestampMs(m.createdAt!)).toBeGreaterThanOrEqual(before - 1);
      expect(timestampMs(m.createdAt!)).toBeLessThanOrEqual(Date.now() + 1);
      expect(m.editedAt).toBeUndefined();
      const viaConnect = (await h.connect(bob, 1).getMessage({ messageId: m.id })).message!;
      expect(viaConnect).toMatchObject({ id: m.id, seq: 1n, content: "Hello, 世界 👋", senderId: alice.id });
      expect(seqs((await list(bob, conv)).messages)).toEqual([1]);
    });

    it("keeps attachments, allows them without text, and keeps only members among mentions", async () => {
      const conv = await h.group(alice, [bob]);
      const attachments = [{ url: "https://cdn.example/cat.png", name: "cat.png", mimeType: "image/png", sizeBytes: 2048n }];
      const m = await send(alice, conv, { content: "", attachments, mentions: [bob.id, outsider.id, bob.id.toUpperCase()] });
      expect(m.attachments).toEqual([
        expect.objectContaining({ url: "https://cdn.example/cat.png", name: "cat.png", mimeType: "image/png", sizeBytes: 2048n }),
      ]);
      expect(m.mentions).toEqual([bob.id]);
      expect((await get(bob, m.id)).mentions).toEqual([bob.id]);
    });

    it("is idempotent: retries return the original on any node, over any protocol, also with different content", async () => {
      const conv = await h.group(alice, [bob]);
      const cmid = randomUUID();
      const first = await send(alice, conv, { clientMessageId: cmid, content: "original" });
      const retryOtherNode = await send(alice, conv, { clientMessageId: cmid, content: "original" }, 1);
      const retryChanged = await send(alice, conv, { clientMessageId: cmid, content: "changed on retry" });
      for (const r of [retryOtherNode, retryChanged]) expect(r).toMatchObject({ id: first.id, seq: 1n, content: "original" });
      // Concurrent retries of a new message, half grpc-js on two nodes, half Connect.
      const cmid2 = randomUUID();
      const racing = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          i % 2
            ? send(alice, conv, { clientMessageId: cmid2, content: `race ${i}` }, i % 4 === 1 ? 0 : 1)
            : h
                .connect(alice, i % 4)
                .sendMessage({ conversationId: conv, clientMessageId: cmid2, content: `race ${i}` })
                .then((r) => r.message!),
        ),
      );
      expect(new Set(racing.map((m) => m.id)).size).toBe(1);
      expect(new Set(racing.map((m) => m.content)).size).toBe(1);
      expect(racing.every((m) => m.seq === 2n)).toBe(true);
      expect(seqs((await list(bob, conv)).messages)).toEqual([2, 1]);
      // No seq was burnt by the repeats.
      expect((await send(bob, conv)).seq).toBe(3n);
      expect((await h.call(alice, CS.getConversation, { conversationId: conv })).conversation!.lastSeq).toBe(3n);
    });

    it("a non-member's send, reply or mention gets the same NOT_FOUND as an unknown conversation and writes nothing; a removed member's repeat finds nothing", async () => {
      const conv = await h.group(alice, [bob, carol]);
      const parent = await send(alice, conv, { content: "parent" });
      const unknown = await failure(send(outsider, randomUUID()));
      expect(unknown.code).toBe(grpc.status.NOT_FOUND);
      for (const over of [{}, { parentMessageId: parent.id }, { mentions: [bob.id] }, { parentMessageId: randomUUID() }]) {
        const err = await failure(send(outsider, conv, over));
        expect(err.code, JSON.stringify(over)).toBe(grpc.status.NOT_FOUND);
        expect(err.details).toBe(unknown.details);
      }
      // A member's send, then the member is removed: the same client_message_id again is refused,
      // not answered with the original.
      const cmid = randomUUID();
      const mine = await send(carol, conv, { clientMessageId: cmid, content: "before removal" });
      expect(mine.seq).toBe(2n);
      await h.call(alice, CS.removeMember, { conversationId: conv, userId: carol.id });
      const repeat = await failure(send(carol, conv, { clientMessageId: cmid, content: "before removal" }));
      expect(repeat.code).toBe(grpc.status.NOT_FOUND);
      expect(repeat.details).toBe(unknown.details);
      // Nothing was written by the refused sends: the next seq follows the member's.
      expect((await send(bob, conv)).seq).toBe(3n);
      expect(seqs((await list(alice, conv)).messages)).toEqual([3, 2, 1]);
    });

    it("20 concurrent senders x 100 messages, spread over the app instances, get exactly seqs 1..2000", { timeout: 600_000 }, async () => {
      const senders = await h.users(20);
      const conv = await h.group(senders[0], senders.slice(1));
      const got: number[] = [];
      await Promise.all(
        senders.map(async (s, i) => {
          for (let k = 0; k < 100; k++) got.push(Number((await send(s, conv, { content: `${i}/${k}` }, i)).seq));
        }),
      );
      expect(new Set(got).size).toBe(2000);
      expect([...got].sort((a, b) => a - b)).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
      // What readers see agrees, walking newest to oldest on the other node.
      const walked: number[] = [];
      let before = 0;
      for (;;) {
        const page = await list(senders[3], conv, { beforeSeq: BigInt(before), limit: 200 }, 1);
        walked.push(...seqs(page.messages));
        if (!page.hasMore) break;
        before = walked[walked.length - 1];
      }
      expect(walked).toEqual(Array.from({ length: 2000 }, (_, i) => 2000 - i));
      expect((await h.call(senders[0], CS.getConversation, { conversationId: conv })).conversation!.lastSeq).toBe(2000n);
    });
  });

  describe("list", () => {
    it("pages backwards and forwards with no gap and no duplicate while messages arrive", async () => {
      const conv = await h.group(alice, [bob]);
      for (let i = 0; i < 30; i++) await send(alice, conv, { content: `old ${i}` });
      let writing = true;
      const writer = (async () => {
        for (let i = 0; i < 40; i++) await send(bob, conv, { content: `new ${i}` }, 1);
        writing = false;
      })();
      const seen: number[] = [];
      // Backwards from the newest to the start...
      let page = await list(alice, conv, { limit: 7 });
      const top = Number(page.messages[0].seq);
      seen.push(...seqs(page.messages));
      while (page.hasMore) {
        page = await list(alice, conv, { limit: 7, beforeSeq: BigInt(seen[seen.length - 1]) });
        seen.push(...seqs(page.messages));
      }
      // ...then forwards from where it started until the writer is done and nothing is left.
      let after = top;
      for (;;) {
        const done = !writing;
        const fwd = await list(alice, conv, { limit: 5, afterSeq: BigInt(after) });
        seen.push(...seqs(fwd.messages));
        if (fwd.messages.length > 0) after = Number(fwd.messages[fwd.messages.length - 1].seq);
        if (done && !fwd.hasMore) break;
      }
      await writer;
      expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 70 }, (_, i) => i + 1));
      expect(new Set(seen).size).toBe(70);
    });

    it("limits pages to 1..200 with 50 by default", async () => {
      const conv = await h.group(alice, []);
      for (let i = 0; i < 55; i++) await send(alice, conv);
      const dflt = await list(alice, conv);
      expect(dflt.messages).toHaveLength(50);
      expect(dflt.hasMore).toBe(true);
      expect((await list(alice, conv, { limit: 200 })).messages).toHaveLength(55);
      expect((await list(alice, conv, { limit: 1, afterSeq: 54n })).messages.map((m) => m.seq)).toEqual([55n]);
    });

    it("after_seq 0 pages oldest first from seq 1 (grpc-js and Connect JSON); unset still means newest first", async () => {
      const conv = await h.group(alice, [bob]);
      for (let i = 0; i < 5; i++) await send(alice, conv, { content: `m${i}` });
      const first = await list(alice, conv, { afterSeq: 0n, limit: 2 });
      expect(seqs(first.messages)).toEqual([1, 2]);
      expect(first.hasMore).toBe(true);
      const viaConnect = await h.connect(bob, 1).listMessages({ conversationId: conv, afterSeq: 0n, limit: 3 });
      expect(seqs(viaConnect.messages)).toEqual([1, 2, 3]);
      // The next page continues from the last seq seen, with no gap and no duplicate.
      const next = await list(alice, conv, { afterSeq: 2n, limit: 10 });
      expect(seqs(next.messages)).toEqual([3, 4, 5]);
      expect(next.hasMore).toBe(false);
      // Unset (and an explicit before_seq 0) are the newest first, as before.
      expect(seqs((await list(alice, conv, { limit: 2 })).messages)).toEqual([5, 4]);
      expect(seqs((await list(alice, conv, { beforeSeq: 0n, limit: 2 })).messages)).toEqual([5, 4]);
      // A thread from its first reply.
      const parent = await send(alice, conv, { content: "a thread" });
      const r1 = await send(bob, conv, { parentMessageId: parent.id });
      const r2 = await send(alice, conv, { parentMessageId: parent.id });
      expect((await list(alice, conv, { parentMessageId: parent.id, afterSeq: 0n })).messages.map((m) => m.id)).toEqual([r1.id, r2.id]);
    });
  });

  describe("threads", () => {
    it("counts replies and the last reply time on the parent; lists one thread", async () => {
      const conv = await h.group(alice, [bob]);
      const parent = await send(alice, conv, { content: "a thread" });
      const r1 = await send(bob, conv, { parentMessageId: parent.id, content: "reply 1" });
      await send(alice, conv, { content: "unrelated" });
      const r2 = await send(alice, conv, { parentMessageId: parent.id, content: "reply 2" }, 1);
      // A retried reply counts once.
      await send(bob, conv, { parentMessageId: parent.id, clientMessageId: r1.clientMessageId, content: "reply 1" });
      const p = await get(bob, parent.id);
      expect(p.replyCount).toBe(2);
      expect(p.lastReplyAt).toEqual(r2.createdAt);
      expect(r1.parentMessageId).toBe(parent.id);
      // The thread, newest first and oldest first (after_seq = the parent's seq starts at its first reply).
      expect((await list(alice, conv, { parentMessageId: parent.id })).messages.map((m) => m.id)).toEqual([r2.id, r1.id]);
      expect((await list(alice, conv, { parentMessageId: parent.id, afterSeq: parent.seq })).messages.map((m) => m.id)).toEqual([r1.id, r2.id]);
      // The conversation view has parents and replies alike, with the count on the parent.
      const all = (await list(alice, conv)).messages;
      expect(seqs(all)).toEqual([4, 3, 2, 1]);
      expect(all.find((m) => m.id === parent.id)?.replyCount).toBe(2);
    });

    it("refuses replies to replies and to messages of another conversation", async () => {
      const conv = await h.group(alice, [bob]);
      const other = await h.group(alice, [bob]);
      const parent = await send(alice, conv);
      const reply = await send(bob, conv, { parentMessageId: parent.id });
      const elsewhere = await send(alice, other);
      for (const parentMessageId of [reply.id, elsewhere.id, NIL]) {
        const err = await failure(send(alice, conv, { parentMessageId }));
        expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
        expect(grpcViolations(err)).toEqual(["parent_message_id"]);
      }
      await h.call(alice, MS.deleteMessage, { messageId: parent.id });
      expect((await failure(send(bob, conv, { parentMessageId: parent.id }))).code).toBe(grpc.status.FAILED_PRECONDITION);
    });
  });

  describe("edit and delete", () => {
    it("lets only the sender edit, sets edited_at, and not after deletion", async () => {
      const conv = await h.group(alice, [bob]);
      const m = await send(bob, conv, { content: "tpyo" });
      const edited = (await h.call(bob, MS.editMessage, { messageId: m.id, content: "typo" }, { node: 1 })).message!;
      expect(edited).toMatchObject({ id: m.id, seq: m.seq, content: "typo" });
      expect(timestampMs(edited.editedAt!)).toBeGreaterThanOrEqual(timestampMs(m.createdAt!));
      expect((await get(alice, m.id)).content).toBe("typo");
      // Not even the owner may edit someone else's words.
      expect((await failure(h.call(alice, MS.editMessage, { messageId: m.id, content: "mine now" }))).code).toBe(grpc.status.PERMISSION_DENIED);
      await h.call(bob, MS.deleteMessage, { messageId: m.id });
      expect((await failure(h.call(bob, MS.editMessage, { messageId: m.id, content: "back" }))).code).toBe(grpc.status.FAILED_PRECONDITION);
    });

    it("deletes to a tombstone (sender, owner or admin only) that keeps its seq", async () => {
      const conv = await h.group(alice, [bob, carol]);
      await send(bob, conv);
      const target = await send(bob, conv, {
        content: "oops",
        attachments: [{ url: "http://x.example/a", name: "a", mimeType: "text/plain", sizeBytes: 1n }],
      });
      await send(carol, conv);
      await h.call(carol, MS.addReaction, { messageId: target.id, emoji: "👍" });
      // carol is a plain member and did not send it.
      expect((await failure(h.call(carol, MS.deleteMessage, { messageId: target.id }))).code).toBe(grpc.status.PERMISSION_DENIED);
      // alice owns the conversation.
      const tomb = (await h.call(alice, MS.deleteMessage, { messageId: target.id })).message!;
      expect(tomb).toMatchObject({ id: target.id, seq: 2n, deleted: true, content: "", attachments: [], reactions: [] });
      // Deleting again is a no-op returning the tombstone.
      expect((await h.call(bob, MS.deleteMessage, { messageId: target.id })).message).toMatchObject({ id: target.id, deleted: true });
      const page = (await list(carol, conv)).messages;
      expect(page.map((m) => [Number(m.seq), m.deleted, m.content])).toEqual([
        [3, false, "hello"],
        [2, true, ""],
        [1, false, "hello"],
      ]);
      expect((await failure(h.call(carol, MS.addReaction, { messageId: target.id, emoji: "👍" }))).code).toBe(grpc.status.FAILED_PRECONDITION);
    });
  });

  describe("reactions", () => {
    it("are idempotent per user and emoji, with a per-viewer summary on every read path", async () => {
      const conv = await h.group(alice, [bob, carol]);
      const m = await send(alice, conv);
      const once = (await h.call(bob, MS.addReaction, { messageId: m.id, emoji: "🎉" })).message!;
      const twice = (await h.call(bob, MS.addReaction, { messageId: m.id, emoji: "🎉" }, { node: 1 })).message!;
      expect(once.reactions).toEqual([expect.objectContaining({ emoji: "🎉", count: 1, reacted: true })]);
      expect(twice.reactions).toEqual(once.reactions);
      await Promise.all(Array.from({ length: 6 }, (_, i) => h.call(carol, MS.addReaction, { messageId: m.id, emoji: "🎉" }, { node: i })));
      await h.call(carol, MS.addReaction, { messageId: m.id, emoji: ":shipit:" });
      await h.call(carol, MS.addReaction, { messageId: m.id, emoji: "🇺🇦" });
      const forAlice = (await list(alice, conv)).messages[0].reactions.map((r) => [r.emoji, r.count, r.reacted]);
      expect(forAlice).toEqual(
        [
          [":shipit:", 1, false],
          ["🎉", 2, false],
          ["🇺🇦", 1, false],
        ].sort((a, b) => ((a[0] as string) < (b[0] as string) ? -1 : 1)),
      );
      expect((await get(bob, m.id)).reactions.find((r) => r.emoji === "🎉")).toMatchObject({ count: 2, reacted: true });
      const removed = (await h.call(bob, MS.removeReaction, { messageId: m.id, emoji: "🎉" })).message!;
      expect(removed.reactions.find((r) => r.emoji === "🎉")).toMatchObject({ count: 1, reacted: false });
      const again = (await h.call(bob, MS.removeReaction, { messageId: m.id, emoji: "🎉" })).message!;
      expect(again.reactions).toEqual(removed.reactions);
    });

    it("ListReactions says who reacted, per emoji with its count and the caller's flag, paged, on both nodes and over Connect", async () => {
      const users = await h.users(3);
      const conv = await h.group(alice, [bob, ...users]);
      const m = await send(alice, conv);
      for (const u of [bob, ...users]) await h.call(u, MS.addReaction, { messageId: m.id, emoji: "🎉" });
      await h.call(bob, MS.addReaction, { messageId: m.id, emoji: ":shipit:" }, { node: 1 });
      const ids = (list: TestUser[]) => list.map((u) => u.id).sort();

      const all = await h.call(bob, MS.listReactions, { messageId: m.id }, { node: 1 });
      expect(all.nextPageToken).toBe("");
      expect(all.reactions.map((r) => ({ emoji: r.emoji, count: r.count, reacted: r.reacted, userIds: r.userIds }))).toEqual([
        { emoji: ":shipit:", count: 1, reacted: true, userIds: [bob.id] },
        { emoji: "🎉", count: 4, reacted: true, userIds: ids([bob, ...users]) },
      ]);
      // Alice reacted with neither.
      expect((await h.call(alice, MS.listReactions, { messageId: m.id })).reactions.map((r) => r.reacted)).toEqual([false, false]);

      // Pages of 2 (emoji, user) pairs: 🎉 spans two pages with its full count on each; every pair once.
      const pages: { emoji: string; count: number; userIds: string[] }[][] = [];
      let pageToken = "";
      do {
        const page = await h.call(alice, MS.listReactions, { messageId: m.id, pageSize: 2, pageToken }, { node: pages.length % 2 });
        pages.push(page.reactions.map((r) => ({ emoji: r.emoji, count: r.count, userIds: r.userIds })));
        pageToken = page.nextPageToken;
      } while (pageToken && pages.length < 10);
      expect(pages.map((p) => p.map((r) => [r.emoji, r.count, r.userIds.length]))).toEqual([
        [
          [":shipit:", 1, 1],
          ["🎉", 4, 1],
        ],
        [["🎉", 4, 2]],
        [["🎉", 4, 1]],
      ]);
      expect(pages.flat().flatMap((r) => r.userIds.map((u) => `${r.emoji} ${u}`))).toEqual(
        all.reactions.flatMap((r) => r.userIds.map((u) => `${r.emoji} ${u}`)),
      );

      // The emoji filter, over Connect (JSON) as a browser calls it.
      const party = await h.connect(users[0], 1).listReactions({ messageId: m.id, emoji: "🎉" });
      expect(party.reactions).toHaveLength(1);
      expect(party.reactions[0]).toMatchObject({ emoji: "🎉", count: 4, reacted: true, userIds: ids([bob, ...users]) });
      expect((await h.call(alice, MS.listReactions, { messageId: m.id, emoji: "🙈" })).reactions).toEqual([]);

      // Removal shows at once; a deleted message has no reactions left.
      await h.call(bob, MS.removeReaction, { messageId: m.id, emoji: ":shipit:" });
      expect((await h.call(alice, MS.listReactions, { messageId: m.id })).reactions.map((r) => r.emoji)).toEqual(["🎉"]);
      await h.call(alice, MS.deleteMessage, { messageId: m.id });
      expect(await h.call(bob, MS.listReactions, { messageId: m.id })).toMatchObject({ reactions: [], nextPageToken: "" });
    });
  });

  describe("read receipts", () => {
    it("move the watermark forward only; unread_count follows; ListConversations agrees and shows the preview", async () => {
      const conv = await h.group(alice, [bob]);
      for (let i = 0; i < 6; i++) await send(alice, conv, { content: `m${i}` });
      const mr = (seq: number, node = 0) => h.call(bob, MS.markRead, { conversationId: conv, seq: BigInt(seq) }, { node });
      expect(await mr(4)).toMatchObject({ lastReadSeq: 4n, unreadCount: 2 });
      expect(await mr(2, 1)).toMatchObject({ lastReadSeq: 4n, unreadCount: 2 }); // never back
      expect(await mr(0)).toMatchObject({ lastReadSeq: 4n, unreadCount: 2 });
      // Concurrent marks in any order end at the highest.
      await Promise.all([5, 3, 5, 4].map((s, i) => mr(s, i)));
      expect(await mr(5)).toMatchObject({ lastReadSeq: 5n, unreadCount: 1 });
      expect(await mr(1_000_000)).toMatchObject({ lastReadSeq: 6n, unreadCount: 0 }); // clamped to the last seq
      const m7 = await send(alice, conv, { content: "the latest" });
      const listed = (await h.call(bob, CS.listConversations, {})).conversations.find((c) => c.id === conv)!;
      expect(listed).toMatchObject({ lastSeq: 7n, lastReadSeq: 6n, unreadCount: 1 });
      expect(listed.lastMessage).toMatchObject({ messageId: m7.id, seq: 7n, senderId: alice.id, content: "the latest", deleted: false });
      // Sending moves the sender's own watermark.
      expect((await h.call(alice, CS.listConversations, {})).conversations.find((c) => c.id === conv)).toMatchObject({
        lastReadSeq: 7n,
        unreadCount: 0,
      });
    });
  });

  describe("search", () => {
    it("finds the caller's messages only, newest first, page by page", async () => {
      const mine = await h.group(alice, [bob]);
      const theirs = await h.group(carol, [outsider]);
      const word = `wombat${randomUUID().slice(0, 6)}`;
      await send(carol, theirs, { content: `${word} in a conversation alice is not in` });
      const sent: ChatMessage[] = [];
      for (let i = 0; i < 5; i++) sent.push(await send(i % 2 ? alice : bob, mine, { content: `the ${word} number ${i}` }));
      await send(alice, mine, { content: "unrelated" });
      const pages: ChatMessage[][] = [];
      let token = "";
      do {
        const res = await h.call(alice, MS.searchMessages, { query: word.toUpperCase(), pageSize: 2, pageToken: token });
        pages.push(res.messages);
        token = res.nextPageToken;
      } while (token && pages.length < 10);
      const found = pages.flat();
      expect(found.map((m) => m.id)).toEqual(sent.map((m) => m.id).reverse());
      expect(found.every((m) => m.conversationId === mine)).toBe(true);
      // Restricted to one conversation, and by several words.
      expect((await h.call(alice, MS.searchMessages, { query: `${word} number 3`, conversationId: mine })).messages.map((m) => m.id)).toEqual([
        sent[3].id,
      ]);
      // The other side finds only theirs.
      expect((await h.call(outsider, MS.searchMessages, { query: word })).messages.map((m) => m.conversationId)).toEqual([theirs]);
      // Deleted messages are gone from search.
      await h.call(bob, MS.deleteMessage, { messageId: sent[4].id });
      expect((await h.call(alice, MS.searchMessages, { query: word, pageSize: 100 })).messages).toHaveLength(4);
    });
  });

  describe("idempotency-key header", () => {
    it("replays a stored response instead of redoing an edit after a later one", async () => {
      const conv = await h.group(alice, [bob]);
      const m = await send(alice, conv, { content: "v1" });
      const key = randomUUID();
      const first = (await h.call(alice, MS.editMessage, { messageId: m.id, content: "v2" }, { metadata: { "idempotency-key": key } })).message!;
      await h.call(alice, MS.editMessage, { messageId: m.id, content: "v3" });
      // The late retry of the v2 edit, on the other node: answered from the store, not applied.
      const replay = (await h.call(alice, MS.editMessage, { messageId: m.id, content: "v2" }, { node: 1, metadata: { "idempotency-key": key } }))
        .message!;
      expect(replay).toEqual(first);
      expect((await get(alice, m.id)).content).toBe("v3");
      // The same key for another request is refused; another user's key space is separate.
      const reuse = await failure(h.call(alice, MS.editMessage, { messageId: m.id, content: "v4" }, { metadata: { "idempotency-key": key } }));
      expect(reuse.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(grpcViolations(reuse)).toEqual(["idempotency-key"]);
      const bad = await failure(h.call(alice, MS.editMessage, { messageId: m.id, content: "v4" }, { metadata: { "idempotency-key": "has space" } }));
      expect(grpcViolations(bad)).toEqual(["idempotency-key"]);
    });

    it("keeps a removed reaction removed when an old AddReaction is retried", async () => {
      const conv = await h.group(alice, [bob]);
      const m = await send(alice, conv);
      const key = randomUUID();
      await h.call(bob, MS.addReaction, { messageId: m.id, emoji: "👀" }, { metadata: { "idempotency-key": key } });
      await h.call(bob, MS.removeReaction, { messageId: m.id, emoji: "👀" });
      await h.call(bob, MS.addReaction, { messageId: m.id, emoji: "👀" }, { metadata: { "idempotency-key": key } });
      expect((await get(bob, m.id)).reactions).toEqual([]);
      // A failed call is not stored: its retry runs.
      const failedKey = randomUUID();
      expect((await failure(h.call(bob, MS.addReaction, { messageId: NIL, emoji: "👀" }, { metadata: { "idempotency-key": failedKey } }))).code).toBe(
        grpc.status.NOT_FOUND,
      );
      const { rows } = await h.servers[0].app.stores.sql.query("SELECT 1 FROM idempotency_keys WHERE key = $1", [failedKey]);
      expect(rows).toHaveLength(0);
    });

    it("runs concurrent calls with one key once; all get the same response", async () => {
      const conv = await h.group(alice, [bob]);
      const m = await send(alice, conv, { content: "v1" });
      const key = randomUUID();
      const all = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          h
            .call(alice, MS.editMessage, { messageId: m.id, content: "v2" }, { node: i, metadata: { "idempotency-key": key } })
            .then((r) => r.message!),
        ),
      );
      for (const r of all) expect(r).toEqual(all[0]); // the same edited_at: one execution, the rest replayed
    });

    it("makes a retried CreateConversation return the first group instead of a second one", async () => {
      const key = randomUUID();
      const create = (node: number) =>
        h.call(
          alice,
          CS.createConversation,
          { type: ConversationType.GROUP, title: "", memberIds: [bob.id] },
          { node, metadata: { "idempotency-key": key } },
        );
      const [a, b] = [await create(0), await create(1)];
      expect(b.conversation!.id).toBe(a.conversation!.id);
      const unkeyed = await h.call(alice, CS.createConversation, { type: ConversationType.GROUP, title: "", memberIds: [bob.id] });
      expect(unkeyed.conversation!.id).not.toBe(a.conversation!.id);
    });
  });

  describe("bad input is INVALID_ARGUMENT naming the field", () => {
    let conv: string;
    let msg: ChatMessage;
    beforeAll(async () => {
      conv = await h.group(alice, [bob]);
      msg = await send(alice, conv);
    });
    const att = (over: Record<string, unknown>) => ({ url: "https://x.example/f", name: "f", mimeType: "image/png", sizeBytes: 1n, ...over });
    const cases: [string, string, () => Promise<unknown>][] = [
      ["send: no conversation_id", "conversation_id", () => send(alice, "")],
      ["send: conversation_id not a UUID", "conversation_id", () => send(alice, "general")],
      ["send: no client_message_id", "client_message_id", () => send(alice, conv, { clientMessageId: "" })],
      ["send: client_message_id over 64", "client_message_id", () => send(alice, conv, { clientMessageId: "x".repeat(65) })],
      ["send: client_message_id with a newline", "client_message_id", () => send(alice, conv, { clientMessageId: "a\nb" })],
      ["send: empty content", "content", () => send(alice, conv, { content: "" })],
      ["send: whitespace-only content", "content", () => send(alice, conv, { content: " \n\t\u3000 " })],
      ["send: content over 4000 characters", "content", () => send(alice, conv, { content: "é".repeat(4001) })],
      ["send: NUL in content", "content", () => send(alice, conv, { content: "a\u0000b" })],
      ["send: 11 attachments", "attachments", () => send(alice, conv, { attachments: Array.from({ length: 11 }, () => att({})) })],
      ["send: ftp attachment", "attachments[0].url", () => send(alice, conv, { attachments: [att({ url: "ftp://x.example/f" })] })],
      [
        "send: javascript: attachment",
        "attachments[1].url",
        () => send(alice, conv, { attachments: [att({}), att({ url: "javascript:alert(1)" })] }),
      ],
      ["send: relative attachment url", "attachments[0].url", () => send(alice, conv, { attachments: [att({ url: "/f.png" })] })],
      ["send: attachment without name", "attachments[0].name", () => send(alice, conv, { attachments: [att({ name: "" })] })],
      ["send: attachment bad mime type", "attachments[0].mime_type", () => send(alice, conv, { attachments: [att({ mimeType: "png" })] })],
      ["send: attachment negative size", "attachments[0].size_bytes", () => send(alice, conv, { attachments: [att({ sizeBytes: -1n })] })],
      ["send: attachment absurd size", "attachments[0].size_bytes", () => send(alice, conv, { attachments: [att({ sizeBytes: 2n ** 62n })] })],
      ["send: mention not a UUID", "mentions[1]", () => send(alice, conv, { mentions: [bob.id, "@bob"] })],
      ["send: 51 mentions", "mentions", () => send(alice, conv, { mentions: Array.from({ length: 51 }, () => randomUUID()) })],
      ["send: parent not a UUID", "parent_message_id", () => send(alice, conv, { parentMessageId: "123" })],
      ["get: bad message_id", "message_id", () => h.call(alice, MS.getMessage, { messageId: "nope" })],
      ["edit: empty content", "content", () => h.call(alice, MS.editMessage, { messageId: msg.id, content: "  " })],
      ["edit: bad message_id", "message_id", () => h.call(alice, MS.editMessage, { messageId: "", content: "x" })],
      ["delete: bad message_id", "message_id", () => h.call(alice, MS.deleteMessage, { messageId: "x" })],
      ["list: limit 201", "limit", () => list(alice, conv, { limit: 201 })],
      ["list: negative limit", "limit", () => list(alice, conv, { limit: -1 })],
      ["list: before and after", "after_seq", () => list(alice, conv, { beforeSeq: 5n, afterSeq: 2n })],
      ["list: negative before_seq", "before_seq", () => list(alice, conv, { beforeSeq: -1n })],
      ["list: bad parent", "parent_message_id", () => list(alice, conv, { parentMessageId: "x" })],
      ["list: bad conversation", "conversation_id", () => list(alice, "x")],
      ["react: two emoji", "emoji", () => h.call(alice, MS.addReaction, { messageId: msg.id, emoji: "👍👍" })],
      ["react: a letter", "emoji", () => h.call(alice, MS.addReaction, { messageId: msg.id, emoji: "a" })],
      ["react: empty", "emoji", () => h.call(alice, MS.addReaction, { messageId: msg.id, emoji: "" })],
      ["react: bad shortcode", "emoji", () => h.call(alice, MS.addReaction, { messageId: msg.id, emoji: ":Not Valid:" })],
      ["unreact: long shortcode", "emoji", () => h.call(alice, MS.removeReaction, { messageId: msg.id, emoji: `:${"a".repeat(33)}:` })],
      ["mark read: negative seq", "seq", () => h.call(alice, MS.markRead, { conversationId: conv, seq: -3n })],
      ["mark read: bad conversation", "conversation_id", () => h.call(alice, MS.markRead, { conversationId: "1", seq: 1n })],
      ["search: empty query", "query", () => h.call(alice, MS.searchMessages, { query: "   " })],
      ["search: punctuation only", "query", () => h.call(alice, MS.searchMessages, { query: "!!! ..." })],
      ["search: too long", "query", () => h.call(alice, MS.searchMessages, { query: "a".repeat(257) })],
      ["search: page_size 101", "page_size", () => h.call(alice, MS.searchMessages, { query: "a", pageSize: 101 })],
      ["search: forged page_token", "page_token", () => h.call(alice, MS.searchMessages, { query: "a", pageToken: "eyJ0IjoxfQ" })],
      ["search: bad conversation", "conversation_id", () => h.call(alice, MS.searchMessages, { query: "a", conversationId: "x" })],
      ["reactions: bad message_id", "message_id", () => h.call(alice, MS.listReactions, { messageId: "x" })],
      ["reactions: not an emoji", "emoji", () => h.call(alice, MS.listReactions, { messageId: msg.id, emoji: "ab" })],
      ["reactions: emoji with a newline", "emoji", () => h.call(alice, MS.listReactions, { messageId: msg.id, emoji: "👍\n" })],
      ["reactions: page_size 501", "page_size", () => h.call(alice, MS.listReactions, { messageId: msg.id, pageSize: 501 })],
      ["reactions: negative page_size", "page_size", () => h.call(alice, MS.listReactions, { messageId: msg.id, pageSize: -1 })],
      ["reactions: forged page_token", "page_token", () => h.call(alice, MS.listReactions, { messageId: msg.id, pageToken: "eyJ0IjoxfQ" })],
      [
        "reactions: a search token as page_token",
        "page_token",
        () => h.call(alice, MS.listReactions, { messageId: msg.id, pageToken: Buffer.from(`srch1:1:1:${NIL}`).toString("base64url") }),
      ],
      [
        "reactions: a page_token naming no emoji",
        "page_token",
        () =>
          h.call(alice, MS.listReactions, {
            messageId: msg.id,
            pageToken: Buffer.from(`rx1:${Buffer.from("ab").toString("hex")}:${NIL}`).toString("base64url"),
          }),
      ],
    ];
    it.each(cases)("%s", async (_name, field, call) => {
      const err = await failure(call());
      expect(err.code, err.details).toBe(grpc.status.INVALID_ARGUMENT);
      expect(grpcViolations(err)).toEqual([field]);
    });

    it("names the field for Connect (JSON) clients too", async () => {
      const err = await h
        .connect(alice, 1)
        .listMessages({ conversationId: conv, limit: 500 })
        .catch((e) => ConnectError.from(e));
      expect((err as ConnectError).code).toBe(Code.InvalidArgument);
      expect(connectViolations(err)).toEqual(["limit"]);
    });

    it("rejects a lone surrogate sent through Connect's JSON encoding (not valid UTF-8)", async () => {
      const err = await h
        .connect(alice)
        .sendMessage({ conversationId: conv, clientMessageId: randomUUID(), content: "broken \ud800 text" })
        .catch((e) => ConnectError.from(e));
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.InvalidArgument);
      // The protobuf runtime refuses it before the handler (which would too): the field is named in the message.
      expect((err as ConnectError).message).toContain("content");
    });
  });

  describe("non-members get NOT_FOUND for everything", () => {
    let conv: string;
    let msg: ChatMessage;
    beforeAll(async () => {
      conv = await h.group(alice, [bob]);
      msg = await send(alice, conv);
    });
    const calls: [string, () => Promise<unknown>][] = [
      ["SendMessage", () => send(outsider, conv)],
      ["ListMessages", () => list(outsider, conv)],
      ["GetMessage", () => h.call(outsider, MS.getMessage, { messageId: msg.id })],
      ["EditMessage", () => h.call(outsider, MS.editMessage, { messageId: msg.id, content: "x" })],
      ["DeleteMessage", () => h.call(outsider, MS.deleteMessage, { messageId: msg.id })],
      ["AddReaction", () => h.call(outsider, MS.addReaction, { messageId: msg.id, emoji: "👍" })],
      ["RemoveReaction", () => h.call(outsider, MS.removeReaction, { messageId: msg.id, emoji: "👍" })],
      ["MarkRead", () => h.call(outsider, MS.markRead, { conversationId: conv, seq: 1n })],
      ["SearchMessages in that conversation", () => h.call(outsider, MS.searchMessages, { query: "hello", conversationId: conv })],
      ["SendMessage to a conversation that does not exist", () => send(outsider, NIL)],
      ["ListReactions", () => h.call(outsider, MS.listReactions, { messageId: msg.id })],
      ["ListReactions of one emoji", () => h.call(outsider, MS.listReactions, { messageId: msg.id, emoji: "👍" })],
      ["GetMessage of a message that does not exist", () => h.call(alice, MS.getMessage, { messageId: NIL })],
    ];
    it.each(calls)("%s", async (_name, call) => {
      const err = await failure(call());
      expect(err.code, err.details).toBe(grpc.status.NOT_FOUND);
    });

    it("ListReactions: a non-member gets exactly the answer of an unknown message id (BOLA), for a message with reactions", async () => {
      const m = await send(alice, await h.group(alice, [bob]));
      await h.call(bob, MS.addReaction, { messageId: m.id, emoji: "👍" });
      const reference = await failure(h.call(outsider, MS.listReactions, { messageId: NIL }));
      const seen = await failure(h.call(outsider, MS.listReactions, { messageId: m.id }));
      expect(reference.code).toBe(grpc.status.NOT_FOUND);
      expect({ code: seen.code, details: seen.details }).toEqual({ code: reference.code, details: reference.details });
      expect(grpcErrorInfo(seen)?.reason).toBe(grpcErrorInfo(reference)?.reason);
      // A member sees them.
      expect((await h.call(bob, MS.listReactions, { messageId: m.id })).reactions.map((r) => r.userIds)).toEqual([[bob.id]]);
    });

    it("and the same over Connect, with nothing changed", async () => {
      const err = await h
        .connect(outsider, 1)
        .listMessages({ conversationId: conv })
        .catch((e) => ConnectError.from(e));
      expect((err as ConnectError).code).toBe(Code.NotFound);
      expect((await get(alice, msg.id)).reactions).toEqual([]);
      expect(seqs((await list(alice, conv)).messages)).toEqual([1]);
    });

    it("a member who leaves loses access", async () => {
      const c = await h.group(alice, [carol]);
      const m = await send(carol, c);
      await h.call(carol, CS.leaveConversation, { conversationId: c });
      expect((await failure(h.call(carol, MS.getMessage, { messageId: m.id }))).code).toBe(grpc.status.NOT_FOUND);
      expect((await failure(send(carol, c))).code).toBe(grpc.status.NOT_FOUND);
    });
  });
});
