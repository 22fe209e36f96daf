// MessageStore on the relational store (Postgres or PGlite through SqlDatabase).
//
// seq: one statement locks the conversation row (serialising the senders of
// one conversation, on any number of nodes), inserts the message with
// last_seq + 1 and moves last_seq to it; it is atomic, so there is never a
// gap, and a repeat moves nothing. See docs/MESSAGES.md.

import { randomUUID } from "node:crypto";
import type { SqlDatabase, SqlExecutor } from "../stores/sql/sql.ts";
import { DEADLOCK_DETECTED, SERIALIZATION_FAILURE, sqlState } from "../stores/sql/sql.ts";
import { notFound } from "../shared/errors.ts";
import type { LastMessagePreview } from "../conversations/ports.ts";
import { PREVIEW_CHARS, sortReactions, type MessageStore } from "./store.ts";
import { markReadSql, membersAmongSql } from "./sql-ledger.ts";
import type { LoggedEvent, ReactionCount } from "../events/events.ts";
import { appendEvents, lockHead, messageJsonSql } from "../events/sql-outbox.ts";
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

// One statement, so one round trip and one commit: lock the conversation row
// (FOR NO KEY UPDATE queues the senders of this conversation, on every node,
// without blocking the foreign-key checks of event inserts; a waiter
// then reads the committed last_seq), insert with last_seq + 1, and only if
// that inserted a row (not a repeat: ON CONFLICT on the idempotency key) move
// last_seq and everything else that moves with a message, and log the
// message_created event (the stored message in its payload) with the next
// event_seq: the transactional outbox. A repeat changes nothing, so no seq and
// no event_seq is burnt. The locks are taken in the order of
// src/events/sql-outbox.ts (conversation, head, members, parent message): the
// main query runs m, h and e; c, r, a and p (which read e) run after it, and
// the member-activity trigger (migration 0007) at the end of the statement.
// `r` also sets the sender's own activity copy to what the trigger will set
// (the conversation's new last_message_at, in a small conversation), so the
// trigger finds that row current and the sender's row gets one new version
// per send, not two. The statement is prepared once per connection (named):
// parsing and planning it on every call cost Postgres more than running it
// (bench/send-cost.ts).
export const SEND_SQL = `
WITH l AS (
  SELECT last_seq, last_message_at, member_count FROM conversations
   WHERE id = $2::uuid AND EXISTS (SELECT 1 FROM conversation_members WHERE conversation_id = $2::uuid AND user_id = $3::uuid)
     AND EXISTS (SELECT 1 FROM workspace_members w WHERE w.workspace_id = conversations.workspace_id AND w.user_id = $3::uuid)
     FOR NO KEY UPDATE
), m AS (
  INSERT INTO messages (id, conversation_id, seq, sender_id, client_message_id, content, parent_message_id, mentions, attachments, created_at)
  SELECT $1::uuid, $2::uuid, l.last_seq + 1, $3::uuid, $4::text, $5::text, $6::uuid, $7::uuid[], $8::jsonb, $9::timestamptz FROM l
  ON CONFLICT (conversation_id, sender_id, client_message_id) DO NOTHING
  RETURNING ${COLS}
), h AS (
  INSERT INTO conversation_event_heads AS h (conversation_id, last_event_seq, logged_message_seq)
  SELECT m.conversation_id, 1, m.seq FROM m
  ON CONFLICT (conversation_id) DO UPDATE
    SET last_event_seq = h.last_event_seq + 1, logged_message_seq = GREATEST(h.logged_message_seq, excluded.logged_message_seq)
  RETURNING last_event_seq
), e AS (
  INSERT INTO conversation_events (conversation_id, event_seq, type, payload, message_seq)
  SELECT m.conversation_id, h.last_event_seq, 'message_created',
         jsonb_build_object('messageId', m.id, 'seq', m.seq, 'message', ${messageJsonSql("m")}), m.seq
    FROM m, h
  RETURNING event_seq, created_at
), c AS (
  UPDATE conversations SET last_seq = m.seq, last_message_at = GREATEST(conversations.last_message_at, m.created_at)
    FROM m
   WHERE conversations.id = m.conversation_id AND (SELECT count(*) FROM e) >= 0
), r AS (
  UPDATE conversation_members SET last_read_seq = GREATEST(last_read_seq, m.seq), delivered_seq = GREATEST(delivered_seq, m.seq),
         activity_at = CASE WHEN l.member_count <= conversation_fanout_max() THEN GREATEST(l.last_message_at, m.created_at) ELSE activity_at END
    FROM m, l
   WHERE conversation_members.conversation_id = m.conversation_id AND conversation_members.user_id = m.sender_id
     AND (SELECT count(*) FROM e) >= 0
), a AS (
  UPDATE conversation_members SET archived = false, updated_at = now()
    FROM m
   WHERE conversation_members.conversation_id = m.conversation_id AND conversation_members.user_id <> m.sender_id
     AND conversation_members.archived AND (SELECT count(*) FROM e) >= 0
), p AS (
  UPDATE messages SET reply_count = messages.reply_count + 1, last_reply_at = GREATEST(messages.last_reply_at, m.created_at)
    FROM m
   WHERE messages.id = m.parent_message_id AND (SELECT count(*) FROM e) >= 0
)
SELECT m.*, e.event_seq AS ev_seq, e.created_at AS ev_at FROM m, e`;

const MAX_ATTEMPTS = 4;

function retryable(err: unknown): boolean {
  const state = sqlState(err);
  return state === DEADLOCK_DETECTED || state === SERIALIZATION_FAILURE;
}

/** Takes the head lock of the message's conversation; its id, or null when there is no such message. */
async function lockHeadOfMessage(tx: SqlExecutor, messageId: string): Promise<string | null> {
  const { rows } = await tx.query<{ conversation_id: string }>(
    `INSERT INTO conversation_event_heads AS h (conversation_id) SELECT conversation_id FROM messages WHERE id = $1
     ON CONFLICT (conversation_id) DO UPDATE SET last_event_seq = h.last_event_seq
     RETURNING conversation_id`,
    [messageId],
  );
  return rows[0]?.conversation_id ?? null;
}

export class SqlMessageStore implements MessageStore {
  readonly kind: "postgres" | "pglite";
  private readonly db: SqlDatabase;

  constructor(db: SqlDatabase) {
    this.db = db;
    this.kind = db.kind;
  }

  async init(): Promise<void> {}

  async send(n: NewMessage, out?: LoggedEvent[]): Promise<SendResult> {
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
        const { rows } = await this.db.query<MessageRow & { ev_seq: number; ev_at: Date }>(SEND_SQL, params, { name: "message_send" });
        if (rows[0]) {
          const message = toMessage(rows[0]);
          out?.push({
            eventSeq: Number(rows[0].ev_seq),
            createdAt: rows[0].ev_at,
            event: { type: "message_created", conversationId: message.conversationId, messageId: message.id, seq: message.seq, message },
          });
          return { message, created: true };
        }
        // Nothing inserted: a repeat of a member's send, or no such conversation, or not a member.
        const original = await this.byClientId(n.conversationId, n.senderId, n.clientMessageId);
        if (original) return { message: original, created: false };
        throw notFound("CONVERSATION_NOT_FOUND", "conversation not found");
      } catch (err) {
        // Deadlocks with other writers of the same rows are rare and safe to retry.
        if (retryable(err) && attempt < MAX_ATTEMPTS) continue;
        throw err;
      }
    }
  }

  /** Runs fn in a transaction, retrying deadlocks (the whole transaction is rolled back first). */
  private async tx<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction(fn);
      } catch (err) {
        if (retryable(err) && attempt < MAX_ATTEMPTS) continue;
        throw err;
      }
    }
  }

  /** The original of a repeated send, if the sender is (still) a member: a removed member's repeat finds nothing. */
  private async byClientId(conversationId: string, senderId: string, clientMessageId: string): Promise<StoredMessage | null> {
    const { rows } = await this.db.query<MessageRow>(
      `SELECT ${COLS} FROM messages
        WHERE conversation_id = $1 AND sender_id = $2 AND client_message_id = $3
          AND EXISTS (SELECT 1 FROM conversation_members WHERE conversation_id = $1 AND user_id = $2)
          AND EXISTS (SELECT 1 FROM conversations c JOIN workspace_members w ON w.workspace_id = c.workspace_id AND w.user_id = $2 WHERE c.id = $1)`,
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

  async edit(messageId: string, content: string, editedAt: Date, out?: LoggedEvent[]): Promise<StoredMessage | null> {
    // Head lock first, so the reaction counts read next are the ones at this event's place in the order.
    const r = await this.tx(async (tx) => {
      const conversationId = await lockHeadOfMessage(tx, messageId);
      if (!conversationId) return null;
      const { rows } = await tx.query<MessageRow & { reactions: ReactionCount[] | null }>(
        `UPDATE messages SET content = $2, edited_at = $3 WHERE id = $1 AND deleted_at IS NULL
         RETURNING ${COLS}, (SELECT jsonb_agg(jsonb_build_object('emoji', x.emoji, 'count', x.n))
                               FROM (SELECT emoji, count(*)::int AS n FROM message_reactions WHERE message_id = $1 GROUP BY emoji) x) AS reactions`,
        [messageId, content, editedAt],
      );
      if (!rows[0]) return null;
      const message = toMessage(rows[0]);
      const reactions = sortReactions((rows[0].reactions ?? []).map((x) => ({ ...x, reacted: false }))).map(({ emoji, count }) => ({ emoji, count }));
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
    const r = await this.tx(async (tx) => {
      const conversationId = await lockHeadOfMessage(tx, messageId);
      if (!conversationId) return null;
      const { rows } = await tx.query<MessageRow>(
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
      if (!rows[0]) {
        const existing = await tx.query<MessageRow>(`SELECT ${COLS} FROM messages WHERE id = $1`, [messageId]);
        return existing.rows[0] ? { message: toMessage(existing.rows[0]), changed: false, events: [] } : null;
      }
      const message = toMessage(rows[0]);
      const events = await appendEvents(tx, conversationId, [{ type: "message_deleted", conversationId, messageId, seq: message.seq }]);
      return { message, changed: true, events };
    });
    if (!r) return null;
    out?.push(...r.events);
    return { message: r.message, changed: r.changed };
  }

  async addReaction(message: StoredMessage, userId: string, emoji: string, at: Date, out?: LoggedEvent[]): Promise<boolean> {
    const events = await this.tx(async (tx) => {
      await lockHead(tx, message.conversationId);
      // Under the head lock: the count is exact at this event's place in the order. A tombstone takes none.
      const { rows } = await tx.query<{ added: number; before: number }>(
        `WITH i AS (
           INSERT INTO message_reactions (message_id, emoji, user_id, created_at)
           SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM messages WHERE id = $1 AND deleted_at IS NULL)
           ON CONFLICT (message_id, emoji, user_id) DO NOTHING
           RETURNING 1
         )
         SELECT (SELECT count(*) FROM i)::int AS added,
                (SELECT count(*) FROM message_reactions WHERE message_id = $1 AND emoji = $2)::int AS before`,
        [message.id, emoji, userId, at],
      );
      if (rows[0].added === 0) return null;
      const count = rows[0].before + 1;
      const c = message.conversationId;
      return appendEvents(tx, c, [{ type: "reaction_updated", conversationId: c, messageId: message.id, emoji, userId, added: true, count }]);
    });
    if (!events) return false;
    out?.push(...events);
    return true;
  }

  async removeReaction(message: StoredMessage, userId: string, emoji: string, out?: LoggedEvent[]): Promise<boolean> {
    const events = await this.tx(async (tx) => {
      await lockHead(tx, message.conversationId);
      const { rows } = await tx.query<{ removed: number; before: number }>(
        `WITH d AS (DELETE FROM message_reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3 RETURNING 1)
         SELECT (SELECT count(*) FROM d)::int AS removed,
                (SELECT count(*) FROM message_reactions WHERE message_id = $1 AND emoji = $2)::int AS before`,
        [message.id, emoji, userId],
      );
      if (rows[0].removed === 0) return null;
      const count = Math.max(0, rows[0].before - 1);
      const c = message.conversationId;
      return appendEvents(tx, c, [{ type: "reaction_updated", conversationId: c, messageId: message.id, emoji, userId, added: false, count }]);
    });
    if (!events) return false;
    out?.push(...events);
    return true;
  }

  async reactors(query: ReactorQuery): Promise<ReactorCursor[]> {
    // Emoji in byte order (COLLATE "C": UTF-8 bytes, i.e. code points), as MongoDB compares strings.
    const { rows } = await this.db.query<{ emoji: string; user_id: string }>(
      `SELECT emoji, user_id::text AS user_id FROM message_reactions
        WHERE message_id = $1
          AND ($2::text IS NULL OR emoji = $2)
          AND ($3::text IS NULL OR emoji COLLATE "C" > $3::text COLLATE "C" OR (emoji = $3 AND user_id > $4::uuid))
        ORDER BY emoji COLLATE "C", user_id
        LIMIT $5`,
      [query.messageId, query.emoji, query.after?.emoji ?? null, query.after?.userId ?? null, query.limit],
    );
    return rows.map((r) => ({ emoji: r.emoji, userId: r.user_id }));
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

  markRead(conversationId: string, userId: string, seq: number, out?: LoggedEvent[]): Promise<ReadResult | null> {
    return markReadSql(this.db, conversationId, userId, seq, out);
  }

  membersAmong(conversationId: string, userIds: string[]): Promise<Set<string>> {
    return membersAmongSql(this.db, conversationId, userIds);
  }

  async search(q: SearchQuery): Promise<SearchPage> {
    const { rows } = await this.db.query<MessageRow>(
      `SELECT ${M_COLS} FROM messages m
        WHERE m.search @@ websearch_to_tsquery('simple', $1)
          AND m.deleted_at IS NULL
          AND m.conversation_id IN (SELECT cm.conversation_id FROM conversation_members cm JOIN conversations c ON c.id = cm.conversation_id
                                     WHERE cm.user_id = $2 AND ($8::uuid IS NULL OR c.workspace_id = $8::uuid))
          AND ($3::uuid IS NULL OR m.conversation_id = $3::uuid)
          AND ($4::timestamptz IS NULL OR (m.created_at, m.seq, m.id) < ($4::timestamptz, $5::bigint, $6::uuid))
        ORDER BY m.created_at DESC, m.seq DESC, m.id DESC
        LIMIT $7`,
      [q.text, q.userId, q.conversationId, q.after?.createdAt ?? null, q.after?.seq ?? null, q.after?.id ?? null, q.limit + 1, q.workspaceId ?? null],
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
