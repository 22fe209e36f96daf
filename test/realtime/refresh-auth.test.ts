// Streams outlive access tokens: a `refresh_auth` frame with a fresh token for
// the same user and session moves the stream's expiry (answered by
// `auth_refreshed`); anything else is an error frame and the stream still ends
// UNAUTHENTICATED at the old expiry. Real grpc-js bidirectional streams against
// the in-process server (embedded default, and Postgres + Redis).

import { afterAll, beforeAll, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { backendChoice, provisionBackends, startTestServer, TEST_SECRET, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { forEachBackend } from "../support/backends.ts";
import { StreamClient } from "../support/stream-client.ts";
import { AccessTokens } from "../../src/auth/tokens.ts";
import type { StreamResponse } from "../../gen/chat/v1/message_pb.js";
import { channel, group, users, type TestUser } from "./helpers.ts";

function readyExpiry(s: StreamClient): number {
  const r = s.ready()!;
  if (r.frame.case !== "ready" || !r.frame.value.accessTokenExpiresAt) throw new Error("ready without access_token_expires_at");
  return timestampMs(r.frame.value.accessTokenExpiresAt);
}

const authRefreshed = (s: StreamClient) => s.frames.filter((f) => f.frame.case === "authRefreshed");
const errors = (s: StreamClient) => s.frames.flatMap((f: StreamResponse) => (f.frame.case === "error" ? [f.frame.value] : []));

forEachBackend("Stream refresh_auth", ["embedded", "postgres+redis"] as const, (backend) => {
  let backends: ProvisionedBackends;
  let server: TestServer;
  let ch: grpc.Client;
  let alice: TestUser, bob: TestUser;
  let conv: string;
  const open: StreamClient[] = [];
  const sign = (u: TestUser, ttlSec: number) => new AccessTokens(TEST_SECRET, ttlSec).sign({ userId: u.id, sessionId: u.sessionId, roles: ["user"] });

  beforeAll(async () => {
    backends = await provisionBackends(backendChoice(backend));
    server = await startTestServer(backends.env, { STREAM_HEARTBEAT_INTERVAL_MS: "1000" });
    ch = channel(server.address);
    [alice, bob] = await users(server, 2);
    conv = await group(server.baseUrl, alice, [bob]);
  });
  afterAll(async () => {
    for (const s of open) s.cancel();
    ch?.close();
    await server?.close();
    await backends?.cleanup();
  });

  it("ready tells the token's expiry; a fresh token of the same session extends the stream past it", async () => {
    const short = await sign(alice, 8); // long enough for the refresh round trip on a loaded machine
    const s = StreamClient.open(ch, short.token).keepAlive(500);
    open.push(s);
    await s.until((x) => x.ready());
    expect(readyExpiry(s)).toBe(short.expiresAt.getTime());

    const fresh = await sign(alice, 60);
    s.write({ frame: { case: "refreshAuth", value: { accessToken: fresh.token } } });
    const ack = await s.until((x) => authRefreshed(x)[0]);
    expect(ack.frame.case === "authRefreshed" && timestampMs(ack.frame.value.expiresAt!)).toBe(fresh.expiresAt.getTime());

    // Past the first token's expiry (plus the hub's tick), the stream is still open and delivering.
    await s.until(() => Date.now() > short.expiresAt.getTime() + 1_500, 20_000, "the first token expired");
    expect(s.finalStatus).toBeNull();
    s.send(conv, "after-expiry", "still here");
    await s.until((x) => x.frames.find((f) => f.frame.case === "sendAck" && f.frame.value.clientMessageId === "after-expiry"));
    expect(s.finalStatus).toBeNull();
    expect(errors(s)).toEqual([]);
  });

  it("refuses another user's token, a garbage token and an empty one with error frames; the stream ends at the old expiry", async () => {
    const short = await sign(alice, 3);
    const s = StreamClient.open(ch, short.token).keepAlive(500);
    open.push(s);
    await s.until((x) => x.ready());

    s.write({ frame: { case: "refreshAuth", value: { accessToken: (await sign(bob, 60)).token } } });
    s.write({ frame: { case: "refreshAuth", value: { accessToken: "not-a-jwt" } } });
    s.write({ frame: { case: "refreshAuth", value: { accessToken: "" } } });
    // Same user, another session: not this stream's either.
    const other = await new AccessTokens(TEST_SECRET, 60).sign({ userId: alice.id, sessionId: bob.sessionId, roles: ["user"] });
    s.write({ frame: { case: "refreshAuth", value: { accessToken: other.token } } });
    await s.until((x) => errors(x).length === 4, 10_000, "four error frames");
    const codes = errors(s).map((e) => e.code as number);
    expect(codes).toEqual([grpc.status.INVALID_ARGUMENT, grpc.status.UNAUTHENTICATED, grpc.status.INVALID_ARGUMENT, grpc.status.INVALID_ARGUMENT]);
    expect(errors(s)[0].fieldViolations.map((v) => v.field)).toEqual(["refresh_auth.access_token"]);
    expect(authRefreshed(s)).toEqual([]);

    const status = await s.ended;
    expect(status.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(Date.now()).toBeGreaterThanOrEqual(short.expiresAt.getTime());
  });
});
