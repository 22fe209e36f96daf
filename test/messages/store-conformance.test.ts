// One conformance suite for every MessageStore adapter: MongoDB (FerretDB
// here, with conversations in Postgres), Postgres and PGlite. Same tests,
// same expectations; only the adapter differs.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { forEachBackend } from "../support/backends.ts";
import type { MessageStore } from "../../src/messages/store.ts";
import type { StoredMessage } from "../../src/messages/types.ts";
import { conversationRow, insertConversation, insertUsers, isExactlyOneToN, memberRow, newMessage, openStoreEnv, type StoreEnv } from "./fixtures.ts";

forEachBackend("message store", ["mongo", "postgres", "pglite"] as const, (backend) => {
  let env: StoreEnv;
  let store: MessageStore;
  let alice: string, bob: string, carol: string, dave: string;

  beforeAll(async () => {
    env = await openStoreEnv(backend);
    store = env.store;
    [alice, bob, carol, dave] = await insertUsers(env.sql, 4);
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  const group = (...members: string[]) => insertConversation(env.sql, members);

  describe("send and seq", () => {
    it("numbers messages 1, 2, 3 and moves the conversation and the sender's watermark with them", async () => {
      const conv = await group(alice, bob);
      const before = await conversationRow(env.sql, conv);
      const sent: StoredMessage[] = [];
      for (let i = 0; i < 3; i++) sent.push((await store.send(newMessage(conv, i === 1 ? bob : alice))).message);
      expect(sent.map((m) => m.seq)).toEqual([1, 2, 3]);
      const after = await conversationRow(env.sql, conv);
      expect(after.lastSeq).toBe(3);
      expect(after.lastMessageAt.getTime()).toBeGreaterThan(before.lastMessageAt.getTime());
      expect(after.lastMessageAt.getTime()).toBe(sent[2].createdAt.getTime());
      expect((await memberRow(env.sql, conv, alice)).lastReadSeq).toBe(3);
      expect((await memberRow(env.sql, conv, bob)).lastReadSeq).toBe(2);
      // What was stored is what comes back.
      const got = await store.get(sent[0].id);
      expect(got).toMatchObject({ conversationId: conv, seq: 1, senderId: alice, content: sent[0].content, deletedAt: null, editedAt: null });
    });

    it("keeps mentions and attachments", async () => {
      const conv = await group(alice, bob);
      const attachments = [{ url: "https://files.example/a.png", name: "a.png", mimeType: "image/png", sizeBytes: 1234 }];
      const { message } = await store.send(newMessage(conv, alice, { content: "", mentions: [bob], attachments }));
      expect(await store.get(message.id)).toMatchObject({ content: "", mentions: [bob], attachments });
    });

    it("returns the original for a repeated client_message_id, even with different content", async () => {
      const conv = await group(alice, bob);
      const first = await store.send(newMessage(conv, alice, { clientMessageId: "same", content: "original" }));
      const again = await store.send(newMessage(conv, alice, { clientMessageId: "same", content: "changed" }));
      expect(first.created).toBe(true);
      expect(again.created).toBe(false);
      expect(again.message).toMatchObject({ id: first.message.id, seq: 1, content: "original" });
      // The same client id from another sender is another message.
      const bobs = await store.send(newMessage(conv, bob, { clientMessageId: "same" }));
      expect(bobs).toMatchObject({ created: true, message: { seq: 2 } });
      expect((await conversationRow(env.sql, conv)).lastSeq).toBe(2);
    });

    it("stores a message once under concurrent repeats, without burning a seq", async () => {
      const conv = await group(alice, bob);
      const peer = await env.openPeer();
      const stores = peer ? [store, peer] : [store];
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          stores[i % stores.length].send(newMessage(conv, alice, { clientMessageId: "retry-me", content: `try ${i}` })),
        ),
      );
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(new Set(results.map((r) => r.message.id)).size).toBe(1);
      expect(results.every((r) => r.message.seq === 1)).toBe(true);
      const next = await store.send(newMessage(conv, bob));
      expect(next.message.seq).toBe(2);
      expect((await store.list({ conversationId: conv, direction: "before", seq: 0, limit: 50, parentMessageId: null })).messages).toHaveLength(2);
    });

    it("20 concurrent senders x 100 messages get exactly seqs 1..2000 (two nodes where the backend allows)", { timeout: 300_000 }, async () => {
      const senders = await insertUsers(env.sql, 20);
      const conv = await group(...senders);
      const peer = await env.openPeer();
      const stores = peer ? [store, peer] : [store];
      const seqs: number[] = [];
      const bySender: number[][] = senders.map(() => []);
      await Promise.all(
        senders.map(async (sender, i) => {
          const s = stores[i % stores.length];
          for (let k = 0; k < 100; k++) {
            const seq = (await s.send(newMessage(conv, sender, { content: `s${i} m${k}` }))).message.seq;
            seqs.push(seq);
            bySender[i].push(seq);
          }
        }),
      );
      expect(new Set(seqs).size).toBe(2000); // no duplicate
      expect(isExactlyOneToN(seqs, 2000)).toBe(true); // no gap
      // One sender's messages are numbered in the order it sent them.
      for (const own of bySender) expect(own).toEqual([...own].sort((a, b) => a - b));
      expect((await conversationRow(env.sql, conv)).lastSeq).toBe(2000);
      // And what is stored agrees: walk the whole conversation.
      const stored: number[] = [];
      let after = 0;
      for (;;) {
        const page = await store.list({ conversationId: conv, direction: "after", seq: after, limit: 200, parentMessageId: null });
        stored.push(...page.messages.map((m) => m.seq));
        if (!page.hasMore) break;
        after = page.messages[page.messages.length - 1].seq;
      }
      expect(stored).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
    });

    it("un-archives the conversation for the other members, not for the sender", async () => {
      const conv = await group(alice, bob, carol);
      await env.sql.query("UPDATE conversation_members SET archived = true WHERE conversation_id = $1", [conv]);
      await store.send(newMessage(conv, alice));
      expect((await memberRow(env.sql, conv, alice)).archived).toBe(true);
      expect((await memberRow(env.sql, conv, bob)).archived).toBe(false);
      expect((await memberRow(env.sql, conv, carol)).archived).toBe(false);
    });
  });

  describe("list", () => {
    let conv: string;
    beforeAll(async () => {
      conv = await group(alice, bob);
      for (let i = 0; i < 25; i++) await store.send(newMessage(conv, i % 2 ? bob : alice));
    });
    const q = (over: Partial<Parameters<MessageStore["list"]>[0]>) =>
      store.list({ conversationId: conv, direction: "before", seq: 0, limit: 50, parentMessageId: null, ...over });

    it("pages newest first by default, and backwards with before_seq", async () => {
      const first = await q({ limit: 10 });
      expect(first.messages.map((m) => m.seq)).toEqual([25, 24, 23, 22, 21, 20, 19, 18, 17, 16]);
      expect(first.hasMore).toBe(true);
      const second = await q({ limit: 10, seq: 16 });
      expect(second.messages.map((m) => m.seq)).toEqual([15, 14, 13, 12, 11, 10, 9, 8, 7, 6]);
      const last = await q({ limit: 10, seq: 6 });
      expect(last.messages.map((m) => m.seq)).toEqual([5, 4, 3, 2, 1]);
      expect(last.hasMore).toBe(false);
      expect((await q({ limit: 5, seq: 6 })).hasMore).toBe(false);
    });

    it("pages oldest first with after_seq", async () => {
      const page = await q({ limit: 10, direction: "after", seq: 20 });
      expect(page.messages.map((m) => m.seq)).toEqual([21, 22, 23, 24, 25]);
      expect(page.hasMore).toBe(false);
      const mid = await q({ limit: 3, direction: "after", seq: 1 });
      expect(mid.messages.map((m) => m.seq)).toEqual([2, 3, 4]);
      expect(mid.hasMore).toBe(true);
      expect((await q({ direction: "after", seq: 25 })).messages).toEqual([]);
    });

    it("never shows another conversation's messages", async () => {
      const other = await group(alice, bob);
      await store.send(newMessage(other, alice));
      const page = await q({ limit: 200 });
      expect(page.messages.every((m) => m.conversationId === conv)).toBe(true);
      expect(page.messages).toHaveLength(25);
    });

    it("pages with no gap and no duplicate while messages arrive", async () => {
      const live = await group(alice, bob);
      for (let i = 0; i < 30; i++) await store.send(newMessage(live, alice));
      let sending = true;
      const writer = (async () => {
        let n = 0;
        while (sending || n < 30) {
          await store.send(newMessage(live, bob));
          n++;
          if (n >= 60) break;
        }
      })();
      // Forward reader: follows the tail with after_seq until the writer is done and nothing is left.
      const seen: number[] = [];
      let after = 0;
      for (;;) {
        const page = await store.list({ conversationId: live, direction: "after", seq: after, limit: 7, parentMessageId: null });
        seen.push(...page.messages.map((m) => m.seq));
        if (page.messages.length > 0) after = page.messages[page.messages.length - 1].seq;
        if (seen.length >= 40) sending = false;
        if (!page.hasMore && !sending) {
          await writer;
          const rest = await store.list({ conversationId: live, direction: "after", seq: after, limit: 200, parentMessageId: null });
          seen.push(...rest.messages.map((m) => m.seq));
          break;
        }
      }
      const total = (await conversationRow(env.sql, live)).lastSeq;
      expect(seen).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    });
  });

  describe("threads", () => {
    it("counts replies on the parent and lists one thread by seq", async () => {
      const conv = await group(alice, bob);
      const parent = (await store.send(newMessage(conv, alice, { content: "parent" }))).message;
      const other = (await store.send(newMessage(conv, alice, { content: "other parent" }))).message;
      const replies: StoredMessage[] = [];
      for (let i = 0; i < 3; i++) replies.push((await store.send(newMessage(conv, i % 2 ? alice : bob, { parentMessageId: parent.id }))).message);
      await store.send(newMessage(conv, bob, { parentMessageId: other.id }));
      // A repeat of a reply does not count twice.
      await store.send(newMessage(conv, bob, { parentMessageId: parent.id, clientMessageId: replies[0].clientMessageId }));

      const p = await store.get(parent.id);
      expect(p?.replyCount).toBe(3);
      expect(p?.lastReplyAt?.getTime()).toBe(replies[2].createdAt.getTime());
      expect((await store.get(other.id))?.replyCount).toBe(1);
      expect((await store.get(replies[0].id))?.replyCount).toBe(0);

      const thread = await store.list({ conversationId: conv, direction: "before", seq: 0, limit: 50, parentMessageId: parent.id });
      expect(thread.messages.map((m) => m.id)).toEqual(replies.map((r) => r.id).reverse());
      const forward = await store.list({ conversationId: conv, direction: "after", seq: replies[0].seq, limit: 1, parentMessageId: parent.id });
      expect(forward.messages.map((m) => m.id)).toEqual([replies[1].id]);
      expect(forward.hasMore).toBe(true);
      // The conversation view holds parents and replies alike.
      const all = await store.list({ conversationId: conv, direction: "before", seq: 0, limit: 50, parentMessageId: null });
      expect(all.messages.map((m) => m.seq)).toEqual([6, 5, 4, 3, 2, 1]);
    });
  });

  describe("edit and delete", () => {
    it("edits content and sets edited_at; not once deleted", async () => {
      const conv = await group(alice, bob);
      const m = (await store.send(newMessage(conv, alice, { content: "typo" }))).message;
      const at = new Date(Date.now() + 1000);
      const edited = await store.edit(m.id, "fixed", at);
      expect(edited).toMatchObject({ id: m.id, seq: m.seq, content: "fixed" });
      expect(edited?.editedAt?.getTime()).toBe(at.getTime());
      await store.softDelete(m.id, new Date());
      expect(await store.edit(m.id, "again", new Date())).toBeNull();
      expect(await store.edit("00000000-0000-4000-8000-000000000000", "x", new Date())).toBeNull();
    });

    it("deletes to a tombstone that keeps its seq; a second delete changes nothing", async () => {
      const conv = await group(alice, bob);
      await store.send(newMessage(conv, alice));
      const m = (
        await store.send(
          newMessage(conv, alice, {
            content: "secret",
            mentions: [bob],
            attachments: [{ url: "https://x.example/f", name: "f", mimeType: "text/plain", sizeBytes: 1 }],
          }),
        )
      ).message;
      await store.send(newMessage(conv, bob));
      await store.addReaction(m, bob, "👍", new Date());
      const res = await store.softDelete(m.id, new Date());
      expect(res?.changed).toBe(true);
      expect(res?.message).toMatchObject({ id: m.id, seq: 2, content: "", attachments: [], mentions: [] });
      expect(res?.message.deletedAt).toBeInstanceOf(Date);
      expect((await store.softDelete(m.id, new Date()))?.changed).toBe(false);
      expect(await store.softDelete("00000000-0000-4000-8000-000000000000", new Date())).toBeNull();
      const page = await store.list({ conversationId: conv, direction: "before", seq: 0, limit: 50, parentMessageId: null });
      expect(page.messages.map((x) => [x.seq, x.deletedAt !== null])).toEqual([
        [3, false],
        [2, true],
        [1, false],
      ]);
      expect((await store.reactions([m.id], bob)).get(m.id)).toBeUndefined();
      expect((await store.search({ userId: alice, text: "secret", conversationId: null, limit: 10, after: null })).messages).toEqual([]);
    });
  });

  describe("reactions", () => {
    it("adds and removes idempotently and summarises per viewer in one batch", async () => {
      const conv = await group(alice, bob, carol);
      const m1 = (await store.send(newMessage(conv, alice))).message;
      const m2 = (await store.send(newMessage(conv, alice))).message;
      const m3 = (await store.send(newMessage(conv, alice))).message;
      expect(await store.addReaction(m1, bob, "👍", new Date())).toBe(true);
      expect(await store.addReaction(m1, bob, "👍", new Date())).toBe(false);
      expect(await store.addReaction(m1, carol, "👍", new Date())).toBe(true);
      expect(await store.addReaction(m1, carol, ":party_parrot:", new Date())).toBe(true);
      expect(await store.addReaction(m2, alice, "👨‍👩‍👧", new Date())).toBe(true);
      // Concurrent duplicates: exactly one wins.
      const racing = await Promise.all(Array.from({ length: 8 }, () => store.addReaction(m2, bob, "🎉", new Date())));
      expect(racing.filter(Boolean)).toHaveLength(1);

      const forBob = await store.reactions([m1.id, m2.id, m3.id], bob);
      expect(forBob.get(m1.id)).toEqual([
        { emoji: ":party_parrot:", count: 1, reacted: false },
        { emoji: "👍", count: 2, reacted: true },
      ]);
      expect(forBob.get(m2.id)).toEqual(
        [
          { emoji: "👨‍👩‍👧", count: 1, reacted: false },
          { emoji: "🎉", count: 1, reacted: true },
        ].sort((a, b) => (a.emoji < b.emoji ? -1 : 1)),
      );
      expect(forBob.has(m3.id)).toBe(false);
      expect((await store.reactions([m1.id], dave)).get(m1.id)?.every((r) => !r.reacted)).toBe(true);

      expect(await store.removeReaction(m1, bob, "👍")).toBe(true);
      expect(await store.removeReaction(m1, bob, "👍")).toBe(false);
      expect((await store.reactions([m1.id], bob)).get(m1.id)).toEqual([
        { emoji: ":party_parrot:", count: 1, reacted: false },
        { emoji: "👍", count: 1, reacted: false },
      ]);
      expect(await store.reactions([], bob)).toEqual(new Map());
    });

    it("lists who reacted by (emoji in code point order, user id), keyset-paged, with an emoji filter", async () => {
      const users = await insertUsers(env.sql, 5);
      const conv = await group(alice, ...users);
      const m = (await store.send(newMessage(conv, alice))).message;
      const other = (await store.send(newMessage(conv, alice))).message;
      // Shortcodes (':' is 0x3A), a BMP symbol with U+FE0F, astral emoji, a ZWJ sequence: code point order differs from insertion order.
      const emoji = ["👍", ":shipit:", "☺️", "👨‍👩‍👧", "🎉"];
      const pairs: { emoji: string; userId: string }[] = [];
      for (const [i, e] of emoji.entries()) {
        for (const u of users.slice(0, 5 - i)) {
          await store.addReaction(m, u, e, new Date());
          pairs.push({ emoji: e, userId: u });
        }
      }
      await store.addReaction(other, users[0], "👍", new Date());
      const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
      const expected = pairs.sort((a, b) => byBytes(a.emoji, b.emoji) || byBytes(a.userId, b.userId));

      expect(await store.reactors({ messageId: m.id, emoji: null, after: null, limit: 100 })).toEqual(expected);
      // Pages of 4, each starting strictly after the last row of the one before: all of them once, in order.
      const seen: { emoji: string; userId: string }[] = [];
      let after: { emoji: string; userId: string } | null = null;
      for (let i = 0; i < 10; i++) {
        const page = await store.reactors({ messageId: m.id, emoji: null, after, limit: 4 });
        seen.push(...page);
        if (page.length < 4) break;
        after = page[3];
      }
      expect(seen).toEqual(expected);
      // One emoji only, paged too.
      const party = expected.filter((p) => p.emoji === "🎉");
      expect(await store.reactors({ messageId: m.id, emoji: "🎉", after: null, limit: 100 })).toEqual(party);
      expect(await store.reactors({ messageId: m.id, emoji: "🎉", after: party[0], limit: 100 })).toEqual(party.slice(1));
      // A position whose row was removed meanwhile still continues right after it.
      const third = expected[2];
      await store.removeReaction(m, third.userId, third.emoji);
      expect(await store.reactors({ messageId: m.id, emoji: null, after: third, limit: 2 })).toEqual(expected.slice(3, 5));
      expect(await store.reactors({ messageId: m.id, emoji: "🙈", after: null, limit: 10 })).toEqual([]);
      // A deleted message keeps no reactions.
      await store.softDelete(m.id, new Date());
      expect(await store.reactors({ messageId: m.id, emoji: null, after: null, limit: 10 })).toEqual([]);
    });
  });

  describe("read watermarks", () => {
    it("move forward only, clamp to the last seq, and carry delivery along", async () => {
      const conv = await group(alice, bob);
      for (let i = 0; i < 5; i++) await store.send(newMessage(conv, alice));
      expect(await store.markRead(conv, bob, 3)).toMatchObject({ lastReadSeq: 3, lastSeq: 5, changed: true, deliveredSeq: 3 });
      expect(await store.markRead(conv, bob, 2)).toMatchObject({ lastReadSeq: 3, lastSeq: 5, changed: false });
      expect(await store.markRead(conv, bob, 3)).toMatchObject({ lastReadSeq: 3, changed: false });
      expect(await store.markRead(conv, bob, 1_000_000)).toMatchObject({ lastReadSeq: 5, lastSeq: 5, changed: true });
      expect(await memberRow(env.sql, conv, bob)).toMatchObject({ lastReadSeq: 5, deliveredSeq: 5 });
      // Concurrent marks in any order end at the highest.
      for (let i = 0; i < 4; i++) await store.send(newMessage(conv, alice));
      await Promise.all([6, 9, 7, 8].map((n) => store.markRead(conv, bob, n)));
      expect((await memberRow(env.sql, conv, bob)).lastReadSeq).toBe(9);
      expect(await store.markRead(conv, carol, 1)).toBeNull();
    });

    it("filters user ids to members", async () => {
      const conv = await group(alice, bob);
      expect([...(await store.membersAmong(conv, [alice, carol, bob, dave]))].sort()).toEqual([alice, bob].sort());
      expect((await store.membersAmong(conv, [])).size).toBe(0);
    });
  });

  describe("search", () => {
    let mine: string, theirs: string, alsoMine: string;
    beforeAll(async () => {
      mine = await group(alice, bob);
      alsoMine = await group(alice, carol);
      theirs = await group(carol, dave); // alice is not a member
      // Distinct times, so "newest first" has one right answer across conversations.
      let t = Date.now() - 60_000;
      const at = () => new Date((t += 1000));
      await store.send(newMessage(mine, bob, { content: "the Quokka report is ready", createdAt: at() }));
      await store.send(newMessage(theirs, carol, { content: "quokka secrets nobody else may read", createdAt: at() }));
      await store.send(newMessage(mine, alice, { content: "nothing to see", createdAt: at() }));
      for (let i = 0; i < 5; i++) await store.send(newMessage(alsoMine, carol, { content: `quokka number ${i} in the zoo`, createdAt: at() }));
    });
    const search = (userId: string, text: string, over: Partial<Parameters<MessageStore["search"]>[0]> = {}) =>
      store.search({ userId, text, conversationId: null, limit: 20, after: null, ...over });

    it("finds words case-insensitively in the caller's conversations only, newest first", async () => {
      const res = await search(alice, "QUOKKA");
      expect(res.messages.map((m) => m.content)).toEqual([
        "quokka number 4 in the zoo",
        "quokka number 3 in the zoo",
        "quokka number 2 in the zoo",
        "quokka number 1 in the zoo",
        "quokka number 0 in the zoo",
        "the Quokka report is ready",
      ]);
      expect(res.messages.some((m) => m.conversationId === theirs)).toBe(false);
      expect(res.next).toBeNull();
      // The other side sees theirs and not alice's other conversation.
      const forDave = await search(dave, "quokka");
      expect(forDave.messages.map((m) => m.conversationId)).toEqual([theirs]);
    });

    it("requires every word, and restricts to one conversation when asked", async () => {
      expect((await search(alice, "quokka report")).messages.map((m) => m.conversationId)).toEqual([mine]);
      expect((await search(alice, "quokka", { conversationId: mine })).messages).toHaveLength(1);
      expect((await search(alice, "zebra")).messages).toEqual([]);
    });

    it("pages newest first without gaps or duplicates", async () => {
      // Same-millisecond messages of one conversation page by seq.
      const tie = new Date(Date.now() - 30_000);
      for (let i = 0; i < 3; i++) await store.send(newMessage(alsoMine, alice, { content: `tied quokka ${i}`, createdAt: tie }));
      const seen: string[] = [];
      let after = null;
      for (let i = 0; i < 10; i++) {
        const page: Awaited<ReturnType<MessageStore["search"]>> = await search(alice, "quokka", { limit: 2, after });
        seen.push(...page.messages.map((m) => m.id));
        if (!page.next) break;
        after = page.next;
      }
      const all = (await search(alice, "quokka", { limit: 100 })).messages;
      expect(seen).toEqual(all.map((m) => m.id));
      expect(new Set(seen).size).toBe(9);
      expect(all.filter((m) => m.content.startsWith("tied")).map((m) => m.content)).toEqual(["tied quokka 2", "tied quokka 1", "tied quokka 0"]);
    });

    it("treats regex and query syntax characters as text", async () => {
      await store.send(newMessage(mine, alice, { content: "price (approx) $5.00 + tax" }));
      expect((await search(alice, "(approx)")).messages.map((m) => m.content)).toEqual(["price (approx) $5.00 + tax"]);
      expect((await search(alice, ".*")).messages).toEqual([]);
    });
  });

  describe("previews", () => {
    it("gives the last message of many conversations at once", async () => {
      const a = await group(alice, bob);
      const b = await group(alice, bob);
      const empty = await group(alice, bob);
      await store.send(newMessage(a, alice, { content: "first" }));
      const lastA = (
        await store.send(
          newMessage(a, bob, {
            content: "x".repeat(300),
            attachments: [{ url: "https://f.example/1", name: "1", mimeType: "image/png", sizeBytes: 5 }],
          }),
        )
      ).message;
      const lastB = (await store.send(newMessage(b, alice, { content: "bye" }))).message;
      await store.softDelete(lastB.id, new Date());
      const map = await store.previews([a, b, empty, "00000000-0000-4000-8000-000000000000"]);
      expect(map.size).toBe(2);
      expect(map.get(a)).toMatchObject({ messageId: lastA.id, seq: 2, senderId: bob, deleted: false, attachmentCount: 1 });
      expect(map.get(a)?.content).toBe("x".repeat(200));
      expect(map.get(a)?.createdAt.getTime()).toBe(lastA.createdAt.getTime());
      expect(map.get(b)).toMatchObject({ messageId: lastB.id, seq: 1, deleted: true, content: "", attachmentCount: 0 });
      expect(await store.previews([])).toEqual(new Map());
    });
  });
});
