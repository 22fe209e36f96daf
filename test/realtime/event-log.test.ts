// Conformance suite for the event log (SqlEventLog) on a real Postgres and on
// the embedded PGlite, plus the sink's repair of unannounced messages against
// the real message store, and the cursor codec.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { forEachBackend } from "../support/backends.ts";
import type { SqlDatabase } from "../../src/stores/sql/sql.ts";
import { SqlConversationStore } from "../../src/conversations/sql-store.ts";
import { SqlMessageStore } from "../../src/messages/sql-store.ts";
import { createMemoryStore } from "../../src/stores/ephemeral/memory.ts";
import { createLogger } from "../../src/shared/logger.ts";
import { SqlEventLog } from "../../src/realtime/event-log.ts";
import { EventMaterializer } from "../../src/realtime/materialize.ts";
import { RealtimeEventSink } from "../../src/realtime/sink.ts";
import { messageReaderOf } from "../../src/realtime/ports.ts";
import { decodeEventEnvelope, conversationChannel } from "../../src/realtime/envelope.ts";
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

  const newConversation = async () =>
    (
      await conversations.createConversation(
        { type: "group", title: "g", description: "", visibility: "private", ownerId: owner },
        [{ userId: owner, role: "owner" }],
        { actorId: owner, action: "test" },
      )
    ).id;
  const joined = (c: string, userId: string) => ({ type: "member_joined" as const, conversationId: c, userId, role: "member" });
  const created = (c: string, seq: number) => ({ type: "message_created" as const, conversationId: c, messageId: randomUUID(), seq });

  it("numbers events per conversation 1, 2, 3, ... with no gap, also under concurrent appends", async () => {
    const c = await newConversation();
    const other = await newConversation();
    const users = Array.from({ length: 20 }, () => randomUUID());
    const results = await Promise.all(users.map((u) => log.append(c, [joined(c, u)])));
    const seqs = results.flat().map((l) => l.eventSeq).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await log.append(other, [joined(other, owner)]);
    const unknown = randomUUID();
    expect(await log.heads([c, other, unknown])).toEqual(new Map([[c, 20], [other, 1], [unknown, 0]]));
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

  it("logs a message_created once, whoever logs it first", async () => {
    const c = await newConversation();
    const e = created(c, 1);
    await log.append(c, [e]);
    expect(await log.append(c, [e])).toEqual([]);
    expect(await log.append(c, [{ ...e, messageId: randomUUID() }])).toEqual([]); // same seq: the same message
    expect(await log.heads([c])).toEqual(new Map([[c, 1]]));
  });

  it("fills a gap in message seqs first, so message_created events follow message order", async () => {
    const c = await newConversation();
    const asked: [number, number][] = [];
    const out = await log.append(c, [created(c, 3)], async (conv, after, before) => {
      asked.push([after, before]);
      return [
        { messageId: "b", seq: 2 },
        { messageId: "a", seq: 1 },
      ];
    });
    expect(asked).toEqual([[0, 3]]);
    expect(out.map((l) => (l.event as { seq: number }).seq)).toEqual([1, 2, 3]);
    // The late publisher of message 2 finds it already announced.
    expect(await log.append(c, [created(c, 2)])).toEqual([]);
    expect((await log.append(c, [created(c, 4)], async () => [])).map((l) => l.eventSeq)).toEqual([4]);
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

  it("repairs a message that was stored but never announced", async () => {
    const messages = new SqlMessageStore(db);
    const ephemeral = createMemoryStore();
    const sink = new RealtimeEventSink({
      log,
      materializer: new EventMaterializer({ messages: messageReaderOf(messages), conversations }),
      messages: messageReaderOf(messages),
      ephemeral,
      logger: createLogger("silent", "test"),
    });
    const c = await newConversation();
    const published: number[] = [];
    await ephemeral.subscribe(conversationChannel(c), (b) => published.push(decodeEventEnvelope(b)!.eventSeq));
    // As if the node died between storing and announcing: two messages, no events.
    for (let i = 1; i <= 2; i++) {
      await messages.send({ conversationId: c, senderId: owner, clientMessageId: `m${i}`, content: `lost ${i}`, parentMessageId: null, mentions: [], attachments: [], createdAt: new Date() });
    }
    expect(await log.read(c, 0, 100, 100)).toEqual([]);
    expect((await log.lagging(new Date(Date.now() + 1000), 1000)).map((l) => l.conversationId)).toContain(c);
    await sink.repair(-1000);
    const logged = await log.read(c, 0, 100, 100);
    expect(logged.map((l) => [l.event.type, (l.event as { seq: number }).seq])).toEqual([
      ["message_created", 1],
      ["message_created", 2],
    ]);
    expect((await log.lagging(new Date(Date.now() + 1000), 1000)).map((l) => l.conversationId)).not.toContain(c);
    for (let i = 0; published.length < 2 && i < 100; i++) await new Promise((r) => setTimeout(r, 10));
    expect(published).toEqual([1, 2]);
    await ephemeral.close();
  });
});

describe("cursor codec", () => {
  it("round-trips a checkpoint id and delta", () => {
    const value = { checkpointId: randomUUID(), delta: [[0, 1], [15, 2 ** 40], [300, 127], [3, 128]] as [number, number][] };
    const text = encodeCursor(value);
    expect(text).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor("cursor", text)).toEqual(value);
    expect(encodeCursor({ checkpointId: value.checkpointId, delta: [] }).length).toBeLessThan(30);
  });

  it("refuses anything else with INVALID_ARGUMENT naming the field", () => {
    const good = encodeCursor({ checkpointId: randomUUID(), delta: [[1, 2]] });
    for (const bad of ["", "!!!", "abc", good.slice(0, -1), good + "AA", "A".repeat(3000), Buffer.from([2, ...Array(20).fill(0)]).toString("base64url")]) {
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
