import type { MembershipReader } from "../conversations/ports.ts";
import { notFound } from "../shared/errors.ts";
import type { PresenceTracker } from "./tracker.ts";
import type { TypingIndicators } from "./typing.ts";
import type { PresenceWatchers } from "./watchers.ts";
import type { Presence, PresenceStatus } from "./types.ts";
// Shapes (1 to 500 user ids, UUIDs, a settable status) are the proto's rules (presence.proto).

/** Ids the proto's rules accepted (1 to 500 UUIDs), canonical and de-duplicated. */
function checkUserIds(userIds: string[]): string[] {
  return [...new Set(userIds.map((id) => id.toLowerCase()))];
}

/** What GetPresence says about an id it knows nothing about; also what users who may not see someone get. */
function unknownUser(userId: string): Presence {
  return { userId, status: "offline", lastSeenAt: null };
}

/** The domain side of PresenceService. Presence is tracked per session (one session per device). */
export class PresenceDomain {
  private readonly tracker: PresenceTracker;
  private readonly typing: TypingIndicators;
  private readonly watchers: PresenceWatchers;
  private readonly members: MembershipReader;

  constructor(deps: { tracker: PresenceTracker; typing: TypingIndicators; watchers: PresenceWatchers; members: MembershipReader }) {
    this.tracker = deps.tracker;
    this.typing = deps.typing;
    this.watchers = deps.watchers;
    this.members = deps.members;
  }

  setPresence(userId: string, sessionId: string, status: PresenceStatus | null): Promise<Presence> {
    // The proto's rules admit ONLINE, AWAY and DND only.
    if (status === null || status === "offline") throw new Error("unvalidated presence status");
    return this.tracker.setStatus(userId, sessionId, status);
  }

  /**
   * Presence is for people who share a conversation with the viewer (and the
   * viewer themself). Anyone else gets exactly what an unknown id gets:
   * offline, never seen.
   */
  async getPresence(viewerId: string, userIds: string[]): Promise<Presence[]> {
    const ids = checkUserIds(userIds);
    const visible = await this.visibleTo(viewerId, ids);
    const shown = await this.tracker.get(ids.filter((id) => visible.has(id)));
    const byId = new Map(shown.map((p) => [p.userId, p]));
    return ids.map((id) => byId.get(id) ?? unknownUser(id));
  }

  private async visibleTo(viewerId: string, ids: string[]): Promise<Set<string>> {
    const visible = await this.members.sharingAConversation(
      viewerId,
      ids.filter((id) => id !== viewerId),
    );
    if (ids.includes(viewerId)) visible.add(viewerId);
    return visible;
  }

  async sendTyping(userId: string, rawConversationId: string, typing: boolean): Promise<void> {
    const version = this.typing.stamp(); // before any await: states sent in order keep their order
    const conversationId = rawConversationId.toLowerCase();
    if (!(await this.members.getMember(conversationId, userId))) throw notFound("CONVERSATION_NOT_FOUND", "conversation not found");
    await this.typing.set(conversationId, userId, typing, version);
  }

  /** The listed users' presence now, then every change until `signal` aborts. */
  async *watch(viewerId: string, userIds: string[], signal: AbortSignal): AsyncGenerator<Presence> {
    const ids = checkUserIds(userIds);
    const queue: Presence[] = [];
    let wake: (() => void) | null = null;
    const unsubscribe = await this.watchers.watch(ids, (p) => {
      queue.push(p);
      wake?.();
    });
    try {
      // Subscribed first, then read: a change in between is delivered, not lost.
      for (const p of await this.getPresence(viewerId, ids)) yield p;
      while (!signal.aborted) {
        if (queue.length === 0) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            signal.addEventListener("abort", () => resolve(), { once: true });
          });
          wake = null;
          continue;
        }
        const p = queue.shift()!;
        // Checked at each change: a user who stops sharing a conversation with the viewer stops being shown.
        if (p.userId === viewerId || (await this.members.sharingAConversation(viewerId, [p.userId])).has(p.userId)) yield p;
      }
    } finally {
      await unsubscribe();
    }
  }
}
