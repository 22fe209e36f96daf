// Typed RPC clients over one transport, with the bearer token added to every
// call and, on UNAUTHENTICATED, one (shared) refresh and one retry.

import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { AuthService } from "../../gen/chat/v1/auth_pb.js";
import { ConversationService } from "../../gen/chat/v1/conversation_pb.js";
import { MessageService } from "../../gen/chat/v1/message_pb.js";
import { PresenceService } from "../../gen/chat/v1/presence_pb.js";
import { NotificationService } from "../../gen/chat/v1/notification_pb.js";
import { WorkspaceService } from "../../gen/chat/v1/workspace_pb.js";
import { SessionEndedError, type TokenManager } from "./tokens.ts";

/**
 * How the SDK reaches the server. `bidi`: the runtime can stream both ways
 * (gRPC or Connect over HTTP/2 in Node): realtime uses Stream; otherwise
 * (browsers) Subscribe + unary calls.
 */
export interface ChatTransport {
  /** Builds a transport with these interceptors (the SDK adds the bearer token). */
  create(interceptors: Interceptor[]): Transport;
  bidi: boolean;
  /** For logs and tests: "grpc", "connect", "grpc-web". */
  protocol: string;
}

/** Calls that go out without a bearer token. */
const PUBLIC = new Set(["Register", "Login", "Refresh"]);

/** Adds the bearer token; on UNAUTHENTICATED (unary), refreshes once (single flight) and retries once. */
export function authInterceptor(tokens: TokenManager): Interceptor {
  return (next) => async (req) => {
    if (req.service.typeName === AuthService.typeName && PUBLIC.has(req.method.name)) return next(req);
    if (req.header.has("authorization")) return next(req); // set by the caller (streams)
    const token = await tokens.accessToken();
    req.header.set("authorization", `Bearer ${token}`);
    try {
      return await next(req);
    } catch (err) {
      // Streams report UNAUTHENTICATED while being read; their owner handles it.
      if (req.stream || ConnectError.from(err).code !== Code.Unauthenticated) throw err;
      const fresh = await tokens.refresh(token);
      req.header.set("authorization", `Bearer ${fresh.accessToken}`);
      return next(req);
    }
  };
}

export interface ChatApi {
  auth: Client<typeof AuthService>;
  conversations: Client<typeof ConversationService>;
  messages: Client<typeof MessageService>;
  presence: Client<typeof PresenceService>;
  notifications: Client<typeof NotificationService>;
  workspaces: Client<typeof WorkspaceService>;
}

export function createApi(transport: Transport): ChatApi {
  return {
    auth: createClient(AuthService, transport),
    conversations: createClient(ConversationService, transport),
    messages: createClient(MessageService, transport),
    presence: createClient(PresenceService, transport),
    notifications: createClient(NotificationService, transport),
    workspaces: createClient(WorkspaceService, transport),
  };
}

export { SessionEndedError };
