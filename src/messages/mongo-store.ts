// MessageStore with messages and reactions in MongoDB (the production store;
// FerretDB in development) while conversations and members stay relational.
//
// seq: MongoDB (FerretDB) has no multi-document transactions, so the seq is
// taken from conversations.last_seq in a relational transaction whose row lock
// is held while the message is inserted into MongoDB under the unique index
// {conversationId, seq}; the transaction commits only after the insert. Every
// committed last_seq is therefore a stored message (no gap), the index rules
// out duplicates, and the row lock queues senders on all nodes in arrival
// order (fair). If a node dies between insert and commit, last_seq lags (never
// leads) the stored messages; the next send notices (duplicate seq) and goes
// on after the stored max under the same lock. See docs/MESSAGES.md.

import { MongoServerError, type Collection, type Filter, type IndexDescription } from "mongodb";
import type { SqlDatabase } from "../stores/sql/sql.ts";
import { DEADLOCK_DETECTED, SERIALIZATION_FAILURE, sqlState } from "../stores/sql/sql.ts";
import { ensureIndexes, type MongoStore } from "../stores/mongo/mongo.ts";
import { notFound } from "../shared/errors.ts";
import type { LastMessagePreview } from "../conversations/ports.ts";
import { previewText, sortReactions, type MessageStore } from "./store.ts";
import { advanceAfterSend, lastSeqs, markReadSql, memberConversationIds, membersAmongSql, repairLastSeq, takeNextSeq } from "./sql-ledger.ts";
import type { SqlExecutor } from "../stores/sql/sql.ts";
import type { DomainEvent, LoggedEvent, ReactionCount } from "../events/events.ts";
import { appendEvents, lockHead } from "../events/sql-outbox.ts";
import { KeyedQueue } from "./keyed-queue.ts";
import { messageIdFor } from "./ids.ts";
import type {
  Attachment,
  ListPage,
  ListQuery,
  NewMessage,
  ReactionSummary,
  ReactorCursor,
  ReactorQuery,
  ReadResult,
  SearchPage,
  SearchQuery,
  SendResult,
  StoredMessage,
} from "./types.ts";

interface MessageDoc {
  _id: string;
  conversationId: string;
  seq: number;
  senderId: string;
  clientMessageId: string;
  content: string;
  parentMessageId: string | null;
  mentions: string[];
  attachments: Attachment[];
  replyCount: number;
  lastReplyAt: Date | null;
  createdAt: Date;
  editedAt: Date | null;
  deletedAt: Date | null;
}

interface ReactionDoc {
  messageId: string;
  conversationId: string;
  emoji: string;
  userId: string;
  createdAt: Date;
}

// Seed 000's indexes, adapted: seq is the keyset (and the proof of
// uniqueness); the idempotency key includes the sender; createdAt serves search.
const MESSAGE_INDEXES: IndexDescription[] = [
  { key: { conversationId: 1, seq: 1 }, name: "conversation_seq", unique: true },
  { key: { conversationId: 1, senderId: 1, clientMessageId: 1 }, name: "conversation_sender_client_id", unique: true },
  { key: { parentMessageId: 1, seq: 1 }, name: "thread_seq" },
  { key: { conversationId: 1, createdAt: -1, _id: -1 }, name: "conversation_created" },
  // Skipped where the server has no text index (FerretDB): search then uses the regex fallback.
  { key: { content: "text" }, name: "content_text", default_language: "none" },
];
const REACTION_INDEXES: IndexDescription[] = [{ key: { messageId: 1, emoji: 1, userId: 1 }, name: "message_emoji_user", unique: true }];

const DUPLICATE_KEY = 11000;
const SEARCH_MAX_TIME_MS = 5_000;

function isDuplicateKey(err: unknown): err is MongoServerError {
  return err instanceof MongoServerError && err.code === DUPLICATE_KEY;
}

function toMessage(d: MessageDoc): StoredMessage {
  return {
    id: d._id,
    conversationId: d.conversationId,
    seq: Number(d.seq),
    senderId: d.senderId,
    clientMessageId: d.clientMessageId,
    content: d.content,
    parentMessageId: d.parentMessageId ?? null,
    mentions: d.mentions ?? [],
    attachments: d.attachments ?? [],
    replyCount: Number(d.replyCount ?? 0),
    lastReplyAt: d.lastReplyAt ?? null,
    createdAt: d.createdAt,
    editedAt: d.editedAt ?? null,
    deletedAt: d.deletedAt ?? null,
  };
}

function createdEvent(m: StoredMessage): DomainEvent {
  return { type: "message_created", conversationId: m.conversationId, messageId: m.id, seq: m.seq, message: m };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

function newDoc(id: string, n: NewMessage, seq: number): MessageDoc {
  return {
    _id: id,
    conversationId: n.conversationId,
    seq,
    senderId: n.senderId,
    clientMessageId: n.clientMessageId,
    content: n.content,
    parentMessageId: n.parentMessageId,
    mentions: n.mentions,
    attachments: n.attachments,
    replyCount: 0,
    lastReplyAt: null,
    createdAt: n.createdAt,
    editedAt: null,
    deletedAt: null,
  };
}

/** Thrown inside the send transaction to roll back the seq increment of a repeat. */
class Repeat extends Error {}

/** The MongoDB writes, for crash tests (docs/MESSAGES.md "Events with MongoDB"). */
export type MongoWrite = "send" | "edit" | "delete" | "reaction_add" | "reaction_remove";

export interface MongoStoreHooks {
  /**
   * Called after the MongoDB write and before the relational COMMIT that logs
   * its event. Throwing there is a crash at that point: the relational
   * transaction rolls back, the MongoDB write stays.
   */
  afterMongoWrite?(op: MongoWrite): void | Promise<void>;
}

/** Most orphaned messages logged by one repair (the rest by the next). */
const REPAIR_BATCH = 500;
/** The sweep leaves the newest seconds alone (sends in flight hold the lock anyway; this only saves lock waits). */
const SWEEP_GRACE_MS = 5_000;

export class MongoMessageStore implements MessageStore {
  readonly kind = "mongo" as const;
  private readonly mongo: MongoStore;
  private readonly sql: SqlDatabase;
  private readonly messages: Collection<MessageDoc>;
  private readonly reactionsCol: Collection<ReactionDoc>;
  private readonly queue = new KeyedQueue();
  /** Inserts that found their seq taken (a lagging last_seq, or a repeat): for tests. */
  readonly stats = { seqConflicts: 0 };

  private readonly hooks: MongoStoreHooks;
  /** Where the previous sweep ended (null: never swept; the first covers `firstSweepMs`). */
  private sweptUntil: Date | null = null;
  private readonly firstSweepMs: number;

  constructor(mongo: MongoStore, sql: SqlDatabase, opts: { hooks?: MongoStoreHooks; firstSweepMs?: number } = {}) {
    this.mongo = mongo;
    this.sql = sql;
    this.hooks = opts.hooks ?? {};
    this.firstSweepMs = opts.firstSweepMs ?? 7 * 24 * 3600 * 1000;
    this.messages = mongo.db.collection<MessageDoc>("messages");
    this.reactionsCol = mongo.db.collection<ReactionDoc>("reactions");
  }

  async init(): Promise<void> {
    await ensureIndexes(this.mongo, "messages", MESSAGE_INDEXES);
    await ensureIndexes(this.mongo, "reactions", REACTION_INDEXES);
  }

  async send(n: NewMessage, out?: LoggedEvent[]): Promise<SendResult> {
    const id = messageIdFor(n.conversationId, n.senderId, n.clientMessageId);
    // One send per conversation at a time on this node: the others wait here
    // instead of each holding a pooled connection while queued on the row lock.
    const result = await this.queue.run(n.conversationId, () => this.sendUnderRowLock(id, n, out));
    if (!result.created && result.orphan) {
      // The original's send never committed (its node died between the MongoDB insert and
      // the relational COMMIT): log it now, with anything else lost the same way.
      await this.repair(n.conversationId, out);
    }
    return { message: result.message, created: result.created };
  }

  /**
   * In one relational transaction: take seq n from conversations.last_seq
   * (the row lock queues the senders of this conversation on every node, in
   * arrival order), insert into MongoDB with n, log message_created (and first
   * those of messages whose sends never committed, if n was taken), commit. A
   * repeat rolls back.
   */
  private async sendUnderRowLock(id: string, n: NewMessage, out?: LoggedEvent[]): Promise<SendResult & { orphan?: boolean }> {
    for (let attempt = 1; ; attempt++) {
      let repeat: StoredMessage | null = null;
      let taken = 0;
      try {
        const r = await this.sql.transaction(async (tx) => {
          const got = await takeNextSeq(tx, n.conversationId, n.senderId, n.createdAt);
          if (got === null) throw notFound("CONVERSATION_NOT_FOUND", "conversation not found");
          taken = got;
          let seq = taken;
          let orphans: StoredMessage[] = [];
          for (let tries = 1; ; tries++) {
            const doc = newDoc(id, n, seq);
            try {
              await this.messages.insertOne(doc);
              break;
            } catch (err) {
              if (!isDuplicateKey(err) || tries >= 3) throw err;
              this.stats.seqConflicts++;
              // Which key? MongoDB says (keyPattern); FerretDB does not, so look the id up.
              const seqTaken = err.keyPattern !== undefined && "seq" in err.keyPattern;
              const original = seqTaken ? null : await this.messages.findOne({ _id: id });
              if (original) {
                repeat = toMessage(original);
                throw new Repeat(); // rolls the increment back
              }
              // Seq taken but last_seq said otherwise: a node died between its
              // insert and its commit. Still holding the lock, log those
              // messages first and continue after the highest stored seq.
              orphans = await this.storedAfter(n.conversationId, taken - 1, REPAIR_BATCH);
              seq = (orphans.length ? orphans[orphans.length - 1].seq : await this.maxSeq(n.conversationId)) + 1;
            }
          }
          const message = toMessage(newDoc(id, n, seq));
          // The parent's counters move while this conversation's row lock is held: every reply to
          // the parent takes that lock, and FerretDB does not make concurrent $inc atomic.
          if (n.parentMessageId) {
            await this.messages.updateOne({ _id: n.parentMessageId }, { $inc: { replyCount: 1 }, $max: { lastReplyAt: n.createdAt } });
          }
          await this.hooks.afterMongoWrite?.("send");
          // Caught up with a lagging last_seq: record where it really is. (These rows are locked already.)
          for (const o of orphans) await advanceAfterSend(tx, n.conversationId, o.senderId, o.seq, o.createdAt);
          if (seq !== taken) await advanceAfterSend(tx, n.conversationId, n.senderId, seq, n.createdAt);
          const missing = orphans.length ? await this.unlogged(tx, n.conversationId, orphans) : [];
          const events = await appendEvents(tx, n.conversationId, [...missing.map(createdEvent), createdEvent(message)]);
          return { message, events };
        });
        out?.push(...r.events);
        return { message: r.message, created: true };
      } catch (err) {
        if (err instanceof Repeat && repeat) {
          const original: StoredMessage = repeat;
          // Above the relational last_seq: its own send never committed.
          return { message: original, created: false, orphan: original.seq >= taken };
        }
        // A deadlock can only come from taking the locks, before the insert: safe to retry.
        const state = sqlState(err);
        if ((state === DEADLOCK_DETECTED || state === SERIALIZATION_FAILURE) && attempt < 4) continue;
        throw err;
      }
    }
  }

  /** The messages among `stored` without a message_created in the log (one probe of its unique index). */
  private async unlogged(tx: SqlExecutor, conversationId: string, stored: StoredMessage[]): Promise<StoredMessage[]> {
    const { rows } = await tx.query<{ message_seq: number }>(
      "SELECT message_seq FROM conversation_events WHERE conversation_id = $1 AND message_seq = ANY($2::bigint[])",
      [conversationId, stored.map((m) => m.seq)],
    );
    const logged = new Set(rows.map((r) => Number(r.message_seq)));
    return stored.filter((m) => !logged.has(m.seq));
  }

  /** Stored messages with seq > afterSeq, oldest first. */
  private async storedAfter(conversationId: string, afterSeq: number, limit: number): Promise<StoredMessage[]> {
    const docs = await this.messages
      .find({ conversationId, seq: { $gt: afterSeq } })
      .sort({ seq: 1 })
      .limit(limit)
      .toArray();
    return docs.map(toMessage);
  }

  /**
   * Makes a conversation exact again after sends whose MongoDB insert happened
   * but whose relational transaction never committed: under the row lock (so
   * no send is in flight), every stored message above last_seq gets its
   * message_created and last_seq (and its sender's watermarks) catch up.
   * Returns how many were repaired.
   */
  async repair(conversationId: string, out?: LoggedEvent[]): Promise<number> {
    const r = await this.sql.transaction(async (tx) => {
      const { rows } = await tx.query<{ last_seq: number }>("SELECT last_seq FROM conversations WHERE id = $1 FOR NO KEY UPDATE", [conversationId]);
      if (!rows[0]) return [];
      await lockHead(tx, conversationId);
      const orphans = await this.storedAfter(conversationId, Number(rows[0].last_seq), REPAIR_BATCH);
      if (orphans.length === 0) return [];
      for (const o of orphans) await advanceAfterSend(tx, conversationId, o.senderId, o.seq, o.createdAt);
      return appendEvents(tx, conversationId, (await this.unlogged(tx, conversationId, orphans)).map(createdEvent));
    });
    out?.push(...r);
    return r.length;
  }

  /**
   * The sweep (every node, with the realtime maintenance job): conversations
   * with messages stored since the previous sweep whose relational last_seq is
   * behind them (a send that never committed and was never retried, with no
   * later send) are repaired. Returns the events logged.
   */
  async sweep(now = new Date()): Promise<LoggedEvent[]> {
    const from = this.sweptUntil ?? new Date(now.getTime() - this.firstSweepMs);
    const to = new Date(now.getTime() - SWEEP_GRACE_MS);
    if (to <= from) return [];
    const docs = await this.messages.find({ createdAt: { $gte: from, $lt: to } }, { projection: { conversationId: 1, seq: 1 } }).toArray();
    const top = new Map<string, number>();
    for (const d of docs) top.set(d.conversationId, Math.max(top.get(d.conversationId) ?? 0, Number(d.seq)));
    const relational = await lastSeqs(this.sql, [...top.keys()]);
    const out: LoggedEvent[] = [];
    for (const [c, seq] of top) {
      if (seq > (relational.get(c) ?? 0)) await this.repair(c, out);
    }
    this.sweptUntil = to;
    return out;
  }

  private async relationalLastSeq(conversationId: string): Promise<number> {
    return (await lastSeqs(this.sql, [conversationId])).get(conversationId) ?? 0;
  }

  private async maxSeq(conversationId: string): Promise<number> {
    const top = await this.messages
      .find({ conversationId }, { projection: { seq: 1 } })
      .sort({ seq: -1 })
      .limit(1)
      .next();
    return top ? Number(top.seq) : 0;
  }

  async get(messageId: string): Promise<StoredMessage | null> {
    const d = await this.messages.findOne({ _id: messageId });
    return d ? toMessage(d) : null;
  }

  async list(q: ListQuery): Promise<ListPage> {
    const filter: Filter<MessageDoc> = { conversationId: q.conversationId };
    if (q.parentMessageId) filter.parentMessageId = q.parentMessageId;
    const ascending = q.direction === "after";
    if (ascending) filter.seq = { $gt: q.seq };
    else if (q.seq > 0) filter.seq = { $lt: q.seq };
    const docs = await this.messages
      .find(filter)
      .sort({ seq: ascending ? 1 : -1 })
      .limit(q.limit + 1)
      .toArray();
    return { messages: docs.slice(0, q.limit).map(toMessage), hasMore: docs.length > q.limit };
  }

  async edit(messageId: string, content: string, editedAt: Date, out?: LoggedEvent[]): Promise<StoredMessage | null> {
    const r = await this.underConversationLock(messageId, async (tx, conversationId) => {
      const d = await this.messages.findOneAndUpdate(
        { _id: messageId, deletedAt: null },
        { $set: { content, editedAt } },
        { returnDocument: "after" },
      );
      if (!d) return null;
      await this.hooks.afterMongoWrite?.("edit");
      const message = toMessage(d);
      const reactions = await this.counts(messageId);
      const events = await appendEvents(tx, conversationId, [
        { type: "message_edited", conversationId, messageId, seq: message.seq, message, reactions },
      ]);
      return { message, events };
    });
    if (!r) return null;
    out?.push(...r.events);
    return r.message;
  }

  async softDelete(messageId: string, deletedAt: Date, out?: LoggedEvent[]): Promise<{ message: StoredMessage; changed: boolean } | null> {
    const r = await this.underConversationLock(messageId, async (tx, conversationId) => {
      const d = await this.messages.findOneAndUpdate(
        { _id: messageId, deletedAt: null },
        { $set: { content: "", attachments: [], mentions: [], deletedAt } },
        { returnDocument: "after" },
      );
      if (d) {
        // Tombstones show no reactions whether or not this cleanup ran.
        await this.reactionsCol.deleteMany({ messageId });
        await this.hooks.afterMongoWrite?.("delete");
        const message = toMessage(d);
        const events = await appendEvents(tx, conversationId, [{ type: "message_deleted", conversationId, messageId, seq: message.seq }]);
        return { message, changed: true, events };
      }
      const existing = await this.get(messageId);
      if (!existing) return null;
      // Already deleted: if that delete's transaction never committed, its event is missing; log it now.
      const events = (await this.logged(tx, conversationId, "message_deleted", { messageId }))
        ? []
        : await appendEvents(tx, conversationId, [{ type: "message_deleted", conversationId, messageId, seq: existing.seq }]);
      return { message: existing, changed: false, events };
    });
    if (!r) return null;
    out?.push(...r.events);
    return { message: r.message, changed: r.changed };
  }

  /**
   * Runs an update of a message while holding its conversation's relational
   * row lock, like sends (and their reply counters) do, and logs its event in
   * that transaction. FerretDB rewrites the whole document on update without
   * isolation, so two updates of one message can undo each other (an edit
   * racing a delete brought the content back); under the lock every write to
   * a conversation's messages is serialised, and reaction counts read under
   * it are exact at the event's place in the order.
   */
  private async underConversationLock<T>(messageId: string, fn: (tx: SqlExecutor, conversationId: string) => Promise<T | null>): Promise<T | null> {
    const found = await this.messages.findOne({ _id: messageId }, { projection: { conversationId: 1 } });
    if (!found) return null;
    return this.sql.transaction(async (tx) => {
      await tx.query("SELECT 1 FROM conversations WHERE id = $1 FOR NO KEY UPDATE", [found.conversationId]);
      return fn(tx, found.conversationId);
    });
  }

  /** Whether the log holds the latest event of `type` for these payload fields (retry repair; rare). */
  private async logged(tx: SqlExecutor, conversationId: string, type: string, match: Record<string, string>): Promise<boolean> {
    const { rows } = await tx.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM conversation_events WHERE conversation_id = $1 AND type = $2 AND payload @> $3::jsonb",
      [conversationId, type, JSON.stringify(match)],
    );
    return rows[0].n > 0;
  }

  /** The latest reaction_updated of (message, emoji, user) in the log: true added, false removed, null none. */
  private async lastReaction(tx: SqlExecutor, conversationId: string, messageId: string, emoji: string, userId: string): Promise<boolean | null> {
    const { rows } = await tx.query<{ added: boolean }>(
      `SELECT (payload->>'added')::boolean AS added FROM conversation_events
        WHERE conversation_id = $1 AND type = 'reaction_updated' AND payload @> $2::jsonb
        ORDER BY event_seq DESC LIMIT 1`,
      [conversationId, JSON.stringify({ messageId, emoji, userId })],
    );
    return rows[0] ? rows[0].added : null;
  }

  private async counts(messageId: string, emoji?: string): Promise<ReactionCount[]> {
    const match: Filter<ReactionDoc> = emoji === undefined ? { messageId } : { messageId, emoji };
    const rows = await this.reactionsCol
      .aggregate<{ _id: string; count: number }>([{ $match: match }, { $group: { _id: "$emoji", count: { $sum: 1 } } }])
      .toArray();
    return sortReactions(rows.map((r) => ({ emoji: r._id, count: Number(r.count), reacted: false }))).map(({ emoji: e, count }) => ({
      emoji: e,
      count,
    }));
  }

  /**
   * Reactions are written under the conversation's row lock too, so the count
   * each event carries is exact in event order. A repeat whose first write's
   * transaction never committed (the log's latest event for this reaction
   * says otherwise) logs the event it lacks.
   */
  async addReaction(message: StoredMessage, userId: string, emoji: string, at: Date, out?: LoggedEvent[]): Promise<boolean> {
    const r = await this.underConversationLock(message.id, async (tx, c) => {
      let added = true;
      try {
        await this.reactionsCol.insertOne({ messageId: message.id, conversationId: c, emoji, userId, createdAt: at });
        await this.hooks.afterMongoWrite?.("reaction_add");
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        added = false;
        if ((await this.lastReaction(tx, c, message.id, emoji, userId)) === true) return { added, events: [] };
      }
      const count = (await this.counts(message.id, emoji))[0]?.count ?? 0;
      const event: DomainEvent = { type: "reaction_updated", conversationId: c, messageId: message.id, emoji, userId, added: true, count };
      return { added, events: await appendEvents(tx, c, [event]) };
    });
    if (!r) return false;
    out?.push(...r.events);
    return r.added;
  }

  async removeReaction(message: StoredMessage, userId: string, emoji: string, out?: LoggedEvent[]): Promise<boolean> {
    const r = await this.underConversationLock(message.id, async (tx, c) => {
      const res = await this.reactionsCol.deleteOne({ messageId: message.id, emoji, userId });
      const removed = res.deletedCount > 0;
      if (removed) await this.hooks.afterMongoWrite?.("reaction_remove");
      else if ((await this.lastReaction(tx, c, message.id, emoji, userId)) !== true) return { removed, events: [] };
      const count = (await this.counts(message.id, emoji))[0]?.count ?? 0;
      const event: DomainEvent = { type: "reaction_updated", conversationId: c, messageId: message.id, emoji, userId, added: false, count };
      return { removed, events: await appendEvents(tx, c, [event]) };
    });
    if (!r) return false;
    out?.push(...r.events);
    return r.removed;
  }

  async reactors(query: ReactorQuery): Promise<ReactorCursor[]> {
    // Strings compare by their UTF-8 bytes here (no collation), as the SQL adapter's COLLATE "C".
    const and: Filter<ReactionDoc>[] = [{ messageId: query.messageId }];
    if (query.emoji !== null) and.push({ emoji: query.emoji });
    const after = query.after;
    if (after) and.push({ $or: [{ emoji: { $gt: after.emoji } }, { emoji: after.emoji, userId: { $gt: after.userId } }] });
    const rows = await this.reactionsCol
      .find({ $and: and }, { projection: { _id: 0, emoji: 1, userId: 1 } })
      .sort({ emoji: 1, userId: 1 })
      .limit(query.limit)
      .toArray();
    return rows.map((r) => ({ emoji: r.emoji, userId: r.userId }));
  }

  async reactions(messageIds: string[], viewerId: string): Promise<Map<string, ReactionSummary[]>> {
    const out = new Map<string, ReactionSummary[]>();
    if (messageIds.length === 0) return out;
    // Counts by $group/$sum (FerretDB has no $max/$cond accumulators) and the
    // viewer's own reactions: two queries for the whole page.
    const [counts, mine] = await Promise.all([
      this.reactionsCol
        .aggregate<{ _id: { m: string; e: string }; count: number }>([
          { $match: { messageId: { $in: messageIds } } },
          { $group: { _id: { m: "$messageId", e: "$emoji" }, count: { $sum: 1 } } },
        ])
        .toArray(),
      this.reactionsCol.find({ messageId: { $in: messageIds }, userId: viewerId }, { projection: { messageId: 1, emoji: 1 } }).toArray(),
    ]);
    const reacted = new Set(mine.map((r) => `${r.messageId}\n${r.emoji}`));
    for (const c of counts) {
      let list = out.get(c._id.m);
      if (!list) out.set(c._id.m, (list = []));
      list.push({ emoji: c._id.e, count: Number(c.count), reacted: reacted.has(`${c._id.m}\n${c._id.e}`) });
    }
    for (const list of out.values()) sortReactions(list);
    return out;
  }

  async markRead(conversationId: string, userId: string, seq: number, out?: LoggedEvent[]): Promise<ReadResult | null> {
    const relational = await this.relationalLastSeq(conversationId);
    if (seq > relational) {
      // The relational last_seq may lag the messages collection (a node died
      // between its two writes, or the write is in flight): catch it up to
      // what is really stored before clamping to it.
      const top = await this.messages
        .find({ conversationId, seq: { $gt: relational, $lte: seq } }, { projection: { seq: 1, createdAt: 1 } })
        .sort({ seq: -1 })
        .limit(1)
        .next();
      if (top) await repairLastSeq(this.sql, conversationId, Number(top.seq), top.createdAt);
    }
    return markReadSql(this.sql, conversationId, userId, seq, out);
  }

  membersAmong(conversationId: string, userIds: string[]): Promise<Set<string>> {
    return membersAmongSql(this.sql, conversationId, userIds);
  }

  async search(q: SearchQuery): Promise<SearchPage> {
    // Workspace scope: the caller's conversations in that workspace, from the
    // relational store (documents carry no workspace id; docs/WORKSPACES.md).
    const conversationIds =
      q.conversationId && !q.workspaceId
        ? [q.conversationId]
        : (await memberConversationIds(this.sql, q.userId, q.workspaceId ?? null)).filter((id) => !q.conversationId || id === q.conversationId);
    if (conversationIds.length === 0) return { messages: [], next: null };
    const terms = q.text.split(/\s+/).filter(Boolean);
    const clauses: Filter<MessageDoc>[] = [{ conversationId: { $in: conversationIds } }, { deletedAt: null }];
    if (this.mongo.capabilities.textIndex) {
      // Quoted terms are ANDed, like the relational adapter's websearch_to_tsquery.
      clauses.push({ $text: { $search: terms.map((t) => `"${t.replace(/"/g, "")}"`).join(" ") } });
    } else {
      // FerretDB fallback: every term, case-insensitively, within the caller's
      // conversations only, bounded by maxTimeMS. A term that starts with a
      // word character must start a word (so "3" does not match inside "c93",
      // and "number" matches "numbers", as word search would); one that starts
      // with punctuation, like "(approx)", is matched as written. \b is ASCII
      // in both MongoDB's PCRE and FerretDB's RE2.
      for (const t of terms) {
        const anchor = /^[A-Za-z0-9_]/.test(t) ? "\\b" : "";
        clauses.push({ content: { $regex: anchor + escapeRegex(t), $options: "i" } });
      }
    }
    if (q.after) {
      const { createdAt, seq, id } = q.after;
      clauses.push({
        $or: [{ createdAt: { $lt: createdAt } }, { createdAt, seq: { $lt: seq } }, { createdAt, seq, _id: { $lt: id } }],
      });
    }
    const docs = await this.messages
      .find({ $and: clauses })
      .sort({ createdAt: -1, seq: -1, _id: -1 })
      .limit(q.limit + 1)
      .maxTimeMS(SEARCH_MAX_TIME_MS)
      .toArray();
    const page = docs.slice(0, q.limit).map(toMessage);
    const last = page[page.length - 1];
    return { messages: page, next: docs.length > q.limit && last ? { createdAt: last.createdAt, seq: last.seq, id: last.id } : null };
  }

  async previews(conversationIds: string[]): Promise<Map<string, LastMessagePreview>> {
    const out = new Map<string, LastMessagePreview>();
    if (conversationIds.length === 0) return out;
    // The relational last_seq says where the last message is; ">=" rather than
    // "=" also finds messages it lags behind. One SQL and one Mongo query.
    const seqs = await lastSeqs(this.sql, conversationIds);
    const or = [...seqs].map(([conversationId, seq]) => ({ conversationId, seq: { $gte: Math.max(1, seq) } }));
    if (or.length === 0) return out;
    const docs = await this.messages
      .find({ $or: or }, { projection: { _id: 1, conversationId: 1, seq: 1, senderId: 1, content: 1, createdAt: 1, deletedAt: 1, attachments: 1 } })
      .toArray();
    for (const d of docs) {
      const cur = out.get(d.conversationId);
      if (cur && cur.seq >= d.seq) continue;
      out.set(d.conversationId, {
        messageId: d._id,
        seq: Number(d.seq),
        senderId: d.senderId,
        content: previewText(d.content),
        createdAt: d.createdAt,
        deleted: Boolean(d.deletedAt),
        attachmentCount: d.attachments?.length ?? 0,
      });
    }
    return out;
  }
}
