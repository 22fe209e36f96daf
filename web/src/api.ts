// The RPC clients, over the Connect protocol or gRPC-Web, and the tokens.
//
// The access token lives in this object only (memory). When the app is served
// by the chat server itself (same origin), the refresh token is kept by the
// server in an HttpOnly cookie that no script can read (docs/AUTH.md), so a
// reload resumes the session with one Refresh. An app served from another
// origin keeps both in memory: a reload there means logging in again.
//
// Device tokens (docs/AUTH.md "Login throttling") mark this browser as known to
// an account, so strangers' failed logins do not slow its next sign-in: on the
// same origin the server keeps them in HttpOnly cookies sent only to Login; an
// app on another origin keeps them in localStorage and sends them itself.

import { Code, ConnectError, type Client, type Transport } from "@connectrpc/connect";
import type { AuthService, User } from "../../gen/chat/v1/auth_pb.js";
import type { ConversationService } from "../../gen/chat/v1/conversation_pb.js";
import type { MessageService } from "../../gen/chat/v1/message_pb.js";
import type { PresenceService } from "../../gen/chat/v1/presence_pb.js";
import type { NotificationService } from "../../gen/chat/v1/notification_pb.js";
import type { WorkspaceService } from "../../gen/chat/v1/workspace_pb.js";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import {
  authInterceptor,
  cookieSessionInterceptor,
  createApi,
  crossTabLock,
  DeviceTokens,
  localStorageDeviceTokens,
  isTransient,
  SessionEndedError,
  TokenManager,
  tokensFromPair,
  webTransport,
  type ChatApi,
  type ChatTransport,
} from "../../client/src/web.ts";

export { isTransient, SessionEndedError };

export type TransportKind = "connect" | "grpc-web";
export const TRANSPORTS: { kind: TransportKind; label: string }[] = [
  { kind: "connect", label: "Connect" },
  { kind: "grpc-web", label: "gRPC-Web" },
];

/**
 * The SDK's clients and token manager (client/), over the protocol picked in
 * the UI. Switching protocol swaps the transport under the same clients
 * (streams are told to reconnect over the new one).
 */
export class Api {
  readonly baseUrl: string;
  transport: TransportKind;
  readonly tokens: TokenManager;
  /** What the SDK's realtime link is built on (delegates to the current protocol). */
  readonly chatTransport: ChatTransport;
  auth: Client<typeof AuthService>;
  conversations: Client<typeof ConversationService>;
  messages: Client<typeof MessageService>;
  presence: Client<typeof PresenceService>;
  notifications: Client<typeof NotificationService>;
  workspaces: Client<typeof WorkspaceService>;
  /** The refresh token is in an HttpOnly cookie (same origin only); a reload can resume. */
  readonly cookieSession: boolean;
  private readonly api: ChatApi;
  /** Another origin only (cookie sessions get an HttpOnly device cookie instead, and the body's token is empty). */
  private readonly deviceTokens: DeviceTokens;
  private readonly onTransportChanged = new Set<() => void>();

  constructor(opts: { baseUrl: string; transport: TransportKind; onSessionEnded: () => void }) {
    this.baseUrl = opts.baseUrl;
    this.transport = opts.transport;
    this.cookieSession = new URL(opts.baseUrl).origin === location.origin;
    this.deviceTokens = new DeviceTokens(this.cookieSession ? undefined : localStorageDeviceTokens());
    this.tokens = new TokenManager({
      refresh: (refreshToken) => this.api.auth.refresh({ refreshToken }),
      onSessionEnded: () => opts.onSessionEnded(),
      // Tabs share the cookie: one Refresh at a time across them, or the second would be reuse.
      lock: this.cookieSession ? crossTabLock() : undefined,
    });
    const extra = this.cookieSession ? [cookieSessionInterceptor()] : [];
    const byKind = new Map<TransportKind, Transport>();
    const current = (interceptors: Parameters<ChatTransport["create"]>[0]): Transport => {
      let t = byKind.get(this.transport);
      if (!t)
        byKind.set(this.transport, (t = webTransport({ baseUrl: this.baseUrl, protocol: this.transport, interceptors: extra }).create(interceptors)));
      return t;
    };
    this.chatTransport = {
      bidi: false,
      get protocol() {
        return "web";
      },
      create: (interceptors) => ({
        unary: (...a) => current(interceptors).unary(...a),
        stream: (...a) => current(interceptors).stream(...a),
      }),
    };
    this.api = createApi(this.chatTransport.create([authInterceptor(this.tokens)]));
    ({
      auth: this.auth,
      conversations: this.conversations,
      messages: this.messages,
      presence: this.presence,
      notifications: this.notifications,
      workspaces: this.workspaces,
    } = this.api);
  }

  get signedIn(): boolean {
    return this.tokens.signedIn;
  }

  get sessionId(): string {
    return this.tokens.current?.sessionId ?? "";
  }

  /** Switches protocol; open streams are told to reconnect over the new one. */
  setTransport(kind: TransportKind): void {
    if (kind === this.transport) return;
    this.transport = kind;
    for (const f of this.onTransportChanged) f();
  }

  onTransportChange(f: () => void): () => void {
    this.onTransportChanged.add(f);
    return () => this.onTransportChanged.delete(f);
  }

  async register(input: { email: string; username: string; password: string; displayName: string; deviceId: string }): Promise<User> {
    const res = await this.auth.register({ ...input, deviceName: deviceName() });
    this.tokens.set(tokensFromPair(res.tokens!));
    await this.deviceTokens.remember([res.user!.username, res.user!.email], res.deviceToken);
    return res.user!;
  }

  async login(input: { login: string; password: string; deviceId: string }): Promise<User> {
    const deviceToken = await this.deviceTokens.get(input.login);
    const res = await this.auth.login({ ...input, deviceName: deviceName(), deviceToken });
    this.tokens.set(tokensFromPair(res.tokens!));
    await this.deviceTokens.remember([input.login, res.user!.username, res.user!.email], res.deviceToken);
    return res.user!;
  }

  /** After a reload: the user of the cookie session, or null (none, or not a cookie session). */
  async resume(): Promise<User | null> {
    if (!this.cookieSession || !(await this.tokens.resume())) return null;
    return (await this.auth.getMe({})).user ?? null;
  }

  async logout(): Promise<void> {
    try {
      if (this.tokens.signedIn) await this.auth.logout({ allSessions: false });
    } finally {
      this.tokens.clear();
    }
  }

  /** Single flight (the SDK's token manager): concurrent callers holding the same stale token share one Refresh. */
  async refresh(staleAccessToken: string): Promise<void> {
    await this.tokens.refresh(staleAccessToken);
  }

  /** The current access token, for streams that handle UNAUTHENTICATED themselves. */
  accessToken(): string {
    return this.tokens.current?.accessToken ?? "";
  }
}

function deviceName(): string {
  const ua = navigator.userAgent;
  const browser = /Chrom(e|ium)\//.test(ua) ? "Chromium" : /Firefox\//.test(ua) ? "Firefox" : /Safari\//.test(ua) ? "Safari" : "Browser";
  return `${browser} (web)`;
}

export interface ErrorView {
  message: string;
  /** The machine-readable reason (google.rpc.ErrorInfo, docs/ERRORS.md), "" if none. */
  reason: string;
  /** Field name (proto, snake_case) -> what is wrong with it. */
  fields: Map<string, string>;
  code: Code | null;
}

/** "Try again in 2 minutes." from the RetryInfo delay (login throttling doubles it per failure). */
function waitHint(ce: ConnectError): string {
  const d = ce.findDetails(RetryInfoSchema)[0]?.retryDelay;
  if (!d) return "Wait a little and try again.";
  const sec = Math.max(1, Math.ceil(Number(d.seconds) + d.nanos / 1e9));
  if (sec < 90) return `Try again in ${sec} second${sec === 1 ? "" : "s"}.`;
  return `Try again in ${Math.ceil(sec / 60)} minutes.`;
}

/** Turns any error into text for the user, with INVALID_ARGUMENT field violations. */
export function describeError(err: unknown): ErrorView {
  if (err instanceof SessionEndedError)
    return { message: "Your session ended. Please log in again.", reason: "", fields: new Map(), code: Code.Unauthenticated };
  const ce = ConnectError.from(err);
  const fields = new Map<string, string>();
  for (const d of ce.findDetails(BadRequestSchema)) {
    for (const v of d.fieldViolations) fields.set(v.field, v.description);
  }
  const friendly: Partial<Record<Code, string>> = {
    [Code.Unavailable]: "The server cannot be reached. Check your connection.",
    [Code.AlreadyExists]: ce.rawMessage || "That already exists.",
    [Code.ResourceExhausted]: `Too many attempts. ${waitHint(ce)}`,
  };
  const reason = ce.findDetails(ErrorInfoSchema)[0]?.reason ?? "";
  return { message: friendly[ce.code] ?? (ce.rawMessage || "Something went wrong."), reason, fields, code: ce.code };
}
