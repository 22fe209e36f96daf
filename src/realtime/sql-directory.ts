// MemberDirectory over the relational conversation tables (owned by the
// conversation module; realtime only reads memberships and moves the
// delivery watermark, which is its job: the `ack` frame).

import type { SqlDatabase } from "../stores/sql/sql.ts";
import type { DeliveredWatermark, MemberDirectory } from "./ports.ts";

export class SqlMemberDirectory implements MemberDirectory {
  private readonly sql: SqlDatabase;

  constructor(sql: SqlDatabase) {
    this.sql = sql;
  }

  async conversationsOf(userId: string): Promise<string[]> {
    const { rows } = await this.sql.query<{ conversation_id: string }>(
      "SELECT conversation_id FROM conversation_members WHERE user_id = $1",
      [userId],
    );
    return rows.map((r) => r.conversation_id);
  }

  async markDelivered(userId: string, upTo: Map<string, number>): Promise<DeliveredWatermark[]> {
    if (upTo.size === 0) return [];
    const ids = [...upTo.keys()];
    // Only rows that actually move are written (and locked).
    const { rows } = await this.sql.query<{ conversation_id: string; delivered_seq: number; last_read_seq: number }>(
      `UPDATE conversation_members m
          SET delivered_seq = LEAST(v.seq, c.last_seq), updated_at = now()
         FROM unnest($2::uuid[], $3::bigint[]) AS v(id, seq), conversations c
        WHERE m.conversation_id = v.id AND m.user_id = $1 AND c.id = v.id
          AND m.delivered_seq < LEAST(v.seq, c.last_seq)
        RETURNING m.conversation_id, m.delivered_seq, m.last_read_seq`,
      [userId, ids, ids.map((id) => upTo.get(id)!)],
    );
    return rows.map((r) => ({ conversationId: r.conversation_id, deliveredSeq: Number(r.delivered_seq), readSeq: Number(r.last_read_seq) }));
  }
}
