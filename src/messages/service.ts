// The domain logic of MessageService: validation, membership and permission
// rules, and the announcement of the events each store write commits with its change. Stores,
// membership and the event sink come in through the constructor.

import type { WorkspaceAccess } from "../conversations/ports.ts";
import { failedPrecondition, invalidArgument, notFound, permissionDenied } from "../shared/errors.ts";
import type { EventSink, LoggedEvent } from "../events/events.ts";
import type { MemberState, MembershipReader } from "../conversations/ports.ts";
import type { MessageStore } from "./store.ts";
import type { Attachment, MessageView, StoredMessage } from "./types.ts";
import { isDeleted } from "./types.ts";
import {
  canonicalId,
  checkContentLength,
  checkEditedContent,
  decodeReactorToken,
  decodeSearchToken,
  encodeReactorToken,
  encodeSearchToken,
  listWindow,
  normalizeAttachments,
  normalizeMentions,
  normalizeSearchQuery,
  optionalId,
  reactionsPageSize,
  readUpTo,
  searchPageSize,
  validateEmoji,
} from "./validation.ts";

export interface SendInput {
  conversationId: string;
  clientMessageId: string;
  content: string;
  parentMessageId: string;
  mentions: string[];
  attachments: Attachment[];
}

export interface ListInput {
  conversationId: string;
  /** Unset (or 0): from the newest. */
  beforeSeq?: number;
  /** Set: oldest first after it; 0 pages from the first message. */
  afterSeq?: number;
  limit: number;
  parentMessageId: string;
}

export interface SearchInput {
  query: string;
  conversationId: string;
  pageSize: number;
  pageToken: string;
  /** Unset: the default workspace, unless conversationId is set. */
  workspaceId?: string;
}

export interface ListReactionsInput {
  messageId: string;
  /** "" for every emoji. */
  emoji: string;
  pageSize: number;
  pageToken: string;
}

/** One emoji of ListReactions: its count in all, the caller's flag, and this page's users. */
export interface ReactionUsers {
  emoji: string;
  count: number;
  reacted: boolean;
  userIds: string[];
}

export interface MessageServiceDeps {
  store: MessageStore;
  members: MembershipReader;
  events: EventSink;
  limits: { messageMaxChars: number };
  now?: () => Date;
  /** Which workspace SearchMessages searches (src/workspaces); without it, all the caller's conversations. */
  workspaces?: WorkspaceAccess;
}

const INT32_MAX = 2 ** 31 - 1;

export class MessageService {
  private readonly store: MessageStore;
  private readonly members: MembershipReader;
  private readonly events: EventSink;
  private readonly maxChars: number;
  private readonly now: () => Date;
  private readonly workspaces: WorkspaceAccess | undefined;

  constructor(deps: MessageServiceDeps) {
    this.workspaces = deps.workspaces;
    this.store = deps.store;
    this.members = deps.members;
    this.events = deps.events;
    this.maxChars = deps.limits.messageMaxChars;
    this.now = deps.now ?? (() => new Date());
  }

  async send(callerId: string, input: SendInput): Promise<MessageView> {
    // The request's shape was checked against the proto's rules at the edge (server/validation.ts).
    const conversationId = canonicalId(input.conversationId);
    const clientMessageId = input.clientMessageId;
    const attachments = normalizeAttachments(input.attachments);
    const content = checkContentLength(input.content, this.maxChars);
    const mentions = normalizeMentions(input.mentions);
    const parentMessageId = optionalId(input.parentMessageId);

    // A plain send is one statement: the store checks membership where it takes the seq.
    // A reply or mentions need reads first (concurrently; nothing is written before the
    // checks pass), and then membership is checked first, so that a non-member learns
    // nothing about the parent or the mentioned users.
    const [member, parent, members] =
      parentMessageId || mentions.length > 0
        ? await Promise.all([
            this.members.getMember(conversationId, callerId),
            parentMessageId ? this.store.get(parentMessageId) : null,
            mentions.length > 0 ? this.store.membersAmong(conversationId, mentions) : new Set<string>(),
          ])
        : [true, null, new Set<string>()];
    if (!member) throw notFound("CONVERSATION_NOT_FOUND", "conversation not found");
    if (parentMessageId) {
      if (!parent || parent.conversationId !== conversationId) {
        throw invalidArgument("parent_message_id", "is not a message of this conversation", "PARENT_NOT_IN_CONVERSATION");
      }
      if (parent.parentMessageId)
        throw invalidArgument("parent_message_id", "must be a top-level message (threads are one level deep)", "THREAD_TOO_DEEP");
      if (isDeleted(parent)) throw failedPrecondition("THREAD_PARENT_DELETED", "the thread's parent message was deleted");
    }
    // Mentions of non-members are dropped, not rejected: membership can change
    // while a message is being typed, and the message itself is still valid.

    // The message and its event commit together; the reply does not wait for the announcement.
    const { message, created } = await this.write(conversationId, (out) =>
      this.store.send(
        {
          conversationId,
          senderId: callerId,
          clientMessageId,
          content,
          parentMessageId,
          mentions: mentions.filter((id) => members.has(id)),
          attachments,
          createdAt: this.now(),
        },
        out,
      ),
    );
    if (created) return { ...message, reactions: [] };
    // A repeat: the original, as it is now (it may have been edited or reacted to since).
    return this.viewOne((await this.store.get(message.id)) ?? message, callerId);
  }

  async get(callerId: string, messageId: string): Promise<MessageView> {
    const { message } = await this.loadVisible(callerId, messageId);
    return this.viewOne(message, callerId);
  }

  async edit(callerId: string, messageId: string, content: string): Promise<MessageView> {
    const id = canonicalId(messageId);
    checkContentLength(content, this.maxChars); // configuration first; emptiness once attachments are known
    const { message } = await this.loadVisible(callerId, id);
    if (message.senderId !== callerId) throw permissionDenied("NOT_SENDER", "only the sender can edit a message");
    if (isDeleted(message)) throw failedPrecondition("MESSAGE_DELETED", "the message was deleted");
    checkEditedContent(content, message.attachments.length > 0);
    const edited = await this.write(message.conversationId, (out) => this.store.edit(id, content, this.now(), out));
    if (!edited) throw failedPrecondition("MESSAGE_DELETED", "the message was deleted");
    return this.viewOne(edited, callerId);
  }

  async delete(callerId: string, messageId: string): Promise<MessageView> {
    const id = canonicalId(messageId);
    const { message, member } = await this.loadVisible(callerId, id);
    if (message.senderId !== callerId && member.role !== "owner" && member.role !== "admin") {
      throw permissionDenied("NOT_SENDER", "only the sender or a conversation owner or admin can delete a message");
    }
    const res = await this.write(message.conversationId, (out) => this.store.softDelete(id, this.now(), out));
    if (!res) throw notFound("MESSAGE_NOT_FOUND", "message not found");
    return { ...res.message, reactions: [] };
  }

  async list(callerId: string, input: ListInput): Promise<{ messages: MessageView[]; hasMore: boolean }> {
    const conversationId = canonicalId(input.conversationId);
    const window = listWindow(input.beforeSeq, input.afterSeq, input.limit);
    const parentMessageId = optionalId(input.parentMessageId);
    // The membership check, the parent and the page are read concurrently (one
    // round trip of latency instead of three); nothing is returned or written
    // before the membership check has passed.
    const [member, parent, page] = await Promise.all([
      this.members.getMember(conversationId, callerId),
      parentMessageId ? this.store.get(parentMessageId) : null,
      this.store.list({ conversationId, parentMessageId, ...window }),
    ]);
    if (!member) throw notFound("CONVERSATION_NOT_FOUND", "conversation not found");
    if (parentMessageId) {
      if (!parent || parent.conversationId !== conversationId) {
        throw invalidArgument("parent_message_id", "is not a message of this conversation", "PARENT_NOT_IN_CONVERSATION");
      }
      if (parent.parentMessageId) throw invalidArgument("parent_message_id", "must be a top-level message", "THREAD_TOO_DEEP");
    }
    return { messages: await this.views(page.messages, callerId), hasMore: page.hasMore };
  }

  async addReaction(callerId: string, messageId: string, emoji: string): Promise<MessageView> {
    const id = canonicalId(messageId);
    const key = validateEmoji(emoji);
    const { message } = await this.loadVisible(callerId, id);
    if (isDeleted(message)) throw failedPrecondition("MESSAGE_DELETED", "the message was deleted");
    await this.write(message.conversationId, (out) => this.store.addReaction(message, callerId, key, this.now(), out));
    return this.viewOne(message, callerId);
  }

  async removeReaction(callerId: string, messageId: string, emoji: string): Promise<MessageView> {
    const id = canonicalId(messageId);
    const key = validateEmoji(emoji);
    const { message } = await this.loadVisible(callerId, id);
    await this.write(message.conversationId, (out) => this.store.removeReaction(message, callerId, key, out));
    return this.viewOne(message, callerId);
  }

  async markRead(callerId: string, conversationId: string, seq: number): Promise<{ lastReadSeq: number; unreadCount: number }> {
    const convId = canonicalId(conversationId);
    const upTo = readUpTo(seq);
    const res = await this.write(convId, (out) => this.store.markRead(convId, callerId, upTo, out));
    if (!res) throw notFound("CONVERSATION_NOT_FOUND", "conversation not found");
    return { lastReadSeq: res.lastReadSeq, unreadCount: Math.min(INT32_MAX, Math.max(0, res.lastSeq - res.lastReadSeq)) };
  }

  async search(callerId: string, input: SearchInput): Promise<{ messages: MessageView[]; nextPageToken: string }> {
    const text = normalizeSearchQuery(input.query);
    const conversationId = optionalId(input.conversationId);
    const limit = searchPageSize(input.pageSize);
    const after = decodeSearchToken(input.pageToken);
    if (conversationId) await this.requireMember(conversationId, callerId, "conversation");
    // A named conversation is searched whatever its workspace; otherwise the
    // caller's conversations of one workspace (default: the default workspace).
    const workspaces = this.workspaces;
    const workspaceId =
      workspaces && (input.workspaceId || !conversationId) ? (await workspaces.resolve(callerId, input.workspaceId)).workspaceId : null;
    const page = await this.store.search({ userId: callerId, text, conversationId, workspaceId, limit, after });
    return { messages: await this.views(page.messages, callerId), nextPageToken: page.next ? encodeSearchToken(page.next) : "" };
  }

  /**
   * Who reacted, for the members of the message's conversation (others get
   * the NOT_FOUND of an unknown message). Paged by (emoji, user id); each
   * emoji of a page carries its total count and the caller's `reacted`.
   */
  async listReactions(callerId: string, input: ListReactionsInput): Promise<{ reactions: ReactionUsers[]; nextPageToken: string }> {
    const id = canonicalId(input.messageId);
    const emoji = input.emoji === "" ? null : validateEmoji(input.emoji);
    const limit = reactionsPageSize(input.pageSize);
    const after = decodeReactorToken(input.pageToken);
    const { message } = await this.loadVisible(callerId, id);
    if (isDeleted(message)) return { reactions: [], nextPageToken: "" };
    const [rows, summaries] = await Promise.all([
      this.store.reactors({ messageId: id, emoji, after, limit: limit + 1 }),
      this.store.reactions([id], callerId),
    ]);
    const page = rows.slice(0, limit);
    const counts = new Map((summaries.get(id) ?? []).map((r) => [r.emoji, r]));
    const reactions: ReactionUsers[] = [];
    for (const r of page) {
      let last = reactions.at(-1);
      if (last?.emoji !== r.emoji) {
        const summary = counts.get(r.emoji);
        last = { emoji: r.emoji, count: summary?.count ?? 0, reacted: summary?.reacted ?? false, userIds: [] };
        reactions.push(last);
      }
      last.userIds.push(r.userId);
    }
    // The two reads are not one snapshot: a reaction added or removed in between
    // must not show fewer users in all than this page lists, or a stale flag for the caller.
    for (const r of reactions) {
      r.count = Math.max(r.count, r.userIds.length);
      if (r.userIds.includes(callerId)) r.reacted = true;
    }
    const next = rows.length > limit ? page.at(-1) : undefined;
    return { reactions, nextPageToken: next ? encodeReactorToken(next) : "" };
  }

  /** A store write whose events (written in its transaction) are announced after it returns. */
  private write<T>(conversationId: string, fn: (out: LoggedEvent[]) => Promise<T>): Promise<T> {
    const out: LoggedEvent[] = [];
    return this.events.track(
      [conversationId],
      () => fn(out),
      () => out,
    );
  }

  private async requireMember(conversationId: string, userId: string, what: "conversation" | "message"): Promise<MemberState> {
    const member = await this.members.getMember(conversationId, userId);
    // Not a member answers like "does not exist", so existence never leaks.
    if (!member)
      throw what === "message" ? notFound("MESSAGE_NOT_FOUND", "message not found") : notFound("CONVERSATION_NOT_FOUND", "conversation not found");
    return member;
  }

  /** The message and the caller's membership; NOT_FOUND unless the caller belongs to its conversation. */
  private async loadVisible(callerId: string, messageId: string): Promise<{ message: StoredMessage; member: MemberState }> {
    const id = canonicalId(messageId);
    const message = await this.store.get(id);
    if (!message) throw notFound("MESSAGE_NOT_FOUND", "message not found");
    const member = await this.requireMember(message.conversationId, callerId, "message");
    return { message, member };
  }

  private async viewOne(message: StoredMessage, viewerId: string): Promise<MessageView> {
    return (await this.views([message], viewerId))[0];
  }

  /** Attaches reaction summaries (one batch for the page); tombstones show none. */
  private async views(messages: StoredMessage[], viewerId: string): Promise<MessageView[]> {
    const live = messages.filter((m) => !isDeleted(m)).map((m) => m.id);
    const reactions = await this.store.reactions(live, viewerId);
    return messages.map((m) => ({ ...m, reactions: isDeleted(m) ? [] : (reactions.get(m.id) ?? []) }));
  }
}
