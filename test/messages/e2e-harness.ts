// Real servers (one or two app instances on the same stores), real users and
// real clients for the message end-to-end tests.

import type { DescMessage, DescMethod, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { ConversationService, ConversationType } from "../../gen/chat/v1/conversation_pb.js";
import { MessageService } from "../../gen/chat/v1/message_pb.js";
import { provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { createConnectTransport } from "@connectrpc/connect-node";
import { bearer, GrpcJsClient, type GrpcError } from "../support/clients.ts";
import { seedUsers } from "../support/seed.ts";

export const MS = MessageService.method;
export const CS = ConversationService.method;

export type Variant = "postgres" | "mongo" | "pglite";

export type { TestUser } from "../support/seed.ts";
import type { TestUser } from "../support/seed.ts";

export interface MessageHarness {
  variant: Variant;
  servers: TestServer[];
  /** One grpc-js client per server. */
  grpc: GrpcJsClient[];
  /** A unary call through @grpc/grpc-js (as native stubs) as `user`, on server `node` (default 0). */
  call<I extends DescMessage, O extends DescMessage>(
    user: TestUser,
    method: DescMethod & { input: I; output: O },
    req: MessageInitShape<I>,
    opts?: { node?: number; metadata?: Record<string, string> },
  ): Promise<MessageShape<O>>;
  /** A Connect-protocol client with the JSON encoding (as browsers) as `user`. */
  connect(user: TestUser, node?: number): Client<typeof MessageService>;
  users(n: number): Promise<TestUser[]>;
  group(owner: TestUser, members: TestUser[]): Promise<string>;
  close(): Promise<void>;
}

/** `nodes` app instances sharing one set of stores (PGlite: one process owns it, so one node). */
export async function startMessageHarness(variant: Variant, nodes = 1): Promise<MessageHarness> {
  const backends: ProvisionedBackends = await provisionBackends({ sql: variant === "pglite" ? "pglite" : "postgres", mongo: variant === "mongo" });
  const servers: TestServer[] = [];
  const count = variant === "pglite" ? 1 : nodes;
  for (let i = 0; i < count; i++) {
    servers.push(await startTestServer(backends.env, { REGISTER_MAX_PER_ADDRESS: "1000000", NODE_ID: `node-${i}` }));
  }
  const grpc = servers.map((s) => new GrpcJsClient(s.address));
  const h: MessageHarness = {
    variant,
    servers,
    grpc,
    call: (user, method, req, opts = {}) => grpc[(opts.node ?? 0) % grpc.length].unary(method, req, { token: user.token, metadata: opts.metadata }),
    // JSON, as Connect-Web in a browser sends by default (connect-node defaults to binary).
    connect: (user, node = 0) =>
      createClient(
        MessageService,
        createConnectTransport({
          baseUrl: servers[node % servers.length].baseUrl,
          httpVersion: "1.1",
          useBinaryFormat: false,
          interceptors: [bearer(user.token)],
        }),
      ),
    // Seeded (user, session, token rows as Register writes them), without paying argon2id per user.
    users: (n) => seedUsers(servers[0], n),
    async group(owner, members) {
      const res = await h.call(owner, CS.createConversation, { type: ConversationType.GROUP, title: "", memberIds: members.map((m) => m.id) });
      return res.conversation!.id;
    },
    async close() {
      for (const g of grpc) g.close();
      for (const s of servers) await s.close();
      await backends.cleanup();
    },
  };
  return h;
}

import { failure as failureOf } from "../support/errors.ts";
export { grpcViolations, connectViolations } from "../support/errors.ts";

/** Awaits a call that must fail; these tests read it as a grpc-js error by default. */
export const failure = <E = GrpcError>(call: Promise<unknown>): Promise<E> => failureOf<E>(call);
