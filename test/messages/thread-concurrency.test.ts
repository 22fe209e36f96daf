// Thread counters under concurrent replies, from two store instances (as two
// nodes) on every adapter. FerretDB loses concurrent $inc on one document, so
// the Mongo adapter must move the parent's counter under the conversation lock.

import { afterAll, beforeAll, expect, it } from "vitest";
import { forEachBackend } from "../support/backends.ts";
import { insertConversation, insertUsers, newMessage, openStoreEnv, type StoreEnv } from "./fixtures.ts";

forEachBackend("thread counters under concurrency", ["mongo", "postgres", "pglite"] as const, (name) => {
  let env: StoreEnv;
  beforeAll(async () => {
    env = await openStoreEnv(name);
  });
  afterAll(async () => env?.cleanup());

  it("counts 40 concurrent replies from two nodes exactly", async () => {
    const users = await insertUsers(env.sql, 4);
    const conversationId = await insertConversation(env.sql, users);
    const parent = (await env.store.send(newMessage(conversationId, users[0], { clientMessageId: "parent" }))).message;
    const peer = (await env.openPeer()) ?? env.store;
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 ? peer : env.store).send(newMessage(conversationId, users[i % 4], { clientMessageId: `reply-${i}`, parentMessageId: parent.id })),
      ),
    );
    const after = await env.store.get(parent.id);
    expect(after?.replyCount).toBe(40);
    expect(after?.lastReplyAt).not.toBeNull();
  });
});
