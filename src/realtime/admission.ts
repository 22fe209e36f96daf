// Admission control for stream opens (Stream and Subscribe). Opening a stream
// is the expensive part of its life: subscriptions, membership, heads, a
// checkpoint and perhaps a replay, several database round trips. A burst of
// opens (one client opening thousands, or a dead node's clients all arriving
// at once) must queue here, bounded, instead of exhausting the database pool
// and starving every other call. Two limits:
//
// - at most `maxOpening` opens run at once; up to `queueMax` more wait (FIFO)
//   up to `waitMs`; beyond either, RESOURCE_EXHAUSTED with a jittered RetryInfo;
// - at most `perUserMax` streams per user on this node: the newest is refused
//   (RESOURCE_EXHAUSTED, STREAM_LIMIT), the open ones are never evicted (see
//   docs/REALTIME.md for why).

import { Counter, Gauge, type Registry } from "prom-client";
import { AppError, resourceExhausted } from "../shared/errors.ts";

export interface AdmissionSettings {
  /** Opens (subscribe, membership, heads, replay) running at once on this node. */
  maxOpening: number;
  /** Opens that may wait for a slot; one more is refused at once. */
  queueMax: number;
  /** Longest wait for a slot before the open is refused. */
  waitMs: number;
  /** Streams one user may hold open on this node. */
  perUserMax: number;
}

/** What an admitted open holds: its opening slot (until open finishes) and its place in the user's count (until it ends). */
export interface AdmissionTicket {
  /** The open phase is over (ready sent, or failed): frees the slot for the next open. Idempotent. */
  opened(): void;
  /** The stream ended: frees the user's place (and the slot, if still held). Idempotent. */
  closed(): void;
}

type Reason = "user_limit" | "queue_full" | "wait_timeout" | "intake_full";

/** RetryInfo for a refused open: 1 s plus up to 2 s of jitter, so refused clients do not return together. */
const retryAfter = () => 1_000 + Math.floor(Math.random() * 2_000);

function refused(reason: Reason, message: string, retryAfterMs: number): AppError {
  return resourceExhausted(reason === "user_limit" ? "STREAM_LIMIT" : "STREAM_OPEN_BUSY", message, retryAfterMs);
}

export class StreamAdmission {
  private readonly s: AdmissionSettings;
  private running = 0;
  private readonly waiting: { grant: () => void }[] = [];
  private readonly perUser = new Map<string, number>();
  private readonly metrics: { refused: Counter<"reason">; waiting: Gauge; opening: Gauge } | null;

  constructor(settings: AdmissionSettings, registry?: Registry) {
    this.s = settings;
    this.metrics = registry
      ? {
          refused: new Counter({
            name: "realtime_stream_opens_refused_total",
            help: "Stream/Subscribe opens refused with RESOURCE_EXHAUSTED, by reason (user_limit, queue_full, wait_timeout; intake_full: at the door, before the RPC ran)",
            labelNames: ["reason"],
            registers: [registry],
          }),
          waiting: new Gauge({ name: "realtime_stream_opens_waiting", help: "Stream opens waiting for an opening slot", registers: [registry] }),
          opening: new Gauge({
            name: "realtime_stream_opens_running",
            help: "Stream opens running (subscribe, heads, replay)",
            registers: [registry],
          }),
        }
      : null;
  }

  /** Opens that can be in their open phase at once: running plus queued. */
  get capacity(): number {
    return this.s.maxOpening + this.s.queueMax;
  }

  /** Counts a refusal made outside `admit` (the intake at the door, intake.ts). */
  countRefused(reason: Reason): void {
    this.metrics?.refused.inc({ reason });
  }

  /** Streams of this user admitted on this node and not ended. */
  streamsOf(userId: string): number {
    return this.perUser.get(userId) ?? 0;
  }

  /**
   * Admits one open for `userId`, waiting for a slot if needed. Throws
   * RESOURCE_EXHAUSTED (with RetryInfo) when the user is at the cap, the queue
   * is full or the wait runs out; an aborted `signal` (the client left) gives up quietly.
   */
  async admit(userId: string, signal: AbortSignal): Promise<AdmissionTicket> {
    const count = this.perUser.get(userId) ?? 0;
    if (count >= this.s.perUserMax) {
      this.metrics?.refused.inc({ reason: "user_limit" });
      throw refused("user_limit", `too many open streams for this user on this node (at most ${this.s.perUserMax}): close one first`, 10_000);
    }
    // Counted from now: concurrent opens of one user cannot all pass the check above.
    this.perUser.set(userId, count + 1);
    let place = true;
    const leaveUser = () => {
      if (!place) return;
      place = false;
      const n = (this.perUser.get(userId) ?? 1) - 1;
      if (n <= 0) this.perUser.delete(userId);
      else this.perUser.set(userId, n);
    };
    try {
      await this.slot(signal);
    } catch (err) {
      leaveUser();
      throw err;
    }
    let slot = true;
    const freeSlot = () => {
      if (!slot) return;
      slot = false;
      this.release();
    };
    return {
      opened: freeSlot,
      closed: () => {
        freeSlot();
        leaveUser();
      },
    };
  }

  private async slot(signal: AbortSignal): Promise<void> {
    if (this.running < this.s.maxOpening && this.waiting.length === 0) {
      this.running++;
      this.metrics?.opening.set(this.running);
      return;
    }
    if (this.waiting.length >= this.s.queueMax) {
      this.metrics?.refused.inc({ reason: "queue_full" });
      throw refused("queue_full", "too many streams opening on this node: retry after the delay given", retryAfter());
    }
    await new Promise<void>((resolve, reject) => {
      const entry = {
        grant: () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const drop = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        this.metrics?.waiting.set(this.waiting.length);
        signal.removeEventListener("abort", onAbort);
      };
      const timer = setTimeout(() => {
        drop();
        this.metrics?.refused.inc({ reason: "wait_timeout" });
        reject(refused("wait_timeout", "streams are opening slowly on this node: retry after the delay given", retryAfter()));
      }, this.s.waitMs);
      const onAbort = () => {
        clearTimeout(timer);
        drop();
        reject(new AppError("CANCELED", "the client left while its stream waited to open"));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(entry);
      this.metrics?.waiting.set(this.waiting.length);
    });
  }

  private release(): void {
    const next = this.waiting.shift();
    this.metrics?.waiting.set(this.waiting.length);
    // The slot passes straight to the next waiter (running stays the same).
    if (next) return next.grant();
    this.running--;
    this.metrics?.opening.set(this.running);
  }
}

/**
 * The upper bound of GoAway's random reconnect delay for a node holding
 * `streams`: at least `baseMs`, and long enough that the reconnects arrive at
 * about `ratePerSec` (a node with 20,000 streams at 500/s spreads them over 40 s).
 */
export function goAwayWindowMs(streams: number, baseMs: number, ratePerSec: number): number {
  return Math.max(baseMs, Math.ceil((streams / ratePerSec) * 1000));
}
