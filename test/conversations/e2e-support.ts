// A real server plus real users for the conversation end-to-end tests.

import type { DescMessage, DescMethod, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { ConversationService } from "../../gen/chat/v1/conversation_pb.js";
import type { SqlBackendName } from "../support/backends.ts";
import { provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { GrpcJsClient } from "../support/clients.ts";
import { seedUsers } from "../support/seed.ts";

export const M = ConversationService.method;

export type { TestUser } from "../support/seed.ts";
import type { TestUser } from "../support/seed.ts";

export interface Harness {
  server: TestServer;
  grpc: GrpcJsClient;
  /** A unary call through @grpc/grpc-js as `user`. */
  call<I extends DescMessage, O extends DescMessage>(
    user: TestUser,
    method: DescMethod & { input: I; output: O },
    req: MessageInitShape<I>,
  ): Promise<MessageShape<O>>;
  users(n: number): Promise<TestUser[]>;
  close(): Promise<void>;
}

/** `mongo`: messages in MongoDB (the relational store still holds conversations). */
export async function startHarness(sql: SqlBackendName, overrides: Record<string, string> = {}, opts: { mongo?: boolean } = {}): Promise<Harness> {
  const backends: ProvisionedBackends = await provisionBackends({ sql, mongo: opts.mongo });
  // Tests register many users from one address.
  const server = await startTestServer(backends.env, { REGISTER_MAX_PER_ADDRESS: "1000000", ...overrides });
  const grpc = new GrpcJsClient(server.address);
  return {
    server,
    grpc,
    call: (user, method, req) => grpc.unary(method, req, { token: user.token }),
    // Seeded (user, session, token rows as Register writes them), without paying argon2id per user.
    users: (n) => seedUsers(server, n),
    async close() {
      grpc.close();
      await server.close();
      await backends.cleanup();
    },
  };
}
