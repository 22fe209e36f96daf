// One conversation's (or one thread's) messages as an app shows them: the
// timeline reconciliation. Confirmed messages ordered by seq, then the
// caller's own pending sends in send order. Every way a message can arrive
// (history page, SendMessage reply, live or replayed event, gap fill) goes
// through `upsert`, keyed by seq and by (sender, client_message_id), so
// nothing is ever shown twice; edits, deletes and reaction counts change the
// one entry in place. Plain data (`messageData` turns a ChatMessage into it),
// no DOM: tested in Node (test/client/message-list.test.ts). The web app's
// view model; `Timeline` (state.ts) is the leaner one over protobuf messages.

import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { ChatMessage } from "../../gen/chat/v1/message_pb.js";

export interface ReactionView {
  emoji: string;
  count: number;
  reacted: boolean;
}

/** A stored message, as the server returned it. */
export interface MessageData {
  id: string;
  conversationId: string;
  seq: number;
  senderId: string;
  clientMessageId: string;
  content: string;
  createdAt: Date | null;
  editedAt: Date | null;
  deleted: boolean;
  reactions: ReactionView[];
  /** A thread reply: its parent (top-level messages: ""). */
  parentMessageId: string;
  /** A thread parent: how many replies it has. */
  replyCount: number;
  /** User ids mentioned. */
  mentions: string[];
}

export type MessageState = "pending" | "sent" | "failed";

export interface TimelineItem extends MessageData {
  /** Stable across the pending -> sent transition, so the UI keeps one element. */
  key: string;
  state: MessageState;
  error: string | null;
  /** Bumped on every change, so a renderer can skip unchanged items. */
  rev: number;
}

const keyOf = (senderId: string, clientMessageId: string, id: string) => (clientMessageId ? `c:${senderId}:${clientMessageId}` : `m:${id}`);

export class MessageList {
  readonly conversationId: string;
  private readonly bySeq = new Map<number, TimelineItem>();
  private readonly byId = new Map<string, TimelineItem>();
  private readonly byKey = new Map<string, TimelineItem>();
  private pending: TimelineItem[] = [];
  private sorted: TimelineItem[] | null = null;
  /** False once a page said there is nothing older. */
  hasMoreBefore = true;
  /** True once the newest page was loaded: from then on a jump in seq is a gap to fill. */
  loadedLatest = false;

  constructor(conversationId: string) {
    this.conversationId = conversationId;
  }

  /** Confirmed messages by seq, then pending sends in the order they were made. */
  items(): TimelineItem[] {
    const confirmed = this.confirmed();
    return this.pending.length ? [...confirmed, ...this.pending] : confirmed;
  }

  get oldestSeq(): number {
    return this.confirmed()[0]?.seq ?? 0;
  }

  get newestSeq(): number {
    const confirmed = this.confirmed();
    return confirmed.length ? confirmed[confirmed.length - 1]!.seq : 0;
  }

  /** The newest stored message whose sender matches. */
  newestFrom(match: (senderId: string) => boolean): TimelineItem | undefined {
    const confirmed = this.confirmed();
    for (let i = confirmed.length - 1; i >= 0; i--) if (match(confirmed[i]!.senderId)) return confirmed[i];
    return undefined;
  }

  /** The newest stored message, pending sends aside. */
  newest(): TimelineItem | undefined {
    const confirmed = this.confirmed();
    return confirmed[confirmed.length - 1];
  }

  get size(): number {
    return this.bySeq.size + this.pending.length;
  }

  byMessageId(id: string): TimelineItem | undefined {
    return this.byId.get(id);
  }

  /** Adds the caller's own message before the server has it. */
  addPending(
    senderId: string,
    clientMessageId: string,
    content: string,
    now = new Date(),
    parentMessageId = "",
    mentions: string[] = [],
  ): TimelineItem {
    const key = keyOf(senderId, clientMessageId, "");
    const existing = this.byKey.get(key);
    if (existing) return existing;
    const item: TimelineItem = {
      key,
      id: "",
      conversationId: this.conversationId,
      seq: 0,
      senderId,
      clientMessageId,
      content,
      createdAt: now,
      editedAt: null,
      deleted: false,
      reactions: [],
      parentMessageId,
      replyCount: 0,
      mentions,
      state: "pending",
      error: null,
      rev: 1,
    };
    this.byKey.set(key, item);
    this.pending.push(item);
    return item;
  }

  /** A pending send failed for good (or is being retried: error null, state pending). */
  setSendState(senderId: string, clientMessageId: string, state: "pending" | "failed", error: string | null): void {
    const item = this.byKey.get(keyOf(senderId, clientMessageId, ""));
    if (!item || item.state === "sent") return;
    item.state = state;
    item.error = error;
    item.rev++;
  }

  /** Drops a pending send the user gave up on. */
  discardPending(senderId: string, clientMessageId: string): void {
    const key = keyOf(senderId, clientMessageId, "");
    const item = this.byKey.get(key);
    if (!item || item.state === "sent") return;
    this.byKey.delete(key);
    this.pending = this.pending.filter((p) => p !== item);
  }

  /**
   * Inserts or updates a stored message, from any source. Returns "added" when
   * the message is new to this timeline (also when it confirms a pending send),
   * "updated" when it was known, "ignored" for another conversation.
   */
  upsert(msg: MessageData): "added" | "confirmed" | "updated" | "ignored" {
    if (msg.conversationId !== this.conversationId || msg.seq <= 0) return "ignored";
    const known = this.byId.get(msg.id) ?? this.bySeq.get(msg.seq);
    if (known) {
      if (changed(known, msg)) {
        Object.assign(known, pick(msg));
        known.rev++;
      }
      return "updated";
    }
    const key = keyOf(msg.senderId, msg.clientMessageId, msg.id);
    const pending = this.byKey.get(key);
    if (pending && pending.state !== "sent") {
      // The reply or the event for our own send: the same element becomes the stored message.
      this.pending = this.pending.filter((p) => p !== pending);
      Object.assign(pending, pick(msg), { state: "sent", error: null });
      pending.rev++;
      this.index(pending);
      return "confirmed";
    }
    const item: TimelineItem = { ...pick(msg), key: this.byKey.has(key) ? `m:${msg.id}` : key, state: "sent", error: null, rev: 1 };
    this.byKey.set(item.key, item);
    this.index(item);
    return "added";
  }

  /** An older page (ListMessages before_seq, newest first or not). */
  addOlder(page: MessageData[], hasMore: boolean): number {
    let added = 0;
    for (const m of page) if (this.upsert(m) === "added") added++;
    this.hasMoreBefore = hasMore;
    return added;
  }

  /** The seq range missing between what we hold and a message at `seq`, if any. */
  gapBefore(seq: number): { afterSeq: number; beforeSeq: number } | null {
    if (!this.loadedLatest) return null;
    const newest = this.newestSeq;
    return newest > 0 && seq > newest + 1 ? { afterSeq: newest, beforeSeq: seq } : null;
  }

  markDeleted(messageId: string, seq: number): boolean {
    const item = this.byId.get(messageId) ?? this.bySeq.get(seq);
    if (!item || item.deleted) return false;
    item.deleted = true;
    item.content = "";
    item.reactions = [];
    item.rev++;
    return true;
  }

  setReactions(messageId: string, reactions: ReactionView[]): boolean {
    const item = this.byId.get(messageId);
    if (!item) return false;
    item.reactions = reactions;
    item.rev++;
    return true;
  }

  private confirmed(): TimelineItem[] {
    this.sorted ??= [...this.bySeq.values()].sort((a, b) => a.seq - b.seq);
    return this.sorted;
  }

  private index(item: TimelineItem): void {
    this.bySeq.set(item.seq, item);
    this.byId.set(item.id, item);
    this.sorted = null;
  }
}

function pick(m: MessageData): MessageData {
  return {
    id: m.id,
    conversationId: m.conversationId,
    seq: m.seq,
    senderId: m.senderId,
    clientMessageId: m.clientMessageId,
    content: m.content,
    createdAt: m.createdAt,
    editedAt: m.editedAt,
    deleted: m.deleted,
    reactions: m.reactions,
    parentMessageId: m.parentMessageId,
    replyCount: m.replyCount,
    mentions: m.mentions,
  };
}

function changed(a: MessageData, b: MessageData): boolean {
  return (
    a.content !== b.content ||
    a.deleted !== b.deleted ||
    a.replyCount !== b.replyCount ||
    a.mentions.join() !== b.mentions.join() ||
    a.editedAt?.getTime() !== b.editedAt?.getTime() ||
    JSON.stringify(a.reactions) !== JSON.stringify(b.reactions)
  );
}

/** A stored message (a reply, a page, an event's) as plain data for a MessageList. */
export function messageData(m: ChatMessage): MessageData {
  return {
    id: m.id,
    conversationId: m.conversationId,
    seq: Number(m.seq),
    senderId: m.senderId,
    clientMessageId: m.clientMessageId,
    content: m.content,
    createdAt: m.createdAt ? timestampDate(m.createdAt) : null,
    editedAt: m.editedAt ? timestampDate(m.editedAt) : null,
    deleted: m.deleted,
    reactions: m.reactions.map((r) => ({ emoji: r.emoji, count: r.count, reacted: r.reacted })),
    parentMessageId: m.parentMessageId,
    replyCount: m.replyCount,
    mentions: [...m.mentions],
  };
}

/** The reactions after the caller adds (or removes) `emoji`: what to show before the server answers. */
export function toggledReactions(reactions: ReactionView[], emoji: string, add: boolean): ReactionView[] {
  const out = reactions.map((r) => ({ ...r }));
  const r = out.find((x) => x.emoji === emoji);
  if (add) {
    if (r) {
      r.count++;
      r.reacted = true;
    } else out.push({ emoji, count: 1, reacted: true });
  } else if (r?.reacted) {
    r.count--;
    r.reacted = false;
  }
  return out.filter((x) => x.count > 0);
}
