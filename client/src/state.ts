// Small state helpers an app builds its views from: a timeline merged by seq
// (pages from ListMessages and live events meet with no duplicate), unread
// counts, and typing and presence that expire on their own.

import type { Conversation } from "../../gen/chat/v1/conversation_pb.js";
import type { ChatMessage, Event } from "../../gen/chat/v1/message_pb.js";
import type { PresenceStatus } from "../../gen/chat/v1/presence_pb.js";

/** One conversation's messages, ordered by seq, each once (the newest version wins). */
export class Timeline {
  readonly conversationId: string;
  private readonly bySeq = new Map<bigint, ChatMessage>();
  private readonly byId = new Map<string, bigint>();
  private sorted: ChatMessage[] | null = [];

  constructor(conversationId: string) {
    this.conversationId = conversationId;
  }

  /** Merges messages (a ListMessages page, a send_ack, an event). Returns true if anything changed. */
  upsert(...messages: ChatMessage[]): boolean {
    let changed = false;
    for (const m of messages) {
      if (m.conversationId !== this.conversationId || m.parentMessageId !== "") continue; // thread replies live in their thread
      const old = this.bySeq.get(m.seq);
      if (old === m) continue;
      this.bySeq.set(m.seq, m);
      this.byId.set(m.id, m.seq);
      changed = true;
    }
    if (changed) this.sorted = null;
    return changed;
  }

  /** Applies an event of this conversation. Returns true if the timeline changed. */
  apply(e: Event): boolean {
    if (e.conversationId !== this.conversationId) return false;
    const p = e.payload;
    switch (p.case) {
      case "messageCreated":
      case "messageEdited":
        return p.value.message ? this.upsert(p.value.message) : false;
      case "messageDeleted": {
        const seq = this.byId.get(p.value.messageId);
        const m = seq === undefined ? undefined : this.bySeq.get(seq);
        if (!m || m.deleted) return false;
        return this.upsert({ ...m, deleted: true, content: "", attachments: [] });
      }
      default:
        return false;
    }
  }

  /** Drops everything (resync_required: reload from ListMessages). */
  clear(): void {
    this.bySeq.clear();
    this.byId.clear();
    this.sorted = [];
  }

  get(id: string): ChatMessage | undefined {
    const seq = this.byId.get(id);
    return seq === undefined ? undefined : this.bySeq.get(seq);
  }

  /** Messages in seq order. */
  messages(): readonly ChatMessage[] {
    this.sorted ??= [...this.bySeq.values()].sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
    return this.sorted;
  }

  get size(): number {
    return this.bySeq.size;
  }

  /** Highest seq held (0n if none). */
  get lastSeq(): bigint {
    const m = this.messages();
    return m.length ? m[m.length - 1].seq : 0n;
  }

  /** Seqs missing between the lowest and highest held (a hole to fill with ListMessages). */
  gaps(): { afterSeq: bigint; beforeSeq: bigint }[] {
    const out: { afterSeq: bigint; beforeSeq: bigint }[] = [];
    const m = this.messages();
    for (let i = 1; i < m.length; i++) if (m[i].seq !== m[i - 1].seq + 1n) out.push({ afterSeq: m[i - 1].seq, beforeSeq: m[i].seq });
    return out;
  }
}

/**
 * Unread counts per conversation: seeded from ListConversations, moved by
 * message_created (others' messages after the read mark) and by the user's own
 * receipt_updated (read on another device, or MarkRead here).
 */
export class UnreadCounts {
  private readonly me: string;
  /** unseen: counted by the server at seed time, not seen as events (all at or below seededSeq). */
  private readonly state = new Map<string, { readSeq: bigint; seededSeq: bigint; unseen: number; unreadSeqs: bigint[] }>();

  constructor(myUserId: string) {
    this.me = myUserId;
  }

  seed(conversations: readonly Conversation[]): void {
    for (const c of conversations) this.state.set(c.id, { readSeq: c.lastReadSeq, seededSeq: c.lastSeq, unseen: c.unreadCount, unreadSeqs: [] });
  }

  /** Returns true if a count changed. */
  apply(e: Event): boolean {
    const p = e.payload;
    const s = this.state.get(e.conversationId) ?? { readSeq: 0n, seededSeq: 0n, unseen: 0, unreadSeqs: [] };
    this.state.set(e.conversationId, s);
    if (p.case === "messageCreated" && p.value.message) {
      const m = p.value.message;
      if (m.senderId === this.me || m.seq <= s.readSeq || m.seq <= s.seededSeq || s.unreadSeqs.includes(m.seq)) return false;
      s.unreadSeqs.push(m.seq);
      return true;
    }
    if (p.case === "receiptUpdated" && p.value.userId === this.me && p.value.readSeq > s.readSeq)
      return this.markRead(e.conversationId, p.value.readSeq);
    return false;
  }

  /** The user read up to `seq` here. */
  markRead(conversationId: string, seq: bigint): boolean {
    const s = this.state.get(conversationId);
    if (!s || seq <= s.readSeq) return false;
    const before = this.count(conversationId);
    s.unreadSeqs = s.unreadSeqs.filter((x) => x > seq);
    // The server's seeded count covers messages up to seededSeq that we never saw one by one:
    // read past them, they are all read; short of them, keep the count (no way to tell which).
    if (seq >= s.seededSeq) s.unseen = 0;
    s.readSeq = seq;
    return this.count(conversationId) !== before;
  }

  count(conversationId: string): number {
    const s = this.state.get(conversationId);
    return s ? s.unseen + s.unreadSeqs.length : 0;
  }

  total(): number {
    let n = 0;
    for (const c of this.state.keys()) n += this.count(c);
    return n;
  }
}

/** Who is typing where; an entry expires by itself (a lost "stopped typing" must not stick). */
export class TypingState {
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly byConversation = new Map<string, Map<string, number>>();

  constructor(opts: { ttlMs?: number; now?: () => number } = {}) {
    this.ttlMs = opts.ttlMs ?? 6_000;
    this.now = opts.now ?? Date.now;
  }

  apply(e: Event): boolean {
    if (e.payload.case !== "typingUpdated") return false;
    const { userId, typing } = e.payload.value;
    let m = this.byConversation.get(e.conversationId);
    if (typing) {
      if (!m) this.byConversation.set(e.conversationId, (m = new Map()));
      m.set(userId, this.now() + this.ttlMs);
      return true;
    }
    return m?.delete(userId) ?? false;
  }

  /** A message from someone ends their typing. */
  stopped(conversationId: string, userId: string): void {
    this.byConversation.get(conversationId)?.delete(userId);
  }

  /** Users typing in a conversation right now. */
  typing(conversationId: string): string[] {
    const m = this.byConversation.get(conversationId);
    if (!m) return [];
    const now = this.now();
    for (const [u, until] of m) if (until <= now) m.delete(u);
    return [...m.keys()];
  }
}

export interface PresenceView {
  status: PresenceStatus;
  lastSeenAt: Date | null;
}

/**
 * Last known presence per user, from presence_updated events (and GetPresence
 * seeds). An entry older than `ttlMs` is forgotten (unknown), since presence is
 * not replayed after a reconnect: reload it with GetPresence then.
 */
export class PresenceState {
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly users = new Map<string, PresenceView & { at: number }>();

  constructor(opts: { ttlMs?: number; now?: () => number } = {}) {
    this.ttlMs = opts.ttlMs ?? 5 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  set(userId: string, view: PresenceView): void {
    this.users.set(userId, { ...view, at: this.now() });
  }

  apply(e: Event): boolean {
    if (e.payload.case !== "presenceUpdated") return false;
    const p = e.payload.value;
    this.set(p.userId, {
      status: p.status,
      lastSeenAt: p.lastSeenAt ? new Date(Number(p.lastSeenAt.seconds) * 1000 + Math.floor(p.lastSeenAt.nanos / 1e6)) : null,
    });
    return true;
  }

  get(userId: string): PresenceView | undefined {
    const v = this.users.get(userId);
    if (!v) return undefined;
    if (this.now() - v.at > this.ttlMs) {
      this.users.delete(userId);
      return undefined;
    }
    return { status: v.status, lastSeenAt: v.lastSeenAt };
  }
}
