import { RateLimiterMemory } from "rate-limiter-flexible";
import { HandlerSet, versioned, type EphemeralStore } from "./ephemeral.ts";

/**
 * The in-process twin of the Redis adapter, for a single node with no
 * REDIS_URL. Keys expire lazily (checked on read) plus a periodic sweep;
 * published messages are delivered asynchronously, as over the network.
 */
export function createMemoryStore(): EphemeralStore {
  const values = new Map<string, { value: string; expiresAt: number | null }>();
  // Hashes and sorted sets; expiry applies to hashes as whole keys, like Redis.
  const hashes = new Map<string, { fields: Map<string, string>; expiresAt: number | null }>();
  const zsets = new Map<string, Map<string, number>>();
  const liveHash = (key: string) => {
    const h = hashes.get(key);
    if (h && h.expiresAt !== null && h.expiresAt <= Date.now()) {
      hashes.delete(key);
      return undefined;
    }
    return h;
  };
  const handlers = new HandlerSet();

  const live = (key: string) => {
    const e = values.get(key);
    if (!e) return undefined;
    if (e.expiresAt !== null && e.expiresAt <= Date.now()) {
      values.delete(key);
      return undefined;
    }
    return e;
  };
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [key, e] of values) if (e.expiresAt !== null && e.expiresAt <= now) values.delete(key);
    for (const [key, h] of hashes) if (h.expiresAt !== null && h.expiresAt <= now) hashes.delete(key);
  }, 30_000);
  sweep.unref();

  return {
    kind: "memory",
    async get(key) {
      return live(key)?.value ?? null;
    },
    async set(key, value, o = {}) {
      if (o.onlyIfAbsent && live(key)) return false;
      values.set(key, { value, expiresAt: o.ttlMs !== undefined ? Date.now() + o.ttlMs : null });
      return true;
    },
    async del(...keys) {
      let n = 0;
      for (const key of keys) {
        const had = Boolean(live(key) || liveHash(key) || zsets.has(key));
        values.delete(key);
        hashes.delete(key);
        zsets.delete(key);
        if (had) n++;
      }
      return n;
    },
    async incr(key, ttlMs) {
      const e = live(key);
      const n = (e ? Number(e.value) : 0) + 1;
      values.set(key, { value: String(n), expiresAt: e ? e.expiresAt : Date.now() + ttlMs });
      return n;
    },
    async pttl(key) {
      const e = live(key);
      if (!e) return -2;
      return e.expiresAt === null ? -1 : Math.max(0, e.expiresAt - Date.now());
    },
    async getSet(key, value, o = {}) {
      const previous = live(key)?.value ?? null;
      values.set(key, { value, expiresAt: o.ttlMs !== undefined ? Date.now() + o.ttlMs : null });
      return previous;
    },
    async setIfNewer(key, version, value, ttlMs) {
      const cur = live(key)?.value ?? null;
      const held = cur === null ? null : versioned(cur);
      if (held && held.version >= version) return { stored: false, previous: held.value };
      values.set(key, { value: `${version}|${value}`, expiresAt: Date.now() + ttlMs });
      return { stored: true, previous: held?.value ?? null };
    },
    async pexpire(key, ttlMs) {
      const e = live(key) ?? liveHash(key);
      if (!e) return false;
      e.expiresAt = Date.now() + ttlMs;
      return true;
    },
    async hset(key, field, value) {
      let h = liveHash(key);
      if (!h) hashes.set(key, (h = { fields: new Map(), expiresAt: null }));
      h.fields.set(field, value);
    },
    async hsetIfEquals(key, field, expected, value) {
      const h = liveHash(key);
      if (!h || h.fields.get(field) !== expected) return false;
      h.fields.set(field, value);
      return true;
    },
    async hgetall(key) {
      return Object.fromEntries(liveHash(key)?.fields ?? []);
    },
    async hdel(key, ...fields) {
      const h = liveHash(key);
      if (!h) return 0;
      let n = 0;
      for (const f of fields) if (h.fields.delete(f)) n++;
      if (h.fields.size === 0) hashes.delete(key);
      return n;
    },
    async zadd(key, score, member) {
      let z = zsets.get(key);
      if (!z) zsets.set(key, (z = new Map()));
      z.set(member, score);
    },
    async zrangeByScore(key, max, limit) {
      const z = zsets.get(key);
      if (!z) return [];
      return [...z]
        .filter(([, score]) => score <= max)
        .sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))
        .slice(0, limit)
        .map(([member, score]) => ({ member, score }));
    },
    async zremIfScore(key, member, score) {
      const z = zsets.get(key);
      if (z?.get(member) !== score) return false;
      z.delete(member);
      return true;
    },
    async publish(channel, message) {
      const copy = new Uint8Array(message);
      setImmediate(() => handlers.dispatch(channel, copy));
    },
    async subscribe(channel, handler) {
      handlers.add(channel, handler);
      return async () => {
        handlers.remove(channel, handler);
      };
    },
    // Delivery is a function call in this process: never lost.
    subscriptionLive: () => true,
    onSubscriptionState: () => () => {},
    rateLimiter: (o) =>
      new RateLimiterMemory({ keyPrefix: o.keyPrefix, points: o.points, duration: o.durationSec, blockDuration: o.blockDurationSec ?? 0 }),
    async ping() {},
    async close() {
      clearInterval(sweep);
      values.clear();
      hashes.clear();
      zsets.clear();
    },
  };
}
