// ListConversations end to end (real server; grpc-js and Connect clients;
// Postgres and PGlite): activity order and keyset paging over 500
// conversations while messages arrive, per-member settings, and
// INVALID_ARGUMENT with the field for bad input. (Unread counts: unread.test.ts.)

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ConversationService, ConversationType, Visibility, type Conversation } from "../../gen/chat/v1/conversation_pb.js";
import { MessageService } from "../../gen/chat/v1/message_pb.js";
import { forEachBackend } from "../support/backends.ts";
import { connectClient, type GrpcError } from "../support/clients.ts";
import { connectViolations, failure, grpcViolations } from "./helpers.ts";
import { M, startHarness, type Harness, type TestUser } from "./e2e-support.ts";

forEachBackend("conversations e2e: listing", ["postgres", "pglite"] as const, (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  const sql = () => h.server.app.stores.sql;
  const fail = (p: Promise<unknown>) => failure<GrpcError>(p);

  async function listAll(user: TestUser, pageSize: number, between?: (page: Conversation[]) => Promise<void>): Promise<Conversation[]> {
    const out: Conversation[] = [];
    let pageToken = "";
    do {
      const page = await h.call(user, M.listConversations, { pageSize, pageToken });
      out.push(...page.conversations);
      pageToken = page.nextPageToken;
      if (between) await between(page.conversations);
    } while (pageToken);
    return out;
  }

  it("pages through 500 conversations by activity with no duplicates, and no gaps among those untouched during the scan", async () => {
    const [me, peer] = await h.users(2);
    const ids: string[] = [];
    for (let i = 0; i < 500; i += 25) {
      const batch = await Promise.all(
        Array.from({ length: 25 }, (_, j) =>
          h.call(me, M.createConversation, { type: ConversationType.GROUP, title: `g${i + j}`, memberIds: [peer.id] }),
        ),
      );
      ids.push(...batch.map((r) => r.conversation!.id));
    }
    // Spread activity over the past day, with runs of exact ties (ordered by id) and
    // sub-millisecond differences a JS Date cannot represent.
    await sql().query(
      `UPDATE conversations c SET last_message_at = now() - interval '1 day' + (t.i / 5) * interval '1 millisecond' + (t.i % 3) * interval '1 microsecond'
       FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, i) WHERE c.id = t.id`,
      [ids],
    );

    const touched = new Set<string>();
    const returned = new Set<string>();
    const rng = (n: number) => Math.floor(Math.random() * n);
    const seen = await listAll(me, 37, async (page) => {
      for (const c of page) returned.add(c.id);
      // New activity mid-scan (real messages from the other member): one conversation
      // already returned and one not yet returned move to the top.
      const notYet = ids.filter((id) => !returned.has(id) && !touched.has(id));
      const bump = [[...returned][rng(returned.size)], notYet.length ? notYet[rng(notYet.length)] : undefined].filter((x): x is string => !!x);
      for (const id of bump) {
        touched.add(id);
        await h.call(peer, MessageService.method.sendMessage, { conversationId: id, clientMessageId: randomUUID(), content: "news" });
      }
    });

    const seenIds = seen.map((c) => c.id);
    expect(new Set(seenIds).size).toBe(seenIds.length); // no duplicates at all
    const untouched = ids.filter((id) => !touched.has(id));
    expect(touched.size).toBeGreaterThan(20);
    // Every untouched conversation exactly once, in the store's exact order.
    const { rows } = await sql().query<{ id: string }>(
      "SELECT id FROM conversations WHERE id = ANY($1::uuid[]) ORDER BY last_message_at DESC, id DESC",
      [untouched],
    );
    expect(seenIds.filter((id) => !touched.has(id))).toEqual(rows.map((r) => r.id));
    // Nothing that is not the caller's.
    for (const id of seenIds) expect(ids).toContain(id);
    // A fresh scan sees all 500, most recent first: the touched ones on top.
    const fresh = (await listAll(me, 200)).map((c) => c.id);
    expect(fresh).toHaveLength(500);
    expect(new Set(fresh.slice(0, touched.size))).toEqual(touched);
  }, 180_000); // 500 conversations created through the API: over a minute on PGlite on a loaded 2-core box

  it("mutes, unmutes and archives per member; archived ones are hidden unless asked for", async () => {
    const [a, b] = await h.users(2);
    const g = (await h.call(a, M.createConversation, { type: ConversationType.GROUP, memberIds: [b.id] })).conversation!;
    const until = new Date(Date.now() + 3_600_000);
    const muted = (await h.call(a, M.updateMemberSettings, { conversationId: g.id, mutedUntil: timestampFromDate(until) })).conversation!;
    expect(Number(muted.mutedUntil!.seconds)).toBe(Math.floor(until.getTime() / 1000));
    // Unset leaves it as it is.
    const archived = (await h.call(a, M.updateMemberSettings, { conversationId: g.id, archived: true })).conversation!;
    expect(archived).toMatchObject({ archived: true });
    expect(Number(archived.mutedUntil!.seconds)).toBe(Math.floor(until.getTime() / 1000));
    // The other member is unaffected.
    const other = (await h.call(b, M.getConversation, { conversationId: g.id })).conversation!;
    expect([other.archived, other.mutedUntil]).toEqual([false, undefined]);

    expect((await h.call(a, M.listConversations, {})).conversations.map((c) => c.id)).not.toContain(g.id);
    expect((await h.call(a, M.listConversations, { includeArchived: true })).conversations.map((c) => c.id)).toContain(g.id);

    // A time in the past unmutes.
    const unmuted = (await h.call(a, M.updateMemberSettings, { conversationId: g.id, mutedUntil: timestampFromDate(new Date(0)), archived: false }))
      .conversation!;
    expect([unmuted.archived, unmuted.mutedUntil]).toEqual([false, undefined]);
    expect((await h.call(a, M.listConversations, {})).conversations.map((c) => c.id)).toContain(g.id);
  });

  it("works the same over Connect (JSON-capable clients, browsers)", async () => {
    const [a, b] = await h.users(2);
    const client = connectClient(ConversationService, "connect", h.server.baseUrl, a.token);
    const ch = (
      await client.createConversation({
        type: ConversationType.CHANNEL,
        title: `connect-${randomUUID().slice(0, 6)}`,
        visibility: Visibility.PUBLIC,
        memberIds: [b.id],
      })
    ).conversation!;
    const list = await client.listConversations({ pageSize: 10 });
    expect(list.conversations.map((c) => c.id)).toEqual([ch.id]);
    const err = ConnectError.from(await failure(client.listConversations({ pageSize: 1000 })));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(connectViolations(err)).toEqual(["page_size"]);
    const unauthenticated = connectClient(ConversationService, "connect", h.server.baseUrl);
    expect(ConnectError.from(await failure(unauthenticated.listConversations({}))).code).toBe(Code.Unauthenticated);
  });

  describe("bad input is INVALID_ARGUMENT naming the field", () => {
    let a: TestUser, b: TestUser, group: { id: string }, channel: { id: string };
    beforeAll(async () => {
      [a, b] = await h.users(2);
      group = (await h.call(a, M.createConversation, { type: ConversationType.GROUP, memberIds: [b.id] })).conversation!;
      channel = (await h.call(a, M.createConversation, { type: ConversationType.CHANNEL, title: `bad-${randomUUID().slice(0, 6)}` })).conversation!;
    });
    const foreignToken = Buffer.from(`mem1:${randomUUID()}`).toString("base64url");
    const cases: [string, string, () => Promise<unknown>][] = [
      ["page_size too large", "page_size", () => h.call(a, M.listConversations, { pageSize: 201 })],
      ["negative page_size", "page_size", () => h.call(a, M.listConversations, { pageSize: -1 })],
      ["garbage page_token", "page_token", () => h.call(a, M.listConversations, { pageToken: "%%%not-a-token" })],
      ["base64 but not ours", "page_token", () => h.call(a, M.listConversations, { pageToken: Buffer.from("conv1:abc:def").toString("base64url") })],
      ["another list's token", "page_token", () => h.call(a, M.listConversations, { pageToken: foreignToken })],
      ["bad uuid", "conversation_id", () => h.call(a, M.getConversation, { conversationId: "123" })],
      ["missing id", "conversation_id", () => h.call(a, M.getConversation, {})],
      ["unspecified type", "type", () => h.call(a, M.createConversation, { title: "x" })],
      ["DM through CreateConversation", "type", () => h.call(a, M.createConversation, { type: ConversationType.DIRECT })],
      ["empty channel title", "title", () => h.call(a, M.createConversation, { type: ConversationType.CHANNEL, title: "  " })],
      ["too-long channel title", "title", () => h.call(a, M.createConversation, { type: ConversationType.CHANNEL, title: "c".repeat(81) })],
      ["channel name with spaces", "title", () => h.call(a, M.createConversation, { type: ConversationType.CHANNEL, title: "two words" })],
      ["channel name with non-ASCII", "title", () => h.call(a, M.createConversation, { type: ConversationType.CHANNEL, title: "café" })],
      ["too-long group title", "title", () => h.call(a, M.createConversation, { type: ConversationType.GROUP, title: "é".repeat(81) })],
      ["control characters in a title", "title", () => h.call(a, M.createConversation, { type: ConversationType.GROUP, title: "a\u0007b" })],
      ["too-long description", "description", () => h.call(a, M.createConversation, { type: ConversationType.GROUP, description: "d".repeat(1001) })],
      ["public group", "visibility", () => h.call(a, M.createConversation, { type: ConversationType.GROUP, visibility: Visibility.PUBLIC })],
      ["bad member id", "member_ids[1]", () => h.call(a, M.createConversation, { type: ConversationType.GROUP, memberIds: [b.id, "nope"] })],
      ["unknown member", "member_ids", () => h.call(a, M.createConversation, { type: ConversationType.GROUP, memberIds: [randomUUID()] })],
      ["rename a channel to nothing", "title", () => h.call(a, M.updateConversation, { conversationId: channel.id, title: "" })],
      ["visibility on a group", "visibility", () => h.call(a, M.updateConversation, { conversationId: group.id, visibility: Visibility.PUBLIC })],
      ["AddMembers with no users", "user_ids", () => h.call(a, M.addMembers, { conversationId: group.id, userIds: [] })],
      [
        "AddMembers over the batch limit",
        "user_ids",
        () => h.call(a, M.addMembers, { conversationId: group.id, userIds: Array.from({ length: 101 }, () => randomUUID()) }),
      ],
      ["AddMembers unknown user", "user_ids", () => h.call(a, M.addMembers, { conversationId: group.id, userIds: [randomUUID()] })],
      ["RemoveMember bad user", "user_id", () => h.call(a, M.removeMember, { conversationId: group.id, userId: "x" })],
      ["SetMemberRole without a role", "role", () => h.call(a, M.setMemberRole, { conversationId: group.id, userId: b.id })],
      ["ListMembers page_size", "page_size", () => h.call(a, M.listMembers, { conversationId: group.id, pageSize: 501 })],
      ["ListMembers token", "page_token", () => h.call(a, M.listMembers, { conversationId: group.id, pageToken: "zzzz" })],
      ["ListPublicChannels query", "query", () => h.call(a, M.listPublicChannels, { query: "#general" })],
      [
        "muted_until out of range",
        "muted_until",
        () => h.call(a, M.updateMemberSettings, { conversationId: group.id, mutedUntil: { seconds: 300_000_000_000n, nanos: 0 } }),
      ],
    ];
    it.each(cases)("%s", async (_name, field, call) => {
      const err = await fail(call());
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(grpcViolations(err)).toEqual([field]);
    });
  });
});
