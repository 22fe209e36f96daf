// chat.v1.ConversationService: protobuf <-> domain, nothing else.

import type { ServiceImpl, HandlerContext } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  type ConversationService,
  ConversationType,
  MemberRole as PbRole,
  Visibility as PbVisibility,
  type ConversationSchema,
  type MemberSchema,
} from "../../gen/chat/v1/conversation_pb.js";
import { dateFromTimestamp } from "../server/timestamps.ts";
import { caller, kClientAddress } from "../server/context.ts";
import type { Conversations } from "./service.ts";
import type { Actor, ConversationKind, ConversationView, MemberRecord, MemberRole, Visibility } from "./types.ts";

const KIND_TO_PB: Record<ConversationKind, ConversationType> = {
  direct: ConversationType.DIRECT,
  group: ConversationType.GROUP,
  channel: ConversationType.CHANNEL,
};
const ROLE_TO_PB: Record<MemberRole, PbRole> = { owner: PbRole.OWNER, admin: PbRole.ADMIN, member: PbRole.MEMBER };
const VISIBILITY_TO_PB: Record<Visibility, PbVisibility> = { public: PbVisibility.PUBLIC, private: PbVisibility.PRIVATE };

function kindFromPb(t: ConversationType): "group" | "channel" | "direct" | "unspecified" {
  return t === ConversationType.GROUP
    ? "group"
    : t === ConversationType.CHANNEL
      ? "channel"
      : t === ConversationType.DIRECT
        ? "direct"
        : "unspecified";
}

function visibilityFromPb(_field: string, vis: PbVisibility): Visibility | "unspecified" {
  if (vis === PbVisibility.PUBLIC) return "public";
  if (vis === PbVisibility.PRIVATE) return "private";
  return "unspecified"; // the proto's rules admit defined values only
}

/** A set UpdateConversation.visibility: the proto's rule (visibility.specified) admits PUBLIC or PRIVATE only. */
function setVisibilityFromPb(field: string, vis: PbVisibility): Visibility {
  return visibilityFromPb(field, vis) === "public" ? "public" : "private";
}

function roleFromPb(role: PbRole): MemberRole | "unspecified" {
  if (role === PbRole.OWNER) return "owner";
  if (role === PbRole.ADMIN) return "admin";
  if (role === PbRole.MEMBER) return "member";
  return "unspecified"; // the proto's rules admit defined values only
}

function actorOf(ctx: HandlerContext): Actor {
  return { userId: caller(ctx).userId, clientAddress: ctx.values.get(kClientAddress) || undefined };
}

export function toPbConversation(view: ConversationView): MessageInitShape<typeof ConversationSchema> {
  const c = view.conversation;
  const m = view.member;
  const p = view.lastMessage;
  return {
    id: c.id,
    type: KIND_TO_PB[c.type],
    title: c.title,
    description: c.description,
    ownerId: c.ownerId ?? "",
    memberCount: c.memberCount,
    lastMessageAt: timestampFromDate(c.lastMessageAt),
    lastSeq: BigInt(c.lastSeq),
    visibility: VISIBILITY_TO_PB[c.visibility],
    createdAt: timestampFromDate(c.createdAt),
    updatedAt: timestampFromDate(c.updatedAt),
    peerUserId: view.peerUserId ?? "",
    workspaceId: c.workspaceId,
    joined: m !== null,
    ...(m && {
      unreadCount: Math.min(view.unreadCount, 2 ** 31 - 1),
      lastReadSeq: BigInt(m.lastReadSeq),
      mutedUntil: m.mutedUntil ? timestampFromDate(m.mutedUntil) : undefined,
      archived: m.archived,
      role: ROLE_TO_PB[m.role],
    }),
    lastMessage: p
      ? {
          messageId: p.messageId,
          seq: BigInt(p.seq),
          senderId: p.senderId,
          content: p.deleted ? "" : p.content,
          createdAt: timestampFromDate(p.createdAt),
          deleted: p.deleted,
          attachmentCount: p.attachmentCount,
        }
      : undefined,
  };
}

function toPbMember(m: MemberRecord): MessageInitShape<typeof MemberSchema> {
  return {
    userId: m.userId,
    role: ROLE_TO_PB[m.role],
    joinedAt: timestampFromDate(m.joinedAt),
    lastReadSeq: BigInt(m.lastReadSeq),
    deliveredSeq: BigInt(m.deliveredSeq),
  };
}

export function conversationHandler(conversations: Conversations): ServiceImpl<typeof ConversationService> {
  return {
    async createConversation(req, ctx) {
      const view = await conversations.create(actorOf(ctx), {
        type: kindFromPb(req.type),
        title: req.title,
        description: req.description,
        memberIds: req.memberIds,
        visibility: visibilityFromPb("visibility", req.visibility),
        workspaceId: req.workspaceId || undefined,
      });
      return { conversation: toPbConversation(view) };
    },

    async getOrCreateDirect(req, ctx) {
      const { view, created } = await conversations.getOrCreateDirect(actorOf(ctx), req.userId, req.workspaceId || undefined);
      return { conversation: toPbConversation(view), created };
    },

    async getConversation(req, ctx) {
      return { conversation: toPbConversation(await conversations.get(actorOf(ctx), req.conversationId)) };
    },

    async listConversations(req, ctx) {
      const page = await conversations.list(actorOf(ctx), {
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        includeArchived: req.includeArchived,
        workspaceId: req.workspaceId || undefined,
      });
      return { conversations: page.items.map(toPbConversation), nextPageToken: page.nextPageToken };
    },

    async updateConversation(req, ctx) {
      const view = await conversations.update(actorOf(ctx), {
        conversationId: req.conversationId,
        title: req.title,
        description: req.description,
        // optional: unset leaves it unchanged; a set value must be PUBLIC or PRIVATE.
        visibility: req.visibility === undefined ? undefined : setVisibilityFromPb("visibility", req.visibility),
      });
      return { conversation: toPbConversation(view) };
    },

    async addMembers(req, ctx) {
      const { view, added } = await conversations.addMembers(actorOf(ctx), { conversationId: req.conversationId, userIds: req.userIds });
      return { conversation: toPbConversation(view), addedUserIds: added };
    },

    async removeMember(req, ctx) {
      await conversations.removeMember(actorOf(ctx), { conversationId: req.conversationId, userId: req.userId });
      return {};
    },

    async joinConversation(req, ctx) {
      return { conversation: toPbConversation(await conversations.join(actorOf(ctx), req.conversationId)) };
    },

    async leaveConversation(req, ctx) {
      await conversations.leave(actorOf(ctx), req.conversationId);
      return {};
    },

    async listMembers(req, ctx) {
      const page = await conversations.listMembers(actorOf(ctx), {
        conversationId: req.conversationId,
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
      return { members: page.items.map(toPbMember), nextPageToken: page.nextPageToken };
    },

    async setMemberRole(req, ctx) {
      const member = await conversations.setMemberRole(actorOf(ctx), {
        conversationId: req.conversationId,
        userId: req.userId,
        role: roleFromPb(req.role),
      });
      return { member: toPbMember(member) };
    },

    async updateMemberSettings(req, ctx) {
      const view = await conversations.updateMemberSettings(actorOf(ctx), {
        conversationId: req.conversationId,
        mutedUntil: req.mutedUntil ? dateFromTimestamp("muted_until", req.mutedUntil) : undefined,
        archived: req.archived,
      });
      return { conversation: toPbConversation(view) };
    },

    async listPublicChannels(req, ctx) {
      const page = await conversations.listPublicChannels(actorOf(ctx), {
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        query: req.query,
        workspaceId: req.workspaceId || undefined,
      });
      return { conversations: page.items.map(toPbConversation), nextPageToken: page.nextPageToken };
    },
  };
}
