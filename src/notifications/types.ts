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
/** A notification as pushed: with its conversation's workspace (docs/WORKSPACES.md). */
export interface PushedNotification extends Notification {
  workspaceId: string;
}

export interface PushSender {
  send(n: PushedNotification): Promise<void>;
}

export const MAX_IDS_PER_NOTIFICATION = 50;

/**
 * Leading-edge windows: the first qualifying message for a user in a
 * conversation opens a batch whose window ends `windowMs` later; every message
 * until that batch is pushed folds into it. At most one batch per user and
 * conversation is open at a time, across nodes: while open it holds this key
 * (unique in both stores); claiming it for push releases the key, so the next
 * message opens a new batch.
 */
export function openBatchKey(userId: string, conversationId: string): string {
  return `open:${userId}:${conversationId}`;
}

/** The key a claimed batch keeps (unique, never reused). */
export function closedBatchKey(id: string): string {
  return `closed:${id}`;
}
