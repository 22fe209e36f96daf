// The contract on the wire: every error carries google.rpc.ErrorInfo (domain
// chat.v1, a catalogued reason) on gRPC, gRPC-Web and Connect; StreamError
// frames carry the same reason.

import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { AuthService } from "../../gen/chat/v1/auth_pb.js";
import { ConversationService } from "../../gen/chat/v1/conversation_pb.js";
import { isReason } from "../../src/shared/reasons.ts";
import { connectClient, GrpcJsClient, type GrpcError, type ProtocolName } from "../support/clients.ts";
import { connectErrorInfo, failure, grpcErrorInfo } from "../support/errors.ts";
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
