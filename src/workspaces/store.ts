// The workspace store: what the domain layer needs from persistence. Rules
// (who may do what) live in service.ts; `mutate` runs a decision and its
// writes in one transaction with the workspace row locked, so "is this the
// last owner" or "is this invitation used up" cannot race.

import type { InviteRecord, InviteRole, WorkspaceMemberRecord, WorkspaceRecord, WorkspaceRole } from "./types.ts";

export interface AuditEntry {
  actorId: string | null;
  action: string;
  metadata?: Record<string, unknown>;
  clientAddress?: string;
}

export interface NewWorkspace {
  name: string;
  slug: string;
  description: string;
  createdBy: string;
}

export interface WorkspacePatch {
  name?: string;
  slug?: string;
  description?: string;
}

export interface NewInvite {
  tokenHash: string;
  role: InviteRole;
  expiresAt: Date;
  maxUses: number;
  createdBy: string;
  inviteeUserId: string | null;
  inviteeEmail: string | null;
}

/** Thrown by the store; the domain layer turns it into WORKSPACE_SLUG_TAKEN. */
export class SlugTaken extends Error {
  override name = "SlugTaken";
}

/** Operations available while the workspace row is locked (inside one transaction). */
export interface LockedWorkspace {
  /** The workspace as of the lock (kept current by this object's own writes). */
  readonly workspace: WorkspaceRecord;
  member(userId: string): Promise<WorkspaceMemberRecord | null>;
  countOwners(): Promise<number>;
  /** Inserts a membership and bumps member_count; false when they were a member already. */
  addMember(userId: string, role: WorkspaceRole): Promise<boolean>;
  /** Deletes a membership and decrements member_count; false when there was none. */
  removeMember(userId: string): Promise<boolean>;
  setRole(userId: string, role: WorkspaceRole): Promise<WorkspaceMemberRecord | null>;
  /** Throws SlugTaken. */
  update(patch: WorkspacePatch): Promise<void>;
  createInvite(invite: NewInvite): Promise<InviteRecord>;
  /** An invitation of this workspace, locked until the transaction ends. */
  lockInvite(inviteId: string): Promise<InviteRecord | null>;
  /** use_count + 1. */
  useInvite(inviteId: string): Promise<void>;
  audit(entry: AuditEntry): Promise<void>;
}

export interface WorkspaceStore {
  getWorkspace(id: string): Promise<WorkspaceRecord | null>;
  getMember(workspaceId: string, userId: string): Promise<WorkspaceMemberRecord | null>;
  /** Creates the workspace with its owner; throws SlugTaken. */
  createWorkspace(input: NewWorkspace, audit: AuditEntry): Promise<{ workspace: WorkspaceRecord; member: WorkspaceMemberRecord }>;
  /** Runs fn with the workspace row locked; null when the workspace does not exist. */
  mutate<T>(workspaceId: string, fn: (locked: LockedWorkspace) => Promise<T>): Promise<{ result: T; workspace: WorkspaceRecord } | null>;
  /** The user's workspaces by slug, strictly after `afterSlug`. One query. */
  listForUser(
    userId: string,
    opts: { limit: number; afterSlug: string | null },
  ): Promise<{ workspace: WorkspaceRecord; member: WorkspaceMemberRecord }[]>;
  /** Members by user id, strictly after `afterUserId`. */
  listMembers(workspaceId: string, opts: { limit: number; afterUserId: string | null }): Promise<WorkspaceMemberRecord[]>;
  findInviteByTokenHash(tokenHash: string): Promise<InviteRecord | null>;
  getInvite(id: string): Promise<InviteRecord | null>;
  /** Open invitations addressed to the user or their email, for workspaces they are not in, newest first. */
  listInvitesFor(userId: string, now: Date, limit: number): Promise<InviteRecord[]>;
  /** A user by (lower-case) username. */
  userIdByUsername(username: string): Promise<string | null>;
  /** The user's normalised email, null for an unknown user. */
  emailOf(userId: string): Promise<string | null>;
}
