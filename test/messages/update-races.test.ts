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

  /**
   * Runs `ops` truly concurrently. On Postgres (and Mongo, whose writes take the
   * conversation's relational row lock) a third connection holds the
   * conversation's row and its messages' rows locked until every operation is
   * seen waiting on those locks (pg_locks): all of them are in flight at once,
   * and the database grants them in arrival order when the lock goes. PGlite has
   * one connection: the operations queue in issue order there.
   */
  async function together<T>(conv: string, ops: (() => Promise<T>)[]): Promise<{ results: T[]; waited: number | null }> {
    const locker = await env.openPeerConnections();
    if (!locker) return { results: await Promise.all(ops.map((op) => op())), waited: null };
    let locked!: () => void;
    let release!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const released = new Promise<void>((r) => (release = r));
    let xid = "";
    const holder = locker.sql.transaction(async (tx) => {
      xid = (await tx.query<{ x: string }>("SELECT txid_current()::text AS x")).rows[0].x;
      // Every row a write may lock, in the writers' own order (conversation, event head, messages):
      // edits, deletes and reactions take the event head first (their event is logged with them).
      await tx.query("SELECT id FROM conversations WHERE id = $1 FOR UPDATE", [conv]);
      await tx.query("SELECT conversation_id FROM conversation_event_heads WHERE conversation_id = $1 FOR UPDATE", [conv]);
      await tx.query("SELECT id FROM messages WHERE conversation_id = $1 FOR UPDATE", [conv]);
      locked();
      await released;
    });
    await isLocked;
    const running = ops.map((op) => op());
    const waiting = async () =>
      (
        await locker.sql.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_locks
            WHERE NOT granted AND (relation IN ('messages'::regclass, 'conversations'::regclass, 'conversation_event_heads'::regclass)
                                  OR transactionid::text = $1)`,
          [xid],
        )
      ).rows[0].n;
    // Until every operation waits on the lock (or 10 s: some may queue elsewhere first, e.g. the
    // Mongo adapter's sends); the lock is released whatever happens.
    let waited = 0;
    try {
      const deadline = Date.now() + 10_000;
      while ((waited = await waiting()) < ops.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    } finally {
      release();
      await holder;
    }
    return { results: await Promise.all(running), waited };
  }

  it("an edit racing a delete never brings content back to a tombstone", async () => {
    const conv = await insertConversation(env.sql, users);
    const sent = [];
    for (let i = 0; i < 30; i++) sent.push((await env.store.send(newMessage(conv, users[0], { content: `original ${i}` }))).message);
    const at = new Date();
    // Per message an edit and a delete on different nodes; which one is issued first alternates.
    const { results, waited } = await together<{ i: number; op: "edit" | "delete"; applied: boolean }>(
      conv,
      sent.flatMap((m, i) => {
        const edit = () => (i % 2 ? peer : env.store).edit(m.id, `edited ${i}`, at).then((r) => ({ i, op: "edit" as const, applied: r !== null }));
        const del = () => (i % 2 ? env.store : peer).softDelete(m.id, at).then((r) => ({ i, op: "delete" as const, applied: r?.changed === true }));
        return i % 2 ? [del, edit] : [edit, del];
      }),
    );
    // All 60 were in flight at once, held at the lock.
    if (waited !== null) expect(waited).toBeGreaterThanOrEqual(60);
    // The race happened both ways: some edits landed before their delete, some found a tombstone.
    const edits = results.filter((r) => r.op === "edit");
    expect(edits.some((r) => r.applied)).toBe(true);
    expect(edits.some((r) => !r.applied)).toBe(true);
    expect(results.filter((r) => r.op === "delete").every((r) => r.applied)).toBe(true);
    for (const m of sent) {
      const now = await env.store.get(m.id);
      expect(now?.deletedAt, m.content).not.toBeNull();
      expect(now?.content, m.content).toBe("");
    }
  });

  it("an edit of a thread parent racing its replies keeps both the edit and every reply counted", async () => {
    const conv = await insertConversation(env.sql, users);
    const parent = (await env.store.send(newMessage(conv, users[0], { content: "parent" }))).message;
    // Edits interleaved with the replies, all in flight at once (see together()).
    const ops: (() => Promise<unknown>)[] = [];
    for (let i = 0; i < 20; i++) {
      ops.push(() => (i % 2 ? peer : env.store).send(newMessage(conv, users[1 + (i % 2)], { parentMessageId: parent.id })));
      if (i % 4 === 0) ops.push(() => (i % 8 ? env.store : peer).edit(parent.id, "edited parent", new Date()));
    }
    const { waited } = await together(conv, ops);
    // The edits (and replies) were in flight together, held at the lock.
    if (waited !== null) expect(waited).toBeGreaterThanOrEqual(2);
    const now = await env.store.get(parent.id);
    expect(now?.content).toBe("edited parent");
    expect(now?.replyCount).toBe(20);
  });
});
