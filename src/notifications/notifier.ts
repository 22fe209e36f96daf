import type { Logger } from "pino";
import type { DomainEvent } from "../events/events.ts";
import type { StoredMessage } from "../messages/types.ts";
import type { NotificationStore } from "./store.ts";
import { TYPE_RANK, type Notification, type NotificationType, type PushSender } from "./types.ts";

/** What the notifier needs to know about a new message (implemented over the message and conversation stores). */
export interface MessageFacts {
  senderId: string;
  seq: number;
  content: string;
  attachmentCount: number;
  createdAt: Date;
  mentions: string[];
  conversationType: "direct" | "group" | "channel";
  /** For DMs: the other member. */
  directPeerId: string | null;
  /** For thread replies: the author of the thread's parent. */
  parentSenderId: string | null;
}

export interface NotificationFacts {
  /** `known`: the message as its event carried it (then it is not read again). */
  message(conversationId: string, messageId: string, known?: StoredMessage): Promise<MessageFacts | null>;
  /** The workspace of a conversation (pushes say it). */
  workspaceOf(conversationId: string): Promise<string>;
  /** muted_until of those users who are members of the conversation (non-members are absent). */
  members(conversationId: string, userIds: string[]): Promise<Map<string, { mutedUntil: Date | null }>>;
}

/** True when the user has no device that is actively online (offline or away). */
export interface AvailabilityOracle {
  unavailable(userIds: string[]): Promise<Set<string>>;
}

/** Tells the user's live streams that a notification was created or grew (realtime's per-user channel). */
export interface NotificationLive {
  changed(userId: string, notification: Notification, unseenCount: number): Promise<void>;
}

const PREVIEW_CHARS = 140;

/**
 * Decides who gets a notification for a new message, folds it into that
 * user's open batch for the conversation (the first message of a burst opens
 * it: a leading-edge window), and flushes batches whose window ended to push. Rules (docs/NOTIFICATIONS.md):
 * - candidates: the DM peer (direct_message), mentioned members (mention), and
 *   the author of a thread's parent for replies (thread_reply); never the sender;
 * - only members who are offline or away (no device online);
 * - a muted conversation (muted_until in the future) notifies direct mentions only.
 * It is told about every committed event (realtime's sink, after the reply) and reacts to message_created.
 */
export class Notifier {
  private readonly store: NotificationStore;
  private readonly facts: NotificationFacts;
  private readonly availability: AvailabilityOracle;
  private readonly push: PushSender;
  private readonly live: NotificationLive | null;
  private readonly onLiveFailure: () => void;
  private readonly windowMs: number;
  private readonly logger: Logger;
  private flusher: NodeJS.Timeout | null = null;

  constructor(deps: {
    store: NotificationStore;
    facts: NotificationFacts;
    availability: AvailabilityOracle;
    push: PushSender;
    /** The live event to the user's streams; `onLiveFailure` counts one that could not be published. */
    live?: NotificationLive;
    onLiveFailure?: () => void;
    windowMs: number;
    logger: Logger;
  }) {
    this.store = deps.store;
    this.facts = deps.facts;
    this.availability = deps.availability;
    this.push = deps.push;
    this.live = deps.live ?? null;
    this.onLiveFailure = deps.onLiveFailure ?? (() => {});
    this.windowMs = deps.windowMs;
    this.logger = deps.logger;
  }

  async publish(events: DomainEvent[]): Promise<void> {
    for (const e of events) {
      if (e.type !== "message_created") continue;
      // Notifications must never fail the send that caused them.
      await this.onMessage(e.conversationId, e.messageId, e.message).catch((err) => this.logger.warn({ err }, "notification failed"));
    }
  }

  async onMessage(conversationId: string, messageId: string, known?: StoredMessage): Promise<void> {
    const m = await this.facts.message(conversationId, messageId, known);
    if (!m) return;
    const reasons = new Map<string, NotificationType>();
    const consider = (userId: string | null, type: NotificationType) => {
      if (!userId || userId === m.senderId) return;
      const had = reasons.get(userId);
      if (!had || TYPE_RANK[type] > TYPE_RANK[had]) reasons.set(userId, type);
    };
    if (m.conversationType === "direct") consider(m.directPeerId, "direct_message");
    consider(m.parentSenderId, "thread_reply");
    for (const id of m.mentions) consider(id, "mention");
    if (reasons.size === 0) return;

    const candidates = [...reasons.keys()];
    const [members, away] = await Promise.all([this.facts.members(conversationId, candidates), this.availability.unavailable(candidates)]);
    const now = Date.now();
    const preview = m.content ? m.content.slice(0, PREVIEW_CHARS) : m.attachmentCount > 0 ? `[${m.attachmentCount} attachment(s)]` : "";
    for (const [userId, type] of reasons) {
      const member = members.get(userId);
      if (!member || !away.has(userId)) continue;
      const muted = member.mutedUntil !== null && member.mutedUntil.getTime() > now;
      if (muted && type !== "mention") continue;
      const batch = await this.store.addToBatch({
        userId,
        conversationId,
        type,
        messageId,
        senderId: m.senderId,
        seq: m.seq,
        preview,
        at: m.createdAt,
        windowMs: this.windowMs,
      });
      await this.announce(userId, batch);
    }
  }

  /**
   * The live event for the user's open streams (an away user's app updates its badge). The
   * notification itself is stored already and ListNotifications returns it after a reconnect,
   * so a publish that fails is counted (notification_live_failures_total) and logged, and the
   * other recipients are still served.
   */
  private async announce(userId: string, batch: Notification): Promise<void> {
    if (!this.live) return;
    try {
      await this.live.changed(userId, batch, await this.store.unseenCount(userId));
    } catch (err) {
      this.onLiveFailure();
      this.logger.warn({ err, userId, notificationId: batch.id }, "live notification event failed");
    }
  }

  /** Flushes due batches to push; each batch is claimed by one node only. */
  async flush(now = new Date()): Promise<number> {
    let sent = 0;
    for (const due of await this.store.dueBatches(now, 200)) {
      // Read before the claim: a failure here leaves the batch due for the next flush.
      const workspaceId = await this.facts.workspaceOf(due.conversationId);
      // The claimed state: messages folded in since dueBatches read it are included.
      const claimed = await this.store.markBatched(due.id, now);
      if (!claimed) continue;
      await this.push.send({ ...claimed, workspaceId });
      sent++;
    }
    return sent;
  }

  start(intervalMs = Math.min(1000, Math.max(10, Math.floor(this.windowMs / 4)))): void {
    this.flusher ??= setInterval(() => {
      this.flush().catch((err) => this.logger.warn({ err }, "notification flush failed"));
    }, intervalMs);
    this.flusher.unref();
  }

  stop(): void {
    if (this.flusher) clearInterval(this.flusher);
    this.flusher = null;
  }
}
