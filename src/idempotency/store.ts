// Idempotency keys (table idempotency_keys, migration 0001): the first call
// with a key claims it, runs, and stores its response; a repeat within the
// TTL gets that stored response instead of running again. Always relational,
// also when messages live in MongoDB.

import type { SqlDatabase } from "../stores/sql/sql.ts";

export type Claim =
  | { state: "claimed" }
  | { state: "done"; response: Uint8Array }
  | { state: "pending" }
  /** The key was used with a different request. */
  | { state: "mismatch" };

export interface IdempotencyOptions {
  ttlMs: number;
  /** A claim without a response older than this is taken to be from a caller that died, and may be taken over. */
  leaseMs?: number;
  /** Minimum time between opportunistic sweeps of expired rows. */
  sweepEveryMs?: number;
}

export class IdempotencyStore {
  private readonly db: SqlDatabase;
  private readonly ttlMs: number;
  private readonly leaseMs: number;
  private readonly sweepEveryMs: number;
  private lastSweep = 0;

  constructor(db: SqlDatabase, opts: IdempotencyOptions) {
    this.db = db;
    this.ttlMs = opts.ttlMs;
    this.leaseMs = opts.leaseMs ?? 30_000;
    this.sweepEveryMs = opts.sweepEveryMs ?? 60_000;
  }

  async claim(userId: string, method: string, key: string, requestHash: string, again = true): Promise<Claim> {
    this.maybeSweep();
    // Insert, or take over a row that expired or whose holder died; otherwise read it.
    const { rows } = await this.db.query(
      `INSERT INTO idempotency_keys (user_id, method, key, request_hash, expires_at)
       VALUES ($1, $2, $3, $4, now() + $5 * interval '1 millisecond')
       ON CONFLICT (user_id, method, key) DO UPDATE
          SET request_hash = EXCLUDED.request_hash, response = NULL, created_at = now(), expires_at = EXCLUDED.expires_at
        WHERE idempotency_keys.expires_at < now()
           OR (idempotency_keys.response IS NULL AND idempotency_keys.created_at < now() - $6 * interval '1 millisecond')
       RETURNING 1`,
      [userId, method, key, requestHash, this.ttlMs, this.leaseMs],
    );
    if (rows.length > 0) return { state: "claimed" };
    const existing = await this.db.query<{ request_hash: string; response: Uint8Array | null }>(
      "SELECT request_hash, response FROM idempotency_keys WHERE user_id = $1 AND method = $2 AND key = $3",
      [userId, method, key],
    );
    const row = existing.rows[0];
    if (!row) {
      // Released or swept between the two statements: try once more.
      if (again) return this.claim(userId, method, key, requestHash, false);
      return { state: "pending" };
    }
    if (row.request_hash !== requestHash) return { state: "mismatch" };
    if (row.response === null) return { state: "pending" };
    return { state: "done", response: new Uint8Array(row.response) };
  }

  async complete(userId: string, method: string, key: string, response: Uint8Array): Promise<void> {
    await this.db.query("UPDATE idempotency_keys SET response = $4 WHERE user_id = $1 AND method = $2 AND key = $3", [userId, method, key, response]);
  }

  /** Frees a claim whose call failed, so a retry runs again. */
  async release(userId: string, method: string, key: string): Promise<void> {
    await this.db.query("DELETE FROM idempotency_keys WHERE user_id = $1 AND method = $2 AND key = $3 AND response IS NULL", [userId, method, key]);
  }

  async sweep(): Promise<number> {
    const res = await this.db.query("DELETE FROM idempotency_keys WHERE expires_at < now()");
    return res.rowCount;
  }

  /** Postgres has no TTL index: expired rows go in passing, at most once a minute per node. */
  private maybeSweep(): void {
    const now = Date.now();
    if (now - this.lastSweep < this.sweepEveryMs) return;
    this.lastSweep = now;
    this.sweep().catch(() => {});
  }
}
