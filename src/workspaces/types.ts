// Domain types for workspaces, their members and invitations (no protobuf here).

export type WorkspaceRole = "owner" | "admin" | "member" | "guest";
export type InviteRole = "member" | "guest";

/** The default workspace's id (migrations/0009_workspaces.sql creates it). */
export const DEFAULT_WORKSPACE_ID = "00000000-0000-4000-8000-000000000001";

/** Higher may act on lower (docs/WORKSPACES.md, the roles table). */
export const WORKSPACE_ROLE_RANK: Record<WorkspaceRole, number> = { guest: 0, member: 1, admin: 2, owner: 3 };

export interface WorkspaceRecord {
  id: string;
  name: string;
  slug: string;
  description: string;
  isDefault: boolean;
  memberCount: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface WorkspaceMemberRecord {
  workspaceId: string;
  userId: string;
  role: WorkspaceRole;
  joinedAt: Date;
}

/** A workspace as one member sees it. */
export interface WorkspaceView {
  workspace: WorkspaceRecord;
  member: WorkspaceMemberRecord;
}

export interface InviteRecord {
  id: string;
  workspaceId: string;
  workspaceName: string;
  role: InviteRole;
  expiresAt: Date;
  /** 0: no limit. */
  maxUses: number;
  useCount: number;
  createdBy: string | null;
  createdAt: Date;
  inviteeUserId: string | null;
  inviteeEmail: string | null;
}

/** Who performs a change, for authorization and the audit log. */
export interface Actor {
  userId: string;
  clientAddress?: string;
}
