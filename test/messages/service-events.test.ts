// The domain service on real stores: every persisted change is announced once,
// after it is persisted (the sink checks the store at publish time), and
// nothing is announced for repeats, no-ops or failures.

import { afterAll, beforeAll, expect, it } from "vitest";
import { forEachBackend } from "../support/backends.ts";
import type { DomainEvent, EventSink, LoggedEvent } from "../../src/events/events.ts";
import { SqlConversationStore } from "../../src/conversations/sql-store.ts";
import { MessageService } from "../../src/messages/service.ts";
import type { MessageStore } from "../../src/messages/store.ts";
import { AppError } from "../../src/shared/errors.ts";
import { insertConversation, insertUsers, memberRow, openStoreEnv, type StoreEnv } from "./fixtures.ts";

/** Records events, and checks that what each one announces is already readable. */
class PersistThenAnnounceSink implements EventSink {
  readonly events: DomainEvent[] = [];
  readonly problems: string[] = [];
  store!: MessageStore;
  env!: StoreEnv;
  async track<T>(_c: string[], write: () => Promise<T>, eventsOf: (r: T) => LoggedEvent[]): Promise<T> {
    const r = await write();
    const logged = eventsOf(r);
    for (const l of logged) {
      // Written in the change's transaction: in the log by the time the write returns.
      const { rows } = await this.env.sql.query<{ type: string }>(
        "SELECT type FROM conversation_events WHERE conversation_id = $1 AND event_seq = $2",
        [l.event.conversationId, l.eventSeq],
      );
      if (rows[0]?.type !== l.event.type) this.problems.push(`${l.event.type} #${l.eventSeq} is not in the log`);
    }
    await this.check(logged.map((l) => l.event));
    return r;
  }
  private async check(events: DomainEvent[]): Promise<void> {
    for (const e of events) {
      if (e.type === "message_created" || e.type === "message_edited" || e.type === "message_deleted") {
        const m = await this.store.get(e.messageId);
        if (!m || m.seq !== e.seq) this.problems.push(`${e.type} ${e.messageId} announced before it was stored`);
        if (e.type === "message_deleted" && !m?.deletedAt) this.problems.push("delete announced before it was stored");
      }
      if (e.type === "reaction_updated") {
        const r = (await this.store.reactions([e.messageId], e.userId)).get(e.messageId)?.find((x) => x.emoji === e.emoji);
        if (Boolean(r?.reacted) !== e.added) this.problems.push(`reaction ${e.added ? "add" : "removal"} announced before it was stored`);
      }
      if (e.type === "receipt_updated") {
        const row = await memberRow(this.env.sql, e.conversationId, e.userId);
        if (row.lastReadSeq !== e.readSeq) this.problems.push("receipt announced before it was stored");
      }
    }
    this.events.push(...events);
  }
}

forEachBackend("message service events", ["postgres", "mongo", "pglite"] as const, (backend) => {
  let env: StoreEnv;
  let sink: PersistThenAnnounceSink;
  let service: MessageService;
  let alice: string, bob: string, outsider: string;

  beforeAll(async () => {
    env = await openStoreEnv(backend);
    sink = new PersistThenAnnounceSink();
    sink.store = env.store;
    sink.env = env;
    service = new MessageService({ store: env.store, members: new SqlConversationStore(env.sql), events: sink, limits: { messageMaxChars: 4000 } });
    [alice, bob, outsider] = await insertUsers(env.sql, 3);
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  const types = () => sink.events.map((e) => e.type);

  it("announces each change once, after it is stored, and nothing for repeats, no-ops or failures", async () => {
    const conv = await insertConversation(env.sql, [alice, bob]);
    const input = { conversationId: conv, clientMessageId: "k1", content: "hi", parentMessageId: "", mentions: [], attachments: [] };
    const m = await service.send(alice, input);
    await service.send(alice, input); // repeat
    await service.edit(alice, m.id, "hi!");
    await service.addReaction(bob, m.id, "👍");
    await service.addReaction(bob, m.id, "👍"); // already there
    await service.removeReaction(bob, m.id, "👍");
    await service.removeReaction(bob, m.id, "👍"); // already gone
    await service.markRead(bob, conv, 1);
    await service.markRead(bob, conv, 1); // no move
    await expect(service.send(outsider, { ...input, clientMessageId: "k2" })).rejects.toBeInstanceOf(AppError);
    await expect(service.edit(bob, m.id, "not yours")).rejects.toBeInstanceOf(AppError);
    await service.delete(alice, m.id);
    await service.delete(alice, m.id); // already a tombstone

    expect(types()).toEqual(["message_created", "message_edited", "reaction_updated", "reaction_updated", "receipt_updated", "message_deleted"]);
    // Each event carries what subscribers need: the stored message, the reaction's count.
    expect(sink.events[0]).toMatchObject({
      type: "message_created",
      conversationId: conv,
      messageId: m.id,
      seq: 1,
      message: { id: m.id, content: "hi" },
    });
    expect(sink.events[1]).toMatchObject({ type: "message_edited", message: { content: "hi!" }, reactions: [] });
    expect(sink.events[2]).toMatchObject({ type: "reaction_updated", emoji: "👍", userId: bob, added: true, count: 1 });
    expect(sink.events[3]).toMatchObject({ added: false, count: 0 });
    expect(sink.events[4]).toEqual({ type: "receipt_updated", conversationId: conv, userId: bob, deliveredSeq: 1, readSeq: 1 });
    expect(sink.problems).toEqual([]);
  });
});
