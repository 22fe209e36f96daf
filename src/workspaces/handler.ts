// chat.v1.WorkspaceService: protobuf <-> domain, nothing else.

import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type InviteSchema,
  type WorkspaceMemberSchema,
  type WorkspaceSchema,
  type WorkspaceService,
  WorkspaceRole as PbRole,
} from "../../gen/chat/v1/workspace_pb.js";
import { caller, kClientAddress } from "../server/context.ts";
import type { IssuedInvite, Workspaces } from "./service.ts";
import type { Actor, InviteRecord, InviteRole, WorkspaceMemberRecord, WorkspaceRole, WorkspaceView } from "./types.ts";

const ROLE_TO_PB: Record<WorkspaceRole, PbRole> = { owner: PbRole.OWNER, admin: PbRole.ADMIN, member: PbRole.MEMBER, guest: PbRole.GUEST };

/** The proto's rules admit defined, specified values only. */
function roleFromPb(role: PbRole): WorkspaceRole {
  if (role === PbRole.OWNER) return "owner";
  if (role === PbRole.ADMIN) return "admin";
  if (role === PbRole.GUEST) return "guest";
  if (role === PbRole.MEMBER) return "member";
  throw new Error(`unvalidated workspace role ${role}`);
}

/** Invitations: MEMBER or GUEST; unspecified means member (the proto's rule admits nothing else). */
const inviteRoleFromPb = (role: PbRole): InviteRole => (role === PbRole.GUEST ? "guest" : "member");

function actorOf(ctx: HandlerContext): Actor {
  return { userId: caller(ctx).userId, clientAddress: ctx.values.get(kClientAddress) || undefined };
}

export function toPbWorkspace(v: WorkspaceView): MessageInitShape<typeof WorkspaceSchema> {
  const w = v.workspace;
  return {
    id: w.id,
    name: w.name,
    slug: w.slug,
    description: w.description,
    memberCount: w.memberCount,
    isDefault: w.isDefault,
    createdAt: timestampFromDate(w.createdAt),
    updatedAt: timestampFromDate(w.updatedAt),
    role: ROLE_TO_PB[v.member.role],
  };
}

function toPbMember(m: WorkspaceMemberRecord): MessageInitShape<typeof WorkspaceMemberSchema> {
  return { userId: m.userId, role: ROLE_TO_PB[m.role], joinedAt: timestampFromDate(m.joinedAt) };
}

function toPbInvite(i: InviteRecord, token = ""): MessageInitShape<typeof InviteSchema> {
  return {
    id: i.id,
    workspaceId: i.workspaceId,
    workspaceName: i.workspaceName,
    token,
    role: ROLE_TO_PB[i.role],
    expiresAt: timestampFromDate(i.expiresAt),
    maxUses: i.maxUses,
    useCount: i.useCount,
    createdBy: i.createdBy ?? "",
    createdAt: timestampFromDate(i.createdAt),
    inviteeUserId: i.inviteeUserId ?? "",
    inviteeEmail: i.inviteeEmail ?? "",
  };
}

const issued = (r: IssuedInvite) => ({ invite: toPbInvite(r.invite, r.token) });

export function workspaceHandler(workspaces: Workspaces): ServiceImpl<typeof WorkspaceService> {
  return {
    async createWorkspace(req, ctx) {
      return { workspace: toPbWorkspace(await workspaces.create(actorOf(ctx), { name: req.name, slug: req.slug, description: req.description })) };
    },

    async getWorkspace(req, ctx) {
      return { workspace: toPbWorkspace(await workspaces.get(actorOf(ctx), req.workspaceId)) };
    },

    async listMyWorkspaces(req, ctx) {
      const page = await workspaces.listMine(actorOf(ctx), { pageSize: req.pageSize, pageToken: req.pageToken });
      return { workspaces: page.items.map(toPbWorkspace), nextPageToken: page.nextPageToken };
    },

    async updateWorkspace(req, ctx) {
      const view = await workspaces.update(actorOf(ctx), {
        workspaceId: req.workspaceId,
        name: req.name,
        slug: req.slug,
        description: req.description,
      });
      return { workspace: toPbWorkspace(view) };
    },

    async createInviteLink(req, ctx) {
      return issued(
        await workspaces.createInviteLink(actorOf(ctx), {
          workspaceId: req.workspaceId,
          expiresInSeconds: req.expiresInSeconds,
          maxUses: req.maxUses,
          role: inviteRoleFromPb(req.role),
        }),
      );
    },

    async inviteMember(req, ctx) {
      return issued(
        await workspaces.inviteMember(actorOf(ctx), {
          workspaceId: req.workspaceId,
          username: req.invitee.case === "username" ? req.invitee.value : undefined,
          email: req.invitee.case === "email" ? req.invitee.value : undefined,
          expiresInSeconds: req.expiresInSeconds,
          role: inviteRoleFromPb(req.role),
        }),
      );
    },

    async listMyInvites(_req, ctx) {
      return { invites: (await workspaces.listMyInvites(actorOf(ctx))).map((i) => toPbInvite(i)) };
    },

    async joinWorkspace(req, ctx) {
      const { view, joined } = await workspaces.join(actorOf(ctx), {
        token: req.invite.case === "token" ? req.invite.value : undefined,
        inviteId: req.invite.case === "inviteId" ? req.invite.value : undefined,
      });
      return { workspace: toPbWorkspace(view), joined };
    },

    async leaveWorkspace(req, ctx) {
      await workspaces.leave(actorOf(ctx), req.workspaceId);
      return {};
    },

    async removeWorkspaceMember(req, ctx) {
      await workspaces.removeMember(actorOf(ctx), { workspaceId: req.workspaceId, userId: req.userId });
      return {};
    },

    async setWorkspaceMemberRole(req, ctx) {
      return {
        member: toPbMember(
          await workspaces.setMemberRole(actorOf(ctx), { workspaceId: req.workspaceId, userId: req.userId, role: roleFromPb(req.role) }),
        ),
      };
    },

    async listWorkspaceMembers(req, ctx) {
      const page = await workspaces.listMembers(actorOf(ctx), { workspaceId: req.workspaceId, pageSize: req.pageSize, pageToken: req.pageToken });
      return { members: page.items.map(toPbMember), nextPageToken: page.nextPageToken };
    },
  };
}
