// Statements on the relational conversation tables (conversations,
// conversation_members) that both message adapters need: read watermarks,
// member filtering, and moving a conversation along after a message that was
// stored elsewhere (MongoDB). Watermarks stay relational in every mode: they
// are one small row per member, read by ListConversations next to the rest.

import type { SqlExecutor } from "../stores/sql/sql.ts";
import type { ReadResult } from "./types.ts";
import type { LoggedEvent } from "../events/events.ts";

interface WatermarkRow {
  last_read_seq: number;
  delivered_seq: number;
  last_seq: number;
}

/**
 * Moves the member's watermarks up to min(seq, conversations.last_seq); never
 * back. Reading implies delivery, so delivered_seq follows. Null for a non-member.
 */
export async function markReadSql(
  sql: SqlExecutor,
  conversationId: string,
  userId: string,
  seq: number,
  out?: LoggedEvent[],
): Promise<ReadResult | null> {
  // Only writes when the watermark actually moves. A move logs its receipt_updated in the same statement
  // (lock order of src/events/sql-outbox.ts: the conversation's event head, then the member row).
  const moved = await sql.query<WatermarkRow & { ev_seq: number; ev_at: Date }>(
    `WITH l AS (
       SELECT 1 FROM conversation_event_heads WHERE conversation_id = $1 FOR NO KEY UPDATE
     ), mv AS (
       UPDATE conversation_members m
          SET last_read_seq = LEAST($3::bigint, c.last_seq),
              delivered_seq = GREATEST(m.delivered_seq, LEAST($3::bigint, c.last_seq)),
              updated_at = now()
         FROM conversations c
        WHERE c.id = m.conversation_id AND m.conversation_id = $1 AND m.user_id = $2
          AND m.last_read_seq < LEAST($3::bigint, c.last_seq) AND (SELECT count(*) FROM l) >= 0
        RETURNING m.conversation_id, m.last_read_seq, m.delivered_seq, c.last_seq
     ), h AS (
       INSERT INTO conversation_event_heads AS h (conversation_id, last_event_seq) SELECT conversation_id, 1 FROM mv
       ON CONFLICT (conversation_id) DO UPDATE SET last_event_seq = h.last_event_seq + 1
       RETURNING last_event_seq
     ), e AS (
       INSERT INTO conversation_events (conversation_id, event_seq, type, payload)
       SELECT mv.conversation_id, h.last_event_seq, 'receipt_updated',
              jsonb_build_object('userId', $2::uuid, 'deliveredSeq', mv.delivered_seq, 'readSeq', mv.last_read_seq)
         FROM mv, h
       RETURNING event_seq, created_at
     )
     SELECT mv.last_read_seq, mv.delivered_seq, mv.last_seq, e.event_seq AS ev_seq, e.created_at AS ev_at FROM mv, e`,
    [conversationId, userId, seq],
    { name: "message_mark_read" },
  );
  const r = moved.rows[0];
  if (r) {
    out?.push({
      eventSeq: Number(r.ev_seq),
      createdAt: r.ev_at,
      event: { type: "receipt_updated", conversationId, userId, deliveredSeq: Number(r.delivered_seq), readSeq: Number(r.last_read_seq) },
    });
    return toRead(r, true);
  }
  const cur = await sql.query<WatermarkRow>(
    `SELECT m.last_read_seq, m.delivered_seq, c.last_seq
       FROM conversation_members m JOIN conversations c ON c.id = m.conversation_id
      WHERE m.conversation_id = $1 AND m.user_id = $2`,
    [conversationId, userId],
  );
  return cur.rows[0] ? toRead(cur.rows[0], false) : null;
}

function toRead(r: WatermarkRow, changed: boolean): ReadResult {
  return { lastReadSeq: Number(r.last_read_seq), deliveredSeq: Number(r.delivered_seq), lastSeq: Number(r.last_seq), changed };
}

export async function membersAmongSql(sql: SqlExecutor, conversationId: string, userIds: string[]): Promise<Set<string>> {
  if (userIds.length === 0) return new Set();
  const { rows } = await sql.query<{ user_id: string }>(
    "SELECT user_id FROM conversation_members WHERE conversation_id = $1 AND user_id = ANY($2::uuid[])",
    [conversationId, userIds],
  );
  return new Set(rows.map((r) => r.user_id));
}

/**
 * After a message with `seq` was stored outside this database: move the
 * conversation's last_seq/last_message_at (GREATEST, so concurrent and
 * repeated calls commute and a lagging row catches up), the sender's
 * watermarks, and un-archive it for the other members. One statement.
 */
export async function advanceAfterSend(sql: SqlExecutor, conversationId: string, senderId: string, seq: number, createdAt: Date): Promise<void> {
  await sql.query(
    `WITH c AS (
       UPDATE conversations
          SET last_seq = GREATEST(last_seq, $3::bigint), last_message_at = GREATEST(last_message_at, $4::timestamptz)
        WHERE id = $1 AND (last_seq < $3::bigint OR last_message_at < $4::timestamptz)
        RETURNING 1
     ), r AS (
       UPDATE conversation_members
          SET last_read_seq = GREATEST(last_read_seq, $3::bigint), delivered_seq = GREATEST(delivered_seq, $3::bigint)
        WHERE conversation_id = $1 AND user_id = $2 AND (last_read_seq < $3::bigint OR delivered_seq < $3::bigint)
        RETURNING 1
     )
     UPDATE conversation_members SET archived = false, updated_at = now()
      WHERE conversation_id = $1 AND user_id <> $2 AND archived`,
    [conversationId, senderId, seq, createdAt],
  );
}

/**
 * Takes the next seq of a conversation inside the caller's transaction (the
 * row lock, and the conversation's event head lock, are held until it ends) and moves what moves with a message: the
 * conversation's last_message_at (GREATEST), the sender's watermarks,
 * un-archiving for the other members. Null when there is no such conversation
 * or the sender is not a member of it (checked in the same statement).
 * For messages stored outside this database (MongoDB): roll back if that store fails.
 */
export async function takeNextSeq(tx: SqlExecutor, conversationId: string, senderId: string, createdAt: Date): Promise<number | null> {
  const { rows } = await tx.query<{ last_seq: number }>(
    `WITH c AS (
       UPDATE conversations SET last_seq = last_seq + 1, last_message_at = GREATEST(last_message_at, $3::timestamptz)
        WHERE id = $1 AND EXISTS (SELECT 1 FROM conversation_members WHERE conversation_id = $1 AND user_id = $2)
          AND EXISTS (SELECT 1 FROM workspace_members w WHERE w.workspace_id = conversations.workspace_id AND w.user_id = $2)
        RETURNING last_seq
     ), h AS (
       SELECT 1 FROM conversation_event_heads WHERE conversation_id = $1 AND (SELECT count(*) FROM c) > 0 FOR NO KEY UPDATE
     ), r AS (
       UPDATE conversation_members SET last_read_seq = GREATEST(last_read_seq, c.last_seq), delivered_seq = GREATEST(delivered_seq, c.last_seq)
         FROM c
        WHERE conversation_id = $1 AND user_id = $2 AND (SELECT count(*) FROM h) >= 0
     ), a AS (
       UPDATE conversation_members SET archived = false, updated_at = now()
         FROM c
        WHERE conversation_id = $1 AND user_id <> $2 AND archived AND (SELECT count(*) FROM h) >= 0
     )
     SELECT last_seq FROM c`,
    [conversationId, senderId, createdAt],
    { name: "message_take_seq" },
  );
  return rows[0] ? Number(rows[0].last_seq) : null;
}

/** The relational last_seq of many conversations (0 for unknown ids). */
export async function lastSeqs(sql: SqlExecutor, conversationIds: string[]): Promise<Map<string, number>> {
  if (conversationIds.length === 0) return new Map();
  const { rows } = await sql.query<{ id: string; last_seq: number }>("SELECT id, last_seq FROM conversations WHERE id = ANY($1::uuid[])", [
    conversationIds,
  ]);
  return new Map(rows.map((r) => [r.id, Number(r.last_seq)]));
}

/** Ids of every conversation the user belongs to. */
/** The user's conversations; with `workspaceId`, only those of that workspace. */
export async function memberConversationIds(sql: SqlExecutor, userId: string, workspaceId: string | null = null): Promise<string[]> {
  const { rows } = await sql.query<{ conversation_id: string }>(
    `SELECT cm.conversation_id FROM conversation_members cm JOIN conversations c ON c.id = cm.conversation_id
      WHERE cm.user_id = $1 AND ($2::uuid IS NULL OR c.workspace_id = $2::uuid)`,
    [userId, workspaceId],
  );
  return rows.map((r) => r.conversation_id);
}

/**
 * Brings a lagging conversations.last_seq up to a seq known to be stored
 * (Mongo mode, after a node died between its two writes).
 */
export async function repairLastSeq(sql: SqlExecutor, conversationId: string, seq: number, createdAt: Date): Promise<void> {
  await sql.query(
    `UPDATE conversations SET last_seq = GREATEST(last_seq, $2::bigint), last_message_at = GREATEST(last_message_at, $3::timestamptz)
      WHERE id = $1 AND last_seq < $2::bigint`,
    [conversationId, seq, createdAt],
  );
}
