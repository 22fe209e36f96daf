// The chat SDK: no DOM, no Node built-ins here (Node 22+ and browsers). Pick a
// transport from "./node.ts" (gRPC, Connect, gRPC-Web via connect-node) or
// "./web.ts" (Connect, gRPC-Web via fetch). See docs/CLIENTS.md.

export { ChatClient, type ChatClientOptions, type ConnectOptions, type EventKind, type EventPayload } from "./client.ts";
export { authInterceptor, createApi, type ChatApi, type ChatTransport } from "./api.ts";
export { TokenManager, SessionEndedError, tokensFromPair, isTransient, type Tokens, type TokenStorage, type TokenManagerOptions } from "./tokens.ts";
export { RealtimeStream, type LinkState, type RealtimeOptions, type RealtimeStats, type Frame } from "./realtime.ts";
export { Outbox, type OutboxOptions, type PendingSend, type SendInput } from "./outbox.ts";
export { Timeline, UnreadCounts, TypingState, PresenceState, type PresenceView } from "./state.ts";
export {
  MessageList,
  messageData,
  toggledReactions,
  type MessageData,
  type MessageState,
  type ReactionView,
  type TimelineItem,
} from "./message-list.ts";
export { fullJitterMs, sleep, type BackoffOptions } from "./backoff.ts";
export { uuid } from "./uuid.ts";
export { whoReacted, type WhoReacted, type WhoReactedOptions } from "./reactions.ts";
export { DeviceTokens, type DeviceTokenStorage } from "./device-tokens.ts";
export { IdlePresence, type IdlePresenceOptions, type IdleStatus } from "./idle.ts";
