// One open Stream or Subscribe call: its position vector, its ordered inbox,
// its bounded outbound queue and its cursor. See docs/REALTIME.md.
//
// Ordering: everything that can produce an event for this stream (the
// open/replay, live events from every conversation, membership changes) goes
// through ONE inbox processed by one loop, so per conversation an event is
// emitted only when it is exactly the next event_seq; a duplicate (replay/live
// seam, two publishers) is dropped; a gap (publish order differs between
// nodes) is filled from the log first.
//
// Backpressure: enqueueing never waits for the client. When the frames not yet
// taken by the transport plus the inbox exceed the bound, the stream is cut off
// with RESOURCE_EXHAUSTED and the client resumes from its last cursor.

import { randomUUID } from "node:crypto";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { AuthRefreshed, Event, GoAway, Heartbeat, Pong, Ready, ResyncRequired, SendAck, StreamError } from "../../gen/chat/v1/message_pb.js";
import { AppError, invalidArgument, resourceExhausted, unavailable } from "../shared/errors.ts";
import { encodeCursor, type CursorValue } from "./cursor.ts";
import type { Checkpoint, EventLog } from "./event-log.ts";
import type { EventMaterializer } from "./materialize.ts";
import type { MemberDirectory, StreamInfo } from "./ports.ts";

export type OutFrame =
  | { case: "ready"; value: Ready }
  | { case: "event"; value: Event }
  | { case: "resyncRequired"; value: ResyncRequired }
  | { case: "goAway"; value: GoAway }
  | { case: "heartbeat"; value: Heartbeat }
  | { case: "sendAck"; value: SendAck }
  | { case: "error"; value: StreamError }
  | { case: "pong"; value: Pong }
  | { case: "authRefreshed"; value: AuthRefreshed };

type InboxItem =
  | { k: "event"; c: string; seq: number; event: Event }
  | { k: "ephemeral"; c: string; event: Event }
  | { k: "membership"; c: string; seq: number; joined: boolean }
  | { k: "head"; c: string; seq: number };

/** What a session needs from its node's hub. */
export interface SessionHost {
  watchUser(s: StreamSession): Promise<void>;
  watch(s: StreamSession, conversationIds: string[]): Promise<void>;
  unwatch(s: StreamSession, conversationId: string): void;
  detach(s: StreamSession): void;
  /** The transport is done with this stream. */
  finished(s: StreamSession): void;
  checkpoint(id: string): Promise<Checkpoint | null>;
}

export interface SessionSettings {
  queueMax: number;
  resyncThreshold: number;
  heartbeatIntervalMs: number;
}

export interface SessionDeps {
  host: SessionHost;
  log: EventLog;
  materializer: EventMaterializer;
  directory: MemberDirectory;
  settings: SessionSettings;
}

/** Delta entries a cursor carries before a new checkpoint is written. */
export const CHECKPOINT_DELTA_MAX = 16;
const REPLAY_BATCH = 200;
const PRESENCE_SEEN_MAX = 10_000;
const END = Number.MAX_SAFE_INTEGER;

export class StreamSession implements StreamInfo {
  readonly userId: string;
  readonly sessionId: string;
  readonly deviceId: string;
  readonly kind: "stream" | "subscribe";
  /** Access token expiry (ms since epoch); the hub closes the stream then. A `refresh_auth` frame moves it (extend()). */
  expiresAtMs: number | null;
  lastClientFrameAt = Date.now();
  lastHeartbeatAt = Date.now();
  /** Called when the stream must be cut at the transport (the client stopped reading). */
  hardCut: (() => void) | null = null;
  /** Fan-out channels this stream is registered on (kept by the hub). */
  readonly channels = new Set<string>();

  private readonly d: SessionDeps;
  /** conversation -> last event_seq emitted (or skipped on purpose). */
  private readonly positions = new Map<string, number>();
  private checkpoint: { id: string; index: Map<string, number>; seqs: number[] } | null = null;
  private readonly delta = new Map<number, number>();
  private inbox: InboxItem[] = [];
  private processing = false;
  private opened = false;
  private out: (OutFrame | undefined)[] = [];
  private outHead = 0;
  private wake: (() => void) | null = null;
  private spaceWaiters: (() => void)[] = [];
  private state: "open" | "ending" | "closed" = "open";
  /** userId -> the last presence delivered (created on first use: idle streams stay small). */
  private presenceSeen: Map<string, string> | null = null;
  /** Per "conversation|user", the version of the last typing state delivered. */
  private typingSeen: Map<string, number> | null = null;
  private error: AppError | null = null;

  constructor(deps: SessionDeps, info: Omit<StreamInfo, "kind"> & { kind: "stream" | "subscribe"; expiresAtMs: number | null }) {
    this.d = deps;
    this.userId = info.userId;
    this.sessionId = info.sessionId;
    this.deviceId = info.deviceId;
    this.kind = info.kind;
    this.expiresAtMs = info.expiresAtMs;
  }

  get isOpen(): boolean {
    return this.state === "open";
  }

  /** Conversations this stream delivers (for typing checks and tests). */
  follows(conversationId: string): boolean {
    return this.positions.has(conversationId);
  }

  // ---- opening and replay ---------------------------------------------------

  /** Opens in the background; frames start flowing at once (ready first). Settles when the open phase is over (never rejects). */
  start(resume: CursorValue | null, field: string): Promise<void> {
    return this.open(resume, field).then(
      () => {
        this.opened = true;
        this.kick();
      },
      (err: unknown) => this.close(asAppError(err)),
    );
  }

  private async open(resume: CursorValue | null, field: string): Promise<void> {
    const { host, log, directory, settings } = this.d;
    // Subscriptions first, reads second: whatever happens from now on reaches
    // the inbox (held until open finishes), so live and replay meet with no gap.
    await host.watchUser(this);
    const ids = await directory.conversationsOf(this.userId);
    await host.watch(this, ids);

    const cp = resume ? await host.checkpoint(resume.checkpointId) : null;
    if (cp && cp.userId !== this.userId) throw invalidArgument(field, "is not a cursor of this user", "CURSOR_INVALID");
    const before = new Map<string, number>();
    if (cp && resume) {
      cp.conversationIds.forEach((c, i) => before.set(c, cp.seqs[i]));
      for (const [index, seq] of resume.delta) {
        if (index >= cp.conversationIds.length) throw invalidArgument(field, "is not a cursor issued by this server", "CURSOR_INVALID");
        before.set(cp.conversationIds[index], seq);
      }
    }
    const members = new Set(ids);
    const left = [...before.keys()].filter((c) => !members.has(c));
    const heads = await log.heads([...ids, ...left]);

    const resync: string[] = [];
    if (!resume || !cp) {
      // Fresh start: live from now. An unknown checkpoint (expired with the
      // retention period, or never ours): the client's state is too old to
      // patch, so every conversation needs a reload.
      for (const c of ids) this.positions.set(c, heads.get(c)!);
      if (resume) resync.push(...ids);
    } else {
      const starts = new Map<string, number | null>();
      for (const c of ids) {
        if (before.has(c)) starts.set(c, before.get(c)!);
        else {
          // Joined while away: replay from the join.
          const joined = await log.lastMembershipEvent(c, this.userId, "member_joined", 0);
          starts.set(c, joined ? joined.eventSeq - 1 : null);
        }
      }
      const behind = ids.filter((c) => {
        const s = starts.get(c);
        return s !== null && s !== undefined && s < heads.get(c)!;
      });
      const oldest = await log.oldestRetained([...behind, ...left]);
      for (const c of ids) {
        const head = heads.get(c)!;
        const s = starts.get(c);
        const pruned = s !== null && s !== undefined && s < head && !((oldest.get(c) ?? Infinity) <= s + 1);
        if (s === null || s === undefined || s > head || head - s > settings.resyncThreshold || pruned) {
          resync.push(c);
          this.positions.set(c, head);
        } else {
          this.positions.set(c, s);
        }
      }
      for (const c of left) {
        // The events after the leave are not this user's; only the leave is.
        if (heads.get(c)! > before.get(c)! && !((oldest.get(c) ?? Infinity) <= before.get(c)! + 1)) resync.push(c);
      }
      this.adoptCheckpoint(cp);
    }
    if (!this.checkpoint) await this.newCheckpoint();

    this.enqueue(
      {
        case: "ready",
        value: {
          $typeName: "chat.v1.Ready",
          resumeToken: this.cursor(),
          heartbeatInterval: durationFromMs(settings.heartbeatIntervalMs),
          sessionId: this.sessionId,
          accessTokenExpiresAt: this.expiresAtMs === null ? undefined : timestampFromMs(this.expiresAtMs),
        },
      },
      true,
    );
    if (resync.length > 0) this.enqueue({ case: "resyncRequired", value: { $typeName: "chat.v1.ResyncRequired", conversationIds: resync } }, true);
    for (const c of left) {
      if (resync.includes(c)) continue;
      const ev = await log.lastMembershipEvent(c, this.userId, "member_left", before.get(c)!);
      if (!ev) continue;
      const [event] = await this.d.materializer.materialize([ev], this.userId);
      this.enqueue({ case: "event", value: { ...event, cursor: this.cursor() } }, true);
    }
    for (const c of ids) {
      if (this.positions.get(c)! < heads.get(c)!) await this.catchUp(c, heads.get(c)!);
    }
  }

  // ---- the inbox ------------------------------------------------------------

  offerEvent(c: string, seq: number, event: Event): void {
    this.offer({ k: "event", c, seq, event });
  }

  offerEphemeral(c: string, event: Event): void {
    this.offer({ k: "ephemeral", c, event });
  }

  offerMembership(c: string, seq: number, joined: boolean): void {
    this.offer({ k: "membership", c, seq, joined });
  }

  /** The log of `c` reaches `seq` (the hub's head check): catch up if behind. */
  offerHead(c: string, seq: number): void {
    this.offer({ k: "head", c, seq });
  }

  private offer(item: InboxItem): void {
    if (this.state !== "open") return;
    this.inbox.push(item);
    if (this.pending() > this.d.settings.queueMax) return this.overflow();
    this.kick();
  }

  private kick(): void {
    if (this.processing || !this.opened || this.state !== "open" || this.inbox.length === 0) return;
    void this.process();
  }

  private async process(): Promise<void> {
    this.processing = true;
    try {
      while (this.inbox.length > 0 && this.state === "open") {
        const item = this.inbox.shift()!;
        if (item.k === "event") await this.onDurable(item.c, item.seq, item.event);
        else if (item.k === "ephemeral") this.onEphemeral(item.c, item.event);
        else if (item.k === "head") await this.catchUp(item.c, item.seq);
        else if (item.joined) await this.onJoined(item.c, item.seq);
        else await this.onLeft(item.c, item.seq);
      }
    } catch (err) {
      // A store failing mid-catch-up: the client reconnects and resumes.
      this.close(asAppError(err));
    } finally {
      this.processing = false;
    }
    this.kick();
  }

  private async onDurable(c: string, seq: number, event: Event): Promise<void> {
    const cur = this.positions.get(c);
    if (cur === undefined || seq <= cur) return;
    if (seq > cur + 1) {
      await this.catchUp(c, seq - 1);
      const now = this.positions.get(c);
      if (now === undefined || seq <= now) return;
    }
    await this.emit(c, seq, event);
  }

  private onEphemeral(c: string, event: Event): void {
    if (!this.positions.has(c)) return;
    const p = event.payload;
    // Typing of the user's own devices is not news to them.
    if (p.case === "typingUpdated" && p.value.userId === this.userId) return;
    if (p.case === "typingUpdated") {
      // Announcements can arrive out of order (two nodes, two publishes): the
      // newest state wins; occurred_at is its version (see presence/typing.ts).
      const key = `${c}|${p.value.userId}`;
      const version = Number(event.occurredAt?.seconds ?? 0n) * 1_000_000 + Math.floor((event.occurredAt?.nanos ?? 0) / 1000);
      this.typingSeen ??= new Map();
      if ((this.typingSeen.get(key) ?? -1) >= version) return;
      if (this.typingSeen.size >= PRESENCE_SEEN_MAX) this.typingSeen.delete(this.typingSeen.keys().next().value!);
      this.typingSeen.delete(key);
      this.typingSeen.set(key, version);
    }
    if (p.case === "presenceUpdated") {
      // Published once per conversation of that user: deliver each change once,
      // without a conversation (presence belongs to the user).
      const key = `${p.value.status}:${p.value.lastSeenAt?.seconds ?? ""}`;
      this.presenceSeen ??= new Map();
      if (this.presenceSeen.get(p.value.userId) === key) return;
      if (this.presenceSeen.size >= PRESENCE_SEEN_MAX) this.presenceSeen.delete(this.presenceSeen.keys().next().value!);
      this.presenceSeen.set(p.value.userId, key);
      this.enqueue({ case: "event", value: { ...event, conversationId: "" } });
      return;
    }
    this.enqueue({ case: "event", value: event });
  }

  private async onJoined(c: string, seq: number): Promise<void> {
    if (this.positions.has(c)) return;
    this.positions.set(c, seq - 1);
    await this.d.host.watch(this, [c]);
    await this.catchUp(c, END);
  }

  private async onLeft(c: string, seq: number): Promise<void> {
    const cur = this.positions.get(c);
    if (cur === undefined) return;
    if (cur < seq) {
      await this.catchUp(c, seq); // ends with the member_left, which detaches
      return;
    }
    // Already past the leave without seeing it (it happened while this stream
    // was opening): stop following unless the user came back since.
    if (!(await this.d.log.lastMembershipEvent(c, this.userId, "member_joined", seq))) this.stopFollowing(c);
  }

  /** Emits the logged events of `c` after the current position up to `upto`, in order. */
  private async catchUp(c: string, upto: number): Promise<void> {
    for (;;) {
      const from = this.positions.get(c);
      if (from === undefined || from >= upto || this.state !== "open") return;
      const rows = await this.d.log.read(c, from, upto, REPLAY_BATCH);
      if (rows.length === 0) return;
      if (rows[0].eventSeq > from + 1) {
        // Pruned under us: the client has to reload this conversation.
        this.enqueue({ case: "resyncRequired", value: { $typeName: "chat.v1.ResyncRequired", conversationIds: [c] } }, true);
        this.positions.set(c, rows[rows.length - 1].eventSeq);
        continue;
      }
      const events = await this.d.materializer.materialize(rows, this.userId);
      for (let i = 0; i < rows.length; i++) {
        const cur = this.positions.get(c);
        if (cur === undefined || this.state !== "open") return;
        if (rows[i].eventSeq <= cur) continue;
        await this.emit(c, rows[i].eventSeq, events[i]);
        await this.waitForSpace();
      }
    }
  }

  private async emit(c: string, seq: number, event: Event): Promise<void> {
    this.positions.set(c, seq);
    const index = this.checkpoint?.index.get(c);
    if (index === undefined) await this.newCheckpoint();
    else {
      if (this.checkpoint!.seqs[index] === seq) this.delta.delete(index);
      else this.delta.set(index, seq);
      if (this.delta.size > CHECKPOINT_DELTA_MAX) await this.newCheckpoint();
    }
    this.enqueue({ case: "event", value: { ...event, cursor: this.cursor() } });
    if (event.payload.case === "memberLeft" && event.payload.value.userId === this.userId) {
      // Left and already back? Then skip what happened while away; else stop.
      const back = await this.d.log.lastMembershipEvent(c, this.userId, "member_joined", seq);
      if (back) this.positions.set(c, back.eventSeq - 1);
      else this.stopFollowing(c);
    }
  }

  private stopFollowing(c: string): void {
    this.positions.delete(c);
    this.d.host.unwatch(this, c);
  }

  // ---- cursors ----------------------------------------------------------------

  /** The cursor of the current position vector. */
  cursor(): string {
    return encodeCursor({ checkpointId: this.checkpoint!.id, delta: [...this.delta] });
  }

  private adoptCheckpoint(cp: Checkpoint): void {
    const index = new Map(cp.conversationIds.map((c, i) => [c, i]));
    for (const c of this.positions.keys()) if (!index.has(c)) return; // the set grew: a new one
    this.checkpoint = { id: cp.id, index, seqs: cp.seqs };
    this.delta.clear();
    for (const [c, seq] of this.positions) {
      const i = index.get(c)!;
      if (cp.seqs[i] !== seq) this.delta.set(i, seq);
    }
    if (this.delta.size > CHECKPOINT_DELTA_MAX) this.checkpoint = null;
  }

  private async newCheckpoint(): Promise<void> {
    const conversationIds = [...this.positions.keys()];
    const seqs = conversationIds.map((c) => this.positions.get(c)!);
    const saved = await this.d.log.saveCheckpoint({ id: randomUUID(), userId: this.userId, conversationIds, seqs });
    this.checkpoint = { id: saved.id, index: new Map(conversationIds.map((c, i) => [c, i])), seqs };
    this.delta.clear();
  }

  // ---- the outbound queue -------------------------------------------------------

  /** Frames not yet taken by the transport, plus inbox items not yet processed. */
  private pending(): number {
    return this.out.length - this.outHead + this.inbox.length;
  }

  /** Queues a frame for the client. `force`: control frames that must not trip the bound. */
  enqueue(frame: OutFrame, force = false): void {
    if (this.state === "closed") return;
    this.out.push(frame);
    if (!force && this.pending() > this.d.settings.queueMax) return this.overflow();
    const w = this.wake;
    if (w) {
      this.wake = null;
      w();
    }
  }

  /**
   * The transport reads the client's next frame only after this resolves: a
   * client that sends faster than it reads what its sends produce (acks, its
   * own events) is slowed by HTTP/2 flow control instead of being cut off as
   * fell-behind. Resolves at once while the queue is under half its bound.
   */
  roomForClientFrames(): Promise<void> {
    return this.waitForSpace();
  }

  /** Replay waits here while the client is behind (replay is pulled, live is pushed). */
  private waitForSpace(): Promise<void> {
    if (this.out.length - this.outHead < this.d.settings.queueMax / 2 || this.state !== "open") return Promise.resolve();
    return new Promise((r) => this.spaceWaiters.push(r));
  }

  private overflow(): void {
    this.close(resourceExhausted("STREAM_TOO_SLOW", "stream fell behind: resume from the last cursor processed"));
    // The transport is stuck behind unread data, so the status cannot reach the
    // client in band: reset the HTTP/2 stream (ENHANCE_YOUR_CALM is
    // RESOURCE_EXHAUSTED to gRPC clients) so nothing more is buffered for it.
    this.hardCut?.();
  }

  /** The frames for the transport, until the stream ends. */
  async *frames(): AsyncGenerator<OutFrame> {
    try {
      for (;;) {
        if (this.state === "closed") {
          if (this.error) throw this.error;
          return;
        }
        if (this.outHead < this.out.length) {
          const f = this.out[this.outHead]!;
          this.out[this.outHead++] = undefined;
          if (this.outHead > 1024 && this.outHead * 2 > this.out.length) {
            this.out = this.out.slice(this.outHead);
            this.outHead = 0;
          }
          if (this.spaceWaiters.length > 0 && this.out.length - this.outHead < this.d.settings.queueMax / 2) this.releaseSpaceWaiters();
          yield f;
          continue;
        }
        if (this.state === "ending") return;
        await new Promise<void>((r) => (this.wake = r));
      }
    } finally {
      this.close();
      this.d.host.finished(this);
    }
  }

  private releaseSpaceWaiters(): void {
    const ws = this.spaceWaiters;
    this.spaceWaiters = [];
    for (const w of ws) w();
  }

  // ---- ending -------------------------------------------------------------------

  /** Ends after the queued frames are sent (status OK). */
  end(): void {
    if (this.state !== "open") return;
    this.state = "ending";
    this.inbox = [];
    this.d.host.detach(this);
    this.releaseSpaceWaiters();
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Ends now: queued frames are dropped (the client resumes from its cursor); with an error, that is the status. */
  close(error?: AppError): void {
    if (this.state === "closed") return;
    const wasOpen = this.state === "open";
    this.state = "closed";
    this.error = error ?? null;
    this.inbox = [];
    this.out = [];
    this.outHead = 0;
    if (wasOpen) this.d.host.detach(this);
    this.releaseSpaceWaiters();
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Asks the client to reconnect elsewhere, then ends. */
  goAway(reason: string, reconnectAfterMs: number): void {
    if (this.state !== "open") return;
    this.enqueue({ case: "goAway", value: { $typeName: "chat.v1.GoAway", reason, reconnectAfter: durationFromMs(reconnectAfterMs) } }, true);
    this.end();
  }
}

function asAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  return unavailable("STREAM_INTERRUPTED", "stream interrupted; resume from the last cursor", err);
}
