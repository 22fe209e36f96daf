import { RateLimiterMemory } from "rate-limiter-flexible";
import { HandlerSet, type EphemeralStore } from "./ephemeral.ts";

/**
 * The in-process twin of the Redis adapter, for a single node with no
 * REDIS_URL. Keys expire lazily (checked on read) plus a periodic sweep;
 * published messages are delivered asynchronously, as over the network.
 */
export function createMemoryStore(): EphemeralStore {
  const values = new Map<string, { value: string; expiresAt: number | null }>();
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
      for (const key of keys) if (live(key) && values.delete(key)) n++;
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
    rateLimiter: (o) =>
      new RateLimiterMemory({ keyPrefix: o.keyPrefix, points: o.points, duration: o.durationSec, blockDuration: o.blockDurationSec ?? 0 }),
    async ping() {},
    async close() {
      clearInterval(sweep);
      values.clear();
    },
  };
}
