// The audit trail (table audit_log, migration 0001): who did what to which
// entity, from where. Any feature records security-relevant changes here
// (auth events, membership and role changes).

import type { SqlExecutor } from "../stores/sql/sql.ts";

export interface AuditEntry {
  /** The acting user; null for anonymous actions such as a failed login. */
  actorId: string | null;
  /** Dotted verb, e.g. "auth.login.succeeded", "conversation.member.removed". */
  action: string;
  entityType: string;
  entityId: string;
  metadata?: Record<string, unknown>;
  clientAddress?: string | null;
}

export interface AuditRecord extends Required<Omit<AuditEntry, "metadata" | "clientAddress">> {
  id: number;
  metadata: Record<string, unknown>;
  clientAddress: string | null;
  createdAt: Date;
}

export class AuditLog {
  private readonly db: SqlExecutor;

  constructor(db: SqlExecutor) {
    this.db = db;
  }

  /**
   * Appends one entry. Pass `tx` to write it in the caller's transaction, so
   * the entry exists exactly when the change it describes does.
   */
  async record(entry: AuditEntry, tx: SqlExecutor = this.db): Promise<void> {
    await tx.query(
      `INSERT INTO audit_log (actor_id, action, entity_type, entity_id, metadata, client_address)
       VALUES ($1, $2, $3, $4, $5::jsonb, $6)`,
      [entry.actorId, entry.action, entry.entityType, entry.entityId, JSON.stringify(entry.metadata ?? {}), entry.clientAddress || null],
    );
  }

  /** Most recent first; for operators and tests. */
  async list(filter: { entityType?: string; entityId?: string; actorId?: string; action?: string; limit?: number } = {}): Promise<AuditRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      params.push(v);
      where.push(sql.replace("?", `$${params.length}`));
    };
    if (filter.entityType) add("entity_type = ?", filter.entityType);
    if (filter.entityId) add("entity_id = ?", filter.entityId);
    if (filter.actorId) add("actor_id = ?", filter.actorId);
    if (filter.action) add("action = ?", filter.action);
    params.push(Math.min(Math.max(filter.limit ?? 100, 1), 1000));
    const { rows } = await this.db.query<{
      id: number;
      actor_id: string | null;
      action: string;
      entity_type: string;
      entity_id: string;
      metadata: Record<string, unknown>;
      client_address: string | null;
      created_at: Date;
    }>(
      `SELECT id, actor_id, action, entity_type, entity_id, metadata, client_address, created_at FROM audit_log
       ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map((r) => ({
      id: r.id,
      actorId: r.actor_id,
      action: r.action,
      entityType: r.entity_type,
      entityId: r.entity_id,
      metadata: r.metadata,
      clientAddress: r.client_address,
      createdAt: r.created_at,
    }));
  }
}
