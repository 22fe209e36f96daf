// What realtime needs from the other modules, as small interfaces. The
// message store is adapted to MessageReader below; the conversation store
// satisfies ConversationReader as it is; MemberDirectory is implemented here over
// the conversation tables (sql-directory.ts); UnaryMessageOps are the
// MessageService handlers themselves, so a `send` frame behaves exactly like
// SendMessage (validation, idempotency, events).

import type { HandlerContext } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ConversationRecord } from "../conversations/types.ts";
import type { MessageStore } from "../messages/store.ts";
import type { LoggedEvent } from "../events/events.ts";
import type { ReactionSummary, StoredMessage } from "../messages/types.ts";
import type { MarkReadRequest, MarkReadResponseSchema, SendMessageRequest, SendMessageResponseSchema } from "../../gen/chat/v1/message_pb.js";

export interface MessageReader {
  get(messageId: string): Promise<StoredMessage | null>;
  /** Messages (thread replies included) with seq > afterSeq, oldest first, at most `limit`. */
  listAfter(conversationId: string, afterSeq: number, limit: number): Promise<StoredMessage[]>;
  reactions(messageIds: string[], viewerId: string): Promise<Map<string, ReactionSummary[]>>;
}

/** The message module's store seen through MessageReader. */
export function messageReaderOf(store: MessageStore): MessageReader {
  return {
    get: (id) => store.get(id),
    listAfter: async (conversationId, afterSeq, limit) =>
      (await store.list({ conversationId, direction: "after", seq: afterSeq, limit, parentMessageId: null })).messages,
    reactions: (ids, viewerId) => store.reactions(ids, viewerId),
  };
}

export interface ConversationReader {
  getConversation(id: string): Promise<ConversationRecord | null>;
  /** The workspace of each of these conversations (unknown ids are absent). One round trip. */
  workspacesOf(ids: string[]): Promise<Map<string, string>>;
}

export interface DeliveredWatermark {
  conversationId: string;
  deliveredSeq: number;
  readSeq: number;
}

export interface MemberDirectory {
  /** Ids of every conversation the user belongs to now. */
  conversationsOf(userId: string): Promise<string[]>;
  /**
   * Moves the user's delivery watermarks forward (never back, never past the
   * conversation's last seq); returns only the ones that moved, and the
   * receipt_updated events logged with them (same statement).
   */
  markDelivered(userId: string, upTo: Map<string, number>): Promise<{ moved: DeliveredWatermark[]; events: LoggedEvent[] }>;
}

/** The unary MessageService handlers a `send` / `mark_read` frame goes through. */
export interface UnaryMessageOps {
  sendMessage(
    req: SendMessageRequest,
    ctx: HandlerContext,
  ): MessageInitShape<typeof SendMessageResponseSchema> | Promise<MessageInitShape<typeof SendMessageResponseSchema>>;
  markRead(
    req: MarkReadRequest,
    ctx: HandlerContext,
  ): MessageInitShape<typeof MarkReadResponseSchema> | Promise<MessageInitShape<typeof MarkReadResponseSchema>>;
}

/** Takes a stream's typing frame (the membership is already checked). */
export type TypingSink = (conversationId: string, userId: string, typing: boolean) => Promise<void>;

/**
 * Presence (issue 7) plugs in here: a user is online while one of their
 * devices holds a stream that keeps heart-beating.
 */
export interface StreamHooks {
  opened(info: StreamInfo): void;
  heartbeat(info: StreamInfo): void;
  closed(info: StreamInfo): void;
}

export interface StreamInfo {
  userId: string;
  sessionId: string;
  deviceId: string;
  kind: "stream" | "subscribe";
}

export const noHooks: StreamHooks = { opened() {}, heartbeat() {}, closed() {} };

/**
 * Verifies a fresh access token handed over a stream (`refresh_auth`): the
 * same check as the auth interceptor's (signature, expiry, revocation).
 */
export interface AccessTokenCheck {
  verify(token: string): Promise<{ userId: string; sessionId: string }>;
}
