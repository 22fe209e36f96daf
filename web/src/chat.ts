// The signed-in client: what it knows (conversations, timelines, people,
// presence, typing, receipts) and everything it does with the server. The UI
// reads this state and calls these actions; it is told to re-render through
// `onChange`. Protobuf stays at this edge: the state holds plain values.

import { Code, ConnectError } from "@connectrpc/connect";
import { timestampDate, timestampNow, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { User } from "../../gen/chat/v1/auth_pb.js";
import { ConversationType, MemberRole, type Conversation } from "../../gen/chat/v1/conversation_pb.js";
import type { Event as ChatEvent } from "../../gen/chat/v1/message_pb.js";
import { PresenceStatus, type WatchPresenceResponse } from "../../gen/chat/v1/presence_pb.js";
import { NotificationType, type Notification } from "../../gen/chat/v1/notification_pb.js";
import { WorkspaceRole, type Workspace } from "../../gen/chat/v1/workspace_pb.js";
import { describeError, isTransient, SessionEndedError, type Api } from "./api.ts";
import { ResilientStream, type LinkState } from "./stream.ts";
import {
  IdlePresence,
  MessageList,
  messageData,
  Outbox,
  RealtimeStream,
  toggledReactions,
  uuid,
  whoReacted,
  type LinkState as SdkLinkState,
  type MessageData,
} from "../../client/src/web.ts";

export type Role = "owner" | "admin" | "member" | "";
/** What counts as the user being there (for away when idle). */
const INPUT_EVENTS = ["pointerdown", "pointermove", "keydown", "wheel", "touchstart"] as const;
/** Who reacted is loaded up to this many people per message (the rest are "N more"). */
const REACTORS_MAX = 200;
const RANK: Record<Role, number> = { owner: 3, admin: 2, member: 1, "": 0 };
const ROLE_OF: Partial<Record<MemberRole, Role>> = { [MemberRole.OWNER]: "owner", [MemberRole.ADMIN]: "admin", [MemberRole.MEMBER]: "member" };
const ROLE_PB: Record<Exclude<Role, "">, MemberRole> = { owner: MemberRole.OWNER, admin: MemberRole.ADMIN, member: MemberRole.MEMBER };

export type PresenceName = "online" | "away" | "dnd" | "offline" | "unknown";
export type ChangeScope = "sidebar" | "messages" | "typing" | "status" | "header" | "thread" | "notifications" | "members" | "workspaces";

export interface WorkspaceView {
  id: string;
  name: string;
  slug: string;
  isDefault: boolean;
  role: "owner" | "admin" | "member" | "guest";
}

const WORKSPACE_ROLES: Partial<Record<WorkspaceRole, WorkspaceView["role"]>> = {
  [WorkspaceRole.OWNER]: "owner",
  [WorkspaceRole.ADMIN]: "admin",
  [WorkspaceRole.MEMBER]: "member",
  [WorkspaceRole.GUEST]: "guest",
};

/** Why an invitation could not be used (docs/ERRORS.md reasons), in words. */
const INVITE_ERRORS: Record<string, string> = {
  INVITE_EXPIRED: "This invitation has expired. Ask the person who invited you for a new link.",
  INVITE_EXHAUSTED: "This invitation has been used as often as it allows. Ask the person who invited you for a new link.",
  INVITE_NOT_FOUND: "This invitation link is not valid (unknown, or meant for someone else). Ask the person who invited you for a new link.",
};

export interface NotificationView {
  id: string;
  type: "mention" | "direct" | "thread";
  conversationId: string;
  senderIds: string[];
  count: number;
  preview: string;
  createdAt: Date | null;
  seen: boolean;
}

export interface UserView {
  id: string;
  username: string;
  displayName: string;
}

export interface TimelineItemRef {
  key: string;
  id: string;
}

export interface ConversationView {
  id: string;
  workspaceId: string;
  type: "direct" | "group" | "channel";
  title: string;
  /** My role here ("" in a DM). */
  role: Role;
  peerUserId: string;
  memberCount: number;
  lastMessageAt: number;
  lastSeq: number;
  lastReadSeq: number;
  unread: number;
  preview: string;
  previewSenderId: string;
}

const PAGE = 50;
const TYPING_SEND_EVERY_MS = 3_000;
const TYPING_IDLE_MS = 5_000;
const TYPING_SHOWN_MS = 6_000;
const PRESENCE_NAMES: Partial<Record<PresenceStatus, PresenceName>> = {
  [PresenceStatus.ONLINE]: "online",
  [PresenceStatus.AWAY]: "away",
  [PresenceStatus.DND]: "dnd",
  [PresenceStatus.OFFLINE]: "offline",
};

/** The SDK's link states, as the status line shows them. */
function linkStateOf(s: SdkLinkState, everLive: boolean): LinkState {
  switch (s) {
    case "live":
      return "live";
    case "connecting":
      return everLive ? "reconnecting" : "connecting";
    case "waiting":
      return navigator.onLine ? "reconnecting" : "offline";
    case "unavailable":
      return "unavailable";
    default:
      return "stopped";
  }
}

export class Chat {
  readonly me: UserView;
  readonly conversations = new Map<string, ConversationView>();
  readonly users = new Map<string, UserView>();
  readonly presence = new Map<string, PresenceName>();
  /** The newest notifications (what arrived while no device of ours was online) and how many are unseen. */
  notifications: NotificationView[] = [];
  unseenNotifications = 0;
  /** When someone offline was last online (from presence answers and events). */
  readonly lastSeen = new Map<string, Date>();
  /** conversation -> user -> when the indicator lapses */
  readonly typing = new Map<string, Map<string, number>>();
  /** conversation -> user -> role (from ListMembers) */
  readonly roles = new Map<string, Map<string, Role>>();
  /** conversation -> user -> read watermark */
  readonly receipts = new Map<string, Map<string, number>>();
  openId: string | null = null;
  /** My workspaces (ListMyWorkspaces) and the one this tab shows: the sidebar, new conversations, channel browsing and searches are in it. */
  workspaces: WorkspaceView[] = [];
  workspaceId = "";
  /** The thread shown in the side panel. */
  openThread: { conversationId: string; parentId: string } | null = null;
  threadLoading = false;
  /** Bumped whenever who-reacted knowledge changes (renderers key on it). */
  reactorsRev = 0;
  link: LinkState = "connecting";
  /** Set while the newest page of the open conversation is loading. */
  loading = false;
  loadingOlder = false;
  lastError: string | null = null;

  private readonly api: Api;
  private readonly timelines = new Map<string, MessageList>();
  /** Thread replies by parent id (the conversation's timeline holds them too, for seq continuity, but shows only top-level messages). */
  private readonly threads = new Map<string, MessageList>();
  /**
   * message -> emoji -> who reacted: loaded with ListReactions (the SDK's
   * whoReacted) when a chip is hovered or focused or the picker opens, kept
   * current by reaction_updated events and our own toggles.
   */
  private readonly reactors = new Map<string, Map<string, Set<string>>>();
  /** message -> when its reactors were loaded, and whether every one of them was (not cut at REACTORS_MAX). */
  private readonly reactorsLoaded = new Map<string, { at: number; complete: boolean }>();
  /** message -> the live changes seen while its ListReactions runs (replayed over its answer). */
  private readonly reactorsInFlight = new Map<string, { userId: string; emoji: string; added: boolean }[]>();
  private readonly listeners = new Set<(scope: ChangeScope) => void>();
  /** The SDK's realtime link (Subscribe: browsers cannot stream both ways). */
  private readonly events: RealtimeStream;
  /** The SDK's outbox: in order, retried with the same client_message_id, each settled once. */
  private readonly outbox: Outbox;
  private readonly presenceStream: ResilientStream<WatchPresenceResponse>;
  /** WatchPresence answered UNIMPLEMENTED. */
  private watchUnavailable = false;
  /** GetPresence answered UNIMPLEMENTED too: no presence at all. */
  private presenceUnavailable = false;
  private watchTimer: ReturnType<typeof setTimeout> | undefined;
  private watchedUsers: string[] = [];
  private firstReady: Promise<void>;
  private resolveFirstReady!: () => void;
  private readonly pendingConversation = new Map<string, Promise<ConversationView | null>>();
  private readonly pendingUsers = new Set<string>();
  private userFetchTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly refreshTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private markReadTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly typingSent = new Map<string, { at: number; idle: ReturnType<typeof setTimeout> }>();
  private typingSweep: ReturnType<typeof setInterval> | undefined;
  private readonly onVisibility = () => this.maybeMarkRead();
  // Back online: reconnect and retry sends now rather than after the backoff.
  private readonly onOnline = () => {
    this.events.reconnectNow();
    this.outbox.wake();
  };
  private readonly onOffline = () => this.events.reconnectNow();
  private unsubscribeTransport: (() => void) | null = null;
  private stopped = false;

  /** Away after idleMs without input (SetPresence), online again at the next input. */
  private readonly idle: IdlePresence;
  private readonly onInput = () => this.idle.activity();

  /** Told the workspace this tab now shows (the view remembers it per tab). */
  private readonly onWorkspace: (id: string) => void;

  constructor(
    api: Api,
    me: User,
    deviceId: string,
    idleMs = 5 * 60_000,
    workspace: { preferred: string; onChange: (id: string) => void } = { preferred: "", onChange: () => {} },
  ) {
    this.workspaceId = workspace.preferred;
    this.onWorkspace = workspace.onChange;
    this.idle = new IdlePresence({
      idleMs,
      setStatus: async (status) => {
        await api.presence.setPresence({ status: status === "away" ? PresenceStatus.AWAY : PresenceStatus.ONLINE });
      },
    });
    this.api = api;
    this.me = { id: me.id, username: me.username, displayName: me.displayName || me.username };
    this.users.set(me.id, this.me);
    this.firstReady = new Promise((resolve) => (this.resolveFirstReady = resolve));
    let everLive = false;
    this.events = new RealtimeStream({
      transport: api.chatTransport,
      tokens: api.tokens,
      deviceId,
      onEvent: (ev) => this.applyEvent(ev),
      onResync: async (ids) => {
        for (const id of ids === "all" ? [...this.conversations.keys()] : ids) await this.resync(id);
      },
      onState: (state) => {
        if (state === "live") {
          // Notifications are made while no device is online: (re)connecting is when new ones may be waiting.
          void this.refreshNotifications();
          everLive = true;
          this.resolveFirstReady();
          this.outbox.wake();
        }
        this.link = linkStateOf(state, everLive);
        this.emit("status");
      },
    });
    this.outbox = new Outbox({ messages: api.messages });
    this.presenceStream = new ResilientStream<WatchPresenceResponse>({
      api,
      open: (signal) => api.presence.watchPresence({ userIds: this.watchedUsers }, { signal }),
      onMessage: (res, ctl) => {
        ctl.connected();
        if (res.presence) this.setPresence(res.presence.userId, res.presence.status, res.presence.lastSeenAt);
      },
      onState: (state) => {
        if (state === "unavailable") {
          // No WatchPresence on this server: one GetPresence per change of the set instead.
          this.watchUnavailable = true;
          this.fetchPresence(this.watchedUsers);
        }
      },
      // WatchPresence has no heartbeat frames: only a long silence counts as dead.
      heartbeatMs: 10 * 60_000,
    });
  }

  onChange(f: (scope: ChangeScope) => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  /** Subscribes first, then loads: anything stored after `ready` arrives as an event, so nothing falls in between. */
  async start(): Promise<void> {
    this.events.start();
    this.unsubscribeTransport = this.api.onTransportChange(() => this.events.reconnectNow());
    document.addEventListener("visibilitychange", this.onVisibility);
    for (const type of INPUT_EVENTS) window.addEventListener(type, this.onInput, { passive: true });
    this.idle.start();
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
    this.typingSweep = setInterval(() => this.sweepTyping(), 1_000);
    await Promise.race([this.firstReady, new Promise((r) => setTimeout(r, 5_000))]);
    await this.loadWorkspaces();
    await this.loadConversations();
  }

  stop(): void {
    this.stopped = true;
    void this.events.stop();
    this.outbox.close(new SessionEndedError("signed out"));
    this.unsubscribeTransport?.();
    this.presenceStream.stop();
    document.removeEventListener("visibilitychange", this.onVisibility);
    for (const type of INPUT_EVENTS) window.removeEventListener(type, this.onInput);
    this.idle.stop();
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    clearInterval(this.typingSweep);
    clearTimeout(this.markReadTimer);
    clearTimeout(this.userFetchTimer);
    clearTimeout(this.watchTimer);
    for (const t of this.refreshTimers.values()) clearTimeout(t);
    for (const s of this.typingSent.values()) clearTimeout(s.idle);
  }

  // ---- reading state -------------------------------------------------------

  timeline(conversationId: string): MessageList {
    let t = this.timelines.get(conversationId);
    if (!t) {
      t = new MessageList(conversationId);
      this.timelines.set(conversationId, t);
    }
    return t;
  }

  /** The conversations of the current workspace (the map also holds others', seen through events, links or notifications). */
  sortedConversations(): ConversationView[] {
    return [...this.conversations.values()]
      .filter((c) => this.inCurrentWorkspace(c))
      .sort((a, b) => b.lastMessageAt - a.lastMessageAt || a.id.localeCompare(b.id));
  }

  private inCurrentWorkspace(c: ConversationView): boolean {
    return !this.workspaceId || !c.workspaceId || c.workspaceId === this.workspaceId;
  }

  get currentWorkspace(): WorkspaceView | undefined {
    return this.workspaces.find((w) => w.id === this.workspaceId);
  }

  /** Unread messages in a workspace's conversations this tab knows of (other workspaces: those that got messages while it ran). */
  unreadIn(workspaceId: string): number {
    let n = 0;
    for (const c of this.conversations.values()) if (c.workspaceId === workspaceId) n += c.unread;
    return n;
  }

  /** Shows another workspace: its conversations (ListConversations workspace_id); the open conversation closes if it is elsewhere. */
  async switchWorkspace(id: string): Promise<void> {
    if (id === this.workspaceId || !this.workspaces.some((w) => w.id === id)) return;
    this.workspaceId = id;
    this.onWorkspace(id);
    const open = this.openId ? this.conversations.get(this.openId) : undefined;
    if (open && !this.inCurrentWorkspace(open)) this.closeConversation();
    this.emit("workspaces");
    this.emit("sidebar");
    await this.loadConversations();
  }

  /** CreateWorkspace (I am its owner), then shows it. Throws for the UI to show. */
  async createWorkspace(name: string, slug: string): Promise<void> {
    const res = await this.api.workspaces.createWorkspace({ name: name.trim(), slug: slug.trim() });
    this.putWorkspace(res.workspace!);
    await this.switchWorkspace(res.workspace!.id);
  }

  /** CreateInviteLink for the current workspace (member role, the server's default expiry of 7 days): the token. Throws for the UI to show. */
  async createInviteLink(): Promise<{ token: string; expiresAt: Date | null }> {
    const res = await this.api.workspaces.createInviteLink({ workspaceId: this.workspaceId });
    return { token: res.invite!.token, expiresAt: date(res.invite!.expiresAt) };
  }

  /**
   * JoinWorkspace with an invitation token, then shows that workspace. Throws
   * an Error whose message says why the invitation cannot be used.
   */
  async joinWithInvite(token: string): Promise<WorkspaceView> {
    try {
      const res = await this.api.workspaces.joinWorkspace({ invite: { case: "token", value: token } });
      const w = this.putWorkspace(res.workspace!);
      await this.switchWorkspace(w.id);
      return w;
    } catch (err) {
      const e = describeError(err);
      const invalid = e.fields.size > 0; // a malformed token is as good as an unknown one
      throw new Error(INVITE_ERRORS[e.reason] ?? (invalid ? INVITE_ERRORS.INVITE_NOT_FOUND! : e.message));
    }
  }

  private putWorkspace(w: Workspace): WorkspaceView {
    const view: WorkspaceView = { id: w.id, name: w.name, slug: w.slug, isDefault: w.isDefault, role: WORKSPACE_ROLES[w.role] ?? "member" };
    this.workspaces = [...this.workspaces.filter((x) => x.id !== view.id), view].sort(
      (a, b) => Number(b.isDefault) - Number(a.isDefault) || a.name.localeCompare(b.name),
    );
    this.emit("workspaces");
    return view;
  }

  /** ListMyWorkspaces; keeps the remembered choice if I am still in it, else the default workspace. */
  private async loadWorkspaces(): Promise<void> {
    try {
      let pageToken = "";
      for (let page = 0; page < 10; page++) {
        const res = await this.api.workspaces.listMyWorkspaces({ pageSize: 200, pageToken });
        for (const w of res.workspaces) this.putWorkspace(w);
        pageToken = res.nextPageToken;
        if (!pageToken) break;
      }
    } catch (err) {
      // A server without workspaces: the app works as before (requests name no workspace).
      if (ConnectError.from(err).code !== Code.Unimplemented) this.report(err);
    }
    if (!this.workspaces.some((w) => w.id === this.workspaceId)) {
      this.workspaceId = (this.workspaces.find((w) => w.isDefault) ?? this.workspaces[0])?.id ?? "";
      if (this.workspaceId) this.onWorkspace(this.workspaceId);
    }
    this.emit("workspaces");
  }

  /** What requests that act in a workspace send: the current one, or none (the server's default). */
  private get scope(): { workspaceId?: string } {
    return this.workspaceId ? { workspaceId: this.workspaceId } : {};
  }

  userName(id: string): string {
    const u = this.users.get(id);
    if (!u) {
      this.wantUsers([id]);
      return "…";
    }
    return u.displayName || u.username;
  }

  conversationTitle(c: ConversationView): string {
    if (c.type === "direct") return c.peerUserId ? this.userName(c.peerUserId) : "Direct message";
    if (c.type === "channel") return `#${c.title}`;
    return c.title || "Group";
  }

  presenceOf(userId: string): PresenceName {
    return this.presence.get(userId) ?? "unknown";
  }

  typingIn(conversationId: string): string[] {
    const now = Date.now();
    return [...(this.typing.get(conversationId) ?? new Map<string, number>()).entries()]
      .filter(([user, until]) => until > now && user !== this.me.id)
      .map(([user]) => user);
  }

  /** My newest message that others have read, and who read it. */
  seenMarker(conversationId: string): { seq: number; readers: string[] } | null {
    const reads = this.receipts.get(conversationId);
    if (!reads) return null;
    const mine = this.timeline(conversationId)
      .items()
      .filter((m) => m.senderId === this.me.id && m.seq > 0);
    for (let i = mine.length - 1; i >= 0; i--) {
      const seq = mine[i]!.seq;
      const readers = [...reads.entries()].filter(([user, read]) => user !== this.me.id && read >= seq).map(([user]) => user);
      if (readers.length) return { seq, readers };
    }
    return null;
  }

  // ---- actions ---------------------------------------------------------------

  async openConversation(id: string): Promise<void> {
    if (this.openId !== id) {
      this.openId = id;
      this.openThread = null;
      this.emit("thread");
      this.emit("header");
      this.emit("messages");
      this.emit("sidebar");
    }
    const conv = this.conversations.get(id) ?? (await this.ensureConversation(id));
    if (!conv) {
      this.lastError = "That conversation does not exist or is not yours.";
      this.openId = null;
      this.emit("header");
      this.emit("messages");
      return;
    }
    // A link to a conversation of another of my workspaces shows that workspace.
    if (conv.workspaceId && this.workspaceId && conv.workspaceId !== this.workspaceId && this.workspaces.some((w) => w.id === conv.workspaceId))
      void this.switchWorkspace(conv.workspaceId);
    const tl = this.timeline(id);
    const work: Promise<unknown>[] = [this.loadReceipts(id)];
    if (!tl.loadedLatest) {
      this.loading = true;
      this.emit("messages");
      work.push(
        this.api.messages
          .listMessages({ conversationId: id, limit: PAGE })
          .then((res) => {
            tl.addOlder(res.messages.map(messageData), res.hasMore);
            tl.loadedLatest = true;
            this.wantUsers(res.messages.map((m) => m.senderId));
          })
          .finally(() => (this.loading = false)),
      );
    }
    this.scheduleWatch();
    try {
      await Promise.all(work);
    } catch (err) {
      this.report(err);
    }
    this.emit("messages");
    this.emit("header");
    this.maybeMarkRead();
  }

  closeConversation(): void {
    this.openId = null;
    this.openThread = null;
    this.emit("thread");
    this.emit("header");
    this.emit("messages");
    this.emit("sidebar");
  }

  /** Infinite scroll: the page before the oldest message held. */
  async loadOlder(id: string): Promise<void> {
    const tl = this.timeline(id);
    if (this.loadingOlder || !tl.loadedLatest || !tl.hasMoreBefore || tl.oldestSeq <= 1) {
      if (tl.oldestSeq === 1) tl.hasMoreBefore = false;
      return;
    }
    this.loadingOlder = true;
    this.emit("messages");
    try {
      const res = await this.api.messages.listMessages({ conversationId: id, beforeSeq: BigInt(tl.oldestSeq), limit: PAGE });
      tl.addOlder(res.messages.map(messageData), res.hasMore);
      this.wantUsers(res.messages.map((m) => m.senderId));
    } catch (err) {
      this.report(err);
    } finally {
      this.loadingOlder = false;
      this.emit("messages");
    }
  }

  /** Shows the message at once (pending), then sends it; sends of one conversation go out in order. */
  send(conversationId: string, content: string): void {
    const text = content.trim();
    if (!text) return;
    const clientMessageId = uuid();
    const mentions = this.mentionsIn(conversationId, text);
    this.timeline(conversationId).addPending(this.me.id, clientMessageId, text, new Date(), "", mentions);
    this.stopTyping(conversationId);
    this.emit("messages");
    this.enqueue(conversationId, clientMessageId, text, mentions);
  }

  /** The members of a conversation (from ListMembers on opening, kept by member events), names known or being fetched. */
  membersOf(conversationId: string): UserView[] {
    const ids = [...(this.receipts.get(conversationId)?.keys() ?? [])];
    return ids.map((id) => this.users.get(id)).filter((u): u is UserView => Boolean(u));
  }

  /** `@username` tokens of members in a text, as user ids (the server drops non-members anyway). */
  mentionsIn(conversationId: string, text: string): string[] {
    const byName = new Map(this.membersOf(conversationId).map((u) => [u.username.toLowerCase(), u.id]));
    const ids = new Set<string>();
    for (const m of text.matchAll(/(?:^|[^\w@])@([a-z0-9_.]+)/gi)) {
      const id = byName.get(m[1]!.toLowerCase().replace(/\.+$/, ""));
      if (id) ids.add(id);
    }
    return [...ids];
  }

  /** A message that mentions me (highlighted). */
  mentionsMe(m: MessageData): boolean {
    return m.mentions.includes(this.me.id);
  }

  retry(conversationId: string, clientMessageId: string): void {
    const item = this.timeline(conversationId)
      .items()
      .find((m) => m.clientMessageId === clientMessageId && m.senderId === this.me.id);
    if (item?.state !== "failed") return;
    this.timeline(conversationId).setSendState(this.me.id, clientMessageId, "pending", null);
    // The same client_message_id: if the first attempt was stored after all, this returns it.
    this.emit("messages");
    this.enqueue(conversationId, clientMessageId, item.content, item.mentions);
  }

  discard(conversationId: string, clientMessageId: string): void {
    this.timeline(conversationId).discardPending(this.me.id, clientMessageId);
    this.emit("messages");
  }

  /** On a message of the conversation or a thread reply alike. */
  async toggleReaction(conversationId: string, messageId: string, emoji: string): Promise<void> {
    const holders = this.holders(conversationId, messageId);
    const item = holders[0]?.byMessageId(messageId);
    if (!item) return;
    const had = item.reactions.find((r) => r.emoji === emoji)?.reacted ?? false;
    const next = toggledReactions(item.reactions, emoji, !had);
    for (const tl of holders) tl.setReactions(messageId, next); // optimistic
    this.noteReactor(messageId, emoji, this.me.id, !had);
    this.emitMessageChange();
    try {
      const res = had ? await this.api.messages.removeReaction({ messageId, emoji }) : await this.api.messages.addReaction({ messageId, emoji });
      if (res.message) for (const tl of holders) tl.upsert(messageData(res.message));
    } catch (err) {
      this.report(err);
      this.scheduleMessageRefresh(conversationId, messageId, 0);
    }
    this.emitMessageChange();
  }

  /**
   * The timelines holding a message: its conversation's (top-level messages,
   * and replies seen live or sent here) and, for a reply, its thread's.
   */
  private holders(conversationId: string, messageId: string): MessageList[] {
    const out: MessageList[] = [];
    const tl = this.timeline(conversationId);
    if (tl.byMessageId(messageId)) out.push(tl);
    for (const t of this.threads.values()) if (t.conversationId === conversationId && t.byMessageId(messageId)) out.push(t);
    return out;
  }

  /** A message changed that may be a thread reply: both views re-render (the thread panel only when open). */
  private emitMessageChange(): void {
    this.emit("messages");
    this.emit("thread");
  }

  threadTimeline(conversationId: string, parentId: string): MessageList {
    let t = this.threads.get(parentId);
    if (!t) {
      t = new MessageList(conversationId);
      this.threads.set(parentId, t);
    }
    return t;
  }

  /** Opens a thread in the side panel: its replies, oldest first (ListMessages parent_message_id, after the parent's seq). */
  async openThreadOf(conversationId: string, parentId: string): Promise<void> {
    this.openThread = { conversationId, parentId };
    const tl = this.threadTimeline(conversationId, parentId);
    this.emit("thread");
    if (tl.loadedLatest) return;
    this.threadLoading = true;
    this.emit("thread");
    try {
      let after = this.timeline(conversationId).byMessageId(parentId)?.seq ?? 0;
      for (let page = 0; page < 10; page++) {
        const res = await this.api.messages.listMessages({ conversationId, parentMessageId: parentId, afterSeq: BigInt(after), limit: 200 });
        tl.addOlder(res.messages.map(messageData), false);
        this.wantUsers(res.messages.map((m) => m.senderId));
        if (!res.hasMore || !res.messages.length) break;
        after = Math.max(...res.messages.map((m) => Number(m.seq)));
      }
      tl.loadedLatest = true;
    } catch (err) {
      this.report(err);
    } finally {
      this.threadLoading = false;
      this.emit("thread");
    }
  }

  closeThread(): void {
    if (!this.openThread) return;
    this.openThread = null;
    this.emit("thread");
  }

  /** A reply in a thread: shown at once (pending), sent through the outbox like any message. */
  sendReply(conversationId: string, parentId: string, content: string): void {
    const text = content.trim();
    if (!text) return;
    const clientMessageId = uuid();
    const tl = this.threadTimeline(conversationId, parentId);
    const mentions = this.mentionsIn(conversationId, text);
    tl.addPending(this.me.id, clientMessageId, text, new Date(), parentId, mentions);
    this.emit("thread");
    this.outbox.send({ conversationId, clientMessageId, content: text, parentMessageId: parentId, mentions }).then(
      (m) => this.ingest(messageData(m), false),
      (err: unknown) => {
        if (this.stopped) return;
        tl.setSendState(this.me.id, clientMessageId, "failed", describeError(err).message);
        this.emit("thread");
      },
    );
  }

  /** Who reacted with `emoji`, as far as this tab knows (all of them once loaded, unless there are more than REACTORS_MAX). */
  reactorsOf(messageId: string, emoji: string): string[] {
    return [...(this.reactors.get(messageId)?.get(emoji) ?? [])];
  }

  /**
   * Loads who reacted to a message (ListReactions through the SDK), unless
   * loaded in the last minute (live events keep a loaded list current
   * meanwhile). Changes arriving while it loads are applied over its answer.
   */
  async loadReactors(messageId: string): Promise<void> {
    const loaded = this.reactorsLoaded.get(messageId);
    if (this.reactorsInFlight.has(messageId) || (loaded && Date.now() - loaded.at < 60_000)) return;
    const during: { userId: string; emoji: string; added: boolean }[] = [];
    this.reactorsInFlight.set(messageId, during);
    try {
      const res = await whoReacted(this.api.messages, messageId, { maxUsers: REACTORS_MAX });
      const byEmoji = new Map(res.reactions.map((r) => [r.emoji, new Set(r.userIds)]));
      this.reactors.set(messageId, byEmoji);
      this.reactorsLoaded.set(messageId, { at: Date.now(), complete: res.complete });
      for (const d of during) this.applyReactor(messageId, d.emoji, d.userId, d.added);
      this.wantUsers(res.reactions.flatMap((r) => r.userIds));
      this.reactorsRev++;
      this.emit("messages");
      this.emit("thread");
    } catch (err) {
      if (ConnectError.from(err).code !== Code.NotFound) this.report(err);
    } finally {
      this.reactorsInFlight.delete(messageId);
    }
  }

  private noteReactor(messageId: string, emoji: string, userId: string, added: boolean): void {
    this.reactorsInFlight.get(messageId)?.push({ userId, emoji, added });
    this.applyReactor(messageId, emoji, userId, added);
    this.reactorsRev++;
  }

  private applyReactor(messageId: string, emoji: string, userId: string, added: boolean): void {
    let byEmoji = this.reactors.get(messageId);
    if (!byEmoji) this.reactors.set(messageId, (byEmoji = new Map()));
    let users = byEmoji.get(emoji);
    if (!users) byEmoji.set(emoji, (users = new Set()));
    if (added) users.add(userId);
    else users.delete(userId);
  }

  /** My newest message still on screen that I can edit (for the Up arrow in an empty composer). */
  lastEditable(conversationId: string): TimelineItemRef | null {
    const items = this.timeline(conversationId).items();
    for (let i = items.length - 1; i >= 0; i--) {
      const m = items[i]!;
      if (m.senderId === this.me.id && m.state === "sent" && !m.deleted && !m.parentMessageId) return { key: m.key, id: m.id };
    }
    return null;
  }

  /** EditMessage (a message or a thread reply); the stored version replaces ours (the other side gets message_edited). Throws for the UI to show. */
  async editMessage(conversationId: string, messageId: string, content: string): Promise<void> {
    const text = content.trim();
    const holders = this.holders(conversationId, messageId);
    const before = holders[0]?.byMessageId(messageId);
    if (!text || !before || text === before.content) return;
    const res = await this.api.messages.editMessage({ messageId, content: text });
    if (res.message) for (const tl of holders) tl.upsert({ ...messageData(res.message), reactions: tl.byMessageId(messageId)?.reactions ?? [] });
    this.refreshPreview(conversationId);
    this.emitMessageChange();
  }

  /** DeleteMessage (a message or a thread reply): a tombstone here and, through message_deleted, on the other side. Throws for the UI to show. */
  async deleteMessage(conversationId: string, messageId: string): Promise<void> {
    const holders = this.holders(conversationId, messageId);
    await this.api.messages.deleteMessage({ messageId });
    for (const tl of holders) tl.markDeleted(messageId, tl.byMessageId(messageId)?.seq ?? 0);
    this.refreshPreview(conversationId);
    this.emitMessageChange();
    // A reply's parent: its reply count, from the source of truth.
    const parentId = holders.map((tl) => tl.byMessageId(messageId)?.parentMessageId).find(Boolean);
    if (parentId && this.timeline(conversationId).byMessageId(parentId)) this.scheduleMessageRefresh(conversationId, parentId, 150);
  }

  /** My newest reply in a thread that I can edit (for the Up arrow in an empty reply box). */
  lastEditableReply(conversationId: string, parentId: string): TimelineItemRef | null {
    const items = this.threadTimeline(conversationId, parentId).items();
    for (let i = items.length - 1; i >= 0; i--) {
      const m = items[i]!;
      if (m.senderId === this.me.id && m.state === "sent" && !m.deleted) return { key: m.key, id: m.id };
    }
    return null;
  }

  /** The sidebar preview follows an edit or a delete of the newest message. */
  private refreshPreview(conversationId: string): void {
    const conv = this.conversations.get(conversationId);
    const newest = this.timeline(conversationId).newest();
    if (!conv || !newest || newest.seq !== conv.lastSeq) return;
    const preview = newest.deleted ? "(deleted)" : newest.content;
    if (preview === conv.preview) return;
    conv.preview = preview;
    this.emit("sidebar");
  }

  /** Called on every keystroke in the composer: tells others at most every few seconds. */
  typed(conversationId: string, text: string): void {
    if (!text.trim()) return this.stopTyping(conversationId);
    const now = Date.now();
    const sent = this.typingSent.get(conversationId);
    if (sent) clearTimeout(sent.idle);
    const idle = setTimeout(() => this.stopTyping(conversationId), TYPING_IDLE_MS);
    if (!sent || now - sent.at >= TYPING_SEND_EVERY_MS) {
      this.typingSent.set(conversationId, { at: now, idle });
      this.api.presence.sendTyping({ conversationId, typing: true }).catch(() => {});
    } else {
      sent.idle = idle;
    }
  }

  stopTyping(conversationId: string): void {
    const sent = this.typingSent.get(conversationId);
    if (!sent) return;
    clearTimeout(sent.idle);
    this.typingSent.delete(conversationId);
    this.api.presence.sendTyping({ conversationId, typing: false }).catch(() => {});
  }

  async searchUsers(query: string): Promise<UserView[]> {
    const res = await this.api.auth.searchUsers({ query: query.trim(), pageSize: 10, ...this.scope });
    const found = res.users.map(toUser);
    for (const u of found) this.users.set(u.id, u);
    return found.filter((u) => u.id !== this.me.id);
  }

  /** ListNotifications: the newest 20 and the unseen count. */
  async refreshNotifications(): Promise<void> {
    try {
      const res = await this.api.notifications.listNotifications({ pageSize: 20 });
      this.notifications = res.notifications.map(toNotification);
      this.unseenNotifications = res.unseenCount;
      for (const n of this.notifications) void this.ensureConversation(n.conversationId);
      this.wantUsers(this.notifications.flatMap((n) => n.senderIds));
      this.emit("notifications");
    } catch (err) {
      if (ConnectError.from(err).code !== Code.Unimplemented && !isTransient(err)) this.report(err);
    }
  }

  /** The list was shown: everything up to now is seen (MarkNotificationsSeen up_to). */
  async markNotificationsSeen(): Promise<void> {
    if (!this.unseenNotifications && this.notifications.every((n) => n.seen)) return;
    await this.api.notifications.markNotificationsSeen({ upTo: timestampNow() });
    this.unseenNotifications = 0;
    this.emit("notifications");
  }

  /** SearchMessages over all my conversations, newest first; each hit's conversation and sender are fetched for display. */
  async searchMessages(query: string): Promise<MessageData[]> {
    const res = await this.api.messages.searchMessages({ query: query.trim(), pageSize: 20, ...this.scope });
    const hits = res.messages.map(messageData);
    await Promise.all([...new Set(hits.map((m) => m.conversationId))].map((id) => this.ensureConversation(id)));
    this.wantUsers(hits.map((m) => m.senderId));
    return hits;
  }

  /**
   * Opens the conversation of a search hit with the hit loaded: older pages
   * (ListMessages before_seq) until the timeline holds it. A thread reply opens
   * its thread. Returns false if it could not be reached.
   */
  async jumpTo(hit: MessageData): Promise<boolean> {
    await this.openConversation(hit.conversationId);
    if (this.openId !== hit.conversationId) return false;
    const tl = this.timeline(hit.conversationId);
    for (let step = 0; step < 400 && !tl.byMessageId(hit.id) && tl.hasMoreBefore && tl.oldestSeq > hit.seq; step++) {
      if (this.loadingOlder) {
        await new Promise((r) => setTimeout(r, 50)); // a page the scroll asked for is on its way
        continue;
      }
      const before = tl.oldestSeq;
      await this.loadOlder(hit.conversationId);
      if (tl.oldestSeq === before && !this.loadingOlder) break;
    }
    if (hit.parentMessageId) await this.openThreadOf(hit.conversationId, hit.parentMessageId);
    return Boolean(tl.byMessageId(hit.id) || hit.parentMessageId);
  }

  /** Members of a conversation with their roles, owners first, then by name. */
  membersWithRoles(conversationId: string): { user: UserView; role: Role }[] {
    const roles = this.roles.get(conversationId) ?? new Map<string, Role>();
    return [...roles.entries()]
      .map(([id, role]) => ({ user: this.users.get(id) ?? { id, username: "…", displayName: this.userName(id) }, role }))
      .sort((a, b) => RANK[b.role] - RANK[a.role] || a.user.displayName.localeCompare(b.user.displayName));
  }

  /** Whether I may remove this member or change their role (docs/CONVERSATIONS.md: at or below my rank, admins and owners only). */
  canManage(conversationId: string, userId: string): boolean {
    const mine = this.conversations.get(conversationId)?.role ?? "";
    const theirs = this.roles.get(conversationId)?.get(userId) ?? "member";
    return userId !== this.me.id && RANK[mine] >= RANK.admin && RANK[mine] >= RANK[theirs];
  }

  /** Roles I may grant: at most my own. */
  grantableRoles(conversationId: string): Exclude<Role, "">[] {
    const mine = this.conversations.get(conversationId)?.role ?? "";
    return (["member", "admin", "owner"] as const).filter((r) => RANK[r] <= RANK[mine]);
  }

  async addMembers(conversationId: string, userIds: string[]): Promise<void> {
    await this.api.conversations.addMembers({ conversationId, userIds });
    await Promise.all([this.loadReceipts(conversationId), this.reloadConversation(conversationId)]);
  }

  async removeMember(conversationId: string, userId: string): Promise<void> {
    await this.api.conversations.removeMember({ conversationId, userId });
    await Promise.all([this.loadReceipts(conversationId), this.reloadConversation(conversationId)]);
  }

  async setRole(conversationId: string, userId: string, role: Exclude<Role, "">): Promise<void> {
    await this.api.conversations.setMemberRole({ conversationId, userId, role: ROLE_PB[role] });
    await this.loadReceipts(conversationId);
  }

  /** ListPublicChannels (optionally by name prefix), marked with whether I am in each. */
  async listChannels(query: string): Promise<{ id: string; name: string; description: string; memberCount: number; joined: boolean }[]> {
    const res = await this.api.conversations.listPublicChannels({ query: query.trim().replace(/^#/, ""), pageSize: 50, ...this.scope });
    return res.conversations.map((c) => ({
      id: c.id,
      name: c.title,
      description: c.description,
      memberCount: c.memberCount,
      joined: this.conversations.has(c.id),
    }));
  }

  /** JoinConversation on a public channel; it joins the list (and the stream's events) at once. */
  async joinChannel(id: string): Promise<string> {
    const res = await this.api.conversations.joinConversation({ conversationId: id });
    return this.putConversation(res.conversation!).id;
  }

  /** Opens (creating on first use) the DM with a user. */
  async startDirect(userId: string): Promise<string> {
    const res = await this.api.conversations.getOrCreateDirect({ userId, ...this.scope });
    const conv = this.putConversation(res.conversation!);
    return conv.id;
  }

  async createGroup(title: string, memberIds: string[]): Promise<string> {
    const res = await this.api.conversations.createConversation({ type: ConversationType.GROUP, title: title.trim(), memberIds, ...this.scope });
    return this.putConversation(res.conversation!).id;
  }

  // ---- events ----------------------------------------------------------------

  private async applyEvent(ev: ChatEvent): Promise<void> {
    const convId = ev.conversationId;
    const p = ev.payload;
    switch (p.case) {
      case "messageCreated": {
        if (!p.value.message) return;
        if (!(await this.ensureConversation(convId))) return;
        this.ingest(messageData(p.value.message), true);
        this.clearTyping(convId, p.value.message.senderId);
        break;
      }
      case "messageEdited": {
        if (!p.value.message) return;
        const tl = this.timeline(convId);
        const known = tl.byMessageId(p.value.message.id);
        // `reacted` in an event is not about us: keep our view of the reactions.
        if (known) tl.upsert({ ...messageData(p.value.message), reactions: known.reactions });
        const thread = this.threads.get(p.value.message.parentMessageId);
        const reply = thread?.byMessageId(p.value.message.id);
        if (thread && reply) {
          thread.upsert({ ...messageData(p.value.message), reactions: reply.reactions });
          this.emit("thread");
        }
        this.refreshPreview(convId);
        this.emit("messages");
        break;
      }
      case "messageDeleted":
        if (this.timeline(convId).markDeleted(p.value.messageId, Number(p.value.seq))) this.emit("messages");
        for (const thread of this.threads.values())
          if (thread.byMessageId(p.value.messageId) && thread.markDeleted(p.value.messageId, 0)) this.emit("thread");
        this.refreshPreview(convId);
        break;
      case "reactionUpdated":
        this.noteReactor(p.value.messageId, p.value.emoji, p.value.userId, p.value.added);
        this.wantUsers([p.value.userId]);
        // Counts from the source of truth: fetched after the event, so it includes it.
        if (this.holders(convId, p.value.messageId).length) this.scheduleMessageRefresh(convId, p.value.messageId, 150);
        break;
      case "receiptUpdated": {
        const read = Number(p.value.readSeq);
        let reads = this.receipts.get(convId);
        if (!reads) this.receipts.set(convId, (reads = new Map()));
        if (read > (reads.get(p.value.userId) ?? 0)) reads.set(p.value.userId, read);
        const conv = this.conversations.get(convId);
        if (conv && p.value.userId === this.me.id && read > conv.lastReadSeq) {
          // Read on another device of ours.
          conv.lastReadSeq = read;
          if (read >= conv.lastSeq) conv.unread = 0;
          this.emit("sidebar");
        }
        this.emit("messages");
        break;
      }
      case "typingUpdated": {
        if (p.value.userId === this.me.id) return;
        let m = this.typing.get(convId);
        if (!m) this.typing.set(convId, (m = new Map()));
        if (p.value.typing) m.set(p.value.userId, Date.now() + TYPING_SHOWN_MS);
        else m.delete(p.value.userId);
        this.wantUsers([p.value.userId]);
        this.emit("typing");
        break;
      }
      case "presenceUpdated":
        this.setPresence(p.value.userId, p.value.status, p.value.lastSeenAt);
        break;
      case "conversationUpdated":
        if (p.value.conversation) this.mergeConversation(p.value.conversation);
        break;
      case "notificationCreated": {
        // Ours, live (made while we were away): replace by id, newest first, and the server's unseen count.
        const n = p.value.notification;
        if (!n) return;
        const view = toNotification(n);
        this.notifications = [view, ...this.notifications.filter((x) => x.id !== view.id)].slice(0, 20);
        this.unseenNotifications = p.value.unseenCount;
        void this.ensureConversation(view.conversationId);
        this.wantUsers(view.senderIds);
        this.emit("notifications");
        break;
      }
      case "memberJoined":
      case "memberLeft":
        if (p.case === "memberLeft" && p.value.userId === this.me.id) {
          this.conversations.delete(convId);
          if (this.openId === convId) this.closeConversation();
          this.emit("sidebar");
        } else {
          await this.reloadConversation(convId);
          if (this.openId === convId) await this.loadReceipts(convId);
        }
        break;
    }
  }

  /** Any stored message, from any source, into its timeline and the sidebar. */
  private ingest(m: MessageData, live: boolean): void {
    if (m.parentMessageId) {
      const result = this.threadTimeline(m.conversationId, m.parentMessageId).upsert(m);
      // The parent's reply count, from the source of truth (a re-read after the reply includes it).
      if ((result === "added" || result === "confirmed") && this.timeline(m.conversationId).byMessageId(m.parentMessageId))
        this.scheduleMessageRefresh(m.conversationId, m.parentMessageId, 150);
      this.emit("thread");
    }
    const tl = this.timeline(m.conversationId);
    const gap = live ? tl.gapBefore(m.seq) : null;
    const result = tl.upsert(m);
    if (gap) void this.fillGap(m.conversationId, gap.afterSeq, gap.beforeSeq);
    const conv = this.conversations.get(m.conversationId);
    if (conv && (result === "added" || result === "confirmed") && m.seq > conv.lastSeq) {
      conv.lastSeq = m.seq;
      conv.lastMessageAt = m.createdAt?.getTime() ?? Date.now();
      conv.preview = m.content;
      conv.previewSenderId = m.senderId;
      if (m.senderId !== this.me.id && m.seq > conv.lastReadSeq) conv.unread++;
      this.emit("sidebar");
      if (!this.inCurrentWorkspace(conv)) this.emit("workspaces");
    }
    this.wantUsers([m.senderId]);
    if (m.conversationId === this.openId) {
      this.emit("messages");
      this.maybeMarkRead();
    }
  }

  private async fillGap(conversationId: string, afterSeq: number, beforeSeq: number): Promise<void> {
    let from = afterSeq;
    try {
      while (from < beforeSeq - 1) {
        const res = await this.api.messages.listMessages({ conversationId, afterSeq: BigInt(from), limit: 200 });
        if (!res.messages.length) break;
        for (const m of res.messages) this.ingest(messageData(m), false);
        from = Math.max(...res.messages.map((m) => Number(m.seq)));
        if (!res.hasMore) break;
      }
    } catch (err) {
      this.report(err);
    }
  }

  /** The server could not replay this conversation: start it afresh from the newest page. */
  private async resync(conversationId: string): Promise<void> {
    const tl = this.timeline(conversationId);
    if (!tl.loadedLatest) return void (await this.reloadConversation(conversationId));
    await this.fillGap(conversationId, tl.newestSeq, Number.MAX_SAFE_INTEGER);
    await this.reloadConversation(conversationId);
  }

  private scheduleMessageRefresh(conversationId: string, messageId: string, delayMs: number): void {
    clearTimeout(this.refreshTimers.get(messageId));
    this.refreshTimers.set(
      messageId,
      setTimeout(async () => {
        this.refreshTimers.delete(messageId);
        try {
          const res = await this.api.messages.getMessage({ messageId });
          if (res.message) for (const tl of this.holders(conversationId, messageId)) tl.upsert(messageData(res.message));
          this.emitMessageChange();
        } catch (err) {
          if (ConnectError.from(err).code !== Code.NotFound) this.report(err);
        }
      }, delayMs),
    );
  }

  private clearTyping(conversationId: string, userId: string): void {
    if (this.typing.get(conversationId)?.delete(userId)) this.emit("typing");
  }

  private sweepTyping(): void {
    const now = Date.now();
    let changed = false;
    for (const m of this.typing.values()) {
      for (const [user, until] of m) {
        if (until <= now) {
          m.delete(user);
          changed = true;
        }
      }
    }
    if (changed) this.emit("typing");
  }

  private setPresence(userId: string, status: PresenceStatus, lastSeenAt?: Timestamp): void {
    const name = PRESENCE_NAMES[status] ?? "unknown";
    const seen = date(lastSeenAt);
    const seenChanged = Boolean(seen) && seen!.getTime() !== this.lastSeen.get(userId)?.getTime();
    if (seen) this.lastSeen.set(userId, seen);
    if (this.presence.get(userId) === name && !seenChanged) return;
    this.presence.set(userId, name);
    this.emit("sidebar");
    this.emit("header");
  }

  // ---- loading -----------------------------------------------------------------

  private async loadConversations(): Promise<void> {
    const workspaceId = this.workspaceId;
    try {
      let pageToken = "";
      for (let page = 0; page < 10; page++) {
        const res = await this.api.conversations.listConversations({ pageSize: 100, pageToken, ...this.scope });
        if (workspaceId !== this.workspaceId) return; // switched meanwhile: that load lists the new one
        for (const c of res.conversations) this.putConversation(c);
        pageToken = res.nextPageToken;
        if (!pageToken) break;
      }
    } catch (err) {
      this.report(err);
    }
    this.scheduleWatch();
    this.emit("sidebar");
  }

  private ensureConversation(id: string): Promise<ConversationView | null> {
    const known = this.conversations.get(id);
    if (known) return Promise.resolve(known);
    let p = this.pendingConversation.get(id);
    if (!p) {
      p = this.api.conversations
        .getConversation({ conversationId: id })
        .then((res) => (res.conversation ? this.putConversation(res.conversation) : null))
        .catch((err) => {
          if (ConnectError.from(err).code !== Code.NotFound && ConnectError.from(err).code !== Code.PermissionDenied) this.report(err);
          return null;
        })
        .finally(() => this.pendingConversation.delete(id));
      this.pendingConversation.set(id, p);
    }
    return p;
  }

  private async reloadConversation(id: string): Promise<void> {
    try {
      const res = await this.api.conversations.getConversation({ conversationId: id });
      if (res.conversation) this.putConversation(res.conversation);
    } catch (err) {
      const code = ConnectError.from(err).code;
      if (code === Code.NotFound || code === Code.PermissionDenied) {
        this.conversations.delete(id);
        if (this.openId === id) this.closeConversation();
        this.emit("sidebar");
      } else this.report(err);
    }
  }

  private async loadReceipts(id: string): Promise<void> {
    try {
      const res = await this.api.conversations.listMembers({ conversationId: id, pageSize: 500 });
      let reads = this.receipts.get(id);
      if (!reads) this.receipts.set(id, (reads = new Map()));
      // Members who left are not in the answer.
      for (const user of [...reads.keys()]) if (!res.members.some((m) => m.userId === user)) reads.delete(user);
      this.roles.set(id, new Map(res.members.map((m) => [m.userId, ROLE_OF[m.role] ?? "member"])));
      this.emit("members");
      for (const m of res.members) {
        const read = Number(m.lastReadSeq);
        if (read > (reads.get(m.userId) ?? 0)) reads.set(m.userId, read);
      }
      this.wantUsers(res.members.map((m) => m.userId));
    } catch (err) {
      if (!(err instanceof SessionEndedError)) this.report(err);
    }
  }

  private putConversation(c: Conversation): ConversationView {
    const view = toConversation(c);
    const old = this.conversations.get(view.id);
    if (old) {
      // Our local counts may be ahead of a response that was computed earlier.
      view.lastSeq = Math.max(view.lastSeq, old.lastSeq);
      view.lastReadSeq = Math.max(view.lastReadSeq, old.lastReadSeq);
      if (old.lastSeq > Number(c.lastSeq)) {
        view.unread = old.unread;
        view.preview = old.preview;
        view.previewSenderId = old.previewSenderId;
        view.lastMessageAt = old.lastMessageAt;
      }
    }
    this.conversations.set(view.id, view);
    if (view.peerUserId) this.wantUsers([view.peerUserId]);
    if (view.previewSenderId) this.wantUsers([view.previewSenderId]);
    if (!old && view.peerUserId) this.scheduleWatch();
    this.emit("sidebar");
    if (view.id === this.openId) this.emit("header");
    return view;
  }

  private mergeConversation(c: Conversation): void {
    const old = this.conversations.get(c.id);
    if (!old) return void this.ensureConversation(c.id);
    // The event's per-member fields describe someone else's view: keep ours.
    old.title = c.title;
    old.memberCount = c.memberCount;
    this.emit("sidebar");
    if (c.id === this.openId) this.emit("header");
  }

  private wantUsers(ids: string[]): void {
    let added = false;
    for (const id of ids) {
      if (id && !this.users.has(id) && !this.pendingUsers.has(id)) {
        this.pendingUsers.add(id);
        added = true;
      }
    }
    if (!added || this.userFetchTimer) return;
    this.userFetchTimer = setTimeout(async () => {
      this.userFetchTimer = undefined;
      const batch = [...this.pendingUsers].slice(0, 500);
      try {
        const res = await this.api.auth.getUsers({ userIds: batch });
        for (const u of res.users) this.users.set(u.id, toUser(u));
        for (const id of batch) this.pendingUsers.delete(id);
        this.reactorsRev++; // names in "who reacted"
        this.emit("sidebar");
        this.emit("messages");
        this.emit("header");
        this.emit("typing");
      } catch (err) {
        for (const id of batch) this.pendingUsers.delete(id);
        if (!isTransient(err)) this.report(err);
      }
      if (this.pendingUsers.size) this.wantUsers([]);
    }, 20);
  }

  private peopleToWatch(): string[] {
    const ids = new Set<string>();
    for (const c of this.conversations.values()) if (c.peerUserId) ids.add(c.peerUserId);
    if (this.openId) for (const id of this.receipts.get(this.openId)?.keys() ?? []) ids.add(id);
    ids.delete(this.me.id);
    return [...ids].sort().slice(0, 500);
  }

  /** After a burst of changes (a page of conversations), one restart of the watch. */
  private scheduleWatch(): void {
    clearTimeout(this.watchTimer);
    this.watchTimer = setTimeout(() => this.watchPresenceOf(this.peopleToWatch()), 50);
  }

  /** WatchPresence for the people on screen (its first answers are their current presence); restarted when that set changes. */
  private watchPresenceOf(ids: string[]): void {
    if (this.presenceUnavailable || this.stopped) return;
    if (ids.join() === this.watchedUsers.join()) return;
    this.watchedUsers = ids;
    if (!ids.length) return;
    if (this.watchUnavailable) this.fetchPresence(ids);
    else if (this.presenceStream.isRunning) this.presenceStream.reconnectNow();
    else this.presenceStream.start();
  }

  private fetchPresence(ids: string[]): void {
    if (!ids.length || this.presenceUnavailable) return;
    this.api.presence.getPresence({ userIds: ids }).then(
      (res) => {
        for (const p of res.presences) this.setPresence(p.userId, p.status, p.lastSeenAt);
      },
      (err) => {
        if (ConnectError.from(err).code === Code.Unimplemented) this.presenceUnavailable = true;
      },
    );
  }

  private maybeMarkRead(): void {
    const id = this.openId;
    if (!id || document.visibilityState !== "visible") return;
    const conv = this.conversations.get(id);
    const tl = this.timeline(id);
    const newest = tl.newest();
    // Only others' messages make something unread: our own sends need no MarkRead.
    const newestFromOthers = tl.newestFrom((sender) => sender !== this.me.id);
    if (!conv || !newest || !newestFromOthers || (newestFromOthers.seq <= conv.lastReadSeq && conv.unread === 0)) return;
    if (conv.unread !== 0) {
      conv.unread = 0;
      this.emit("sidebar");
    }
    clearTimeout(this.markReadTimer);
    this.markReadTimer = setTimeout(async () => {
      try {
        const res = await this.api.messages.markRead({ conversationId: id, seq: BigInt(newest.seq) });
        conv.lastReadSeq = Math.max(conv.lastReadSeq, Number(res.lastReadSeq));
        if (this.openId !== id) conv.unread = res.unreadCount;
        this.emit("sidebar");
      } catch (err) {
        if (!isTransient(err)) this.report(err);
      }
    }, 200);
  }

  // ---- sending -------------------------------------------------------------------

  /** Through the SDK's outbox: the result lands in the timeline (confirmed), or marks the message failed. */
  private enqueue(conversationId: string, clientMessageId: string, content: string, mentions: string[] = []): void {
    this.outbox.send({ conversationId, clientMessageId, content, mentions }).then(
      (m) => this.ingest(messageData(m), false),
      (err: unknown) => {
        if (this.stopped) return;
        this.timeline(conversationId).setSendState(this.me.id, clientMessageId, "failed", describeError(err).message);
        this.emit("messages");
      },
    );
  }

  private report(err: unknown): void {
    if (err instanceof SessionEndedError || this.stopped) return;
    this.lastError = describeError(err).message;
    this.emit("status");
  }

  private emit(scope: ChangeScope): void {
    for (const f of this.listeners) f(scope);
  }
}

// ---- protobuf -> plain -------------------------------------------------------------

function date(ts: Timestamp | undefined): Date | null {
  return ts ? timestampDate(ts) : null;
}

function toNotification(n: Notification): NotificationView {
  return {
    id: n.id,
    type: n.type === NotificationType.MENTION ? "mention" : n.type === NotificationType.THREAD_REPLY ? "thread" : "direct",
    conversationId: n.conversationId,
    senderIds: [...n.senderIds],
    count: n.messageCount,
    preview: n.preview,
    createdAt: date(n.createdAt),
    seen: n.seen,
  };
}

function toUser(u: User): UserView {
  return { id: u.id, username: u.username, displayName: u.displayName || u.username };
}

function toConversation(c: Conversation): ConversationView {
  const type = c.type === ConversationType.DIRECT ? "direct" : c.type === ConversationType.CHANNEL ? "channel" : "group";
  return {
    id: c.id,
    workspaceId: c.workspaceId,
    type,
    title: c.title,
    role: ROLE_OF[c.role] ?? "",
    peerUserId: c.peerUserId,
    memberCount: c.memberCount,
    lastMessageAt: (date(c.lastMessageAt) ?? date(c.createdAt))?.getTime() ?? 0,
    lastSeq: Number(c.lastSeq),
    lastReadSeq: Number(c.lastReadSeq),
    unread: c.unreadCount,
    preview: c.lastMessage?.deleted ? "(deleted)" : (c.lastMessage?.content ?? ""),
    previewSenderId: c.lastMessage?.senderId ?? "",
  };
}
