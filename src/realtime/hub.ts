// The per-node hub: which local streams need which conversation, one
// ephemeral-store subscription per needed channel (refcounted), decoding each
// published event once and handing it to every local stream that follows the
// conversation. A 10,000-member channel is one publish; each node receives it
// once and fans out in process.
//
// Also: the node-wide timer (token expiry, silent streams, Subscribe
// heartbeats), closing revoked sessions' streams, typing, delivery acks, and
// GoAway at shutdown.

import type { Logger } from "pino";
import { Counter, Gauge, type Registry } from "prom-client";
import type { EphemeralStore } from "../stores/ephemeral/ephemeral.ts";
import type { EventSink } from "../events/events.ts";
import { SessionRevocations } from "../auth/revocations.ts";
import { invalidArgument, unauthenticated, unavailable } from "../shared/errors.ts";
import { create } from "@bufbuild/protobuf";
import { TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { Event } from "../../gen/chat/v1/message_pb.js";
import type { CursorValue } from "./cursor.ts";
import type { Checkpoint, EventLog } from "./event-log.ts";
import type { EventMaterializer } from "./materialize.ts";
import type { MemberDirectory, StreamHooks } from "./ports.ts";
import { StreamSession, type SessionDeps, type SessionHost, type SessionSettings } from "./session.ts";
import { conversationChannel, decodeEventEnvelope, decodeMembershipChange, encodeEventEnvelope, userChannel } from "./envelope.ts";

interface Channel {
  /** The one copy of the name every session's channel set refers to. */
  name: string;
  sessions: Set<StreamSession>;
  ready: Promise<void>;
  unsubscribe: (() => Promise<void>) | null;
  /** Pending release after the last stream left (avoids churn on reconnects). */
  linger: NodeJS.Timeout | null;
  /** Conversation channels: highest event_seq received here (or filled), and a head seen ahead of it at the last check. */
  seen: number;
  suspect: number | null;
}

export interface HubDeps {
  ephemeral: EphemeralStore;
  log: EventLog;
  materializer: EventMaterializer;
  directory: MemberDirectory;
  /** Where delivery receipts from acks are announced (the realtime sink itself). */
  events: EventSink;
  settings: SessionSettings;
  /** Period of the head check (a lost publication reaches the streams within about two); 0: off. */
  headCheckMs: number;
  hooks: StreamHooks;
  logger: Logger;
  registry?: Registry;
}

const CHANNEL_LINGER_MS = 5_000;
const CHECKPOINT_CACHE = 10_000;
/** Streams with no client frame for this many heartbeat intervals are closed. */
const SILENT_INTERVALS = 3;

export class RealtimeHub implements SessionHost {
  private readonly d: HubDeps;
  private readonly sessionDeps: SessionDeps;
  private readonly channels = new Map<string, Channel>();
  private readonly sessions = new Set<StreamSession>();
  /** Sessions whose transport has not finished yet (GoAway waits for these). */
  private readonly running = new Set<StreamSession>();
  private readonly bySessionId = new Map<string, Set<StreamSession>>();
  /** Checkpoints never change once written: a plain bounded cache. */
  private readonly checkpoints = new Map<string, Checkpoint>();
  private timer: NodeJS.Timeout | null = null;
  private headTimer: NodeJS.Timeout | null = null;
  private checking: Promise<number> | null = null;
  private stopRevocations: (() => Promise<void>) | null = null;
  private readonly metrics: {
    streams: Gauge<"kind">;
    cutoffs: Counter<"reason">;
    delivered: Counter;
    filled: Counter;
    checkFailures: Counter;
  } | null;

  constructor(deps: HubDeps) {
    this.d = deps;
    this.sessionDeps = { host: this, log: deps.log, materializer: deps.materializer, directory: deps.directory, settings: deps.settings };
    const registers = deps.registry ? [deps.registry] : [];
    this.metrics = deps.registry
      ? {
          streams: new Gauge({ name: "realtime_streams", help: "Open Stream/Subscribe calls on this node", labelNames: ["kind"], registers }),
          cutoffs: new Counter({
            name: "realtime_stream_closed_total",
            help: "Streams closed by the server, by reason",
            labelNames: ["reason"],
            registers,
          }),
          delivered: new Counter({ name: "realtime_events_received_total", help: "Events received from the fan-out channel", registers }),
          filled: new Counter({
            name: "realtime_head_check_fills_total",
            help: "Conversations whose logged events never arrived by pub/sub (lost or unpublished) and were filled from the log",
            registers,
          }),
          checkFailures: new Counter({ name: "realtime_head_check_failures_total", help: "Head checks that could not read the log", registers }),
        }
      : null;
  }

  async start(): Promise<void> {
    this.stopRevocations = await SessionRevocations.subscribe(this.d.ephemeral, (m) => {
      for (const id of m.sessionIds) {
        for (const s of this.bySessionId.get(id) ?? [])
          this.closeSession(s, unauthenticated("SESSION_REVOKED", `session ended (${m.reason})`, { cause: m.reason }), "revoked");
      }
    });
    const hb = this.d.settings.heartbeatIntervalMs;
    this.timer = setInterval(() => this.tick(), Math.max(50, Math.min(1000, Math.floor(hb / 4))));
    this.timer.unref();
    if (this.d.headCheckMs > 0) {
      this.headTimer = setInterval(() => void this.checkHeads(), this.d.headCheckMs);
      this.headTimer.unref();
    }
  }

  /**
   * The head check: one query for the heads of every conversation this node
   * follows. A head that was already ahead of what arrived here at the
   * previous check (so not merely in flight) means a publication was lost
   * (a node died after its commit, a PUBLISH failed, pub/sub dropped it):
   * every local stream of that conversation catches up from the log. This is
   * what repairs a lost event with nothing after it. Returns how many
   * conversations were filled.
   */
  checkHeads(): Promise<number> {
    this.checking ??= (async () => {
      const channels = new Map<string, Channel>();
      for (const ch of this.channels.values()) {
        if (ch.sessions.size > 0 && ch.name.startsWith("ev:{")) channels.set(ch.name.slice(4, -1), ch);
      }
      if (channels.size === 0) return 0;
      let filled = 0;
      try {
        const heads = await this.d.log.heads([...channels.keys()]);
        for (const [c, ch] of channels) {
          const head = heads.get(c) ?? 0;
          if (head <= ch.seen) {
            ch.suspect = null;
          } else if (ch.suspect !== null && ch.seen < ch.suspect) {
            ch.seen = head;
            ch.suspect = null;
            filled++;
            for (const s of ch.sessions) s.offerHead(c, head);
          } else {
            ch.suspect = head;
          }
        }
      } catch (err) {
        this.metrics?.checkFailures.inc();
        this.d.logger.warn({ err }, "realtime head check failed");
      }
      if (filled > 0) this.metrics?.filled.inc(filled);
      return filled;
    })().finally(() => (this.checking = null));
    return this.checking;
  }

  /** Streams currently open on this node. */
  get size(): number {
    return this.sessions.size;
  }

  createSession(info: {
    userId: string;
    sessionId: string;
    deviceId: string;
    kind: "stream" | "subscribe";
    expiresAtMs: number | null;
  }): StreamSession {
    const s = new StreamSession(this.sessionDeps, info);
    this.sessions.add(s);
    this.running.add(s);
    let set = this.bySessionId.get(s.sessionId);
    if (!set) this.bySessionId.set(s.sessionId, (set = new Set()));
    set.add(s);
    this.metrics?.streams.inc({ kind: s.kind });
    this.d.hooks.opened(s);
    return s;
  }

  /** Client activity: keeps the stream alive and feeds presence. */
  touched(s: StreamSession): void {
    s.lastClientFrameAt = Date.now();
    this.d.hooks.heartbeat(s);
  }

  // ---- SessionHost --------------------------------------------------------------

  async watchUser(s: StreamSession): Promise<void> {
    await this.join(userChannel(s.userId), s);
  }

  async watch(s: StreamSession, conversationIds: string[]): Promise<void> {
    await Promise.all(conversationIds.map((c) => this.join(conversationChannel(c), s)));
  }

  unwatch(s: StreamSession, conversationId: string): void {
    this.leave(conversationChannel(conversationId), s);
  }

  detach(s: StreamSession): void {
    if (!this.sessions.delete(s)) return;
    const set = this.bySessionId.get(s.sessionId);
    set?.delete(s);
    if (set?.size === 0) this.bySessionId.delete(s.sessionId);
    for (const name of [...s.channels]) this.leave(name, s);
    this.metrics?.streams.dec({ kind: s.kind });
    this.d.hooks.closed(s);
  }

  finished(s: StreamSession): void {
    this.running.delete(s);
  }

  async checkpoint(id: string): Promise<Checkpoint | null> {
    const hit = this.checkpoints.get(id);
    if (hit) return hit;
    const cp = await this.d.log.getCheckpoint(id);
    if (cp) {
      if (this.checkpoints.size >= CHECKPOINT_CACHE) this.checkpoints.delete(this.checkpoints.keys().next().value!);
      this.checkpoints.set(id, cp);
    }
    return cp;
  }

  // ---- channels -----------------------------------------------------------------

  private async join(name: string, s: StreamSession): Promise<void> {
    let ch = this.channels.get(name);
    if (!ch) {
      const created: Channel = { name, sessions: new Set(), ready: Promise.resolve(), unsubscribe: null, linger: null, seen: 0, suspect: null };
      created.ready = this.d.ephemeral
        .subscribe(name, (bytes) => this.dispatch(name, created, bytes))
        .then((unsubscribe) => {
          created.unsubscribe = unsubscribe;
        })
        .catch((err: unknown) => {
          if (this.channels.get(name) === created) this.channels.delete(name);
          throw unavailable("STORE_UNAVAILABLE", "event fan-out unavailable", err, undefined, { store: "fanout" });
        });
      this.channels.set(name, (ch = created));
    }
    if (ch.linger) {
      clearTimeout(ch.linger);
      ch.linger = null;
    }
    ch.sessions.add(s);
    s.channels.add(ch.name);
    await ch.ready;
  }

  private leave(name: string, s: StreamSession): void {
    s.channels.delete(name);
    const ch = this.channels.get(name);
    if (!ch?.sessions.delete(s) || ch.sessions.size > 0 || ch.linger) return;
    ch.linger = setTimeout(() => {
      ch.linger = null;
      if (ch.sessions.size > 0 || this.channels.get(name) !== ch) return;
      this.channels.delete(name);
      void ch.ready.then(() => ch.unsubscribe?.()).catch(() => {});
    }, CHANNEL_LINGER_MS);
    ch.linger.unref();
  }

  private dispatch(name: string, ch: Channel, bytes: Uint8Array): void {
    if (ch.sessions.size === 0) return;
    if (name.startsWith("user:{")) {
      // The user's own ephemeral events (notifications), or a membership change (JSON).
      const env = bytes[0] === 2 ? decodeEventEnvelope(bytes) : null;
      if (env) {
        for (const s of ch.sessions) s.offerEphemeral(env.event.conversationId, env.event);
        return;
      }
      const m = decodeMembershipChange(bytes);
      if (!m) return;
      for (const s of ch.sessions) s.offerMembership(m.conversationId, m.eventSeq, m.joined);
      return;
    }
    const env = decodeEventEnvelope(bytes);
    if (!env) return;
    this.metrics?.delivered.inc();
    const c = env.event.conversationId;
    if (env.durable && env.eventSeq > ch.seen) ch.seen = env.eventSeq;
    if (env.durable) for (const s of ch.sessions) s.offerEvent(c, env.eventSeq, env.event);
    else for (const s of ch.sessions) s.offerEphemeral(c, env.event);
  }

  // ---- typing, acks ---------------------------------------------------------------

  /**
   * Typing is ephemeral: not logged, no cursor, only to streams open right now.
   * `version` (µs since the epoch, when the server received the state) is the
   * event's occurred_at: the newest one wins, on every stream (see session.ts).
   */
  async publishTyping(conversationId: string, userId: string, typing: boolean, version: number): Promise<void> {
    // Typing is best effort: without the workspace id it still goes out (and says so in the log).
    await this.d.materializer
      .warm([conversationId])
      .catch((err) => this.d.logger.warn({ err, conversationId }, "reading the conversation's workspace failed"));
    const event: Event = {
      $typeName: "chat.v1.Event",
      cursor: "",
      conversationId,
      workspaceId: this.d.materializer.workspaceOf(conversationId),
      occurredAt: timestampFromMicros(version),
      payload: { case: "typingUpdated", value: { $typeName: "chat.v1.TypingUpdated", userId, typing } },
    };
    await this.d.ephemeral.publish(conversationChannel(conversationId), encodeEventEnvelope(false, 0, event));
  }

  /**
   * Delivery receipts: everything up to the cursor was processed by the
   * client, so its delivery watermark moves up to the last message announced
   * by then, and receipt_updated tells the others. `seen` (per stream) skips
   * conversations whose position did not change since the previous ack.
   */
  async acknowledge(userId: string, cursor: CursorValue, field: string, seen?: Map<string, number>): Promise<void> {
    const cp = await this.checkpoint(cursor.checkpointId);
    if (!cp) return; // expired with the retention period: nothing left to mark
    if (cp.userId !== userId) throw invalidArgument(field, "is not a cursor of this user", "CURSOR_INVALID");
    const positions = new Map<string, number>();
    cp.conversationIds.forEach((c, i) => positions.set(c, cp.seqs[i]));
    for (const [index, seq] of cursor.delta) {
      if (index >= cp.conversationIds.length) throw invalidArgument(field, "is not a cursor issued by this server", "CURSOR_INVALID");
      positions.set(cp.conversationIds[index], seq);
    }
    if (seen) for (const [c, seq] of positions) if (seen.get(c) === seq) positions.delete(c);
    if (positions.size === 0) return;
    const messageSeqs = await this.d.log.messageSeqsAt(positions);
    const conversationIds = [...messageSeqs.keys()];
    await this.d.events.track(
      conversationIds,
      () => this.d.directory.markDelivered(userId, messageSeqs),
      (r) => r.events,
    );
    if (seen) for (const [c, seq] of positions) seen.set(c, seq);
  }

  // ---- timers, revocation, shutdown -------------------------------------------------

  private tick(): void {
    const now = Date.now();
    const hb = this.d.settings.heartbeatIntervalMs;
    for (const s of this.sessions) {
      if (s.expiresAtMs !== null && now >= s.expiresAtMs) {
        this.closeSession(s, unauthenticated("TOKEN_EXPIRED", "access token expired: refresh it and resume from the last cursor"), "token_expired");
      } else if (s.kind === "stream" && now - s.lastClientFrameAt > SILENT_INTERVALS * hb) {
        this.closeSession(s, unavailable("STREAM_SILENT", `no frame from the client for ${SILENT_INTERVALS} heartbeat intervals`), "silent");
      } else if (s.kind === "subscribe" && now - s.lastHeartbeatAt >= hb) {
        s.lastHeartbeatAt = now;
        s.enqueue({ case: "heartbeat", value: { $typeName: "chat.v1.Heartbeat" } }, true);
      }
    }
  }

  closeSession(s: StreamSession, error: Parameters<StreamSession["close"]>[0], reason: string): void {
    if (!s.isOpen) return;
    this.metrics?.cutoffs.inc({ reason });
    s.close(error);
  }

  /** Counts a stream cut off for falling behind (called by the handler's hard cut). */
  countCutoff(): void {
    this.metrics?.cutoffs.inc({ reason: "fell_behind" });
  }

  /**
   * Shutdown, step one: every stream gets GoAway (reconnect after a random
   * delay up to `reconnectAfterMs`, so clients do not all arrive at once) and
   * ends; resolves when they are gone or after `waitMs`.
   */
  async goAway(reason: string, reconnectAfterMs: number, waitMs: number): Promise<void> {
    const open = [...this.sessions];
    for (const s of open) s.goAway(reason, Math.floor(Math.random() * (reconnectAfterMs + 1)));
    const deadline = Date.now() + waitMs;
    while (this.running.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.headTimer) clearInterval(this.headTimer);
    this.timer = null;
    this.headTimer = null;
    await this.checking;
    for (const s of [...this.sessions]) s.close(unavailable("SERVER_STOPPING", "server stopping"));
    await this.stopRevocations?.().catch(() => {});
    for (const ch of this.channels.values()) if (ch.linger) clearTimeout(ch.linger);
    await Promise.allSettled([...this.channels.values()].map((ch) => ch.ready.then(() => ch.unsubscribe?.())));
    this.channels.clear();
  }
}

/** A Timestamp from microseconds since the epoch (exact: typing versions compare by it). */
function timestampFromMicros(us: number): Timestamp {
  const seconds = Math.floor(us / 1_000_000);
  return create(TimestampSchema, { seconds: BigInt(seconds), nanos: Math.round(us - seconds * 1_000_000) * 1000 });
}
