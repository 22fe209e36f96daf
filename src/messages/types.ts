// Domain shapes of the message module. Plain data: no protobuf, no store types.

export interface Attachment {
  url: string;
  name: string;
  mimeType: string;
  sizeBytes: number;
}

export interface StoredMessage {
  id: string;
  conversationId: string;
  /** Per conversation: 1, 2, 3, ... with no gap and no duplicate. */
  seq: number;
  senderId: string;
  clientMessageId: string;
  /** Empty once deleted. */
  content: string;
  parentMessageId: string | null;
  mentions: string[];
  attachments: Attachment[];
  /** On thread parents: how many replies (tombstoned replies included, like their seq). */
  replyCount: number;
  lastReplyAt: Date | null;
  createdAt: Date;
  editedAt: Date | null;
  deletedAt: Date | null;
}

export interface ReactionSummary {
  emoji: string;
  count: number;
  /** True when the viewer is one of those who reacted. */
  reacted: boolean;
}

/** A message as a caller sees it: with the reaction summary for that caller. */
export interface MessageView extends StoredMessage {
  reactions: ReactionSummary[];
}

/** What SendMessage asks the store to write; the store allocates seq. */
export interface NewMessage {
  conversationId: string;
  senderId: string;
  clientMessageId: string;
  content: string;
  parentMessageId: string | null;
  /** Already filtered to members and de-duplicated. */
  mentions: string[];
  attachments: Attachment[];
  createdAt: Date;
}

export interface SendResult {
  message: StoredMessage;
  /** False when (conversation, sender, client_message_id) already existed: `message` is the original. */
  created: boolean;
}

export interface ListQuery {
  conversationId: string;
  /**
   * "before": seq < seq (0: from the newest), newest first.
   * "after": seq > seq (0: from the first), oldest first.
   */
  direction: "before" | "after";
  seq: number;
  limit: number;
  /** Only the replies of this thread parent. */
  parentMessageId: string | null;
}

export interface ListPage {
  messages: StoredMessage[];
  hasMore: boolean;
}

/** Keyset position in search results: newest first, equal times by seq (then id, across conversations). */
export interface SearchCursor {
  createdAt: Date;
  seq: number;
  id: string;
}

export interface SearchQuery {
  userId: string;
  /** Already validated: contains at least one word character. */
  text: string;
  /** Restrict to one conversation (the caller's membership is checked by the service). */
  conversationId: string | null;
  /** Only conversations of this workspace (docs/WORKSPACES.md); unset: all the user's conversations. */
  workspaceId?: string | null;
  limit: number;
  after: SearchCursor | null;
}

export interface SearchPage {
  messages: StoredMessage[];
  next: SearchCursor | null;
}

export interface ReadResult {
  /** The caller's watermark after the call (never lower than before). */
  lastReadSeq: number;
  /** The conversation's last seq, for unread = lastSeq - lastReadSeq. */
  lastSeq: number;
  /** True when the watermark moved. */
  changed: boolean;
  deliveredSeq: number;
}

export function isDeleted(m: StoredMessage): boolean {
  return m.deletedAt !== null;
}

/** A position in the (emoji, user id) order of ListReactions. */
export interface ReactorCursor {
  emoji: string;
  userId: string;
}

export interface ReactorQuery {
  messageId: string;
  /** Only this emoji; null for all. */
  emoji: string | null;
  /** Strictly after this (emoji, user id); null from the start. */
  after: ReactorCursor | null;
  limit: number;
}
