// Workspace domain logic: who may do what (docs/WORKSPACES.md, the roles
// table), invitations, pagination. Plain class; the store comes in through the
// constructor. A non-member gets WORKSPACE_NOT_FOUND, exactly as for an
// unknown id.

import { createHash, randomBytes } from "node:crypto";
import type { WorkspaceAccess } from "../conversations/ports.ts";
import { AppError, alreadyExists, failedPrecondition, notFound, permissionDenied } from "../shared/errors.ts";
import { decodePageToken, encodePageToken } from "../shared/page-token.ts";
import { SlugTaken, type LockedWorkspace, type WorkspacePatch, type WorkspaceStore } from "./store.ts";
import {
  DEFAULT_WORKSPACE_ID,
  WORKSPACE_ROLE_RANK,
  type Actor,
  type InviteRecord,
  type InviteRole,
  type WorkspaceMemberRecord,
  type WorkspaceRecord,
  type WorkspaceRole,
  type WorkspaceView,
} from "./types.ts";

// Maximum page sizes (200 and 500) are the proto's rules (workspace.proto).
export const LIST_DEFAULT_PAGE = 50;
export const MEMBERS_DEFAULT_PAGE = 100;
/** expires_in_seconds = 0. */
export const DEFAULT_INVITE_TTL_SEC = 7 * 24 * 3600;
const MY_INVITES_MAX = 100;

export interface Page<T> {
  items: T[];
  nextPageToken: string;
}

/** An invitation as its creator gets it: with the one-time token. */
export interface IssuedInvite {
  invite: InviteRecord;
  token: string;
}

export interface WorkspaceDeps {
  store: WorkspaceStore;
  /**
   * Called after a user left or was removed from a workspace (committed): the
   * conversation module drops their memberships of its conversations.
   */
  memberGone?: (actor: Actor, workspaceId: string, userId: string, opts?: { strict?: boolean }) => Promise<unknown>;
  now?: () => Date;
}

export const workspaceNotFound = (): AppError => notFound("WORKSPACE_NOT_FOUND", "workspace not found");
const inviteNotFound = (): AppError => notFound("INVITE_NOT_FOUND", "invitation not found");

const uuid = (s: string): string => s.toLowerCase();
export const hashInviteToken = (token: string): string => createHash("sha256").update(token, "utf8").digest("hex");

function requireRole(me: WorkspaceMemberRecord, min: WorkspaceRole, what: string): void {
  if (WORKSPACE_ROLE_RANK[me.role] < WORKSPACE_ROLE_RANK[min])
    throw permissionDenied("ROLE_INSUFFICIENT", `only ${min === "owner" ? "owners" : "owners and admins"} of the workspace may ${what}`);
}

export class Workspaces implements WorkspaceAccess {
  private readonly store: WorkspaceStore;
  private readonly memberGone: WorkspaceDeps["memberGone"];
  private readonly now: () => Date;

  constructor(deps: WorkspaceDeps) {
    this.store = deps.store;
    this.memberGone = deps.memberGone;
    this.now = deps.now ?? (() => new Date());
  }

  /**
   * The workspace a call acts in and the caller's membership: `raw` when given,
   * else the default workspace. WORKSPACE_NOT_FOUND when the caller is not a
   * member (also for the default workspace after leaving it). For other modules.
   */
  async resolve(userId: string, raw: string | undefined): Promise<{ workspaceId: string; role: WorkspaceRole }> {
    const id = raw ? uuid(raw) : DEFAULT_WORKSPACE_ID;
    const member = await this.store.getMember(id, userId);
    if (!member) throw workspaceNotFound();
    return { workspaceId: id, role: member.role };
  }

  async create(actor: Actor, input: { name: string; slug: string; description: string }): Promise<WorkspaceView> {
    const name = input.name.trim();
    if (name === "")
      throw new AppError("INVALID_FIELD", "name: must not be blank", { violations: [{ field: "name", description: "must not be blank" }] });
    try {
      return await this.store.createWorkspace(
        { name, slug: input.slug, description: input.description.trim(), createdBy: actor.userId },
        { actorId: actor.userId, action: "workspace.created", clientAddress: actor.clientAddress, metadata: { slug: input.slug } },
      );
    } catch (err) {
      throw err instanceof SlugTaken ? alreadyExists("WORKSPACE_SLUG_TAKEN", `a workspace with slug "${input.slug}" exists`) : err;
    }
  }

  async get(actor: Actor, rawId: string): Promise<WorkspaceView> {
    const id = uuid(rawId);
    const [workspace, member] = await Promise.all([this.store.getWorkspace(id), this.store.getMember(id, actor.userId)]);
    if (!workspace || !member) throw workspaceNotFound();
    return { workspace, member };
  }

  async listMine(actor: Actor, opts: { pageSize: number; pageToken: string }): Promise<Page<WorkspaceView>> {
    const limit = opts.pageSize === 0 ? LIST_DEFAULT_PAGE : opts.pageSize;
    const after = decodePageToken("page_token", "wsl1", opts.pageToken, ["name_key"])?.[0] ?? null;
    const rows = await this.store.listForUser(actor.userId, { limit: limit + 1, afterSlug: after });
    const items = rows.slice(0, limit);
    return { items, nextPageToken: rows.length > limit ? encodePageToken("wsl1", [items[items.length - 1].workspace.slug]) : "" };
  }

  async update(actor: Actor, input: { workspaceId: string; name?: string; slug?: string; description?: string }): Promise<WorkspaceView> {
    const id = uuid(input.workspaceId);
    const out = await this.mutate(id, async (locked) => {
      const me = await this.requireMember(locked, actor);
      requireRole(me, "admin", "change the workspace");
      const w = locked.workspace;
      const patch: WorkspacePatch = {};
      if (input.name !== undefined && input.name.trim() !== w.name) {
        if (input.name.trim() === "")
          throw new AppError("INVALID_FIELD", "name: must not be blank", { violations: [{ field: "name", description: "must not be blank" }] });
        patch.name = input.name.trim();
      }
      if (input.slug !== undefined && input.slug !== w.slug) patch.slug = input.slug;
      if (input.description !== undefined && input.description.trim() !== w.description) patch.description = input.description.trim();
      if (Object.keys(patch).length === 0) return me;
      try {
        await locked.update(patch);
      } catch (err) {
        throw err instanceof SlugTaken ? alreadyExists("WORKSPACE_SLUG_TAKEN", `a workspace with slug "${patch.slug}" exists`) : err;
      }
      await locked.audit({
        actorId: actor.userId,
        action: "workspace.updated",
        clientAddress: actor.clientAddress,
        metadata: { before: { name: w.name, slug: w.slug }, after: patch },
      });
      return me;
    });
    return { workspace: out.workspace, member: out.result };
  }

  async createInviteLink(
    actor: Actor,
    input: { workspaceId: string; expiresInSeconds: number; maxUses: number; role: InviteRole },
  ): Promise<IssuedInvite> {
    return this.issue(actor, uuid(input.workspaceId), input.expiresInSeconds, input.maxUses, input.role, null, null);
  }

  async inviteMember(
    actor: Actor,
    input: { workspaceId: string; username?: string; email?: string; expiresInSeconds: number; role: InviteRole },
  ): Promise<IssuedInvite> {
    const id = uuid(input.workspaceId);
    // Authorization before anything that would tell a non-member whether a username exists.
    const me = await this.store.getMember(id, actor.userId);
    if (!me) throw workspaceNotFound();
    requireRole(me, "admin", "invite");
    let userId: string | null = null;
    let email: string | null = null;
    if (input.username !== undefined) {
      userId = await this.store.userIdByUsername(input.username.toLowerCase());
      if (!userId) throw notFound("USER_NOT_FOUND", "no user has this username");
    } else {
      email = (input.email ?? "").trim().toLowerCase();
    }
    return this.issue(actor, id, input.expiresInSeconds, 1, input.role, userId, email);
  }

  async listMyInvites(actor: Actor): Promise<InviteRecord[]> {
    return this.store.listInvitesFor(actor.userId, this.now(), MY_INVITES_MAX);
  }

  /** Redeems an invitation by token or by id (one addressed to the caller). */
  async join(actor: Actor, input: { token?: string; inviteId?: string }): Promise<{ view: WorkspaceView; joined: boolean }> {
    const found =
      input.token !== undefined
        ? await this.store.findInviteByTokenHash(hashInviteToken(input.token))
        : await this.store.getInvite(uuid(input.inviteId ?? ""));
    if (!found) throw inviteNotFound();
    // By id only for invitations addressed to the caller (an id is not a secret).
    const email = found.inviteeUserId === null && found.inviteeEmail !== null ? await this.store.emailOf(actor.userId) : null;
    const addressedToCaller = found.inviteeUserId === actor.userId || (found.inviteeEmail !== null && found.inviteeEmail === email);
    const isLink = found.inviteeUserId === null && found.inviteeEmail === null;
    if (!addressedToCaller && !(isLink && input.token !== undefined)) throw inviteNotFound();
    // Coming back: group and channel memberships left from an earlier stay (their removal after
    // the leave failed) would count again once in; they go first, and a failure fails the join.
    if (!(await this.store.getMember(found.workspaceId, actor.userId))) {
      await this.memberGone?.(actor, found.workspaceId, actor.userId, { strict: true });
    }
    const out = await this.mutate(found.workspaceId, async (locked) => {
      const existing = await locked.member(actor.userId);
      if (existing) return { me: existing, joined: false }; // uses nothing
      const invite = await locked.lockInvite(found.id);
      if (!invite) throw inviteNotFound();
      if (invite.expiresAt.getTime() <= this.now().getTime()) throw failedPrecondition("INVITE_EXPIRED", "the invitation has expired");
      if (invite.maxUses > 0 && invite.useCount >= invite.maxUses) throw failedPrecondition("INVITE_EXHAUSTED", "the invitation has been used up");
      await locked.addMember(actor.userId, invite.role);
      await locked.useInvite(invite.id);
      await locked.audit({
        actorId: actor.userId,
        action: "workspace.member.joined",
        clientAddress: actor.clientAddress,
        metadata: { inviteId: invite.id, role: invite.role },
      });
      return { me: (await locked.member(actor.userId))!, joined: true };
    });
    // The workspace went away between the two reads: the invitation with it.
    return { view: { workspace: out.workspace, member: out.result.me }, joined: out.result.joined };
  }

  leave(actor: Actor, rawId: string): Promise<void> {
    return this.leaveById(actor, uuid(rawId));
  }

  async removeMember(actor: Actor, input: { workspaceId: string; userId: string }): Promise<void> {
    const id = uuid(input.workspaceId);
    const target = uuid(input.userId);
    if (target === actor.userId) return this.leaveById(actor, id);
    const out = await this.mutate(id, async (locked) => {
      const me = await this.requireMember(locked, actor);
      requireRole(me, "admin", "remove members");
      const them = await locked.member(target);
      if (!them) return false; // already gone: removing is idempotent
      if (them.role === "owner" && me.role !== "owner") throw permissionDenied("ROLE_INSUFFICIENT", "admins cannot remove owners");
      // An owner removing another owner leaves at least themself: never the last one.
      await locked.removeMember(target);
      await locked.audit({
        actorId: actor.userId,
        action: "workspace.member.removed",
        clientAddress: actor.clientAddress,
        metadata: { userId: target, role: them.role },
      });
      return true;
    });
    if (out.result) await this.memberGone?.(actor, id, target);
  }

  async setMemberRole(actor: Actor, input: { workspaceId: string; userId: string; role: WorkspaceRole }): Promise<WorkspaceMemberRecord> {
    const id = uuid(input.workspaceId);
    const target = uuid(input.userId);
    const role = input.role;
    const out = await this.mutate(id, async (locked) => {
      const me = await this.requireMember(locked, actor);
      requireRole(me, "admin", "change roles");
      const them = await locked.member(target);
      if (!them) throw notFound("MEMBER_NOT_FOUND", "not a member of the workspace");
      if (them.role === role) return them;
      // Admins cannot touch owners, nor make owners.
      if (them.role === "owner" && me.role !== "owner") throw permissionDenied("ROLE_INSUFFICIENT", "admins cannot change an owner's role");
      if (role === "owner" && me.role !== "owner") throw permissionDenied("ROLE_INSUFFICIENT", "only owners may make owners");
      if (them.role === "owner" && (await locked.countOwners()) === 1)
        throw failedPrecondition("LAST_OWNER", "the last owner must make another member owner first");
      const member = (await locked.setRole(target, role))!;
      await locked.audit({
        actorId: actor.userId,
        action: "workspace.role.changed",
        clientAddress: actor.clientAddress,
        metadata: { userId: target, from: them.role, to: role },
      });
      return member;
    });
    return out.result;
  }

  async listMembers(actor: Actor, input: { workspaceId: string; pageSize: number; pageToken: string }): Promise<Page<WorkspaceMemberRecord>> {
    const id = uuid(input.workspaceId);
    const limit = input.pageSize === 0 ? MEMBERS_DEFAULT_PAGE : input.pageSize;
    const after = decodePageToken("page_token", "wsm1", input.pageToken, ["uuid"])?.[0] ?? null;
    if (!(await this.store.getMember(id, actor.userId))) throw workspaceNotFound();
    const rows = await this.store.listMembers(id, { limit: limit + 1, afterUserId: after });
    const items = rows.slice(0, limit);
    return { items, nextPageToken: rows.length > limit ? encodePageToken("wsm1", [items[items.length - 1].userId]) : "" };
  }

  // --- helpers ---

  private async leaveById(actor: Actor, id: string): Promise<void> {
    await this.mutate(id, async (locked) => {
      const me = await this.requireMember(locked, actor);
      if (me.role === "owner" && (await locked.countOwners()) === 1)
        throw failedPrecondition("LAST_OWNER", "the last owner must make another member owner (SetWorkspaceMemberRole) before leaving");
      await locked.removeMember(actor.userId);
      await locked.audit({ actorId: actor.userId, action: "workspace.member.left", clientAddress: actor.clientAddress, metadata: { role: me.role } });
      return true;
    });
    await this.memberGone?.(actor, id, actor.userId);
  }

  private async issue(
    actor: Actor,
    id: string,
    expiresInSeconds: number,
    maxUses: number,
    role: InviteRole,
    inviteeUserId: string | null,
    inviteeEmail: string | null,
  ): Promise<IssuedInvite> {
    const token = randomBytes(32).toString("base64url");
    const ttl = expiresInSeconds === 0 ? DEFAULT_INVITE_TTL_SEC : expiresInSeconds;
    const out = await this.mutate(id, async (locked) => {
      const me = await this.requireMember(locked, actor);
      requireRole(me, "admin", "invite");
      const invite = await locked.createInvite({
        tokenHash: hashInviteToken(token),
        role,
        expiresAt: new Date(this.now().getTime() + ttl * 1000),
        maxUses,
        createdBy: actor.userId,
        inviteeUserId,
        inviteeEmail,
      });
      await locked.audit({
        actorId: actor.userId,
        action: "workspace.invite.created",
        clientAddress: actor.clientAddress,
        metadata: { inviteId: invite.id, role, maxUses, expiresAt: invite.expiresAt.toISOString(), inviteeUserId, byEmail: inviteeEmail !== null },
      });
      return invite;
    });
    return { invite: out.result, token };
  }

  private async requireMember(locked: LockedWorkspace, actor: Actor): Promise<WorkspaceMemberRecord> {
    const me = await locked.member(actor.userId);
    if (!me) throw workspaceNotFound();
    return me;
  }

  private async mutate<T>(id: string, fn: (locked: LockedWorkspace) => Promise<T>): Promise<{ result: T; workspace: WorkspaceRecord }> {
    const out = await this.store.mutate(id, fn);
    if (!out) throw workspaceNotFound();
    return out;
  }
}
