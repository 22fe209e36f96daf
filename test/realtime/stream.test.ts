// MessageService.Stream on one node (in process, Postgres + Redis), through
// real grpc-js bidirectional streams.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { env } from "../support/backends.ts";
import { StreamClient } from "../support/stream-client.ts";
import { channel, group, users, type TestUser } from "./helpers.ts";

const run = env.postgres && env.redis ? describe : describe.skip;

run("Stream on one node [postgres + redis]", () => {
  let backends: ProvisionedBackends;
  let server: TestServer;
  let ch: grpc.Client;
  let alice: TestUser, bob: TestUser, carol: TestUser;
  let conv: string;
  const open: StreamClient[] = [];
  const stream = (u: TestUser, hello: { resumeToken?: string } = {}, opts: { autoRead?: boolean } = {}) => {
    const s = StreamClient.open(ch, u.token, hello, opts);
    open.push(s);
    return s;
  };

  beforeAll(async () => {
    backends = await provisionBackends({ sql: "postgres", redis: true });
    server = await startTestServer(backends.env, { STREAM_QUEUE_MAX: "50", STREAM_RESYNC_THRESHOLD: "20" });
    ch = channel(server.address);
    [alice, bob, carol] = await users(server.baseUrl, 3);
    conv = await group(server.baseUrl, alice, [bob, carol]);
  });
  afterAll(async () => {
    for (const s of open) s.cancel();
    ch?.close();
    await server?.close();
    await backends?.cleanup();
  });

  it("answers hello with ready, a send with send_ack, and delivers the event to every member", async () => {
    const a = stream(alice);
    const b = stream(bob);
    await a.until((s) => s.ready(), 10_000, "ready");
    await b.until((s) => s.ready(), 10_000, "ready");
    const ready = a.ready()!.frame.value as { resumeToken: string; heartbeatInterval?: { seconds: bigint } };
    expect(ready.resumeToken).not.toBe("");

    a.send(conv, "m-1", "hello bob");
    const ack = await a.until((s) => s.frames.find((f) => f.frame.case === "sendAck"));
    expect(ack.frame.case === "sendAck" && ack.frame.value.clientMessageId).toBe("m-1");
    const seq = ack.frame.case === "sendAck" ? Number(ack.frame.value.message!.seq) : 0;
    expect(seq).toBe(1);

    await b.until((s) => s.createdSeqs(conv).includes(1), 10_000, "bob gets message 1");
    const ev = b.events().find((e) => e.payload.case === "messageCreated")!;
    expect(ev.cursor).not.toBe("");
    expect(ev.payload.case === "messageCreated" && ev.payload.value.message?.content).toBe("hello bob");
    // The sender's own stream gets the event too (other devices of the sender rely on it).
    await a.until((s) => s.createdSeqs(conv).includes(1), 10_000, "alice gets her own message");
  });

  it("answers ping with pong", async () => {
    const a = stream(alice);
    await a.until((s) => s.ready());
    a.write({ frame: { case: "ping", value: { nonce: "n-42" } } });
    const pong = await a.until((s) => s.frames.find((f) => f.frame.case === "pong"));
    expect(pong.frame.case === "pong" && pong.frame.value.nonce).toBe("n-42");
  });

  it("rejects a stream whose first frame is not hello with INVALID_ARGUMENT", async () => {
    const s = new StreamClient(ch, alice.token);
    open.push(s);
    s.write({ frame: { case: "ping", value: { nonce: "x" } } });
    const status = await s.ended;
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it("rejects a malformed resume token with INVALID_ARGUMENT", async () => {
    const s = stream(alice, { resumeToken: "not-a-cursor!" });
    const status = await s.ended;
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.details).toContain("hello.resume_token");
  });
});
