// The SDK (client/) against the real server on all three protocols: gRPC
// (bidirectional Stream through connect-node), Connect and gRPC-Web
// (Subscribe + unary, as a browser does).
//
// - a server killed (SIGKILL) and restarted mid-conversation, then stopped
//   gracefully (go_away) and restarted: nothing lost, nothing doubled, every
//   queued send resolved once;
// - ACCESS_TOKEN_TTL_SEC=5 for 60 s: the Stream stays open (refresh_auth in
//   band), Subscribe rolls over to the next call before each expiry, and the
//   events are complete and in order on all three;
// - 20 concurrent calls hitting an expired token: exactly one Refresh.

import { afterAll, beforeAll, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import type { Interceptor } from "@connectrpc/connect";
import { ChatClient, nodeTransport, type NodeProtocol } from "../../client/src/node.ts";
import { ConversationType } from "../../gen/chat/v1/conversation_pb.js";
import type { ChatMessage } from "../../gen/chat/v1/message_pb.js";
import { AccessTokens } from "../../src/auth/tokens.ts";
import { forEachBackend } from "../support/backends.ts";
import { DEFAULT_TEST_PASSWORD } from "../support/users.ts";
import { until } from "../support/poll.ts";
import {
  provisionBackends,
  spawnServer,
  startTestServer,
  TEST_SECRET,
  type ProvisionedBackends,
  type ServerProcess,
  type TestServer,
} from "../support/server.ts";

const PROTOCOLS: NodeProtocol[] = ["grpc", "connect", "grpc-web"];
const FAST = { baseMs: 100, maxMs: 1_000 };

interface Member {
  client: ChatClient;
  id: string;
  /** message_created seqs per conversation, in the order the listener saw them. */
  seqs: Map<string, number[]>;
  states: string[];
}

async function member(baseUrl: string, protocol: NodeProtocol, interceptors: Interceptor[] = []): Promise<Member> {
  const client = new ChatClient({ transport: nodeTransport({ baseUrl, protocol, interceptors }), backoff: FAST, deviceId: `dev-${protocol}` });
  const username = `sdk_${randomBytes(5).toString("hex")}`;
  const user = await client.register({ email: `${username}@example.test`, username, password: DEFAULT_TEST_PASSWORD, displayName: "" });
  const m: Member = { client, id: user.id, seqs: new Map(), states: [] };
  client.on("messageCreated", (v) => {
    const msg = v.message!;
    const list = m.seqs.get(msg.conversationId) ?? [];
    list.push(Number(msg.seq));
    m.seqs.set(msg.conversationId, list);
  });
  client.onState((s) => m.states.push(s));
  return m;
}

async function groupOf(owner: Member, others: Member[]): Promise<string> {
  const res = await owner.client.api.conversations.createConversation({
    type: ConversationType.GROUP,
    title: `sdk-${randomBytes(3).toString("hex")}`,
    memberIds: others.map((o) => o.id),
  });
  return res.conversation!.id;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

// A spawned server process killed and restarted on the same stores.
forEachBackend("SDK: a server killed and restarted mid-conversation, spawned server", ["postgres"] as const, () => {
  let backends: ProvisionedBackends;
  let server: ServerProcess | null = null;
  const members: Member[] = [];

  beforeAll(async () => {
    backends = await provisionBackends({ sql: "postgres" });
  });
  afterAll(async () => {
    for (const m of members) await m.client.close();
    await server?.stop();
    await backends?.cleanup();
  });

  it("loses nothing and doubles nothing on Stream (gRPC) and Subscribe (Connect, gRPC-Web) across a crash and a graceful restart; every send resolves once", async () => {
    const port = await freePort();
    server = await spawnServer(backends.env, { PORT: String(port), STREAM_HEARTBEAT_INTERVAL_MS: "2000" });
    const baseUrl = `http://127.0.0.1:${port}`;
    const sender = await member(baseUrl, "connect");
    const receivers: Member[] = [];
    for (const p of PROTOCOLS) receivers.push(await member(baseUrl, p));
    members.push(sender, ...receivers);
    const conv = await groupOf(sender, receivers);
    for (const r of receivers) r.client.connect();
    await until(() => receivers.every((r) => r.client.realtime?.state === "live"), 20_000, "all three live");
    expect(receivers.map((r) => r.client.realtime!.mode)).toEqual(["stream", "subscribe", "subscribe"]);

    const sent: ChatMessage[] = [];
    for (let i = 1; i <= 10; i++) sent.push(await sender.client.send(conv, `before ${i}`));
    await until(() => receivers.every((r) => (r.seqs.get(conv)?.length ?? 0) >= 10), 20_000, "10 messages on every receiver");

    // Sends queued and in flight while the server dies; it comes back on the same port.
    const pending = range(11, 20).map((i) => sender.client.send(conv, `during ${i}`));
    await server.kill();
    const settled = Promise.allSettled(pending);
    await until(() => receivers.every((r) => r.client.realtime!.state !== "live"), 20_000, "every receiver noticed");
    server = await spawnServer(backends.env, { PORT: String(port), STREAM_HEARTBEAT_INTERVAL_MS: "2000" });

    const results = await settled;
    expect(results.map((r) => r.status)).toEqual(Array(10).fill("fulfilled"));
    sent.push(...results.map((r) => (r as PromiseFulfilledResult<ChatMessage>).value));
    for (let i = 21; i <= 25; i++) sent.push(await sender.client.send(conv, `after ${i}`));
    await until(() => receivers.every((r) => (r.seqs.get(conv)?.length ?? 0) >= 25), 60_000, "25 messages on every receiver");
    for (const r of receivers) expect(r.client.realtime!.stats.reconnects).toBeGreaterThanOrEqual(1);

    // A graceful restart (SIGTERM): go_away, the call ends with status OK, and the clients come back
    // after reconnect_after (not taking "OK" for "done").
    const stopping = server.stop();
    const more = range(26, 30).map((i) => sender.client.send(conv, `restart ${i}`));
    expect(await stopping).toBe(0);
    server = await spawnServer(backends.env, { PORT: String(port), STREAM_HEARTBEAT_INTERVAL_MS: "2000" });
    sent.push(...(await Promise.all(more)));
    for (const r of receivers) expect(r.client.realtime!.stats.goAways).toBeGreaterThanOrEqual(1);

    // The sender's view: 30 distinct messages, seqs 1..30, in the order sent.
    expect(sent.map((m) => Number(m.seq))).toEqual(range(1, 30));
    expect(sent.map((m) => m.content)).toEqual([
      ...range(1, 10).map((i) => `before ${i}`),
      ...range(11, 20).map((i) => `during ${i}`),
      ...range(21, 25).map((i) => `after ${i}`),
      ...range(26, 30).map((i) => `restart ${i}`),
    ]);
    const listed = await sender.client.api.messages.listMessages({ conversationId: conv, limit: 100 });
    expect(listed.messages.length).toBe(30);

    // Every receiver: exactly 1..30, in order, none twice, across both restarts.
    await until(() => receivers.every((r) => (r.seqs.get(conv)?.length ?? 0) >= 30), 60_000, "30 messages on every receiver");
    for (const r of receivers) expect(r.seqs.get(conv)).toEqual(range(1, 30));
    expect(sender.client.pendingSends).toEqual([]);
  }, 180_000);
});

forEachBackend("SDK with ACCESS_TOKEN_TTL_SEC=5", ["postgres"] as const, () => {
  let backends: ProvisionedBackends;
  let server: TestServer;
  const members: Member[] = [];

  beforeAll(async () => {
    backends = await provisionBackends({ sql: "postgres" });
    server = await startTestServer(backends.env, { ACCESS_TOKEN_TTL_SEC: "5" });
  });
  afterAll(async () => {
    for (const m of members) await m.client.close();
    await server?.close();
    await backends?.cleanup();
  });

  it("keeps Stream and Subscribe open for 60 s with 5-second tokens, events complete and in order", async () => {
    const sender = await member(server.baseUrl, "connect");
    const receivers: Member[] = [];
    for (const p of PROTOCOLS) receivers.push(await member(server.baseUrl, p));
    members.push(sender, ...receivers);
    const conv = await groupOf(sender, receivers);
    for (const r of receivers) r.client.connect();
    await until(() => receivers.every((r) => r.client.realtime?.state === "live"), 20_000, "all three live");

    const end = Date.now() + 60_000;
    let n = 0;
    while (Date.now() < end) {
      n++;
      await sender.client.send(conv, `m ${n}`);
      // Paced by the server's own answers: wait until every receiver has it before the next.
      await until(() => receivers.every((r) => (r.seqs.get(conv)?.length ?? 0) >= n), 30_000, `message ${n} everywhere`);
    }
    for (const r of receivers) {
      expect(r.seqs.get(conv)).toEqual(range(1, n));
      const st = r.client.realtime!.stats;
      // Never dropped: the only states after the first "live" are "live" again (rollovers).
      expect(r.states.slice(r.states.indexOf("live"))).toEqual(Array(r.states.length - r.states.indexOf("live")).fill("live"));
      expect(st.reconnects).toBe(0);
      expect(r.client.realtime!.state).toBe("live");
    }
    const [grpc, connect, grpcWeb] = receivers.map((r) => r.client.realtime!.stats);
    // Stream: one call for the whole minute, its token replaced in band (12 lifetimes in 60 s).
    expect(grpc.connects).toBe(1);
    expect(grpc.inBandRefreshes).toBeGreaterThanOrEqual(10);
    // Subscribe: the next call before each expiry, handed over without a gap.
    for (const s of [connect, grpcWeb]) {
      expect(s.rollovers).toBeGreaterThanOrEqual(10);
      expect(s.connects).toBe(s.rollovers + 1);
    }
  }, 180_000);

  it("20 concurrent calls hitting an expired token make exactly one Refresh (and the session survives)", async () => {
    let refreshes = 0;
    const counter: Interceptor = (next) => async (req) => {
      if (req.method.name === "Refresh") refreshes++;
      return next(req);
    };
    for (const protocol of PROTOCOLS) {
      const m = await member(server.baseUrl, protocol, [counter]);
      members.push(m);
      const t = m.client.tokens.current!;
      // An access token the server refuses (expired an hour ago), which the client believes is good:
      // every call goes out with it and comes back UNAUTHENTICATED at the same time.
      const expired = await new AccessTokens(TEST_SECRET, 5).sign({ userId: m.id, sessionId: t.sessionId, roles: ["user"] }, Date.now() - 3_600_000);
      m.client.tokens.set({ ...t, accessToken: expired.token, accessTokenExpiresAt: Date.now() + 3_600_000 });
      refreshes = 0;
      const res = await Promise.all(Array.from({ length: 20 }, () => m.client.api.auth.getMe({})));
      expect(res.every((r) => r.user?.id === m.id)).toBe(true);
      expect(refreshes).toBe(1);

      // Known to be expired this time: the refresh happens before the calls, still once.
      const t2 = m.client.tokens.current!;
      m.client.tokens.set({ ...t2, accessTokenExpiresAt: Date.now() - 1 });
      refreshes = 0;
      await Promise.all(Array.from({ length: 20 }, () => m.client.api.conversations.listConversations({})));
      expect(refreshes).toBe(1);

      // Had any refresh token been presented twice, the server would have revoked the session.
      const sessions = await m.client.api.auth.listSessions({});
      expect(sessions.sessions.some((s) => s.current)).toBe(true);
      await m.client.tokens.refresh();
      await m.client.api.auth.getMe({});
    }
  });
});
