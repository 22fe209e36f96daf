// Every kind of change reaches a live stream on every message adapter, with
// nothing after it to flush it, also when the node that committed it never
// announces it (the publication is dropped right after the commit, as if the
// node died there): the stream then fills it from the log (the hub's head
// check), or gets it on resume.
//
// The first test is the live-edit bug of issue 12: on the relational store an
// edit was not delivered live until another event in the conversation
// flushed it (its announcement failed and was only logged).

import { afterAll, beforeAll, expect, it } from "vitest";
import type * as grpc from "@grpc/grpc-js";
import type { Event } from "../../gen/chat/v1/message_pb.js";
import { provisionBackends, startTestServer, type BackendChoice, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { forEachBackend } from "../support/backends.ts";
import { StreamClient } from "../support/stream-client.ts";
import { channel, conversations, group, messages, users, type TestUser } from "./helpers.ts";

const CHOICES: Record<string, BackendChoice> = {
  pglite: { sql: "pglite" },
  postgres: { sql: "postgres", redis: true },
  mongo: { sql: "postgres", mongo: true, redis: true },
};

/** What an event says, without its per-stream cursor. */
function describeEvent(e: Event): string {
  const p = e.payload;
  switch (p.case) {
    case "messageCreated":
    case "messageEdited":
      return `${p.case}:${p.value.message!.seq}:${p.value.message!.content}`;
    case "messageDeleted":
      return `${p.case}:${p.value.seq}`;
    case "reactionUpdated":
      return `${p.case}:${p.value.emoji}:${p.value.added}:${p.value.count}`;
    case "receiptUpdated":
      return `${p.case}:${p.value.readSeq}`;
    case "conversationUpdated":
      return `${p.case}:${p.value.conversation!.title}:${p.value.conversation!.memberCount}`;
    case "memberJoined":
    case "memberLeft":
      return `${p.case}`;
    default:
      return `${p.case}`;
  }
}

forEachBackend("every change reaches a live stream with nothing after it", ["pglite", "postgres", "mongo"] as const, (backend) => {
  let backends: ProvisionedBackends;
  let server: TestServer;
  let ch: grpc.Client;
  let alice: TestUser, bob: TestUser, carol: TestUser;
  /** While true, every publication is dropped after its commit (the node "died" before announcing). */
  let dropping = false;
  const dropped: string[] = [];
  const open: StreamClient[] = [];

  beforeAll(async () => {
    backends = await provisionBackends(CHOICES[backend]);
    server = await startTestServer(
      backends.env,
      { REALTIME_HEAD_CHECK_MS: "200" },
      {
        sink: {
          beforePublish: (l) => {
            if (dropping) dropped.push(l.event.type);
            return !dropping;
          },
        },
      },
    );
    ch = channel(server.address);
    [alice, bob, carol] = await users(server.baseUrl, 3);
  });
  afterAll(async () => {
    for (const s of open) s.cancel();
    ch?.close();
    await server?.close();
    await backends?.cleanup();
  });

  it("delivers an edit live, with no later event to flush it (issue 12's live-edit bug)", async () => {
    const conv = await group(server.baseUrl, alice, [bob]);
    const s = StreamClient.open(ch, bob.token).keepAlive(300);
    open.push(s);
    await s.until((x) => x.ready());
    const api = messages(server.baseUrl, alice.token);
    const m = (await api.sendMessage({ conversationId: conv, clientMessageId: "e-1", content: "draft" })).message!;
    await s.until((x) => x.durable().some((e) => e.payload.case === "messageCreated"));
    await api.editMessage({ messageId: m.id, content: "final" });
    const edited = await s.until((x) => x.durable().find((e) => e.payload.case === "messageEdited"), 10_000, "the edit, live");
    expect(describeEvent(edited)).toBe("messageEdited:1:final");
    s.cancel();
  });

  it("every change type reaches the stream, announced or not, and again on resume", async () => {
    const conv = await group(server.baseUrl, alice, [bob]);
    const s = StreamClient.open(ch, bob.token).keepAlive(300);
    open.push(s);
    await s.until((x) => x.ready());
    const api = messages(server.baseUrl, alice.token);
    const admin = conversations(server.baseUrl, alice.token);
    let n = 0;
    let m1 = "";
    const reader = messages(server.baseUrl, bob.token);
    // Each change, and what the stream must show for it. Run twice: announced, then with the announcement dropped.
    const table = (round: number) => {
      const k = round * 10;
      return [
        [
          "message created",
          async () => (m1 = (await api.sendMessage({ conversationId: conv, clientMessageId: `c-${round}`, content: `m${round}` })).message!.id),
          `messageCreated:${round + 1}:m${round}`,
        ],
        ["message edited", () => api.editMessage({ messageId: m1, content: `m${round} edited` }), `messageEdited:${round + 1}:m${round} edited`],
        ["reaction added", () => api.addReaction({ messageId: m1, emoji: "👍" }), "reactionUpdated:👍:true:1"],
        ["reaction removed", () => api.removeReaction({ messageId: m1, emoji: "👍" }), "reactionUpdated:👍:false:0"],
        ["receipt", () => reader.markRead({ conversationId: conv, seq: BigInt(round + 1) }), `receiptUpdated:${round + 1}`],
        ["conversation updated", () => admin.updateConversation({ conversationId: conv, title: `t${k}` }), `conversationUpdated:t${k}:2`],
        ["member joined", () => admin.addMembers({ conversationId: conv, userIds: [carol.id] }), "memberJoined"],
        ["member left", () => admin.removeMember({ conversationId: conv, userId: carol.id }), "memberLeft"],
        ["message deleted", () => api.deleteMessage({ messageId: m1 }), `messageDeleted:${round + 1}`],
      ] as [string, () => Promise<unknown>, string][];
    };
    for (const round of [0, 1]) {
      dropping = round === 1;
      for (const [what, change, expected] of table(round)) {
        const before = s.durable().length;
        await change();
        // No later event: the change alone must reach the stream (add/remove also emit conversation_updated).
        const got = await s.until(
          (x) =>
            x
              .durable()
              .slice(before)
              .find((e) => describeEvent(e) === expected),
          15_000,
          `${what} (${dropping ? "announcement dropped" : "announced"})`,
        );
        expect(got.conversationId).toBe(conv);
        n++;
      }
      dropping = false;
    }
    expect(n).toBe(18);
    expect(new Set(dropped)).toEqual(
      new Set([
        "message_created",
        "message_edited",
        "reaction_updated",
        "receipt_updated",
        "conversation_updated",
        "member_joined",
        "member_left",
        "message_deleted",
      ]),
    );
    // Delivered exactly once each, in event order (cursors strictly after one another).
    const seen = s.durable().map(describeEvent);
    expect(seen.filter((d) => d === "messageEdited:2:m1 edited")).toHaveLength(1);

    // Resume: missed while away, with the announcements dropped, arrives on reconnect.
    const cursor = s.lastCursor();
    s.cancel();
    dropping = true;
    await api.sendMessage({ conversationId: conv, clientMessageId: "away", content: "while away" });
    dropping = false;
    const again = StreamClient.open(ch, bob.token, { resumeToken: cursor }).keepAlive(300);
    open.push(again);
    const back = await again.until((x) => x.durable().find((e) => e.payload.case === "messageCreated"), 10_000, "replay on resume");
    expect(describeEvent(back)).toBe("messageCreated:3:while away");
    again.cancel();
  });
});
