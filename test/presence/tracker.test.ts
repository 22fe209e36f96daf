// Presence on the real ephemeral stores (Redis, shared by two tracker
// "nodes", and the in-process twin): merging devices, grace, coalescing,
// expiry after a node stops without cleaning up, snapshots for last_seen.

import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { pino } from "pino";
import { env, forEachBackend, isolatedRedisPrefix } from "../support/backends.ts";
import type { EphemeralStore } from "../../src/stores/ephemeral/ephemeral.ts";
import { createRedisStore } from "../../src/stores/ephemeral/redis.ts";
import { createMemoryStore } from "../../src/stores/ephemeral/memory.ts";
import { PresenceTracker } from "../../src/presence/tracker.ts";
import type { PresenceSnapshots } from "../../src/presence/snapshots.ts";
import type { Presence, PresenceFanout, PresenceSettings, PresenceStatus } from "../../src/presence/types.ts";
import { until } from "../support/poll.ts";

const settings: PresenceSettings = {
  deviceTtlMs: 400,
  graceMs: 250,
  coalesceMs: 50,
  sweepIntervalMs: 20,
  typingTtlMs: 300,
  typingThrottleMs: 100,
};

/** Records what would be delivered to streams. */
class RecordingFanout implements PresenceFanout {
  readonly presence: Presence[] = [];
  readonly typing: { conversationId: string; userId: string; typing: boolean }[] = [];
  async presenceChanged(p: Presence) {
    this.presence.push(p);
  }
  async typingChanged(conversationId: string, userId: string, typing: boolean) {
    this.typing.push({ conversationId, userId, typing });
  }
  statuses(userId: string): PresenceStatus[] {
    return this.presence.filter((p) => p.userId === userId).map((p) => p.status);
  }
}

class MapSnapshots implements PresenceSnapshots {
  readonly saved = new Map<string, Date>();
  async save(userId: string, _status: PresenceStatus, lastSeenAt: Date) {
    this.saved.set(userId, lastSeenAt);
  }
  async lastSeen(userIds: string[]) {
    return new Map(userIds.filter((id) => this.saved.has(id)).map((id) => [id, this.saved.get(id)!]));
  }
}

forEachBackend("presence tracker", ["redis", "memory"] as const, (name) => {
  let storeA: EphemeralStore;
  let storeB: EphemeralStore;
  let fanout: RecordingFanout;
  let snapshots: MapSnapshots;
  let nodeA: PresenceTracker;
  let nodeB: PresenceTracker;
  const logger = pino({ level: "silent" });

  beforeAll(async () => {
    if (name === "redis") {
      const prefix = isolatedRedisPrefix();
      storeA = await createRedisStore(env.redis!, prefix);
      storeB = await createRedisStore(env.redis!, prefix);
    } else {
      storeA = storeB = createMemoryStore();
    }
  });
  afterAll(async () => {
    await storeA?.close();
    if (storeB !== storeA) await storeB?.close();
  });
  const startNodes = (nodeSettings: PresenceSettings = settings) => {
    fanout = new RecordingFanout();
    snapshots = new MapSnapshots();
    nodeA = new PresenceTracker({ store: storeA, snapshots, fanout, settings: nodeSettings, logger });
    nodeB = new PresenceTracker({ store: storeB, snapshots, fanout, settings: nodeSettings, logger });
    nodeA.start();
    nodeB.start();
  };
  afterEach(() => {
    nodeA?.stop();
    nodeB?.stop();
  });

  it("is online while any device is, and offline with last_seen_at after the last one goes", async () => {
    startNodes();
    const user = randomUUID();
    await nodeA.connected(user, "phone");
    await nodeB.connected(user, "laptop");
    await until(() => fanout.statuses(user).length === 1);
    expect((await nodeA.get([user]))[0]).toMatchObject({ status: "online", lastSeenAt: null });

    await nodeA.disconnected(user, "phone");
    // Past the grace period the phone is gone, the laptop keeps the user online.
    await until(async () => (await storeA.zrangeByScore("pr:exp", Date.now() + 10_000, 10)).length === 1);
    expect((await nodeB.get([user]))[0].status).toBe("online");

    const before = Date.now();
    await nodeB.disconnected(user, "laptop");
    await until(() => fanout.statuses(user).includes("offline"));
    expect(fanout.statuses(user)).toEqual(["online", "offline"]);
    const offline = fanout.presence.at(-1)!;
    expect(offline.lastSeenAt!.getTime()).toBeGreaterThanOrEqual(before - 5);
    expect(offline.lastSeenAt!.getTime()).toBeLessThanOrEqual(Date.now());
    expect((await nodeA.get([user]))[0]).toMatchObject({ status: "offline" });
    expect(snapshots.saved.get(user)?.getTime()).toBe(offline.lastSeenAt!.getTime());
  });

  it("publishes nothing for a reconnect within the grace period", async () => {
    startNodes();
    const user = randomUUID();
    await nodeA.connected(user, "phone");
    await until(() => fanout.statuses(user).length === 1);
    await nodeA.disconnected(user, "phone");
    await nodeB.connected(user, "phone"); // reconnected to another node, quickly
    // Wait past grace + coalescing + a few sweeps, keeping the device alive.
    const end = Date.now() + settings.graceMs + 200;
    while (Date.now() < end) {
      await nodeB.heartbeat(user, "phone");
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(fanout.statuses(user)).toEqual(["online"]);
  });

  it("keeps a device that moved to another node online when the old node's close arrives late", async () => {
    // The device's entry lives far longer than the grace period, and nothing heartbeats:
    // only a late close from the node the device left could make it expire early.
    startNodes({ ...settings, deviceTtlMs: 5000, graceMs: 100 });
    const user = randomUUID();
    await nodeA.connected(user, "phone");
    await until(() => fanout.statuses(user).length === 1);
    await nodeB.connected(user, "phone"); // reconnected to node B...
    await nodeA.disconnected(user, "phone"); // ...before node A noticed the old stream closed
    const end = Date.now() + 100 + 300; // past grace + coalescing + many sweeps
    while (Date.now() < end) await new Promise((r) => setTimeout(r, 25));
    expect((await nodeA.get([user]))[0].status).toBe("online");
    expect(fanout.statuses(user)).toEqual(["online"]);
    // Node B's own close still starts the grace period, and then she goes offline.
    await nodeB.disconnected(user, "phone");
    await until(() => fanout.statuses(user).length === 2);
    expect(fanout.statuses(user)).toEqual(["online", "offline"]);
  });

  it("merges statuses: DND is sticky, ONLINE beats AWAY", async () => {
    startNodes();
    const user = randomUUID();
    await nodeA.connected(user, "phone");
    await nodeA.connected(user, "laptop");
    expect((await nodeA.setStatus(user, "phone", "away")).status).toBe("online");
    expect((await nodeA.setStatus(user, "laptop", "away")).status).toBe("away");
    expect((await nodeA.setStatus(user, "phone", "dnd")).status).toBe("dnd");
    expect((await nodeA.setStatus(user, "laptop", "online")).status).toBe("dnd");
    await until(() => fanout.statuses(user).at(-1) === "dnd");
    // A device's status survives its reconnect.
    await nodeA.connected(user, "phone");
    expect((await nodeA.get([user]))[0].status).toBe("dnd");
  });

  it("coalesces a flapping client into at most one change per window", async () => {
    startNodes();
    const user = randomUUID();
    await nodeA.connected(user, "phone");
    for (let i = 0; i < 20; i++) await nodeA.setStatus(user, "phone", i % 2 ? "online" : "away");
    await nodeA.setStatus(user, "phone", "online");
    await until(async () => fanout.statuses(user).at(-1) === "online" && !(await storeA.get(`pr:rl:${user}`)));
    // 21 changes, a few windows: far fewer publications, ending in the final state.
    expect(fanout.statuses(user).length).toBeLessThan(8);
  });

  it("expires a device whose node died without cleaning up; another node publishes offline", async () => {
    startNodes();
    const user = randomUUID();
    await nodeA.connected(user, "phone");
    await until(() => fanout.statuses(user).length === 1);
    nodeA.stop(); // the node is gone: no disconnect, no more heartbeats or sweeps
    await until(() => fanout.statuses(user).includes("offline"), settings.deviceTtlMs + 3000);
    expect((await nodeB.get([user]))[0].status).toBe("offline");
  });

  it("answers last_seen_at from the snapshot when the ephemeral store forgot the user", async () => {
    startNodes();
    const user = randomUUID();
    const seen = new Date(Date.now() - 60_000);
    await snapshots.save(user, "offline", seen);
    expect((await nodeA.get([user]))[0]).toEqual({ userId: user, status: "offline", lastSeenAt: seen });
  });
});
