// Builds notifications (store, notifier, push) from config and stores; called by the composition root.

import type { Logger } from "pino";
import { Counter, type Registry } from "prom-client";
import type { Config } from "../config.ts";
import type { Stores } from "../stores/stores.ts";
import type { MessageStore } from "../messages/store.ts";
import type { ConversationStore } from "../conversations/store.ts";
import type { PresenceTracker } from "../presence/tracker.ts";
import type { NotificationStore } from "./store.ts";
import { SqlNotificationStore } from "./sql-store.ts";
import { MongoNotificationStore } from "./mongo-store.ts";
import { StoreNotificationFacts } from "./facts.ts";
import { Notifier } from "./notifier.ts";
import { StreamNotificationLive } from "./fanout.ts";
import { WebhookPushSender } from "./webhook.ts";
import type { PushSender } from "./types.ts";

export interface NotificationsModule {
  store: NotificationStore;
  notifier: Notifier;
  start(): void;
  stop(): void;
}

export async function createNotifications(deps: {
  config: Config;
  stores: Stores;
  messages: MessageStore;
  conversations: ConversationStore;
  presence: PresenceTracker;
  logger: Logger;
  registry?: Registry;
}): Promise<NotificationsModule> {
  const logger = deps.logger.child({ module: "notifications" });
  const n = deps.config.notifications;
  const store = deps.stores.mongo ? await MongoNotificationStore.open(deps.stores.mongo) : new SqlNotificationStore(deps.stores.sql);
  const pushes = new Counter({
    name: "notification_push_total",
    help: "Webhook pushes by outcome (delivered, refused by the receiver, gave_up after the retries, dropped with the queue full)",
    labelNames: ["outcome"] as const,
    registers: deps.registry ? [deps.registry] : [],
  });
  const webhook = n.webhookUrl
    ? new WebhookPushSender(
        {
          url: n.webhookUrl,
          secret: n.webhookSecret,
          maxAttempts: n.webhookMaxAttempts,
          backoffMs: n.webhookBackoffMs,
          onOutcome: (outcome) => pushes.inc({ outcome }),
        },
        logger,
      )
    : null;
  const push: PushSender = webhook ?? { send: async () => {} };
  const liveFailures = new Counter({
    name: "notification_live_failures_total",
    help: "Live notification events (to the user's open streams) that could not be published; the notification itself is stored",
    registers: deps.registry ? [deps.registry] : [],
  });
  const notifier = new Notifier({
    store,
    facts: new StoreNotificationFacts({ messages: deps.messages, conversations: deps.conversations, sql: deps.stores.sql }),
    availability: {
      // Offline or away on every device: not reading live, so notify.
      async unavailable(userIds) {
        const presences = await deps.presence.get(userIds);
        return new Set(presences.filter((p) => p.status === "offline" || p.status === "away").map((p) => p.userId));
      },
    },
    push,
    live: new StreamNotificationLive(deps.stores.ephemeral, deps.conversations),
    onLiveFailure: () => liveFailures.inc(),
    windowMs: n.batchWindowMs,
    logger,
  });
  return {
    store,
    notifier,
    start: () => notifier.start(),
    stop() {
      notifier.stop();
      webhook?.stop();
    },
  };
}
