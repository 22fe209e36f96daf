// Shared set-up for the realtime tests: real users through Register, real
// groups through CreateConversation, grpc-js channels to each node.

import * as grpc from "@grpc/grpc-js";
import { ConversationService, ConversationType } from "../../gen/chat/v1/conversation_pb.js";
import { MessageService } from "../../gen/chat/v1/message_pb.js";
import { connectClient } from "../support/clients.ts";
import { registerUser } from "../support/users.ts";
import { seedUsers, type SeedTarget, type TestUser } from "../support/seed.ts";
import type { TestServer } from "../support/server.ts";

export type { TestUser } from "../support/seed.ts";

/**
 * `n` users with a session each: seeded straight into an in-process server's
 * store or a SeedTarget (fast), or registered through Register when only a URL is given.
 */
export async function users(server: TestServer | SeedTarget | string, n: number): Promise<TestUser[]> {
  if (typeof server !== "string") return seedUsers(server, n);
  const out: TestUser[] = [];
  // One at a time: registration hashes passwords (argon2) and the machine is small.
  for (let i = 0; i < n; i++) {
    const u = await registerUser(server);
    out.push({ id: u.user.id, username: u.user.username, token: u.accessToken, sessionId: u.sessionId, refreshToken: u.refreshToken });
  }
  return out;
}

/** A group owned by the first user with the others as members; returns its id. */
export async function group(baseUrl: string, owner: TestUser, members: TestUser[]): Promise<string> {
  const client = connectClient(ConversationService, "connect", baseUrl, owner.token);
  const res = await client.createConversation({
    type: ConversationType.GROUP,
    title: `g-${Math.random().toString(36).slice(2, 8)}`,
    memberIds: members.map((m) => m.id),
  });
  return res.conversation!.id;
}

export function conversations(baseUrl: string, token: string) {
  return connectClient(ConversationService, "connect", baseUrl, token);
}

export function messages(baseUrl: string, token: string) {
  return connectClient(MessageService, "connect", baseUrl, token);
}

/**
 * A raw grpc-js channel to one node (what a native app holds). `own`: its own
 * TCP connection (grpc-js otherwise shares one per address in a process), as
 * two different devices would have.
 */
export function channel(address: string, opts: { own?: boolean } = {}): grpc.Client {
  return new grpc.Client(address, grpc.credentials.createInsecure(), opts.own ? { "grpc.use_local_subchannel_pool": 1 } : {});
}

/**
 * A TCP proxy in front of a node whose server-to-client direction can be
 * stalled: the client's device stops reading (a frozen app, a dead radio), so
 * TCP and HTTP/2 flow control push back on the server. (A grpc-js stream that
 * is merely never read does not: Node's HTTP/2 client keeps granting window
 * and buffers everything in the client process, so the server never sees
 * backpressure from it.)
 */
export async function stallableProxy(targetPort: number): Promise<{ address: string; stall(): void; resume(): void; close(): Promise<void> }> {
  const net = await import("node:net");
  let stalled = false;
  const downstream = new Set<import("node:net").Socket>();
  const sockets = new Set<import("node:net").Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    upstream.on("data", (d: Buffer) => client.write(d));
    downstream.add(upstream);
    if (stalled) upstream.pause();
    const done = () => {
      client.destroy();
      upstream.destroy();
      downstream.delete(upstream);
    };
    client.on("error", done).on("close", done);
    upstream.on("error", done).on("close", done);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as import("node:net").AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    stall() {
      stalled = true;
      for (const s of downstream) s.pause();
    },
    resume() {
      stalled = false;
      for (const s of downstream) s.resume();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
