// Shared set-up for the realtime tests: real users through Register, real
// groups through CreateConversation, grpc-js channels to each node.

import * as grpc from "@grpc/grpc-js";
import { ConversationService, ConversationType } from "../../gen/chat/v1/conversation_pb.js";
import { MessageService } from "../../gen/chat/v1/message_pb.js";
import { connectClient } from "../support/clients.ts";
import { registerUser } from "../support/users.ts";

export interface TestUser {
  id: string;
  token: string;
  sessionId: string;
  refreshToken: string;
}

export async function users(baseUrl: string, n: number): Promise<TestUser[]> {
  const out: TestUser[] = [];
  // One at a time: registration hashes passwords (argon2) and the machine is small.
  for (let i = 0; i < n; i++) {
    const u = await registerUser(baseUrl);
    out.push({ id: u.user.id, token: u.accessToken, sessionId: u.sessionId, refreshToken: u.refreshToken });
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

/** A raw grpc-js channel to one node (what a native app holds). */
export function channel(address: string): grpc.Client {
  return new grpc.Client(address, grpc.credentials.createInsecure());
}
