import type { SqlDatabase } from "../stores/sql/sql.ts";
import type { MessageStore } from "../messages/store.ts";
import type { ConversationStore } from "../conversations/store.ts";
import type { MessageFacts, NotificationFacts } from "./notifier.ts";

/** NotificationFacts over the message store (wherever messages live) and the relational conversation tables. */
export class StoreNotificationFacts implements NotificationFacts {
  private readonly messages: MessageStore;
  private readonly conversations: ConversationStore;
  private readonly sql: SqlDatabase;

  constructor(deps: { messages: MessageStore; conversations: ConversationStore; sql: SqlDatabase }) {
    this.messages = deps.messages;
    this.conversations = deps.conversations;
    this.sql = deps.sql;
  }

  async message(conversationId: string, messageId: string): Promise<MessageFacts | null> {
    const [m, conversation] = await Promise.all([this.messages.get(messageId), this.conversations.getConversation(conversationId)]);
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

  async members(conversationId: string, userIds: string[]): Promise<Map<string, { mutedUntil: Date | null }>> {
    const { rows } = await this.sql.query<{ user_id: string; muted_until: Date | null }>(
      "SELECT user_id, muted_until FROM conversation_members WHERE conversation_id = $1 AND user_id = ANY($2::uuid[])",
      [conversationId, userIds],
    );
    return new Map(rows.map((r) => [r.user_id, { mutedUntil: r.muted_until }]));
  }
}
