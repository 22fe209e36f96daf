// MessageService.Subscribe over the Connect protocol (HTTP/1.1, as browsers
// use it) carries the same events as Stream, resumes the same way, and
// AckEvents marks delivery. Also: heartbeats, and GoAway at shutdown.

import { afterAll, beforeAll, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { MessageService, type Event, type SubscribeResponse } from "../../gen/chat/v1/message_pb.js";
import { backendChoice, provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { forEachBackend } from "../support/backends.ts";
import { bearer } from "../support/clients.ts";
import { StreamClient } from "../support/stream-client.ts";
import { channel, group, messages, users, type TestUser } from "./helpers.ts";

/** A Subscribe call over Connect/HTTP 1.1 that records its frames. */
function subscribe(baseUrl: string, token: string, resumeToken = "") {
  const client = createClient(MessageService, createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors: [bearer(token)] }));
  const abort = new AbortController();
  const frames: SubscribeResponse[] = [];
  const ended = (async (): Promise<ConnectError | null> => {
    try {
      for await (const f of client.subscribe({ resumeToken }, { signal: abort.signal })) frames.push(f);
      return null;
    } catch (err) {
      return ConnectError.from(err);
    }
  })();
  // Durable events only (presence and typing are ephemeral and timing-dependent).
  const events = () => frames.flatMap((f) => (f.frame.case === "event" && f.frame.value.cursor !== "" ? [f.frame.value] : []));
  return { frames, events, ended, cancel: () => abort.abort() };
}

async function until<T>(check: () => T | undefined | null | false, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not met in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** What an event says, without its per-stream cursor. */
function describeEvent(e: Event): string {
  const p = e.payload;
  switch (p.case) {
    case "messageCreated":
    case "messageEdited":
      return `${p.case}:${p.value.message!.seq}:${p.value.message!.content}:${p.value.message!.deleted}`;
    case "messageDeleted":
      return `${p.case}:${p.value.seq}`;
    case "reactionUpdated":
      return `${p.case}:${p.value.emoji}:${p.value.added}`;
    case "receiptUpdated":
      return `${p.case}:${p.value.userId}:${p.value.deliveredSeq}:${p.value.readSeq}`;
    default:
      return `${p.case}`;
  }
}

forEachBackend("Subscribe over Connect", ["embedded", "postgres+redis"] as const, (backend) => {
  let backends: ProvisionedBackends;
  let server: TestServer;
  let ch: grpc.Client;
  let alice: TestUser, bob: TestUser;
  let conv: string;
  const cleanup: (() => void)[] = [];

  beforeAll(async () => {
    backends = await provisionBackends(backendChoice(backend));
    server = await startTestServer(backends.env, { STREAM_HEARTBEAT_INTERVAL_MS: "1000" });
    ch = channel(server.address);
    [alice, bob] = await users(server, 2);
    conv = await group(server.baseUrl, alice, [bob]);
  });
  afterAll(async () => {
    for (const c of cleanup) c();
    ch?.close();
    await server?.close();
    await backends?.cleanup();
  });

  it("gets the same events as Stream, resumes from a cursor, and AckEvents marks delivery", async () => {
    const sub = subscribe(server.baseUrl, bob.token);
    cleanup.push(sub.cancel);
    const bobStream = StreamClient.open(ch, bob.token).keepAlive(300);
    cleanup.push(() => bobStream.cancel());
    await until(() => sub.frames.find((f) => f.frame.case === "ready"), "subscribe ready");
    await bobStream.until((s) => s.ready());

    const api = messages(server.baseUrl, alice.token);
    const m1 = (await api.sendMessage({ conversationId: conv, clientMessageId: "s-1", content: "one" })).message!;
    await api.sendMessage({ conversationId: conv, clientMessageId: "s-2", content: "two" });
    await api.editMessage({ messageId: m1.id, content: "one, edited" });
    await api.addReaction({ messageId: m1.id, emoji: "👍" });
    const m3 = (await api.sendMessage({ conversationId: conv, clientMessageId: "s-3", content: "three" })).message!;
    await api.deleteMessage({ messageId: m3.id });

    const expected = [
      "messageCreated:1:one:false",
      "messageCreated:2:two:false",
      "messageEdited:1:one, edited:false",
      "reactionUpdated:👍:true",
      "messageCreated:3:three:false",
      "messageDeleted:3",
    ];
    await until(() => sub.events().length >= expected.length, "subscribe events");
    await bobStream.until((s) => s.durable().length >= expected.length);
    expect(sub.events().map(describeEvent)).toEqual(expected);
    expect(bobStream.durable().map(describeEvent)).toEqual(expected);
    expect(sub.events().every((e) => e.cursor !== "" && e.conversationId === conv)).toBe(true);

    // Resume: cancel, miss two messages, come back with the last cursor.
    const cursor = sub.events()[sub.events().length - 1].cursor;
    sub.cancel();
    await sub.ended;
    await api.sendMessage({ conversationId: conv, clientMessageId: "s-4", content: "four" });
    await api.sendMessage({ conversationId: conv, clientMessageId: "s-5", content: "five" });
    const again = subscribe(server.baseUrl, bob.token, cursor);
    cleanup.push(again.cancel);
    await until(() => again.events().length >= 2, "replay over Subscribe");
    expect(again.events().map(describeEvent)).toEqual(["messageCreated:4:four:false", "messageCreated:5:five:false"]);

    // Delivery receipt through the unary AckEvents (browsers cannot send on the stream).
    const aliceStream = StreamClient.open(ch, alice.token).keepAlive(300);
    cleanup.push(() => aliceStream.cancel());
    await aliceStream.until((s) => s.ready());
    await messages(server.baseUrl, bob.token).ackEvents({ cursor: again.events()[1].cursor });
    await aliceStream.until((s) =>
      s.events().find((e) => e.payload.case === "receiptUpdated" && e.payload.value.userId === bob.id && e.payload.value.deliveredSeq === 5n),
    );
  });

  it("sends heartbeats on an idle Subscribe", async () => {
    const sub = subscribe(server.baseUrl, bob.token);
    cleanup.push(sub.cancel);
    await until(() => sub.frames.filter((f) => f.frame.case === "heartbeat").length >= 2, "two heartbeats", 15_000);
  });

  it("rejects a bad cursor in AckEvents and Subscribe with INVALID_ARGUMENT naming the field", async () => {
    const err = await messages(server.baseUrl, bob.token)
      .ackEvents({ cursor: "%%%" })
      .then(
        () => null,
        (e: unknown) => ConnectError.from(e),
      );
    expect(err?.code).toBe(Code.InvalidArgument);
    expect(err?.message).toContain("cursor");
    const sub = subscribe(server.baseUrl, bob.token, "bm90IGEgY3Vyc29y");
    const ended = await sub.ended;
    expect(ended?.code).toBe(Code.InvalidArgument);
    expect(ended?.message).toContain("resume_token");
  });

  it("rejects another user's cursor", async () => {
    const s = StreamClient.open(ch, alice.token);
    cleanup.push(() => s.cancel());
    await s.until((x) => x.ready());
    const alicesCursor = (s.ready()!.frame.value as { resumeToken: string }).resumeToken;
    const err = await messages(server.baseUrl, bob.token)
      .ackEvents({ cursor: alicesCursor })
      .then(
        () => null,
        (e: unknown) => ConnectError.from(e),
      );
    expect(err?.code).toBe(Code.InvalidArgument);
  });

  it("sends GoAway to every stream when the server shuts down, then ends them", async () => {
    // A second node, so this one can be stopped: on the same stores, or (embedded: one
    // process owns a PGlite directory) on its own, with its own users.
    const own = backend === "embedded" ? await provisionBackends(backendChoice(backend)) : null;
    const node = await startTestServer((own ?? backends).env);
    const nodeCh = channel(node.address, { own: true });
    try {
      const [a, b] = own ? await users(node, 2) : [alice, bob];
      const s = StreamClient.open(nodeCh, a.token);
      const sub = subscribe(node.baseUrl, b.token);
      await s.until((x) => x.ready());
      await until(() => sub.frames.find((f) => f.frame.case === "ready"), "ready");
      await node.close();
      const status = await s.ended;
      expect(status.code).toBe(grpc.status.OK);
      const goAway = s.frames.find((f) => f.frame.case === "goAway");
      expect(goAway?.frame.case === "goAway" && goAway.frame.value.reason).toContain("shutting down");
      expect(await sub.ended).toBeNull();
      expect(sub.frames.some((f) => f.frame.case === "goAway")).toBe(true);
    } finally {
      nodeCh.close();
      await node.close();
      await own?.cleanup();
    }
  });
});
