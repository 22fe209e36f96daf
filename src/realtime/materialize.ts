// Turns logged events (ids and seqs) into full chat.v1.Event messages: the
// ChatMessage for message_created / message_edited from the message store,
// the Conversation for conversation_updated. Used for live fan-out (once per
// event, by the node that published it) and for replay (per stream).
//
// Events logged since issue 12 carry what they announce (the stored message,
// the conversation after the change, reaction counts), so `build` makes the
// Event from the log row alone, with no read: live fan-out and replay alike.
// Rows logged before that (ids only) are still materialised by reading the
// stores (`materialize`'s fallback), for as long as retention keeps them.
//
// Events are viewer-independent: a ChatMessage's reactions carry counts with
// `reacted` false, and reaction_updated says who reacted and the new count, so
// a client sets `reacted` for itself (its own user id) and keeps it.

import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { DomainEvent } from "../events/events.ts";
import { EventSchema, type ChatMessage, type Event } from "../../gen/chat/v1/message_pb.js";
import { ConversationSchema, MemberRole } from "../../gen/chat/v1/conversation_pb.js";
import { toChatMessage } from "../messages/handler.ts";
import { toPbConversation } from "../conversations/handler.ts";
import type { StoredMessage } from "../messages/types.ts";
import type { LoggedEvent } from "./event-log.ts";
import type { ConversationReader, MessageReader } from "./ports.ts";

const ROLE: Record<string, MemberRole> = { owner: MemberRole.OWNER, admin: MemberRole.ADMIN, member: MemberRole.MEMBER };
/** A seq range wider than this is fetched message by message instead of as one page. */
const RANGE_MAX = 200;
/** Conversation -> workspace ids kept (the mapping never changes; the cache starts over when full). */
const WORKSPACE_CACHE_MAX = 100_000;

export class EventMaterializer {
  private readonly messages: MessageReader;
  private readonly conversations: ConversationReader;
  /** Every Event says its workspace: a conversation's never changes, so it is read once per node. */
  private readonly workspaces = new Map<string, string>();

  constructor(deps: { messages: MessageReader; conversations: ConversationReader }) {
    this.messages = deps.messages;
    this.conversations = deps.conversations;
  }

  /** Loads the workspace ids of these conversations not known yet (one read; none when all are cached). */
  async warm(conversationIds: string[]): Promise<void> {
    const missing = [...new Set(conversationIds)].filter((id) => id && !this.workspaces.has(id));
    if (missing.length === 0) return;
    const found = await this.conversations.workspacesOf(missing);
    if (this.workspaces.size + found.size > WORKSPACE_CACHE_MAX) this.workspaces.clear();
    for (const [id, ws] of found) this.workspaces.set(id, ws);
  }

  /** The conversation's workspace id when known (warm first); "" otherwise. */
  workspaceOf(conversationId: string): string {
    return this.workspaces.get(conversationId) ?? "";
  }

  /** The Event of one logged event from its payload alone; null for a row logged before payloads carried it. */
  tryBuild(l: LoggedEvent): Event | null {
    const e = l.event;
    if ((e.type === "message_created" || e.type === "message_edited") && !e.message) return null;
    if (e.type === "conversation_updated" && !e.conversation) return null;
    const chat = (): ChatMessage => {
      const m = (e as { message: StoredMessage }).message;
      const counts = e.type === "message_edited" && !m.deletedAt ? (e.reactions ?? []) : [];
      return toChatMessage({ ...m, reactions: counts.map((r) => ({ emoji: r.emoji, count: r.count, reacted: false })) });
    };
    const conversations = new Map(e.type === "conversation_updated" ? [[e.conversationId, e.conversation ?? null]] : []);
    return create(EventSchema, {
      conversationId: e.conversationId,
      workspaceId: this.workspaceOf(e.conversationId),
      occurredAt: timestampFromDate(l.createdAt),
      payload: this.payload(e, chat, conversations),
    });
  }

  /** Like tryBuild; a legacy row becomes what it says without the store (live publishing never reads). */
  build(l: LoggedEvent): Event {
    const built = this.tryBuild(l);
    if (built) return built;
    const e = l.event as { messageId?: string; seq?: number };
    const placeholderChat = () => toChatMessage({ ...placeholder(e.messageId ?? "", e.seq ?? 0, l.event.conversationId), reactions: [] });
    return create(EventSchema, {
      conversationId: l.event.conversationId,
      workspaceId: this.workspaceOf(l.event.conversationId),
      occurredAt: timestampFromDate(l.createdAt),
      payload: this.payload(l.event, placeholderChat, new Map()),
    });
  }

  /**
   * One Event per logged event, same order, cursor empty. Rows with their
   * payload need no read; legacy rows are read from the stores. `viewerId`
   * selects the reaction view of legacy rows; "" for none.
   */
  async materialize(logged: LoggedEvent[], viewerId: string, known: Map<string, StoredMessage> = new Map()): Promise<Event[]> {
    await this.warm(logged.map((l) => l.event.conversationId));
    const out: (Event | null)[] = logged.map((l) => this.tryBuild(l));
    const legacy = logged.filter((_, i) => out[i] === null);
    if (legacy.length === 0) return out as Event[];
    const built = await this.materializeLegacy(legacy, viewerId, known);
    let k = 0;
    return out.map((e) => e ?? built[k++]);
  }

  private async materializeLegacy(logged: LoggedEvent[], viewerId: string, known: Map<string, StoredMessage>): Promise<Event[]> {
    const byId = await this.loadMessages(logged, known);
    const withReactions = logged
      .filter((l) => l.event.type === "message_edited" || (l.event.type === "message_created" && viewerId !== ""))
      .map((l) => (l.event as { messageId: string }).messageId)
      .filter((id) => byId.get(id)?.deletedAt === null);
    const reactions = withReactions.length ? await this.messages.reactions([...new Set(withReactions)], viewerId) : new Map();
    const conversationIds = [...new Set(logged.filter((l) => l.event.type === "conversation_updated").map((l) => l.event.conversationId))];
    const conversations = new Map(await Promise.all(conversationIds.map(async (id) => [id, await this.conversations.getConversation(id)] as const)));
    return logged.map((l) => {
      const e = l.event;
      const chat = (): ChatMessage => {
        const { messageId: id, seq } = e as { messageId: string; seq: number };
        const m = byId.get(id);
        // Gone from the store (cannot happen for soft deletes): say what we know.
        if (!m) return toChatMessage({ ...placeholder(id, seq, e.conversationId), reactions: [] });
        return toChatMessage({ ...m, reactions: m.deletedAt ? [] : (reactions.get(id) ?? []) });
      };
      return create(EventSchema, {
        conversationId: e.conversationId,
        workspaceId: this.workspaceOf(e.conversationId),
        occurredAt: timestampFromDate(l.createdAt),
        payload: this.payload(e, chat, conversations),
      });
    });
  }

  private payload(
    e: DomainEvent,
    chat: () => ChatMessage,
    conversations: Map<string, Awaited<ReturnType<ConversationReader["getConversation"]>>>,
  ): Event["payload"] {
    switch (e.type) {
      case "message_created":
        return { case: "messageCreated", value: { $typeName: "chat.v1.MessageCreated", message: chat() } };
      case "message_edited":
        return { case: "messageEdited", value: { $typeName: "chat.v1.MessageEdited", message: chat() } };
      case "message_deleted":
        return { case: "messageDeleted", value: { $typeName: "chat.v1.MessageDeleted", messageId: e.messageId, seq: BigInt(e.seq) } };
      case "reaction_updated":
        return {
          case: "reactionUpdated",
          value: {
            $typeName: "chat.v1.ReactionUpdated",
            messageId: e.messageId,
            emoji: e.emoji,
            userId: e.userId,
            added: e.added,
            count: e.count ?? 0,
          },
        };
      case "receipt_updated":
        return {
          case: "receiptUpdated",
          value: { $typeName: "chat.v1.ReceiptUpdated", userId: e.userId, deliveredSeq: BigInt(e.deliveredSeq), readSeq: BigInt(e.readSeq) },
        };
      case "conversation_updated": {
        const c = conversations.get(e.conversationId);
        const conversation = c
          ? create(ConversationSchema, {
              ...toPbConversation({ conversation: c, member: null, peerUserId: null, unreadCount: 0, lastMessage: null }),
              joined: true,
            })
          : create(ConversationSchema, { id: e.conversationId });
        return { case: "conversationUpdated", value: { $typeName: "chat.v1.ConversationUpdated", conversation } };
      }
      case "member_joined":
        return { case: "memberJoined", value: { $typeName: "chat.v1.MemberJoined", userId: e.userId, role: ROLE[e.role] ?? MemberRole.MEMBER } };
      case "member_left":
        return { case: "memberLeft", value: { $typeName: "chat.v1.MemberLeft", userId: e.userId, removed: e.removed } };
    }
  }

  /** The messages behind message_created / message_edited, with as few reads as the store allows. */
  private async loadMessages(logged: LoggedEvent[], known: Map<string, StoredMessage>): Promise<Map<string, StoredMessage>> {
    const byId = new Map<string, StoredMessage>();
    const wanted: { id: string; seq: number; conversationId: string }[] = [];
    for (const l of logged) {
      const e = l.event;
      if (e.type !== "message_created" && e.type !== "message_edited") continue;
      // An edit must show the edited content: only trust `known` for creations.
      const k = e.type === "message_created" ? known.get(e.messageId) : undefined;
      if (k) byId.set(e.messageId, k);
      else wanted.push({ id: e.messageId, seq: e.seq, conversationId: e.conversationId });
    }
    if (wanted.length === 0) return byId;
    // Replays of one conversation: one page by seq covers a run of creations.
    const remaining = new Map(wanted.map((w) => [w.id, w]));
    if (wanted.length > 2) {
      const conversationId = wanted[0].conversationId;
      const seqs = wanted.filter((w) => w.conversationId === conversationId).map((w) => w.seq);
      const lo = Math.min(...seqs);
      const hi = Math.max(...seqs);
      if (hi - lo < RANGE_MAX) {
        for (const m of await this.messages.listAfter(conversationId, lo - 1, hi - lo + 1)) {
          if (remaining.has(m.id)) {
            byId.set(m.id, m);
            remaining.delete(m.id);
          }
        }
      }
    }
    const rest = await Promise.all([...remaining.keys()].map((id) => this.messages.get(id)));
    for (const m of rest) if (m) byId.set(m.id, m);
    return byId;
  }
}

function placeholder(id: string, seq: number, conversationId: string): StoredMessage {
  return {
    id,
    conversationId,
    seq,
    senderId: "",
    clientMessageId: "",
    content: "",
    parentMessageId: null,
    mentions: [],
    attachments: [],
    replyCount: 0,
    lastReplyAt: null,
    createdAt: new Date(0),
    editedAt: null,
    deletedAt: new Date(0),
  };
}
