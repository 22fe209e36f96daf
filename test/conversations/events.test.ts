// The domain layer on the real SQL store (Postgres and PGlite): which domain
// events each change announces, that they are announced only after the
// change is committed (persist, then publish), never for refused changes,
// and that a failing sink cannot undo or fail a committed change.

import { afterAll, beforeAll, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { forEachBackend } from "../support/backends.ts";
import type { DomainEvent, EventSink, LoggedEvent } from "../../src/events/events.ts";
import type { SqlDatabase } from "../../src/stores/sql/sql.ts";
import { SqlConversationStore } from "../../src/conversations/sql-store.ts";
import { Workspaces } from "../../src/workspaces/service.ts";
import { SqlWorkspaceStore } from "../../src/workspaces/sql-store.ts";
import { Conversations } from "../../src/conversations/service.ts";
import { noPreviews } from "../../src/conversations/ports.ts";
import { AppError } from "../../src/shared/errors.ts";
import { failure, insertUsers, openMigratedSql } from "./helpers.ts";

const LIMITS = { groupMaxMembers: 50, channelMaxMembers: 50, addMembersMaxBatch: 10, titleMaxChars: 80, descriptionMaxChars: 1000 };

/** Records each event with what the database showed when it was published. */
class CheckingSink implements EventSink {
  readonly events: DomainEvent[] = [];
  readonly memberCountAtPublish: number[] = [];
  private readonly db: SqlDatabase;
  constructor(db: SqlDatabase) {
    this.db = db;
  }
  async track<T>(_c: string[], write: () => Promise<T>, eventsOf: (r: T) => LoggedEvent[]): Promise<T> {
    const r = await write();
    const logged = eventsOf(r);
    for (const l of logged) {
      // The event is in the log with the change (same transaction).
      const { rows } = await this.db.query<{ type: string }>("SELECT type FROM conversation_events WHERE conversation_id = $1 AND event_seq = $2", [
        l.event.conversationId,
        l.eventSeq,
      ]);
      if (rows[0]?.type !== l.event.type) throw new Error(`${l.event.type} #${l.eventSeq} is not in the log`);
    }
    await this.publish(logged.map((l) => l.event));
    return r;
  }
  private async publish(events: DomainEvent[]): Promise<void> {
    for (const e of events) {
      // A separate connection: only committed data is visible here.
      const { rows } = await this.db.query<{ member_count: number }>("SELECT member_count FROM conversations WHERE id = $1", [e.conversationId]);
      this.memberCountAtPublish.push(rows[0]?.member_count ?? -1);
      this.events.push(e);
    }
  }
  /** The events taken so far; a conversation_updated must carry the conversation after the change (then left out for comparison). */
  take(): DomainEvent[] {
    this.memberCountAtPublish.length = 0;
    return this.events.splice(0).map((e) => {
      if (e.type !== "conversation_updated") return e;
      if (!e.conversation || e.conversation.id !== e.conversationId) throw new Error("conversation_updated without the conversation");
      return { type: e.type, conversationId: e.conversationId };
    });
  }
}

forEachBackend("conversation events and audit (domain on the real store)", ["postgres", "pglite"] as const, (backend) => {
  let db: SqlDatabase;
  let cleanup: () => Promise<void>;
  let sink: CheckingSink;
  let svc: Conversations;

  beforeAll(async () => {
    ({ db, cleanup } = await openMigratedSql(backend));
    sink = new CheckingSink(db);
    svc = new Conversations({
      store: new SqlConversationStore(db),
      events: sink,
      previews: noPreviews,
      workspaces: new Workspaces({ store: new SqlWorkspaceStore(db) }),
      limits: LIMITS,
    });
  });
  afterAll(async () => {
    await cleanup?.();
  });

  it("announces membership and conversation changes after they are committed", async () => {
    const [owner, m1, m2, joiner] = await insertUsers(db, 4);
    const a = { userId: owner, clientAddress: "192.0.2.1" };

    const ch = (
      await svc.create(a, { type: "channel", title: `ev-${randomUUID().slice(0, 6)}`, description: "", memberIds: [m1], visibility: "public" })
    ).conversation;
    expect(sink.take()).toEqual([
      { type: "member_joined", conversationId: ch.id, userId: owner, role: "owner" },
      { type: "member_joined", conversationId: ch.id, userId: m1, role: "member" },
    ]);

    await svc.addMembers(a, { conversationId: ch.id, userIds: [m1, m2] });
    expect(sink.memberCountAtPublish).toEqual([3, 3]); // committed before publishing
    expect(sink.take()).toEqual([
      { type: "member_joined", conversationId: ch.id, userId: m2, role: "member" },
      { type: "conversation_updated", conversationId: ch.id },
    ]);
    await svc.addMembers(a, { conversationId: ch.id, userIds: [m1, m2] });
    expect(sink.take()).toEqual([]); // nothing changed, nothing announced

    await svc.join({ userId: joiner }, ch.id);
    expect(sink.memberCountAtPublish).toEqual([4, 4]);
    expect(sink.take()).toEqual([
      { type: "member_joined", conversationId: ch.id, userId: joiner, role: "member" },
      { type: "conversation_updated", conversationId: ch.id },
    ]);

    await svc.update(a, { conversationId: ch.id, description: "about" });
    expect(sink.take()).toEqual([{ type: "conversation_updated", conversationId: ch.id }]);
    await svc.update(a, { conversationId: ch.id, description: "about" });
    expect(sink.take()).toEqual([]);

    await svc.setMemberRole(a, { conversationId: ch.id, userId: m1, role: "admin" });
    expect(sink.take()).toEqual([{ type: "conversation_updated", conversationId: ch.id }]);

    await svc.removeMember(a, { conversationId: ch.id, userId: m2 });
    expect(sink.memberCountAtPublish).toEqual([3, 3]);
    expect(sink.take()).toEqual([
      { type: "member_left", conversationId: ch.id, userId: m2, removed: true },
      { type: "conversation_updated", conversationId: ch.id },
    ]);
    await svc.leave({ userId: joiner }, ch.id);
    expect(sink.take()).toEqual([
      { type: "member_left", conversationId: ch.id, userId: joiner, removed: false },
      { type: "conversation_updated", conversationId: ch.id },
    ]);

    const dm = await svc.getOrCreateDirect(a, m1);
    expect(sink.take()).toEqual([
      { type: "member_joined", conversationId: dm.view.conversation.id, userId: owner, role: "member" },
      { type: "member_joined", conversationId: dm.view.conversation.id, userId: m1, role: "member" },
    ]);
    await svc.getOrCreateDirect({ userId: m1 }, owner);
    expect(sink.take()).toEqual([]);

    // Membership and role changes are in the audit log with actor and address.
    const { rows } = await db.query<{ action: string; actor_id: string; client_address: string | null; metadata: Record<string, unknown> }>(
      "SELECT action, actor_id, client_address, metadata FROM audit_log WHERE entity_type = 'conversation' AND entity_id = $1 ORDER BY id",
      [ch.id],
    );
    expect(rows.map((r) => [r.action, r.actor_id, r.client_address])).toEqual([
      ["conversation.created", owner, "192.0.2.1"],
      ["conversation.members.added", owner, "192.0.2.1"],
      ["conversation.member.joined", joiner, null],
      ["conversation.updated", owner, "192.0.2.1"],
      ["conversation.role.changed", owner, "192.0.2.1"],
      ["conversation.member.removed", owner, "192.0.2.1"],
      ["conversation.member.left", joiner, null],
    ]);
    expect(rows[4].metadata).toEqual({ userId: m1, from: "member", to: "admin" });
  });

  it("announces nothing for a refused change", async () => {
    const [owner, member, other] = await insertUsers(db, 3);
    const g = (await svc.create({ userId: owner }, { type: "group", title: "", description: "", memberIds: [member], visibility: "unspecified" }))
      .conversation;
    sink.take();
    const refusals = [
      () => svc.addMembers({ userId: member }, { conversationId: g.id, userIds: [other] }),
      () => svc.removeMember({ userId: member }, { conversationId: g.id, userId: owner }),
      () => svc.leave({ userId: owner }, g.id),
      () => svc.update({ userId: other }, { conversationId: g.id, title: "x" }),
    ];
    for (const refuse of refusals) expect(await failure(refuse())).toBeInstanceOf(AppError);
    expect(sink.take()).toEqual([]);
  });

  it("a conversation_updated carries the conversation as committed (nothing re-read to announce it)", async () => {
    const [owner, member] = await insertUsers(db, 2);
    const a = { userId: owner };
    const g = (await svc.create(a, { type: "group", title: "before", description: "", memberIds: [], visibility: "unspecified" })).conversation;
    sink.events.splice(0);
    await svc.addMembers(a, { conversationId: g.id, userIds: [member] });
    await svc.update(a, { conversationId: g.id, title: "after" });
    const updates = sink.events.filter((e) => e.type === "conversation_updated");
    expect(updates.map((e) => [e.conversation?.memberCount, e.conversation?.title])).toEqual([
      [2, "before"],
      [2, "after"],
    ]);
    sink.events.splice(0);
  });
});
