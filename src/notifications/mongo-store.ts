import { randomUUID } from "node:crypto";
import type { Collection, IndexDescription } from "mongodb";
import { ensureIndexes, type MongoStore } from "../stores/mongo/mongo.ts";
import type { NotificationStore } from "./store.ts";
import {
  closedBatchKey,
  MAX_IDS_PER_NOTIFICATION,
  openBatchKey,
  TYPE_RANK,
  type BatchEntry,
  type ListCursor,
  type Notification,
  type NotificationType,
} from "./types.ts";

/** One notification (a batch): created once, by whoever inserts it first. */
interface HeaderDoc {
  _id: string;
  /** The batch's own key (its entries point to it); never reused. */
  batchKey: string;
  /** openBatchKey(user, conversation) while the batch is open (unique: one open batch), closedBatchKey(id) once claimed. */
  openKey: string;
  userId: string;
  conversationId: string;
  createdAt: Date;
  windowEndsAt: Date;
  batchedAt: Date | null;
  seenAt: Date | null;
}

/** One message folded into a batch; _id = batchKey|messageId, so a repeat is rejected. */
interface EntryDoc {
  _id: string;
  batchKey: string;
  typeRank: number;
  messageId: string;
  senderId: string;
  seq: number;
  preview: string;
  at: Date;
}

const TYPE_BY_RANK = Object.fromEntries(Object.entries(TYPE_RANK).map(([t, r]) => [r, t])) as Record<number, NotificationType>;

const isDuplicate = (err: unknown) => (err as { code?: number }).code === 11000;

/**
 * Notifications in MongoDB (seed: notifications), written with inserts only.
 * FerretDB 1.x does not make concurrent single-document updates atomic (see
 * MongoCapabilities.atomicUpdates), so counters are not kept with $inc: each
 * message is its own entry document under a unique id, and a notification's
 * count, senders, type and preview are computed from its entries when read.
 * Claims (flushing a batch once) are inserts under a unique id too. The same
 * code is exact on MongoDB and on FerretDB.
 */
export class MongoNotificationStore implements NotificationStore {
  private readonly headers: Collection<HeaderDoc>;
  private readonly entries: Collection<EntryDoc>;
  private readonly claims: Collection<{ _id: string }>;

  private constructor(mongo: MongoStore) {
    this.headers = mongo.db.collection<HeaderDoc>("notifications");
    this.entries = mongo.db.collection<EntryDoc>("notification_entries");
    this.claims = mongo.db.collection<{ _id: string }>("notification_claims");
  }

  static async open(mongo: MongoStore): Promise<MongoNotificationStore> {
    // One index per call: FerretDB 1.24 drops the connection when a createIndexes
    // with several existing indexes is repeated (a second node, a restart).
    // Batches written before leading-edge windows have no openKey: give each its own closed
    // one, or the unique index below could not be built (they still flush by window end).
    const legacy = await mongo.db
      .collection<HeaderDoc>("notifications")
      .find({ openKey: { $exists: false } }, { projection: { _id: 1 } })
      .toArray();
    for (const h of legacy)
      await mongo.db.collection<HeaderDoc>("notifications").updateOne({ _id: h._id }, { $set: { openKey: closedBatchKey(h._id) } });
    const specs: IndexDescription[] = [
      { key: { batchKey: 1 }, name: "batch_key", unique: true },
      { key: { openKey: 1 }, name: "open_key", unique: true },
      { key: { userId: 1, createdAt: -1, _id: -1 }, name: "user_recent" },
      { key: { batchedAt: 1, windowEndsAt: 1 }, name: "due" },
    ];
    for (const spec of specs) await ensureIndexes(mongo, "notifications", [spec]);
    await ensureIndexes(mongo, "notification_entries", [{ key: { batchKey: 1, seq: 1 }, name: "batch_seq" }]);
    return new MongoNotificationStore(mongo);
  }

  async addToBatch(e: BatchEntry): Promise<Notification> {
    const openKey = openBatchKey(e.userId, e.conversationId);
    for (let attempt = 1; ; attempt++) {
      // The open batch, or a new one opened by this message (the unique openKey makes one win a race).
      let header = await this.headers.findOne({ openKey });
      if (!header) {
        const id = randomUUID();
        const fresh: HeaderDoc = {
          _id: id,
          batchKey: `${e.userId}:${e.conversationId}:${id}`,
          openKey,
          userId: e.userId,
          conversationId: e.conversationId,
          createdAt: e.at,
          windowEndsAt: new Date(e.at.getTime() + e.windowMs),
          batchedAt: null,
          seenAt: null,
        };
        try {
          await this.headers.insertOne(fresh);
          header = fresh;
        } catch (err) {
          if (!isDuplicate(err) || attempt >= 5) throw err;
          continue; // another node opened it first: fold into theirs
        }
      }
      const entryId = `${header.batchKey}|${e.messageId}`;
      let added = true;
      await this.entries
        .insertOne({
          _id: entryId,
          batchKey: header.batchKey,
          typeRank: TYPE_RANK[e.type],
          messageId: e.messageId,
          senderId: e.senderId,
          seq: e.seq,
          preview: e.preview,
          at: e.at,
        })
        .catch((err) => {
          if (!isDuplicate(err)) throw err;
          added = false;
        });
      // A new message in a batch already seen (while its window was open) makes it unseen again.
      if (added && header.seenAt !== null) await this.headers.updateOne({ _id: header._id }, { $set: { seenAt: null } });
      // Still open after the entry landed: the claim, which closes it before reading its
      // entries, will read this one. Closed meanwhile: the push may have been assembled
      // without it, so it moves to the next batch (at worst pushed twice, never lost).
      const open = await this.headers.findOne({ _id: header._id, openKey });
      if (open) return (await this.assemble([open]))[0];
      if (attempt >= 5) throw new Error("notification batch kept closing under this message");
      await this.entries.deleteOne({ _id: entryId });
    }
  }

  async dueBatches(now: Date, limit: number): Promise<Notification[]> {
    const docs = await this.headers
      .find({ batchedAt: null, windowEndsAt: { $lte: now } })
      .sort({ windowEndsAt: 1 })
      .limit(limit)
      .toArray();
    return this.assemble(docs);
  }

  async markBatched(id: string, at: Date): Promise<Notification | null> {
    try {
      await this.claims.insertOne({ _id: `batched:${id}` });
    } catch (err) {
      if (isDuplicate(err)) return null;
      throw err;
    }
    // Only the claimer writes here. Closing first, reading the entries after: see addToBatch.
    await this.headers.updateOne({ _id: id }, { $set: { batchedAt: at, openKey: closedBatchKey(id) } });
    const header = await this.headers.findOne({ _id: id });
    const [n] = header ? await this.assemble([header]) : [];
    return n ?? null;
  }

  async list(userId: string, opts: { limit: number; after: ListCursor | null; unseenOnly: boolean }): Promise<Notification[]> {
    const filter: Record<string, unknown> = { userId };
    if (opts.unseenOnly) filter.seenAt = null;
    if (opts.after) {
      filter.$or = [{ createdAt: { $lt: opts.after.createdAt } }, { createdAt: opts.after.createdAt, _id: { $lt: opts.after.id } }];
    }
    const docs = await this.headers.find(filter).sort({ createdAt: -1, _id: -1 }).limit(opts.limit).toArray();
    return this.assemble(docs);
  }

  async unseenCount(userId: string): Promise<number> {
    return this.headers.countDocuments({ userId, seenAt: null });
  }

  async markSeen(userId: string, opts: { ids: string[]; upTo: Date | null }, at: Date): Promise<number> {
    const or: Record<string, unknown>[] = [];
    if (opts.ids.length > 0) or.push({ _id: { $in: opts.ids } });
    if (opts.upTo) or.push({ createdAt: { $lte: opts.upTo } });
    if (or.length === 0) return 0;
    const res = await this.headers.updateMany({ userId, seenAt: null, $or: or }, { $set: { seenAt: at } });
    return res.modifiedCount;
  }

  /** Headers plus their entries (one query for the whole page), folded into notifications. */
  private async assemble(headers: HeaderDoc[]): Promise<Notification[]> {
    if (headers.length === 0) return [];
    const entries = await this.entries
      .find({ batchKey: { $in: headers.map((h) => h.batchKey) } })
      .sort({ batchKey: 1, seq: 1 })
      .toArray();
    const byBatch = new Map<string, EntryDoc[]>();
    for (const e of entries) {
      const list = byBatch.get(e.batchKey) ?? [];
      list.push(e);
      byBatch.set(e.batchKey, list);
    }
    const out: Notification[] = [];
    for (const h of headers) {
      const list = byBatch.get(h.batchKey);
      if (!list || list.length === 0) continue;
      const last = list[list.length - 1];
      out.push({
        id: h._id,
        userId: h.userId,
        conversationId: h.conversationId,
        type: TYPE_BY_RANK[Math.max(...list.map((e) => e.typeRank))],
        messageIds: list.slice(0, MAX_IDS_PER_NOTIFICATION).map((e) => e.messageId),
        messageCount: list.length,
        senderIds: [...new Set(list.map((e) => e.senderId))],
        preview: last.preview,
        lastSeq: last.seq,
        createdAt: h.createdAt,
        windowEndsAt: h.windowEndsAt,
        batchedAt: h.batchedAt,
        seenAt: h.seenAt,
      });
    }
    return out;
  }
}
