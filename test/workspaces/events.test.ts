// Every Stream event says its workspace, and so does every notification (real
// server, @grpc/grpc-js streams, Postgres and PGlite): one stream carries the
// events of all the user's workspaces, each with its workspace_id; typing too;
// ListNotifications gives each notification's workspace.

import { afterAll, beforeAll, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { ConversationType } from "../../gen/chat/v1/conversation_pb.js";
import { MessageService } from "../../gen/chat/v1/message_pb.js";
import { NotificationService } from "../../gen/chat/v1/notification_pb.js";
import { PresenceService } from "../../gen/chat/v1/presence_pb.js";
import { WorkspaceService } from "../../gen/chat/v1/workspace_pb.js";
import { DEFAULT_WORKSPACE_ID } from "../../src/workspaces/types.ts";
import { forEachBackend } from "../support/backends.ts";
import { until } from "../support/poll.ts";
import { StreamClient } from "../support/stream-client.ts";
import { M, startHarness, type Harness, type TestUser } from "../conversations/e2e-support.ts";

const W = WorkspaceService.method;
const Msg = MessageService.method;

forEachBackend("workspaces: events and notifications say their workspace", ["postgres", "pglite"] as const, (backend) => {
  let h: Harness;
  let owner: TestUser, mate: TestUser, away: TestUser;
  let ws: { id: string };
  beforeAll(async () => {
    h = await startHarness(backend);
    [owner, mate, away] = await h.users(3);
    ws = (await h.call(owner, W.createWorkspace, { name: "Events", slug: `ev-${randomUUID().slice(0, 8)}` })).workspace!;
    for (const u of [mate, away]) {
      const link = (await h.call(owner, W.createInviteLink, { workspaceId: ws.id, maxUses: 1 })).invite!;
      await h.call(u, W.joinWorkspace, { invite: { case: "token", value: link.token } });
    }
  });
  afterAll(async () => {
    await h?.close();
  });

  it("one stream carries both workspaces' events, each with its workspace_id (messages, membership, typing)", async () => {
    const stream = StreamClient.open(h.grpc.raw, mate.token);
    try {
      await stream.until((s) => s.ready(), 10_000, "ready");
      const inWs = (await h.call(owner, M.createConversation, { type: ConversationType.GROUP, memberIds: [mate.id], workspaceId: ws.id }))
        .conversation!;
      const inDefault = (await h.call(owner, M.createConversation, { type: ConversationType.GROUP, memberIds: [mate.id] })).conversation!;
      await h.call(owner, Msg.sendMessage, { conversationId: inWs.id, clientMessageId: randomUUID(), content: "ws" });
      await h.call(owner, Msg.sendMessage, { conversationId: inDefault.id, clientMessageId: randomUUID(), content: "default" });
      await stream.until((s) => s.createdSeqs(inWs.id).length === 1 && s.createdSeqs(inDefault.id).length === 1, 10_000, "both messages");
      await h.call(owner, PresenceService.method.sendTyping, { conversationId: inWs.id, typing: true });
      await stream.until((s) => s.events().some((e) => e.payload.case === "typingUpdated"), 10_000, "typing");
      const events = stream.events().filter((e) => e.conversationId === inWs.id || e.conversationId === inDefault.id);
      expect(new Set(events.map((e) => e.payload.case))).toEqual(new Set(["memberJoined", "messageCreated", "typingUpdated"]));
      for (const e of events)
        expect([e.payload.case, e.workspaceId]).toEqual([e.payload.case, e.conversationId === inWs.id ? ws.id : DEFAULT_WORKSPACE_ID]);
      // Replay from the log (a stream resuming from the first event's cursor) says the same.
      const first = stream.durable()[0].cursor;
      const replay = StreamClient.open(h.grpc.raw, mate.token, { resumeToken: first });
      try {
        await replay.until((s) => s.createdSeqs(inWs.id).length === 1 && s.createdSeqs(inDefault.id).length === 1, 10_000, "replayed messages");
        const replayed = replay.durable().filter((e) => e.conversationId === inWs.id || e.conversationId === inDefault.id);
        expect(replayed.length).toBeGreaterThanOrEqual(2);
        for (const e of replayed) expect(e.workspaceId).toBe(e.conversationId === inWs.id ? ws.id : DEFAULT_WORKSPACE_ID);
      } finally {
        replay.cancel();
      }
    } finally {
      stream.cancel();
    }
  });

  it("notifications carry their workspace", async () => {
    const g = (await h.call(owner, M.createConversation, { type: ConversationType.GROUP, memberIds: [away.id], workspaceId: ws.id })).conversation!;
    await h.call(owner, Msg.sendMessage, {
      conversationId: g.id,
      clientMessageId: randomUUID(),
      content: `hey @${away.username}`,
      mentions: [away.id],
    });
    const list = () => h.call(away, NotificationService.method.listNotifications, {});
    await until(async () => (await list()).notifications.length > 0, 10_000, "a notification");
    const [n] = (await list()).notifications;
    expect(n).toMatchObject({ conversationId: g.id, workspaceId: ws.id });
  });
});
