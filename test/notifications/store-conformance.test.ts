// One conformance suite for notification storage: MongoDB (FerretDB here),
// Postgres and the embedded PGlite.

import { afterAll, beforeAll, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { pino } from "pino";
import { forEachBackend, isolatedMongo, isolatedPostgres, type MessageBackendName } from "../support/backends.ts";
import type { NotificationStore } from "../../src/notifications/store.ts";
import { SqlNotificationStore } from "../../src/notifications/sql-store.ts";
import { MongoNotificationStore } from "../../src/notifications/mongo-store.ts";
import type { BatchEntry } from "../../src/notifications/types.ts";
import { createPostgres } from "../../src/stores/sql/postgres.ts";
import { openMigratedSql } from "../support/seed.ts";
import { loadMigrations, migrate } from "../../src/stores/sql/migrate.ts";
import { MIGRATIONS_DIR } from "../../src/stores/stores.ts";
import { connectMongo } from "../../src/stores/mongo/mongo.ts";

/** The store, and a second one on the same database as another node has it (PGlite: the same, one process owns it). */
async function open(name: MessageBackendName): Promise<{ store: NotificationStore; openPeer(): Promise<NotificationStore>; close(): Promise<void> }> {
  if (name === "mongo") {
    const iso = await isolatedMongo();
    const clients = [await connectMongo(iso.url, pino({ level: "silent" }))];
    return {
      store: await MongoNotificationStore.open(clients[0]),
      async openPeer() {
        clients.push(await connectMongo(iso.url, pino({ level: "silent" })));
        return MongoNotificationStore.open(clients[clients.length - 1]);
      },
      close: async () => {
        for (const c of clients) await c.close();
        await iso.drop();
      },
    };
  }
  if (name === "postgres") {
    const iso = await isolatedPostgres();
    const pools = [createPostgres(iso.url)];
    await migrate(pools[0], await loadMigrations(MIGRATIONS_DIR));
    return {
      store: new SqlNotificationStore(pools[0]),
      async openPeer() {
        pools.push(createPostgres(iso.url));
        return new SqlNotificationStore(pools[pools.length - 1]);
      },
      close: async () => {
        for (const p of pools) await p.close();
        await iso.drop();
      },
    };
  }
  const { db, cleanup } = await openMigratedSql("pglite");
  const store = new SqlNotificationStore(db);
  return { store, openPeer: async () => store, close: cleanup };
}

const WINDOW = 60_000;
const base = new Date(Math.floor(Date.now() / WINDOW) * WINDOW); // the start of a window

function entry(over: Partial<BatchEntry> = {}): BatchEntry {
  return {
    userId: randomUUID(),
    conversationId: randomUUID(),
    type: "direct_message",
    messageId: randomUUID(),
    senderId: randomUUID(),
    seq: 1,
    preview: "hello",
    at: new Date(base.getTime() + 1000),
    windowMs: WINDOW,
    ...over,
  };
}

forEachBackend("notification store", ["mongo", "postgres", "pglite"] as const, (name) => {
  let store: NotificationStore;
  let openPeer: () => Promise<NotificationStore>;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ store, openPeer, close } = await open(name));
  });
  afterAll(async () => close?.());

  it("folds messages of one user, conversation and window into one notification", async () => {
    const first = entry();
    const senderB = randomUUID();
    await store.addToBatch(first);
    await store.addToBatch({ ...first, messageId: randomUUID(), seq: 2, preview: "second", type: "mention", senderId: senderB });
    await store.addToBatch({ ...first, messageId: randomUUID(), seq: 3, preview: "third" });
    await store.addToBatch(first); // a repeat of the same message changes nothing
    const [n, ...rest] = await store.list(first.userId, { limit: 10, after: null, unseenOnly: false });
    expect(rest).toEqual([]);
    expect(n).toMatchObject({
      userId: first.userId,
      conversationId: first.conversationId,
      type: "mention", // the strongest reason in the batch
      messageCount: 3,
      preview: "third",
      lastSeq: 3,
      batchedAt: null,
      seenAt: null,
    });
    expect(n.messageIds[0]).toBe(first.messageId);
    expect(n.messageIds).toHaveLength(3);
    expect(new Set(n.senderIds)).toEqual(new Set([first.senderId, senderB]));
    // The window opens at the first message (leading edge).
    expect(n.createdAt.getTime()).toBe(first.at.getTime());
    expect(n.windowEndsAt.getTime()).toBe(first.at.getTime() + WINDOW);
  });

  it("keeps a burst across a window-aligned boundary in one batch, starts the next one after the claim, and keeps conversations apart", async () => {
    const boundary = base.getTime() + WINDOW; // where fixed windows would split the burst
    const e = entry({ at: new Date(boundary - 500) });
    await store.addToBatch(e);
    await store.addToBatch({ ...e, messageId: randomUUID(), seq: 2, at: new Date(boundary + 500) });
    await store.addToBatch({ ...e, messageId: randomUUID(), conversationId: randomUUID() });
    const listed = await store.list(e.userId, { limit: 10, after: null, unseenOnly: false });
    expect(listed).toHaveLength(2);
    const burst = listed.find((n) => n.conversationId === e.conversationId)!;
    expect(burst).toMatchObject({ messageCount: 2, lastSeq: 2 });
    expect(burst.windowEndsAt.getTime()).toBe(boundary - 500 + WINDOW);

    const claimed = await store.markBatched(burst.id, new Date());
    expect(claimed).toMatchObject({ id: burst.id, messageCount: 2, lastSeq: 2 });
    expect(claimed!.batchedAt).toBeInstanceOf(Date);
    const after = { ...e, messageId: randomUUID(), seq: 3, at: new Date(boundary + 1000) };
    await store.addToBatch(after);
    const again = await store.list(e.userId, { limit: 10, after: null, unseenOnly: false });
    expect(again).toHaveLength(3);
    const next = again.find((n) => n.conversationId === e.conversationId && n.id !== burst.id)!;
    expect(next).toMatchObject({ messageCount: 1, messageIds: [after.messageId], batchedAt: null });
    expect(next.createdAt.getTime()).toBe(boundary + 1000);
  });

  it("opens one batch when the first messages of a burst arrive at once on two nodes", async () => {
    const peerStore = await openPeer();
    const e = entry();
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? peerStore : store).addToBatch({ ...e, messageId: randomUUID(), seq: i + 1, at: new Date(e.at.getTime() + i) }),
      ),
    );
    const listed = await store.list(e.userId, { limit: 10, after: null, unseenOnly: false });
    expect(listed).toHaveLength(1);
    expect(listed[0].messageCount).toBe(10);
  });

  it("stays exact under concurrent messages for one batch", async () => {
    const e = entry();
    await Promise.all(Array.from({ length: 30 }, (_, i) => store.addToBatch({ ...e, messageId: randomUUID(), seq: i + 1 })));
    const [n] = await store.list(e.userId, { limit: 10, after: null, unseenOnly: false });
    expect(n.messageCount).toBe(30);
    expect(n.lastSeq).toBe(30);
  });

  it("caps the ids kept at 50 and keeps counting", async () => {
    const e = entry();
    for (let i = 0; i < 55; i++) await store.addToBatch({ ...e, messageId: randomUUID(), seq: i + 1 });
    const [n] = await store.list(e.userId, { limit: 10, after: null, unseenOnly: false });
    expect(n.messageIds).toHaveLength(50);
    expect(n.messageCount).toBe(55);
  });

  it("hands out each due batch to one flusher only", async () => {
    const e = entry({ at: new Date(base.getTime() - 2 * WINDOW) });
    await store.addToBatch(e);
    const due = (await store.dueBatches(new Date(), 1000)).filter((n) => n.userId === e.userId);
    expect(due).toHaveLength(1);
    const claims = await Promise.all([1, 2, 3].map(() => store.markBatched(due[0].id, new Date())));
    expect(claims.filter(Boolean)).toHaveLength(1);
    expect(claims.find(Boolean)).toMatchObject({ id: due[0].id, userId: e.userId, messageCount: 1 });
    expect((await store.dueBatches(new Date(), 1000)).some((n) => n.id === due[0].id)).toBe(false);
    // A window that has not ended is not due.
    const open = entry({ at: new Date(Date.now() + WINDOW) });
    await store.addToBatch(open);
    expect((await store.dueBatches(new Date(), 1000)).some((n) => n.userId === open.userId)).toBe(false);
  });

  it("makes a seen batch unseen again when a new message folds into it (a repeat of a folded one does not)", async () => {
    const userId = randomUUID();
    const conversationId = randomUUID();
    const first = await store.addToBatch(entry({ userId, conversationId, messageId: randomUUID(), at: base }));
    expect(await store.markSeen(userId, { ids: [first.id], upTo: null }, new Date())).toBe(1);
    expect(await store.unseenCount(userId)).toBe(0);
    const repeatId = randomUUID();
    const grown = await store.addToBatch(entry({ userId, conversationId, messageId: repeatId, at: new Date(base.getTime() + 5) }));
    expect(grown.id).toBe(first.id);
    expect(grown.messageCount).toBe(2);
    expect(grown.seenAt).toBeNull();
    expect(await store.unseenCount(userId)).toBe(1);
    expect(await store.markSeen(userId, { ids: [first.id], upTo: null }, new Date())).toBe(1);
    const again = await store.addToBatch(entry({ userId, conversationId, messageId: repeatId, at: new Date(base.getTime() + 5) }));
    expect(again.messageCount).toBe(2);
    expect(await store.unseenCount(userId)).toBe(0);
  });

  it("pages newest first and marks seen by id or up to a time", async () => {
    const userId = randomUUID();
    for (let i = 0; i < 5; i++) await store.addToBatch(entry({ userId, at: new Date(base.getTime() + i * 10) }));
    const page1 = await store.list(userId, { limit: 2, after: null, unseenOnly: false });
    const page2 = await store.list(userId, { limit: 2, after: { createdAt: page1[1].createdAt, id: page1[1].id }, unseenOnly: false });
    const page3 = await store.list(userId, { limit: 2, after: { createdAt: page2[1].createdAt, id: page2[1].id }, unseenOnly: false });
    const all = [...page1, ...page2, ...page3];
    expect(all).toHaveLength(5);
    expect(new Set(all.map((n) => n.id)).size).toBe(5);
    expect(all.map((n) => n.createdAt.getTime())).toEqual([...all.map((n) => n.createdAt.getTime())].sort((a, b) => b - a));

    expect(await store.unseenCount(userId)).toBe(5);
    expect(await store.markSeen(userId, { ids: [all[0].id], upTo: null }, new Date())).toBe(1);
    expect(await store.markSeen(userId, { ids: [all[0].id], upTo: null }, new Date())).toBe(0);
    expect(await store.markSeen(randomUUID(), { ids: [all[1].id], upTo: null }, new Date())).toBe(0); // not theirs
    expect(await store.unseenCount(userId)).toBe(4);
    expect(await store.markSeen(userId, { ids: [], upTo: all[2].createdAt }, new Date())).toBe(3);
    const unseen = await store.list(userId, { limit: 10, after: null, unseenOnly: true });
    expect(unseen.map((n) => n.id)).toEqual([all[1].id]);
  });
});
