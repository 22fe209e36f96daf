// The notifier's batching on every store, with two notifiers sharing the
// stores as two nodes do: a burst of mentions is one notification, opened by
// its first message (a leading-edge window), even when it straddles a
// clock-aligned boundary and its messages are handled on different nodes.
// Real message, conversation and notification stores; the push sender records.

import { afterAll, beforeAll, expect, it } from "vitest";
import { pino } from "pino";
import { forEachBackend } from "../support/backends.ts";
import { insertConversation, insertUsers, newMessage, openStoreEnv, type StoreEnv } from "../messages/fixtures.ts";
import { Notifier } from "../../src/notifications/notifier.ts";
import { StoreNotificationFacts } from "../../src/notifications/facts.ts";
import { SqlNotificationStore } from "../../src/notifications/sql-store.ts";
import { MongoNotificationStore } from "../../src/notifications/mongo-store.ts";
import type { NotificationStore } from "../../src/notifications/store.ts";
import type { Notification } from "../../src/notifications/types.ts";
import { SqlConversationStore } from "../../src/conversations/sql-store.ts";
import type { SqlDatabase } from "../../src/stores/sql/sql.ts";
import type { MongoStore } from "../../src/stores/mongo/mongo.ts";
import type { MessageStore } from "../../src/messages/store.ts";
import { SqlMessageStore } from "../../src/messages/sql-store.ts";
import { MongoMessageStore } from "../../src/messages/mongo-store.ts";

const WINDOW = 2_000;

forEachBackend("notifier batching on two nodes", ["mongo", "postgres", "pglite"] as const, (name) => {
  let env: StoreEnv;
  const pushed: Notification[] = [];
  let nodes: { notifier: Notifier; store: NotificationStore }[];

  async function node(sql: SqlDatabase, mongo: MongoStore | null, messages: MessageStore) {
    const store = mongo ? await MongoNotificationStore.open(mongo) : new SqlNotificationStore(sql);
    const notifier = new Notifier({
      store,
      facts: new StoreNotificationFacts({ messages, conversations: new SqlConversationStore(sql), sql }),
      // Everyone is away (presence has its own tests): every mention notifies.
      availability: { unavailable: async (ids) => new Set(ids) },
      push: { send: async (n) => void pushed.push(n) },
      windowMs: WINDOW,
      logger: pino({ level: "silent" }),
    });
    return { notifier, store };
  }

  beforeAll(async () => {
    env = await openStoreEnv(name);
    const peer = await env.openPeerConnections();
    const a = await node(env.sql, env.mongo, env.store);
    // PGlite belongs to one process: the second notifier shares its connection.
    const b = peer
      ? await node(peer.sql, peer.mongo, peer.mongo ? new MongoMessageStore(peer.mongo, peer.sql) : new SqlMessageStore(peer.sql))
      : await node(env.sql, env.mongo, env.store);
    nodes = [a, b];
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it("folds a burst that straddles a window-aligned boundary, handled on two nodes at once, into one notification pushed once", async () => {
    const [alice, bob] = await insertUsers(env.sql, 2);
    const conv = await insertConversation(env.sql, [bob, alice]);
    // Six mentions of alice 100 ms apart around a multiple of the window (where fixed windows split).
    const boundary = (Math.floor(Date.now() / WINDOW) + 1) * WINDOW;
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const at = new Date(boundary - 300 + i * 100);
      const { message } = await env.store.send(newMessage(conv, bob, { content: `@alice ${i}`, mentions: [alice], createdAt: at }));
      ids.push(message.id);
    }
    // Each message handled by both nodes concurrently (as a retried or duplicated event would be):
    // the first one (it opens the batch), then the other five all at once.
    const both = (id: string, i: number) => [nodes[i % 2].notifier.onMessage(conv, id), nodes[(i + 1) % 2].notifier.onMessage(conv, id)];
    await Promise.all(both(ids[0], 0));
    await Promise.all(ids.slice(1).flatMap((id, i) => both(id, i + 1)));

    const listed = await nodes[0].store.list(alice, { limit: 10, after: null, unseenOnly: false });
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ conversationId: conv, type: "mention", messageCount: 6, batchedAt: null });
    expect(listed[0].createdAt.getTime()).toBe(boundary - 300);
    expect(listed[0].windowEndsAt.getTime()).toBe(boundary - 300 + WINDOW);

    // Both nodes flush at once, after the window: one claim, one push, with all six.
    const after = new Date(boundary - 300 + WINDOW + 1);
    const sent = await Promise.all(nodes.map((n) => n.notifier.flush(after)));
    expect(sent.reduce((x, y) => x + y, 0)).toBe(1);
    const mine = pushed.filter((n) => n.userId === alice);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ id: listed[0].id, messageCount: 6 });
    // Folded in the order the nodes got to them, which the concurrency leaves open.
    expect([...mine[0].messageIds].sort()).toEqual([...ids].sort());
    expect(mine[0].batchedAt?.getTime()).toBe(after.getTime());
  });

  it("folds a message that arrives after the window but before the push, and opens a new batch after the push", async () => {
    const [alice, bob] = await insertUsers(env.sql, 2);
    const conv = await insertConversation(env.sql, [bob, alice]);
    const t0 = Date.now();
    const send = async (at: number, node: number) => {
      const { message } = await env.store.send(newMessage(conv, bob, { content: "@alice", mentions: [alice], createdAt: new Date(at) }));
      await nodes[node].notifier.onMessage(conv, message.id);
      return message.id;
    };
    const first = await send(t0, 0);
    const late = await send(t0 + WINDOW + 50, 1); // the window has ended, the batch is not pushed yet
    expect(await nodes[1].notifier.flush(new Date(t0 + WINDOW + 100))).toBe(1);
    const next = await send(t0 + WINDOW + 200, 0); // after the push: a new batch
    const listed = await nodes[0].store.list(alice, { limit: 10, after: null, unseenOnly: false });
    expect(listed.map((n) => n.messageIds)).toEqual([[next], [first, late]]);
    expect(pushed.filter((n) => n.userId === alice).map((n) => n.messageIds)).toEqual([[first, late]]);
    expect(listed[0].createdAt.getTime()).toBe(t0 + WINDOW + 200);
  });
});
