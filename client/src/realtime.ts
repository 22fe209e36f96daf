// The resilient realtime link: MessageService.Stream where the runtime can
// stream both ways, Subscribe (+ AckEvents) elsewhere, kept up across
// everything that ends a connection. The rules (docs/CLIENTS.md):
//
// - resume from the cursor of the last event the app PROCESSED (onEvent
//   returned), never the last one received;
// - reconnect with exponential backoff and full jitter; after `go_away`, after
//   exactly its `reconnect_after` (the server already spread it); after
//   UNAUTHENTICATED, at once with a refreshed token;
// - Stream: ping at ready.heartbeat_interval; refresh the access token in band
//   (`refresh_auth`) before the stream's token expires, so the stream never ends
//   for it;
// - Subscribe: before the token expires, open the next Subscribe with a fresh
//   token and the last processed cursor, drop every durable event the old one
//   delivers after that cursor (the new one replays them), switch when the new
//   one is ready: no gap, no duplicate;
// - any connection silent for three heartbeat intervals is dead (a half-open
//   TCP connection never errors by itself);
// - `resync_required`: the app reloads those conversations (onResync) before
//   the next event is handed over.

import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { durationMs, timestampMs } from "@bufbuild/protobuf/wkt";
import {
  MessageService,
  type Event,
  type SendAck,
  type StreamError,
  type StreamRequestSchema,
  type StreamResponse,
  type SubscribeResponse,
} from "../../gen/chat/v1/message_pb.js";
import { authInterceptor, type ChatTransport } from "./api.ts";
import { fullJitterMs, sleep, type BackoffOptions } from "./backoff.ts";
import { SessionEndedError, type TokenManager } from "./tokens.ts";

export type LinkState =
  /** Opening a connection. */
  | "connecting"
  /** `ready` received: events flow. */
  | "live"
  /** Waiting before the next attempt. */
  | "waiting"
  /** stop() was called. */
  | "stopped"
  /** The session ended (refresh refused): sign in again. */
  | "signed_out"
  /** The server does not offer the stream (UNIMPLEMENTED): retrying cannot help. */
  | "unavailable";

export type Frame = StreamResponse["frame"] | SubscribeResponse["frame"];
type RequestInit = MessageInitShape<typeof StreamRequestSchema>;

export interface RealtimeOptions {
  transport: ChatTransport;
  tokens: TokenManager;
  deviceId?: string;
  /** Where to resume from (the last cursor the app processed, e.g. persisted). */
  cursor?: string;
  /** Each event, in order; the cursor moves past it when this returns (or its promise resolves). */
  onEvent(event: Event): void | Promise<void>;
  /**
   * Those conversations' gap was too large to replay (or "all": the cursor was
   * refused): reload them (ListMessages) before going on. Throwing reconnects.
   */
  onResync(conversationIds: string[] | "all"): void | Promise<void>;
  onState?(state: LinkState, detail?: { error?: unknown; delayMs?: number }): void;
  /** The processed cursor moved (persist it to resume after a restart). */
  onCursor?(cursor: string): void;
  /** Stream only: answers to `send` frames. */
  onSendAck?(ack: SendAck): void;
  onFrameError?(error: StreamError): void;
  backoff?: BackoffOptions;
  random?: () => number;
  /** No frame at all for this long before `ready` counts as a dead connection. Default 20 s. */
  connectTimeoutMs?: number;
  /** Use Subscribe even where Stream works (tests, or a proxy that buffers request bodies). */
  forceSubscribe?: boolean;
}

export interface RealtimeStats {
  /** Connections that reached `ready` (the first one, reconnects and Subscribe rollovers). */
  connects: number;
  /** Connections lost to an error (or a dead-link timeout) and opened again. */
  reconnects: number;
  /** Subscribe rollovers handed over (the next Subscribe, opened with a fresh token before expiry, answered ready). */
  rollovers: number;
  /** Durable events dropped because a rollover's new Subscribe replays them. */
  overlapDropped: number;
  /** refresh_auth frames answered with auth_refreshed. */
  inBandRefreshes: number;
  goAways: number;
  ackFailures: number;
  lastError: unknown;
}

interface Conn {
  ac: AbortController;
  it: AsyncIterator<Frame>;
  token: string;
  /** Stream only: writes a frame. */
  write: ((f: RequestInit) => void) | null;
}

type Step = { ok: true; r: IteratorResult<Frame> } | { ok: false; err: unknown };
const settle = (p: Promise<IteratorResult<Frame>>): Promise<Step> =>
  p.then(
    (r) => ({ ok: true as const, r }),
    (err: unknown) => ({ ok: false as const, err }),
  );

/** Ends the run loop for good. */
class Fatal extends Error {}

export class RealtimeStream {
  private readonly o: RealtimeOptions;
  private readonly messages: Client<typeof MessageService>;
  private readonly bidi: boolean;
  private running = false;
  private loopDone: Promise<void> = Promise.resolve();
  private stopAc = new AbortController();
  private waitAc: AbortController | null = null;
  private current: Conn | null = null;
  private _cursor: string;
  private _state: LinkState = "stopped";
  /** Expiry of the token the current connection runs on (ms), from ready / auth_refreshed. */
  private expiresAt: number | null = null;
  private poke: (() => void) | null = null;
  private timers = new Set<ReturnType<typeof setTimeout>>();
  private ackDue: string | null = null;
  private ackRunning = false;
  readonly stats: RealtimeStats = {
    connects: 0,
    reconnects: 0,
    rollovers: 0,
    overlapDropped: 0,
    inBandRefreshes: 0,
    goAways: 0,
    ackFailures: 0,
    lastError: null,
  };

  constructor(o: RealtimeOptions) {
    this.o = o;
    this._cursor = o.cursor ?? "";
    this.bidi = o.transport.bidi && !o.forceSubscribe;
    this.messages = createClient(MessageService, o.transport.create([authInterceptor(o.tokens)]));
  }

  get cursor(): string {
    return this._cursor;
  }

  get state(): LinkState {
    return this._state;
  }

  /** Stream (both ways) or Subscribe. */
  get mode(): "stream" | "subscribe" {
    return this.bidi ? "stream" : "subscribe";
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopAc = new AbortController();
    this.loopDone = this.loop();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopAc.abort();
    this.current?.ac.abort();
    this.waitAc?.abort();
    this.clearTimers();
    await this.loopDone;
    this.setState("stopped");
  }

  /** Drops the current connection (if any) and connects again without waiting. */
  reconnectNow(): void {
    this.waitAc?.abort();
    this.current?.ac.abort(new ConnectError("reconnect requested", Code.Canceled));
  }

  /** Stream only: writes a frame on the live connection; false when there is none. */
  write(frame: RequestInit): boolean {
    if (this._state !== "live" || !this.current?.write) return false;
    this.current.write(frame);
    return true;
  }

  private setState(s: LinkState, detail?: { error?: unknown; delayMs?: number }): void {
    this._state = s;
    this.o.onState?.(s, detail);
  }

  // ---- the reconnect loop ---------------------------------------------------

  private async loop(): Promise<void> {
    let attempt = 0;
    while (this.running) {
      let delay: number;
      let conn: Conn | null = null;
      let wasLive = false;
      try {
        this.setState("connecting");
        const token = await this.o.tokens.accessToken();
        conn = this.open(token);
        const r = await this.run(conn, () => {
          wasLive = true;
          attempt = 0;
        });
        // The server ended the stream (OK): after go_away, when it says; else
        // soon, with jitter (it should not happen without go_away).
        delay = r.goAwayMs ?? fullJitterMs(attempt++, this.o.backoff, this.o.random);
      } catch (err) {
        if (!this.running) break;
        this.stats.lastError = err;
        if (err instanceof Fatal) break;
        if (err instanceof SessionEndedError) {
          this.running = false;
          this.setState("signed_out", { error: err });
          break;
        }
        const code = ConnectError.from(err).code;
        if (wasLive) this.stats.reconnects++;
        if (code === Code.Unimplemented) {
          this.running = false;
          this.setState("unavailable", { error: err });
          break;
        }
        delay = fullJitterMs(attempt++, this.o.backoff, this.o.random);
        if (code === Code.Unauthenticated && conn) {
          // The token ran out (or was refused): a fresh one, then at once.
          try {
            await this.o.tokens.refresh(conn.token);
            delay = 0;
          } catch (refreshErr) {
            if (refreshErr instanceof SessionEndedError) {
              this.running = false;
              this.setState("signed_out", { error: refreshErr });
              break;
            }
          }
        } else if (code === Code.InvalidArgument && this._cursor !== "" && /resume_token/.test(ConnectError.from(err).rawMessage)) {
          // The cursor was refused (not ours, not this server's): start fresh and reload everything.
          this.setCursor("");
          try {
            await this.o.onResync("all");
          } catch {
            // Reloading failed: the next ready (fresh) asks again below.
          }
          delay = 0;
        } else if (code === Code.ResourceExhausted && wasLive) {
          delay = 0; // fell behind: resume from the cursor at once
        }
      } finally {
        this.clearTimers();
        if (conn) conn.ac.abort();
        this.current = null;
      }
      if (!this.running) break;
      this.setState("waiting", { delayMs: delay });
      this.waitAc = new AbortController();
      await sleep(delay, AbortSignal.any([this.waitAc.signal, this.stopAc.signal]));
      this.waitAc = null;
    }
  }

  // ---- one connection (or a chain of Subscribe rollovers) ---------------------

  private open(token: string): Conn {
    const ac = new AbortController();
    const headers = { authorization: `Bearer ${token}` };
    const deviceId = this.o.deviceId ?? "";
    if (this.bidi) {
      const q = new FrameQueue(ac.signal);
      q.push({ frame: { case: "hello", value: { resumeToken: this._cursor, deviceId } } });
      const res = this.messages.stream(q, { headers, signal: ac.signal });
      const it = mapFrames(res)[Symbol.asyncIterator]();
      return { ac, it, token, write: (f) => q.push(f) };
    }
    const res = this.messages.subscribe({ resumeToken: this._cursor, deviceId }, { headers, signal: ac.signal });
    return { ac, it: mapFrames(res)[Symbol.asyncIterator](), token, write: null };
  }

  private async run(first: Conn, onLive: () => void): Promise<{ goAwayMs: number | null }> {
    let cur = first;
    this.current = cur;
    let curStep = settle(cur.it.next());
    /** Subscribe rollover: the next connection and its first frame. */
    let next: { conn: Conn; step: Promise<Step> } | null = null;
    let goAwayMs: number | null = null;
    let heartbeatMs = 0;
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    const arm = (ms: number, c: Conn) => {
      this.clearTimer(watchdog);
      watchdog = this.timer(ms, () => c.ac.abort(new ConnectError(`no frame for ${ms} ms`, Code.Unavailable)));
    };
    arm(this.o.connectTimeoutMs ?? 20_000, cur);
    let ping: ReturnType<typeof setInterval> | undefined;
    let refreshTimer: ReturnType<typeof setTimeout> | undefined;
    let refreshPending = false;
    let rolloverToken: string | null = null;

    const scheduleRenewal = () => {
      this.clearTimer(refreshTimer);
      if (this.expiresAt === null) return;
      const lifetime = this.expiresAt - Date.now();
      // Half of what is left, at most 60 s, before expiry (short tokens: room for a slow round trip).
      const at = this.expiresAt - Math.min(60_000, Math.max(0, lifetime) / 2);
      refreshTimer = this.timer(Math.max(0, at - Date.now()), () => void renew());
    };
    const freshToken = async (): Promise<string> => {
      const t = this.o.tokens.current;
      // Already renewed by someone else (and for longer than this connection): use it.
      if (t && t.accessToken !== cur.token && this.expiresAt !== null && t.accessTokenExpiresAt > this.expiresAt) return t.accessToken;
      return (await this.o.tokens.refresh(cur.token)).accessToken;
    };
    const renew = async () => {
      if (!this.running || next || refreshPending) return;
      let token: string;
      try {
        token = await freshToken();
      } catch (err) {
        if (err instanceof SessionEndedError) {
          cur.ac.abort(err);
          return;
        }
        // Offline or server trouble: try again shortly (before expiry, the stream still works).
        this.stats.lastError = err;
        refreshTimer = this.timer(1_000, () => void renew());
        return;
      }
      if (!this.running || this.current !== cur) return;
      if (cur.write) {
        refreshPending = true;
        cur.token = token;
        cur.write({ frame: { case: "refreshAuth", value: { accessToken: token } } });
      } else {
        // Subscribe: the loop opens the next one between two events (never while one is being processed).
        rolloverToken = token;
        this.poke?.();
      }
    };

    try {
      for (;;) {
        if (rolloverToken !== null && !next) {
          // The next Subscribe, from the last processed cursor; from now on the old one's
          // durable events are dropped (the new one replays them after that cursor).
          const conn = this.open(rolloverToken);
          rolloverToken = null;
          next = { conn, step: settle(conn.it.next()) };
          arm(this.o.connectTimeoutMs ?? 20_000, conn);
        }
        const wake = new Promise<"poke">((r) => (this.poke = () => r("poke")));
        const winner = await Promise.race([
          curStep.then((s) => ({ src: "cur" as const, s })),
          ...(next ? [next.step.then((s) => ({ src: "next" as const, s }))] : []),
          wake,
        ]);
        this.poke = null;
        if (winner === "poke") continue;
        if (winner.src === "next") {
          // The new Subscribe answered: it must be ready; then it replaces the old one.
          const n = next!;
          next = null;
          if (!winner.s.ok) throw winner.s.err;
          if (winner.s.r.done || winner.s.r.value.case !== "ready")
            throw new ConnectError("rollover: the new Subscribe did not start with ready", Code.Unavailable);
          cur.ac.abort();
          cur = n.conn;
          this.current = cur;
          curStep = settle(cur.it.next());
          // Counted with the connect its ready counts (same tick), so connects = rollovers + 1 holds
          // whenever the stats are read, also while a next Subscribe is still opening.
          this.stats.rollovers++;
          await this.handle(winner.s.r.value, { onLive, setHeartbeat: (ms) => (heartbeatMs = ms), scheduleRenewal, frozen: false });
          arm(heartbeatMs * 3 + 2_000, cur);
          continue;
        }
        const s = winner.s;
        if (next) {
          // Handing over: the old connection ending (expiry, go_away) no longer matters.
          if (!s.ok || s.r.done) {
            curStep = new Promise(() => {});
            continue;
          }
        }
        if (!s.ok) throw s.err;
        if (s.r.done) return { goAwayMs };
        curStep = settle(cur.it.next());
        const f = s.r.value;
        if (heartbeatMs > 0) arm(heartbeatMs * 3 + 2_000, cur);
        if (f.case === "goAway") {
          this.stats.goAways++;
          goAwayMs = f.value.reconnectAfter ? durationMs(f.value.reconnectAfter) : 0;
          continue;
        }
        if (f.case === "authRefreshed") {
          refreshPending = false;
          this.stats.inBandRefreshes++;
          this.expiresAt = f.value.expiresAt ? timestampMs(f.value.expiresAt) : null;
          scheduleRenewal();
          continue;
        }
        if (f.case === "error" && refreshPending && f.value.clientMessageId === "") {
          // Most likely the refresh_auth refused: try again (the stream ends at expiry otherwise, and we reconnect).
          refreshPending = false;
          refreshTimer = this.timer(1_000, () => void renew());
        }
        await this.handle(f, {
          onLive,
          setHeartbeat: (ms) => {
            heartbeatMs = ms;
            arm(ms * 3 + 2_000, cur);
            if (cur.write && ms > 0) {
              clearInterval(ping);
              const c = cur;
              ping = setInterval(() => c.write?.({ frame: { case: "ping", value: { nonce: "" } } }), ms);
            }
          },
          scheduleRenewal,
          frozen: next !== null,
        });
      }
    } finally {
      this.poke = null;
      clearInterval(ping);
      this.clearTimer(watchdog);
      this.clearTimer(refreshTimer);
      cur.ac.abort();
      if (next) (next as { conn: Conn }).conn.ac.abort();
    }
  }

  private async handle(
    f: Frame,
    h: { onLive: () => void; setHeartbeat: (ms: number) => void; scheduleRenewal: () => void; frozen: boolean },
  ): Promise<void> {
    switch (f.case) {
      case "ready": {
        // Fresh start: ready's token is the position "live from now".
        if (this._cursor === "") this.setCursor(f.value.resumeToken);
        this.expiresAt = f.value.accessTokenExpiresAt ? timestampMs(f.value.accessTokenExpiresAt) : null;
        this.stats.connects++;
        h.onLive();
        h.setHeartbeat(f.value.heartbeatInterval ? durationMs(f.value.heartbeatInterval) : 15_000);
        h.scheduleRenewal();
        this.setState("live");
        return;
      }
      case "resyncRequired":
        if (h.frozen) return;
        await this.o.onResync(f.value.conversationIds);
        return;
      case "event": {
        const e = f.value;
        if (e.cursor !== "" && h.frozen) {
          this.stats.overlapDropped++;
          return;
        }
        await this.o.onEvent(e);
        if (e.cursor !== "") {
          this.setCursor(e.cursor);
          this.ack(e.cursor);
        }
        return;
      }
      case "sendAck":
        this.o.onSendAck?.(f.value);
        return;
      case "error":
        this.o.onFrameError?.(f.value);
        return;
      default:
        return; // pong, heartbeat: only keep the watchdog quiet
    }
  }

  private setCursor(c: string): void {
    this._cursor = c;
    this.o.onCursor?.(c);
  }

  // ---- delivery acks ----------------------------------------------------------

  /** Acks the newest processed cursor: a frame on Stream, AckEvents (one at a time, newest wins) on Subscribe. */
  private ack(cursor: string): void {
    const c = this.current;
    if (c?.write) {
      this.ackDue = cursor;
      if (this.ackRunning) return;
      this.ackRunning = true;
      queueMicrotask(() => {
        this.ackRunning = false;
        const due = this.ackDue;
        this.ackDue = null;
        if (due && this.current?.write) this.current.write({ frame: { case: "ack", value: { cursor: due } } });
      });
      return;
    }
    this.ackDue = cursor;
    if (this.ackRunning) return;
    this.ackRunning = true;
    void (async () => {
      try {
        while (this.ackDue !== null && this.running) {
          const due = this.ackDue;
          this.ackDue = null;
          try {
            await this.messages.ackEvents({ cursor: due });
          } catch (err) {
            // Delivery receipts only: the next ack carries the position further.
            this.stats.ackFailures++;
            this.stats.lastError = err;
          }
        }
      } finally {
        this.ackRunning = false;
      }
    })();
  }

  // ---- timers -------------------------------------------------------------------

  private timer(ms: number, f: () => void): ReturnType<typeof setTimeout> {
    const t = setTimeout(() => {
      this.timers.delete(t);
      f();
    }, ms);
    this.timers.add(t);
    return t;
  }

  private clearTimer(t: ReturnType<typeof setTimeout> | undefined): void {
    if (t === undefined) return;
    clearTimeout(t);
    this.timers.delete(t);
  }

  private clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

async function* mapFrames(res: AsyncIterable<StreamResponse | SubscribeResponse>): AsyncGenerator<Frame> {
  for await (const r of res) yield r.frame;
}

/** The request side of a Stream: frames pushed by the SDK, ended when the call is aborted. */
class FrameQueue implements AsyncIterable<RequestInit> {
  private readonly items: RequestInit[] = [];
  private wake: (() => void) | null = null;
  private done = false;

  constructor(signal: AbortSignal) {
    signal.addEventListener(
      "abort",
      () => {
        this.done = true;
        this.wake?.();
      },
      { once: true },
    );
  }

  push(f: RequestInit): void {
    if (this.done) return;
    this.items.push(f);
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<RequestInit> {
    for (;;) {
      while (this.items.length > 0) yield this.items.shift()!;
      if (this.done) return;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = null;
    }
  }
}
