// MessageService.Stream on one node (in process), through real grpc-js
// bidirectional streams: on the embedded default (PGlite + the in-process
// ephemeral store) and on Postgres + Redis.

import { afterAll, beforeAll, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { backendChoice, provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { forEachBackend } from "../support/backends.ts";
import { StreamClient } from "../support/stream-client.ts";
import { AccessTokens } from "../../src/auth/tokens.ts";
import { TEST_SECRET } from "../support/server.ts";
import { connectClient } from "../support/clients.ts";
import { AuthService } from "../../gen/chat/v1/auth_pb.js";
import type { Event } from "../../gen/chat/v1/message_pb.js";
import { randomBytes } from "node:crypto";
import { channel, conversations, group, messages, stallableProxy, users, type TestUser } from "./helpers.ts";

/** message_created seqs of `conversationId` in a list of events. */
function seqsOf(events: Event[], conversationId: string): number[] {
  return events
    .filter((e) => e.conversationId === conversationId && e.payload.case === "messageCreated")
    .map((e) => Number(e.payload.case === "messageCreated" ? e.payload.value.message!.seq : -1));
}

async function metric(adminPort: number, line: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const m = text.split("\n").find((l) => line.test(l));
  return m ? Number(m.split(" ").pop()) : 0;
}

forEachBackend("Stream on one node", ["embedded", "postgres+redis"] as const, (backend) => {
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
    backends = await provisionBackends(backendChoice(backend));
    server = await startTestServer(backends.env, { STREAM_QUEUE_MAX: "50", STREAM_RESYNC_THRESHOLD: "20", MESSAGE_MAX_CHARS: "40000" });
    ch = channel(server.address);
    [alice, bob, carol] = await users(server, 3);
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

  it("resumes from a cursor with every missed event exactly once, in order, then live", async () => {
    const b = stream(bob);
    const a = stream(alice);
    await a.until((s) => s.ready());
    await b.until((s) => s.ready());
    a.send(conv, "r-1", "one");
    await b.until((s) =>
      s.frames.some(
        (f) =>
          f.frame.case === "event" &&
          f.frame.value.payload.case === "messageCreated" &&
          f.frame.value.payload.value.message?.clientMessageId === "r-1",
      ),
    );
    const cursor = b.lastCursor();
    const seen = seqsOf(b.events(), conv);
    b.cancel();
    await b.ended;

    for (let i = 2; i <= 6; i++) a.send(conv, `r-${i}`, `msg ${i}`);
    await a.until((s) => s.frames.filter((f) => f.frame.case === "sendAck" && f.frame.value.clientMessageId.startsWith("r-")).length === 6);
    const acked = a.frames.flatMap((f) =>
      f.frame.case === "sendAck" && f.frame.value.clientMessageId.startsWith("r-") ? [Number(f.frame.value.message!.seq)] : [],
    );

    const b2 = stream(bob, { resumeToken: cursor });
    await b2.until((s) => acked.slice(1).every((q) => s.createdSeqs(conv).includes(q)), 10_000, "replay of the missed messages");
    // Nothing from before the cursor again, nothing twice, in order.
    const replayed = b2.createdSeqs(conv);
    expect(replayed).toEqual(acked.slice(1));
    expect(replayed.some((q) => seen.includes(q))).toBe(false);
    // Ready comes first, and live continues after the replay.
    expect(b2.frames[0].frame.case).toBe("ready");
    a.send(conv, "r-7", "live again");
    await b2.until((s) => s.createdSeqs(conv).length === acked.length);
    expect(b2.createdSeqs(conv)).toEqual([...acked.slice(1), Math.max(...acked) + 1]);
  });

  it("gives one message for a send retried with the same client_message_id after a dropped connection", async () => {
    const first = stream(alice);
    await first.until((s) => s.ready());
    first.send(conv, "retry-1", "only once");
    first.cancel(); // dropped before (or after) the server stored it: the client cannot know
    await first.ended;
    const second = stream(alice);
    await second.until((s) => s.ready());
    second.send(conv, "retry-1", "only once");
    second.send(conv, "retry-1", "only once");
    await second.until((s) => s.frames.filter((f) => f.frame.case === "sendAck").length === 2);
    const acks = second.frames.flatMap((f) => (f.frame.case === "sendAck" ? [f.frame.value.message!] : []));
    expect(acks[0].id).toBe(acks[1].id);
    const list = await messages(server.baseUrl, alice.token).listMessages({ conversationId: conv, limit: 200 });
    expect(list.messages.filter((m) => m.clientMessageId === "retry-1")).toHaveLength(1);
  });

  it("answers a bad send with an error frame naming the field, and stays open", async () => {
    const a = stream(alice);
    await a.until((s) => s.ready());
    a.send(conv, "bad-1", "");
    const err = await a.until((s) => s.frames.find((f) => f.frame.case === "error"));
    expect(err.frame.case === "error" && err.frame.value.clientMessageId).toBe("bad-1");
    expect(err.frame.case === "error" && err.frame.value.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.frame.case === "error" && err.frame.value.fieldViolations.map((v) => v.field)).toContain("content");
    a.write({ frame: { case: "ping", value: { nonce: "still-here" } } });
    await a.until((s) => s.frames.find((f) => f.frame.case === "pong"));
  });

  it("brings delivery (ack) and read (mark_read) receipts to the sender", async () => {
    const a = stream(alice);
    const b = stream(bob);
    await a.until((s) => s.ready());
    await b.until((s) => s.ready());
    a.send(conv, "rcpt-1", "did you get this?");
    const ack = await a.until((s) => s.frames.find((f) => f.frame.case === "sendAck" && f.frame.value.clientMessageId === "rcpt-1"));
    const seq = ack.frame.case === "sendAck" ? ack.frame.value.message!.seq : 0n;
    await b.until((s) => s.createdSeqs(conv).includes(Number(seq)));
    b.write({ frame: { case: "ack", value: { cursor: b.lastCursor() } } });
    const receipt = (s: StreamClient, field: "deliveredSeq" | "readSeq") =>
      s.events().find((e) => e.payload.case === "receiptUpdated" && e.payload.value.userId === bob.id && e.payload.value[field] >= seq);
    const delivered = await a.until((s) => receipt(s, "deliveredSeq"), 10_000, "delivery receipt");
    expect(delivered.cursor).not.toBe("");
    b.write({ frame: { case: "markRead", value: { conversationId: conv, seq } } });
    const read = await a.until((s) => receipt(s, "readSeq"), 10_000, "read receipt");
    expect(read.payload.case === "receiptUpdated" && read.payload.value.readSeq).toBe(seq);
  });

  it("relays typing to the other members only, without a cursor", async () => {
    const a = stream(alice);
    const b = stream(bob);
    await a.until((s) => s.ready());
    await b.until((s) => s.ready());
    b.write({ frame: { case: "typing", value: { conversationId: conv, typing: true } } });
    const t = await a.until((s) => s.frames.find((f) => f.frame.case === "event" && f.frame.value.payload.case === "typingUpdated"));
    const ev = t.frame.value as Event;
    expect(ev.cursor).toBe("");
    expect(ev.payload.case === "typingUpdated" && ev.payload.value.userId).toBe(bob.id);
    // Bob's own stream does not hear his typing; a ping proves his stream processed past it.
    b.write({ frame: { case: "ping", value: { nonce: "after-typing" } } });
    await b.until((s) => s.frames.find((f) => f.frame.case === "pong"));
    expect(b.events().some((e) => e.payload.case === "typingUpdated")).toBe(false);
  });

  it("stops a removed member's events at once, and adds a new member's conversation live", async () => {
    const [dan] = await users(server, 1);
    const d = stream(dan);
    await d.until((s) => s.ready());
    const owner = conversations(server.baseUrl, alice.token);
    await owner.addMembers({ conversationId: conv, userIds: [dan.id] });
    // Joining changes the stream's set live: the join itself, then messages.
    await d.until((s) => s.events().find((e) => e.conversationId === conv && e.payload.case === "memberJoined" && e.payload.value.userId === dan.id));
    const a = stream(alice);
    await a.until((s) => s.ready());
    a.send(conv, "rm-1", "welcome dan");
    await d.until((s) => s.events().some((e) => e.payload.case === "messageCreated" && e.payload.value.message?.clientMessageId === "rm-1"));

    await owner.removeMember({ conversationId: conv, userId: dan.id });
    await d.until((s) => s.events().find((e) => e.payload.case === "memberLeft" && e.payload.value.userId === dan.id && e.payload.value.removed));
    const b = stream(bob);
    await b.until((s) => s.ready());
    a.send(conv, "rm-2", "dan is gone");
    await b.until((s) => s.events().some((e) => e.payload.case === "messageCreated" && e.payload.value.message?.clientMessageId === "rm-2"));
    // Dan's stream processed everything up to now (its pong comes after), and has no rm-2.
    d.write({ frame: { case: "ping", value: { nonce: "after-removal" } } });
    await d.until((s) => s.frames.find((f) => f.frame.case === "pong"));
    expect(d.events().some((e) => e.payload.case === "messageCreated" && e.payload.value.message?.clientMessageId === "rm-2")).toBe(false);
    d.write({ frame: { case: "typing", value: { conversationId: conv, typing: true } } });
    const err = await d.until((s) => s.frames.find((f) => f.frame.case === "error"));
    expect(err.frame.case === "error" && err.frame.value.code).toBe(grpc.status.NOT_FOUND);
  });

  it("delivers conversation_updated with the conversation as it is now", async () => {
    const b = stream(bob);
    await b.until((s) => s.ready());
    await conversations(server.baseUrl, alice.token).updateConversation({ conversationId: conv, title: "renamed group" });
    const ev = await b.until((s) => s.durable().find((e) => e.payload.case === "conversationUpdated"));
    expect(ev.conversationId).toBe(conv);
    expect(ev.payload.case === "conversationUpdated" && ev.payload.value.conversation?.title).toBe("renamed group");
    expect(ev.payload.case === "conversationUpdated" && ev.payload.value.conversation?.id).toBe(conv);
  });

  it("says resync_required (and does not replay) when the gap exceeds the threshold", async () => {
    const [erin, finn] = await users(server, 2);
    const c2 = await group(server.baseUrl, erin, [finn]);
    const f = stream(finn);
    await f.until((s) => s.ready());
    const cursor = (f.ready()!.frame.value as { resumeToken: string }).resumeToken;
    f.cancel();
    const e = stream(erin);
    await e.until((s) => s.ready());
    for (let i = 0; i < 25; i++) e.send(c2, `gap-${i}`, `m${i}`); // threshold is 20
    await e.until((s) => s.frames.filter((x) => x.frame.case === "sendAck").length === 25);
    const f2 = stream(finn, { resumeToken: cursor });
    const rr = await f2.until((s) => s.frames.find((x) => x.frame.case === "resyncRequired"));
    expect(rr.frame.case === "resyncRequired" && rr.frame.value.conversationIds).toEqual([c2]);
    // Live resumes right after: the next message arrives, the 25 are not replayed.
    e.send(c2, "gap-live", "after");
    await f2.until((s) => s.events().some((x) => x.payload.case === "messageCreated" && x.payload.value.message?.clientMessageId === "gap-live"));
    expect(f2.createdSeqs(c2)).toEqual([26]);
  });

  it("closes the stream with UNAUTHENTICATED when the access token expires", async () => {
    const short = await new AccessTokens(TEST_SECRET, 2).sign({ userId: alice.id, sessionId: alice.sessionId, roles: ["user"] });
    const s = StreamClient.open(ch, short.token);
    open.push(s);
    await s.until((x) => x.ready());
    const status = await s.ended;
    expect(status.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(status.details).toContain("expired");
  });

  it("closes a revoked session's stream at once", async () => {
    const [gus] = await users(server, 1);
    const s = stream(gus);
    await s.until((x) => x.ready());
    await connectClient(AuthService, "connect", server.baseUrl, gus.token).logout({});
    const status = await s.ended;
    expect(status.code).toBe(grpc.status.UNAUTHENTICATED);
  });

  // Also the sender's own case: it sends far faster than its stream can carry the acks and events
  // its sends produce (on the embedded default every insert blocks this process's event loop, so
  // the transport falls behind); it must be slowed by flow control, never cut off as fell-behind.
  it("cuts off a reader that stopped reading with RESOURCE_EXHAUSTED while a healthy reader beside it (and the sender) gets everything", async () => {
    const [hal, ivy, jo] = await users(server, 3);
    const c3 = await group(server.baseUrl, hal, [ivy, jo]);
    // Ivy's device stops reading at the TCP level; Jo is a healthy device on its own connection.
    const proxy = await stallableProxy(server.port);
    const slowCh = channel(proxy.address, { own: true });
    const healthyCh = channel(server.address, { own: true });
    try {
      const slow = StreamClient.open(slowCh, ivy.token);
      open.push(slow);
      // Pings as apps do: on a slow machine the sends outlast three heartbeat intervals.
      const healthy = StreamClient.open(healthyCh, jo.token).keepAlive(2_000);
      open.push(healthy);
      await slow.until((s) => s.ready());
      await healthy.until((s) => s.ready());
      proxy.stall();
      const cutBefore = await metric(server.app.adminPort!, /^realtime_stream_closed_total\{reason="fell_behind"\}/);
      const h = stream(hal).keepAlive(2_000);
      await h.until((s) => s.ready());
      // Incompressible 30 KB messages (responses are gzip-compressed): 100 of them are far more
      // than the queue bound (50 frames) plus the HTTP/2 window (64 KB) plus socket buffers.
      const N = 100;
      for (let i = 0; i < N; i++) h.send(c3, `slow-${i}`, randomBytes(22_500).toString("base64"));
      await healthy.until((s) => s.createdSeqs(c3).length === N, 150_000, "healthy reader gets every message");
      expect(healthy.createdSeqs(c3)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
      await h.until((s) => s.frames.filter((f) => f.frame.case === "sendAck").length === N, 30_000, "the sender gets every ack");
      // The server cut the stalled one off (its own queue bound, not TCP, limited what it held).
      const deadline = Date.now() + 10_000;
      while ((await metric(server.app.adminPort!, /^realtime_stream_closed_total\{reason="fell_behind"\}/)) <= cutBefore) {
        if (Date.now() > deadline) throw new Error("the stalled reader was not cut off");
        await new Promise((r) => setTimeout(r, 20));
      }
      // Once its network comes back, the client learns why and can resume from its last cursor.
      proxy.resume();
      const status = await slow.ended;
      expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(slow.createdSeqs(c3).length).toBeLessThan(N);
      // It resumes from its last cursor; here the gap (~100 events) exceeds this server's
      // resync threshold (20), so it is told to reload the conversation rather than replayed.
      const back = stream(ivy, { resumeToken: slow.lastCursor() || (slow.ready()!.frame.value as { resumeToken: string }).resumeToken });
      const rr = await back.until((s) => s.frames.find((f) => f.frame.case === "resyncRequired"));
      expect(rr.frame.case === "resyncRequired" && rr.frame.value.conversationIds).toEqual([c3]);
    } finally {
      slowCh.close();
      healthyCh.close();
      await proxy.close();
    }
  }, 240_000);

  it("rejects a malformed resume token with INVALID_ARGUMENT", async () => {
    const s = stream(alice, { resumeToken: "not-a-cursor!" });
    const status = await s.ended;
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.details).toContain("hello.resume_token");
  });
});
