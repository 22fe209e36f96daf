// The MongoDB adapter against a real MongoDB-protocol server (FerretDB here,
// MongoDB 6+ where Docker runs): capability detection, idempotent index
// creation, and the TTL fallback.

import { afterAll, beforeAll, expect, it } from "vitest";
import { pino } from "pino";
import type { IndexDescription } from "mongodb";
import { forEachBackend, isolatedMongo } from "../support/backends.ts";
import { connectMongo, ensureIndexes, sweepExpired, type MongoStore } from "../../src/stores/mongo/mongo.ts";

forEachBackend("mongo store", ["mongo"] as const, () => {
  let store: MongoStore;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    const iso = await isolatedMongo();
    drop = iso.drop;
    store = await connectMongo(iso.url, pino({ level: "silent" }));
  });
  afterAll(async () => {
    await store?.close();
    await drop?.();
  });

  it("detects what the server can do", async () => {
    const caps = store.capabilities;
    expect(["mongodb", "ferretdb"]).toContain(caps.server);
    if (caps.server === "ferretdb") {
      expect(caps).toMatchObject({ textIndex: false, ttlIndex: false, transactions: false, changeStreams: false, atomicUpdates: false });
    } else {
      expect(caps.textIndex).toBe(true);
      expect(caps.ttlIndex).toBe(true);
      expect(caps.atomicUpdates).toBe(true);
    }
  });

  it("creates indexes idempotently, leaving out what the server lacks", async () => {
    const specs: IndexDescription[] = [
      { key: { conversationId: 1, seq: 1 }, name: "conv_seq", unique: true },
      { key: { expiresAt: 1 }, name: "ttl", expireAfterSeconds: 0 },
      { key: { content: "text" }, name: "text" },
    ];
    await ensureIndexes(store, "probe", specs);
    await ensureIndexes(store, "probe", specs); // twice: no error
    const names = (await store.db.collection("probe").indexes()).map((i) => i.name);
    expect(names).toContain("conv_seq");
    expect(names.includes("ttl")).toBe(store.capabilities.ttlIndex);
    expect(names.includes("text")).toBe(store.capabilities.textIndex);
    // The unique index is enforced.
    await store.db.collection("probe").insertOne({ conversationId: "c", seq: 1 });
    await expect(store.db.collection("probe").insertOne({ conversationId: "c", seq: 1 })).rejects.toMatchObject({ code: 11000 });
  });

  it("sweeps expired documents (the TTL fallback)", async () => {
    const coll = store.db.collection("expiring");
    const now = new Date();
    await coll.insertMany([
      { k: "old", expiresAt: new Date(now.getTime() - 1000) },
      { k: "new", expiresAt: new Date(now.getTime() + 60_000) },
    ]);
    expect(await sweepExpired(store, "expiring", "expiresAt", now)).toBe(1);
    expect((await coll.find().toArray()).map((d) => d.k)).toEqual(["new"]);
  });

  it("makes concurrent inserts under a unique key exclusive (the one primitive every server makes atomic)", async () => {
    const coll = store.db.collection<{ _id: string }>("claims");
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => coll.insertOne({ _id: "only-one" })));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
  });

  it("answers ping", async () => {
    await expect(store.ping()).resolves.toBeUndefined();
  });
});
