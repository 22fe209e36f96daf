// The MongoDB message store's event protocol at each crash point (docs/MESSAGES.md,
// "Events with MongoDB"): messages live in MongoDB (FerretDB here), the event
// log in Postgres, and FerretDB has no transactions. Each change is written to
// MongoDB inside the relational transaction that holds the conversation's row
// lock and logs its event; a crash is injected by the adapter's hook right
// after the MongoDB write, before that transaction commits (it rolls back,
// the MongoDB write stays). Each test shows what the crash leaves and what
// makes it exact again.

import { afterAll, beforeAll, expect, it } from "vitest";
import { forEachBackend } from "../support/backends.ts";
import { conversationRow, insertConversation, insertUsers, newMessage, openStoreEnv, type StoreEnv } from "./fixtures.ts";
import { MongoMessageStore, type MongoWrite } from "../../src/messages/mongo-store.ts";
import { SqlEventLog } from "../../src/realtime/event-log.ts";
import type { DomainEvent, LoggedEvent } from "../../src/events/events.ts";

class Crash extends Error {}

forEachBackend("mongo message store: crash between the MongoDB write and the relational commit", ["mongo"] as const, (backend) => {
  let env: StoreEnv;
  let store: MongoMessageStore;
  let log: SqlEventLog;
  let alice: string, bob: string;
  let crashAt: MongoWrite | null = null;

  beforeAll(async () => {
    env = await openStoreEnv(backend);
    store = new MongoMessageStore(env.mongo!, env.sql, {
      hooks: {
        afterMongoWrite: (op) => {
          if (op === crashAt) {
            crashAt = null;
            throw new Crash(`crashed after the MongoDB ${op}`);
          }
        },
      },
      firstSweepMs: 3600_000,
    });
    log = new SqlEventLog(env.sql);
    [alice, bob] = await insertUsers(env.sql, 2);
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  const events = async (c: string): Promise<DomainEvent[]> => (await log.read(c, 0, 1e9, 1000)).map((l) => l.event);
  const createdSeqs = async (c: string) => (await events(c)).flatMap((e) => (e.type === "message_created" ? [e.seq] : []));
  const crash = async (op: MongoWrite, fn: () => Promise<unknown>) => {
    crashAt = op;
    await expect(fn()).rejects.toBeInstanceOf(Crash);
  };

  it("send: the message is stored but neither counted nor logged; the client's retry logs it", async () => {
    const conv = await insertConversation(env.sql, [alice, bob]);
    await store.send(newMessage(conv, alice));
    await crash("send", () => store.send(newMessage(conv, alice, { clientMessageId: "lost" })));
    // What the crash leaves: MongoDB has seq 2, the relational side and the log stop at 1.
    expect(
      (await store.list({ conversationId: conv, direction: "after", seq: 0, limit: 10, parentMessageId: null })).messages.map((m) => m.seq),
    ).toEqual([1, 2]);
    expect((await conversationRow(env.sql, conv)).lastSeq).toBe(1);
    expect(await createdSeqs(conv)).toEqual([1]);
    // The retry (same client_message_id) returns the original and logs its event.
    const out: LoggedEvent[] = [];
    const again = await store.send(newMessage(conv, alice, { clientMessageId: "lost" }), out);
    expect(again).toMatchObject({ created: false, message: { seq: 2 } });
    expect(out.map((l) => l.event.type)).toEqual(["message_created"]);
    expect(await createdSeqs(conv)).toEqual([1, 2]);
    expect((await conversationRow(env.sql, conv)).lastSeq).toBe(2);
    // A second retry changes nothing.
    const out2: LoggedEvent[] = [];
    await store.send(newMessage(conv, alice, { clientMessageId: "lost" }), out2);
    expect(out2).toEqual([]);
  });

  it("send: with no retry, the next send (any sender) logs the lost message first, in seq order", async () => {
    const conv = await insertConversation(env.sql, [alice, bob]);
    await crash("send", () => store.send(newMessage(conv, alice, { clientMessageId: "lost" })));
    const out: LoggedEvent[] = [];
    const next = await store.send(newMessage(conv, bob), out);
    expect(next.message.seq).toBe(2);
    expect(out.map((l) => (l.event as { seq: number }).seq)).toEqual([1, 2]);
    expect(await createdSeqs(conv)).toEqual([1, 2]);
    expect((await conversationRow(env.sql, conv)).lastSeq).toBe(2);
  });

  it("send: with no retry and no later send, the sweep logs it", async () => {
    const conv = await insertConversation(env.sql, [alice, bob]);
    await store.send(newMessage(conv, alice));
    await crash("send", () => store.send(newMessage(conv, alice, { clientMessageId: "lost" })));
    expect(await createdSeqs(conv)).toEqual([1]);
    const swept = await store.sweep(new Date(Date.now() + 60_000));
    expect(swept.filter((l) => l.event.conversationId === conv).map((l) => (l.event as { seq: number }).seq)).toEqual([2]);
    expect(await createdSeqs(conv)).toEqual([1, 2]);
    expect((await conversationRow(env.sql, conv)).lastSeq).toBe(2);
    expect(await store.sweep(new Date(Date.now() + 120_000))).toEqual([]); // exact: nothing left to do
  });

  it("edit: the new content is stored without its event; the retry logs it", async () => {
    const conv = await insertConversation(env.sql, [alice, bob]);
    const { message } = await store.send(newMessage(conv, alice));
    await crash("edit", () => store.edit(message.id, "edited", new Date()));
    expect((await store.get(message.id))?.content).toBe("edited");
    expect((await events(conv)).map((e) => e.type)).toEqual(["message_created"]);
    const out: LoggedEvent[] = [];
    await store.edit(message.id, "edited", new Date(), out);
    expect(out.map((l) => l.event)).toMatchObject([{ type: "message_edited", message: { content: "edited" } }]);
  });

  it("delete: the tombstone is stored without its event; the retry logs it once", async () => {
    const conv = await insertConversation(env.sql, [alice, bob]);
    const { message } = await store.send(newMessage(conv, alice));
    await crash("delete", () => store.softDelete(message.id, new Date()));
    expect((await store.get(message.id))?.deletedAt).not.toBeNull();
    expect((await events(conv)).map((e) => e.type)).toEqual(["message_created"]);
    const out: LoggedEvent[] = [];
    expect(await store.softDelete(message.id, new Date(), out)).toMatchObject({ changed: false });
    expect(out.map((l) => l.event.type)).toEqual(["message_deleted"]);
    const out2: LoggedEvent[] = [];
    await store.softDelete(message.id, new Date(), out2);
    expect(out2).toEqual([]);
    expect((await events(conv)).map((e) => e.type)).toEqual(["message_created", "message_deleted"]);
  });

  it("reactions: an add or a removal stored without its event; the retry logs it once, with the count", async () => {
    const conv = await insertConversation(env.sql, [alice, bob]);
    const { message } = await store.send(newMessage(conv, alice));
    await crash("reaction_add", () => store.addReaction(message, bob, "👍", new Date()));
    expect((await store.reactions([message.id], bob)).get(message.id)).toEqual([{ emoji: "👍", count: 1, reacted: true }]);
    const out: LoggedEvent[] = [];
    expect(await store.addReaction(message, bob, "👍", new Date(), out)).toBe(false);
    expect(out.map((l) => l.event)).toMatchObject([{ type: "reaction_updated", added: true, count: 1, userId: bob }]);
    const out2: LoggedEvent[] = [];
    await store.addReaction(message, bob, "👍", new Date(), out2);
    expect(out2).toEqual([]);

    await crash("reaction_remove", () => store.removeReaction(message, bob, "👍"));
    expect((await store.reactions([message.id], bob)).get(message.id)).toBeUndefined();
    const out3: LoggedEvent[] = [];
    expect(await store.removeReaction(message, bob, "👍", out3)).toBe(false);
    expect(out3.map((l) => l.event)).toMatchObject([{ type: "reaction_updated", added: false, count: 0 }]);
    const out4: LoggedEvent[] = [];
    await store.removeReaction(message, bob, "👍", out4);
    expect(out4).toEqual([]);
  });

  it("with no crash, every change logs exactly one event, in the order of the row lock", async () => {
    const conv = await insertConversation(env.sql, [alice, bob]);
    const { message } = await store.send(newMessage(conv, alice));
    await Promise.all([
      ...Array.from({ length: 8 }, (_, i) => store.send(newMessage(conv, i % 2 ? alice : bob))),
      store.addReaction(message, alice, "🎉", new Date()),
      store.addReaction(message, bob, "🎉", new Date()),
      store.edit(message.id, "v2", new Date()),
    ]);
    const all = await log.read(conv, 0, 1e9, 1000);
    expect(all.map((l) => l.eventSeq)).toEqual(all.map((_, i) => i + 1));
    expect(await createdSeqs(conv)).toEqual(Array.from({ length: 9 }, (_, i) => i + 1));
    const counts = all.flatMap((l) => (l.event.type === "reaction_updated" ? [l.event.count] : []));
    expect(counts).toEqual([1, 2]);
  });
});
