// Unread state end to end with real messages (MessageService SendMessage and
// MarkRead) on every message store: Postgres, PGlite, and MongoDB (with the
// conversations on Postgres). unread_count = last_seq - last_read_seq, where
// posting advances the sender's own watermark; a new message un-archives the
// conversation for the other members.

import { afterAll, beforeAll, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { MessageService } from "../../gen/chat/v1/message_pb.js";
import { ConversationType, type Conversation } from "../../gen/chat/v1/conversation_pb.js";
import { forEachBackend } from "../support/backends.ts";
import { M, startHarness, type Harness, type TestUser } from "./e2e-support.ts";

forEachBackend("conversations e2e: unread counts after messages and MarkRead", ["postgres", "pglite", "mongo"] as const, (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = backend === "mongo" ? await startHarness("postgres", {}, { mongo: true }) : await startHarness(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  const send = (user: TestUser, conversationId: string) =>
    h.call(user, MessageService.method.sendMessage, { conversationId, clientMessageId: randomUUID(), content: `hello ${randomUUID().slice(0, 4)}` });
  const markRead = (user: TestUser, conversationId: string, seq: bigint) => h.call(user, MessageService.method.markRead, { conversationId, seq });
  const listOf = async (user: TestUser, includeArchived = false): Promise<Map<string, Conversation>> =>
    new Map((await h.call(user, M.listConversations, { includeArchived })).conversations.map((c) => [c.id, c]));

  it("counts others' messages after the caller's read watermark, in the list and in GetConversation", async () => {
    const [a, b, c] = await h.users(3);
    const g = (await h.call(a, M.createConversation, { type: ConversationType.GROUP, title: "unread", memberIds: [b.id, c.id] })).conversation!;
    for (let i = 0; i < 3; i++) await send(a, g.id);
    for (let i = 0; i < 2; i++) await send(b, g.id);

    let [av, bv, cv] = await Promise.all([listOf(a), listOf(b), listOf(c)]);
    expect(av.get(g.id)).toMatchObject({ lastSeq: 5n, lastReadSeq: 3n, unreadCount: 2 });
    expect(bv.get(g.id)).toMatchObject({ lastSeq: 5n, lastReadSeq: 5n, unreadCount: 0 }); // posting marks read
    expect(cv.get(g.id)).toMatchObject({ lastSeq: 5n, lastReadSeq: 0n, unreadCount: 5 });
    // The preview is the last message.
    expect(cv.get(g.id)!.lastMessage).toMatchObject({ seq: 5n, senderId: b.id });

    await markRead(c, g.id, 3n);
    expect((await h.call(c, M.getConversation, { conversationId: g.id })).conversation).toMatchObject({ lastReadSeq: 3n, unreadCount: 2 });
    await markRead(c, g.id, 5n);
    await markRead(a, g.id, 5n);
    [av, bv, cv] = await Promise.all([listOf(a), listOf(b), listOf(c)]);
    expect([av, bv, cv].map((v) => v.get(g.id)!.unreadCount)).toEqual([0, 0, 0]);

    // Reading never goes backwards.
    await markRead(c, g.id, 1n);
    expect((await h.call(c, M.getConversation, { conversationId: g.id })).conversation!.lastReadSeq).toBe(5n);
  });

  it("a new message brings an archived DM back, unread, and to the top of the list", async () => {
    const [a, b] = await h.users(2);
    const dm = (await h.call(a, M.getOrCreateDirect, { userId: b.id })).conversation!;
    const other = (await h.call(b, M.createConversation, { type: ConversationType.GROUP, memberIds: [a.id] })).conversation!;
    await send(a, dm.id);
    await markRead(b, dm.id, 1n);
    await h.call(b, M.updateMemberSettings, { conversationId: dm.id, archived: true });
    expect((await listOf(b)).has(dm.id)).toBe(false);
    await send(a, other.id);

    await send(a, dm.id);
    const bv = await listOf(b);
    expect(bv.get(dm.id)).toMatchObject({ archived: false, unreadCount: 1, peerUserId: a.id });
    expect([...bv.keys()][0]).toBe(dm.id);
  });
});
