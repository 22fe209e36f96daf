// chat.v1.NotificationService over Connect.

import type { ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  NotificationSchema,
  type NotificationService,
  NotificationType as PbType,
  type Notification as PbNotification,
} from "../../gen/chat/v1/notification_pb.js";
import { caller } from "../server/context.ts";
import { dateFromTimestamp } from "../server/timestamps.ts";
import { decodePageToken, encodePageToken } from "../shared/page-token.ts";
import type { NotificationStore } from "./store.ts";
import type { ListCursor, Notification, NotificationType } from "./types.ts";

const TYPE_TO_PB: Record<NotificationType, PbType> = {
  mention: PbType.MENTION,
  thread_reply: PbType.THREAD_REPLY,
  direct_message: PbType.DIRECT_MESSAGE,
};

/** A stored notification as the API returns it (ListNotifications and the live event), with its conversation's workspace. */
export function toPb(n: Notification, workspaceId: string): PbNotification {
  return create(NotificationSchema, {
    id: n.id,
    workspaceId,
    type: TYPE_TO_PB[n.type],
    conversationId: n.conversationId,
    messageIds: n.messageIds,
    messageCount: n.messageCount,
    senderIds: n.senderIds,
    preview: n.preview,
    createdAt: timestampFromDate(n.createdAt),
    batchedAt: n.batchedAt ? timestampFromDate(n.batchedAt) : undefined,
    seen: n.seenAt !== null,
    seenAt: n.seenAt ? timestampFromDate(n.seenAt) : undefined,
    lastSeq: BigInt(n.lastSeq),
  });
}

function encodeToken(c: ListCursor): string {
  return encodePageToken("ntf1", [c.createdAt.getTime(), c.id]);
}

function decodeToken(token: string): ListCursor | null {
  const v = decodePageToken("page_token", "ntf1", token, ["time_ms", "uuid"]);
  return v && { createdAt: new Date(v[0]), id: v[1] };
}

// Request shapes (page_size 0 to 100, 1 to 500 UUIDs or up_to) are the proto's rules (notification.proto),
// checked before these handlers run (server/validation.ts).
/** `conversations`: where a notification's workspace id comes from (one read per page). */
export function notificationHandler(
  store: NotificationStore,
  conversations: { workspacesOf(ids: string[]): Promise<Map<string, string>> },
): Partial<ServiceImpl<typeof NotificationService>> {
  return {
    async listNotifications(req, ctx) {
      const me = caller(ctx);
      const limit = req.pageSize || 20;
      const page = await store.list(me.userId, { limit: limit + 1, after: decodeToken(req.pageToken), unseenOnly: req.unseenOnly });
      const items = page.slice(0, limit);
      const last = items[items.length - 1];
      const workspaces = await conversations.workspacesOf([...new Set(items.map((n) => n.conversationId))]);
      return {
        notifications: items.map((n) => toPb(n, workspaces.get(n.conversationId) ?? "")),
        nextPageToken: page.length > limit && last ? encodeToken({ createdAt: last.createdAt, id: last.id }) : "",
        unseenCount: await store.unseenCount(me.userId),
      };
    },
    async markNotificationsSeen(req, ctx) {
      const me = caller(ctx);
      const marked = await store.markSeen(
        me.userId,
        { ids: req.notificationIds.map((id) => id.toLowerCase()), upTo: req.upTo ? dateFromTimestamp("up_to", req.upTo) : null },
        new Date(),
      );
      return { markedCount: marked };
    },
  };
}
