// The conversation store: what the domain layer needs from persistence.
// Rules (who may do what) live in service.ts; the store provides atomic
// building blocks, and `mutate` runs a decision and its writes in one
// transaction with the conversation row locked, so checks like "is this the
// last owner" or "is the conversation full" cannot race.

import type { MembershipReader, WorkspaceRoleName } from "./ports.ts";
import type { DomainEvent, LoggedEvent } from "../events/events.ts";
import type { ActivityCursor, ConversationKind, ConversationRecord, MemberRecord, MemberRole, Visibility } from "./types.ts";

export interface NewConversation {
  type: Exclude<ConversationKind, "direct">;
  title: string;
  description: string;
  visibility: Visibility;
  ownerId: string;
  /** Unset: the default workspace (as the column's default). */
  workspaceId?: string;
}

export interface AuditEntry {
  actorId: string | null;
  action: string;
  conversationId: string;
  metadata?: Record<string, unknown>;
  clientAddress?: string;
}

/** A row of the caller's conversation list, with the exact keyset position. */
export interface MembershipRow {
  conversation: ConversationRecord;
  member: MemberRecord;
  cursor: ActivityCursor;
}

/** Thrown by the store; the domain layer turns them into API errors. */
export class ChannelNameTaken extends Error {
  override name = "ChannelNameTaken";
}
export class UnknownUsers extends Error {
  override name = "UnknownUsers";
  readonly userIds: string[];
  constructor(userIds: string[]) {
    super(`unknown users: ${userIds.join(", ")}`);
    this.userIds = userIds;
  }
}

export interface ConversationPatch {
  title?: string;
  description?: string;
  visibility?: Visibility;
}

/** Operations available while the conversation row is locked (inside one transaction). */
export interface LockedConversation {
  /** The conversation as of the lock (kept current by this object's own writes). */
  readonly conversation: ConversationRecord;
  member(userId: string): Promise<MemberRecord | null>;
  /** Which of `userIds` are members already. */
  existingMembers(userIds: string[]): Promise<Set<string>>;
  /** Which of `userIds` are not members of the conversation's workspace (unknown users included). */
  unknownUsers(userIds: string[]): Promise<string[]>;
  /** The user's role in the conversation's workspace; null when not a member of it. */
  workspaceRole(userId: string): Promise<WorkspaceRoleName | null>;
  countOwners(): Promise<number>;
  /** Inserts new members (ignoring existing ones) and bumps member_count by the number actually inserted. */
  addMembers(userIds: string[], role: MemberRole): Promise<string[]>;
  /** Deletes a membership; decrements member_count only when a row was deleted. */
  removeMember(userId: string): Promise<boolean>;
  setRole(userId: string, role: MemberRole): Promise<MemberRecord | null>;
  update(patch: ConversationPatch): Promise<void>;
  /** Points owner_id at the longest-standing owner (or null when none is left). */
  refreshOwner(): Promise<void>;
  audit(entry: Omit<AuditEntry, "conversationId">): Promise<void>;
  /**
   * Events this change announces, logged in the same transaction when fn
   * returns (a conversation_updated gets the conversation as it is then).
   */
  emit(events: DomainEvent[]): void;
}

export interface ConversationStore extends MembershipReader {
  getConversation(id: string): Promise<ConversationRecord | null>;
  getMemberRecord(conversationId: string, userId: string): Promise<MemberRecord | null>;
  /** The user's role in a workspace; null when not a member of it. */
  workspaceRole(workspaceId: string, userId: string): Promise<WorkspaceRoleName | null>;
  /** The workspace of each of these conversations (unknown ids are absent). One round trip. */
  workspacesOf(ids: string[]): Promise<Map<string, string>>;
  /** The groups and channels of the workspace the user has a membership row in (whether or not still in the workspace). */
  groupsAndChannelsOf(userId: string, workspaceId: string): Promise<string[]>;

  /**
   * Creates a group or channel with its first members (owner first), logging
   * their member_joined events onto `out`. Throws ChannelNameTaken / UnknownUsers
   * (members that are not members of the workspace count as unknown).
   */
  createConversation(
    input: NewConversation,
    members: { userId: string; role: MemberRole }[],
    audit: Omit<AuditEntry, "conversationId">,
    out?: LoggedEvent[],
  ): Promise<ConversationRecord>;

  /**
   * The one DM between two users (the same user twice: a DM with oneself),
   * created with both memberships on first use. Concurrent callers agree on
   * one row; exactly one of them sees created=true. One DM per pair per
   * workspace (unset: the default workspace); both must be members of it, else UnknownUsers.
   */
  getOrCreateDirect(
    a: string,
    b: string,
    audit: Omit<AuditEntry, "conversationId">,
    out?: LoggedEvent[],
    workspaceId?: string,
  ): Promise<{ conversation: ConversationRecord; created: boolean }>;

  /** Runs fn with the conversation row locked, then logs what it emitted; null when the conversation does not exist. */
  mutate<T>(
    conversationId: string,
    fn: (locked: LockedConversation) => Promise<T>,
  ): Promise<{ result: T; conversation: ConversationRecord; events: LoggedEvent[] } | null>;

  /** The caller's conversations, most recent activity first, strictly after `after`. One query. */
  listForUser(
    userId: string,
    opts: { limit: number; after: ActivityCursor | null; includeArchived: boolean; workspaceId?: string },
  ): Promise<MembershipRow[]>;

  /** Public channels by lower-cased name, strictly after `afterNameKey`, optionally by name prefix; with the caller's membership if any. One query. */
  listPublicChannels(
    userId: string,
    opts: { limit: number; afterNameKey: string | null; prefix: string; workspaceId?: string },
  ): Promise<{ conversation: ConversationRecord; member: MemberRecord | null }[]>;

  /** Members by user id, strictly after `afterUserId`. */
  listMembers(conversationId: string, opts: { limit: number; afterUserId: string | null }): Promise<MemberRecord[]>;

  /** The member's own settings; undefined leaves a field unchanged. Null when not a member. */
  updateMemberSettings(
    conversationId: string,
    userId: string,
    settings: { mutedUntil?: Date | null; archived?: boolean },
  ): Promise<MemberRecord | null>;
}
