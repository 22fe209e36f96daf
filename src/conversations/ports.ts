// Ports shared between the conversation and message modules. The conversation module owns the
// membership table and implements MembershipReader; the message module implements
// LastMessagePreviews so ListConversations can show a preview without knowing where messages live.

export type MemberRole = "owner" | "admin" | "member";

export interface MemberState {
  role: MemberRole;
  lastReadSeq: number;
  deliveredSeq: number;
  mutedUntil: Date | null;
  archived: boolean;
}

export interface MembershipReader {
  /** The caller's membership row, or null when they are not a member (or the conversation does not exist). */
  getMember(conversationId: string, userId: string): Promise<MemberState | null>;
  /** Those of `others` who share at least one conversation with `userId` (one round trip). */
  sharingAConversation(userId: string, others: string[]): Promise<Set<string>>;
}

/** The caller's place in a workspace, as the conversation rules need it (implemented by src/workspaces). */
export type WorkspaceRoleName = "owner" | "admin" | "member" | "guest";

export interface WorkspaceAccess {
  /**
   * The workspace a call acts in (`workspaceId`, or the default workspace when
   * undefined) and the caller's role there; WORKSPACE_NOT_FOUND when the caller
   * is not a member.
   */
  resolve(userId: string, workspaceId: string | undefined): Promise<{ workspaceId: string; role: WorkspaceRoleName }>;
}

export interface LastMessagePreview {
  messageId: string;
  seq: number;
  senderId: string;
  content: string;
  createdAt: Date;
  deleted: boolean;
  attachmentCount: number;
}

export interface LastMessagePreviews {
  /** Latest message per conversation; conversations without messages are simply absent from the map. One round trip for the whole batch. */
  previews(conversationIds: string[]): Promise<Map<string, LastMessagePreview>>;
}

/** Used until the message module provides a real implementation. */
export const noPreviews: LastMessagePreviews = {
  previews: async () => new Map(),
};
