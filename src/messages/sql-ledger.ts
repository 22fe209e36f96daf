// Statements on the relational conversation tables (conversations,
// conversation_members) that both message adapters need: read watermarks,
// member filtering, and moving a conversation along after a message that was
// stored elsewhere (MongoDB). Watermarks stay relational in every mode: they
// are one small row per member, read by ListConversations next to the rest.

import type { SqlExecutor } from "../stores/sql/sql.ts";
import type { ReadResult } from "./types.ts";

interface WatermarkRow {
  last_read_seq: number;
  delivered_seq: number;
  last_seq: number;
}

/**
 * Moves the member's watermarks up to min(seq, conversations.last_seq); never
 * back. Reading implies delivery, so delivered_seq follows. Null for a non-member.
 */
export async function markReadSql(sql: SqlExecutor, conversationId: string, userId: string, seq: number): Promise<ReadResult | null> {
  // Only writes when the watermark actually moves, so repeated calls take no row lock.
  const moved = await sql.query<WatermarkRow>(
    `UPDATE conversation_members m
        SET last_read_seq = LEAST($3::bigint, c.last_seq),
            delivered_seq = GREATEST(m.delivered_seq, LEAST($3::bigint, c.last_seq)),
            updated_at = now()
       FROM conversations c
      WHERE c.id = m.conversation_id AND m.conversation_id = $1 AND m.user_id = $2
        AND m.last_read_seq < LEAST($3::bigint, c.last_seq)
      RETURNING m.last_read_seq, m.delivered_seq, c.last_seq`,
    [conversationId, userId, seq],
  );
  if (moved.rows[0]) return toRead(moved.rows[0], true);
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
export async function advanceAfterSend(
  sql: SqlExecutor,
  conversationId: string,
  senderId: string,
  seq: number,
  createdAt: Date,
): Promise<void> {
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
 * row lock is held until it ends) and moves what moves with a message: the
 * conversation's last_message_at (GREATEST), the sender's watermarks,
 * un-archiving for the other members. Null when there is no such conversation.
 * For messages stored outside this database (MongoDB): roll back if that store fails.
 */
export async function takeNextSeq(tx: SqlExecutor, conversationId: string, senderId: string, createdAt: Date): Promise<number | null> {
  const { rows } = await tx.query<{ last_seq: number }>(
    `WITH c AS (
       UPDATE conversations SET last_seq = last_seq + 1, last_message_at = GREATEST(last_message_at, $3::timestamptz)
        WHERE id = $1
        RETURNING last_seq
     ), r AS (
       UPDATE conversation_members SET last_read_seq = GREATEST(last_read_seq, c.last_seq), delivered_seq = GREATEST(delivered_seq, c.last_seq)
         FROM c
        WHERE conversation_id = $1 AND user_id = $2
     ), a AS (
       UPDATE conversation_members SET archived = false, updated_at = now()
         FROM c
        WHERE conversation_id = $1 AND user_id <> $2 AND archived
     )
     SELECT last_seq FROM c`,
    [conversationId, senderId, createdAt],
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
export async function memberConversationIds(sql: SqlExecutor, userId: string): Promise<string[]> {
  const { rows } = await sql.query<{ conversation_id: string }>("SELECT conversation_id FROM conversation_members WHERE user_id = $1", [userId]);
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
