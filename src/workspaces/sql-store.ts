// WorkspaceStore on the relational store (Postgres or PGlite via SqlDatabase).

import { randomUUID } from "node:crypto";
import type { SqlDatabase, SqlExecutor } from "../stores/sql/sql.ts";
import { sqlState, UNIQUE_VIOLATION } from "../stores/sql/sql.ts";
import { AuditLog } from "../audit/audit-log.ts";
import {
  SlugTaken,
  type AuditEntry,
  type LockedWorkspace,
  type NewInvite,
  type NewWorkspace,
  type WorkspacePatch,
  type WorkspaceStore,
} from "./store.ts";
import type { InviteRecord, InviteRole, WorkspaceMemberRecord, WorkspaceRecord, WorkspaceRole } from "./types.ts";

const WS_COLS = "w.id, w.name, w.slug, w.description, w.is_default, w.member_count, w.created_at, w.updated_at";
const MEMBER_COLS = "m.workspace_id, m.user_id, m.role, m.joined_at";
const INVITE_COLS = `i.id, i.workspace_id, w.name AS workspace_name, i.role, i.expires_at, i.max_uses, i.use_count, i.created_by,
  i.created_at, i.invitee_user_id, i.invitee_email`;

interface WsRow {
  id: string;
  name: string;
  slug: string;
  description: string;
  is_default: boolean;
  member_count: number;
  created_at: Date;
  updated_at: Date;
}
interface MemberRow {
  workspace_id: string;
  user_id: string;
  role: WorkspaceRole;
  joined_at: Date;
}
interface InviteRow {
  id: string;
  workspace_id: string;
  workspace_name: string;
  role: InviteRole;
  expires_at: Date;
  max_uses: number;
  use_count: number;
  created_by: string | null;
  created_at: Date;
  invitee_user_id: string | null;
  invitee_email: string | null;
}

const toWorkspace = (r: WsRow): WorkspaceRecord => ({
  id: r.id,
  name: r.name,
  slug: r.slug,
  description: r.description,
  isDefault: r.is_default,
  memberCount: Number(r.member_count),
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});
const toMember = (r: MemberRow): WorkspaceMemberRecord => ({ workspaceId: r.workspace_id, userId: r.user_id, role: r.role, joinedAt: r.joined_at });
const toInvite = (r: InviteRow): InviteRecord => ({
  id: r.id,
  workspaceId: r.workspace_id,
  workspaceName: r.workspace_name,
  role: r.role,
  expiresAt: r.expires_at,
  maxUses: Number(r.max_uses),
  useCount: Number(r.use_count),
  createdBy: r.created_by,
  createdAt: r.created_at,
  inviteeUserId: r.invitee_user_id,
  inviteeEmail: r.invitee_email,
});

async function selectWorkspace(tx: SqlExecutor, id: string, lock = false): Promise<WorkspaceRecord | null> {
  const { rows } = await tx.query<WsRow>(`SELECT ${WS_COLS} FROM workspaces w WHERE w.id = $1${lock ? " FOR NO KEY UPDATE" : ""}`, [id]);
  return rows[0] ? toWorkspace(rows[0]) : null;
}

async function selectMember(tx: SqlExecutor, workspaceId: string, userId: string): Promise<WorkspaceMemberRecord | null> {
  const { rows } = await tx.query<MemberRow>(`SELECT ${MEMBER_COLS} FROM workspace_members m WHERE m.workspace_id = $1 AND m.user_id = $2`, [
    workspaceId,
    userId,
  ]);
  return rows[0] ? toMember(rows[0]) : null;
}

function writeAudit(audit: AuditLog, tx: SqlExecutor, workspaceId: string, e: AuditEntry): Promise<void> {
  return audit.record(
    { actorId: e.actorId, action: e.action, entityType: "workspace", entityId: workspaceId, metadata: e.metadata, clientAddress: e.clientAddress },
    tx,
  );
}

const slugTaken = (err: unknown): never => {
  throw sqlState(err) === UNIQUE_VIOLATION ? new SlugTaken("slug taken") : err;
};

class SqlLockedWorkspace implements LockedWorkspace {
  workspace: WorkspaceRecord;
  private readonly tx: SqlExecutor;
  private readonly auditLog: AuditLog;

  constructor(tx: SqlExecutor, auditLog: AuditLog, workspace: WorkspaceRecord) {
    this.tx = tx;
    this.auditLog = auditLog;
    this.workspace = workspace;
  }

  private get id(): string {
    return this.workspace.id;
  }

  member(userId: string): Promise<WorkspaceMemberRecord | null> {
    return selectMember(this.tx, this.id, userId);
  }

  async countOwners(): Promise<number> {
    const { rows } = await this.tx.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM workspace_members WHERE workspace_id = $1 AND role = 'owner'",
      [this.id],
    );
    return Number(rows[0].n);
  }

  async addMember(userId: string, role: WorkspaceRole): Promise<boolean> {
    const { rowCount } = await this.tx.query(
      "INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT (workspace_id, user_id) DO NOTHING",
      [this.id, userId, role],
    );
    if (rowCount === 0) return false;
    await this.tx.query("UPDATE workspaces SET member_count = member_count + 1, updated_at = now() WHERE id = $1", [this.id]);
    await this.reload();
    return true;
  }

  async removeMember(userId: string): Promise<boolean> {
    const { rowCount } = await this.tx.query("DELETE FROM workspace_members WHERE workspace_id = $1 AND user_id = $2", [this.id, userId]);
    if (rowCount === 0) return false;
    await this.tx.query("UPDATE workspaces SET member_count = member_count - 1, updated_at = now() WHERE id = $1", [this.id]);
    await this.reload();
    return true;
  }

  async setRole(userId: string, role: WorkspaceRole): Promise<WorkspaceMemberRecord | null> {
    const { rows } = await this.tx.query<MemberRow>(
      `UPDATE workspace_members m SET role = $3 WHERE m.workspace_id = $1 AND m.user_id = $2 RETURNING ${MEMBER_COLS}`,
      [this.id, userId, role],
    );
    return rows[0] ? toMember(rows[0]) : null;
  }

  async update(patch: WorkspacePatch): Promise<void> {
    await this.tx
      .query(
        `UPDATE workspaces SET name = COALESCE($2, name), slug = COALESCE($3, slug), description = COALESCE($4, description), updated_at = now()
         WHERE id = $1`,
        [this.id, patch.name ?? null, patch.slug ?? null, patch.description ?? null],
      )
      .catch(slugTaken);
    await this.reload();
  }

  async createInvite(invite: NewInvite): Promise<InviteRecord> {
    const id = randomUUID();
    await this.tx.query(
      `INSERT INTO workspace_invites (id, workspace_id, token_hash, role, expires_at, max_uses, created_by, invitee_user_id, invitee_email)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [id, this.id, invite.tokenHash, invite.role, invite.expiresAt, invite.maxUses, invite.createdBy, invite.inviteeUserId, invite.inviteeEmail],
    );
    return (await this.selectInvite(id, false))!;
  }

  lockInvite(inviteId: string): Promise<InviteRecord | null> {
    return this.selectInvite(inviteId, true);
  }

  async useInvite(inviteId: string): Promise<void> {
    await this.tx.query("UPDATE workspace_invites SET use_count = use_count + 1 WHERE id = $1", [inviteId]);
  }

  audit(entry: AuditEntry): Promise<void> {
    return writeAudit(this.auditLog, this.tx, this.id, entry);
  }

  private async selectInvite(inviteId: string, lock: boolean): Promise<InviteRecord | null> {
    const { rows } = await this.tx.query<InviteRow>(
      `SELECT ${INVITE_COLS} FROM workspace_invites i JOIN workspaces w ON w.id = i.workspace_id
       WHERE i.id = $1 AND i.workspace_id = $2${lock ? " FOR UPDATE OF i" : ""}`,
      [inviteId, this.id],
    );
    return rows[0] ? toInvite(rows[0]) : null;
  }

  private async reload(): Promise<void> {
    this.workspace = (await selectWorkspace(this.tx, this.id))!;
  }
}

export class SqlWorkspaceStore implements WorkspaceStore {
  private readonly db: SqlDatabase;
  private readonly auditLog: AuditLog;

  /** Membership, role and invitation changes are audited in the same transaction as the change. */
  constructor(db: SqlDatabase, auditLog: AuditLog = new AuditLog(db)) {
    this.db = db;
    this.auditLog = auditLog;
  }

  getWorkspace(id: string): Promise<WorkspaceRecord | null> {
    return selectWorkspace(this.db, id);
  }

  getMember(workspaceId: string, userId: string): Promise<WorkspaceMemberRecord | null> {
    return selectMember(this.db, workspaceId, userId);
  }

  async createWorkspace(input: NewWorkspace, audit: AuditEntry): Promise<{ workspace: WorkspaceRecord; member: WorkspaceMemberRecord }> {
    const id = randomUUID();
    return this.db
      .transaction(async (tx) => {
        await tx.query(`INSERT INTO workspaces (id, name, slug, description, created_by, member_count) VALUES ($1, $2, $3, $4, $5, 1)`, [
          id,
          input.name,
          input.slug,
          input.description,
          input.createdBy,
        ]);
        await tx.query("INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, 'owner')", [id, input.createdBy]);
        await writeAudit(this.auditLog, tx, id, audit);
        return { workspace: (await selectWorkspace(tx, id))!, member: (await selectMember(tx, id, input.createdBy))! };
      })
      .catch(slugTaken);
  }

  async mutate<T>(workspaceId: string, fn: (locked: LockedWorkspace) => Promise<T>): Promise<{ result: T; workspace: WorkspaceRecord } | null> {
    return this.db.transaction(async (tx) => {
      const workspace = await selectWorkspace(tx, workspaceId, true);
      if (!workspace) return null;
      const locked = new SqlLockedWorkspace(tx, this.auditLog, workspace);
      const result = await fn(locked);
      return { result, workspace: locked.workspace };
    });
  }

  async listForUser(
    userId: string,
    opts: { limit: number; afterSlug: string | null },
  ): Promise<{ workspace: WorkspaceRecord; member: WorkspaceMemberRecord }[]> {
    const { rows } = await this.db.query<WsRow & { m_role: WorkspaceRole; m_joined_at: Date }>(
      `SELECT ${WS_COLS}, m.role AS m_role, m.joined_at AS m_joined_at
         FROM workspace_members m JOIN workspaces w ON w.id = m.workspace_id
        WHERE m.user_id = $1 AND ($2::text IS NULL OR w.slug > $2::text)
        ORDER BY w.slug LIMIT $3`,
      [userId, opts.afterSlug, opts.limit],
    );
    return rows.map((r) => ({ workspace: toWorkspace(r), member: { workspaceId: r.id, userId, role: r.m_role, joinedAt: r.m_joined_at } }));
  }

  async listMembers(workspaceId: string, opts: { limit: number; afterUserId: string | null }): Promise<WorkspaceMemberRecord[]> {
    const { rows } = await this.db.query<MemberRow>(
      `SELECT ${MEMBER_COLS} FROM workspace_members m
        WHERE m.workspace_id = $1 AND ($2::uuid IS NULL OR m.user_id > $2::uuid)
        ORDER BY m.user_id LIMIT $3`,
      [workspaceId, opts.afterUserId, opts.limit],
    );
    return rows.map(toMember);
  }

  async findInviteByTokenHash(tokenHash: string): Promise<InviteRecord | null> {
    const { rows } = await this.db.query<InviteRow>(
      `SELECT ${INVITE_COLS} FROM workspace_invites i JOIN workspaces w ON w.id = i.workspace_id WHERE i.token_hash = $1`,
      [tokenHash],
    );
    return rows[0] ? toInvite(rows[0]) : null;
  }

  async getInvite(id: string): Promise<InviteRecord | null> {
    const { rows } = await this.db.query<InviteRow>(
      `SELECT ${INVITE_COLS} FROM workspace_invites i JOIN workspaces w ON w.id = i.workspace_id WHERE i.id = $1`,
      [id],
    );
    return rows[0] ? toInvite(rows[0]) : null;
  }

  async listInvitesFor(userId: string, now: Date, limit: number): Promise<InviteRecord[]> {
    const { rows } = await this.db.query<InviteRow>(
      `SELECT ${INVITE_COLS} FROM workspace_invites i JOIN workspaces w ON w.id = i.workspace_id
        WHERE (i.invitee_user_id = $1 OR i.invitee_email = (SELECT email_normalized FROM users WHERE id = $1))
          AND i.expires_at > $2 AND (i.max_uses = 0 OR i.use_count < i.max_uses)
          AND NOT EXISTS (SELECT 1 FROM workspace_members m WHERE m.workspace_id = i.workspace_id AND m.user_id = $1)
        ORDER BY i.created_at DESC, i.id DESC LIMIT $3`,
      [userId, now, limit],
    );
    return rows.map(toInvite);
  }

  async userIdByUsername(username: string): Promise<string | null> {
    const { rows } = await this.db.query<{ id: string }>("SELECT id FROM users WHERE username = $1", [username]);
    return rows[0]?.id ?? null;
  }

  async emailOf(userId: string): Promise<string | null> {
    const { rows } = await this.db.query<{ email_normalized: string }>("SELECT email_normalized FROM users WHERE id = $1", [userId]);
    return rows[0]?.email_normalized ?? null;
  }
}
