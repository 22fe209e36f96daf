import { randomUUID } from "node:crypto";
import type { SqlDatabase } from "../stores/sql/sql.ts";
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

interface Row {
  id: string;
  user_id: string;
  conversation_id: string;
  type: NotificationType;
  message_ids: string[];
  message_count: number;
  sender_ids: string[];
  preview: string;
  last_seq: number;
  created_at: Date;
  window_ends_at: Date;
  batched_at: Date | null;
  seen_at: Date | null;
}

const toNotification = (r: Row): Notification => ({
  id: r.id,
  userId: r.user_id,
  conversationId: r.conversation_id,
  type: r.type,
  messageIds: r.message_ids,
  messageCount: r.message_count,
  senderIds: r.sender_ids,
  preview: r.preview,
  lastSeq: r.last_seq,
  createdAt: r.created_at,
  windowEndsAt: r.window_ends_at,
  batchedAt: r.batched_at,
  seenAt: r.seen_at,
});

/** SQL for the rank of a type column (TYPE_RANK: mention > thread_reply > direct_message). */
const rank = (col: string) =>
  `CASE ${col} ${Object.entries(TYPE_RANK)
    .map(([t, r]) => `WHEN '${t}' THEN ${r}`)
    .join(" ")} END`;

export class SqlNotificationStore implements NotificationStore {
  private readonly db: SqlDatabase;
  constructor(db: SqlDatabase) {
    this.db = db;
  }

  async addToBatch(e: BatchEntry): Promise<Notification> {
    const key = openBatchKey(e.userId, e.conversationId);
    const end = new Date(e.at.getTime() + e.windowMs);
    // One statement: concurrent messages for the open batch serialise on the unique key, and
    // a claim that closes it (markBatched) is serialised with them on the row: a message
    // folds into the batch before the claim, or opens the next one after it.
    const { rows } = await this.db.query<Row>(
      `INSERT INTO notifications AS n (id, user_id, conversation_id, batch_key, type, message_ids, message_count, sender_ids, preview, last_seq, created_at, window_ends_at)
       VALUES ($1, $2, $3, $4, $5, ARRAY[$6::uuid], 1, ARRAY[$7::uuid], $8, $9, $10, $11)
       ON CONFLICT (batch_key) DO UPDATE SET
         type = CASE WHEN ${rank("EXCLUDED.type")} > ${rank("n.type")} THEN EXCLUDED.type ELSE n.type END,
         message_ids = CASE WHEN cardinality(n.message_ids) < ${MAX_IDS_PER_NOTIFICATION} AND NOT ($6::uuid = ANY(n.message_ids))
                            THEN n.message_ids || $6::uuid ELSE n.message_ids END,
         message_count = n.message_count + CASE WHEN $6::uuid = ANY(n.message_ids) THEN 0 ELSE 1 END,
         sender_ids = CASE WHEN $7::uuid = ANY(n.sender_ids) THEN n.sender_ids ELSE n.sender_ids || $7::uuid END,
         preview = CASE WHEN $9 >= n.last_seq THEN EXCLUDED.preview ELSE n.preview END,
         last_seq = GREATEST(n.last_seq, $9),
         -- A new message in a batch already seen (while its window was open) makes it unseen again.
         seen_at = CASE WHEN $6::uuid = ANY(n.message_ids) THEN n.seen_at END
       RETURNING *`,
      [randomUUID(), e.userId, e.conversationId, key, e.type, e.messageId, e.senderId, e.preview, e.seq, e.at, end],
    );
    return toNotification(rows[0]);
  }

  async dueBatches(now: Date, limit: number): Promise<Notification[]> {
    const { rows } = await this.db.query<Row>(
      "SELECT * FROM notifications WHERE batched_at IS NULL AND window_ends_at <= $1 ORDER BY window_ends_at LIMIT $2",
      [now, limit],
    );
    return rows.map(toNotification);
  }

  async markBatched(id: string, at: Date): Promise<Notification | null> {
    const { rows } = await this.db.query<Row>(
      "UPDATE notifications SET batched_at = $2, batch_key = $3 WHERE id = $1 AND batched_at IS NULL RETURNING *",
      [id, at, closedBatchKey(id)],
    );
    return rows[0] ? toNotification(rows[0]) : null;
  }

  async list(userId: string, opts: { limit: number; after: ListCursor | null; unseenOnly: boolean }): Promise<Notification[]> {
    const params: unknown[] = [userId, opts.limit];
    let where = "user_id = $1";
    if (opts.unseenOnly) where += " AND seen_at IS NULL";
    if (opts.after) {
      params.push(opts.after.createdAt, opts.after.id);
      where += " AND (created_at, id) < ($3, $4)";
    }
    const { rows } = await this.db.query<Row>(`SELECT * FROM notifications WHERE ${where} ORDER BY created_at DESC, id DESC LIMIT $2`, params);
    return rows.map(toNotification);
  }

  async unseenCount(userId: string): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>("SELECT count(*)::int AS n FROM notifications WHERE user_id = $1 AND seen_at IS NULL", [
      userId,
    ]);
    return rows[0].n;
  }

  async markSeen(userId: string, opts: { ids: string[]; upTo: Date | null }, at: Date): Promise<number> {
    const res = await this.db.query(
      `UPDATE notifications SET seen_at = $2 WHERE user_id = $1 AND seen_at IS NULL
         AND (id = ANY($3::uuid[]) OR ($4::timestamptz IS NOT NULL AND created_at <= $4))`,
      [userId, at, opts.ids, opts.upTo],
    );
    return res.rowCount;
  }
}
