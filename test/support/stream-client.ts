// MessageService.Stream through @grpc/grpc-js, the way a native app holds it:
// one bidirectional HTTP/2 stream, frames serialized with protobuf-es.
// Collects every frame it receives so tests can poll for conditions.

import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import {
  MessageService,
  StreamRequestSchema,
  StreamResponseSchema,
  type Event,
  type StreamRequest,
  type StreamResponse,
} from "../../gen/chat/v1/message_pb.js";

const PATH = `/${MessageService.typeName}/${MessageService.method.stream.name}`;

export interface StreamStatus {
  code: grpc.status;
  details: string;
}

export class StreamClient {
  readonly call: grpc.ClientDuplexStream<StreamRequest, StreamResponse>;
  readonly frames: StreamResponse[] = [];
  /** Resolves when the call ends (OK or not). */
  readonly ended: Promise<StreamStatus>;
  private status: StreamStatus | null = null;

  constructor(client: grpc.Client, token: string, opts: { autoRead?: boolean } = {}) {
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${token}`);
    this.call = client.makeBidiStreamRequest(
      PATH,
      (m: StreamRequest) => Buffer.from(toBinary(StreamRequestSchema, m)),
      (b: Buffer) => fromBinary(StreamResponseSchema, b),
      md,
      {},
    );
    this.ended = new Promise((resolve) => {
      // grpc-js reports the final status on "status"; errors also arrive on "error".
      this.call.on("status", (s: grpc.StatusObject) => {
        this.status ??= { code: s.code, details: s.details };
        resolve(this.status);
      });
      this.call.on("error", (e: grpc.ServiceError) => {
        this.status ??= { code: e.code, details: e.details };
        resolve(this.status);
      });
    });
    if (opts.autoRead !== false) this.call.on("data", (f: StreamResponse) => this.frames.push(f));
  }

  /** Opens a stream and sends hello. */
  static open(
    client: grpc.Client,
    token: string,
    hello: { resumeToken?: string; deviceId?: string } = {},
    opts: { autoRead?: boolean } = {},
  ): StreamClient {
    const s = new StreamClient(client, token, opts);
    s.write({ frame: { case: "hello", value: { resumeToken: hello.resumeToken ?? "", deviceId: hello.deviceId ?? "" } } });
    return s;
  }

  write(frame: MessageInitShape<typeof StreamRequestSchema>): void {
    this.call.write(create(StreamRequestSchema, frame));
  }

  send(conversationId: string, clientMessageId: string, content: string): void {
    this.write({ frame: { case: "send", value: { conversationId, clientMessageId, content } } });
  }

  /** The final status once the call ended, else null. */
  get finalStatus(): StreamStatus | null {
    return this.status;
  }

  /** Every event (durable and ephemeral), in arrival order. */
  events(): Event[] {
    return this.frames.flatMap((f) => (f.frame.case === "event" ? [f.frame.value] : []));
  }

  /** Durable events only (those with a cursor: no typing, no presence). */
  durable(): Event[] {
    return this.events().filter((e) => e.cursor !== "");
  }

  /** Seqs of message_created events for one conversation, in arrival order. */
  createdSeqs(conversationId: string): number[] {
    return this.events()
      .filter((e) => e.conversationId === conversationId && e.payload.case === "messageCreated")
      .map((e) => Number((e.payload.value as { message?: { seq: bigint } }).message?.seq ?? -1));
  }

  /** The cursor of the last event received. */
  lastCursor(): string {
    const withCursor = this.events().filter((e) => e.cursor !== "");
    return withCursor.length ? withCursor[withCursor.length - 1].cursor : "";
  }

  ready(): StreamResponse | undefined {
    return this.frames.find((f) => f.frame.case === "ready");
  }

  /** Polls until `check` holds (no fixed sleeps). */
  async until<T>(check: (s: StreamClient) => T | undefined | null | false, timeoutMs = 10_000, what = "condition"): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = check(this);
      if (v) return v;
      if (Date.now() > deadline) {
        throw new Error(
          `stream: ${what} not met in ${timeoutMs} ms (${this.frames.length} frames${this.status ? `, ended ${grpc.status[this.status.code]}: ${this.status.details}` : ""})`,
        );
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Pings every `ms` until the call ends, as apps do at ready.heartbeat_interval. */
  keepAlive(ms: number): this {
    const t = setInterval(() => {
      if (this.status) clearInterval(t);
      else this.write({ frame: { case: "ping", value: { nonce: "keepalive" } } });
    }, ms);
    t.unref();
    void this.ended.then(() => clearInterval(t));
    return this;
  }

  /** Cancels the call from the client side (as a dropped connection would). */
  cancel(): void {
    this.call.cancel();
  }
}
