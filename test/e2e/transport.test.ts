// One port, three protocols: the same RPCs answered over gRPC (grpc-js and
// Connect's gRPC transport), gRPC-Web and Connect, on HTTP/1.1 and HTTP/2;
// limits; reflection through the real grpcurl; CORS; metrics.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import http2 from "node:http2";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { AuthService } from "../../gen/chat/v1/auth_pb.js";
import { provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { GrpcJsClient, transportFor, type ProtocolName } from "../support/clients.ts";
import { findTool, run } from "../support/tools.ts";

let backends: ProvisionedBackends;
let server: TestServer;

beforeAll(async () => {
  backends = await provisionBackends({ sql: "pglite" });
  server = await startTestServer(backends.env, { CORS_ORIGINS: "http://app.example" });
});
afterAll(async () => {
  await server?.close();
  await backends?.cleanup();
});

const variants: { protocol: ProtocolName; httpVersion: "1.1" | "2" }[] = [
  { protocol: "connect", httpVersion: "1.1" },
  { protocol: "connect", httpVersion: "2" },
  { protocol: "grpc-web", httpVersion: "1.1" },
  { protocol: "grpc-web", httpVersion: "2" },
  { protocol: "grpc", httpVersion: "2" },
];

describe("one port, every protocol", () => {
  it.each(variants)("Health/Check over $protocol on HTTP/$httpVersion", async ({ protocol, httpVersion }) => {
    const client = createClient(Health, transportFor(protocol, server.baseUrl, [], httpVersion));
    const res = await client.check({ service: "" });
    expect(res.status).toBe(Status.SERVING);
  });

  it("Health/Check over @grpc/grpc-js (as native stubs)", async () => {
    const client = new GrpcJsClient(server.address);
    try {
      const res = await client.unary(Health.method.check, { service: "chat.v1.MessageService" });
      expect(res.status).toBe(Status.SERVING);
      await expect(client.unary(Health.method.check, { service: "no.such.Service" })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    } finally {
      client.close();
    }
  });

  it.each(variants)("a chat RPC without a token is UNAUTHENTICATED over $protocol/$httpVersion", async ({ protocol, httpVersion }) => {
    const client = createClient(AuthService, transportFor(protocol, server.baseUrl, [], httpVersion));
    const err = await client.getMe({}).catch((e) => ConnectError.from(e));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.Unauthenticated);
  });

  it("Health/Watch streams the current status", async () => {
    const client = createClient(Health, transportFor("grpc", server.baseUrl));
    const ac = new AbortController();
    for await (const res of client.watch({ service: "" }, { signal: ac.signal })) {
      expect(res.status).toBe(Status.SERVING);
      ac.abort();
      break;
    }
  });
});

describe("limits", () => {
  it("rejects an over-size request with RESOURCE_EXHAUSTED and stays healthy", async () => {
    const huge = "x".repeat(300 * 1024); // over the 256 KiB default
    for (const protocol of ["connect", "grpc"] as const) {
      const client = createClient(AuthService, transportFor(protocol, server.baseUrl));
      const err = await client.register({ email: "a@b.c", username: "big", password: huge }).catch((e) => ConnectError.from(e));
      expect((err as ConnectError).code, protocol).toBe(Code.ResourceExhausted);
    }
    const grpcJs = new GrpcJsClient(server.address);
    await expect(grpcJs.unary(AuthService.method.register, { password: "x".repeat(300 * 1024) })).rejects.toMatchObject({
      code: grpc.status.RESOURCE_EXHAUSTED,
    });
    expect((await grpcJs.unary(Health.method.check, {})).status).toBe(Status.SERVING);
    grpcJs.close();
  });

  it("honours a client deadline", async () => {
    const client = createClient(Health, transportFor("grpc", server.baseUrl));
    const ac = new AbortController();
    const err = await (async () => {
      for await (const _ of client.watch({ service: "" }, { timeoutMs: 300, signal: ac.signal })) {
        // keep reading until the deadline ends the stream
      }
    })().catch((e) => ConnectError.from(e));
    // Watch never ends by itself: only the 300 ms deadline can have ended it.
    expect((err as ConnectError).code).toBe(Code.DeadlineExceeded);
  });

  it("advertises the max concurrent streams per HTTP/2 connection", async () => {
    const session = http2.connect(server.baseUrl);
    const settings = await new Promise<http2.Settings>((resolve) => session.once("remoteSettings", resolve));
    session.close();
    expect(settings.maxConcurrentStreams).toBe(256);
  });
});

describe("grpcurl (no proto files)", () => {
  const grpcurl = findTool("grpcurl");
  const requireTools = process.env.REQUIRE_ALL_BACKENDS === "1";
  if (!grpcurl && !requireTools) console.warn("SKIPPED grpcurl tests: install with go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3");

  it.skipIf(!grpcurl && !requireTools)("lists the six chat services, health and reflection", async () => {
    expect(grpcurl, "grpcurl not found").toBeTruthy();
    const res = await run(grpcurl!, ["-plaintext", server.address, "list"]);
    expect(res.code, res.stderr).toBe(0);
    const names = res.stdout.trim().split("\n").sort();
    expect(names).toEqual([
      "chat.v1.AuthService",
      "chat.v1.ConversationService",
      "chat.v1.MessageService",
      "chat.v1.NotificationService",
      "chat.v1.PresenceService",
      "chat.v1.WorkspaceService",
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
    ]);
  });

  it.skipIf(!grpcurl && !requireTools)("calls Health/Check and describes a chat message type", async () => {
    const check = await run(grpcurl!, ["-plaintext", server.address, "grpc.health.v1.Health/Check"]);
    expect(check.code, check.stderr).toBe(0);
    expect(JSON.parse(check.stdout)).toEqual({ status: "SERVING" });
    const desc = await run(grpcurl!, ["-plaintext", server.address, "describe", "chat.v1.StreamRequest"]);
    expect(desc.code, desc.stderr).toBe(0);
    expect(desc.stdout).toMatch(/oneof frame/);
    expect(desc.stdout).toMatch(/\.chat\.v1\.Hello hello = 1/);
  });

  it.skipIf(!grpcurl && !requireTools)("describe prints the proto comments of a method, a message field and a service", async () => {
    const method = await run(grpcurl!, ["-plaintext", server.address, "describe", "chat.v1.MessageService.SendMessage"]);
    expect(method.code, method.stderr).toBe(0);
    expect(method.stdout).toMatch(/\/\/ SendMessage stores a message\. Idempotent on \(conversation_id, sender,/);
    expect(method.stdout).toMatch(/rpc SendMessage \( \.chat\.v1\.SendMessageRequest \)/);
    const message = await run(grpcurl!, ["-plaintext", server.address, "describe", "chat.v1.SendMessageRequest"]);
    expect(message.code, message.stderr).toBe(0);
    expect(message.stdout).toMatch(
      /\/\/ Set to reply in the thread of a top-level message of the same conversation\.\s*\n\s*string parent_message_id = 4/,
    );
    // A file reached through another file's imports keeps its comments too.
    const service = await run(grpcurl!, ["-plaintext", server.address, "describe", "chat.v1.PresenceService"]);
    expect(service.code, service.stderr).toBe(0);
    expect(service.stdout).toMatch(/\/\/ PresenceService tells who is online and who is typing\./);
  });

  it.skipIf(!grpcurl && !requireTools)("gets clear codes for bad calls", async () => {
    const res = await run(grpcurl!, ["-plaintext", "-d", "{}", server.address, "chat.v1.AuthService/GetMe"]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/Code: Unauthenticated/);
    expect(res.stderr).not.toMatch(/at .*\.ts:\d+/); // never a stack trace
  });
});

describe("browsers and operators", () => {
  it("answers a CORS preflight for an allowed origin and not for others", async () => {
    const ok = await fetch(`${server.baseUrl}/chat.v1.AuthService/Login`, {
      method: "OPTIONS",
      headers: {
        origin: "http://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,authorization",
      },
    });
    expect(ok.status).toBe(204);
    expect(ok.headers.get("access-control-allow-origin")).toBe("http://app.example");
    expect(ok.headers.get("access-control-allow-headers")).toMatch(/authorization/);
    const other = await fetch(`${server.baseUrl}/chat.v1.AuthService/Login`, {
      method: "OPTIONS",
      headers: { origin: "http://evil.example", "access-control-request-method": "POST" },
    });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("echoes a request id and exports RPC metrics by method and code on the admin port", async () => {
    const res = await fetch(`${server.baseUrl}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "req-123" },
      body: "{}",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("req-123");
    const metrics = await (await fetch(`http://127.0.0.1:${server.app.adminPort}/metrics`)).text();
    expect(metrics).toMatch(/rpc_requests_total\{service="grpc.health.v1.Health",method="Check",code="OK"\} \d+/);
    expect(metrics).toMatch(/rpc_duration_seconds_bucket\{le="0.005",service="grpc.health.v1.Health",method="Check",code="OK"\}/);
    expect(metrics).toMatch(/rpc_requests_total\{service="chat.v1.AuthService",method="GetMe",code="UNAUTHENTICATED"\}/);
    const ready = await fetch(`http://127.0.0.1:${server.app.adminPort}/readyz`);
    expect(ready.status).toBe(200);
  });
});
