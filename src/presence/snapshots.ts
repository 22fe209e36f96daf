import type { SqlDatabase } from "../stores/sql/sql.ts";
import type { PresenceStatus } from "./types.ts";

/**
 * The relational snapshot of presence (seed 003: user_presence), written on
 * online/offline transitions, so last_seen_at survives a Redis restart. Never
 * used for real-time decisions.
 */
export interface PresenceSnapshots {
  save(userId: string, status: PresenceStatus, lastSeenAt: Date): Promise<void>;
  lastSeen(userIds: string[]): Promise<Map<string, Date>>;
}

export class SqlPresenceSnapshots implements PresenceSnapshots {
  private readonly db: SqlDatabase;
  constructor(db: SqlDatabase) {
    this.db = db;
  }

  async save(userId: string, status: PresenceStatus, lastSeenAt: Date): Promise<void> {
    await this.db.query(
      `INSERT INTO user_presence (user_id, status, last_seen_at, updated_at) VALUES ($1, $2, $3, now())
       ON CONFLICT (user_id) DO UPDATE SET status = EXCLUDED.status,
         last_seen_at = GREATEST(user_presence.last_seen_at, EXCLUDED.last_seen_at), updated_at = now()`,
      [userId, status, lastSeenAt],
    );
  }

  async lastSeen(userIds: string[]): Promise<Map<string, Date>> {
    const { rows } = await this.db.query<{ user_id: string; last_seen_at: Date }>(
      "SELECT user_id, last_seen_at FROM user_presence WHERE user_id = ANY($1::uuid[])",
      [userIds],
    );
    return new Map(rows.map((r) => [r.user_id, r.last_seen_at]));
  }
}
