export type NotificationType = "mention" | "thread_reply" | "direct_message";

/** Strongest reason first: a batch takes the strongest type of its messages. */
export const TYPE_RANK: Record<NotificationType, number> = { direct_message: 1, thread_reply: 2, mention: 3 };

export interface Notification {
  id: string;
  userId: string;
  conversationId: string;
  type: NotificationType;
  /** The first 50 messages summarised, oldest first. */
  messageIds: string[];
  messageCount: number;
  senderIds: string[];
  preview: string;
  lastSeq: number;
  createdAt: Date;
  windowEndsAt: Date;
  batchedAt: Date | null;
  seenAt: Date | null;
}

/** One message to fold into a user's batch for a conversation. */
export interface BatchEntry {
  userId: string;
  conversationId: string;
  type: NotificationType;
  messageId: string;
  senderId: string;
  seq: number;
  preview: string;
  at: Date;
  windowMs: number;
}

/** Keyset position in a user's list (newest first). */
export interface ListCursor {
  createdAt: Date;
  id: string;
}

/** Where flushed notifications go (a webhook to APNs/FCM gateways, or nothing). */
export interface PushSender {
  send(n: Notification): Promise<void>;
}

export const MAX_IDS_PER_NOTIFICATION = 50;

/** Fixed windows: every message of the same user, conversation and window lands in one row. */
export function batchKey(e: Pick<BatchEntry, "userId" | "conversationId" | "at" | "windowMs">): { key: string; start: Date; end: Date } {
  const start = Math.floor(e.at.getTime() / e.windowMs) * e.windowMs;
  return { key: `${e.userId}:${e.conversationId}:${start}`, start: new Date(start), end: new Date(start + e.windowMs) };
}
