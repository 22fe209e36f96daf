import type { Logger } from "pino";
import type { EphemeralStore } from "../stores/ephemeral/ephemeral.ts";
import type { PresenceFanout, PresenceSettings } from "./types.ts";

/**
 * Typing indicators: never stored. typing=true is announced at most once per
 * throttle window per user and conversation (across nodes, through the
 * ephemeral store); a local timer announces typing=false when no refresh came
 * within the TTL, so an indicator ends by itself. (Clients should expire it
 * after the same TTL too, in case the announcing node dies.)
 */
export class TypingIndicators {
  private readonly store: EphemeralStore;
  private readonly fanout: PresenceFanout;
  private readonly settings: PresenceSettings;
  private readonly logger: Logger;
  private readonly expiries = new Map<string, NodeJS.Timeout>();

  constructor(deps: { store: EphemeralStore; fanout: PresenceFanout; settings: PresenceSettings; logger: Logger }) {
    this.store = deps.store;
    this.fanout = deps.fanout;
    this.settings = deps.settings;
    this.logger = deps.logger;
  }

  /** The caller must already be known to be a member of the conversation. */
  async set(conversationId: string, userId: string, typing: boolean): Promise<void> {
    const key = `ty:${conversationId}:${userId}`;
    const local = `${conversationId}|${userId}`;
    clearTimeout(this.expiries.get(local));
    this.expiries.delete(local);
    if (!typing) {
      await this.store.del(key);
      await this.fanout.typingChanged(conversationId, userId, false);
      return;
    }
    const timer = setTimeout(() => {
      this.expiries.delete(local);
      this.store
        .del(key)
        .then(() => this.fanout.typingChanged(conversationId, userId, false))
        .catch((err) => this.logger.warn({ err }, "typing expiry failed"));
    }, this.settings.typingTtlMs);
    timer.unref();
    this.expiries.set(local, timer);
    const fresh = await this.store.set(key, "1", { ttlMs: this.settings.typingThrottleMs, onlyIfAbsent: true });
    if (fresh) await this.fanout.typingChanged(conversationId, userId, true);
  }

  stop(): void {
    for (const t of this.expiries.values()) clearTimeout(t);
    this.expiries.clear();
  }
}
