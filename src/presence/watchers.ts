import type { EphemeralStore } from "../stores/ephemeral/ephemeral.ts";
import type { Presence } from "./types.ts";

const channel = (userId: string) => `pw:${userId}`;

/**
 * WatchPresence delivery: every presence change is published once on the
 * user's own channel; a node subscribes to a channel only while one of its
 * WatchPresence calls lists that user.
 */
export class PresenceWatchers {
  private readonly store: EphemeralStore;
  constructor(store: EphemeralStore) {
    this.store = store;
  }

  async publish(p: Presence): Promise<void> {
    await this.store.publish(channel(p.userId), Buffer.from(JSON.stringify({ ...p, lastSeenAt: p.lastSeenAt?.getTime() ?? null })));
  }

  /** Subscribes to the users' changes; resolves once subscribed. Returns the unsubscribe. */
  async watch(userIds: string[], onChange: (p: Presence) => void): Promise<() => Promise<void>> {
    const handler = (raw: Uint8Array) => {
      const p = JSON.parse(Buffer.from(raw).toString()) as Omit<Presence, "lastSeenAt"> & { lastSeenAt: number | null };
      onChange({ ...p, lastSeenAt: p.lastSeenAt === null ? null : new Date(p.lastSeenAt) });
    };
    const subs = await Promise.all(userIds.map((id) => this.store.subscribe(channel(id), handler)));
    return async () => {
      await Promise.all(subs.map((unsubscribe) => unsubscribe()));
    };
  }
}
