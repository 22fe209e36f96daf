import type { Logger } from "pino";
import type { EphemeralStore } from "../stores/ephemeral/ephemeral.ts";
import type { PresenceFanout, PresenceSettings } from "./types.ts";

/**
 * Typing indicators: never stored durably. Each state a user sends for a
 * conversation gets a version when the server receives it (microseconds since
 * the epoch, strictly increasing per node), and the last version wins
 * everywhere: the ephemeral store keeps the newest state per user and
 * conversation (a compare-and-set across nodes), a state older than the one
 * held is dropped, and the announced event carries the version as its
 * `occurred_at`, so every stream (on every node) drops an announcement older
 * than the last one it delivered. typing=true is re-announced at most once per
 * throttle window; a change (true after false, false after true) always is.
 * A local timer announces typing=false when no refresh came within the TTL
 * (as a version just above the one it ends, so it never overrides a newer
 * state). Clients should expire an indicator after the same TTL too, in case
 * the announcing node dies.
 */
export class TypingIndicators {
  private readonly store: EphemeralStore;
  private readonly fanout: PresenceFanout;
  private readonly settings: PresenceSettings;
  private readonly logger: Logger;
  private readonly expiries = new Map<string, NodeJS.Timeout>();
  private lastVersion = 0;

  constructor(deps: { store: EphemeralStore; fanout: PresenceFanout; settings: PresenceSettings; logger: Logger }) {
    this.store = deps.store;
    this.fanout = deps.fanout;
    this.settings = deps.settings;
    this.logger = deps.logger;
  }

  /** A version for a state received now: microseconds since the epoch, strictly increasing on this node. */
  stamp(): number {
    this.lastVersion = Math.max(Date.now() * 1000, this.lastVersion + 1);
    return this.lastVersion;
  }

  /**
   * The caller must already be known to be a member of the conversation.
   * `version`: from stamp() when the request arrived (before any await), so
   * that states sent in order keep their order.
   */
  async set(conversationId: string, userId: string, typing: boolean, version = this.stamp()): Promise<void> {
    const local = `${conversationId}|${userId}`;
    const accepted = await this.apply(conversationId, userId, typing, version);
    if (!accepted) return; // a newer state is already in place
    clearTimeout(this.expiries.get(local));
    this.expiries.delete(local);
    if (!typing) return;
    const timer = setTimeout(() => {
      this.expiries.delete(local);
      this.apply(conversationId, userId, false, version + 1).catch((err) => this.logger.warn({ err }, "typing expiry failed"));
    }, this.settings.typingTtlMs);
    timer.unref();
    this.expiries.set(local, timer);
  }

  /** Stores the state if it is the newest and announces it (unless it only repeats "typing" within the throttle window). */
  private async apply(conversationId: string, userId: string, typing: boolean, version: number): Promise<boolean> {
    const nowMs = Math.floor(version / 1000);
    const prev = await this.store.setIfNewer(`ty:${conversationId}:${userId}`, version, "", this.settings.typingTtlMs * 2);
    if (!prev.stored) return false;
    // The stored value says what was last announced and when: "<typing 0|1>:<announced at ms>".
    const [wasTyping, announcedAt] = (prev.previous ?? "0:0").split(":").map(Number);
    const repeat = typing && wasTyping === 1 && nowMs - announcedAt < this.settings.typingThrottleMs;
    const state = repeat ? `1:${announcedAt}` : `${typing ? 1 : 0}:${nowMs}`;
    // Record what was announced (a newer state may have come in between: then it keeps its own).
    await this.store.setIfNewer(`ty:${conversationId}:${userId}`, version + 0.5, state, this.settings.typingTtlMs * 2);
    if (!repeat) await this.fanout.typingChanged(conversationId, userId, typing, version);
    return true;
  }

  stop(): void {
    for (const t of this.expiries.values()) clearTimeout(t);
    this.expiries.clear();
  }
}
