// Concurrent writes to the same message from two store instances (two
// nodes), on every adapter: a delete is never undone by a racing edit or
// reply counter, and an edit is never lost to a racing reply. (FerretDB
// rewrites whole documents on update without isolation, so the Mongo adapter
// serialises the writes of one conversation under its relational row lock.)

import { afterAll, beforeAll, expect, it } from "vitest";
import { forEachBackend } from "../support/backends.ts";
import { insertConversation, insertUsers, newMessage, openStoreEnv, type StoreEnv } from "./fixtures.ts";
import type { MessageStore } from "../../src/messages/store.ts";

forEachBackend("message update races", ["mongo", "postgres", "pglite"] as const, (name) => {
  let env: StoreEnv;
  let peer: MessageStore;
  let users: string[];
  beforeAll(async () => {
    env = await openStoreEnv(name);
    peer = (await env.openPeer()) ?? env.store;
    users = await insertUsers(env.sql, 3);
  });
  afterAll(async () => env?.cleanup());

  it("an edit racing a delete never brings content back to a tombstone", async () => {
    const conv = await insertConversation(env.sql, users);
    const sent = [];
    for (let i = 0; i < 30; i++) sent.push((await env.store.send(newMessage(conv, users[0], { content: `original ${i}` }))).message);
    const at = new Date();
    await Promise.all(
      sent.flatMap((m, i) => [
        (i % 2 ? peer : env.store).edit(m.id, `edited ${i}`, at),
        (i % 2 ? env.store : peer).softDelete(m.id, at),
      ]),
    );
    for (const m of sent) {
      const now = await env.store.get(m.id);
      expect(now?.deletedAt, m.content).not.toBeNull();
      expect(now?.content, m.content).toBe("");
    }
  });

  it("an edit of a thread parent racing its replies keeps both the edit and every reply counted", async () => {
    const conv = await insertConversation(env.sql, users);
    const parent = (await env.store.send(newMessage(conv, users[0], { content: "parent" }))).message;
    await Promise.all([
      ...Array.from({ length: 20 }, (_, i) => (i % 2 ? peer : env.store).send(newMessage(conv, users[1 + (i % 2)], { parentMessageId: parent.id }))),
      ...Array.from({ length: 5 }, (_, i) => (i % 2 ? env.store : peer).edit(parent.id, "edited parent", new Date())),
    ]);
    const now = await env.store.get(parent.id);
    expect(now?.content).toBe("edited parent");
    expect(now?.replyCount).toBe(20);
  });
});
