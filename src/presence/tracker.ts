import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { EphemeralStore } from "../stores/ephemeral/ephemeral.ts";
import { decodeDevice, encodeDevice, mergeDevices, type DeviceEntry } from "./merge.ts";
import type { Presence, PresenceFanout, PresenceSettings, PresenceStatus } from "./types.ts";
import type { PresenceSnapshots } from "./snapshots.ts";

const devicesKey = (userId: string) => `pr:d:${userId}`;
const publishedKey = (userId: string) => `pr:p:${userId}`;
const windowKey = (userId: string) => `pr:rl:${userId}`;
const EXPIRY_INDEX = "pr:exp";

/**
 * Presence per device, merged per user, in the ephemeral store (Redis across
 * nodes). Each device entry carries its own expiry, refreshed by stream
 * heartbeats; a sorted set indexes the expiries so any node can notice a device
 * that stopped (its stream closed, or its node died) and publish the change.
 * Nodes never clean up after each other: the first node to claim an expired
 * entry (compare-and-remove on the index) does it.
 *
 * Transitions are published through the fanout at most once per user per
 * coalescing window; the last published state is kept in the store so that
 * only real changes go out (a reconnect inside the grace period changes nothing).
 */
export class PresenceTracker {
  private readonly store: EphemeralStore;
  private readonly snapshots: PresenceSnapshots;
  private readonly fanout: PresenceFanout;
  private readonly settings: PresenceSettings;
  private readonly logger: Logger;
  /** The clock device expiries are measured on (Date.now; tests drive their own). */
  private readonly now: () => number;
  private readonly deferred = new Map<string, NodeJS.Timeout>();
  /** Tags the device entries this tracker writes (see DeviceEntry.owner). */
  private readonly owner = randomUUID();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(deps: {
    store: EphemeralStore;
    snapshots: PresenceSnapshots;
    fanout: PresenceFanout;
    settings: PresenceSettings;
    logger: Logger;
    now?: () => number;
  }) {
    this.store = deps.store;
    this.snapshots = deps.snapshots;
    this.fanout = deps.fanout;
    this.settings = deps.settings;
    this.logger = deps.logger;
    this.now = deps.now ?? Date.now;
  }

  start(): void {
    this.sweeper ??= setInterval(() => {
      this.sweep().catch((err) => this.logger.warn({ err }, "presence sweep failed"));
    }, this.settings.sweepIntervalMs);
    this.sweeper.unref();
  }

  stop(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const t of this.deferred.values()) clearTimeout(t);
    this.deferred.clear();
  }

  /** A device opened a stream (or resumed one). Keeps a status it set before, else ONLINE. */
  async connected(userId: string, deviceId: string): Promise<void> {
    const previous = decodeDevice((await this.store.hgetall(devicesKey(userId)))[deviceId] ?? "");
    await this.write(userId, deviceId, previous?.status ?? "online", this.settings.deviceTtlMs);
  }

  /** The device's stream is alive: push its expiry forward. */
  async heartbeat(userId: string, deviceId: string): Promise<void> {
    const previous = decodeDevice((await this.store.hgetall(devicesKey(userId)))[deviceId] ?? "");
    await this.write(userId, deviceId, previous?.status ?? "online", this.settings.deviceTtlMs, false);
  }

  /**
   * The device's stream closed: it stays online for the grace period, then
   * expires. Only the entry this node wrote is shortened, by compare-and-set:
   * when the device has reconnected to another node meanwhile (a quick
   * reconnect, or this close noticed late), that node's entry stands, and no
   * offline/online flap is published.
   */
  async disconnected(userId: string, deviceId: string): Promise<void> {
    const key = devicesKey(userId);
    for (let attempt = 0; attempt < 3; attempt++) {
      const raw = (await this.store.hgetall(key))[deviceId];
      const previous = decodeDevice(raw ?? "");
      if (!raw || !previous || previous.owner !== this.owner) return;
      const now = this.now();
      const entry: DeviceEntry = { status: previous.status, expiresAt: now + this.settings.graceMs, lastActiveAt: now, owner: this.owner };
      if (!(await this.store.hsetIfEquals(key, deviceId, raw, encodeDevice(entry)))) continue; // written meanwhile: look again
      await this.index(userId, deviceId, entry, this.settings.graceMs);
      await this.maybePublishIfChanged(userId);
      return;
    }
  }

  /** SetPresence: ONLINE, AWAY or DND for one device. */
  async setStatus(userId: string, deviceId: string, status: Exclude<PresenceStatus, "offline">): Promise<Presence> {
    await this.write(userId, deviceId, status, this.settings.deviceTtlMs);
    return (await this.get([userId]))[0];
  }

  /** Merged presence of each user, in the order asked. */
  async get(userIds: string[]): Promise<Presence[]> {
    const now = this.now();
    const merged = await Promise.all(userIds.map(async (id) => mergeDevices(await this.store.hgetall(devicesKey(id)), now)));
    // last_seen_at of users Redis no longer knows (e.g. after a Redis restart) comes from the snapshot table.
    const unknown = userIds.filter((_, i) => merged[i].lastActiveAt === null);
    const snap = unknown.length > 0 ? await this.snapshots.lastSeen(unknown) : new Map<string, Date>();
    return userIds.map((userId, i) => {
      const m = merged[i];
      const lastSeenAt = m.lastActiveAt !== null ? new Date(m.lastActiveAt) : (snap.get(userId) ?? null);
      return { userId, status: m.status, lastSeenAt: m.status === "offline" ? lastSeenAt : null };
    });
  }

  /** Finds expired devices (claiming each once across all nodes) and publishes the resulting changes. */
  async sweep(now = this.now()): Promise<number> {
    const due = await this.store.zrangeByScore(EXPIRY_INDEX, now, 500);
    const users = new Set<string>();
    for (const { member, score } of due) {
      if (await this.store.zremIfScore(EXPIRY_INDEX, member, score)) users.add(member.slice(0, member.indexOf("|")));
    }
    for (const userId of users) await this.maybePublish(userId);
    return users.size;
  }

  private async write(userId: string, deviceId: string, status: DeviceEntry["status"], ttlMs: number, publish = true): Promise<void> {
    const now = this.now();
    const entry: DeviceEntry = { status, expiresAt: now + ttlMs, lastActiveAt: now, owner: this.owner };
    await this.store.hset(devicesKey(userId), deviceId, encodeDevice(entry));
    await this.index(userId, deviceId, entry, ttlMs);
    if (publish) await this.maybePublish(userId);
    else await this.maybePublishIfChanged(userId);
  }

  private async index(userId: string, deviceId: string, entry: DeviceEntry, ttlMs: number): Promise<void> {
    // The hash outlives its longest device entry a little; stale fields are ignored when merging.
    await this.store.pexpire(devicesKey(userId), Math.max(ttlMs, this.settings.deviceTtlMs) + 60_000);
    await this.store.zadd(EXPIRY_INDEX, entry.expiresAt, `${userId}|${deviceId}`);
  }

  /** Heartbeats and disconnects rarely change the merged state; check cheaply before taking the window. */
  private async maybePublishIfChanged(userId: string): Promise<void> {
    const [current, published] = await Promise.all([this.store.hgetall(devicesKey(userId)), this.store.get(publishedKey(userId))]);
    if (mergeDevices(current, this.now()).status !== (published?.split("|")[0] ?? "offline")) await this.maybePublish(userId);
  }

  /** Publishes the user's merged presence if it differs from the last published one, at most once per window. */
  private async maybePublish(userId: string): Promise<void> {
    const got = await this.store.set(windowKey(userId), "1", { ttlMs: this.settings.coalesceMs, onlyIfAbsent: true });
    if (!got) {
      // Inside the window: look again when it ends (once per user per node).
      if (!this.deferred.has(userId)) {
        const left = Math.max(1, await this.store.pttl(windowKey(userId)));
        const t = setTimeout(() => {
          this.deferred.delete(userId);
          this.maybePublish(userId).catch((err) => this.logger.warn({ err }, "deferred presence publish failed"));
        }, left);
        t.unref();
        this.deferred.set(userId, t);
      }
      return;
    }
    const [presence] = await this.get([userId]);
    const encoded = `${presence.status}|${presence.lastSeenAt?.getTime() ?? ""}`;
    const before = (await this.store.getSet(publishedKey(userId), encoded))?.split("|")[0] ?? "offline";
    if (before === presence.status) return;
    if (presence.status === "offline" || before === "offline") {
      await this.snapshots.save(userId, presence.status, presence.lastSeenAt ?? new Date(this.now()));
    }
    await this.fanout.presenceChanged(presence);
  }
}
