// MessageService.Stream, Subscribe and AckEvents: protobuf frames <-> the
// session and hub. A `send` frame goes through the same handler as unary
// SendMessage, `mark_read` through MarkRead.

import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { decodeJwt } from "jose";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  StreamRequestSchema,
  type ChatMessage,
  type MessageService,
  type StreamRequest,
  type StreamResponse,
  type SubscribeResponse,
  type StreamError,
} from "../../gen/chat/v1/message_pb.js";
import { caller, kLogger, kRequestId } from "../server/context.ts";
import { clientDecodeError, toConnectError } from "../server/errors.ts";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AppError, invalidArgument, invalidFields, notFound } from "../shared/errors.ts";
import type { RequestValidator } from "../server/validation.ts";
import { decodeCursor } from "./cursor.ts";
import type { RealtimeHub } from "./hub.ts";
import type { StreamAdmission } from "./admission.ts";
import type { AccessTokenCheck, TypingSink, UnaryMessageOps } from "./ports.ts";
import type { StreamSession } from "./session.ts";
import { hardCutter } from "./transport.ts";

type RealtimeImpl = Pick<ServiceImpl<typeof MessageService>, "stream" | "subscribe" | "ackEvents">;

/** A typing "still typing" is re-announced at most this often per conversation and stream. */
const TYPING_REPEAT_MS = 3_000;

export function realtimeHandlers(
  hub: RealtimeHub,
  unary: UnaryMessageOps,
  typing: TypingSink,
  tokens: AccessTokenCheck,
  admission: StreamAdmission,
  validator: RequestValidator,
): RealtimeImpl {
  return {
    async *stream(requests, ctx) {
      const auth = caller(ctx);
      const it = requests[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.done) return;
      const hello = first.value.frame;
      if (hello.case !== "hello") throw invalidArgument("hello", "the first frame of a stream must be hello", "STREAM_FRAME_UNEXPECTED");
      // A bad hello ends the stream (there is no stream without one); later frames get error frames.
      validator.validate(StreamRequestSchema, first.value);
      const resume = hello.value.resumeToken ? decodeCursor("hello.resume_token", hello.value.resumeToken) : null;
      const deviceId = hello.value.deviceId.trim();

      // Admission (admission.ts): the user's stream cap, then a bounded slot for the open; RESOURCE_EXHAUSTED otherwise.
      const ticket = await admission.admit(auth.userId, ctx.signal);
      try {
        const s = open(hub, ctx, { userId: auth.userId, sessionId: auth.sessionId, deviceId, kind: "stream" });
        void s.start(resume, "hello.resume_token").finally(ticket.opened);
        void readFrames(hub, unary, typing, tokens, validator, s, it, ctx);
        for await (const frame of s.frames()) {
          if (frame.case === "heartbeat") continue;
          yield { $typeName: "chat.v1.StreamResponse", frame } as StreamResponse;
        }
      } finally {
        ticket.closed();
        void it.return?.();
      }
    },

    async *subscribe(req, ctx) {
      const auth = caller(ctx);
      const resume = req.resumeToken ? decodeCursor("resume_token", req.resumeToken) : null;
      const deviceId = req.deviceId.trim();
      const ticket = await admission.admit(auth.userId, ctx.signal);
      try {
        const s = open(hub, ctx, { userId: auth.userId, sessionId: auth.sessionId, deviceId, kind: "subscribe" });
        void s.start(resume, "resume_token").finally(ticket.opened);
        for await (const frame of s.frames()) {
          switch (frame.case) {
            case "ready":
            case "event":
            case "resyncRequired":
            case "heartbeat":
            case "goAway":
              yield { $typeName: "chat.v1.SubscribeResponse", frame } as SubscribeResponse;
          }
        }
      } finally {
        ticket.closed();
      }
    },

    async ackEvents(req, ctx) {
      const auth = caller(ctx);
      await hub.acknowledge(auth.userId, decodeCursor("cursor", req.cursor), "cursor");
      return {};
    },
  };
}

function open(
  hub: RealtimeHub,
  ctx: HandlerContext,
  info: { userId: string; sessionId: string; deviceId: string; kind: "stream" | "subscribe" },
): StreamSession {
  const s = hub.createSession({ ...info, expiresAtMs: tokenExpiry(bearerToken(ctx)) });
  const cut = hardCutter(ctx);
  s.hardCut = cut
    ? () => {
        hub.countCutoff();
        cut();
      }
    : null;
  // The client went away (cancel, reset, connection lost).
  ctx.signal.addEventListener("abort", () => s.close(), { once: true });
  return s;
}

function bearerToken(ctx: HandlerContext): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(ctx.requestHeader.get("authorization") ?? "")?.[1];
}

/** Expiry of an access token already verified (by the auth interceptor, or refreshAuth below). */
function tokenExpiry(token: string | undefined): number | null {
  if (!token) return null;
  try {
    const { exp } = decodeJwt(token);
    return typeof exp === "number" ? exp * 1000 : null;
  } catch {
    return null;
  }
}

/** Client frames, one at a time in arrival order (sends are acked in the order sent). */
async function readFrames(
  hub: RealtimeHub,
  unary: UnaryMessageOps,
  typingSink: TypingSink,
  tokens: AccessTokenCheck,
  validator: RequestValidator,
  s: StreamSession,
  it: AsyncIterator<StreamRequest>,
  ctx: HandlerContext,
): Promise<void> {
  // Created on first use: most streams sit idle, and idle streams should stay small.
  let acks: AckCoalescer | null = null;
  let typing: Map<string, { typing: boolean; at: number }> | null = null;
  try {
    for (;;) {
      // Backpressure on the sender: its frames wait while its own queue is half full (see roomForClientFrames).
      await s.roomForClientFrames();
      if (!s.isOpen) return;
      const r = await it.next();
      // Half-close: the client sends nothing more but may still listen; the
      // heartbeat rule ends the stream if it stays silent.
      if (r.done || !s.isOpen) return;
      hub.touched(s);
      const frame = r.value.frame;
      try {
        // The proto's rules, as for the unary RPCs: every violation of the frame in one error frame.
        if (frame.case !== undefined && frame.case !== "hello") {
          const violations = validator.violationsOf(StreamRequestSchema, r.value);
          if (violations.length > 0) throw invalidFields(violations.map((v) => ({ ...v, field: frameField(frame.case, v.field) })));
        }
        switch (frame.case) {
          case "send": {
            const res = await unary.sendMessage(frame.value, ctx);
            s.enqueue({
              case: "sendAck",
              value: { $typeName: "chat.v1.SendAck", clientMessageId: frame.value.clientMessageId, message: res.message as ChatMessage },
            });
            break;
          }
          case "markRead":
            await unary.markRead(frame.value, ctx);
            break;
          case "typing": {
            const c = frame.value.conversationId.toLowerCase();
            if (!s.follows(c)) throw notFound("CONVERSATION_NOT_FOUND", "conversation not found");
            typing ??= new Map();
            const last = typing.get(c);
            const now = Date.now();
            if (last && last.typing === frame.value.typing && (!frame.value.typing || now - last.at < TYPING_REPEAT_MS)) break;
            typing.set(c, { typing: frame.value.typing, at: now });
            if (typing.size > 1000) typing.delete(typing.keys().next().value!);
            await typingSink(c, s.userId, frame.value.typing);
            break;
          }
          case "ack":
            (acks ??= new AckCoalescer(hub, s, ctx)).offer(frame.value.cursor);
            break;
          case "ping":
            s.enqueue({ case: "pong", value: { $typeName: "chat.v1.Pong", nonce: frame.value.nonce } });
            break;
          case "refreshAuth":
            await refreshAuth(tokens, s, frame.value.accessToken);
            break;
          case "hello":
            throw invalidArgument("hello", "only the first frame may be hello", "STREAM_FRAME_UNEXPECTED");
          default:
            throw invalidArgument("frame", "empty or unknown frame", "STREAM_FRAME_UNEXPECTED");
        }
      } catch (err) {
        s.enqueue({ case: "error", value: streamError(err, frame.case === "send" ? frame.value.clientMessageId : "", ctx) });
      }
    }
  } catch (err) {
    // Reading failed. A frame that does not decode or is over the size limit
    // ends the stream with that error (INVALID_ARGUMENT, RESOURCE_EXHAUSTED),
    // never as a normal end; otherwise the client is gone and the transport ends the call.
    s.close(unreadableFrame(err) ?? undefined);
  }
}

/**
 * A `send` or `mark_read` frame is the unary request itself (and goes through
 * its handler, whose own errors name its fields): its violations name the
 * request's fields, as SendMessage and MarkRead do ("content"). Other frames'
 * are prefixed with the frame ("typing.conversation_id").
 */
function frameField(frame: StreamRequest["frame"]["case"], field: string): string {
  if (frame !== "send" && frame !== "markRead") return field;
  const prefix = frame === "send" ? "send." : "mark_read.";
  return field.startsWith(prefix) ? field.slice(prefix.length) : field;
}

/** The reason to end a stream whose next frame could not be read because of the client, or null (the client went away). */
function unreadableFrame(err: unknown): AppError | null {
  const decode = clientDecodeError(err);
  if (decode) return new AppError("REQUEST_MALFORMED", decode.rawMessage, { violations: [{ field: "frame", description: decode.rawMessage }] });
  if (!(err instanceof ConnectError)) return null;
  if (err.code === Code.InvalidArgument)
    return new AppError("REQUEST_MALFORMED", err.rawMessage, { violations: [{ field: "frame", description: err.rawMessage }] });
  if (err.code === Code.ResourceExhausted) return new AppError("REQUEST_TOO_LARGE", err.rawMessage);
  return null;
}

/**
 * `refresh_auth`: a fresh access token for the same user and session moves the
 * stream's expiry (never back); anything else fails the frame (an error frame:
 * the stream keeps its old expiry and ends UNAUTHENTICATED then).
 */
async function refreshAuth(tokens: AccessTokenCheck, s: StreamSession, token: string): Promise<void> {
  const who = await tokens.verify(token); // UNAUTHENTICATED: bad, expired or revoked
  if (who.userId !== s.userId || who.sessionId !== s.sessionId) {
    throw invalidArgument("refresh_auth.access_token", "is not a token of this stream's user and session");
  }
  const exp = tokenExpiry(token);
  if (s.expiresAtMs !== null) s.expiresAtMs = exp === null ? null : Math.max(s.expiresAtMs, exp);
  s.enqueue({
    case: "authRefreshed",
    value: {
      $typeName: "chat.v1.AuthRefreshed",
      expiresAt: s.expiresAtMs === null ? undefined : timestampFromMs(s.expiresAtMs),
    },
  });
}

/**
 * Acks are applied one at a time; while one is in flight only the newest
 * waiting cursor is kept (a client acking every event costs one write per
 * round trip, not one per ack).
 */
class AckCoalescer {
  private readonly hub: RealtimeHub;
  private readonly s: StreamSession;
  private readonly ctx: HandlerContext;
  private next: string | null = null;
  private running = false;
  /** Per conversation, the position of the last ack applied. */
  private readonly seen = new Map<string, number>();

  constructor(hub: RealtimeHub, s: StreamSession, ctx: HandlerContext) {
    this.hub = hub;
    this.s = s;
    this.ctx = ctx;
  }

  offer(cursor: string): void {
    decodeCursor("ack.cursor", cursor); // malformed: answered now, as an error frame
    this.next = cursor;
    if (!this.running) void this.run();
  }

  private async run(): Promise<void> {
    this.running = true;
    while (this.next !== null && this.s.isOpen) {
      const cursor = this.next;
      this.next = null;
      try {
        await this.hub.acknowledge(this.s.userId, decodeCursor("ack.cursor", cursor), "ack.cursor", this.seen);
      } catch (err) {
        this.s.enqueue({ case: "error", value: streamError(err, "", this.ctx) });
      }
    }
    this.running = false;
  }
}

function streamError(err: unknown, clientMessageId: string, ctx: HandlerContext): StreamError {
  const log = ctx.values.get(kLogger);
  const ce = toConnectError(err, ctx.values.get(kRequestId), (e) => log?.error({ err: e }, "stream frame failed"));
  const violations = err instanceof AppError ? err.violations : [];
  const info = ce.findDetails(ErrorInfoSchema)[0];
  return {
    $typeName: "chat.v1.StreamError",
    clientMessageId,
    code: ce.code as number,
    message: ce.rawMessage,
    fieldViolations: violations.map((v) => ({
      $typeName: "google.rpc.BadRequest.FieldViolation",
      field: v.field,
      description: v.description,
      reason: v.reason ?? "",
    })),
    reason: info?.reason ?? "",
    metadata: info?.metadata ?? {},
  } as StreamError;
}
