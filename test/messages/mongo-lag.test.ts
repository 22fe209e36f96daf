// Mongo adapter only: messages live in MongoDB, conversations.last_seq in the
// relational store, whose transaction commits after the MongoDB insert. If a
// node dies between the insert and the commit, last_seq lags (it can never
// lead). These tests put it behind on purpose and show every path catching up.

import { afterAll, beforeAll, expect, it } from "vitest";
import { forEachBackend } from "../support/backends.ts";
import { conversationRow, insertConversation, insertUsers, memberRow, newMessage, openStoreEnv, type StoreEnv } from "./fixtures.ts";
import { MongoMessageStore } from "../../src/messages/mongo-store.ts";

forEachBackend("mongo message store with a lagging last_seq", ["mongo"] as const, (backend) => {
  let env: StoreEnv;
  let alice: string, bob: string;
  beforeAll(async () => {
    env = await openStoreEnv(backend);
    [alice, bob] = await insertUsers(env.sql, 2);
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  /** A conversation with `n` messages whose relational last_seq was then set back to `lagTo`. */
  async function lagging(n: number, lagTo: number): Promise<string> {
    const conv = await insertConversation(env.sql, [alice, bob]);
    for (let i = 0; i < n; i++) await env.store.send(newMessage(conv, alice));
    await env.sql.query("UPDATE conversations SET last_seq = $2 WHERE id = $1", [conv, lagTo]);
    return conv;
  }

  it("the next send, on any node, still takes the next seq, and last_seq catches up", async () => {
    const conv = await lagging(5, 1);
    const fresh = (await env.openPeer()) ?? new MongoMessageStore(env.mongo!, env.sql);
    const { message } = await fresh.send(newMessage(conv, bob));
    expect(message.seq).toBe(6);
    expect((await conversationRow(env.sql, conv)).lastSeq).toBe(6);
    expect((fresh as MongoMessageStore).stats.seqConflicts).toBe(1); // it hit the lag once, then went on after the stored max
  });

  it("a repeated send repairs a last_seq that the first attempt never wrote", async () => {
    const conv = await insertConversation(env.sql, [alice, bob]);
    const first = await env.store.send(newMessage(conv, alice, { clientMessageId: "x" }));
    await env.sql.query("UPDATE conversations SET last_seq = 0 WHERE id = $1", [conv]);
    const again = await env.store.send(newMessage(conv, alice, { clientMessageId: "x" }));
    expect(again).toMatchObject({ created: false, message: { id: first.message.id, seq: 1 } });
    expect((await conversationRow(env.sql, conv)).lastSeq).toBe(1);
  });

  it("MarkRead beyond a lagging last_seq reads up to what is stored, and repairs it", async () => {
    const conv = await lagging(4, 2);
    expect(await env.store.markRead(conv, bob, 10)).toMatchObject({ lastReadSeq: 4, lastSeq: 4, changed: true });
    expect((await conversationRow(env.sql, conv)).lastSeq).toBe(4);
    expect((await memberRow(env.sql, conv, bob)).lastReadSeq).toBe(4);
  });

  it("the preview shows the real last message even when last_seq lags", async () => {
    const conv = await lagging(3, 1);
    const zero = await lagging(1, 0);
    const previews = await env.store.previews([conv, zero]);
    expect(previews.get(conv)?.seq).toBe(3);
    expect(previews.get(zero)?.seq).toBe(1);
  });
});
