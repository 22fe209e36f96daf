// The contract on the wire: every error carries google.rpc.ErrorInfo (domain
// chat.v1, a catalogued reason) on gRPC, gRPC-Web and Connect; StreamError
// frames carry the same reason.

import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { AuthService } from "../../gen/chat/v1/auth_pb.js";
import { ConversationService } from "../../gen/chat/v1/conversation_pb.js";
import { MessageService } from "../../gen/chat/v1/message_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { isReason } from "../../src/shared/reasons.ts";
import { connectClient, GrpcJsClient, type GrpcError, type ProtocolName } from "../support/clients.ts";
import { connectErrorInfo, connectViolations, failure, grpcErrorInfo, grpcViolations } from "../support/errors.ts";
import { provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { StreamClient } from "../support/stream-client.ts";
import { registerUser } from "../support/users.ts";

let backends: ProvisionedBackends;
let server: TestServer;
let alice: Awaited<ReturnType<typeof registerUser>>;

beforeAll(async () => {
  backends = await provisionBackends({ sql: "pglite" });
  server = await startTestServer(backends.env);
  alice = await registerUser(server.baseUrl);
});
afterAll(async () => {
  await server?.close();
  await backends?.cleanup();
});

const PROTOCOLS: ProtocolName[] = ["connect", "grpc-web", "grpc"];

describe("ErrorInfo on every protocol", () => {
  it.each(PROTOCOLS)("no token: UNAUTHENTICATED / TOKEN_MISSING over %s", async (protocol) => {
    const err = ConnectError.from(await failure(connectClient(AuthService, protocol, server.baseUrl).getMe({})));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(connectErrorInfo(err)).toMatchObject({ domain: "chat.v1", reason: "TOKEN_MISSING" });
  });

  it.each(PROTOCOLS)("a conversation that is not yours: NOT_FOUND / CONVERSATION_NOT_FOUND over %s", async (protocol) => {
    const client = connectClient(ConversationService, protocol, server.baseUrl, alice.accessToken);
    const err = ConnectError.from(await failure(client.getConversation({ conversationId: randomUUID() })));
    expect(err.code).toBe(Code.NotFound);
    expect(connectErrorInfo(err)).toMatchObject({ domain: "chat.v1", reason: "CONVERSATION_NOT_FOUND" });
  });

  it("native gRPC stubs (grpc-js) read the reason from grpc-status-details-bin", async () => {
    const client = new GrpcJsClient(server.address);
    try {
      const err = await failure<GrpcError>(client.unary(AuthService.method.login, { login: `nobody_${Date.now()}`, password: "not the password" }));
      expect(grpcErrorInfo(err)).toMatchObject({ domain: "chat.v1", reason: "LOGIN_FAILED" });
      const bad = await failure<GrpcError>(client.unary(AuthService.method.getMe, {}, { token: "not.a.jwt" }));
      expect(grpcErrorInfo(bad)?.reason).toBe("TOKEN_INVALID");
    } finally {
      client.close();
    }
  });
});

describe("StreamError", () => {
  it("carries the same reason as the unary call", async () => {
    const grpcJs = new GrpcJsClient(server.address);
    const s = StreamClient.open(grpcJs.raw, alice.accessToken);
    try {
      await s.until((c) => c.ready(), 10_000, "ready");
      s.send(randomUUID(), "k1", "hello");
      const error = await s.until((c) => c.frames.find((f) => f.frame.case === "error")?.frame.value, 10_000, "error frame");
      expect(error).toMatchObject({ code: Code.NotFound, reason: "CONVERSATION_NOT_FOUND", clientMessageId: "k1" });
      expect(isReason((error as { reason: string }).reason)).toBe(true);
    } finally {
      s.call.end();
      grpcJs.close();
    }
  });
});

// A request with three bad fields: every violation comes back at once, each
// with its field path and the protovalidate rule id (FieldViolation.reason).
const THREE_BAD = { conversationId: "not-a-uuid", clientMessageId: "", content: "nul \u0000 inside" };
const THREE_VIOLATIONS = [
  { field: "conversation_id", reason: "string.uuid" },
  { field: "client_message_id", reason: "string.min_len" },
  { field: "content", reason: "text.message" },
];

describe("the proto's rules (protovalidate): every violation in one BadRequest", () => {
  it.each(PROTOCOLS)("SendMessage with three bad fields: INVALID_ARGUMENT / INVALID_FIELD with three violations over %s", async (protocol) => {
    const client = connectClient(MessageService, protocol, server.baseUrl, alice.accessToken);
    const err = ConnectError.from(await failure(client.sendMessage(THREE_BAD)));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(connectErrorInfo(err)).toMatchObject({ domain: "chat.v1", reason: "INVALID_FIELD" });
    const violations = err.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations);
    expect(violations.map((v) => ({ field: v.field, reason: v.reason }))).toEqual(THREE_VIOLATIONS);
    for (const v of violations) expect(v.description).not.toBe("");
    expect(connectViolations(err)).toEqual(["conversation_id", "client_message_id", "content"]);
  });

  it("native gRPC stubs (grpc-js) get the same three violations", async () => {
    const client = new GrpcJsClient(server.address);
    try {
      const err = await failure<GrpcError>(client.unary(MessageService.method.sendMessage, THREE_BAD, { token: alice.accessToken }));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(grpcErrorInfo(err)?.reason).toBe("INVALID_FIELD");
      expect(grpcViolations(err)).toEqual(["conversation_id", "client_message_id", "content"]);
    } finally {
      client.close();
    }
  });

  it.each(PROTOCOLS)("a message-level rule is reported on its field, and server-streaming requests are checked too, over %s", async (protocol) => {
    const messages = connectClient(MessageService, protocol, server.baseUrl, alice.accessToken);
    const list = ConnectError.from(await failure(messages.listMessages({ conversationId: randomUUID(), beforeSeq: 5n, afterSeq: 2n, limit: 201 })));
    expect(list.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => `${v.field}:${v.reason}`))).toEqual([
      "limit:int32.gte_lte",
      "after_seq:after_seq.exclusive",
    ]);
    const sub = ConnectError.from(
      await failure(
        (async () => {
          for await (const _ of messages.subscribe({ deviceId: "bad\u0000device", resumeToken: "x".repeat(2049) })) break;
        })(),
      ),
    );
    expect(sub.code).toBe(Code.InvalidArgument);
    expect(connectErrorInfo(sub)?.reason).toBe("INVALID_FIELD");
    expect(connectViolations(sub)).toEqual(["resume_token", "device_id"]);
  });

  it("a Stream frame with three bad fields gets one error frame with all three, and the stream stays usable", async () => {
    const grpcJs = new GrpcJsClient(server.address);
    const s = StreamClient.open(grpcJs.raw, alice.accessToken);
    try {
      await s.until((c) => c.ready(), 10_000, "ready");
      s.write({ frame: { case: "send", value: { ...THREE_BAD, clientMessageId: "x".repeat(65) } } });
      const error = await s.until((c) => c.frames.find((f) => f.frame.case === "error")?.frame.value, 10_000, "error frame");
      expect(error).toMatchObject({ code: Code.InvalidArgument, reason: "INVALID_FIELD", clientMessageId: "x".repeat(65) });
      const fields = (error as { fieldViolations: { field: string; reason: string }[] }).fieldViolations.map((v) => `${v.field}:${v.reason}`);
      // A `send` frame is a SendMessageRequest: its violations name the request's fields, as the unary call does.
      expect(fields).toEqual(["conversation_id:string.uuid", "client_message_id:string.max_len", "content:text.message"]);
      // Still open: a bad typing frame is answered too, then a ping gets its pong.
      s.write({ frame: { case: "typing", value: { conversationId: "nope", typing: true } } });
      const typing = await s.until((c) => c.frames.filter((f) => f.frame.case === "error")[1]?.frame.value, 10_000, "second error frame");
      expect((typing as { fieldViolations: { field: string }[] }).fieldViolations.map((v) => v.field)).toEqual(["typing.conversation_id"]);
      s.write({ frame: { case: "ping", value: { nonce: "still-here" } } });
      const pong = await s.until((c) => c.frames.find((f) => f.frame.case === "pong")?.frame.value, 10_000, "pong");
      expect(pong).toMatchObject({ nonce: "still-here" });
    } finally {
      s.call.end();
      grpcJs.close();
    }
  });
});
