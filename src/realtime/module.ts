// Builds the realtime feature (event sink, hub, handlers, maintenance job)
// from config and stores; called by the composition root.

import type { RequestValidator } from "../server/validation.ts";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Config } from "../config.ts";
import type { Stores } from "../stores/stores.ts";
import type { MessageStore } from "../messages/store.ts";
import type { MessageService } from "../../gen/chat/v1/message_pb.js";
import { SqlEventLog, type EventLog } from "./event-log.ts";
import { EventMaterializer } from "./materialize.ts";
import { RealtimeEventSink, type SinkHooks } from "./sink.ts";
import type { DomainEvent } from "../events/events.ts";
import { RealtimeHub } from "./hub.ts";
import { realtimeHandlers } from "./handler.ts";
import { StreamAdmission, goAwayWindowMs } from "./admission.ts";
import { OpenIntake } from "./intake.ts";
import { SqlMemberDirectory } from "./sql-directory.ts";
import {
  messageReaderOf,
  noHooks,
  type AccessTokenCheck,
  type ConversationReader,
  type StreamHooks,
  type TypingSink,
  type UnaryMessageOps,
} from "./ports.ts";

export interface RealtimeModule {
  /** The EventSink every feature announces persisted changes to. */
  events: RealtimeEventSink;
  hub: RealtimeHub;
  log: EventLog;
  /** Refuses stream opens at the door, before connect-es, beyond what admission can take (intake.ts). */
  intake: OpenIntake;
  /** `tokens`: checks the access token of a `refresh_auth` frame (the auth interceptor's verifier). */
  handlers(
    unary: UnaryMessageOps,
    tokens: AccessTokenCheck,
    validator: RequestValidator,
  ): Pick<ServiceImpl<typeof MessageService>, "stream" | "subscribe" | "ackEvents">;
  /** Subscribes to revocations, starts the timers, runs the maintenance job once. */
  start(): Promise<void>;
  /** Shutdown step one: GoAway to every stream, wait (up to waitMs) until they ended. */
  goAway(waitMs: number): Promise<void>;
  close(): Promise<void>;
}

export function createRealtime(deps: {
  config: Config;
  stores: Stores;
  messages: MessageStore;
  conversations: ConversationReader;
  logger: Logger;
  registry?: Registry;
  hooks?: StreamHooks;
  /** Where a stream's `typing` frame goes (presence: throttling and expiry); default: straight to the conversation's streams. */
  typing?: TypingSink;
  /** Also told about every committed event (notifications). */
  also?: (events: DomainEvent[]) => void;
  /** Tests: see SinkHooks. */
  sinkHooks?: SinkHooks;
  /** Extra maintenance (the MongoDB message store's sweep), run with retention. */
  maintenance?: () => Promise<void>;
}): RealtimeModule {
  const rt = deps.config.realtime;
  const logger = deps.logger.child({ module: "realtime" });
  const log = new SqlEventLog(deps.stores.sql);
  const messages = messageReaderOf(deps.messages);
  const materializer = new EventMaterializer({ messages, conversations: deps.conversations });
  const events = new RealtimeEventSink({
    materializer,
    ephemeral: deps.stores.ephemeral,
    logger,
    registry: deps.registry,
    also: deps.also,
    hooks: deps.sinkHooks,
  });
  const hub = new RealtimeHub({
    ephemeral: deps.stores.ephemeral,
    log,
    materializer,
    directory: new SqlMemberDirectory(deps.stores.sql),
    events,
    settings: { queueMax: rt.streamQueueMax, resyncThreshold: rt.resyncThreshold, heartbeatIntervalMs: rt.heartbeatIntervalMs },
    headCheckMs: rt.headCheckMs,
    hooks: deps.hooks ?? noHooks,
    logger,
    registry: deps.registry,
  });

  const admission = new StreamAdmission(
    { maxOpening: rt.openConcurrency, queueMax: rt.openQueueMax, waitMs: rt.openWaitMs, perUserMax: rt.maxStreamsPerUser },
    deps.registry,
  );

  const intake = new OpenIntake(admission.capacity, () => admission.countRefused("intake_full"));

  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  const maintain = () => {
    running ??= (async () => {
      try {
        const pruned = await log.prune(new Date(Date.now() - rt.eventRetentionSec * 1000));
        if (pruned.events + pruned.checkpoints > 0) logger.info(pruned, "pruned old events and checkpoints");
        await deps.maintenance?.();
      } catch (err) {
        logger.warn({ err }, "realtime maintenance failed");
      } finally {
        running = null;
      }
    })();
    return running;
  };

  return {
    events,
    hub,
    log,
    intake,
    handlers: (unary, tokens, validator) =>
      realtimeHandlers(
        hub,
        unary,
        deps.typing ?? ((c, userId, typing) => hub.publishTyping(c, userId, typing, Date.now() * 1000)),
        tokens,
        admission,
        validator,
      ),
    async start() {
      await hub.start();
      void maintain();
      // Jittered so that nodes started together do not all run it at once.
      timer = setInterval(() => void maintain(), rt.maintenanceIntervalMs + Math.floor(Math.random() * rt.maintenanceIntervalMs * 0.2));
      timer.unref();
    },
    // Reconnects spread over a window that grows with the node's stream count, so that its
    // clients arrive at the other nodes at about STREAM_RECONNECT_RATE per second, not all at once.
    goAway: (waitMs) => hub.goAway("server shutting down", goAwayWindowMs(hub.size, rt.goAwayReconnectMs, rt.reconnectRatePerSec), waitMs),
    async close() {
      if (timer) clearInterval(timer);
      await running;
      await hub.stop();
      await events.drain();
    },
  };
}
