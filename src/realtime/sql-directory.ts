// MemberDirectory over the relational conversation tables (owned by the
// conversation module; realtime only reads memberships and moves the
// delivery watermark, which is its job: the `ack` frame).

import type { SqlDatabase } from "../stores/sql/sql.ts";
import { DEADLOCK_DETECTED, SERIALIZATION_FAILURE, sqlState } from "../stores/sql/sql.ts";
import type { LoggedEvent } from "../events/events.ts";
import type { DeliveredWatermark, MemberDirectory } from "./ports.ts";

export class SqlMemberDirectory implements MemberDirectory {
  private readonly sql: SqlDatabase;

  constructor(sql: SqlDatabase) {
    this.sql = sql;
  }

  /** Only conversations of workspaces the user is still a member of (docs/WORKSPACES.md). */
  async conversationsOf(userId: string): Promise<string[]> {
    const { rows } = await this.sql.query<{ conversation_id: string }>(
      `SELECT m.conversation_id FROM conversation_members m
         JOIN conversations c ON c.id = m.conversation_id
         JOIN workspace_members w ON w.workspace_id = c.workspace_id AND w.user_id = m.user_id
        WHERE m.user_id = $1`,
      [userId],
    );
    return rows.map((r) => r.conversation_id);
  }

  async markDelivered(userId: string, upTo: Map<string, number>): Promise<{ moved: DeliveredWatermark[]; events: LoggedEvent[] }> {
    if (upTo.size === 0) return { moved: [], events: [] };
    const ids = [...upTo.keys()];
    // Only rows that actually move are written; each move logs its receipt_updated in the same statement
    // (the head rows first, in id order, then the member rows: the lock order of src/events/sql-outbox.ts).
    for (let attempt = 1; ; attempt++) {
      try {
        const { rows } = await this.sql.query<{
          conversation_id: string;
          delivered_seq: number;
          last_read_seq: number;
          event_seq: number;
          created_at: Date;
        }>(
          `WITH l AS (
             SELECT 1 FROM conversation_event_heads WHERE conversation_id = ANY($2::uuid[]) ORDER BY conversation_id FOR NO KEY UPDATE
           ), mv AS (
             UPDATE conversation_members m
                SET delivered_seq = LEAST(v.seq, c.last_seq), updated_at = now()
               FROM unnest($2::uuid[], $3::bigint[]) AS v(id, seq), conversations c
              WHERE m.conversation_id = v.id AND m.user_id = $1 AND c.id = v.id
                AND m.delivered_seq < LEAST(v.seq, c.last_seq) AND (SELECT count(*) FROM l) >= 0
              RETURNING m.conversation_id, m.delivered_seq, m.last_read_seq
           ), h AS (
             INSERT INTO conversation_event_heads AS h (conversation_id, last_event_seq) SELECT conversation_id, 1 FROM mv
             ON CONFLICT (conversation_id) DO UPDATE SET last_event_seq = h.last_event_seq + 1
             RETURNING conversation_id, last_event_seq
           ), e AS (
             INSERT INTO conversation_events (conversation_id, event_seq, type, payload)
             SELECT h.conversation_id, h.last_event_seq, 'receipt_updated',
                    jsonb_build_object('userId', $1::uuid, 'deliveredSeq', mv.delivered_seq, 'readSeq', mv.last_read_seq)
               FROM h JOIN mv ON mv.conversation_id = h.conversation_id
             RETURNING conversation_id, event_seq, created_at
           )
           SELECT e.conversation_id, mv.delivered_seq, mv.last_read_seq, e.event_seq, e.created_at
             FROM e JOIN mv ON mv.conversation_id = e.conversation_id`,
          [userId, ids, ids.map((id) => upTo.get(id)!)],
        );
        const moved = rows.map((r) => ({
          conversationId: r.conversation_id,
          deliveredSeq: Number(r.delivered_seq),
          readSeq: Number(r.last_read_seq),
        }));
        const events = rows.map(
          (r, i): LoggedEvent => ({
            eventSeq: Number(r.event_seq),
            createdAt: r.created_at,
            event: {
              type: "receipt_updated",
              conversationId: r.conversation_id,
              userId,
              deliveredSeq: moved[i].deliveredSeq,
              readSeq: moved[i].readSeq,
            },
          }),
        );
        return { moved, events };
      } catch (err) {
        // Two acks of one user over the same conversations can lock rows in opposite orders.
        const state = sqlState(err);
        if ((state === DEADLOCK_DETECTED || state === SERIALIZATION_FAILURE) && attempt < 4) continue;
        throw err;
      }
    }
  }
}
