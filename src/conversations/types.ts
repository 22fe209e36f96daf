// Domain types for conversations and memberships (no protobuf here).

import type { LastMessagePreview, MemberRole } from "./ports.ts";

export type { MemberRole } from "./ports.ts";
export type ConversationKind = "direct" | "group" | "channel";
export type Visibility = "public" | "private";

export interface ConversationRecord {
  id: string;
  type: ConversationKind;
  title: string;
  description: string;
  visibility: Visibility;
  ownerId: string | null;
  memberCount: number;
  lastSeq: number;
  lastMessageAt: Date;
  createdAt: Date;
  updatedAt: Date;
  /** "<smaller uuid>:<larger uuid>" for DMs, else null. */
  directKey: string | null;
  /** The workspace it belongs to (docs/WORKSPACES.md). */
  workspaceId: string;
}

export interface MemberRecord {
  conversationId: string;
  userId: string;
  role: MemberRole;
  joinedAt: Date;
  lastReadSeq: number;
  deliveredSeq: number;
  mutedUntil: Date | null;
  archived: boolean;
}

/** A conversation as one user sees it; `member` is null when they are not a member (public channels). */
export interface ConversationView {
  conversation: ConversationRecord;
  member: MemberRecord | null;
  /** The other user of a DM (the caller themselves for a DM with oneself). */
  peerUserId: string | null;
  unreadCount: number;
  lastMessage: LastMessagePreview | null;
}

/**
 * Position in the caller's activity-ordered list: last_message_at in whole
 * microseconds since the epoch (Postgres precision; a JS Date would lose it
 * and break the keyset) and the id as tie-breaker.
 */
export interface ActivityCursor {
  activityMicros: number;
  id: string;
}

/** Who performs a change, for authorization and the audit log. */
export interface Actor {
  userId: string;
  clientAddress?: string;
}

export interface ConversationLimits {
  groupMaxMembers: number;
  channelMaxMembers: number;
  addMembersMaxBatch: number;
  titleMaxChars: number;
  descriptionMaxChars: number;
}

export const ROLE_RANK: Record<MemberRole, number> = { member: 1, admin: 2, owner: 3 };

export function directKey(a: string, b: string): string {
  return a < b ? `${a}:${b}` : `${b}:${a}`;
}

export function peerOf(directKeyValue: string, userId: string): string {
  const [a, b] = directKeyValue.split(":");
  return a === userId ? b : a;
}
