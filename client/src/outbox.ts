// The outbox: sends are queued (also while offline) and sent one at a time in
// order; a send that fails for a transient reason (offline, server restarting,
// overloaded) is retried with the SAME client_message_id, so the server's
// idempotency turns every retry into the original message, never a second one.
// Each send resolves (the stored message) or rejects (a final error such as
// INVALID_ARGUMENT or PERMISSION_DENIED) exactly once.

import type { Client } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ChatMessage, MessageService, SendMessageRequestSchema } from "../../gen/chat/v1/message_pb.js";
import { fullJitterMs, sleep, type BackoffOptions } from "./backoff.ts";
import { isTransient } from "./tokens.ts";
import { uuid } from "./uuid.ts";

export type SendInput = Omit<MessageInitShape<typeof SendMessageRequestSchema>, "$typeName" | "clientMessageId"> & {
  conversationId: string;
  clientMessageId?: string;
};

export interface PendingSend {
  clientMessageId: string;
  conversationId: string;
  content: string;
  /** Attempts made so far. */
  attempts: number;
  lastError: unknown;
}

interface Entry extends PendingSend {
  req: SendInput & { clientMessageId: string };
  resolve(m: ChatMessage): void;
  reject(e: unknown): void;
}

export interface OutboxOptions {
  messages: Client<typeof MessageService>;
  backoff?: BackoffOptions;
  random?: () => number;
  /** The queue changed (for "sending…" UI). */
  onChange?(pending: readonly PendingSend[]): void;
}

export class Outbox {
  private readonly o: OutboxOptions;
  private readonly queue: Entry[] = [];
  private running = false;
  private waitAc: AbortController | null = null;
  private closed = false;
  /** Retries made (a send attempted again after a transient failure). */
  retries = 0;

  constructor(o: OutboxOptions) {
    this.o = o;
  }

  /** Queues a message; resolves with the stored message (once), or rejects with a final error. */
  send(input: SendInput): Promise<ChatMessage> {
    if (this.closed) return Promise.reject(new Error("outbox closed"));
    const clientMessageId = input.clientMessageId || uuid();
    return new Promise<ChatMessage>((resolve, reject) => {
      this.queue.push({
        clientMessageId,
        conversationId: input.conversationId,
        content: input.content ?? "",
        attempts: 0,
        lastError: null,
        req: { ...input, clientMessageId },
        resolve,
        reject,
      });
      this.changed();
      void this.drain();
    });
  }

  get pending(): readonly PendingSend[] {
    return this.queue;
  }

  /** Back online (or the stream reconnected): retry now instead of after the backoff. */
  wake(): void {
    this.waitAc?.abort();
  }

  /** Rejects what is still queued (sign-out). */
  close(reason: unknown = new Error("outbox closed")): void {
    this.closed = true;
    this.waitAc?.abort();
    for (const e of this.queue.splice(0)) e.reject(reason);
    this.changed();
  }

  private changed(): void {
    this.o.onChange?.(this.queue);
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      let attempt = 0;
      while (this.queue.length > 0 && !this.closed) {
        const e = this.queue[0];
        e.attempts++;
        try {
          const res = await this.o.messages.sendMessage(e.req);
          this.queue.shift();
          attempt = 0;
          this.changed();
          e.resolve(res.message!);
        } catch (err) {
          if (this.closed) return;
          e.lastError = err;
          if (!isTransient(err)) {
            this.queue.shift();
            this.changed();
            e.reject(err);
            continue;
          }
          this.retries++;
          this.changed();
          this.waitAc = new AbortController();
          await sleep(fullJitterMs(attempt++, this.o.backoff, this.o.random), this.waitAc.signal);
          this.waitAc = null;
        }
      }
    } finally {
      this.running = false;
    }
  }
}
