// SearchUsers and SearchMessages within a workspace (real server, @grpc/grpc-js),
// with messages in Postgres, PGlite and MongoDB (FerretDB): the default
// workspace when none is named, the named one otherwise, a named conversation
// whatever its workspace, and a non-member's workspace id answered like an
// unknown one (BOLA rows for both RPCs).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { ConversationType } from "../../gen/chat/v1/conversation_pb.js";
import { AuthService } from "../../gen/chat/v1/auth_pb.js";
import { MessageService } from "../../gen/chat/v1/message_pb.js";
import { WorkspaceService } from "../../gen/chat/v1/workspace_pb.js";
import { DEFAULT_WORKSPACE_ID } from "../../src/workspaces/types.ts";
import { forEachBackend } from "../support/backends.ts";
import type { GrpcError } from "../support/clients.ts";
import { failure, grpcErrorInfo } from "../support/errors.ts";
import { M, startHarness, type Harness, type TestUser } from "../conversations/e2e-support.ts";

const W = WorkspaceService.method;
const Msg = MessageService.method;
const A = AuthService.method;

forEachBackend("workspaces: search within a workspace", ["postgres", "pglite", "mongo"] as const, (backend) => {
  let h: Harness;
  let owner: TestUser, mate: TestUser, loner: TestUser, outsider: TestUser;
  let ws: { id: string };
  let wsGroup: { id: string }, defaultGroup: { id: string };
  const word = `zebra${randomUUID().slice(0, 6)}`;

  beforeAll(async () => {
    h = await startHarness(backend === "pglite" ? "pglite" : "postgres", {}, { mongo: backend === "mongo" });
    [owner, mate, loner, outsider] = await h.users(4);
    ws = (await h.call(owner, W.createWorkspace, { name: "Search", slug: `search-${randomUUID().slice(0, 8)}` })).workspace!;
    for (const u of [mate, loner]) {
      const link = (await h.call(owner, W.createInviteLink, { workspaceId: ws.id, maxUses: 1 })).invite!;
      await h.call(u, W.joinWorkspace, { invite: { case: "token", value: link.token } });
    }
    // `loner` is only in ws now.
    await h.call(loner, W.leaveWorkspace, { workspaceId: DEFAULT_WORKSPACE_ID });
    wsGroup = (await h.call(owner, M.createConversation, { type: ConversationType.GROUP, memberIds: [mate.id], workspaceId: ws.id })).conversation!;
    defaultGroup = (await h.call(owner, M.createConversation, { type: ConversationType.GROUP, memberIds: [mate.id] })).conversation!;
    await h.call(owner, Msg.sendMessage, { conversationId: wsGroup.id, clientMessageId: randomUUID(), content: `${word} in the workspace` });
    await h.call(owner, Msg.sendMessage, { conversationId: defaultGroup.id, clientMessageId: randomUUID(), content: `${word} in the default` });
  });
  afterAll(async () => {
    await h?.close();
  });

  const fail = (p: Promise<unknown>) => failure<GrpcError>(p);

  it("SearchMessages: the default workspace when none is named, else the named one; a named conversation whatever its workspace", async () => {
    const found = async (user: TestUser, req: { workspaceId?: string; conversationId?: string }) =>
      (await h.call(user, Msg.searchMessages, { query: word, ...req })).messages.map((m) => m.conversationId);
    expect(await found(mate, {})).toEqual([defaultGroup.id]);
    expect(await found(mate, { workspaceId: DEFAULT_WORKSPACE_ID })).toEqual([defaultGroup.id]);
    expect(await found(mate, { workspaceId: ws.id })).toEqual([wsGroup.id]);
    expect(await found(mate, { conversationId: wsGroup.id })).toEqual([wsGroup.id]);
    expect(await found(mate, { conversationId: wsGroup.id, workspaceId: DEFAULT_WORKSPACE_ID })).toEqual([]);
    // A member of ws who is in none of its conversations finds nothing there.
    expect(await found(loner, { workspaceId: ws.id })).toEqual([]);
  });

  it("SearchUsers: members of the default workspace when none is named, else of the named one", async () => {
    const names = async (user: TestUser, query: string, workspaceId?: string) =>
      (await h.call(user, A.searchUsers, { query, workspaceId })).users.map((u) => u.id);
    expect(await names(mate, loner.username)).toEqual([]);
    expect(await names(mate, loner.username, ws.id)).toEqual([loner.id]);
    expect(await names(mate, outsider.username)).toEqual([outsider.id]);
    expect(await names(mate, outsider.username, ws.id)).toEqual([]);
    // Having left the default workspace, a call naming none is WORKSPACE_NOT_FOUND.
    const err = await fail(h.call(loner, A.searchUsers, { query: mate.username }));
    expect({ code: err.code, reason: grpcErrorInfo(err)?.reason }).toEqual({ code: grpc.status.NOT_FOUND, reason: "WORKSPACE_NOT_FOUND" });
  });

  describe("authorization (BOLA): a non-member's workspace id answers like an unknown one", () => {
    const nonexistent = randomUUID();
    const rpcs: [string, (id: string) => Promise<unknown>][] = [
      ["SearchMessages", (id) => h.call(outsider, Msg.searchMessages, { query: word, workspaceId: id })],
      ["SearchUsers", (id) => h.call(outsider, A.searchUsers, { query: loner.username, workspaceId: id })],
    ];
    it.each(rpcs)("%s", async (_name, rpc) => {
      const reference = await fail(rpc(nonexistent));
      expect(grpcErrorInfo(reference)?.reason).toBe("WORKSPACE_NOT_FOUND");
      const err = await fail(rpc(ws.id));
      expect({ code: err.code, details: err.details }).toEqual({ code: reference.code, details: reference.details });
    });
  });
});
