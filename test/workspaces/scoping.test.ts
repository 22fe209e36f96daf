// Conversations scoped by workspace (real server, @grpc/grpc-js, Postgres and
// PGlite): channel names unique per workspace, one DM per pair per workspace
// and only between its members, only members added to its conversations,
// ListConversations / ListPublicChannels filtered by workspace, guests see only
// what they were added to, a user removed from a workspace loses its
// conversations, and the BOLA rows for existing RPCs called across workspaces.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { ConversationType } from "../../gen/chat/v1/conversation_pb.js";
import { MessageService } from "../../gen/chat/v1/message_pb.js";
import { WorkspaceRole, WorkspaceService } from "../../gen/chat/v1/workspace_pb.js";
import { DEFAULT_WORKSPACE_ID } from "../../src/workspaces/types.ts";
import { forEachBackend } from "../support/backends.ts";
import type { GrpcError } from "../support/clients.ts";
import { failure, grpcErrorInfo } from "../support/errors.ts";
import { StreamClient } from "../support/stream-client.ts";
import { M, startHarness, type Harness, type TestUser } from "../conversations/e2e-support.ts";

const W = WorkspaceService.method;
const Msg = MessageService.method;
const tag = () => randomUUID().slice(0, 8);

forEachBackend("workspaces: conversations scoped by workspace", ["postgres", "pglite"] as const, (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  const fail = (p: Promise<unknown>) => failure<GrpcError>(p);
  const rejected = async (p: Promise<unknown>) => {
    const err = await fail(p);
    return { code: err.code, reason: grpcErrorInfo(err)?.reason };
  };

  /** A workspace owned by `owner` with the others joined through links, as the given role. */
  async function workspaceWith(owner: TestUser, members: [TestUser, WorkspaceRole][] = []) {
    const ws = (await h.call(owner, W.createWorkspace, { name: "Team", slug: `s-${tag()}` })).workspace!;
    for (const [user, role] of members) {
      const link = (await h.call(owner, W.createInviteLink, { workspaceId: ws.id, maxUses: 1, role: role === WorkspaceRole.GUEST ? role : 0 }))
        .invite!;
      await h.call(user, W.joinWorkspace, { invite: { case: "token", value: link.token } });
      if (role === WorkspaceRole.ADMIN) await h.call(owner, W.setWorkspaceMemberRole, { workspaceId: ws.id, userId: user.id, role });
    }
    return ws;
  }

  it("channel names are unique per workspace (case-insensitively), not across workspaces", async () => {
    const [a] = await h.users(1);
    const ws = await workspaceWith(a);
    const name = `general-${tag()}`;
    const inDefault = (await h.call(a, M.createConversation, { type: ConversationType.CHANNEL, title: name })).conversation!;
    expect(inDefault.workspaceId).toBe(DEFAULT_WORKSPACE_ID);
    const inWs = (await h.call(a, M.createConversation, { type: ConversationType.CHANNEL, title: name, workspaceId: ws.id })).conversation!;
    expect(inWs.workspaceId).toBe(ws.id);
    expect(inWs.id).not.toBe(inDefault.id);
    expect(
      await rejected(h.call(a, M.createConversation, { type: ConversationType.CHANNEL, title: name.toUpperCase(), workspaceId: ws.id })),
    ).toEqual({
      code: grpc.status.ALREADY_EXISTS,
      reason: "CHANNEL_NAME_TAKEN",
    });
    // Renaming onto a name taken in the same workspace fails; in another workspace it is free.
    const other = (await h.call(a, M.createConversation, { type: ConversationType.CHANNEL, title: `other-${tag()}`, workspaceId: ws.id }))
      .conversation!;
    expect(await rejected(h.call(a, M.updateConversation, { conversationId: other.id, title: name }))).toEqual({
      code: grpc.status.ALREADY_EXISTS,
      reason: "CHANNEL_NAME_TAKEN",
    });
  });

  it("one DM per pair per workspace, only between members of it", async () => {
    const [a, b, outsider] = await h.users(3);
    const ws = await workspaceWith(a, [[b, WorkspaceRole.MEMBER]]);
    const dmDefault = await h.call(a, M.getOrCreateDirect, { userId: b.id });
    const dmWs = await h.call(b, M.getOrCreateDirect, { userId: a.id, workspaceId: ws.id });
    expect(dmWs.created).toBe(true);
    expect(dmWs.conversation!.workspaceId).toBe(ws.id);
    expect(dmWs.conversation!.id).not.toBe(dmDefault.conversation!.id);
    expect((await h.call(a, M.getOrCreateDirect, { userId: b.id, workspaceId: ws.id })).conversation!.id).toBe(dmWs.conversation!.id);
    // The outsider exists (shares the default workspace) but is not in ws: the same answer as an unknown user.
    const reference = await rejected(h.call(a, M.getOrCreateDirect, { userId: randomUUID(), workspaceId: ws.id }));
    expect(reference).toEqual({ code: grpc.status.INVALID_ARGUMENT, reason: "USER_UNKNOWN" });
    expect(await rejected(h.call(a, M.getOrCreateDirect, { userId: outsider.id, workspaceId: ws.id }))).toEqual(reference);
  });

  it("only workspace members can be added to its conversations", async () => {
    const [a, b, outsider] = await h.users(3);
    const ws = await workspaceWith(a, [[b, WorkspaceRole.MEMBER]]);
    const unknown = { code: grpc.status.INVALID_ARGUMENT, reason: "USER_UNKNOWN" };
    expect(
      await rejected(h.call(a, M.createConversation, { type: ConversationType.GROUP, memberIds: [b.id, outsider.id], workspaceId: ws.id })),
    ).toEqual(unknown);
    const g = (await h.call(a, M.createConversation, { type: ConversationType.GROUP, memberIds: [b.id], workspaceId: ws.id })).conversation!;
    expect(g.memberCount).toBe(2);
    expect(await rejected(h.call(a, M.addMembers, { conversationId: g.id, userIds: [outsider.id] }))).toEqual(unknown);
    const ch = (await h.call(a, M.createConversation, { type: ConversationType.CHANNEL, title: `c-${tag()}`, workspaceId: ws.id })).conversation!;
    expect(await rejected(h.call(outsider, M.joinConversation, { conversationId: ch.id }))).toEqual({
      code: grpc.status.NOT_FOUND,
      reason: "CONVERSATION_NOT_FOUND",
    });
  });

  it("ListConversations and ListPublicChannels show one workspace: the default one when none is named", async () => {
    const [a, b] = await h.users(2);
    const ws = await workspaceWith(a, [[b, WorkspaceRole.MEMBER]]);
    const inDefault = (await h.call(a, M.createConversation, { type: ConversationType.CHANNEL, title: `d-${tag()}` })).conversation!;
    const inWs = (await h.call(a, M.createConversation, { type: ConversationType.CHANNEL, title: `w-${tag()}`, workspaceId: ws.id })).conversation!;
    const group = (await h.call(a, M.createConversation, { type: ConversationType.GROUP, memberIds: [b.id], workspaceId: ws.id })).conversation!;
    const ids = async (req: { workspaceId?: string }) => (await h.call(a, M.listConversations, req)).conversations.map((c) => c.id).sort();
    expect(await ids({})).toEqual([inDefault.id]);
    expect(await ids({ workspaceId: DEFAULT_WORKSPACE_ID })).toEqual([inDefault.id]);
    expect(await ids({ workspaceId: ws.id })).toEqual([inWs.id, group.id].sort());
    // Keyset paging within a workspace.
    const page1 = await h.call(a, M.listConversations, { workspaceId: ws.id, pageSize: 1 });
    const page2 = await h.call(a, M.listConversations, { workspaceId: ws.id, pageSize: 1, pageToken: page1.nextPageToken });
    expect([...page1.conversations, ...page2.conversations].map((c) => c.id).sort()).toEqual([inWs.id, group.id].sort());
    expect(page2.nextPageToken).toBe("");
    const channels = async (user: TestUser, req: { workspaceId?: string }) =>
      (await h.call(user, M.listPublicChannels, { pageSize: 200, ...req })).conversations.map((c) => c.id);
    expect(await channels(b, { workspaceId: ws.id })).toEqual([inWs.id]);
    expect(await channels(b, {})).toContain(inDefault.id);
    expect(await channels(b, {})).not.toContain(inWs.id);
  });

  it("guests see only the conversations they were added to: no channel browsing, no channel creation", async () => {
    const [owner, guest] = await h.users(2);
    const ws = await workspaceWith(owner, [[guest, WorkspaceRole.GUEST]]);
    const open = (await h.call(owner, M.createConversation, { type: ConversationType.CHANNEL, title: `open-${tag()}`, workspaceId: ws.id }))
      .conversation!;
    const added = (
      await h.call(owner, M.createConversation, {
        type: ConversationType.CHANNEL,
        title: `added-${tag()}`,
        workspaceId: ws.id,
        memberIds: [guest.id],
      })
    ).conversation!;
    expect((await h.call(guest, M.listPublicChannels, { workspaceId: ws.id })).conversations).toEqual([]);
    const notFound = { code: grpc.status.NOT_FOUND, reason: "CONVERSATION_NOT_FOUND" };
    expect(await rejected(h.call(guest, M.getConversation, { conversationId: open.id }))).toEqual(notFound);
    expect(await rejected(h.call(guest, M.joinConversation, { conversationId: open.id }))).toEqual(notFound);
    expect(await rejected(h.call(guest, M.listMembers, { conversationId: open.id }))).toEqual(notFound);
    expect(await rejected(h.call(guest, M.createConversation, { type: ConversationType.CHANNEL, title: `g-${tag()}`, workspaceId: ws.id }))).toEqual({
      code: grpc.status.PERMISSION_DENIED,
      reason: "ROLE_INSUFFICIENT",
    });
    expect((await h.call(guest, M.getConversation, { conversationId: added.id })).conversation!.joined).toBe(true);
    expect((await h.call(guest, M.listConversations, { workspaceId: ws.id })).conversations.map((c) => c.id)).toEqual([added.id]);
  });

  it("a user removed from a workspace loses its conversations (reads and sends), not those of other workspaces", async () => {
    const [owner, m] = await h.users(2);
    const ws = await workspaceWith(owner, [[m, WorkspaceRole.MEMBER]]);
    const g = (await h.call(owner, M.createConversation, { type: ConversationType.GROUP, memberIds: [m.id], workspaceId: ws.id })).conversation!;
    const dflt = (await h.call(owner, M.createConversation, { type: ConversationType.GROUP, memberIds: [m.id] })).conversation!;
    await h.call(m, Msg.sendMessage, { conversationId: g.id, clientMessageId: randomUUID(), content: "hi" });
    await h.call(owner, W.removeWorkspaceMember, { workspaceId: ws.id, userId: m.id });
    const notFound = { code: grpc.status.NOT_FOUND, reason: "CONVERSATION_NOT_FOUND" };
    expect(await rejected(h.call(m, M.getConversation, { conversationId: g.id }))).toEqual(notFound);
    expect(await rejected(h.call(m, Msg.listMessages, { conversationId: g.id }))).toEqual(notFound);
    expect(await rejected(h.call(m, Msg.sendMessage, { conversationId: g.id, clientMessageId: randomUUID(), content: "still here?" }))).toEqual(
      notFound,
    );
    expect(await rejected(h.call(m, M.listConversations, { workspaceId: ws.id }))).toEqual({
      code: grpc.status.NOT_FOUND,
      reason: "WORKSPACE_NOT_FOUND",
    });
    expect((await h.call(m, M.getConversation, { conversationId: dflt.id })).conversation!.joined).toBe(true);
    // Their memberships of the workspace's groups and channels are gone too (audited), the default group's stay.
    expect((await h.call(owner, M.getConversation, { conversationId: g.id })).conversation!.memberCount).toBe(1);
    expect((await h.call(owner, M.listMembers, { conversationId: g.id })).members.map((x) => x.userId)).toEqual([owner.id]);
    expect((await h.call(owner, M.getConversation, { conversationId: dflt.id })).conversation!.memberCount).toBe(2);
    const { rows } = await h.server.app.stores.sql.query<{ actor_id: string; metadata: Record<string, unknown> }>(
      "SELECT actor_id, metadata FROM audit_log WHERE entity_type = 'conversation' AND entity_id = $1 AND action = 'conversation.member.removed'",
      [g.id],
    );
    expect(rows).toEqual([{ actor_id: owner.id, metadata: { userId: m.id, reason: "workspace", workspaceId: ws.id } }]);
    // A stream opened after the removal carries the default workspace's events, none of ws's.
    const stream = StreamClient.open(h.grpc.raw, m.token);
    try {
      await stream.until((s) => s.ready(), 10_000, "ready");
      await h.call(owner, Msg.sendMessage, { conversationId: g.id, clientMessageId: randomUUID(), content: "after" });
      await h.call(owner, Msg.sendMessage, { conversationId: dflt.id, clientMessageId: randomUUID(), content: "after" });
      await stream.until((s) => s.createdSeqs(dflt.id).length === 1, 10_000, "the default group's message");
      expect(stream.events().filter((e) => e.conversationId === g.id)).toEqual([]);
    } finally {
      stream.cancel();
    }
  });

  it("a group membership left behind by a removal that failed after the leave does not come back when the user rejoins", async () => {
    const [owner, m] = await h.users(2);
    const ws = await workspaceWith(owner, [[m, WorkspaceRole.MEMBER]]);
    const g = (await h.call(owner, M.createConversation, { type: ConversationType.GROUP, memberIds: [m.id], workspaceId: ws.id })).conversation!;
    // The leave committed but the memberships' removal did not happen (as when it fails): the
    // workspace row goes, the group membership stays (inert).
    await h.server.app.stores.sql.query("DELETE FROM workspace_members WHERE workspace_id = $1 AND user_id = $2", [ws.id, m.id]);
    expect(await rejected(h.call(m, M.getConversation, { conversationId: g.id }))).toEqual({
      code: grpc.status.NOT_FOUND,
      reason: "CONVERSATION_NOT_FOUND",
    });
    // Invited again: back in the workspace, but not in the group.
    const link = (await h.call(owner, W.createInviteLink, { workspaceId: ws.id, maxUses: 1 })).invite!;
    await h.call(m, W.joinWorkspace, { invite: { case: "token", value: link.token } });
    expect(await rejected(h.call(m, M.getConversation, { conversationId: g.id }))).toEqual({
      code: grpc.status.NOT_FOUND,
      reason: "CONVERSATION_NOT_FOUND",
    });
    expect((await h.call(m, M.listConversations, { workspaceId: ws.id })).conversations.map((c) => c.id)).not.toContain(g.id);
    expect((await h.call(owner, M.listMembers, { conversationId: g.id })).members.map((x) => x.userId)).toEqual([owner.id]);
  });

  it("leaving a workspace takes its channels and groups with it; the last owner of a channel leaves it ownerless", async () => {
    const [owner, m] = await h.users(2);
    const ws = await workspaceWith(owner, [[m, WorkspaceRole.MEMBER]]);
    const ch = (
      await h.call(m, M.createConversation, { type: ConversationType.CHANNEL, title: `mine-${tag()}`, workspaceId: ws.id, memberIds: [owner.id] })
    ).conversation!;
    const dm = (await h.call(m, M.getOrCreateDirect, { userId: owner.id, workspaceId: ws.id })).conversation!;
    await h.call(m, W.leaveWorkspace, { workspaceId: ws.id });
    const after = (await h.call(owner, M.getConversation, { conversationId: ch.id })).conversation!;
    expect(after).toMatchObject({ memberCount: 1, ownerId: "" });
    // The DM stays, inert for the one who left: NOT_FOUND for them, still there for the other.
    expect((await h.call(owner, M.getConversation, { conversationId: dm.id })).conversation!.memberCount).toBe(2);
    expect(await rejected(h.call(m, M.getConversation, { conversationId: dm.id }))).toEqual({
      code: grpc.status.NOT_FOUND,
      reason: "CONVERSATION_NOT_FOUND",
    });
    // Sends into the inert DM are refused like an unknown conversation's (the send statement checks the workspace too).
    expect(await rejected(h.call(m, Msg.sendMessage, { conversationId: dm.id, clientMessageId: randomUUID(), content: "still?" }))).toEqual({
      code: grpc.status.NOT_FOUND,
      reason: "CONVERSATION_NOT_FOUND",
    });
  });

  describe("authorization (BOLA) across workspaces: a non-member of the workspace gets what an unknown id gets", () => {
    let owner: TestUser, member: TestUser, outsider: TestUser;
    let ws: { id: string };
    let publicChannel: { id: string }, group: { id: string };
    const nonexistent = randomUUID();

    beforeAll(async () => {
      [owner, member, outsider] = await h.users(3);
      ws = await workspaceWith(owner, [[member, WorkspaceRole.MEMBER]]);
      publicChannel = (
        await h.call(owner, M.createConversation, {
          type: ConversationType.CHANNEL,
          title: `pub-${tag()}`,
          workspaceId: ws.id,
          memberIds: [member.id],
        })
      ).conversation!;
      group = (await h.call(owner, M.createConversation, { type: ConversationType.GROUP, memberIds: [member.id], workspaceId: ws.id })).conversation!;
    });

    // Existing RPCs on a conversation of a workspace the outsider is not in (its public channel included).
    const byConversation: [string, (id: string) => Promise<unknown>][] = [
      ["GetConversation", (id) => h.call(outsider, M.getConversation, { conversationId: id })],
      ["ListMembers", (id) => h.call(outsider, M.listMembers, { conversationId: id })],
      ["UpdateConversation", (id) => h.call(outsider, M.updateConversation, { conversationId: id, title: "pwned" })],
      ["AddMembers", (id) => h.call(outsider, M.addMembers, { conversationId: id, userIds: [outsider.id] })],
      ["RemoveMember", (id) => h.call(outsider, M.removeMember, { conversationId: id, userId: member.id })],
      ["SetMemberRole", (id) => h.call(outsider, M.setMemberRole, { conversationId: id, userId: outsider.id, role: 1 })],
      ["UpdateMemberSettings", (id) => h.call(outsider, M.updateMemberSettings, { conversationId: id, archived: true })],
      ["JoinConversation", (id) => h.call(outsider, M.joinConversation, { conversationId: id })],
      ["LeaveConversation", (id) => h.call(outsider, M.leaveConversation, { conversationId: id })],
      ["ListMessages", (id) => h.call(outsider, Msg.listMessages, { conversationId: id })],
      ["SendMessage", (id) => h.call(outsider, Msg.sendMessage, { conversationId: id, clientMessageId: randomUUID(), content: "x" })],
    ];
    it.each(byConversation)("%s on its public channel and its group: same as a nonexistent conversation", async (_name, rpc) => {
      const reference = await fail(rpc(nonexistent));
      expect(reference.code).toBe(grpc.status.NOT_FOUND);
      for (const target of [publicChannel, group]) {
        const err = await fail(rpc(target.id));
        expect({ code: err.code, details: err.details }).toEqual({ code: reference.code, details: reference.details });
      }
    });

    // Existing RPCs that name a workspace.
    const byWorkspace: [string, (id: string) => Promise<unknown>][] = [
      ["CreateConversation", (id) => h.call(outsider, M.createConversation, { type: ConversationType.GROUP, workspaceId: id })],
      ["GetOrCreateDirect", (id) => h.call(outsider, M.getOrCreateDirect, { userId: member.id, workspaceId: id })],
      ["ListConversations", (id) => h.call(outsider, M.listConversations, { workspaceId: id })],
      ["ListPublicChannels", (id) => h.call(outsider, M.listPublicChannels, { workspaceId: id })],
    ];
    it.each(byWorkspace)("%s with the workspace's id: same as a nonexistent workspace", async (_name, rpc) => {
      const reference = await fail(rpc(nonexistent));
      expect(reference.code).toBe(grpc.status.NOT_FOUND);
      expect(grpcErrorInfo(reference)?.reason).toBe("WORKSPACE_NOT_FOUND");
      const err = await fail(rpc(ws.id));
      expect({ code: err.code, details: err.details }).toEqual({ code: reference.code, details: reference.details });
    });

    it("nothing changed", async () => {
      const c = (await h.call(owner, M.getConversation, { conversationId: publicChannel.id })).conversation!;
      expect(c.memberCount).toBe(2);
      expect(c.title).not.toBe("pwned");
      expect((await h.call(owner, M.listConversations, { workspaceId: ws.id })).conversations.map((x) => x.lastSeq)).toEqual([0n, 0n]);
    });
  });
});
