// The live side of notifications: a created or grown notification goes to its
// user's open streams on every node, through realtime's per-user channel, as an
// ephemeral event (no log, no cursor; ListNotifications is the truth after a
// reconnect).

import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { EventSchema } from "../../gen/chat/v1/message_pb.js";
import type { EphemeralStore } from "../stores/ephemeral/ephemeral.ts";
import { encodeEventEnvelope, userChannel } from "../realtime/envelope.ts";
import { toPb } from "./handler.ts";
import type { NotificationLive } from "./notifier.ts";
import type { Notification } from "./types.ts";

export class StreamNotificationLive implements NotificationLive {
  private readonly ephemeral: EphemeralStore;
  private readonly conversations: { workspacesOf(ids: string[]): Promise<Map<string, string>> };

  /** `conversations`: where the event's and the notification's workspace id come from. */
  constructor(ephemeral: EphemeralStore, conversations: { workspacesOf(ids: string[]): Promise<Map<string, string>> }) {
    this.ephemeral = ephemeral;
    this.conversations = conversations;
  }

  async changed(userId: string, n: Notification, unseenCount: number): Promise<void> {
    const workspaceId = (await this.conversations.workspacesOf([n.conversationId])).get(n.conversationId) ?? "";
    const event = create(EventSchema, {
      conversationId: n.conversationId,
      workspaceId,
      occurredAt: timestampFromDate(new Date()),
      payload: { case: "notificationCreated", value: { notification: toPb(n, workspaceId), unseenCount } },
    });
    await this.ephemeral.publish(userChannel(userId), encodeEventEnvelope(false, 0, event));
  }
}
