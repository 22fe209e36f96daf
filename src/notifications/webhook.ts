import { createHmac, timingSafeEqual } from "node:crypto";
import type { Logger } from "pino";
import type { PushedNotification, PushSender } from "./types.ts";

export interface WebhookOptions {
  url: string;
  secret: string;
  maxAttempts: number;
  backoffMs: number;
  /** Deliveries waiting or running; beyond it new ones are dropped (logged and counted as "dropped"). */
  maxQueued?: number;
  concurrency?: number;
  timeoutMs?: number;
  /**
   * Called once per notification with how its push ended (the module counts
   * these in `notification_push_total{outcome}`). The notification itself stays
   * listed whatever the outcome; a push that did not arrive is never silent.
   */
  onOutcome?: (outcome: PushOutcome) => void;
}

export type PushOutcome = "delivered" | "refused" | "gave_up" | "dropped";

/** The signature a receiver checks: HMAC-SHA256 over "<timestamp>.<body>" with the shared secret. */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

/**
 * What a receiver does with a delivery (docs/NOTIFICATIONS.md): true only when
 * `signature` is ours for this timestamp and body under `secret` (compared in
 * constant time) and the timestamp is within `toleranceSec` of `nowMs`, so a
 * captured delivery cannot be replayed later.
 */
export function verifyWebhook(
  secret: string,
  delivery: { timestamp: string; body: string; signature: string },
  opts: { toleranceSec?: number; nowMs?: number } = {},
): boolean {
  const ts = Number(delivery.timestamp);
  if (!/^\d+$/.test(delivery.timestamp) || Math.abs((opts.nowMs ?? Date.now()) / 1000 - ts) > (opts.toleranceSec ?? 300)) return false;
  const expected = Buffer.from(signWebhook(secret, delivery.timestamp, delivery.body));
  const given = Buffer.from(delivery.signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Push through a webhook, so operators can put an APNs/FCM gateway behind it.
 * Each delivery is a JSON POST signed with HMAC (x-chat-signature over
 * x-chat-timestamp and the body; x-chat-delivery is the notification id for
 * de-duplication). Network errors, 408, 429 and 5xx are retried with
 * exponential backoff and jitter, up to maxAttempts; other answers are final.
 * The queue is bounded, so a dead receiver cannot grow memory without limit.
 */
export class WebhookPushSender implements PushSender {
  private readonly opts: Required<WebhookOptions>;
  private readonly logger: Logger;
  private readonly queue: PushedNotification[] = [];
  private running = 0;
  private stopped = false;

  constructor(opts: WebhookOptions, logger: Logger) {
    this.opts = { maxQueued: 10_000, concurrency: 4, timeoutMs: 5_000, onOutcome: () => {}, ...opts };
    this.logger = logger;
  }

  async send(n: PushedNotification): Promise<void> {
    if (this.stopped) return;
    if (this.queue.length + this.running >= this.opts.maxQueued) {
      this.logger.warn({ notification: n.id }, "webhook queue full: notification not pushed");
      this.opts.onOutcome("dropped");
      return;
    }
    this.queue.push(n);
    this.pump();
  }

  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
  }

  private pump(): void {
    while (this.running < this.opts.concurrency && this.queue.length > 0) {
      const n = this.queue.shift()!;
      this.running++;
      this.deliver(n)
        .then((outcome) => this.opts.onOutcome(outcome))
        .catch((err) => {
          this.logger.warn({ err, notification: n.id }, "webhook delivery failed");
          this.opts.onOutcome("gave_up");
        })
        .finally(() => {
          this.running--;
          this.pump();
        });
    }
  }

  private async deliver(n: PushedNotification): Promise<PushOutcome> {
    const body = JSON.stringify({
      id: n.id,
      type: n.type,
      userId: n.userId,
      workspaceId: n.workspaceId,
      conversationId: n.conversationId,
      messageIds: n.messageIds,
      messageCount: n.messageCount,
      senderIds: n.senderIds,
      preview: n.preview,
      lastSeq: n.lastSeq,
      createdAt: n.createdAt.toISOString(),
      batchedAt: n.batchedAt?.toISOString() ?? null,
    });
    for (let attempt = 1; attempt <= this.opts.maxAttempts && !this.stopped; attempt++) {
      const timestamp = String(Math.floor(Date.now() / 1000));
      let retry: boolean;
      try {
        const res = await fetch(this.opts.url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "x-chat-delivery": n.id,
            "x-chat-attempt": String(attempt),
            "x-chat-timestamp": timestamp,
            "x-chat-signature": signWebhook(this.opts.secret, timestamp, body),
          },
          body,
          signal: AbortSignal.timeout(this.opts.timeoutMs),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return "delivered";
        retry = res.status === 408 || res.status === 429 || res.status >= 500;
        if (!retry) {
          this.logger.warn({ notification: n.id, status: res.status }, "webhook refused the notification");
          return "refused";
        }
      } catch {
        retry = true;
      }
      if (attempt < this.opts.maxAttempts) {
        const delay = this.opts.backoffMs * 2 ** (attempt - 1);
        await new Promise((r) => setTimeout(r, delay / 2 + Math.random() * (delay / 2)));
      }
    }
    this.logger.warn({ notification: n.id, attempts: this.opts.maxAttempts }, "webhook gave up");
    return "gave_up";
  }
}
