// Conformance suite for the event log (SqlEventLog) on a real Postgres and on
// the embedded PGlite, the relational message store writing its events in the
// transaction of each change (the outbox), and the cursor codec.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { forEachBackend } from "../support/backends.ts";
import type { SqlDatabase } from "../../src/stores/sql/sql.ts";
import { SqlConversationStore } from "../../src/conversations/sql-store.ts";
import { SqlMessageStore } from "../../src/messages/sql-store.ts";
import { SqlEventLog } from "../../src/realtime/event-log.ts";
import type { DomainEvent } from "../../src/events/events.ts";
import { decodeCursor, encodeCursor } from "../../src/realtime/cursor.ts";
import { AppError } from "../../src/shared/errors.ts";
import { insertUsers, openMigratedSql } from "../conversations/helpers.ts";

forEachBackend("event log", ["postgres", "pglite"] as const, (backend) => {
  let db: SqlDatabase;
  let cleanup: () => Promise<void>;
  let log: SqlEventLog;
  let conversations: SqlConversationStore;
  let owner: string;

  beforeAll(async () => {
    ({ db, cleanup } = await openMigratedSql(backend));
    log = new SqlEventLog(db);
    conversations = new SqlConversationStore(db);
    [owner] = await insertUsers(db, 1);
  });
  afterAll(async () => {
    await cleanup?.();
  });

  /** A bare conversation row: no members, no events yet. */
  const newConversation = async () => {
    const id = randomUUID();
    await db.query(
      "INSERT INTO conversations (id, type, title, visibility, owner_id, last_message_at) VALUES ($1, 'group', 'g', 'private', $2, now())",
      [id, owner],
    );
    return id;
  };
  const joined = (c: string, userId: string) => ({ type: "member_joined" as const, conversationId: c, userId, role: "member" });
  const created = (c: string, seq: number) => ({ type: "message_created" as const, conversationId: c, messageId: randomUUID(), seq });

  it("numbers events per conversation 1, 2, 3, ... with no gap, also under concurrent appends", async () => {
    const c = await newConversation();
    const other = await newConversation();
    const users = Array.from({ length: 20 }, () => randomUUID());
    const results = await Promise.all(users.map((u) => log.append(c, [joined(c, u)])));
    const seqs = results
      .flat()
      .map((l) => l.eventSeq)
      .sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await log.append(other, [joined(other, owner)]);
    const unknown = randomUUID();
    expect(await log.heads([c, other, unknown])).toEqual(
      new Map([
        [c, 20],
        [other, 1],
        [unknown, 0],
      ]),
    );
    const all = await log.read(c, 0, 100, 100);
    expect(all.map((l) => l.eventSeq)).toEqual(seqs);
    expect(new Set(all.map((l) => (l.event as { userId: string }).userId))).toEqual(new Set(users));
  });

  it("appends a batch in order and reads ranges with a limit", async () => {
    const c = await newConversation();
    const batch = [joined(c, owner), created(c, 1), { type: "conversation_updated" as const, conversationId: c }, created(c, 2)];
    const out = await log.append(c, batch);
    expect(out.map((l) => [l.eventSeq, l.event.type])).toEqual([
      [1, "member_joined"],
      [2, "message_created"],
      [3, "conversation_updated"],
      [4, "message_created"],
    ]);
    expect((await log.read(c, 1, 3, 10)).map((l) => l.eventSeq)).toEqual([2, 3]);
    expect((await log.read(c, 0, 100, 2)).map((l) => l.eventSeq)).toEqual([1, 2]);
    expect(out[1].event).toEqual(batch[1]);
  });

  it("logs a message_created once: a second one for the same message seq is refused", async () => {
    const c = await newConversation();
    const e = created(c, 1);
    await log.append(c, [e]);
    await expect(log.append(c, [{ ...e, messageId: randomUUID() }])).rejects.toThrow();
    expect(await log.heads([c])).toEqual(new Map([[c, 1]])); // the refused append burnt no event_seq
  });

  it("finds membership events and message seqs at a position", async () => {
    const c = await newConversation();
    const u = randomUUID();
    await log.append(c, [joined(c, u), created(c, 1), created(c, 2), { type: "member_left", conversationId: c, userId: u, removed: true }]);
    await log.append(c, [joined(c, u), created(c, 3)]);
    expect((await log.lastMembershipEvent(c, u, "member_joined", 0))?.eventSeq).toBe(5);
    expect((await log.lastMembershipEvent(c, u, "member_left", 0))?.eventSeq).toBe(4);
    expect(await log.lastMembershipEvent(c, u, "member_left", 4)).toBeNull();
    expect(await log.lastMembershipEvent(c, randomUUID(), "member_joined", 0)).toBeNull();
    expect(await log.messageSeqsAt(new Map([[c, 4]]))).toEqual(new Map([[c, 2]]));
    expect(await log.messageSeqsAt(new Map([[c, 1]]))).toEqual(new Map());
    expect(await log.messageSeqsAt(new Map([[c, 6]]))).toEqual(new Map([[c, 3]]));
  });

  it("saves checkpoints and reads them back", async () => {
    const ids = [randomUUID(), randomUUID()];
    const cp = await log.saveCheckpoint({ id: randomUUID(), userId: owner, conversationIds: ids, seqs: [3, 9_007_199_254] });
    const back = await log.getCheckpoint(cp.id);
    expect(back).toMatchObject({ id: cp.id, userId: owner, conversationIds: ids, seqs: [3, 9_007_199_254] });
    expect(back!.createdAt).toBeInstanceOf(Date);
    expect(await log.getCheckpoint(randomUUID())).toBeNull();
  });

  it("prunes events and checkpoints past retention; the oldest retained seq moves up", async () => {
    const c = await newConversation();
    await log.append(c, [joined(c, owner), created(c, 1), created(c, 2)]);
    const cp = await log.saveCheckpoint({ id: randomUUID(), userId: owner, conversationIds: [c], seqs: [1] });
    expect(await log.oldestRetained([c])).toEqual(new Map([[c, 1]]));
    await db.query("UPDATE conversation_events SET created_at = now() - interval '10 days' WHERE conversation_id = $1 AND event_seq <= 2", [c]);
    await db.query("UPDATE stream_checkpoints SET created_at = now() - interval '10 days' WHERE id = $1", [cp.id]);
    const pruned = await log.prune(new Date(Date.now() - 7 * 24 * 3600 * 1000), 1);
    expect(pruned.events).toBeGreaterThanOrEqual(2);
    expect(pruned.checkpoints).toBeGreaterThanOrEqual(1);
    expect(await log.oldestRetained([c])).toEqual(new Map([[c, 3]]));
    expect(await log.getCheckpoint(cp.id)).toBeNull();
    expect(await log.heads([c])).toEqual(new Map([[c, 3]])); // numbering never restarts
  });

  it("every change writes its event in its own transaction: gapless, in commit order, message_created in message order, payloads complete", async () => {
    const messages = new SqlMessageStore(db);
    const c = (
      await conversations.createConversation(
        { type: "group", title: "g", description: "", visibility: "private", ownerId: owner },
        [{ userId: owner, role: "owner" }],
        { actorId: owner, action: "test" },
      )
    ).id;
    const send = (i: number) =>
      messages.send({
        conversationId: c,
        senderId: owner,
        clientMessageId: `m${i}`,
        content: `hello ${i}`,
        parentMessageId: null,
        mentions: [],
        attachments: [],
        createdAt: new Date(),
      });
    const first = (await send(0)).message;
    // Concurrent sends, reactions, edits and receipts into one conversation.
    await Promise.all([
      ...Array.from({ length: 20 }, (_, i) => send(i + 1)),
      ...["👍", "🎉", "🔥"].map((emoji) => messages.addReaction(first, owner, emoji, new Date())),
      messages.edit(first.id, "edited", new Date()),
      messages.markRead(c, owner, 5),
    ]);
    const all = await log.read(c, 0, 1000, 1000);
    expect(all.map((l) => l.eventSeq)).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    expect(all[0].event.type).toBe("member_joined");
    const created = all.flatMap((l) => (l.event.type === "message_created" ? [l.event] : []));
    expect(created.map((e) => e.seq)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    expect(created.every((e) => e.message?.id === e.messageId && e.message.seq === e.seq && /^hello \d+$/.test(e.message.content))).toBe(true);
    expect(created.every((e) => e.message?.createdAt instanceof Date)).toBe(true);
    // Reaction counts follow the event order (each add saw the ones before it).
    const reactions = all.flatMap((l) => (l.event.type === "reaction_updated" ? [l.event] : []));
    expect(reactions.map((r) => r.count)).toEqual([1, 1, 1]);
    const edit = all.find((l) => l.event.type === "message_edited")!.event as Extract<DomainEvent, { type: "message_edited" }>;
    const before = all.filter(
      (l) => l.eventSeq < all.find((x) => x.event.type === "message_edited")!.eventSeq && l.event.type === "reaction_updated",
    ).length;
    expect(edit.message?.content).toBe("edited");
    expect(edit.reactions?.length).toBe(before);
    expect(await log.heads([c])).toEqual(new Map([[c, all.length]]));
    // A repeat and a no-op log nothing.
    await send(3);
    expect(await messages.addReaction(first, owner, "👍", new Date())).toBe(false);
    expect(await log.heads([c])).toEqual(new Map([[c, all.length]]));
  });
});

describe("cursor codec", () => {
  it("round-trips a checkpoint id and delta", () => {
    const value = {
      checkpointId: randomUUID(),
      delta: [
        [0, 1],
        [15, 2 ** 40],
        [300, 127],
        [3, 128],
      ] as [number, number][],
    };
    const text = encodeCursor(value);
    expect(text).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor("cursor", text)).toEqual(value);
    expect(encodeCursor({ checkpointId: value.checkpointId, delta: [] }).length).toBeLessThan(30);
  });

  it("refuses anything else with INVALID_ARGUMENT naming the field", () => {
    const good = encodeCursor({ checkpointId: randomUUID(), delta: [[1, 2]] });
    for (const bad of [
      "",
      "!!!",
      "abc",
      good.slice(0, -1),
      `${good}AA`,
      "A".repeat(3000),
      Buffer.from([2, ...Array(20).fill(0)]).toString("base64url"),
    ]) {
      let err: unknown = null;
      try {
        decodeCursor("hello.resume_token", bad);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(AppError);
      expect((err as AppError).kind).toBe("invalid_argument");
      expect((err as AppError).violations[0].field).toBe("hello.resume_token");
    }
  });
});
