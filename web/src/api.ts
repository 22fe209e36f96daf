// The RPC clients, over the Connect protocol or gRPC-Web, and the tokens.
//
// Tokens live in this object only (memory): never in localStorage, cookies or
// the URL, so a script injected into another page of the origin, or a reload,
// cannot pick them up. A reload therefore means logging in again.

import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { AuthService, type TokenPair, type User } from "../../gen/chat/v1/auth_pb.js";
import { ConversationService } from "../../gen/chat/v1/conversation_pb.js";
import { MessageService } from "../../gen/chat/v1/message_pb.js";
import { PresenceService } from "../../gen/chat/v1/presence_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";

export type TransportKind = "connect" | "grpc-web";
export const TRANSPORTS: { kind: TransportKind; label: string }[] = [
  { kind: "connect", label: "Connect" },
  { kind: "grpc-web", label: "gRPC-Web" },
];

/** Calls that must go out without a bearer token (and never trigger a refresh). */
const PUBLIC = new Set(["Register", "Login", "Refresh"]);

export class SessionEndedError extends Error {
  override name = "SessionEndedError";
}

export class Api {
  readonly baseUrl: string;
  transport: TransportKind;
  auth!: Client<typeof AuthService>;
  conversations!: Client<typeof ConversationService>;
  messages!: Client<typeof MessageService>;
  presence!: Client<typeof PresenceService>;
  /** In memory only. */
  private tokens: TokenPair | null = null;
  private refreshing: Promise<void> | null = null;
  private readonly onSessionEnded: () => void;
  private readonly onTransportChanged = new Set<() => void>();

  constructor(opts: { baseUrl: string; transport: TransportKind; onSessionEnded: () => void }) {
    this.baseUrl = opts.baseUrl;
    this.transport = opts.transport;
    this.onSessionEnded = opts.onSessionEnded;
    this.build();
  }

  get signedIn(): boolean {
    return this.tokens !== null;
  }

  get sessionId(): string {
    return this.tokens?.sessionId ?? "";
  }

  /** Switches protocol; open streams are told to reconnect over the new one. */
  setTransport(kind: TransportKind): void {
    if (kind === this.transport) return;
    this.transport = kind;
    this.build();
    for (const f of this.onTransportChanged) f();
  }

  onTransportChange(f: () => void): () => void {
    this.onTransportChanged.add(f);
    return () => this.onTransportChanged.delete(f);
  }

  async register(input: { email: string; username: string; password: string; displayName: string; deviceId: string }): Promise<User> {
    const res = await this.auth.register({ ...input, deviceName: deviceName() });
    this.tokens = res.tokens ?? null;
    return res.user!;
  }

  async login(input: { login: string; password: string; deviceId: string }): Promise<User> {
    const res = await this.auth.login({ ...input, deviceName: deviceName() });
    this.tokens = res.tokens ?? null;
    return res.user!;
  }

  async logout(): Promise<void> {
    try {
      if (this.tokens) await this.auth.logout({ allSessions: false });
    } finally {
      this.tokens = null;
    }
  }

  /**
   * Rotates the refresh token. Single flight: concurrent callers that saw the
   * same expired access token share one Refresh, because presenting a refresh
   * token twice counts as reuse and ends the session.
   */
  refresh(staleAccessToken: string): Promise<void> {
    if (!this.tokens) return Promise.reject(new SessionEndedError("signed out"));
    if (this.tokens.accessToken !== staleAccessToken) return Promise.resolve(); // someone already did
    this.refreshing ??= (async () => {
      try {
        const res = await this.auth.refresh({ refreshToken: this.tokens!.refreshToken });
        this.tokens = res.tokens ?? null;
      } catch (err) {
        const code = ConnectError.from(err).code;
        if (code === Code.Unauthenticated || code === Code.PermissionDenied) {
          this.tokens = null;
          this.onSessionEnded();
          throw new SessionEndedError("session ended");
        }
        throw err; // offline or server trouble: keep the session, try again later
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /** The current access token, for streams that handle UNAUTHENTICATED themselves. */
  accessToken(): string {
    return this.tokens?.accessToken ?? "";
  }

  private build(): void {
    // Adds the bearer token; on UNAUTHENTICATED, refreshes once and retries once.
    const auth: Interceptor = (next) => async (req) => {
      if (PUBLIC.has(req.method.name)) return next(req);
      const token = this.accessToken();
      if (!token) throw new SessionEndedError("signed out");
      req.header.set("authorization", `Bearer ${token}`);
      try {
        return await next(req);
      } catch (err) {
        // Streams report UNAUTHENTICATED while being read; the stream owner retries.
        if (req.stream || ConnectError.from(err).code !== Code.Unauthenticated) throw err;
        await this.refresh(token);
        req.header.set("authorization", `Bearer ${this.accessToken()}`);
        return next(req);
      }
    };
    const transport: Transport =
      this.transport === "grpc-web"
        ? createGrpcWebTransport({ baseUrl: this.baseUrl, interceptors: [auth] })
        : createConnectTransport({ baseUrl: this.baseUrl, interceptors: [auth] });
    this.auth = createClient(AuthService, transport);
    this.conversations = createClient(ConversationService, transport);
    this.messages = createClient(MessageService, transport);
    this.presence = createClient(PresenceService, transport);
  }
}

function deviceName(): string {
  const ua = navigator.userAgent;
  const browser = /Chrom(e|ium)\//.test(ua) ? "Chromium" : /Firefox\//.test(ua) ? "Firefox" : /Safari\//.test(ua) ? "Safari" : "Browser";
  return `${browser} (web)`;
}

export interface ErrorView {
  message: string;
  /** Field name (proto, snake_case) -> what is wrong with it. */
  fields: Map<string, string>;
  code: Code | null;
}

/** Turns any error into text for the user, with INVALID_ARGUMENT field violations. */
export function describeError(err: unknown): ErrorView {
  if (err instanceof SessionEndedError) return { message: "Your session ended. Please log in again.", fields: new Map(), code: Code.Unauthenticated };
  const ce = ConnectError.from(err);
  const fields = new Map<string, string>();
  for (const d of ce.findDetails(BadRequestSchema)) {
    for (const v of d.fieldViolations) fields.set(v.field, v.description);
  }
  const friendly: Partial<Record<Code, string>> = {
    [Code.Unavailable]: "The server cannot be reached. Check your connection.",
    [Code.AlreadyExists]: ce.rawMessage || "That already exists.",
    [Code.ResourceExhausted]: "Too many attempts. Wait a little and try again.",
  };
  return { message: friendly[ce.code] ?? (ce.rawMessage || "Something went wrong."), fields, code: ce.code };
}

/** Errors worth retrying later with the same request (offline, server restarting). */
export function isTransient(err: unknown): boolean {
  if (err instanceof SessionEndedError) return false;
  const code = ConnectError.from(err).code;
  return code === Code.Unavailable || code === Code.Unknown || code === Code.DeadlineExceeded || code === Code.Aborted || code === Code.Canceled;
}
