// ChatClient: the pieces put together. Typed RPC clients that add the bearer
// token and refresh it (single flight), the realtime link (Stream or
// Subscribe, resumed from the last processed cursor, refreshed in band), the
// outbox, and typed event listeners.

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ChatMessage, Event } from "../../gen/chat/v1/message_pb.js";
import type { LoginRequestSchema, RegisterRequestSchema, User } from "../../gen/chat/v1/auth_pb.js";
import { authInterceptor, createApi, type ChatApi, type ChatTransport } from "./api.ts";
import type { BackoffOptions } from "./backoff.ts";
import { DeviceTokens, type DeviceTokenStorage } from "./device-tokens.ts";
import { Outbox, type PendingSend, type SendInput } from "./outbox.ts";
import { whoReacted, type WhoReacted, type WhoReactedOptions } from "./reactions.ts";
import { RealtimeStream, type LinkState, type RealtimeOptions } from "./realtime.ts";
import { TokenManager, tokensFromPair, type TokenStorage } from "./tokens.ts";

type Payload = Event["payload"];
/** The kinds of event: "messageCreated", "typingUpdated", ... */
export type EventKind = NonNullable<Payload["case"]>;
/** The payload of one kind of event. */
export type EventPayload<K extends EventKind> = Extract<Payload, { case: K }>["value"];

export interface ChatClientOptions {
  transport: ChatTransport;
  /** Where tokens persist between runs (default: memory only). */
  storage?: TokenStorage;
  /**
   * Where device tokens persist between runs (default: memory only). Login
   * sends the one of the account being signed in to, so that other people's
   * failed logins do not slow this device (docs/AUTH.md "Login throttling").
   */
  deviceTokenStorage?: DeviceTokenStorage;
  /** Sent in hello / Login; identifies this device's session. */
  deviceId?: string;
  deviceName?: string;
  backoff?: BackoffOptions;
  random?: () => number;
  /** Refresh this long before expiry (capped at half the token's lifetime). Default 60 s. */
  refreshAheadMs?: number;
  /** The session ended (refresh refused): sign in again. */
  onSessionEnded?: (err: unknown) => void;
  /** Serialises Refresh among holders of one refresh credential (web.ts: `crossTabLock()` for cookie sessions). */
  refreshLock?: <T>(f: () => Promise<T>) => Promise<T>;
}

export interface ConnectOptions {
  /** Resume from this cursor (persisted from onCursor). */
  cursor?: string;
  onCursor?: (cursor: string) => void;
  /** Use Subscribe even where Stream works. */
  forceSubscribe?: boolean;
  connectTimeoutMs?: number;
}

type Listener = (value: unknown, event: Event) => void | Promise<void>;

export class ChatClient {
  readonly api: ChatApi;
  readonly tokens: TokenManager;
  readonly outbox: Outbox;
  readonly deviceTokens: DeviceTokens;
  realtime: RealtimeStream | null = null;
  private readonly o: ChatClientOptions;
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly stateListeners = new Set<(s: LinkState, detail?: { error?: unknown; delayMs?: number }) => void>();
  private readonly resyncListeners = new Set<(ids: string[] | "all") => void | Promise<void>>();

  constructor(o: ChatClientOptions) {
    this.o = o;
    this.deviceTokens = new DeviceTokens(o.deviceTokenStorage);
    let api: ChatApi | null = null;
    this.tokens = new TokenManager({
      refresh: (refreshToken) => api!.auth.refresh({ refreshToken }),
      storage: o.storage,
      refreshAheadMs: o.refreshAheadMs,
      lock: o.refreshLock,
      onSessionEnded: (err) => {
        this.outbox.close(err);
        o.onSessionEnded?.(err);
      },
    });
    api = this.api = createApi(o.transport.create([authInterceptor(this.tokens)]));
    this.outbox = new Outbox({ messages: this.api.messages, backoff: o.backoff, random: o.random });
  }

  // ---- session ------------------------------------------------------------------

  async register(input: Omit<MessageInitShape<typeof RegisterRequestSchema>, "$typeName">): Promise<User> {
    const res = await this.api.auth.register({ deviceId: this.o.deviceId, deviceName: this.o.deviceName, ...input });
    this.tokens.set(tokensFromPair(res.tokens!));
    await this.deviceTokens.remember([res.user!.username, res.user!.email], res.deviceToken);
    return res.user!;
  }

  /** Signs in; sends this device's token for the account unless `input.deviceToken` is given. */
  async login(input: Omit<MessageInitShape<typeof LoginRequestSchema>, "$typeName">): Promise<User> {
    const deviceToken = input.deviceToken || (await this.deviceTokens.get(input.login ?? ""));
    const res = await this.api.auth.login({ deviceId: this.o.deviceId, deviceName: this.o.deviceName, ...input, deviceToken });
    this.tokens.set(tokensFromPair(res.tokens!));
    await this.deviceTokens.remember([input.login ?? "", res.user!.username, res.user!.email], res.deviceToken);
    return res.user!;
  }

  /** Cookie sessions (web.ts `cookieSessionInterceptor`): the signed-in user after a reload, or null. */
  async resume(): Promise<User | null> {
    if (!(await this.tokens.resume())) return null;
    return (await this.api.auth.getMe({})).user ?? null;
  }

  /** Ends this session on the server, stops the stream, forgets the tokens. */
  async logout(): Promise<void> {
    try {
      if (this.tokens.signedIn) await this.api.auth.logout({ allSessions: false });
    } finally {
      await this.close();
      this.tokens.clear();
    }
  }

  // ---- realtime -------------------------------------------------------------------

  /** Opens the realtime link (and keeps it up until close()). */
  connect(opts: ConnectOptions = {}): RealtimeStream {
    if (this.realtime) return this.realtime;
    const ro: RealtimeOptions = {
      transport: this.o.transport,
      tokens: this.tokens,
      deviceId: this.o.deviceId,
      cursor: opts.cursor,
      onCursor: opts.onCursor,
      forceSubscribe: opts.forceSubscribe,
      connectTimeoutMs: opts.connectTimeoutMs,
      backoff: this.o.backoff,
      random: this.o.random,
      onEvent: (e) => this.dispatch(e),
      onResync: async (ids) => {
        for (const f of this.resyncListeners) await f(ids);
      },
      onState: (s, d) => {
        if (s === "live") this.outbox.wake();
        for (const f of this.stateListeners) f(s, d);
      },
    };
    this.realtime = new RealtimeStream(ro);
    this.realtime.start();
    return this.realtime;
  }

  async close(): Promise<void> {
    const r = this.realtime;
    this.realtime = null;
    await r?.stop();
  }

  /**
   * Listens to one kind of event (or "event": all of them). Listeners run in
   * event order; the cursor moves past an event once they all returned (async
   * ones: resolved), so an event whose listener threw is delivered again after
   * the reconnect that follows.
   */
  on<K extends EventKind>(kind: K, f: (value: EventPayload<K>, event: Event) => void | Promise<void>): () => void;
  on(kind: "event", f: (event: Event) => void | Promise<void>): () => void;
  on(kind: string, f: (...args: never[]) => void | Promise<void>): () => void {
    let set = this.listeners.get(kind);
    if (!set) this.listeners.set(kind, (set = new Set()));
    const l = f as unknown as Listener;
    set.add(l);
    return () => set.delete(l);
  }

  /** Conversations to reload (ListMessages) after a gap too large to replay; "all" after a refused cursor. */
  onResync(f: (conversationIds: string[] | "all") => void | Promise<void>): () => void {
    this.resyncListeners.add(f);
    return () => this.resyncListeners.delete(f);
  }

  onState(f: (s: LinkState, detail?: { error?: unknown; delayMs?: number }) => void): () => void {
    this.stateListeners.add(f);
    return () => this.stateListeners.delete(f);
  }

  private async dispatch(e: Event): Promise<void> {
    for (const f of this.listeners.get("event") ?? []) await (f as unknown as (e: Event) => unknown)(e);
    const kind = e.payload.case;
    if (!kind) return;
    for (const f of this.listeners.get(kind) ?? []) await f(e.payload.value, e);
  }

  // ---- sending ----------------------------------------------------------------------

  /** Queued, retried with the same client_message_id until stored; resolves once with the message. */
  send(conversationId: string, content: string, extra: Omit<SendInput, "conversationId" | "content"> = {}): Promise<ChatMessage> {
    return this.outbox.send({ ...extra, conversationId, content });
  }

  get pendingSends(): readonly PendingSend[] {
    return this.outbox.pending;
  }

  /** Typing: a frame on Stream, SendTyping elsewhere. */
  async setTyping(conversationId: string, typing: boolean): Promise<void> {
    if (this.realtime?.write({ frame: { case: "typing", value: { conversationId, typing } } })) return;
    await this.api.presence.sendTyping({ conversationId, typing });
  }

  async markRead(conversationId: string, seq: bigint): Promise<void> {
    await this.api.messages.markRead({ conversationId, seq });
  }

  /** Who reacted to a message, one entry per emoji (ListReactions, every page up to `maxUsers`). */
  whoReacted(messageId: string, o: WhoReactedOptions = {}): Promise<{ reactions: WhoReacted[]; complete: boolean }> {
    return whoReacted(this.api.messages, messageId, o);
  }
}
