import type { RateLimiterAbstract } from "rate-limiter-flexible";

/**
 * The ephemeral store: short-lived keys (presence, typing, throttles), rate
 * limits, and pub/sub fan-out between nodes. Redis when REDIS_URL is set,
 * otherwise an in-process twin that behaves the same for one node.
 * Nothing here is durable: losing it loses presence, never messages.
 */
export interface EphemeralStore {
  readonly kind: "redis" | "memory";
  get(key: string): Promise<string | null>;
  /** Returns false when onlyIfAbsent was set and the key existed. */
  set(key: string, value: string, opts?: { ttlMs?: number; onlyIfAbsent?: boolean }): Promise<boolean>;
  del(...keys: string[]): Promise<number>;
  /** Increments a counter; the TTL is set when the counter is created. */
  incr(key: string, ttlMs: number): Promise<number>;
  /** Remaining time to live in ms; -1 without expiry; -2 when absent. */
  pttl(key: string): Promise<number>;
  /** Sets a key and returns its previous value, atomically. */
  getSet(key: string, value: string, opts?: { ttlMs?: number }): Promise<string | null>;
  /**
   * A versioned register: stores `value` with `version` unless the key holds
   * an equal or higher version, in one atomic step (across nodes on Redis).
   * Returns whether it was stored and the value it held before (null: none).
   */
  setIfNewer(key: string, version: number, value: string, ttlMs: number): Promise<{ stored: boolean; previous: string | null }>;
  /** Sets a key's expiry; false when the key is absent. */
  pexpire(key: string, ttlMs: number): Promise<boolean>;
  hset(key: string, field: string, value: string): Promise<void>;
  /** Sets a hash field only if it still holds `expected`, in one atomic step (across nodes on Redis); true when set. */
  hsetIfEquals(key: string, field: string, expected: string, value: string): Promise<boolean>;
  hgetall(key: string): Promise<Record<string, string>>;
  hdel(key: string, ...fields: string[]): Promise<number>;
  /** Sorted set: adds or moves a member to `score`. */
  zadd(key: string, score: number, member: string): Promise<void>;
  /** Members with score <= max, lowest first, at most `limit`. */
  zrangeByScore(key: string, max: number, limit: number): Promise<{ member: string; score: number }[]>;
  /** Removes a member only if its score is still `score` (so a concurrent zadd wins); true when removed. */
  zremIfScore(key: string, member: string, score: number): Promise<boolean>;
  publish(channel: string, message: Uint8Array): Promise<void>;
  /** Subscribes a handler; resolves once the subscription is live. Returns an unsubscribe. */
  subscribe(channel: string, handler: (message: Uint8Array) => void): Promise<() => Promise<void>>;
  /**
   * Whether subscriptions are receiving: false from the moment the subscriber
   * connection is lost (messages published meanwhile are never delivered)
   * until it is back and every channel is subscribed again. Always true in process.
   */
  subscriptionLive(): boolean;
  /** Calls `listener` on every change of subscriptionLive(); returns the unregister function. */
  onSubscriptionState(listener: (live: boolean) => void): () => void;
  /** A rate limiter backed by this store (shared across nodes when on Redis). */
  rateLimiter(opts: { keyPrefix: string; points: number; durationSec: number; blockDurationSec?: number }): RateLimiterAbstract;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Splits a setIfNewer register ("<version>|<value>"); null for anything else. */
export function versioned(raw: string): { version: number; value: string } | null {
  const bar = raw.indexOf("|");
  const version = bar > 0 ? Number(raw.slice(0, bar)) : Number.NaN;
  return Number.isFinite(version) ? { version, value: raw.slice(bar + 1) } : null;
}

/** Keeps handlers per channel; used by both adapters. */
export class HandlerSet {
  private readonly handlers = new Map<string, Set<(m: Uint8Array) => void>>();

  /** Adds a handler; returns true when it is the channel's first. */
  add(channel: string, handler: (m: Uint8Array) => void): boolean {
    let set = this.handlers.get(channel);
    const first = !set;
    if (!set) this.handlers.set(channel, (set = new Set()));
    set.add(handler);
    return first;
  }

  /** Removes a handler; returns true when the channel has none left. */
  remove(channel: string, handler: (m: Uint8Array) => void): boolean {
    const set = this.handlers.get(channel);
    if (!set) return false;
    set.delete(handler);
    if (set.size > 0) return false;
    this.handlers.delete(channel);
    return true;
  }

  /** Channels with at least one handler. */
  channels(): string[] {
    return [...this.handlers.keys()];
  }

  dispatch(channel: string, message: Uint8Array): void {
    const set = this.handlers.get(channel);
    if (!set) return;
    for (const h of set) {
      try {
        h(message);
      } catch {
        // A failing handler must not stop delivery to the others.
      }
    }
  }
}
