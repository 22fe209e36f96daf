// One conformance suite for the ephemeral store, on real Redis and on the
// in-process twin.

import { afterAll, beforeAll, expect, it } from "vitest";
import { env, forEachBackend, isolatedRedisPrefix } from "../support/backends.ts";
import type { EphemeralStore } from "../../src/stores/ephemeral/ephemeral.ts";
import { createRedisStore } from "../../src/stores/ephemeral/redis.ts";
import { createMemoryStore } from "../../src/stores/ephemeral/memory.ts";
import { until } from "../support/poll.ts";

forEachBackend("ephemeral store", ["redis", "memory"] as const, (name) => {
  let store: EphemeralStore;
  let other: EphemeralStore; // a second node on the same Redis (memory: the same process)
  beforeAll(async () => {
    if (name === "redis") {
      const prefix = isolatedRedisPrefix();
      store = await createRedisStore(env.redis!, prefix);
      other = await createRedisStore(env.redis!, prefix);
    } else {
      store = createMemoryStore();
      other = store;
    }
  });
  afterAll(async () => {
    await store?.close();
    if (other !== store) await other?.close();
  });

  it("sets, gets and deletes", async () => {
    expect(await store.get("k1")).toBeNull();
    expect(await store.set("k1", "v1")).toBe(true);
    expect(await other.get("k1")).toBe("v1");
    expect(await store.del("k1", "missing")).toBe(1);
    expect(await store.get("k1")).toBeNull();
  });

  it("honours onlyIfAbsent", async () => {
    expect(await store.set("nx", "a", { onlyIfAbsent: true })).toBe(true);
    expect(await other.set("nx", "b", { onlyIfAbsent: true })).toBe(false);
    expect(await store.get("nx")).toBe("a");
  });

  it("expires keys", async () => {
    await store.set("ttl", "x", { ttlMs: 150 });
    const left = await store.pttl("ttl");
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(150);
    await until(async () => (await store.get("ttl")) === null);
    expect(await store.pttl("ttl")).toBe(-2);
    await store.set("forever", "x");
    expect(await store.pttl("forever")).toBe(-1);
  });

  it("counts with a window set on creation", async () => {
    expect(await store.incr("ctr", 10_000)).toBe(1);
    expect(await other.incr("ctr", 10_000)).toBe(2);
    expect(await store.incr("ctr", 10)).toBe(3); // later calls keep the first TTL
    expect(await store.pttl("ctr")).toBeGreaterThan(1000);
  });

  it("publishes to subscribers on every node, and stops after unsubscribe", async () => {
    const got: string[] = [];
    const unsubscribe = await other.subscribe("chan", (m) => got.push(Buffer.from(m).toString()));
    await store.publish("chan", Buffer.from("one"));
    await store.publish("chan", Buffer.from("two"));
    await until(() => got.length === 2);
    expect(got).toEqual(["one", "two"]);
    await unsubscribe();
    await store.publish("chan", Buffer.from("three"));
    await store.publish("probe", Buffer.from("x")); // a later message proves ordering
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual(["one", "two"]);
  });

  it("delivers binary payloads intact", async () => {
    const payload = new Uint8Array([0, 255, 1, 128, 10, 13]);
    let got: Uint8Array | null = null;
    const unsubscribe = await other.subscribe("bin", (m) => (got = new Uint8Array(m)));
    await store.publish("bin", payload);
    await until(() => got !== null);
    expect([...got!]).toEqual([...payload]);
    await unsubscribe();
  });

  it("rate-limits across nodes", async () => {
    const a = store.rateLimiter({ keyPrefix: "rl-test", points: 3, durationSec: 60 });
    const b = other.rateLimiter({ keyPrefix: "rl-test", points: 3, durationSec: 60 });
    await a.consume("user1");
    await b.consume("user1");
    await a.consume("user1");
    const rejected = await b.consume("user1").catch((r) => r);
    expect(rejected.msBeforeNext).toBeGreaterThan(0);
    await expect(a.consume("user2")).resolves.toBeTruthy();
  });
});

forEachBackend("ephemeral store: hashes, sorted sets, get-and-set", ["redis", "memory"] as const, (name) => {
  let store: EphemeralStore;
  beforeAll(async () => {
    store = name === "redis" ? await createRedisStore(env.redis!, isolatedRedisPrefix()) : createMemoryStore();
  });
  afterAll(async () => store?.close());

  it("returns the previous value from getSet", async () => {
    expect(await store.getSet("gs", "a")).toBeNull();
    expect(await store.getSet("gs", "b", { ttlMs: 10_000 })).toBe("a");
    expect(await store.get("gs")).toBe("b");
    expect(await store.pttl("gs")).toBeGreaterThan(0);
  });

  it("keeps hash fields and expires the whole hash", async () => {
    await store.hset("h", "d1", "online");
    await store.hset("h", "d2", "away");
    expect(await store.hgetall("h")).toEqual({ d1: "online", d2: "away" });
    expect(await store.hdel("h", "d1", "nope")).toBe(1);
    expect(await store.hgetall("h")).toEqual({ d2: "away" });
    expect(await store.pexpire("h", 100)).toBe(true);
    await until(async () => Object.keys(await store.hgetall("h")).length === 0);
    expect(await store.pexpire("h", 100)).toBe(false);
    expect(await store.hgetall("missing")).toEqual({});
  });

  it("sets a hash field only while it holds the expected value", async () => {
    await store.hset("cas", "d1", "v1");
    expect(await store.hsetIfEquals("cas", "d1", "v0", "v2")).toBe(false);
    expect(await store.hgetall("cas")).toEqual({ d1: "v1" });
    expect(await store.hsetIfEquals("cas", "d1", "v1", "v2")).toBe(true);
    expect(await store.hgetall("cas")).toEqual({ d1: "v2" });
    expect(await store.hsetIfEquals("cas", "absent", "v1", "v3")).toBe(false);
    expect(await store.hsetIfEquals("no-such-hash", "d1", "v1", "v3")).toBe(false);
    expect(await store.hgetall("cas")).toEqual({ d1: "v2" });
  });

  it("orders a sorted set by score and removes only an unchanged member", async () => {
    await store.zadd("z", 30, "c");
    await store.zadd("z", 10, "a");
    await store.zadd("z", 20, "b");
    expect(await store.zrangeByScore("z", 25, 10)).toEqual([
      { member: "a", score: 10 },
      { member: "b", score: 20 },
    ]);
    expect(await store.zrangeByScore("z", 100, 1)).toEqual([{ member: "a", score: 10 }]);
    await store.zadd("z", 40, "a"); // moved by a concurrent writer
    expect(await store.zremIfScore("z", "a", 10)).toBe(false);
    expect(await store.zremIfScore("z", "a", 40)).toBe(true);
    expect(await store.zrangeByScore("z", 100, 10)).toEqual([
      { member: "b", score: 20 },
      { member: "c", score: 30 },
    ]);
    expect(await store.del("z")).toBe(1);
    expect(await store.zrangeByScore("z", 100, 10)).toEqual([]);
  });
});
