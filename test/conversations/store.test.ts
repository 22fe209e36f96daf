// Conformance suite for ConversationStore, run on a real Postgres and on the
// embedded PGlite: the atomic building blocks the domain layer relies on.

import { afterAll, beforeAll, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { forEachBackend } from "../support/backends.ts";
import type { SqlDatabase } from "../../src/stores/sql/sql.ts";
import { SqlConversationStore } from "../../src/conversations/sql-store.ts";
import { ChannelNameTaken, UnknownUsers } from "../../src/conversations/store.ts";
import { directKey } from "../../src/conversations/types.ts";
import { failure, insertUsers, openMigratedSql } from "./helpers.ts";
import { SqlMessageStore } from "../../src/messages/sql-store.ts";
import { advanceAfterSend, takeNextSeq } from "../../src/messages/sql-ledger.ts";

const audit = (actorId: string, action = "test") => ({ actorId, action });

forEachBackend("conversation store", ["postgres", "pglite"] as const, (backend) => {
  let db: SqlDatabase;
  let cleanup: () => Promise<void>;
  let store: SqlConversationStore;

  beforeAll(async () => {
    ({ db, cleanup } = await openMigratedSql(backend));
    store = new SqlConversationStore(db);
  });
  afterAll(async () => {
    await cleanup?.();
  });

  async function memberRows(conversationId: string): Promise<number> {
    const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM conversation_members WHERE conversation_id = $1", [
      conversationId,
    ]);
    return rows[0].n;
  }

  it("creates one DM per unordered pair under concurrent calls from both sides", async () => {
    const [a, b] = await insertUsers(db, 2);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? store.getOrCreateDirect(a, b, audit(a)) : store.getOrCreateDirect(b, a, audit(b)))),
    );
    const ids = new Set(results.map((r) => r.conversation.id));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    const c = results[0].conversation;
    expect(c).toMatchObject({ type: "direct", visibility: "private", ownerId: null, memberCount: 2, directKey: directKey(a, b) });
    expect(await memberRows(c.id)).toBe(2);
    const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM conversations WHERE direct_key = $1", [directKey(a, b)]);
    expect(rows[0].n).toBe(1);
  });

  it("makes a DM with oneself a one-member conversation", async () => {
    const [a] = await insertUsers(db, 1);
    const first = await store.getOrCreateDirect(a, a, audit(a));
    const again = await store.getOrCreateDirect(a, a, audit(a));
    expect(first.created).toBe(true);
    expect(again).toMatchObject({ created: false, conversation: { id: first.conversation.id, memberCount: 1 } });
    expect(await memberRows(first.conversation.id)).toBe(1);
  });

  it("refuses a DM with an unknown user and leaves nothing behind", async () => {
    const [a] = await insertUsers(db, 1);
    const ghost = randomUUID();
    expect(await failure(store.getOrCreateDirect(a, ghost, audit(a)))).toBeInstanceOf(UnknownUsers);
    const { rows } = await db.query("SELECT 1 FROM conversations WHERE direct_key = $1", [directKey(a, ghost)]);
    expect(rows).toHaveLength(0);
  });

  it("keeps channel names unique case-insensitively, also under concurrency", async () => {
    const [a, b] = await insertUsers(db, 2);
    const name = `General-${randomUUID().slice(0, 8)}`;
    const attempts = await Promise.allSettled(
      [name, name.toUpperCase(), name.toLowerCase(), name].map((title, i) =>
        store.createConversation(
          { type: "channel", title, description: "", visibility: i % 2 ? "private" : "public", ownerId: i % 2 ? a : b },
          [{ userId: i % 2 ? a : b, role: "owner" }],
          audit(a),
        ),
      ),
    );
    expect(attempts.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of attempts) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(ChannelNameTaken);
    // Groups may share titles with channels and each other.
    const g1 = await store.createConversation(
      { type: "group", title: name, description: "", visibility: "private", ownerId: a },
      [{ userId: a, role: "owner" }],
      audit(a),
    );
    const g2 = await store.createConversation(
      { type: "group", title: name, description: "", visibility: "private", ownerId: a },
      [{ userId: a, role: "owner" }],
      audit(a),
    );
    expect(g1.id).not.toBe(g2.id);
  });

  it("creates a conversation with its members and an audit row, or nothing at all", async () => {
    const [owner, m1, m2] = await insertUsers(db, 3);
    const c = await store.createConversation(
      { type: "group", title: "team", description: "d", visibility: "private", ownerId: owner },
      [
        { userId: owner, role: "owner" },
        { userId: m1, role: "member" },
        { userId: m2, role: "member" },
      ],
      { actorId: owner, action: "conversation.created", clientAddress: "10.0.0.1" },
    );
    expect(c).toMatchObject({ type: "group", ownerId: owner, memberCount: 3, lastSeq: 0 });
    expect(await memberRows(c.id)).toBe(3);
    expect((await store.getMember(c.id, owner))?.role).toBe("owner");
    const logged = await db.query<{ actor_id: string; client_address: string }>(
      "SELECT actor_id, client_address FROM audit_log WHERE entity_type = 'conversation' AND entity_id = $1 AND action = 'conversation.created'",
      [c.id],
    );
    expect(logged.rows).toEqual([{ actor_id: owner, client_address: "10.0.0.1" }]);

    const ghost = randomUUID();
    const title = `ghosts-${randomUUID().slice(0, 8)}`;
    const err = await failure(
      store.createConversation(
        { type: "channel", title, description: "", visibility: "public", ownerId: owner },
        [
          { userId: owner, role: "owner" },
          { userId: ghost, role: "member" },
        ],
        audit(owner),
      ),
    );
    expect(err).toBeInstanceOf(UnknownUsers);
    expect((err as UnknownUsers).userIds).toEqual([ghost]);
    const { rows } = await db.query("SELECT 1 FROM conversations WHERE lower(title) = $1", [title]);
    expect(rows).toHaveLength(0);
  });

  it("mutate: null for a missing conversation; rolls everything back when the decision throws", async () => {
    expect(await store.mutate(randomUUID(), async () => 1)).toBeNull();
    const [owner, x] = await insertUsers(db, 2);
    const c = await store.createConversation(
      { type: "group", title: "", description: "", visibility: "private", ownerId: owner },
      [{ userId: owner, role: "owner" }],
      audit(owner),
    );
    await expect(
      store.mutate(c.id, async (locked) => {
        await locked.addMembers([x], "member");
        await locked.audit({ actorId: owner, action: "conversation.rolled.back" });
        throw new Error("changed my mind");
      }),
    ).rejects.toThrow("changed my mind");
    expect(await store.getMember(c.id, x)).toBeNull();
    expect((await store.getConversation(c.id))?.memberCount).toBe(1);
    const { rows } = await db.query("SELECT 1 FROM audit_log WHERE action = 'conversation.rolled.back'");
    expect(rows).toHaveLength(0);
  });

  it("keeps member_count exact under concurrent adds and removes (and ignores repeats)", async () => {
    const users = await insertUsers(db, 41);
    const [owner, ...others] = users;
    const c = await store.createConversation(
      { type: "channel", title: `busy-${randomUUID().slice(0, 8)}`, description: "", visibility: "public", ownerId: owner },
      [{ userId: owner, role: "owner" }],
      audit(owner),
    );
    // Every user is added twice, concurrently: only one insert each may count.
    const added = await Promise.all([...others, ...others].map((u) => store.mutate(c.id, (l) => l.addMembers([u], "member"))));
    expect(added.flatMap((r) => r!.result).sort()).toEqual([...others].sort());
    expect((await store.getConversation(c.id))!.memberCount).toBe(41);
    // Half leave (each twice), while the rest re-add themselves.
    const leaving = others.slice(0, 20);
    const staying = others.slice(20);
    await Promise.all([
      ...[...leaving, ...leaving].map((u) => store.mutate(c.id, (l) => l.removeMember(u))),
      ...staying.map((u) => store.mutate(c.id, (l) => l.addMembers([u], "member"))),
    ]);
    const after = await store.getConversation(c.id);
    expect(after!.memberCount).toBe(21);
    expect(await memberRows(c.id)).toBe(21);
  });

  it("new members start with the history before them read", async () => {
    const [owner, late] = await insertUsers(db, 2);
    const c = await store.createConversation(
      { type: "group", title: "", description: "", visibility: "private", ownerId: owner },
      [{ userId: owner, role: "owner" }],
      audit(owner),
    );
    await db.query("UPDATE conversations SET last_seq = 42 WHERE id = $1", [c.id]);
    await store.mutate(c.id, (l) => l.addMembers([late], "member"));
    expect(await store.getMember(c.id, late)).toEqual({ role: "member", lastReadSeq: 42, deliveredSeq: 42, mutedUntil: null, archived: false });
  });

  it("keeps each member's activity copy equal to the conversation's while it is small, and none once it is big", async () => {
    const users = await insertUsers(db, 36);
    const [owner, ...others] = users;
    const c = await store.createConversation(
      { type: "group", title: "", description: "", visibility: "private", ownerId: owner },
      [
        { userId: owner, role: "owner" },
        { userId: others[0], role: "member" },
      ],
      audit(owner),
    );
    const messages = new SqlMessageStore(db);
    let n = 0;
    const send = (sender: string) =>
      messages.send({
        conversationId: c.id,
        senderId: sender,
        clientMessageId: `m${n++}`,
        content: "hi",
        parentMessageId: null,
        mentions: [],
        attachments: [],
        createdAt: new Date(Date.now() + n),
      });
    // Every member row against the rule: activity_at = last_message_at while member_count <= 32, else null.
    const check = async (members: number) => {
      const { rows } = await db.query<{ member_count: number; ok: boolean; n: number }>(
        `SELECT c.member_count, count(*)::int AS n,
                bool_and(m.activity_at IS NOT DISTINCT FROM CASE WHEN c.member_count <= 32 THEN c.last_message_at END) AS ok
           FROM conversations c JOIN conversation_members m ON m.conversation_id = c.id WHERE c.id = $1 GROUP BY c.member_count`,
        [c.id],
      );
      expect(rows[0]).toEqual({ member_count: members, n: members, ok: true });
    };
    await check(2);
    await send(owner); // the send statement
    await check(2);
    await db.transaction((tx) => takeNextSeq(tx, c.id, others[0], new Date(Date.now() + 1000))); // the MongoDB path's ledger
    await check(2);
    await store.mutate(c.id, (l) => l.addMembers(others.slice(1, 30), "member"));
    await check(31);
    await store.mutate(c.id, (l) => l.addMembers(others.slice(30), "member")); // 31 -> 36 crosses the limit
    await check(36);
    const { rows: before } = await db.query<{ last_message_at: Date }>("SELECT last_message_at FROM conversations WHERE id = $1", [c.id]);
    await send(others[3]);
    await advanceAfterSend(db, c.id, others[4], 1000, new Date(Date.now() + 5000));
    await check(36);
    const { rows: after } = await db.query<{ last_message_at: Date }>("SELECT last_message_at FROM conversations WHERE id = $1", [c.id]);
    expect(after[0].last_message_at.getTime()).toBeGreaterThan(before[0].last_message_at.getTime());
    for (const u of others.slice(31)) await store.mutate(c.id, (l) => l.removeMember(u)); // back to 32
    await check(32);
    await send(owner);
    await check(32);
  });

  it("keeps owner_id on a current owner", async () => {
    const [first, second, third] = await insertUsers(db, 3);
    const c = await store.createConversation(
      { type: "group", title: "", description: "", visibility: "private", ownerId: first },
      [
        { userId: first, role: "owner" },
        { userId: second, role: "member" },
        { userId: third, role: "member" },
      ],
      audit(first),
    );
    const res = await store.mutate(c.id, async (l) => {
      await l.setRole(third, "owner");
      await l.refreshOwner();
      const unchanged = l.conversation.ownerId;
      await l.setRole(first, "member");
      await l.refreshOwner();
      return { unchanged, owners: await l.countOwners() };
    });
    expect(res!.result).toEqual({ unchanged: first, owners: 1 });
    expect(res!.conversation.ownerId).toBe(third);
  });

  it("lists a user's conversations by activity with an exact keyset, microsecond ties included", async () => {
    const [me, other] = await insertUsers(db, 2);
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      const c = await store.createConversation(
        { type: "group", title: `g${i}`, description: "", visibility: "private", ownerId: me },
        [
          { userId: me, role: "owner" },
          { userId: other, role: "member" },
        ],
        audit(me),
      );
      ids.push(c.id);
    }
    // Activity times that differ only below the millisecond, and exact ties (broken by id).
    await db.query(
      `UPDATE conversations c SET last_message_at = timestamptz '2030-01-01 00:00:00.000000+00' + ((t.i / 3) * interval '1 microsecond')
       FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, i) WHERE c.id = t.id`,
      [ids],
    );
    await db.query("UPDATE conversation_members SET archived = true WHERE user_id = $1 AND conversation_id = $2", [me, ids[7]]);
    const { rows: expected } = await db.query<{ id: string }>(
      "SELECT id FROM conversations WHERE id = ANY($1::uuid[]) AND id <> $2 ORDER BY last_message_at DESC, id DESC",
      [ids, ids[7]],
    );
    const seen: string[] = [];
    let after = null;
    for (;;) {
      const page = await store.listForUser(me, { limit: 4, after, includeArchived: false });
      seen.push(...page.map((r) => r.conversation.id));
      if (page.length < 4) break;
      after = page[page.length - 1].cursor;
    }
    expect(seen).toEqual(expected.map((r) => r.id));
    const all = await store.listForUser(me, { limit: 100, after: null, includeArchived: true });
    expect(all).toHaveLength(30);
    const archived = all.find((r) => r.conversation.id === ids[7])!;
    expect(archived.member).toMatchObject({ userId: me, role: "owner", archived: true });
  });

  it("merges small conversations (read from the member index) and big ones (through the conversation) in one exact order", async () => {
    const users = await insertUsers(db, 34);
    const [me, ...crowd] = users;
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const c = await store.createConversation(
        { type: "group", title: `m${i}`, description: "", visibility: "private", ownerId: me },
        [
          { userId: me, role: "owner" },
          { userId: crowd[0], role: "member" },
        ],
        audit(me),
      );
      ids.push(c.id);
    }
    // Every third conversation gets more members than the fan-out limit: no activity copy for its members.
    for (const id of ids.filter((_, i) => i % 3 === 0)) await store.mutate(id, (l) => l.addMembers(crowd.slice(1), "member"));
    const { rows: copies } = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM conversation_members WHERE user_id = $1 AND conversation_id = ANY($2::uuid[]) AND activity_at IS NULL",
      [me, ids],
    );
    expect(copies[0].n).toBe(4);
    // Interleaved activity with ties across the two kinds, and a later message in a big one.
    await db.query(
      `UPDATE conversations c SET last_message_at = timestamptz '2031-01-01 00:00:00+00' + ((t.i / 2) * interval '1 microsecond')
       FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, i) WHERE c.id = t.id`,
      [ids],
    );
    await new SqlMessageStore(db).send({
      conversationId: ids[3],
      senderId: crowd[5],
      clientMessageId: "late",
      content: "x",
      parentMessageId: null,
      mentions: [],
      attachments: [],
      createdAt: new Date("2032-01-01T00:00:00Z"),
    });
    await db.query("UPDATE conversation_members SET archived = true WHERE user_id = $1 AND conversation_id = ANY($2::uuid[])", [
      me,
      [ids[6], ids[7]],
    ]);
    const { rows: expected } = await db.query<{ id: string }>(
      "SELECT id FROM conversations WHERE id = ANY($1::uuid[]) AND NOT (id = ANY($2::uuid[])) ORDER BY last_message_at DESC, id DESC",
      [ids, [ids[6], ids[7]]],
    );
    expect(expected[0].id).toBe(ids[3]);
    for (const limit of [1, 3, 5, 100]) {
      const seen: string[] = [];
      let after = null;
      for (;;) {
        const page = await store.listForUser(me, { limit, after, includeArchived: false });
        seen.push(...page.map((r) => r.conversation.id));
        if (page.length < limit) break;
        after = page[page.length - 1].cursor;
      }
      expect(seen, `page size ${limit}`).toEqual(expected.map((r) => r.id));
    }
    expect(await store.listForUser(me, { limit: 100, after: null, includeArchived: true })).toHaveLength(12);
  });

  it("lists public channels by name with a prefix filter and the caller's membership", async () => {
    const [me, owner] = await insertUsers(db, 2);
    const tag = `p${randomUUID().slice(0, 6)}`;
    const names = ["Alpha", "beta", "Beta_2", "gamma", "zeta"].map((n) => `${tag}-${n}`);
    const made = [];
    for (const title of names) {
      made.push(
        await store.createConversation(
          { type: "channel", title, description: "", visibility: "public", ownerId: owner },
          [{ userId: owner, role: "owner" }],
          audit(owner),
        ),
      );
    }
    await store.createConversation(
      { type: "channel", title: `${tag}-hidden`, description: "", visibility: "private", ownerId: owner },
      [{ userId: owner, role: "owner" }],
      audit(owner),
    );
    await store.mutate(made[1].id, (l) => l.addMembers([me], "member"));

    const page1 = await store.listPublicChannels(me, { limit: 2, afterNameKey: null, prefix: tag });
    const page2 = await store.listPublicChannels(me, { limit: 10, afterNameKey: page1[1].conversation.title.toLowerCase(), prefix: tag });
    expect([...page1, ...page2].map((r) => r.conversation.title)).toEqual(names);
    expect([...page1, ...page2].map((r) => r.member?.role ?? null)).toEqual([null, "member", null, null, null]);
    const betas = await store.listPublicChannels(me, { limit: 10, afterNameKey: null, prefix: `${tag}-beta` });
    expect(betas.map((r) => r.conversation.title)).toEqual([`${tag}-beta`, `${tag}-Beta_2`]);
  });

  it("lists members by user id with a keyset", async () => {
    const users = await insertUsers(db, 7);
    const c = await store.createConversation(
      { type: "group", title: "", description: "", visibility: "private", ownerId: users[0] },
      users.map((userId, i) => ({ userId, role: i === 0 ? ("owner" as const) : ("member" as const) })),
      audit(users[0]),
    );
    const first = await store.listMembers(c.id, { limit: 4, afterUserId: null });
    const rest = await store.listMembers(c.id, { limit: 4, afterUserId: first[3].userId });
    expect([...first, ...rest].map((m) => m.userId)).toEqual([...users].sort());
  });

  it("updates a member's own settings field by field", async () => {
    const [me, stranger] = await insertUsers(db, 2);
    const c = await store.createConversation(
      { type: "group", title: "", description: "", visibility: "private", ownerId: me },
      [{ userId: me, role: "owner" }],
      audit(me),
    );
    const until = new Date("2031-05-06T07:08:09.123Z");
    expect(await store.updateMemberSettings(c.id, me, { mutedUntil: until })).toMatchObject({ mutedUntil: until, archived: false });
    expect(await store.updateMemberSettings(c.id, me, { archived: true })).toMatchObject({ mutedUntil: until, archived: true });
    expect(await store.updateMemberSettings(c.id, me, { mutedUntil: null })).toMatchObject({ mutedUntil: null, archived: true });
    expect(await store.updateMemberSettings(c.id, stranger, { archived: true })).toBeNull();
    expect(await store.getMember(c.id, stranger)).toBeNull();
  });
});
