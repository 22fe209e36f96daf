import type { SqlDatabase } from "../stores/sql/sql.ts";
import type { MessageStore } from "../messages/store.ts";
import type { ConversationStore } from "../conversations/store.ts";
import type { MessageFacts, NotificationFacts } from "./notifier.ts";
import type { StoredMessage } from "../messages/types.ts";
import type { ConversationRecord } from "../conversations/types.ts";

const KIND_CACHE = 10_000;

/** NotificationFacts over the message store (wherever messages live) and the relational conversation tables. */
export class StoreNotificationFacts implements NotificationFacts {
  private readonly messages: MessageStore;
  private readonly conversations: ConversationStore;
  private readonly sql: SqlDatabase;
  private readonly kinds = new Map<string, { type: ConversationRecord["type"]; directKey: string | null }>();

  constructor(deps: { messages: MessageStore; conversations: ConversationStore; sql: SqlDatabase }) {
    this.messages = deps.messages;
    this.conversations = deps.conversations;
    this.sql = deps.sql;
  }

  async message(conversationId: string, messageId: string, known?: StoredMessage): Promise<MessageFacts | null> {
    const [m, conversation] = await Promise.all([known ?? this.messages.get(messageId), this.kind(conversationId)]);
    if (!m || !conversation || m.conversationId !== conversationId || m.deletedAt) return null;
    const parent = m.parentMessageId ? await this.messages.get(m.parentMessageId) : null;
    const pair = conversation.directKey?.split(":") ?? [];
    return {
      senderId: m.senderId,
      seq: m.seq,
      content: m.content,
      attachmentCount: m.attachments.length,
      createdAt: m.createdAt,
      mentions: m.mentions,
      conversationType: conversation.type,
      directPeerId: conversation.type === "direct" ? (pair.find((id) => id !== m.senderId) ?? null) : null,
      parentSenderId: parent?.senderId ?? null,
    };
  }

  /** A conversation's type and DM key never change: cached (bounded), so a message in a known conversation reads nothing here. */
  private async kind(conversationId: string): Promise<{ type: ConversationRecord["type"]; directKey: string | null } | null> {
    const hit = this.kinds.get(conversationId);
    if (hit) return hit;
    const c = await this.conversations.getConversation(conversationId);
    if (!c) return null;
    if (this.kinds.size >= KIND_CACHE) this.kinds.delete(this.kinds.keys().next().value!);
    const k = { type: c.type, directKey: c.directKey };
    this.kinds.set(conversationId, k);
    return k;
  }

  async workspaceOf(conversationId: string): Promise<string> {
    return (await this.conversations.workspacesOf([conversationId])).get(conversationId) ?? "";
  }

  async members(conversationId: string, userIds: string[]): Promise<Map<string, { mutedUntil: Date | null }>> {
    const { rows } = await this.sql.query<{ user_id: string; muted_until: Date | null }>(
      "SELECT user_id, muted_until FROM conversation_members WHERE conversation_id = $1 AND user_id = ANY($2::uuid[])",
      [conversationId, userIds],
    );
    return new Map(rows.map((r) => [r.user_id, { mutedUntil: r.muted_until }]));
  }
}
