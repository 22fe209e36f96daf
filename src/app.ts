// The composition root: builds the whole object graph from a Config, starts
// the servers, and knows how to shut them down. Tests build it the same way.

import type { ConnectRouter } from "@connectrpc/connect";
import type { GenFile } from "@bufbuild/protobuf/codegenv2";
import type { Logger } from "pino";
import type { Config } from "./config.ts";
import { openStores, type Stores } from "./stores/stores.ts";
import { createMetrics } from "./server/metrics.ts";
import { edgeInterceptor, authInterceptor } from "./server/interceptors.ts";
import { RequestValidator, validationInterceptor } from "./server/validation.ts";
import { HealthState, registerHealth } from "./server/health.ts";
import { registerReflection } from "./server/reflection.ts";
import { applyCors } from "./server/cors.ts";
import { staticSite } from "./server/static.ts";
import { startHttpServer } from "./server/http.ts";
import { rpcNodeHandler } from "./server/rpc-adapter.ts";
import { startAdminServer } from "./server/admin.ts";
import { kClientAddress, kDraining, kRequestAuthority } from "./server/context.ts";
import { createAuthModule } from "./auth/module.ts";
import { authHandler } from "./auth/handler.ts";
import type { EventSink } from "./events/events.ts";
import { SqlConversationStore } from "./conversations/sql-store.ts";
import { Conversations } from "./conversations/service.ts";
import { conversationHandler } from "./conversations/handler.ts";
import type { MessageStore } from "./messages/store.ts";
import { SqlMessageStore } from "./messages/sql-store.ts";
import { MongoMessageStore, type MongoStoreHooks } from "./messages/mongo-store.ts";
import type { SinkHooks } from "./realtime/sink.ts";
import { MessageService as Messages } from "./messages/service.ts";
import { messageHandler } from "./messages/handler.ts";
import { IdempotencyStore } from "./idempotency/store.ts";
import { idempotent } from "./idempotency/idempotent.ts";
import { createRealtime } from "./realtime/module.ts";
import { kNodeRequest } from "./realtime/transport.ts";
import { SqlMemberDirectory } from "./realtime/sql-directory.ts";
import { createPresence } from "./presence/module.ts";
import { presenceHandler } from "./presence/handler.ts";
import { createNotifications } from "./notifications/module.ts";
import { notificationHandler } from "./notifications/handler.ts";
import { createContextValues } from "@connectrpc/connect";
import { SqlWorkspaceStore } from "./workspaces/sql-store.ts";
import { Workspaces } from "./workspaces/service.ts";
import { workspaceHandler } from "./workspaces/handler.ts";

import { AuthService, file_chat_v1_auth } from "../gen/chat/v1/auth_pb.js";
import { ConversationService, file_chat_v1_conversation } from "../gen/chat/v1/conversation_pb.js";
import { MessageService, file_chat_v1_message } from "../gen/chat/v1/message_pb.js";
import { PresenceService, file_chat_v1_presence } from "../gen/chat/v1/presence_pb.js";
import { NotificationService, file_chat_v1_notification } from "../gen/chat/v1/notification_pb.js";
import { WorkspaceService, file_chat_v1_workspace } from "../gen/chat/v1/workspace_pb.js";
import { Health, file_grpc_health_v1_health } from "../gen/grpc/health/v1/health_pb.js";
import * as reflectionV1 from "../gen/grpc/reflection/v1/reflection_pb.js";
import * as reflectionV1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.js";

export interface App {
  config: Config;
  stores: Stores;
  port: number;
  adminPort: number | null;
  /** Graceful: stop accepting, let in-flight calls finish (up to the grace period), close stores. */
  close(): Promise<void>;
}

const CHAT_SERVICES = [AuthService, ConversationService, MessageService, PresenceService, NotificationService, WorkspaceService];
const DESCRIPTOR_FILES: GenFile[] = [
  file_chat_v1_auth,
  file_chat_v1_conversation,
  file_chat_v1_message,
  file_chat_v1_presence,
  file_chat_v1_notification,
  file_chat_v1_workspace,
  file_grpc_health_v1_health,
  reflectionV1.file_grpc_reflection_v1_reflection,
  reflectionV1alpha.file_grpc_reflection_v1alpha_reflection,
];

/** RPCs reachable without an access token. */
const PUBLIC_ROUTES = new Set([
  `${AuthService.typeName}/Register`,
  `${AuthService.typeName}/Login`,
  `${AuthService.typeName}/Refresh`,
  Health.typeName,
  reflectionV1.ServerReflection.typeName,
  reflectionV1alpha.ServerReflection.typeName,
]);

/** Fault injection for tests (crash points of the outbox protocol); never set in production. */
export interface AppHooks {
  sink?: SinkHooks;
  mongo?: MongoStoreHooks;
}

export async function startApp(config: Config, logger: Logger, hooks: AppHooks = {}): Promise<App> {
  const metrics = createMetrics();
  const storeLog = logger.child({ module: "stores" });
  const stores = await openStores(config, logger, {
    connectionLost(store, err) {
      metrics.storeConnectionErrors.inc({ store });
      storeLog.warn({ store, err: String((err as Error)?.message ?? err) }, "store connection lost; calls using it get UNAVAILABLE, reconnecting");
    },
    poolExhausted(store, reason) {
      metrics.storePoolExhausted.inc({ store, reason });
    },
  });
  const shutdown = new AbortController();
  // Aborted as shutdown begins (before the grace period): calls that only end when the client leaves end now.
  const draining = new AbortController();
  // Messages live in MongoDB when it is configured, else in the relational store.
  const messageStore: MessageStore = stores.mongo
    ? new MongoMessageStore(stores.mongo, stores.sql, { hooks: hooks.mongo, firstSweepMs: config.realtime.eventRetentionSec * 1000 })
    : new SqlMessageStore(stores.sql);
  await messageStore.init().catch(async (err) => {
    await stores.close();
    throw err;
  });

  // Also the MembershipReader for messages; the message store gives ListConversations its previews.
  const conversationStore = new SqlConversationStore(stores.sql);
  // Features announce persisted changes to realtime's sink: the durable event log and the fan-out to streams.
  // Presence feeds on stream life (hooks); presence and typing reach streams through realtime's channels.
  const memberDirectory = new SqlMemberDirectory(stores.sql);
  const presence = createPresence({
    config,
    stores,
    members: conversationStore,
    conversationsOf: (userId) => memberDirectory.conversationsOf(userId),
    publishTyping: (conversationId, userId, typing, version) => realtime.hub.publishTyping(conversationId, userId, typing, version),
    logger,
  });
  const realtime = createRealtime({
    config,
    stores,
    messages: messageStore,
    conversations: conversationStore,
    logger,
    registry: metrics.registry,
    hooks: presence.hooks,
    typing: (conversationId, userId, typing) => presence.typing.set(conversationId, userId, typing),
    // Decided off the send path; the notifier logs its own failures.
    also: (changes) => void notifications.notifier.publish(changes),
    sinkHooks: hooks.sink,
    maintenance: messageStore instanceof MongoMessageStore ? () => messageStore.sweep().then(() => undefined) : undefined,
  });
  const notifications = await createNotifications({
    config,
    stores,
    messages: messageStore,
    conversations: conversationStore,
    presence: presence.tracker,
    logger,
    registry: metrics.registry,
  });
  // Every change commits its events with it; realtime's sink announces them after the reply.
  const events: EventSink = realtime.events;
  const workspaces: Workspaces = new Workspaces({
    store: new SqlWorkspaceStore(stores.sql),
    // Their conversations of the workspace go with them (bound late: conversations needs workspaces).
    memberGone: (actor, workspaceId, userId, opts): Promise<number> => conversations.dropWorkspaceMember(actor, workspaceId, userId, opts),
  });
  const conversations = new Conversations({
    store: conversationStore,
    workspaces,
    events,
    previews: messageStore,
    limits: config.conversations,
    logger: logger.child({ module: "conversations" }),
  });

  const auth = await createAuthModule(config, stores, logger, metrics.registry, workspaces).catch(async (err) => {
    await stores.close();
    throw err;
  });
  // Access tokens: signature + claims + expiry (sync, cached), then the in-memory cross-node revocation check.
  const verifier = auth.service;

  const messages = new Messages({ store: messageStore, members: conversationStore, events, limits: config.limits, workspaces });
  await realtime.start().catch(async (err) => {
    await auth.close();
    await realtime.close();
    await stores.close();
    throw err;
  });
  presence.start();
  notifications.start();
  const idempotency = new IdempotencyStore(stores.sql, { ttlMs: config.idempotencyKeyTtlSec * 1000 });

  const health = new HealthState(
    CHAT_SERVICES.map((s) => s.typeName),
    () => stores.ping(),
  );
  const serviceNames = [
    ...CHAT_SERVICES.map((s) => s.typeName),
    Health.typeName,
    reflectionV1.ServerReflection.typeName,
    reflectionV1alpha.ServerReflection.typeName,
  ];

  const validator = new RequestValidator();
  validator.warm(CHAT_SERVICES.flatMap((s) => s.methods.map((m) => m.input)));
  const routes = (router: ConnectRouter) => {
    registerHealth(router, health);
    registerReflection(router, DESCRIPTOR_FILES, serviceNames);
    router.service(AuthService, authHandler(auth.service, { cookieSecure: config.auth.refreshCookieSecure }));
    // `idempotency-key` for mutating RPCs whose late retry must not redo them after
    // something else happened (a later edit, a removal, a second group).
    // SendMessage has client_message_id instead.
    router.service(ConversationService, idempotent(ConversationService, conversationHandler(conversations), idempotency, ["createConversation"]));
    const messageRpcs = idempotent(MessageService, messageHandler(messages), idempotency, [
      "editMessage",
      "deleteMessage",
      "addReaction",
      "removeReaction",
    ]);
    // Stream/Subscribe/AckEvents are realtime's; a `send` frame goes through the same SendMessage handler.
    router.service(MessageService, {
      ...messageRpcs,
      ...realtime.handlers({ sendMessage: messageRpcs.sendMessage!, markRead: messageRpcs.markRead! }, verifier, validator),
    });
    router.service(PresenceService, presenceHandler(presence.domain));
    router.service(NotificationService, notificationHandler(notifications.store, conversationStore));
    router.service(WorkspaceService, idempotent(WorkspaceService, workspaceHandler(workspaces), idempotency, ["createWorkspace"]));
  };

  const rpcHandler = rpcNodeHandler({
    routes,
    // Errors are mapped at the edge; the caller is known before the request is validated.
    interceptors: [edgeInterceptor(logger, metrics), authInterceptor(verifier, PUBLIC_ROUTES), validationInterceptor(validator)],
    readMaxBytes: config.maxMessageBytes,
    writeMaxBytes: config.maxMessageBytes * 4,
    shutdownSignal: shutdown.signal,
    // Anything that is not an RPC: the web client (web/dist), when enabled.
    ...(config.webDir === null ? {} : { fallback: staticSite(config.webDir) }),
    contextValues: (req) =>
      createContextValues()
        .set(kClientAddress, req.socket?.remoteAddress ?? "")
        .set(kNodeRequest, req)
        .set(kDraining, draining.signal)
        .set(kRequestAuthority, req.headers.host ?? (req.headers[":authority"] as string | undefined)),
    onHandlerFailure: (rpc, err) => logger.error({ err, rpc }, "rpc handler failed"),
  });

  const http = await startHttpServer(
    {
      host: config.host,
      port: config.port,
      tls: config.tlsCertFile && config.tlsKeyFile ? { certFile: config.tlsCertFile, keyFile: config.tlsKeyFile } : null,
      maxConcurrentStreams: config.maxConcurrentStreams,
    },
    (req, res) => {
      if (applyCors(config.corsOrigins, req, res)) return;
      if (realtime.intake.refuse(req, res)) return;
      rpcHandler(req, res);
    },
  );
  const admin = config.adminPort === null ? null : await startAdminServer(config.host, config.adminPort, metrics.registry, health);
  logger.info({ port: http.port, adminPort: admin?.port ?? null, tls: Boolean(config.tlsCertFile) }, "serving gRPC, gRPC-Web and Connect");
  logger.flush(); // the line supervisors and tests wait for: now, not with the next batch

  let closing: Promise<void> | null = null;
  return {
    config,
    stores,
    port: http.port,
    adminPort: admin?.port ?? null,
    close() {
      closing ??= (async () => {
        health.markShuttingDown();
        http.stopAccepting();
        draining.abort();
        // Streams never finish by themselves: tell them to reconnect elsewhere and end them.
        await realtime.goAway(Math.min(config.shutdownGraceMs, 5_000));
        const deadline = Date.now() + config.shutdownGraceMs;
        while (http.inFlight() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
        shutdown.abort(); // cancels whatever outlived the grace period
        http.destroy();
        await auth.close();
        presence.stop();
        notifications.stop();
        await realtime.close();
        await admin?.close();
        await stores.close();
        logger.info("stopped");
      })();
      return closing;
    },
  };
}
