// Client input that used to be answered INTERNAL (issue 11, item 3) and bad
// frames that ended a Stream with status OK (item 4), over gRPC, gRPC-Web and
// Connect with raw bytes on the wire.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { create, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { SignJWT } from "jose";
import { AuthService, LoginRequestSchema, SearchUsersRequestSchema } from "../../gen/chat/v1/auth_pb.js";
import { MessageService, SearchMessagesRequestSchema, StreamRequestSchema, StreamResponseSchema } from "../../gen/chat/v1/message_pb.js";
import { NotificationService, ListNotificationsRequestSchema, MarkNotificationsSeenRequestSchema } from "../../gen/chat/v1/notification_pb.js";
import { PresenceService } from "../../gen/chat/v1/presence_pb.js";
import { fromBinary } from "@bufbuild/protobuf";
import { env } from "../support/backends.ts";
import { provisionBackends, startTestServer, TEST_SECRET, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { envelope, rawCall, type RawProtocol, type RawResult } from "../support/raw-rpc.ts";
import { registerUser } from "../support/users.ts";

let backends: ProvisionedBackends;
let server: TestServer;
let token: string;

beforeAll(async () => {
  backends = await provisionBackends({ sql: env.postgres ? "postgres" : "pglite" });
  server = await startTestServer(backends.env, { MAX_MESSAGE_BYTES: "65536" });
  const u = await registerUser(server.baseUrl);
  token = u.accessToken;
});
afterAll(async () => {
  await server?.close();
  await backends?.cleanup();
});

const PROTOCOLS: RawProtocol[] = ["grpc", "grpc-web", "connect"];
const path = (m: { parent: { typeName: string }; name: string }) => `/${m.parent.typeName}/${m.name}`;

/** A call with `payload` as the only request message, framed as the protocol wants. */
function call(
  protocol: RawProtocol,
  method: { parent: { typeName: string }; name: string; methodKind: string },
  payload: Uint8Array,
  bearer = token,
): Promise<RawResult> {
  const streaming = method.methodKind !== "unary";
  const body = protocol === "connect" && !streaming ? payload : envelope(payload);
  return rawCall(server.baseUrl, {
    protocol,
    path: path(method),
    body,
    streaming,
    headers: bearer ? { authorization: `Bearer ${bearer}` } : {},
    settleMs: streaming ? 2_000 : undefined,
  });
}

const bin = <D extends DescMessage>(desc: D, init: MessageInitShape<D>) => toBinary(desc, create(desc, init));
const b64 = (s: string) => Buffer.from(s).toString("base64url");

describe("client input is never INTERNAL (issue 11, item 3)", () => {
  // Field 1 (login) as a length-delimited string promising 100 bytes, with 2 there.
  const truncated = Uint8Array.from([0x0a, 100, 0x61, 0x62]);
  // Field 1 with invalid UTF-8.
  const badUtf8 = Uint8Array.from([0x0a, 0x02, 0xff, 0xfe]);
  // A varint of 11 bytes (more than 64 bits).
  const hugeVarint = Uint8Array.from([0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);

  it.each(PROTOCOLS)("a malformed unary body is INVALID_ARGUMENT over %s", async (protocol) => {
    for (const payload of [truncated, badUtf8, hugeVarint]) {
      const r = await call(protocol, AuthService.method.login, payload, "");
      expect(r.code, `${Buffer.from(payload).toString("hex")}: ${r.message}`).toBe(Code.InvalidArgument);
      expect(r.text).not.toMatch(/at .*\.(js|ts):\d+/);
    }
  });

  it.each(PROTOCOLS)("a malformed server-streaming request is INVALID_ARGUMENT over %s", async (protocol) => {
    const r = await call(protocol, PresenceService.method.watchPresence, badUtf8);
    expect(r.code, r.message).toBe(Code.InvalidArgument);
  });

  it.each(PROTOCOLS)("page tokens with out-of-range values are INVALID_ARGUMENT over %s", async (protocol) => {
    const id = "0b6f3e7a-5c1d-4e2f-9a8b-7c6d5e4f3a2b";
    const searches = [
      b64(JSON.stringify({ t: 9e15, s: 1, i: id })), // the format before, out of range
      b64(`srch1:9000000000000000:1:${id}`),
      b64(`srch1:1:99999999999999999999:${id}`),
    ];
    for (const pageToken of searches) {
      const r = await call(protocol, MessageService.method.searchMessages, bin(SearchMessagesRequestSchema, { query: "hello", pageToken }));
      expect(r.code, `${pageToken}: ${r.message}`).toBe(Code.InvalidArgument);
    }
    for (const pageToken of [b64(JSON.stringify([1e300, id])), b64(`ntf1:1${"0".repeat(300)}:${id}`), b64(`ntf1:-5:${id}`)]) {
      const r = await call(protocol, NotificationService.method.listNotifications, bin(ListNotificationsRequestSchema, { pageToken }));
      expect(r.code, `${pageToken}: ${r.message}`).toBe(Code.InvalidArgument);
    }
  });

  it.each(PROTOCOLS)("a signed access token whose sub is not a user id is UNAUTHENTICATED over %s", async (protocol) => {
    const forged = await new SignJWT({ sid: "not-a-uuid", roles: [], iat_ms: Date.now() })
      .setProtectedHeader({ alg: "HS256", typ: "at+jwt" })
      .setSubject("x'; DROP TABLE users; --")
      .setIssuer("chat.v1")
      .setAudience("chat.v1")
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(TEST_SECRET));
    const r = await call(protocol, AuthService.method.getMe, new Uint8Array(), forged);
    expect(r.code, r.message).toBe(Code.Unauthenticated);
  });

  it.each(PROTOCOLS)("a NUL byte in Login.login is INVALID_ARGUMENT over %s", async (protocol) => {
    const r = await call(protocol, AuthService.method.login, bin(LoginRequestSchema, { login: "ali\u0000ce", password: "whatever-password" }), "");
    expect(r.code, r.message).toBe(Code.InvalidArgument);
    expect(r.text).not.toMatch(/0x00|invalid byte sequence/);
    // Found by the fuzz test: a NUL in a user search reached Postgres.
    const search = await call(protocol, AuthService.method.searchUsers, bin(SearchUsersRequestSchema, { query: "9baba043-\u0000743" }));
    expect(search.code, search.message).toBe(Code.InvalidArgument);
  });

  it.each(PROTOCOLS)("a timestamp out of range is INVALID_ARGUMENT over %s", async (protocol) => {
    // Found by the fuzz test: MarkNotificationsSeen.up_to with seconds near 2^63 made an Invalid Date.
    const r = await call(
      protocol,
      NotificationService.method.markNotificationsSeen,
      bin(MarkNotificationsSeenRequestSchema, { upTo: { seconds: 9_000_000_000_000_000n, nanos: 1 } }),
    );
    expect(r.code, r.message).toBe(Code.InvalidArgument);
  });

  it.each(PROTOCOLS)("a compressed frame with no grpc-encoding is INVALID_ARGUMENT over %s", async (protocol) => {
    if (protocol === "connect") return; // Connect unary has no frames
    const r = await rawCall(server.baseUrl, {
      protocol,
      path: path(AuthService.method.getMe),
      body: envelope(new Uint8Array(), 0x01),
      headers: { authorization: `Bearer ${token}` },
    });
    expect(r.code, r.message).toBe(Code.InvalidArgument);
  });
});

describe("a bad frame never ends a Stream with OK (issue 11, item 4)", () => {
  const hello = envelope(bin(StreamRequestSchema, { frame: { case: "hello", value: { deviceId: "d1" } } }));
  const frames = (r: RawResult) => r.messages.map((m) => fromBinary(StreamResponseSchema, m).frame);

  it.each(PROTOCOLS)("an undecodable frame ends the stream with INVALID_ARGUMENT over %s", async (protocol) => {
    // A send frame (field 2) whose content (field 3) is invalid UTF-8.
    const sendBadUtf8 = Uint8Array.from([0x12, 0x04, 0x1a, 0x02, 0xff, 0xfe]);
    for (const bad of [sendBadUtf8, Uint8Array.from([0x12, 0x7f, 0x01])]) {
      const r = await rawCall(server.baseUrl, {
        protocol,
        path: path(MessageService.method.stream),
        body: Buffer.concat([hello, envelope(bad)]),
        streaming: true,
        http2: true, // bidirectional streams need HTTP/2 on every protocol
        headers: { authorization: `Bearer ${token}` },
        settleMs: 5_000,
      });
      expect(r.code, r.message).toBe(Code.InvalidArgument);
    }
  });

  it.each(PROTOCOLS)("an oversized frame ends the stream with RESOURCE_EXHAUSTED over %s", async (protocol) => {
    const big = bin(StreamRequestSchema, { frame: { case: "ping", value: { nonce: "x".repeat(70_000) } } });
    const r = await rawCall(server.baseUrl, {
      protocol,
      path: path(MessageService.method.stream),
      body: Buffer.concat([hello, envelope(big)]),
      streaming: true,
      http2: true,
      headers: { authorization: `Bearer ${token}` },
      settleMs: 5_000,
    });
    expect(r.code, r.message).toBe(Code.ResourceExhausted);
  });

  it.each(PROTOCOLS)("a decodable but invalid frame gets an error frame and the stream stays open over %s", async (protocol) => {
    const invalidSend = envelope(
      bin(StreamRequestSchema, { frame: { case: "send", value: { conversationId: "nope", clientMessageId: "c1", content: "" } } }),
    );
    const ping = envelope(bin(StreamRequestSchema, { frame: { case: "ping", value: { nonce: "after" } } }));
    const r = await rawCall(server.baseUrl, {
      protocol,
      path: path(MessageService.method.stream),
      body: Buffer.concat([hello, invalidSend, envelope(new Uint8Array()), ping]),
      streaming: true,
      http2: true,
      headers: { authorization: `Bearer ${token}` },
      settleMs: 1_500,
    });
    // Still open when we hung up (code null: cancelled by the test), having answered every frame in order.
    expect(r.code, r.message).toBeNull();
    const got = frames(r).filter((f) => f.case !== "ready");
    expect(got.map((f) => f.case)).toEqual(["error", "error", "pong"]);
    expect(got[0].case === "error" && got[0].value.code).toBe(Code.InvalidArgument);
    expect(got[1].case === "error" && got[1].value.code).toBe(Code.InvalidArgument);
    expect(got[2].case === "pong" && got[2].value.nonce).toBe("after");
  });
});
