// MessageService unary RPCs: protobuf in, domain call, protobuf out. Stream
// and Subscribe (and AckEvents) belong to the realtime layer and stay
// UNIMPLEMENTED here.

import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { caller } from "../server/context.ts";
import {
  AttachmentSchema,
  ChatMessageSchema,
  ReactionSchema,
  ReactionUsersSchema,
  type Attachment as AttachmentPb,
  type ChatMessage,
  type MessageService as MessageServiceDesc,
} from "../../gen/chat/v1/message_pb.js";
import type { MessageService } from "./service.ts";
import type { Attachment, MessageView } from "./types.ts";

/**
 * int64 request fields arrive as bigint; the domain works in safe JS numbers.
 * The proto's rules (seq >= 0, size_bytes 0 to 100 GiB) have passed already.
 */
function seqFromWire(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}

function attachmentsFromWire(list: AttachmentPb[]): Attachment[] {
  return list.map((a) => ({ url: a.url, name: a.name, mimeType: a.mimeType, sizeBytes: Number(a.sizeBytes) }));
}

export function toChatMessage(m: MessageView): ChatMessage {
  return create(ChatMessageSchema, {
    id: m.id,
    conversationId: m.conversationId,
    seq: BigInt(m.seq),
    senderId: m.senderId,
    clientMessageId: m.clientMessageId,
    content: m.content,
    parentMessageId: m.parentMessageId ?? "",
    replyCount: m.replyCount,
    mentions: m.mentions,
    attachments: m.attachments.map((a) =>
      create(AttachmentSchema, { url: a.url, name: a.name, mimeType: a.mimeType, sizeBytes: BigInt(a.sizeBytes) }),
    ),
    reactions: m.reactions.map((r) => create(ReactionSchema, r)),
    createdAt: timestampFromDate(m.createdAt),
    editedAt: m.editedAt ? timestampFromDate(m.editedAt) : undefined,
    deleted: m.deletedAt !== null,
    lastReplyAt: m.lastReplyAt ? timestampFromDate(m.lastReplyAt) : undefined,
  });
}

export function messageHandler(service: MessageService): Partial<ServiceImpl<typeof MessageServiceDesc>> {
  return {
    async sendMessage(req, ctx) {
      const message = await service.send(caller(ctx).userId, {
        conversationId: req.conversationId,
        clientMessageId: req.clientMessageId,
        content: req.content,
        parentMessageId: req.parentMessageId,
        mentions: req.mentions,
        attachments: attachmentsFromWire(req.attachments),
      });
      return { message: toChatMessage(message) };
    },
    async editMessage(req, ctx) {
      return { message: toChatMessage(await service.edit(caller(ctx).userId, req.messageId, req.content)) };
    },
    async deleteMessage(req, ctx) {
      return { message: toChatMessage(await service.delete(caller(ctx).userId, req.messageId)) };
    },
    async getMessage(req, ctx) {
      return { message: toChatMessage(await service.get(caller(ctx).userId, req.messageId)) };
    },
    async listMessages(req, ctx) {
      const page = await service.list(caller(ctx).userId, {
        conversationId: req.conversationId,
        beforeSeq: req.beforeSeq === undefined ? undefined : seqFromWire(req.beforeSeq),
        afterSeq: req.afterSeq === undefined ? undefined : seqFromWire(req.afterSeq),
        limit: req.limit,
        parentMessageId: req.parentMessageId,
      });
      return { messages: page.messages.map(toChatMessage), hasMore: page.hasMore };
    },
    async addReaction(req, ctx) {
      return { message: toChatMessage(await service.addReaction(caller(ctx).userId, req.messageId, req.emoji)) };
    },
    async removeReaction(req, ctx) {
      return { message: toChatMessage(await service.removeReaction(caller(ctx).userId, req.messageId, req.emoji)) };
    },
    async markRead(req, ctx) {
      const res = await service.markRead(caller(ctx).userId, req.conversationId, seqFromWire(req.seq));
      return { lastReadSeq: BigInt(res.lastReadSeq), unreadCount: res.unreadCount };
    },
    async searchMessages(req, ctx) {
      const res = await service.search(caller(ctx).userId, {
        query: req.query,
        conversationId: req.conversationId,
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        workspaceId: req.workspaceId || undefined,
      });
      return { messages: res.messages.map(toChatMessage), nextPageToken: res.nextPageToken };
    },
    async listReactions(req, ctx) {
      const res = await service.listReactions(caller(ctx).userId, {
        messageId: req.messageId,
        emoji: req.emoji,
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
      return { reactions: res.reactions.map((r) => create(ReactionUsersSchema, r)), nextPageToken: res.nextPageToken };
    },
  };
}
