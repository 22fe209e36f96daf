import { Redis } from "ioredis";
import { RateLimiterRedis } from "rate-limiter-flexible";
import { HandlerSet, versioned, type EphemeralStore } from "./ephemeral.ts";
import { unavailable } from "../../shared/errors.ts";
import { IGNORE_FAULTS, STORE_RETRY_AFTER_MS, type StoreFaults } from "../faults.ts";

/**
 * Redis adapter. Two connections: one for commands, one in subscriber mode.
 * Every key and channel gets `prefix`, so deployments (and test files) can
 * share one Redis.
 */
export async function createRedisStore(url: string, prefix: string, faults: StoreFaults = IGNORE_FAULTS): Promise<EphemeralStore> {
  const opts = {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    connectTimeout: 5_000,
  };
  // Auto-pipelining: the commands issued in one tick (a send's PUBLISH next to
  // other calls' rate-limit and presence commands) go out in one write.
  const cmd = new Redis(url, { ...opts, connectionName: `${prefix}cmd`, enableAutoPipelining: true });
  // Named so that an operator (or a test) can find it in CLIENT LIST.
  const sub = new Redis(url, { ...opts, connectionName: `${prefix}sub` });
  // ioredis reconnects by itself (the subscriber resubscribes its channels);
  // without a listener an 'error' event would crash the process. A command
  // that fails meanwhile gets UNAVAILABLE (guard, below). Each loss is
  // reported once, not once per reconnect attempt.
  for (const conn of [cmd, sub]) {
    let up = true;
    conn.on("error", (err) => {
      if (!up) return;
      up = false;
      faults.connectionLost("redis", err);
    });
    conn.on("ready", () => (up = true));
  }
  await Promise.all([cmd.connect(), sub.connect()]);

  const handlers = new HandlerSet();
  // Subscription liveness: lost with the connection (Redis does not keep
  // messages for an absent subscriber); back once ioredis has reconnected and
  // our own SUBSCRIBE of every channel, queued behind its automatic
  // re-subscription on the same connection, is acknowledged.
  let live = true;
  const stateListeners = new Set<(live: boolean) => void>();
  const setLive = (value: boolean) => {
    if (value === live) return;
    live = value;
    for (const l of stateListeners) l(value);
  };
  sub.on("close", () => setLive(false));
  sub.on("ready", () => {
    if (live) return;
    const channels = handlers.channels().map(k);
    (channels.length > 0 ? sub.subscribe(...channels) : Promise.resolve(0)).then(
      () => setLive(true),
      () => {}, // lost again: the next "ready" retries
    );
  });
  sub.on("messageBuffer", (channel: Buffer, message: Buffer) => {
    handlers.dispatch(channel.toString().slice(prefix.length), message);
  });

  const guard = async <T>(op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (err) {
      throw unavailable("STORE_UNAVAILABLE", "redis unavailable", err, STORE_RETRY_AFTER_MS, { store: "redis" });
    }
  };
  const k = (key: string) => prefix + key;

  return {
    kind: "redis",
    get: (key) => guard(() => cmd.get(k(key))),
    set: (key, value, o = {}) =>
      guard(async () => {
        const args: (string | number)[] = [];
        if (o.ttlMs !== undefined) args.push("PX", Math.max(1, Math.round(o.ttlMs)));
        if (o.onlyIfAbsent) args.push("NX");
        const res = await (cmd.set as (...a: unknown[]) => Promise<string | null>)(k(key), value, ...args);
        return res === "OK";
      }),
    del: (...keys) => (keys.length === 0 ? Promise.resolve(0) : guard(() => cmd.del(...keys.map(k)))),
    incr: (key, ttlMs) =>
      guard(async () => {
        const [[, n]] = (await cmd.multi().incr(k(key)).pexpire(k(key), Math.round(ttlMs), "NX").exec()) as [[null, number]];
        return n;
      }),
    pttl: (key) => guard(() => cmd.pttl(k(key))),
    getSet: (key, value, o = {}) =>
      guard(async () => {
        const args: (string | number)[] = o.ttlMs !== undefined ? ["PX", Math.max(1, Math.round(o.ttlMs))] : [];
        return (cmd.set as (...a: unknown[]) => Promise<string | null>)(k(key), value, ...args, "GET");
      }),
    setIfNewer: (key, version, value, ttlMs) =>
      guard(async () => {
        // Compare-and-set in one step: a state with an older version never overwrites a newer one.
        const [stored, previous] = (await cmd.eval(
          `local cur = redis.call('GET', KEYS[1])
           if cur then
             local bar = string.find(cur, '|', 1, true)
             local v = bar and tonumber(string.sub(cur, 1, bar - 1))
             if v and v >= tonumber(ARGV[1]) then return {0, cur} end
           end
           redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
           return {1, cur or ''}`,
          1,
          k(key),
          String(version),
          value,
          String(Math.max(1, Math.round(ttlMs))),
        )) as [number, string];
        return { stored: stored === 1, previous: previous === "" ? null : (versioned(previous)?.value ?? null) };
      }),
    pexpire: (key, ttlMs) => guard(async () => (await cmd.pexpire(k(key), Math.max(1, Math.round(ttlMs)))) === 1),
    hset: (key, field, value) => guard(async () => void (await cmd.hset(k(key), field, value))),
    hsetIfEquals: (key, field, expected, value) =>
      guard(async () => {
        const set = await cmd.eval(
          "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) return 1 end return 0",
          1,
          k(key),
          field,
          expected,
          value,
        );
        return set === 1;
      }),
    hgetall: (key) => guard(() => cmd.hgetall(k(key))),
    hdel: (key, ...fields) => (fields.length === 0 ? Promise.resolve(0) : guard(() => cmd.hdel(k(key), ...fields))),
    zadd: (key, score, member) => guard(async () => void (await cmd.zadd(k(key), score, member))),
    zrangeByScore: (key, max, limit) =>
      guard(async () => {
        const flat = await cmd.zrangebyscore(k(key), "-inf", max, "WITHSCORES", "LIMIT", 0, limit);
        const out: { member: string; score: number }[] = [];
        for (let i = 0; i < flat.length; i += 2) out.push({ member: flat[i], score: Number(flat[i + 1]) });
        return out;
      }),
    zremIfScore: (key, member, score) =>
      guard(async () => {
        // Compare-and-delete in one step, so a concurrent zadd (a fresh heartbeat) is never lost.
        const removed = await cmd.eval(
          "if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('ZREM', KEYS[1], ARGV[1]) end return 0",
          1,
          k(key),
          member,
          String(score),
        );
        return removed === 1;
      }),
    publish: (channel, message) =>
      guard(async () => {
        await cmd.publish(k(channel), Buffer.from(message.buffer, message.byteOffset, message.byteLength));
      }),
    async subscribe(channel, handler) {
      if (handlers.add(channel, handler)) await guard(() => sub.subscribe(k(channel)));
      return async () => {
        if (handlers.remove(channel, handler)) await sub.unsubscribe(k(channel)).catch(() => {});
      };
    },
    subscriptionLive: () => live,
    onSubscriptionState(listener) {
      stateListeners.add(listener);
      return () => void stateListeners.delete(listener);
    },
    rateLimiter: (o) =>
      new RateLimiterRedis({
        storeClient: cmd,
        keyPrefix: `${prefix}rl:${o.keyPrefix}`,
        points: o.points,
        duration: o.durationSec,
        blockDuration: o.blockDurationSec ?? 0,
      }),
    ping: () => guard(async () => void (await cmd.ping())),
    async close() {
      cmd.disconnect();
      sub.disconnect();
    },
  };
}
