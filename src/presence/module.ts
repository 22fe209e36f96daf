// Builds presence and typing from config and stores; called by the composition root.

import type { Logger } from "pino";
import type { Config } from "../config.ts";
import type { Stores } from "../stores/stores.ts";
import type { MembershipReader } from "../conversations/ports.ts";
import type { StreamHooks } from "../realtime/ports.ts";
import { PresenceTracker } from "./tracker.ts";
import { TypingIndicators } from "./typing.ts";
import { PresenceWatchers } from "./watchers.ts";
import { SqlPresenceSnapshots } from "./snapshots.ts";
import { StreamPresenceFanout } from "./fanout.ts";
import { PresenceDomain } from "./service.ts";

export interface PresenceModule {
  domain: PresenceDomain;
  tracker: PresenceTracker;
  typing: TypingIndicators;
  /** Stream open/heartbeat/close feed device presence (keyed by session: one per device). */
  hooks: StreamHooks;
  start(): void;
  stop(): void;
}

export function createPresence(deps: {
  config: Config;
  stores: Stores;
  members: MembershipReader;
  conversationsOf: (userId: string) => Promise<string[]>;
  publishTyping: (conversationId: string, userId: string, typing: boolean, version: number) => Promise<void>;
  logger: Logger;
}): PresenceModule {
  const logger = deps.logger.child({ module: "presence" });
  const watchers = new PresenceWatchers(deps.stores.ephemeral);
  const fanout = new StreamPresenceFanout({
    ephemeral: deps.stores.ephemeral,
    watchers,
    conversationsOf: deps.conversationsOf,
    publishTyping: deps.publishTyping,
  });
  const settings = deps.config.presence;
  const tracker = new PresenceTracker({
    store: deps.stores.ephemeral,
    snapshots: new SqlPresenceSnapshots(deps.stores.sql),
    fanout,
    settings,
    logger,
  });
  const typing = new TypingIndicators({ store: deps.stores.ephemeral, fanout, settings, logger });
  const domain = new PresenceDomain({ tracker, typing, watchers, members: deps.members });
  // A device is online while its stream is open: the hub closes streams whose
  // client went silent, so this node refreshes the presence of every session it
  // holds a stream for, a few times per device TTL (Subscribe streams send no
  // client frames, and per-frame refreshes would cost Redis writes per message).
  // A node that dies stops refreshing, and its users expire by themselves.
  const safely = (what: string, p: Promise<unknown>) => void p.catch((err) => logger.warn({ err }, `presence ${what} failed`));
  const open = new Map<string, { userId: string; streams: number }>();
  const hooks: StreamHooks = {
    opened(s) {
      const entry = open.get(s.sessionId) ?? { userId: s.userId, streams: 0 };
      entry.streams++;
      open.set(s.sessionId, entry);
      safely("open", tracker.connected(s.userId, s.sessionId));
    },
    heartbeat() {},
    closed(s) {
      const entry = open.get(s.sessionId);
      if (entry && --entry.streams > 0) return; // another stream of the same device is still open
      open.delete(s.sessionId);
      safely("close", tracker.disconnected(s.userId, s.sessionId));
    },
  };
  let refresher: NodeJS.Timeout | null = null;
  const refresh = async () => {
    for (const [sessionId, { userId }] of open) await tracker.heartbeat(userId, sessionId);
  };
  return {
    domain,
    tracker,
    typing,
    hooks,
    start() {
      tracker.start();
      refresher ??= setInterval(() => safely("refresh", refresh()), Math.max(50, Math.floor(settings.deviceTtlMs / 3)));
      refresher.unref();
    },
    stop() {
      if (refresher) clearInterval(refresher);
      refresher = null;
      tracker.stop();
      typing.stop();
    },
  };
}
