// The message store: one interface, two adapters (relational: sql-store.ts;
// MongoDB with conversations in the relational store: mongo-store.ts), one
// conformance suite (test/messages/store-conformance.test.ts).
//
// Events: every change writes its event (src/events/events.ts) in the same
// transaction as the change and pushes the logged event onto `out` (the
// transactional outbox: an event exists exactly when its change committed;
// MongoDB's protocol and its crash analysis are in docs/MESSAGES.md).
//
// Membership is not checked here (the service does that through
// MembershipReader); the store only keeps its invariants: seq gapless and
// unique per conversation, (conversation, sender, client_message_id) unique,
// (message, user, emoji) unique, watermarks never moving back.

import type { LastMessagePreviews } from "../conversations/ports.ts";
import type { LoggedEvent } from "../events/events.ts";
import type {
  ListPage,
  ListQuery,
  NewMessage,
  ReactionSummary,
  ReactorCursor,
  ReactorQuery,
  ReadResult,
  SearchPage,
  SearchQuery,
  SendResult,
  StoredMessage,
} from "./types.ts";

export interface MessageStore extends LastMessagePreviews {
  readonly kind: "postgres" | "pglite" | "mongo";
  /** Creates what the adapter needs (Mongo indexes) idempotently; SQL tables come from migrations. */
  init(): Promise<void>;

  /**
   * Stores a message with the next seq of its conversation, atomically with
   * the conversation's last_seq/last_message_at, the sender's read watermark
   * and un-archiving for the other members. A repeat of (conversation,
   * sender, clientMessageId) returns the original with created=false.
   * The sender must be a member, checked in the same statement that takes
   * the seq (so a plain send is one round trip): otherwise, and for an
   * unknown conversation, NOT_FOUND CONVERSATION_NOT_FOUND.
   */
  send(message: NewMessage, out?: LoggedEvent[]): Promise<SendResult>;
  get(messageId: string): Promise<StoredMessage | null>;
  list(query: ListQuery): Promise<ListPage>;
  /** Replaces the content unless the message is deleted; null when it is missing or deleted. */
  edit(messageId: string, content: string, editedAt: Date, out?: LoggedEvent[]): Promise<StoredMessage | null>;
  /**
   * Soft delete: content, attachments, mentions and reactions go, the
   * tombstone keeps its seq. changed=false when it already was deleted.
   */
  softDelete(messageId: string, deletedAt: Date, out?: LoggedEvent[]): Promise<{ message: StoredMessage; changed: boolean } | null>;

  /** True when the reaction was added (false: it already existed). */
  addReaction(message: StoredMessage, userId: string, emoji: string, at: Date, out?: LoggedEvent[]): Promise<boolean>;
  /** True when the reaction was removed (false: there was none). */
  removeReaction(message: StoredMessage, userId: string, emoji: string, out?: LoggedEvent[]): Promise<boolean>;
  /**
   * Who reacted to one message: (emoji, user id) pairs ordered by emoji in
   * code point order (UTF-8 bytes), then user id, strictly after `after`, at
   * most `limit` of them.
   */
  reactors(query: ReactorQuery): Promise<ReactorCursor[]>;
  /** Reaction summaries of many messages in one round trip (per store); messages without reactions are absent. */
  reactions(messageIds: string[], viewerId: string): Promise<Map<string, ReactionSummary[]>>;

  /**
   * Moves the member's read (and delivery) watermark up to `seq`, clamped to
   * the conversation's last seq, never back. Null when not a member.
   */
  markRead(conversationId: string, userId: string, seq: number, out?: LoggedEvent[]): Promise<ReadResult | null>;
  /** The subset of userIds that are members of the conversation. */
  membersAmong(conversationId: string, userIds: string[]): Promise<Set<string>>;

  /** Full-text search over the conversations the user belongs to, newest first; deleted messages never match. */
  search(query: SearchQuery): Promise<SearchPage>;
}

/** Preview text length: enough for a conversation list line. */
export const PREVIEW_CHARS = 200;

export function previewText(content: string): string {
  const cps = Array.from(content);
  return cps.length <= PREVIEW_CHARS ? content : cps.slice(0, PREVIEW_CHARS).join("");
}

/** Stable order for reaction summaries in every adapter: by emoji, code unit order. */
export function sortReactions(list: ReactionSummary[]): ReactionSummary[] {
  return list.sort((a, b) => (a.emoji < b.emoji ? -1 : a.emoji > b.emoji ? 1 : 0));
}
