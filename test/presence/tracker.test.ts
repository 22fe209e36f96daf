// Presence on the real ephemeral stores (Redis, shared by two tracker
// "nodes", and the in-process twin): merging devices, grace, coalescing,
// expiry after a node stops without cleaning up, snapshots for last_seen.
//
// Device expiry (TTL, grace) runs on a clock the test moves by hand, so no
// entry expires because the machine was slow, and every expiry the test
// expects happens because the clock passed it: the outcomes and their order
// are exact under any load. The sweepers still run on real timers, as in
// production; coalescing windows are real-time keys in the store.

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  // The trackers' clock: it moves only when a test says so (monotonic across the tests of a block).
  let clock = Date.now();
  const now = () => clock;
  const advance = (ms: number) => {
    clock += ms;
  };

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
    nodeA = new PresenceTracker({ store: storeA, snapshots, fanout, settings: nodeSettings, logger, now });
    nodeB = new PresenceTracker({ store: storeB, snapshots, fanout, settings: nodeSettings, logger, now });
    nodeA.start();
    nodeB.start();
  };
  afterEach(() => {
    nodeA?.stop();
    nodeB?.stop();
  });
  /** Whether the user's device is in the expiry index (a sweep removes it when it claims the expiry). */
  const indexed = async (user: string, device: string) =>
    (await storeA.zrangeByScore("pr:exp", Number.MAX_SAFE_INTEGER, 10_000)).some((e) => e.member === `${user}|${device}`);
  /**
   * Lets everything that could still publish do so: the running nodes sweep
   * at the current clock, then no coalescing window or deferred publication
   * is left for the user on any node. After this, nothing more is coming.
   */
  const settled = async (user: string, running = [nodeA, nodeB]) => {
    for (const node of running) await node.sweep();
    const pending = (node: PresenceTracker) => (node["deferred"] as Map<string, unknown>).has(user);
    await until(async () => !(await storeA.get(`pr:rl:${user}`)) && ![nodeA, nodeB].some(pending), 10_000, "publications settled");
  };

  it("is online while any device is, and offline with last_seen_at after the last one goes", async () => {
    startNodes();
    const user = randomUUID();
    await nodeA.connected(user, "phone");
    await nodeB.connected(user, "laptop");
    await until(() => fanout.statuses(user).length === 1);
    expect((await nodeA.get([user]))[0]).toMatchObject({ status: "online", lastSeenAt: null });

    await nodeA.disconnected(user, "phone");
    // Past the grace period the phone is gone (a sweep claimed it), the laptop keeps the user online.
    advance(settings.graceMs + 1);
    await until(async () => !(await indexed(user, "phone")), 10_000, "the phone swept");
    expect(await indexed(user, "laptop")).toBe(true);
    expect((await nodeB.get([user]))[0].status).toBe("online");
    await settled(user);
    expect(fanout.statuses(user)).toEqual(["online"]);

    const closedAt = clock;
    await nodeB.disconnected(user, "laptop");
    // Within the grace period she is still online; past it, offline.
    advance(settings.graceMs - 1);
    await settled(user);
    expect(fanout.statuses(user)).toEqual(["online"]);
    advance(2);
    await until(() => fanout.statuses(user).includes("offline"));
    expect(fanout.statuses(user)).toEqual(["online", "offline"]);
    const offline = fanout.presence.at(-1)!;
    // Last seen: when the last device's stream closed.
    expect(offline.lastSeenAt!.getTime()).toBe(closedAt);
    expect((await nodeA.get([user]))[0]).toMatchObject({ status: "offline", lastSeenAt: new Date(closedAt) });
    expect(snapshots.saved.get(user)?.getTime()).toBe(closedAt);
  });

  it("publishes nothing for a reconnect within the grace period", async () => {
    startNodes();
    const user = randomUUID();
    await nodeA.connected(user, "phone");
    await until(() => fanout.statuses(user).length === 1);
    await nodeA.disconnected(user, "phone");
    // Inside the grace period: both nodes sweep, nothing is claimed, she is still online.
    advance(settings.graceMs - 50);
    await settled(user);
    expect(fanout.statuses(user)).toEqual(["online"]);
    await nodeB.connected(user, "phone"); // reconnected to another node, inside the grace period
    // Past grace + coalescing, with sweeps on both nodes at every step, the device heart-beating.
    for (let elapsed = 0; elapsed <= settings.graceMs + 2 * settings.coalesceMs; elapsed += 50) {
      advance(50);
      await nodeB.heartbeat(user, "phone");
      await sleep(settings.sweepIntervalMs * 2);
    }
    await settled(user);
    expect(fanout.statuses(user)).toEqual(["online"]);
    expect((await nodeA.get([user]))[0].status).toBe("online");
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
    for (let elapsed = 0; elapsed < 100 + 300; elapsed += 25) {
      advance(25); // past grace + coalescing, with sweeps between steps
      await sleep(settings.sweepIntervalMs * 2);
    }
    await settled(user);
    expect((await nodeA.get([user]))[0].status).toBe("online");
    expect(fanout.statuses(user)).toEqual(["online"]);
    // Node B's own close still starts the grace period, and then she goes offline.
    await nodeB.disconnected(user, "phone");
    advance(101);
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
    // A window long enough that the 21 changes below fall into one or two of them even on a loaded machine.
    const coalesceMs = 1000;
    startNodes({ ...settings, coalesceMs });
    const user = randomUUID();
    const start = Date.now();
    await nodeA.connected(user, "phone");
    for (let i = 0; i < 20; i++) await nodeA.setStatus(user, "phone", i % 2 ? "online" : "away");
    await nodeA.setStatus(user, "phone", "online");
    await until(async () => fanout.statuses(user).at(-1) === "online" && !(await storeA.get(`pr:rl:${user}`)));
    const elapsed = Date.now() - start;
    // Ending in the final state, with at most one publication per window that fits in the time it
    // took (each publication first takes the window key, which lives coalesceMs; 10 ms for the
    // store's millisecond rounding): 21 changes, far fewer publications.
    const published = fanout.statuses(user);
    expect(published.length).toBeLessThanOrEqual(Math.floor(elapsed / (coalesceMs - 10)) + 1);
    expect(published.length).toBeLessThan(8);
  });

  it("expires a device whose node died without cleaning up; another node publishes offline", async () => {
    startNodes();
    const user = randomUUID();
    await nodeA.connected(user, "phone");
    await until(() => fanout.statuses(user).length === 1);
    nodeA.stop(); // the node is gone: no disconnect, no more heartbeats or sweeps
    advance(settings.deviceTtlMs - 1);
    await settled(user, [nodeB]);
    expect(fanout.statuses(user)).toEqual(["online"]); // not before its TTL
    advance(2);
    await until(() => fanout.statuses(user).includes("offline"), 10_000, "node B publishes offline");
    expect(fanout.statuses(user)).toEqual(["online", "offline"]);
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
