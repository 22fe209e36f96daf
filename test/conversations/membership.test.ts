// ConversationService end to end (real server, @grpc/grpc-js as native stubs,
// Postgres and PGlite): DMs under concurrency, channel names, BOLA on every
// RPC, roles, and member_count under concurrent joins and leaves.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { ConversationType, MemberRole, Visibility } from "../../gen/chat/v1/conversation_pb.js";
import { forEachBackend } from "../support/backends.ts";
import type { GrpcError } from "../support/clients.ts";
import { failure, grpcViolations } from "./helpers.ts";
import { M, startHarness, type Harness, type TestUser } from "./e2e-support.ts";
import { PresenceService, PresenceStatus } from "../../gen/chat/v1/presence_pb.js";
import { StreamClient } from "../support/stream-client.ts";
import { connectClient } from "../support/clients.ts";
import { until } from "../support/poll.ts";

const P = PresenceService.method;

const tag = () => randomUUID().slice(0, 8);

forEachBackend("conversations e2e: membership", ["postgres", "pglite"] as const, (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  const sql = () => h.server.app.stores.sql;
  const fail = (p: Promise<unknown>) => failure<GrpcError>(p);

  async function createGroup(owner: TestUser, members: TestUser[], title = "") {
    const res = await h.call(owner, M.createConversation, { type: ConversationType.GROUP, title, memberIds: members.map((m) => m.id) });
    return res.conversation!;
  }
  async function createChannel(owner: TestUser, visibility: Visibility, members: TestUser[] = [], title = `chan-${tag()}`) {
    const res = await h.call(owner, M.createConversation, { type: ConversationType.CHANNEL, title, visibility, memberIds: members.map((m) => m.id) });
    return res.conversation!;
  }
  async function memberRows(conversationId: string): Promise<number> {
    const { rows } = await sql().query<{ n: number }>("SELECT count(*)::int AS n FROM conversation_members WHERE conversation_id = $1", [
      conversationId,
    ]);
    return rows[0].n;
  }

  describe("direct conversations", () => {
    it("20 concurrent GetOrCreateDirect calls from both users yield one conversation, created once", async () => {
      const [a, b] = await h.users(2);
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          i % 2 ? h.call(a, M.getOrCreateDirect, { userId: b.id }) : h.call(b, M.getOrCreateDirect, { userId: a.id }),
        ),
      );
      expect(new Set(results.map((r) => r.conversation!.id)).size).toBe(1);
      expect(results.filter((r) => r.created)).toHaveLength(1);
      const id = results[0].conversation!.id;
      expect(await memberRows(id)).toBe(2);
      for (const r of results) {
        expect(r.conversation).toMatchObject({
          type: ConversationType.DIRECT,
          memberCount: 2,
          joined: true,
          role: MemberRole.MEMBER,
          visibility: Visibility.PRIVATE,
          ownerId: "",
        });
      }
      // Each side sees the other as the peer.
      expect((await h.call(a, M.getConversation, { conversationId: id })).conversation!.peerUserId).toBe(b.id);
      expect((await h.call(b, M.getConversation, { conversationId: id })).conversation!.peerUserId).toBe(a.id);
      // Upper-case ids name the same pair.
      expect((await h.call(a, M.getOrCreateDirect, { userId: b.id.toUpperCase() })).conversation!.id).toBe(id);
    });

    it("a DM with yourself is a one-member conversation; unknown or malformed users are INVALID_ARGUMENT", async () => {
      const [a] = await h.users(1);
      const self = await h.call(a, M.getOrCreateDirect, { userId: a.id });
      expect(self.conversation).toMatchObject({ memberCount: 1, peerUserId: a.id });
      const ghost = await fail(h.call(a, M.getOrCreateDirect, { userId: randomUUID() }));
      expect(ghost.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(grpcViolations(ghost)).toEqual(["user_id"]);
      const malformed = await fail(h.call(a, M.getOrCreateDirect, { userId: "not-a-uuid" }));
      expect([malformed.code, grpcViolations(malformed)]).toEqual([grpc.status.INVALID_ARGUMENT, ["user_id"]]);
    });

    it("members cannot be added to, removed from or leave a DM (FAILED_PRECONDITION)", async () => {
      const [a, b, c] = await h.users(3);
      const dm = (await h.call(a, M.getOrCreateDirect, { userId: b.id })).conversation!;
      for (const call of [
        () => h.call(a, M.addMembers, { conversationId: dm.id, userIds: [c.id] }),
        () => h.call(a, M.removeMember, { conversationId: dm.id, userId: b.id }),
        () => h.call(a, M.leaveConversation, { conversationId: dm.id }),
        () => h.call(a, M.updateConversation, { conversationId: dm.id, title: "x" }),
        () => h.call(a, M.setMemberRole, { conversationId: dm.id, userId: b.id, role: MemberRole.OWNER }),
      ]) {
        expect((await fail(call())).code).toBe(grpc.status.FAILED_PRECONDITION);
      }
      expect(await memberRows(dm.id)).toBe(2);
    });
  });

  describe("channels", () => {
    it("a channel name clash, in any letter case, is ALREADY_EXISTS (create and rename)", async () => {
      const [a, b] = await h.users(2);
      const name = `Random-${tag()}`;
      await createChannel(a, Visibility.PUBLIC, [], name);
      for (const clash of [name, name.toLowerCase(), name.toUpperCase()]) {
        const err = await fail(h.call(b, M.createConversation, { type: ConversationType.CHANNEL, title: clash, visibility: Visibility.PRIVATE }));
        expect(err.code).toBe(grpc.status.ALREADY_EXISTS);
      }
      const other = await createChannel(b, Visibility.PUBLIC);
      const rename = await fail(h.call(b, M.updateConversation, { conversationId: other.id, title: name.toUpperCase() }));
      expect(rename.code).toBe(grpc.status.ALREADY_EXISTS);
      // Groups are not named channels: any title, repeated freely.
      await createGroup(a, [], name);
      await createGroup(b, [], name);
    });

    it("public channels are listed, readable by non-members (joined=false) and joinable; private ones are not", async () => {
      const [owner, visitor] = await h.users(2);
      const prefix = `pub${tag()}`;
      const pub = await createChannel(owner, Visibility.PUBLIC, [], `${prefix}-open`);
      const priv = await createChannel(owner, Visibility.PRIVATE, [], `${prefix}-closed`);
      const listed = await h.call(visitor, M.listPublicChannels, { query: prefix.toUpperCase() });
      expect(listed.conversations.map((c) => c.id)).toEqual([pub.id]);
      expect(listed.conversations[0]).toMatchObject({ joined: false, role: MemberRole.UNSPECIFIED, memberCount: 1 });

      const peek = (await h.call(visitor, M.getConversation, { conversationId: pub.id })).conversation!;
      expect(peek).toMatchObject({ id: pub.id, joined: false, unreadCount: 0 });
      expect((await fail(h.call(visitor, M.listMembers, { conversationId: pub.id }))).code).toBe(grpc.status.PERMISSION_DENIED);
      expect((await fail(h.call(visitor, M.joinConversation, { conversationId: priv.id }))).code).toBe(grpc.status.NOT_FOUND);

      const joined = (await h.call(visitor, M.joinConversation, { conversationId: pub.id })).conversation!;
      expect(joined).toMatchObject({ joined: true, role: MemberRole.MEMBER, memberCount: 2 });
      // Joining twice changes nothing.
      expect((await h.call(visitor, M.joinConversation, { conversationId: pub.id })).conversation!.memberCount).toBe(2);
      expect((await h.call(visitor, M.listPublicChannels, { query: prefix })).conversations[0].joined).toBe(true);
      await h.call(visitor, M.leaveConversation, { conversationId: pub.id });
      await h.call(visitor, M.leaveConversation, { conversationId: pub.id }); // leaving again is a no-op
      expect((await h.call(owner, M.getConversation, { conversationId: pub.id })).conversation!.memberCount).toBe(1);
    });

    it("pages through public channels by name", async () => {
      const [owner, reader] = await h.users(2);
      const prefix = `pg${tag()}`;
      const names = Array.from({ length: 7 }, (_, i) => `${prefix}-${String.fromCharCode(97 + i)}`);
      for (const n of [...names].reverse()) await createChannel(owner, Visibility.PUBLIC, [], n);
      const seen: string[] = [];
      let pageToken = "";
      do {
        const page = await h.call(reader, M.listPublicChannels, { query: prefix, pageSize: 3, pageToken });
        seen.push(...page.conversations.map((c) => c.title));
        pageToken = page.nextPageToken;
      } while (pageToken);
      expect(seen).toEqual(names);
    });
  });

  describe("authorization (BOLA): a non-member learns nothing about a private conversation", () => {
    let owner: TestUser, member: TestUser, outsider: TestUser;
    let group: { id: string }, privateChannel: { id: string };
    const nonexistent = randomUUID();

    beforeAll(async () => {
      [owner, member, outsider] = await h.users(3);
      group = await createGroup(owner, [member], "secret group");
      privateChannel = await createChannel(owner, Visibility.PRIVATE, [member]);
    });

    const rpcs: [string, (id: string) => Promise<unknown>][] = [
      ["GetConversation", (id) => h.call(outsider, M.getConversation, { conversationId: id })],
      ["ListMembers", (id) => h.call(outsider, M.listMembers, { conversationId: id })],
      ["UpdateConversation (rename)", (id) => h.call(outsider, M.updateConversation, { conversationId: id, title: "pwned" })],
      ["AddMembers", (id) => h.call(outsider, M.addMembers, { conversationId: id, userIds: [outsider.id] })],
      ["RemoveMember", (id) => h.call(outsider, M.removeMember, { conversationId: id, userId: member.id })],
      ["SetMemberRole", (id) => h.call(outsider, M.setMemberRole, { conversationId: id, userId: outsider.id, role: MemberRole.OWNER })],
      ["UpdateMemberSettings", (id) => h.call(outsider, M.updateMemberSettings, { conversationId: id, archived: true })],
      ["LeaveConversation", (id) => h.call(outsider, M.leaveConversation, { conversationId: id })],
      ["JoinConversation", (id) => h.call(outsider, M.joinConversation, { conversationId: id })],
    ];

    it.each(rpcs)("%s: same NOT_FOUND as a nonexistent id, for a private group and a private channel", async (_name, rpc) => {
      const reference = await fail(rpc(nonexistent));
      expect(reference.code).toBe(grpc.status.NOT_FOUND);
      for (const target of [group, privateChannel]) {
        const err = await fail(rpc(target.id));
        expect({ code: err.code, details: err.details }).toEqual({ code: reference.code, details: reference.details });
      }
    });

    it("GetPresence / WatchPresence: an outsider gets for a member exactly what an unknown id gets (issue 11, item 6)", async () => {
      // The member is online (a stream open); the owner, who shares a conversation with them, sees it.
      const stream = StreamClient.open(h.grpc.raw, member.token);
      try {
        await stream.until((s) => s.ready(), 10_000, "ready");
        await until(
          async () => (await h.call(owner, P.getPresence, { userIds: [member.id] })).presences[0].status === PresenceStatus.ONLINE,
          10_000,
          "member online for the owner",
        );
        const strip = (p: { userId: string; status: number; lastSeenAt?: unknown }, id: string) => ({
          ...p,
          userId: p.userId === id ? "<id>" : p.userId,
        });
        const reference = (await h.call(outsider, P.getPresence, { userIds: [nonexistent] })).presences[0];
        const seen = (await h.call(outsider, P.getPresence, { userIds: [member.id] })).presences[0];
        expect(strip(seen, member.id)).toEqual(strip(reference, nonexistent));
        expect(seen.status).toBe(PresenceStatus.OFFLINE);
        // In a batch too, and the outsider still sees themself.
        const batch = (await h.call(outsider, P.getPresence, { userIds: [outsider.id, member.id, owner.id] })).presences;
        expect(batch.map((p) => [p.userId, p.status])).toEqual([
          [outsider.id, PresenceStatus.OFFLINE],
          [member.id, PresenceStatus.OFFLINE],
          [owner.id, PresenceStatus.OFFLINE],
        ]);
        // WatchPresence: the first answer is the current presence, the same rule.
        const firstWatched = async (user: TestUser, id: string) => {
          const ac = new AbortController();
          try {
            for await (const r of connectClient(PresenceService, "grpc", h.server.baseUrl, user.token).watchPresence(
              { userIds: [id] },
              { signal: ac.signal },
            )) {
              return r.presence!;
            }
          } finally {
            ac.abort();
          }
          throw new Error("WatchPresence ended without an answer");
        };
        expect((await firstWatched(owner, member.id)).status).toBe(PresenceStatus.ONLINE);
        expect(strip(await firstWatched(outsider, member.id), member.id)).toEqual(strip(await firstWatched(outsider, nonexistent), nonexistent));
      } finally {
        stream.cancel();
      }
    });

    it("nothing changed, and the private conversations appear in none of the outsider's lists", async () => {
      for (const target of [group, privateChannel]) {
        const c = (await h.call(owner, M.getConversation, { conversationId: target.id })).conversation!;
        expect(c.title).not.toBe("pwned");
        expect(c.memberCount).toBe(2);
        const members = await h.call(owner, M.listMembers, { conversationId: target.id });
        expect(members.members.map((m) => m.userId).sort()).toEqual([owner.id, member.id].sort());
        expect(members.members.find((m) => m.userId === member.id)!.role).toBe(MemberRole.MEMBER);
      }
      const mine = await h.call(outsider, M.listConversations, { includeArchived: true });
      expect(mine.conversations).toEqual([]);
      const channels = await h.call(outsider, M.listPublicChannels, { pageSize: 200 });
      expect(channels.conversations.map((c) => c.id)).not.toContain(privateChannel.id);
    });
  });

  describe("roles", () => {
    it("members cannot rename, add, remove or change roles in a group", async () => {
      const [owner, m1, m2, newcomer] = await h.users(4);
      const g = await createGroup(owner, [m1, m2], "team");
      const denied = [
        () => h.call(m1, M.updateConversation, { conversationId: g.id, title: "mine now" }),
        () => h.call(m1, M.updateConversation, { conversationId: g.id, description: "x" }),
        () => h.call(m1, M.addMembers, { conversationId: g.id, userIds: [newcomer.id] }),
        () => h.call(m1, M.removeMember, { conversationId: g.id, userId: m2.id }),
        () => h.call(m1, M.setMemberRole, { conversationId: g.id, userId: m2.id, role: MemberRole.ADMIN }),
        () => h.call(m1, M.setMemberRole, { conversationId: g.id, userId: m1.id, role: MemberRole.ADMIN }),
      ];
      for (const call of denied) expect((await fail(call())).code).toBe(grpc.status.PERMISSION_DENIED);
      const after = (await h.call(owner, M.getConversation, { conversationId: g.id })).conversation!;
      expect(after).toMatchObject({ title: "team", memberCount: 3 });
    });

    it("admins manage members but cannot touch owners; the last owner must hand over before leaving", async () => {
      const [owner, admin, m1, m2, newcomer] = await h.users(5);
      const g = await createGroup(owner, [admin, m1, m2], "crew");
      const promoted = await h.call(owner, M.setMemberRole, { conversationId: g.id, userId: admin.id, role: MemberRole.ADMIN });
      expect(promoted.member).toMatchObject({ userId: admin.id, role: MemberRole.ADMIN });

      // What an admin may do.
      expect((await h.call(admin, M.updateConversation, { conversationId: g.id, title: "renamed" })).conversation!.title).toBe("renamed");
      expect((await h.call(admin, M.addMembers, { conversationId: g.id, userIds: [newcomer.id, m1.id] })).addedUserIds).toEqual([newcomer.id]);
      await h.call(admin, M.removeMember, { conversationId: g.id, userId: m2.id });
      await h.call(admin, M.setMemberRole, { conversationId: g.id, userId: m1.id, role: MemberRole.ADMIN });
      // What an admin may not.
      for (const call of [
        () => h.call(admin, M.removeMember, { conversationId: g.id, userId: owner.id }),
        () => h.call(admin, M.setMemberRole, { conversationId: g.id, userId: owner.id, role: MemberRole.MEMBER }),
        () => h.call(admin, M.setMemberRole, { conversationId: g.id, userId: newcomer.id, role: MemberRole.OWNER }),
      ]) {
        expect((await fail(call())).code).toBe(grpc.status.PERMISSION_DENIED);
      }

      // The only owner can neither leave nor step down.
      expect((await fail(h.call(owner, M.leaveConversation, { conversationId: g.id }))).code).toBe(grpc.status.FAILED_PRECONDITION);
      expect((await fail(h.call(owner, M.setMemberRole, { conversationId: g.id, userId: owner.id, role: MemberRole.ADMIN }))).code).toBe(
        grpc.status.FAILED_PRECONDITION,
      );
      // After handing over, they can.
      await h.call(owner, M.setMemberRole, { conversationId: g.id, userId: admin.id, role: MemberRole.OWNER });
      await h.call(owner, M.leaveConversation, { conversationId: g.id });
      const now = (await h.call(admin, M.getConversation, { conversationId: g.id })).conversation!;
      expect(now).toMatchObject({ ownerId: admin.id, role: MemberRole.OWNER, memberCount: 3, title: "renamed" });
      expect((await fail(h.call(owner, M.getConversation, { conversationId: g.id }))).code).toBe(grpc.status.NOT_FOUND);

      // Every membership and role change left an audit row, in order.
      const { rows } = await sql().query<{ action: string; actor_id: string }>(
        "SELECT action, actor_id FROM audit_log WHERE entity_type = 'conversation' AND entity_id = $1 ORDER BY id",
        [g.id],
      );
      expect(rows.map((r) => r.action)).toEqual([
        "conversation.created",
        "conversation.role.changed",
        "conversation.updated",
        "conversation.members.added",
        "conversation.member.removed",
        "conversation.role.changed",
        "conversation.role.changed",
        "conversation.member.left",
      ]);
      expect(rows.map((r) => r.actor_id)).toEqual([owner.id, owner.id, admin.id, admin.id, admin.id, admin.id, owner.id, owner.id]);
    });

    it("only owners change a channel's visibility; any member may add people to a public channel", async () => {
      const [owner, admin, member, friend] = await h.users(4);
      const ch = await createChannel(owner, Visibility.PUBLIC, [admin, member]);
      await h.call(owner, M.setMemberRole, { conversationId: ch.id, userId: admin.id, role: MemberRole.ADMIN });
      expect((await fail(h.call(admin, M.updateConversation, { conversationId: ch.id, visibility: Visibility.PRIVATE }))).code).toBe(
        grpc.status.PERMISSION_DENIED,
      );
      expect((await h.call(member, M.addMembers, { conversationId: ch.id, userIds: [friend.id] })).addedUserIds).toEqual([friend.id]);
      const priv = (await h.call(owner, M.updateConversation, { conversationId: ch.id, visibility: Visibility.PRIVATE })).conversation!;
      expect(priv.visibility).toBe(Visibility.PRIVATE);
      // Private now: adding needs an admin.
      const [late] = await h.users(1);
      expect((await fail(h.call(member, M.addMembers, { conversationId: ch.id, userIds: [late.id] }))).code).toBe(grpc.status.PERMISSION_DENIED);
      expect((await h.call(admin, M.addMembers, { conversationId: ch.id, userIds: [late.id] })).addedUserIds).toEqual([late.id]);
    });

    it("UpdateConversation is a partial update: unset fields stay as they are; a set visibility must be PUBLIC or PRIVATE", async () => {
      const [owner] = await h.users(1);
      const title = `chan-${tag()}`;
      const ch = await createChannel(owner, Visibility.PRIVATE, [], title);
      const desc = (await h.call(owner, M.updateConversation, { conversationId: ch.id, description: "about" })).conversation!;
      expect(desc).toMatchObject({ title, description: "about", visibility: Visibility.PRIVATE });
      const vis = (await h.call(owner, M.updateConversation, { conversationId: ch.id, visibility: Visibility.PUBLIC })).conversation!;
      expect(vis).toMatchObject({ title, description: "about", visibility: Visibility.PUBLIC });
      const renamed = (await h.call(owner, M.updateConversation, { conversationId: ch.id, title: `${title}-2` })).conversation!;
      expect(renamed).toMatchObject({ title: `${title}-2`, description: "about", visibility: Visibility.PUBLIC });
      // visibility is optional: a set UNSPECIFIED is a bad value, not "unchanged".
      const err = await fail(h.call(owner, M.updateConversation, { conversationId: ch.id, visibility: Visibility.UNSPECIFIED }));
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(grpcViolations(err)).toEqual(["visibility"]);
      expect((await h.call(owner, M.getConversation, { conversationId: ch.id })).conversation).toMatchObject({ visibility: Visibility.PUBLIC });
    });
  });

  it("member_count stays exact after 50 concurrent joins and leaves on a public channel", async () => {
    const [owner, ...people] = await h.users(51);
    const ch = await createChannel(owner, Visibility.PUBLIC);
    // As a client does: UNAVAILABLE (the pool's bounded wait, on a loaded machine) is retried after a
    // pause; nothing ran then, and join and leave are idempotent, so the count must still be exact.
    const call: typeof h.call = async (user, method, req) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await h.call(user, method, req);
        } catch (err) {
          if ((err as GrpcError).code !== grpc.status.UNAVAILABLE || attempt === 5) throw err;
          await new Promise((r) => setTimeout(r, 200 * attempt));
        }
      }
    };
    // Everyone joins (some twice) while half of them also leave again, all at once.
    await Promise.all(
      people.map(async (p, i) => {
        const again = i % 5 === 0 ? call(p, M.joinConversation, { conversationId: ch.id }) : Promise.resolve();
        await Promise.all([call(p, M.joinConversation, { conversationId: ch.id }), again]);
        if (i % 2 === 1) await call(p, M.leaveConversation, { conversationId: ch.id });
      }),
    );
    const expected = 1 + people.filter((_, i) => i % 2 === 0).length;
    const got = (await h.call(owner, M.getConversation, { conversationId: ch.id })).conversation!.memberCount;
    expect(got).toBe(expected);
    expect(await memberRows(ch.id)).toBe(expected);
    // A second wave: the ones who stayed leave, the ones who left come back.
    await Promise.all(
      people.map((p, i) =>
        i % 2 === 0 ? call(p, M.leaveConversation, { conversationId: ch.id }) : call(p, M.joinConversation, { conversationId: ch.id }),
      ),
    );
    const { rows } = await sql().query<{ member_count: number; n: number }>(
      "SELECT c.member_count, (SELECT count(*)::int FROM conversation_members m WHERE m.conversation_id = c.id) AS n FROM conversations c WHERE c.id = $1",
      [ch.id],
    );
    expect(rows[0]).toEqual({ member_count: 1 + 25, n: 1 + 25 });
  });

  it("limits: a full group refuses more members; batches are bounded", async () => {
    const small = await startHarness(backend, { GROUP_MAX_MEMBERS: "3", ADD_MEMBERS_MAX_BATCH: "2" });
    try {
      const [owner, a, b, c] = await small.users(4);
      const g = (await small.call(owner, M.createConversation, { type: ConversationType.GROUP, memberIds: [a.id] })).conversation!;
      const tooMany = await fail(small.call(owner, M.addMembers, { conversationId: g.id, userIds: [b.id, c.id, a.id] }));
      expect(tooMany.code).toBe(grpc.status.INVALID_ARGUMENT);
      const full = await fail(small.call(owner, M.addMembers, { conversationId: g.id, userIds: [b.id, c.id] }));
      expect(full.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect((await small.call(owner, M.addMembers, { conversationId: g.id, userIds: [b.id] })).conversation!.memberCount).toBe(3);
    } finally {
      await small.close();
    }
  });
});
