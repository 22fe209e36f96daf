// ConversationStore on the relational store (Postgres or PGlite via SqlDatabase).

import { randomUUID } from "node:crypto";
import type { SqlDatabase, SqlExecutor } from "../stores/sql/sql.ts";
import { sqlState, UNIQUE_VIOLATION } from "../stores/sql/sql.ts";
import { AuditLog } from "../audit/audit-log.ts";
import type { DomainEvent, LoggedEvent } from "../events/events.ts";
import { appendEvents, lockHead } from "../events/sql-outbox.ts";
import type { MemberState, WorkspaceRoleName } from "./ports.ts";
import { DEFAULT_WORKSPACE_ID } from "../workspaces/types.ts";
import {
  ChannelNameTaken,
  UnknownUsers,
  type AuditEntry,
  type ConversationPatch,
  type ConversationStore,
  type LockedConversation,
  type MembershipRow,
  type NewConversation,
} from "./store.ts";
import { directKey, type ActivityCursor, type ConversationRecord, type MemberRecord, type MemberRole } from "./types.ts";

const FOREIGN_KEY_VIOLATION = "23503";

const CONV_COLS = `c.id, c.type, c.title, c.description, c.visibility, c.owner_id, c.member_count, c.last_seq,
  c.last_message_at, c.created_at, c.updated_at, c.direct_key, c.workspace_id`;
/**
 * A membership counts only while the user is also a member of the
 * conversation's workspace (a user who left or was removed from a workspace
 * loses its conversations with it; docs/WORKSPACES.md).
 */
const IN_WORKSPACE = `EXISTS (SELECT 1 FROM conversations wc JOIN workspace_members wm ON wm.workspace_id = wc.workspace_id AND wm.user_id = m.user_id
  WHERE wc.id = m.conversation_id)`;
const MEMBER_COLS = `m.conversation_id, m.user_id, m.role, m.joined_at, m.last_read_seq, m.delivered_seq, m.muted_until, m.archived`;

interface ConvRow {
  id: string;
  type: ConversationRecord["type"];
  title: string;
  description: string;
  visibility: ConversationRecord["visibility"];
  owner_id: string | null;
  member_count: number;
  last_seq: number;
  last_message_at: Date;
  created_at: Date;
  updated_at: Date;
  direct_key: string | null;
  workspace_id: string;
}

interface MemberRow {
  conversation_id: string;
  user_id: string;
  role: MemberRole;
  joined_at: Date;
  last_read_seq: number;
  delivered_seq: number;
  muted_until: Date | null;
  archived: boolean;
}

function toConversation(r: ConvRow): ConversationRecord {
  return {
    id: r.id,
    type: r.type,
    title: r.title,
    description: r.description,
    visibility: r.visibility,
    ownerId: r.owner_id,
    memberCount: Number(r.member_count),
    lastSeq: Number(r.last_seq),
    lastMessageAt: r.last_message_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    directKey: r.direct_key,
    workspaceId: r.workspace_id,
  };
}

function toMember(r: MemberRow): MemberRecord {
  return {
    conversationId: r.conversation_id,
    userId: r.user_id,
    role: r.role,
    joinedAt: r.joined_at,
    lastReadSeq: Number(r.last_read_seq),
    deliveredSeq: Number(r.delivered_seq),
    mutedUntil: r.muted_until,
    archived: r.archived,
  };
}

/** Those of `userIds` that are not members of the workspace (unknown users are members of none). */
async function unknownUsers(tx: SqlExecutor, userIds: string[], workspaceId: string): Promise<string[]> {
  if (userIds.length === 0) return [];
  const { rows } = await tx.query<{ id: string }>(
    "SELECT u AS id FROM unnest($1::uuid[]) AS u WHERE NOT EXISTS (SELECT 1 FROM workspace_members w WHERE w.workspace_id = $2 AND w.user_id = u)",
    [userIds, workspaceId],
  );
  return rows.map((r) => r.id);
}

async function workspaceRole(tx: SqlExecutor, workspaceId: string, userId: string): Promise<WorkspaceRoleName | null> {
  const { rows } = await tx.query<{ role: WorkspaceRoleName }>("SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $2", [
    workspaceId,
    userId,
  ]);
  return rows[0]?.role ?? null;
}

function writeAudit(audit: AuditLog, tx: SqlExecutor, e: AuditEntry): Promise<void> {
  return audit.record(
    {
      actorId: e.actorId,
      action: e.action,
      entityType: "conversation",
      entityId: e.conversationId,
      metadata: e.metadata,
      clientAddress: e.clientAddress,
    },
    tx,
  );
}

/** New members start with everything before their arrival read, so joining a busy channel is not a wall of unread. */
async function insertMembers(tx: SqlExecutor, conversationId: string, userIds: string[], role: MemberRole): Promise<string[]> {
  if (userIds.length === 0) return [];
  const { rows } = await tx.query<{ user_id: string }>(
    `INSERT INTO conversation_members (conversation_id, user_id, role, last_read_seq, delivered_seq)
     SELECT $1, u, $3, c.last_seq, c.last_seq FROM unnest($2::uuid[]) AS u, conversations c WHERE c.id = $1
     ON CONFLICT (conversation_id, user_id) DO NOTHING
     RETURNING user_id`,
    [conversationId, userIds, role],
  );
  const added = rows.map((r) => r.user_id);
  if (added.length > 0) {
    await tx.query("UPDATE conversations SET member_count = member_count + $2, updated_at = now() WHERE id = $1", [conversationId, added.length]);
  }
  return added;
}

async function selectConversation(tx: SqlExecutor, id: string, lock = false): Promise<ConversationRecord | null> {
  const { rows } = await tx.query<ConvRow>(`SELECT ${CONV_COLS} FROM conversations c WHERE c.id = $1${lock ? " FOR NO KEY UPDATE" : ""}`, [id]);
  return rows[0] ? toConversation(rows[0]) : null;
}

function mapWriteError(err: unknown): never {
  // A user deleted between our check and the insert.
  if (sqlState(err) === FOREIGN_KEY_VIOLATION) throw new UnknownUsers([]);
  throw err;
}

class SqlLockedConversation implements LockedConversation {
  conversation: ConversationRecord;
  /** Events to log at the end of the transaction (conversation_updated then carries the final record). */
  readonly pending: DomainEvent[] = [];
  private readonly tx: SqlExecutor;
  private readonly auditLog: AuditLog;

  constructor(tx: SqlExecutor, auditLog: AuditLog, conversation: ConversationRecord) {
    this.tx = tx;
    this.auditLog = auditLog;
    this.conversation = conversation;
  }

  private get id(): string {
    return this.conversation.id;
  }

  async member(userId: string): Promise<MemberRecord | null> {
    const { rows } = await this.tx.query<MemberRow>(
      `SELECT ${MEMBER_COLS} FROM conversation_members m WHERE m.conversation_id = $1 AND m.user_id = $2 AND ${IN_WORKSPACE}`,
      [this.id, userId],
    );
    return rows[0] ? toMember(rows[0]) : null;
  }

  async existingMembers(userIds: string[]): Promise<Set<string>> {
    if (userIds.length === 0) return new Set();
    const { rows } = await this.tx.query<{ user_id: string }>(
      "SELECT user_id FROM conversation_members WHERE conversation_id = $1 AND user_id = ANY($2::uuid[])",
      [this.id, userIds],
    );
    return new Set(rows.map((r) => r.user_id));
  }

  unknownUsers(userIds: string[]): Promise<string[]> {
    return unknownUsers(this.tx, userIds, this.conversation.workspaceId);
  }

  workspaceRole(userId: string): Promise<WorkspaceRoleName | null> {
    return workspaceRole(this.tx, this.conversation.workspaceId, userId);
  }

  async countOwners(): Promise<number> {
    const { rows } = await this.tx.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM conversation_members WHERE conversation_id = $1 AND role = 'owner'",
      [this.id],
    );
    return Number(rows[0].n);
  }

  async addMembers(userIds: string[], role: MemberRole): Promise<string[]> {
    const added = await insertMembers(this.tx, this.id, userIds, role).catch(mapWriteError);
    await this.reload();
    return added;
  }

  async removeMember(userId: string): Promise<boolean> {
    const { rowCount } = await this.tx.query("DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $2", [this.id, userId]);
    if (rowCount === 0) return false;
    await this.tx.query("UPDATE conversations SET member_count = member_count - 1, updated_at = now() WHERE id = $1", [this.id]);
    await this.reload();
    return true;
  }

  async setRole(userId: string, role: MemberRole): Promise<MemberRecord | null> {
    const { rows } = await this.tx.query<MemberRow>(
      `UPDATE conversation_members m SET role = $3, updated_at = now() WHERE m.conversation_id = $1 AND m.user_id = $2 RETURNING ${MEMBER_COLS}`,
      [this.id, userId, role],
    );
    return rows[0] ? toMember(rows[0]) : null;
  }

  async update(patch: ConversationPatch): Promise<void> {
    await this.tx
      .query(
        `UPDATE conversations SET
         title = COALESCE($2, title),
         description = COALESCE($3, description),
         visibility = COALESCE($4, visibility),
         updated_at = now()
       WHERE id = $1`,
        [this.id, patch.title ?? null, patch.description ?? null, patch.visibility ?? null],
      )
      .catch((err) => {
        // Renaming a channel onto another's name (the transaction is aborted either way).
        throw sqlState(err) === UNIQUE_VIOLATION ? new ChannelNameTaken("channel name taken") : err;
      });
    await this.reload();
  }

  async refreshOwner(): Promise<void> {
    // Keep the current owner_id while it is still an owner; otherwise the longest-standing owner.
    await this.tx.query(
      `UPDATE conversations c SET owner_id = COALESCE(
         (SELECT user_id FROM conversation_members WHERE conversation_id = c.id AND user_id = c.owner_id AND role = 'owner'),
         (SELECT user_id FROM conversation_members WHERE conversation_id = c.id AND role = 'owner' ORDER BY joined_at, user_id LIMIT 1))
       WHERE c.id = $1 AND c.type <> 'direct'`,
      [this.id],
    );
    await this.reload();
  }

  audit(entry: Omit<AuditEntry, "conversationId">): Promise<void> {
    return writeAudit(this.auditLog, this.tx, { ...entry, conversationId: this.id });
  }

  emit(events: DomainEvent[]): void {
    this.pending.push(...events);
  }

  /** Logs what was emitted, in this transaction (the head lock is the last lock taken). */
  async flush(): Promise<LoggedEvent[]> {
    if (this.pending.length === 0) return [];
    const c = this.conversation;
    return appendEvents(
      this.tx,
      this.id,
      this.pending.map((e) => (e.type === "conversation_updated" ? { ...e, conversation: c } : e)),
    );
  }

  private async reload(): Promise<void> {
    this.conversation = (await selectConversation(this.tx, this.id))!;
  }
}

export class SqlConversationStore implements ConversationStore {
  private readonly db: SqlDatabase;
  private readonly auditLog: AuditLog;

  /** Membership and role changes are audited in the same transaction as the change. */
  constructor(db: SqlDatabase, auditLog: AuditLog = new AuditLog(db)) {
    this.db = db;
    this.auditLog = auditLog;
  }

  async getMember(conversationId: string, userId: string): Promise<MemberState | null> {
    const m = await this.getMemberRecord(conversationId, userId);
    return m && { role: m.role, lastReadSeq: m.lastReadSeq, deliveredSeq: m.deliveredSeq, mutedUntil: m.mutedUntil, archived: m.archived };
  }

  async sharingAConversation(userId: string, others: string[]): Promise<Set<string>> {
    if (others.length === 0) return new Set();
    const { rows } = await this.db.query<{ user_id: string }>(
      `SELECT DISTINCT o.user_id FROM conversation_members me
         JOIN conversation_members o ON o.conversation_id = me.conversation_id
         JOIN conversations c ON c.id = me.conversation_id
         JOIN workspace_members wme ON wme.workspace_id = c.workspace_id AND wme.user_id = me.user_id
         JOIN workspace_members wo ON wo.workspace_id = c.workspace_id AND wo.user_id = o.user_id
        WHERE me.user_id = $1 AND o.user_id = ANY($2::uuid[])`,
      [userId, others],
    );
    return new Set(rows.map((r) => r.user_id));
  }

  getConversation(id: string): Promise<ConversationRecord | null> {
    return selectConversation(this.db, id);
  }

  workspaceRole(workspaceId: string, userId: string): Promise<WorkspaceRoleName | null> {
    return workspaceRole(this.db, workspaceId, userId);
  }

  async groupsAndChannelsOf(userId: string, workspaceId: string): Promise<string[]> {
    const { rows } = await this.db.query<{ id: string }>(
      `SELECT c.id FROM conversation_members m JOIN conversations c ON c.id = m.conversation_id
        WHERE m.user_id = $1 AND c.workspace_id = $2 AND c.type <> 'direct' ORDER BY c.id`,
      [userId, workspaceId],
    );
    return rows.map((r) => r.id);
  }

  async workspacesOf(ids: string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    const { rows } = await this.db.query<{ id: string; workspace_id: string }>(
      "SELECT id, workspace_id FROM conversations WHERE id = ANY($1::uuid[])",
      [ids],
    );
    return new Map(rows.map((r) => [r.id, r.workspace_id]));
  }

  async getMemberRecord(conversationId: string, userId: string): Promise<MemberRecord | null> {
    const { rows } = await this.db.query<MemberRow>(
      `SELECT ${MEMBER_COLS} FROM conversation_members m WHERE m.conversation_id = $1 AND m.user_id = $2 AND ${IN_WORKSPACE}`,
      [conversationId, userId],
    );
    return rows[0] ? toMember(rows[0]) : null;
  }

  async createConversation(
    input: NewConversation,
    members: { userId: string; role: MemberRole }[],
    audit: Omit<AuditEntry, "conversationId">,
    out?: LoggedEvent[],
  ): Promise<ConversationRecord> {
    const id = randomUUID();
    const workspaceId = input.workspaceId ?? DEFAULT_WORKSPACE_ID;
    try {
      return await this.db.transaction(async (tx) => {
        const unknown = await unknownUsers(
          tx,
          members.map((m) => m.userId),
          workspaceId,
        );
        if (unknown.length > 0) throw new UnknownUsers(unknown);
        await tx.query(
          `INSERT INTO conversations (id, type, title, description, visibility, owner_id, last_message_at, workspace_id)
           VALUES ($1, $2, $3, $4, $5, $6, now(), $7)`,
          [id, input.type, input.title, input.description, input.visibility, input.ownerId, workspaceId],
        );
        const byRole = new Map<MemberRole, string[]>();
        for (const m of members) byRole.set(m.role, [...(byRole.get(m.role) ?? []), m.userId]);
        for (const [role, ids] of byRole) await insertMembers(tx, id, ids, role);
        await writeAudit(this.auditLog, tx, { ...audit, conversationId: id });
        const joined = members.map((m): DomainEvent => ({ type: "member_joined", conversationId: id, userId: m.userId, role: m.role }));
        const logged = await appendEvents(tx, id, joined);
        out?.push(...logged);
        return (await selectConversation(tx, id))!;
      });
    } catch (err) {
      if (sqlState(err) === UNIQUE_VIOLATION) throw new ChannelNameTaken("channel name taken");
      return mapWriteError(err);
    }
  }

  async getOrCreateDirect(
    a: string,
    b: string,
    audit: Omit<AuditEntry, "conversationId">,
    out?: LoggedEvent[],
    workspaceId: string = DEFAULT_WORKSPACE_ID,
  ): Promise<{ conversation: ConversationRecord; created: boolean }> {
    const key = directKey(a, b);
    const users = a === b ? [a] : [a, b];
    try {
      return await this.db.transaction(async (tx) => {
        // The unique direct_key decides the race: a concurrent creator's insert
        // makes ours wait and then do nothing; the SELECT then sees its row
        // (READ COMMITTED takes a fresh snapshot per statement).
        const inserted = await tx.query<{ id: string }>(
          `INSERT INTO conversations (id, type, title, description, visibility, owner_id, last_message_at, direct_key, workspace_id)
           VALUES ($1, 'direct', '', '', 'private', NULL, now(), $2, $3)
           ON CONFLICT (workspace_id, direct_key) DO NOTHING
           RETURNING id`,
          [randomUUID(), key, workspaceId],
        );
        if (inserted.rows.length === 0) {
          const { rows } = await tx.query<ConvRow>(`SELECT ${CONV_COLS} FROM conversations c WHERE c.workspace_id = $1 AND c.direct_key = $2`, [
            workspaceId,
            key,
          ]);
          return { conversation: toConversation(rows[0]), created: false };
        }
        const id = inserted.rows[0].id;
        const unknown = await unknownUsers(tx, users, workspaceId);
        if (unknown.length > 0) throw new UnknownUsers(unknown); // rolls the insert back
        await insertMembers(tx, id, users, "member");
        await writeAudit(this.auditLog, tx, { ...audit, conversationId: id });
        const joined = users.map((userId): DomainEvent => ({ type: "member_joined", conversationId: id, userId, role: "member" }));
        const logged = await appendEvents(tx, id, joined);
        out?.push(...logged);
        return { conversation: (await selectConversation(tx, id))!, created: true };
      });
    } catch (err) {
      return mapWriteError(err);
    }
  }

  async mutate<T>(
    conversationId: string,
    fn: (locked: LockedConversation) => Promise<T>,
  ): Promise<{ result: T; conversation: ConversationRecord; events: LoggedEvent[] } | null> {
    return this.db.transaction(async (tx) => {
      const conversation = await selectConversation(tx, conversationId, true);
      if (!conversation) return null;
      // The event head next (lock order of src/events/sql-outbox.ts), before any member row.
      await lockHead(tx, conversationId);
      const locked = new SqlLockedConversation(tx, this.auditLog, conversation);
      const result = await fn(locked);
      const events = await locked.flush();
      return { result, conversation: locked.conversation, events };
    });
  }

  async listForUser(
    userId: string,
    opts: { limit: number; after: ActivityCursor | null; includeArchived: boolean; workspaceId?: string },
  ): Promise<MembershipRow[]> {
    const params: unknown[] = [userId, opts.includeArchived, opts.limit];
    let small = "";
    let big = "";
    if (opts.workspaceId !== undefined) {
      // One workspace's conversations: a primary-key probe per membership read
      // (docs/WORKSPACES.md, "Cost"): a user whose conversations are all in this
      // workspace reads the same N entries as before.
      params.push(opts.workspaceId);
      small += ` AND EXISTS (SELECT 1 FROM conversations cw WHERE cw.id = m.conversation_id AND cw.workspace_id = $${params.length}::uuid)`;
      // The big branch probes the conversation row anyway (the LATERAL below): filter there. An
      // EXISTS here made the planner hash-join every conversation of the workspace.
      big += ` AND c.workspace_id = $${params.length}::uuid`;
    }
    if (opts.after) {
      // Compare in Postgres' own microsecond precision: the cursor carries
      // whole microseconds, converted back exactly (no float rounding).
      params.push(opts.after.activityMicros, opts.after.id);
      const cursor = `(timestamptz 'epoch' + $${params.length - 1}::bigint * interval '1 microsecond', $${params.length}::uuid)`;
      small += ` AND (m.activity_at, m.conversation_id) < ${cursor}`;
      big += ` AND (c.last_message_at, m.conversation_id) < ${cursor}`;
    }
    // One statement per page, read in index order (docs/CONVERSATIONS.md,
    // "Order and cost"). Memberships of small conversations carry a copy of
    // the conversation's last_message_at (activity_at, kept by triggers), so
    // the first branch reads at most N entries of
    // conversation_members_activity_idx. Memberships of big conversations
    // (activity_at null; few per user) are sorted through the conversation
    // rows: one primary-key probe each (the LATERAL ... OFFSET 0 keeps the
    // planner on those probes rather than a hash join over every
    // conversation). The two top-N lists are merged, and full rows are read
    // for the N kept, with the caller's unread state (no per-row query).
    const { rows } = await this.db.query<
      ConvRow & {
        m_role: MemberRole;
        m_joined_at: Date;
        m_last_read_seq: number;
        m_delivered_seq: number;
        m_muted_until: Date | null;
        m_archived: boolean;
        activity_us: number;
      }
    >(
      `SELECT ${CONV_COLS},
         m.role AS m_role, m.joined_at AS m_joined_at, m.last_read_seq AS m_last_read_seq,
         m.delivered_seq AS m_delivered_seq, m.muted_until AS m_muted_until, m.archived AS m_archived,
         (extract(epoch FROM c.last_message_at) * 1000000)::bigint AS activity_us
       FROM (
         SELECT u.conversation_id FROM (
           (SELECT m.conversation_id, m.activity_at AS at
              FROM conversation_members m
             WHERE m.user_id = $1 AND m.activity_at IS NOT NULL AND ($2::boolean OR NOT m.archived) ${small}
             ORDER BY m.activity_at DESC, m.conversation_id DESC
             LIMIT $3)
           UNION ALL
           (SELECT m.conversation_id, c.last_message_at AS at
              FROM conversation_members m
              CROSS JOIN LATERAL (SELECT c.last_message_at, c.workspace_id FROM conversations c WHERE c.id = m.conversation_id OFFSET 0) c
             WHERE m.user_id = $1 AND m.activity_at IS NULL AND ($2::boolean OR NOT m.archived) ${big}
             ORDER BY c.last_message_at DESC, m.conversation_id DESC
             LIMIT $3)
         ) u
         ORDER BY u.at DESC, u.conversation_id DESC
         LIMIT $3
       ) page
       JOIN conversations c ON c.id = page.conversation_id
       JOIN conversation_members m ON m.conversation_id = page.conversation_id AND m.user_id = $1
       ORDER BY c.last_message_at DESC, c.id DESC`,
      params,
    );
    return rows.map((r) => ({
      conversation: toConversation(r),
      member: toMember({
        conversation_id: r.id,
        user_id: userId,
        role: r.m_role,
        joined_at: r.m_joined_at,
        last_read_seq: r.m_last_read_seq,
        delivered_seq: r.m_delivered_seq,
        muted_until: r.m_muted_until,
        archived: r.m_archived,
      }),
      cursor: { activityMicros: Number(r.activity_us), id: r.id },
    }));
  }

  async listPublicChannels(
    userId: string,
    opts: { limit: number; afterNameKey: string | null; prefix: string; workspaceId?: string },
  ): Promise<{ conversation: ConversationRecord; member: MemberRecord | null }[]> {
    const params: unknown[] = [opts.limit, userId, opts.workspaceId ?? DEFAULT_WORKSPACE_ID];
    const where = ["c.workspace_id = $3", "c.type = 'channel'", "c.visibility = 'public'"];
    if (opts.prefix) {
      // '~' sorts after every allowed channel-name character, so this is an index range.
      params.push(opts.prefix);
      where.push(`c.name_key >= $${params.length} AND c.name_key < $${params.length} || '~'`);
    }
    if (opts.afterNameKey !== null) {
      params.push(opts.afterNameKey);
      where.push(`c.name_key > $${params.length}`);
    }
    const { rows } = await this.db.query<ConvRow & Partial<MemberRow>>(
      `SELECT ${CONV_COLS}, ${MEMBER_COLS}
       FROM conversations c
       LEFT JOIN conversation_members m ON m.conversation_id = c.id AND m.user_id = $2
       WHERE ${where.join(" AND ")}
       ORDER BY c.name_key LIMIT $1`,
      params,
    );
    return rows.map((r) => ({ conversation: toConversation(r), member: r.user_id ? toMember(r as MemberRow) : null }));
  }

  async listMembers(conversationId: string, opts: { limit: number; afterUserId: string | null }): Promise<MemberRecord[]> {
    const { rows } = await this.db.query<MemberRow>(
      `SELECT ${MEMBER_COLS} FROM conversation_members m
       WHERE m.conversation_id = $1 AND ($2::uuid IS NULL OR m.user_id > $2::uuid)
       ORDER BY m.user_id LIMIT $3`,
      [conversationId, opts.afterUserId, opts.limit],
    );
    return rows.map(toMember);
  }

  async updateMemberSettings(
    conversationId: string,
    userId: string,
    settings: { mutedUntil?: Date | null; archived?: boolean },
  ): Promise<MemberRecord | null> {
    const { rows } = await this.db.query<MemberRow>(
      `UPDATE conversation_members m SET
         muted_until = CASE WHEN $3::boolean THEN $4::timestamptz ELSE m.muted_until END,
         archived = COALESCE($5::boolean, m.archived),
         updated_at = now()
       WHERE m.conversation_id = $1 AND m.user_id = $2
       RETURNING ${MEMBER_COLS}`,
      [conversationId, userId, settings.mutedUntil !== undefined, settings.mutedUntil ?? null, settings.archived ?? null],
    );
    return rows[0] ? toMember(rows[0]) : null;
  }
}
