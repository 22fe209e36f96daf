// MessageStore on the relational store (Postgres or PGlite through SqlDatabase).
//
// seq: one statement locks the conversation row (serialising the senders of
// one conversation, on any number of nodes), inserts the message with
// last_seq + 1 and moves last_seq to it; it is atomic, so there is never a
// gap, and a repeat moves nothing. See docs/MESSAGES.md.

import { randomUUID } from "node:crypto";
import type { SqlDatabase } from "../stores/sql/sql.ts";
import { DEADLOCK_DETECTED, SERIALIZATION_FAILURE, sqlState } from "../stores/sql/sql.ts";
import { notFound } from "../shared/errors.ts";
import type { LastMessagePreview } from "../conversations/ports.ts";
import { PREVIEW_CHARS, sortReactions, type MessageStore } from "./store.ts";
import { markReadSql, membersAmongSql } from "./sql-ledger.ts";
import type {
  Attachment,
  ListPage,
  ListQuery,
  NewMessage,
  ReactionSummary,
  ReadResult,
  SearchPage,
  SearchQuery,
  SendResult,
  StoredMessage,
} from "./types.ts";

const COLS = `id, conversation_id, seq, sender_id, client_message_id, content, parent_message_id, mentions, attachments,
  reply_count, last_reply_at, created_at, edited_at, deleted_at`;
const M_COLS = COLS.split(",")
  .map((c) => `m.${c.trim()}`)
  .join(", ");

interface MessageRow {
  id: string;
  conversation_id: string;
  seq: number;
  sender_id: string;
  client_message_id: string;
  content: string;
  parent_message_id: string | null;
  mentions: string[] | null;
  attachments: Attachment[] | null;
  reply_count: number;
  last_reply_at: Date | null;
  created_at: Date;
  edited_at: Date | null;
  deleted_at: Date | null;
}

function toMessage(r: MessageRow): StoredMessage {
  return {
    id: r.id,
    conversationId: r.conversation_id,
    seq: Number(r.seq),
    senderId: r.sender_id,
    clientMessageId: r.client_message_id,
    content: r.content,
    parentMessageId: r.parent_message_id,
    mentions: r.mentions ?? [],
    attachments: r.attachments ?? [],
    replyCount: Number(r.reply_count),
    lastReplyAt: r.last_reply_at,
    createdAt: r.created_at,
    editedAt: r.edited_at,
    deletedAt: r.deleted_at,
  };
}

// One statement, so one round trip and atomic without BEGIN/COMMIT: lock the
// conversation row (FOR UPDATE queues the senders of this conversation, on
// every node; a waiter then reads the committed last_seq), insert with
// last_seq + 1, and only if that inserted a row (not a repeat: ON CONFLICT on
// the idempotency key) move last_seq and everything else that moves with a
// message. A repeat changes nothing, so no seq is burnt.
const SEND_SQL = `
WITH l AS (
  SELECT last_seq FROM conversations WHERE id = $2::uuid FOR UPDATE
), m AS (
  INSERT INTO messages (id, conversation_id, seq, sender_id, client_message_id, content, parent_message_id, mentions, attachments, created_at)
  SELECT $1::uuid, $2::uuid, l.last_seq + 1, $3::uuid, $4::text, $5::text, $6::uuid, $7::uuid[], $8::jsonb, $9::timestamptz FROM l
  ON CONFLICT (conversation_id, sender_id, client_message_id) DO NOTHING
  RETURNING ${COLS}
), c AS (
  UPDATE conversations SET last_seq = m.seq, last_message_at = GREATEST(conversations.last_message_at, m.created_at)
    FROM m
   WHERE conversations.id = m.conversation_id
), r AS (
  UPDATE conversation_members SET last_read_seq = GREATEST(last_read_seq, m.seq), delivered_seq = GREATEST(delivered_seq, m.seq)
    FROM m
   WHERE conversation_members.conversation_id = m.conversation_id AND conversation_members.user_id = m.sender_id
), a AS (
  UPDATE conversation_members SET archived = false, updated_at = now()
    FROM m
   WHERE conversation_members.conversation_id = m.conversation_id AND conversation_members.user_id <> m.sender_id
     AND conversation_members.archived
), p AS (
  UPDATE messages SET reply_count = messages.reply_count + 1, last_reply_at = GREATEST(messages.last_reply_at, m.created_at)
    FROM m
   WHERE messages.id = m.parent_message_id
)
SELECT * FROM m`;

const MAX_ATTEMPTS = 4;

export class SqlMessageStore implements MessageStore {
  readonly kind: "postgres" | "pglite";
  private readonly db: SqlDatabase;

  constructor(db: SqlDatabase) {
    this.db = db;
    this.kind = db.kind;
  }

  async init(): Promise<void> {}

  async send(n: NewMessage): Promise<SendResult> {
    const params = [
      randomUUID(),
      n.conversationId,
      n.senderId,
      n.clientMessageId,
      n.content,
      n.parentMessageId,
      n.mentions,
      JSON.stringify(n.attachments),
      n.createdAt,
    ];
    for (let attempt = 1; ; attempt++) {
      try {
        const { rows } = await this.db.query<MessageRow>(SEND_SQL, params);
        if (rows[0]) return { message: toMessage(rows[0]), created: true };
        const original = await this.byClientId(n.conversationId, n.senderId, n.clientMessageId);
        if (original) return { message: original, created: false };
        throw notFound("CONVERSATION_NOT_FOUND", "conversation not found"); // no conversations row to take a seq from
      } catch (err) {
        // Deadlocks with other writers of the same rows are rare and safe to retry.
        const state = sqlState(err);
        if ((state === DEADLOCK_DETECTED || state === SERIALIZATION_FAILURE) && attempt < MAX_ATTEMPTS) continue;
        throw err;
      }
    }
  }

  private async byClientId(conversationId: string, senderId: string, clientMessageId: string): Promise<StoredMessage | null> {
    const { rows } = await this.db.query<MessageRow>(
      `SELECT ${COLS} FROM messages WHERE conversation_id = $1 AND sender_id = $2 AND client_message_id = $3`,
      [conversationId, senderId, clientMessageId],
    );
    return rows[0] ? toMessage(rows[0]) : null;
  }

  async get(messageId: string): Promise<StoredMessage | null> {
    const { rows } = await this.db.query<MessageRow>(`SELECT ${COLS} FROM messages WHERE id = $1`, [messageId]);
    return rows[0] ? toMessage(rows[0]) : null;
  }

  async list(q: ListQuery): Promise<ListPage> {
    const params: unknown[] = [q.conversationId];
    const where = ["conversation_id = $1"];
    if (q.parentMessageId) {
      params.push(q.parentMessageId);
      where.push(`parent_message_id = $${params.length}`);
    }
    const ascending = q.direction === "after";
    if (ascending || q.seq > 0) {
      params.push(q.seq);
      where.push(`seq ${ascending ? ">" : "<"} $${params.length}`);
    }
    params.push(q.limit + 1);
    const { rows } = await this.db.query<MessageRow>(
      `SELECT ${COLS} FROM messages WHERE ${where.join(" AND ")} ORDER BY seq ${ascending ? "ASC" : "DESC"} LIMIT $${params.length}`,
      params,
    );
    const hasMore = rows.length > q.limit;
    return { messages: rows.slice(0, q.limit).map(toMessage), hasMore };
  }

  async edit(messageId: string, content: string, editedAt: Date): Promise<StoredMessage | null> {
    const { rows } = await this.db.query<MessageRow>(
      `UPDATE messages SET content = $2, edited_at = $3 WHERE id = $1 AND deleted_at IS NULL RETURNING ${COLS}`,
      [messageId, content, editedAt],
    );
    return rows[0] ? toMessage(rows[0]) : null;
  }

  async softDelete(messageId: string, deletedAt: Date): Promise<{ message: StoredMessage; changed: boolean } | null> {
    const { rows } = await this.db.query<MessageRow>(
      `WITH d AS (
         UPDATE messages SET content = '', attachments = '[]'::jsonb, mentions = '{}', deleted_at = $2
          WHERE id = $1 AND deleted_at IS NULL
          RETURNING ${COLS}
       ), x AS (
         DELETE FROM message_reactions WHERE message_id IN (SELECT id FROM d)
       )
       SELECT * FROM d`,
      [messageId, deletedAt],
    );
    if (rows[0]) return { message: toMessage(rows[0]), changed: true };
    const existing = await this.get(messageId);
    return existing ? { message: existing, changed: false } : null;
  }

  async addReaction(message: StoredMessage, userId: string, emoji: string, at: Date): Promise<boolean> {
    const res = await this.db.query(
      `INSERT INTO message_reactions (message_id, emoji, user_id, created_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (message_id, emoji, user_id) DO NOTHING`,
      [message.id, emoji, userId, at],
    );
    return res.rowCount > 0;
  }

  async removeReaction(message: StoredMessage, userId: string, emoji: string): Promise<boolean> {
    const res = await this.db.query("DELETE FROM message_reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3", [
      message.id,
      emoji,
      userId,
    ]);
    return res.rowCount > 0;
  }

  async reactions(messageIds: string[], viewerId: string): Promise<Map<string, ReactionSummary[]>> {
    const out = new Map<string, ReactionSummary[]>();
    if (messageIds.length === 0) return out;
    const { rows } = await this.db.query<{ message_id: string; emoji: string; count: number; reacted: boolean }>(
      `SELECT message_id, emoji, count(*)::int AS count, bool_or(user_id = $2) AS reacted
         FROM message_reactions WHERE message_id = ANY($1::uuid[])
        GROUP BY message_id, emoji`,
      [messageIds, viewerId],
    );
    for (const r of rows) {
      let list = out.get(r.message_id);
      if (!list) out.set(r.message_id, (list = []));
      list.push({ emoji: r.emoji, count: Number(r.count), reacted: r.reacted });
    }
    for (const list of out.values()) sortReactions(list);
    return out;
  }

  markRead(conversationId: string, userId: string, seq: number): Promise<ReadResult | null> {
    return markReadSql(this.db, conversationId, userId, seq);
  }

  membersAmong(conversationId: string, userIds: string[]): Promise<Set<string>> {
    return membersAmongSql(this.db, conversationId, userIds);
  }

  async search(q: SearchQuery): Promise<SearchPage> {
    const { rows } = await this.db.query<MessageRow>(
      `SELECT ${M_COLS} FROM messages m
        WHERE m.search @@ websearch_to_tsquery('simple', $1)
          AND m.deleted_at IS NULL
          AND m.conversation_id IN (SELECT conversation_id FROM conversation_members WHERE user_id = $2)
          AND ($3::uuid IS NULL OR m.conversation_id = $3::uuid)
          AND ($4::timestamptz IS NULL OR (m.created_at, m.seq, m.id) < ($4::timestamptz, $5::bigint, $6::uuid))
        ORDER BY m.created_at DESC, m.seq DESC, m.id DESC
        LIMIT $7`,
      [q.text, q.userId, q.conversationId, q.after?.createdAt ?? null, q.after?.seq ?? null, q.after?.id ?? null, q.limit + 1],
    );
    const page = rows.slice(0, q.limit).map(toMessage);
    const last = page[page.length - 1];
    return { messages: page, next: rows.length > q.limit && last ? { createdAt: last.createdAt, seq: last.seq, id: last.id } : null };
  }

  async previews(conversationIds: string[]): Promise<Map<string, LastMessagePreview>> {
    const out = new Map<string, LastMessagePreview>();
    if (conversationIds.length === 0) return out;
    // One index probe per conversation (conversation_id, seq DESC), in one round trip.
    const { rows } = await this.db.query<{
      id: string;
      conversation_id: string;
      seq: number;
      sender_id: string;
      content: string;
      created_at: Date;
      deleted_at: Date | null;
      attachment_count: number;
    }>(
      `SELECT m.id, m.conversation_id, m.seq, m.sender_id, left(m.content, ${PREVIEW_CHARS}) AS content, m.created_at, m.deleted_at,
              jsonb_array_length(m.attachments) AS attachment_count
         FROM unnest($1::uuid[]) AS c(id)
         CROSS JOIN LATERAL (SELECT * FROM messages WHERE conversation_id = c.id ORDER BY seq DESC LIMIT 1) m`,
      [conversationIds],
    );
    for (const r of rows) {
      out.set(r.conversation_id, {
        messageId: r.id,
        seq: Number(r.seq),
        senderId: r.sender_id,
        content: r.content,
        createdAt: r.created_at,
        deleted: r.deleted_at !== null,
        attachmentCount: Number(r.attachment_count),
      });
    }
    return out;
  }
}
