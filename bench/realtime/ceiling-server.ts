// The transport ceiling for bench/realtime/run.ts: the same transport stack
// as the app (startHttpServer: one port, h2c; Connect's node adapter serving
// MessageService.Stream with the same message types) but no persistence, no
// auth, no log, no pub/sub: a `send` is fanned out in process, as a
// message_created event, to every stream of the group named by hello.device_id,
// and acked to the sender. Whatever the app does beyond this is the price of
// its guarantees.
//
//   node bench/realtime/ceiling-server.ts     # prints {"port":N} when serving

import { randomUUID } from "node:crypto";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { MessageService, type Event, type StreamResponse } from "../../gen/chat/v1/message_pb.js";
import { startHttpServer } from "../../src/server/http.ts";

/** One stream's outbound frames; unbounded (the ceiling has no backpressure policy). */
class Outbox {
  private frames: StreamResponse[] = [];
  private wake: (() => void) | null = null;
  closed = false;
  push(f: StreamResponse): void {
    this.frames.push(f);
    const w = this.wake;
    this.wake = null;
    w?.();
  }
  async *drain(): AsyncGenerator<StreamResponse> {
    while (!this.closed) {
      if (this.frames.length > 0) {
        const batch = this.frames;
        this.frames = [];
        yield* batch;
        continue;
      }
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}

const groups = new Map<string, Set<Outbox>>();
const seqs = new Map<string, number>();

const handler = connectNodeAdapter({
  routes: (router) =>
    router.service(MessageService, {
      async *stream(requests, ctx) {
        const it = requests[Symbol.asyncIterator]();
        const first = await it.next();
        if (first.done || first.value.frame.case !== "hello") return;
        const group = first.value.frame.value.deviceId;
        const me = new Outbox();
        let members = groups.get(group);
        if (!members) groups.set(group, (members = new Set()));
        members.add(me);
        ctx.signal.addEventListener("abort", () => (me.closed = true));
        me.push({
          $typeName: "chat.v1.StreamResponse",
          frame: { case: "ready", value: { $typeName: "chat.v1.Ready", resumeToken: "x", sessionId: "" } },
        });
        void (async () => {
          try {
            for (;;) {
              const r = await it.next();
              if (r.done) return;
              const f = r.value.frame;
              if (f.case === "send") {
                const seq = (seqs.get(group) ?? 0) + 1;
                seqs.set(group, seq);
                const message = {
                  $typeName: "chat.v1.ChatMessage" as const,
                  id: randomUUID(),
                  conversationId: f.value.conversationId,
                  seq: BigInt(seq),
                  senderId: "",
                  clientMessageId: f.value.clientMessageId,
                  content: f.value.content,
                  parentMessageId: "",
                  replyCount: 0,
                  mentions: [],
                  attachments: [],
                  reactions: [],
                  createdAt: timestampNow(),
                  deleted: false,
                };
                const event: Event = {
                  $typeName: "chat.v1.Event",
                  cursor: "",
                  conversationId: f.value.conversationId,
                  workspaceId: "",
                  occurredAt: timestampNow(),
                  payload: { case: "messageCreated", value: { $typeName: "chat.v1.MessageCreated", message } },
                };
                for (const m of members!) {
                  m.push({ $typeName: "chat.v1.StreamResponse", frame: { case: "event", value: { ...event, cursor: `c${seq}` } } });
                }
                me.push({
                  $typeName: "chat.v1.StreamResponse",
                  frame: { case: "sendAck", value: { $typeName: "chat.v1.SendAck", clientMessageId: f.value.clientMessageId, message } },
                });
              } else if (f.case === "ping") {
                me.push({ $typeName: "chat.v1.StreamResponse", frame: { case: "pong", value: { $typeName: "chat.v1.Pong", nonce: f.value.nonce } } });
              }
            }
          } catch {
            // client gone
          } finally {
            me.closed = true;
            me.push({ $typeName: "chat.v1.StreamResponse", frame: { case: undefined } });
          }
        })();
        try {
          yield* me.drain();
        } finally {
          members.delete(me);
        }
      },
    }),
});

const http = await startHttpServer(
  { host: "127.0.0.1", port: Number(process.env.PORT ?? 0), tls: null, maxConcurrentStreams: Number(process.env.MAX_CONCURRENT_STREAMS ?? 1000) },
  handler,
);
process.stdout.write(`${JSON.stringify({ port: http.port })}\n`);
process.on("SIGTERM", () => {
  http.stopAccepting();
  http.destroy();
  process.exit(0);
});
