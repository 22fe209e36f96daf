// WatchPresence's link (the chat events go through the SDK's RealtimeStream,
// client/src/realtime.ts). A server stream that stays up: reconnects with jittered exponential backoff
// after errors, at once when the browser comes back online or the transport
// changes, refreshes the access token on UNAUTHENTICATED, and treats a stream
// that stays silent past a few heartbeats as dead (a half-open connection
// never errors by itself). What to resume from is the owner's business: open()
// is called anew for every connection.

import { Code, ConnectError } from "@connectrpc/connect";
import { SessionEndedError, type Api } from "./api.ts";
import { fullJitterMs } from "../../client/src/web.ts";

export type LinkState = "connecting" | "live" | "reconnecting" | "offline" | "stopped" | "unavailable";

export interface StreamControl {
  /** The stream is established (e.g. `ready` arrived): reset the backoff. */
  connected(): void;
  /** Expect a frame at least this often; silence for about three times as long reconnects. */
  expectHeartbeat(ms: number): void;
  /** Reconnect after this delay (the server asked, e.g. before shutting down). */
  reconnectAfter(ms: number): void;
}

export interface ResilientStreamOptions<T> {
  api: Api;
  open(signal: AbortSignal): AsyncIterable<T>;
  onMessage(msg: T, ctl: StreamControl): void | Promise<void>;
  onState?(state: LinkState): void;
  /** Watchdog before the first expectHeartbeat(). */
  heartbeatMs?: number;
}

const MAX_BACKOFF_MS = 15_000;
const OFFLINE_RETRY_MS = 30_000;

/** The SDK's reconnect delay: full jitter, 500 ms doubling up to 15 s. */
export function backoffMs(attempt: number, random = Math.random()): number {
  return fullJitterMs(attempt, { baseMs: 500, maxMs: MAX_BACKOFF_MS }, () => random);
}

export class ResilientStream<T> {
  private readonly opts: ResilientStreamOptions<T>;
  private running = false;
  private current: AbortController | null = null;
  private wake: (() => void) | null = null;
  private skipWait = false;
  private readonly onOnline = () => this.reconnectNow();
  // The network is gone: the connection is dead even if no error says so yet
  // (and a half-open one might never say). Drop it; resume when back online.
  private readonly onOffline = () => {
    this.current?.abort();
    this.opts.onState?.("offline");
  };
  private unsubscribeTransport: (() => void) | null = null;

  constructor(opts: ResilientStreamOptions<T>) {
    this.opts = opts;
  }

  get isRunning(): boolean {
    return this.running;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
    this.unsubscribeTransport = this.opts.api.onTransportChange(() => this.reconnectNow());
    void this.loop();
  }

  stop(): void {
    this.running = false;
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    this.unsubscribeTransport?.();
    this.current?.abort();
    this.wake?.();
    this.opts.onState?.("stopped");
  }

  /** Drops the current connection (if any) and connects again without waiting. */
  reconnectNow(): void {
    this.skipWait = true;
    this.current?.abort();
    this.wake?.();
  }

  private async loop(): Promise<void> {
    let attempt = 0;
    let everConnected = false;
    while (this.running) {
      if (!navigator.onLine) {
        // navigator.onLine false is reliable (true is not): wait for the online event, or try now and then.
        this.opts.onState?.("offline");
        await this.sleep(OFFLINE_RETRY_MS);
        if (!this.running) break;
      }
      const ac = new AbortController();
      this.current = ac;
      this.skipWait = false;
      let heartbeatMs = this.opts.heartbeatMs ?? 30_000;
      let watchdog: ReturnType<typeof setTimeout> | undefined;
      const arm = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => ac.abort(), heartbeatMs * 3 + 2_000);
      };
      let delayMs: number | null = null;
      const ctl: StreamControl = {
        connected: () => {
          attempt = 0;
          everConnected = true;
          this.opts.onState?.("live");
        },
        expectHeartbeat: (ms) => {
          if (ms > 0) heartbeatMs = ms;
          arm();
        },
        reconnectAfter: (ms) => {
          delayMs = ms;
          ac.abort();
        },
      };
      const token = this.opts.api.accessToken();
      this.opts.onState?.(everConnected ? "reconnecting" : "connecting");
      try {
        arm();
        for await (const msg of this.opts.open(ac.signal)) {
          arm();
          await this.opts.onMessage(msg, ctl);
        }
        delayMs ??= 0; // the server ended the stream: resume at once
      } catch (err) {
        if (!this.running || err instanceof SessionEndedError) break;
        const code = ConnectError.from(err).code;
        if (code === Code.Unimplemented) {
          // This server does not offer the stream at all: retrying cannot help.
          this.stop();
          this.opts.onState?.("unavailable");
          break;
        }
        if (code === Code.Unauthenticated) {
          try {
            await this.opts.api.refresh(token);
            delayMs ??= 0;
          } catch (refreshErr) {
            if (refreshErr instanceof SessionEndedError) break;
          }
        } else if (code === Code.ResourceExhausted) {
          delayMs ??= 0; // fell behind: the server closed it; resume from the cursor
        }
      } finally {
        clearTimeout(watchdog);
        this.current = null;
      }
      if (!this.running) break;
      this.opts.onState?.(navigator.onLine ? "reconnecting" : "offline");
      const wait = this.skipWait ? 0 : (delayMs ?? backoffMs(attempt++));
      this.skipWait = false;
      await this.sleep(wait);
    }
  }

  private sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }
}
