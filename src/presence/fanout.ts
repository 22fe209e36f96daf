import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { EventSchema } from "../../gen/chat/v1/message_pb.js";
import type { EphemeralStore } from "../stores/ephemeral/ephemeral.ts";
import { conversationChannel, encodeEventEnvelope } from "../realtime/envelope.ts";
import { presenceStatusToPb } from "./handler.ts";
import type { PresenceWatchers } from "./watchers.ts";
import type { Presence, PresenceFanout } from "./types.ts";

/**
 * Delivers presence and typing to streams (through realtime's per-conversation
 * channels, as ephemeral events: no log, no cursor) and presence to
 * WatchPresence calls. A presence change is published once per conversation
 * of the user (a user in 200 conversations: 200 publishes; each node fans out
 * in process and each stream drops repeats of a change it already delivered).
 */
export class StreamPresenceFanout implements PresenceFanout {
  private readonly ephemeral: EphemeralStore;
  private readonly watchers: PresenceWatchers;
  private readonly conversationsOf: (userId: string) => Promise<string[]>;
  private readonly publishTyping: (conversationId: string, userId: string, typing: boolean, version: number) => Promise<void>;

  constructor(deps: {
    ephemeral: EphemeralStore;
    watchers: PresenceWatchers;
    conversationsOf: (userId: string) => Promise<string[]>;
    publishTyping: (conversationId: string, userId: string, typing: boolean, version: number) => Promise<void>;
  }) {
    this.ephemeral = deps.ephemeral;
    this.watchers = deps.watchers;
    this.conversationsOf = deps.conversationsOf;
    this.publishTyping = deps.publishTyping;
  }

  async presenceChanged(p: Presence): Promise<void> {
    const occurredAt = timestampFromDate(new Date());
    const value = {
      userId: p.userId,
      status: presenceStatusToPb(p.status),
      lastSeenAt: p.lastSeenAt ? timestampFromDate(p.lastSeenAt) : undefined,
    };
    await this.watchers.publish(p);
    const conversations = await this.conversationsOf(p.userId);
    await Promise.all(
      conversations.map((conversationId) =>
        this.ephemeral.publish(
          conversationChannel(conversationId),
          encodeEventEnvelope(false, 0, create(EventSchema, { conversationId, occurredAt, payload: { case: "presenceUpdated", value } })),
        ),
      ),
    );
  }

  typingChanged(conversationId: string, userId: string, typing: boolean, version: number): Promise<void> {
    return this.publishTyping(conversationId, userId, typing, version);
  }
}
