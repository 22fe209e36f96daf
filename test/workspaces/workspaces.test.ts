// WorkspaceService end to end (real server, @grpc/grpc-js as native stubs,
// Postgres and PGlite): create/get/list/update, the role rules, invitations
// (links with expiry and use limits, by username and by email), join, leave,
// remove, the last-owner rule, keyset paging of members, audit entries, the
// default workspace of every user, and BOLA on every RPC.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { WorkspaceRole, WorkspaceService } from "../../gen/chat/v1/workspace_pb.js";
import { forEachBackend } from "../support/backends.ts";
import type { GrpcError } from "../support/clients.ts";
import { failure, grpcErrorInfo } from "../support/errors.ts";
import { startHarness, type Harness, type TestUser } from "../conversations/e2e-support.ts";
import { AuditLog } from "../../src/audit/audit-log.ts";
import { DEFAULT_WORKSPACE_ID } from "../../src/workspaces/types.ts";

const W = WorkspaceService.method;
const tag = () => randomUUID().slice(0, 8);

forEachBackend("workspaces e2e", ["postgres", "pglite"] as const, (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  const sql = () => h.server.app.stores.sql;
  const fail = (p: Promise<unknown>) => failure<GrpcError>(p);
  /** code and ErrorInfo reason of a call that must fail. */
  const rejected = async (p: Promise<unknown>) => {
    const err = await fail(p);
    return { code: err.code, reason: grpcErrorInfo(err)?.reason };
  };

  async function createWorkspace(owner: TestUser, name = `Team ${tag()}`) {
    const slug = `t-${tag()}`;
    return (await h.call(owner, W.createWorkspace, { name, slug, description: "d" })).workspace!;
  }
  /** A workspace with an owner and members joined through a link (role per member). */
  async function workspaceWith(owner: TestUser, members: [TestUser, WorkspaceRole][]) {
    const ws = await createWorkspace(owner);
    for (const [user, role] of members) {
      const link = (await h.call(owner, W.createInviteLink, { workspaceId: ws.id, maxUses: 1 })).invite!;
      await h.call(user, W.joinWorkspace, { invite: { case: "token", value: link.token } });
      if (role !== WorkspaceRole.MEMBER) await h.call(owner, W.setWorkspaceMemberRole, { workspaceId: ws.id, userId: user.id, role });
    }
    return ws;
  }
  const roleOf = async (wsId: string, viewer: TestUser, userId: string) => {
    const all = await h.call(viewer, W.listWorkspaceMembers, { workspaceId: wsId, pageSize: 500 });
    return all.members.find((m) => m.userId === userId)?.role;
  };

  describe("create, get, list, update", () => {
    it("the creator is the only member, as owner; slugs are unique; bad input is INVALID_ARGUMENT", async () => {
      const [a, b] = await h.users(2);
      const ws = await createWorkspace(a, "Acme");
      expect(ws).toMatchObject({ name: "Acme", description: "d", memberCount: 1, role: WorkspaceRole.OWNER, isDefault: false });
      expect((await h.call(a, W.getWorkspace, { workspaceId: ws.id })).workspace).toMatchObject({ id: ws.id, slug: ws.slug });
      expect(await rejected(h.call(b, W.createWorkspace, { name: "Other", slug: ws.slug }))).toEqual({
        code: grpc.status.ALREADY_EXISTS,
        reason: "WORKSPACE_SLUG_TAKEN",
      });
      for (const bad of [
        { name: "x", slug: "Upper" },
        { name: "x", slug: "a" },
        { name: "", slug: `ok-${tag()}` },
        { name: "two\nlines", slug: `ok-${tag()}` },
      ]) {
        expect(await rejected(h.call(a, W.createWorkspace, bad))).toEqual({ code: grpc.status.INVALID_ARGUMENT, reason: "INVALID_FIELD" });
      }
    });

    it("every user is in the default workspace from sign-up; ListMyWorkspaces pages by slug with no duplicates", async () => {
      const [a] = await h.users(1);
      const created = [];
      for (let i = 0; i < 4; i++) created.push(await createWorkspace(a));
      const seen: { id: string; slug: string; isDefault: boolean; role: WorkspaceRole }[] = [];
      let pageToken = "";
      do {
        const page = await h.call(a, W.listMyWorkspaces, { pageSize: 2, pageToken });
        expect(page.workspaces.length).toBeLessThanOrEqual(2);
        seen.push(...page.workspaces);
        pageToken = page.nextPageToken;
      } while (pageToken);
      expect(seen.map((w) => w.slug)).toEqual([...seen.map((w) => w.slug)].sort());
      expect(seen.map((w) => w.id).sort()).toEqual([DEFAULT_WORKSPACE_ID, ...created.map((w) => w.id)].sort());
      const def = seen.find((w) => w.id === DEFAULT_WORKSPACE_ID)!;
      expect(def).toMatchObject({ isDefault: true, slug: "default" });
      expect([WorkspaceRole.OWNER, WorkspaceRole.MEMBER]).toContain(def.role);
      expect(await rejected(h.call(a, W.listMyWorkspaces, { pageToken: "bm9wZQ" }))).toEqual({
        code: grpc.status.INVALID_ARGUMENT,
        reason: "PAGE_TOKEN_INVALID",
      });
    });

    it("owners and admins update name, slug and description; members cannot; a taken slug is ALREADY_EXISTS", async () => {
      const [owner, admin, member] = await h.users(3);
      const ws = await workspaceWith(owner, [
        [admin, WorkspaceRole.ADMIN],
        [member, WorkspaceRole.MEMBER],
      ]);
      const other = await createWorkspace(owner);
      const slug = `renamed-${tag()}`;
      const updated = (await h.call(admin, W.updateWorkspace, { workspaceId: ws.id, name: "Renamed", slug, description: "new" })).workspace!;
      expect(updated).toMatchObject({ name: "Renamed", slug, description: "new", role: WorkspaceRole.ADMIN, memberCount: 3 });
      expect(await rejected(h.call(member, W.updateWorkspace, { workspaceId: ws.id, name: "nope" }))).toEqual({
        code: grpc.status.PERMISSION_DENIED,
        reason: "ROLE_INSUFFICIENT",
      });
      expect(await rejected(h.call(owner, W.updateWorkspace, { workspaceId: ws.id, slug: other.slug }))).toEqual({
        code: grpc.status.ALREADY_EXISTS,
        reason: "WORKSPACE_SLUG_TAKEN",
      });
      expect((await h.call(owner, W.getWorkspace, { workspaceId: ws.id })).workspace).toMatchObject({ name: "Renamed", slug });
    });
  });

  describe("invitations", () => {
    it("a link admits max_uses users; a member re-joining uses nothing; the next one is INVITE_EXHAUSTED", async () => {
      const [owner, u1, u2, u3] = await h.users(4);
      const ws = await createWorkspace(owner);
      const link = (await h.call(owner, W.createInviteLink, { workspaceId: ws.id, maxUses: 2 })).invite!;
      expect(link).toMatchObject({ workspaceId: ws.id, maxUses: 2, useCount: 0, role: WorkspaceRole.MEMBER, createdBy: owner.id });
      expect(link.token).toMatch(/^[A-Za-z0-9_-]{40,}$/);
      const join = (u: TestUser) => h.call(u, W.joinWorkspace, { invite: { case: "token", value: link.token } });
      const first = await join(u1);
      expect(first).toMatchObject({ joined: true, workspace: { id: ws.id, role: WorkspaceRole.MEMBER, memberCount: 2 } });
      expect((await join(u1)).joined).toBe(false); // already a member: no use
      expect((await join(u2)).joined).toBe(true);
      expect(await rejected(join(u3))).toEqual({ code: grpc.status.FAILED_PRECONDITION, reason: "INVITE_EXHAUSTED" });
      const { rows } = await sql().query<{ use_count: number }>("SELECT use_count FROM workspace_invites WHERE id = $1", [link.id]);
      expect(rows[0].use_count).toBe(2);
      // Only the hash is stored.
      const stored = await sql().query<{ n: number }>("SELECT count(*)::int AS n FROM workspace_invites WHERE token_hash = $1", [link.token]);
      expect(stored.rows[0].n).toBe(0);
      expect((await h.call(owner, W.getWorkspace, { workspaceId: ws.id })).workspace!.memberCount).toBe(3);
    });

    it("concurrent joins never exceed max_uses", async () => {
      const [owner, ...users] = await h.users(9);
      const ws = await createWorkspace(owner);
      const link = (await h.call(owner, W.createInviteLink, { workspaceId: ws.id, maxUses: 3 })).invite!;
      const results = await Promise.allSettled(users.map((u) => h.call(u, W.joinWorkspace, { invite: { case: "token", value: link.token } })));
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(3);
      for (const r of results) if (r.status === "rejected") expect(grpcErrorInfo(r.reason as GrpcError)?.reason).toBe("INVITE_EXHAUSTED");
      expect((await h.call(owner, W.getWorkspace, { workspaceId: ws.id })).workspace!.memberCount).toBe(4);
    });

    it("an expired link is INVITE_EXPIRED; an unknown token is INVITE_NOT_FOUND; a guest link admits guests", async () => {
      const [owner, u1, u2] = await h.users(3);
      const ws = await createWorkspace(owner);
      const link = (await h.call(owner, W.createInviteLink, { workspaceId: ws.id, expiresInSeconds: 60 })).invite!;
      const expiresMs = Number(link.expiresAt!.seconds) * 1000;
      expect(Math.abs(expiresMs - (Date.now() + 60_000))).toBeLessThan(15_000);
      await sql().query("UPDATE workspace_invites SET expires_at = now() - interval '1 second' WHERE id = $1", [link.id]);
      expect(await rejected(h.call(u1, W.joinWorkspace, { invite: { case: "token", value: link.token } }))).toEqual({
        code: grpc.status.FAILED_PRECONDITION,
        reason: "INVITE_EXPIRED",
      });
      expect(await rejected(h.call(u1, W.joinWorkspace, { invite: { case: "token", value: "no-such-token" } }))).toEqual({
        code: grpc.status.NOT_FOUND,
        reason: "INVITE_NOT_FOUND",
      });
      const guestLink = (await h.call(owner, W.createInviteLink, { workspaceId: ws.id, role: WorkspaceRole.GUEST })).invite!;
      expect(guestLink.role).toBe(WorkspaceRole.GUEST);
      expect((await h.call(u2, W.joinWorkspace, { invite: { case: "token", value: guestLink.token } })).workspace!.role).toBe(WorkspaceRole.GUEST);
      // Default expiry: 7 days.
      expect(Math.abs(Number(guestLink.expiresAt!.seconds) * 1000 - (Date.now() + 7 * 86_400_000))).toBeLessThan(15_000);
      for (const bad of [{ expiresInSeconds: 59 }, { expiresInSeconds: 2_592_001 }, { maxUses: -1 }, { role: WorkspaceRole.ADMIN }]) {
        expect(await rejected(h.call(owner, W.createInviteLink, { workspaceId: ws.id, ...bad }))).toEqual({
          code: grpc.status.INVALID_ARGUMENT,
          reason: "INVALID_FIELD",
        });
      }
    });

    it("by username: only that user may redeem (by token or by id from ListMyInvites), once", async () => {
      const [owner, invitee, other] = await h.users(3);
      const ws = await createWorkspace(owner);
      const inv = (await h.call(owner, W.inviteMember, { workspaceId: ws.id, invitee: { case: "username", value: invitee.username.toUpperCase() } }))
        .invite!;
      expect(inv).toMatchObject({ inviteeUserId: invitee.id, maxUses: 1, workspaceName: ws.name });
      // Someone else holding the token gets what an unknown token gets.
      expect(await rejected(h.call(other, W.joinWorkspace, { invite: { case: "token", value: inv.token } }))).toEqual({
        code: grpc.status.NOT_FOUND,
        reason: "INVITE_NOT_FOUND",
      });
      expect(await rejected(h.call(other, W.joinWorkspace, { invite: { case: "inviteId", value: inv.id } }))).toEqual({
        code: grpc.status.NOT_FOUND,
        reason: "INVITE_NOT_FOUND",
      });
      expect((await h.call(other, W.listMyInvites, {})).invites.map((i) => i.id)).not.toContain(inv.id);
      const mine = (await h.call(invitee, W.listMyInvites, {})).invites;
      expect(mine.find((i) => i.id === inv.id)).toMatchObject({ workspaceId: ws.id, token: "" });
      expect((await h.call(invitee, W.joinWorkspace, { invite: { case: "inviteId", value: inv.id } })).joined).toBe(true);
      expect((await h.call(invitee, W.listMyInvites, {})).invites.map((i) => i.id)).not.toContain(inv.id);
      expect(await rejected(h.call(owner, W.inviteMember, { workspaceId: ws.id, invitee: { case: "username", value: "no_such_user_x" } }))).toEqual({
        code: grpc.status.NOT_FOUND,
        reason: "USER_NOT_FOUND",
      });
    });

    it("by email: the account with that email (any case) may redeem; others may not", async () => {
      const [owner, invitee, other] = await h.users(3);
      const ws = await createWorkspace(owner);
      const { rows } = await sql().query<{ email: string }>("SELECT email FROM users WHERE id = $1", [invitee.id]);
      const inv = (await h.call(owner, W.inviteMember, { workspaceId: ws.id, invitee: { case: "email", value: rows[0].email.toUpperCase() } }))
        .invite!;
      expect(inv.inviteeEmail).toBe(rows[0].email.toLowerCase());
      expect(await rejected(h.call(other, W.joinWorkspace, { invite: { case: "token", value: inv.token } }))).toEqual({
        code: grpc.status.NOT_FOUND,
        reason: "INVITE_NOT_FOUND",
      });
      expect((await h.call(invitee, W.listMyInvites, {})).invites.map((i) => i.id)).toContain(inv.id);
      expect((await h.call(invitee, W.joinWorkspace, { invite: { case: "token", value: inv.token } })).joined).toBe(true);
    });
  });

  describe("roles, leave, remove, last owner", () => {
    it("members and guests cannot invite, remove or set roles", async () => {
      const [owner, member, guest] = await h.users(3);
      const ws = await workspaceWith(owner, [
        [member, WorkspaceRole.MEMBER],
        [guest, WorkspaceRole.GUEST],
      ]);
      const denied = { code: grpc.status.PERMISSION_DENIED, reason: "ROLE_INSUFFICIENT" };
      for (const u of [member, guest]) {
        expect(await rejected(h.call(u, W.createInviteLink, { workspaceId: ws.id }))).toEqual(denied);
        expect(await rejected(h.call(u, W.inviteMember, { workspaceId: ws.id, invitee: { case: "username", value: owner.username } }))).toEqual(
          denied,
        );
        expect(await rejected(h.call(u, W.removeWorkspaceMember, { workspaceId: ws.id, userId: owner.id }))).toEqual(denied);
        expect(await rejected(h.call(u, W.setWorkspaceMemberRole, { workspaceId: ws.id, userId: u.id, role: WorkspaceRole.ADMIN }))).toEqual(denied);
      }
      // Everyone may read the workspace and its members.
      expect((await h.call(guest, W.getWorkspace, { workspaceId: ws.id })).workspace!.role).toBe(WorkspaceRole.GUEST);
      expect((await h.call(guest, W.listWorkspaceMembers, { workspaceId: ws.id })).members).toHaveLength(3);
    });

    it("admins manage members and admins but cannot touch owners or make owners", async () => {
      const [owner, admin, admin2, member] = await h.users(4);
      const ws = await workspaceWith(owner, [
        [admin, WorkspaceRole.ADMIN],
        [admin2, WorkspaceRole.ADMIN],
        [member, WorkspaceRole.MEMBER],
      ]);
      const denied = { code: grpc.status.PERMISSION_DENIED, reason: "ROLE_INSUFFICIENT" };
      expect(await rejected(h.call(admin, W.setWorkspaceMemberRole, { workspaceId: ws.id, userId: owner.id, role: WorkspaceRole.MEMBER }))).toEqual(
        denied,
      );
      expect(await rejected(h.call(admin, W.removeWorkspaceMember, { workspaceId: ws.id, userId: owner.id }))).toEqual(denied);
      expect(await rejected(h.call(admin, W.setWorkspaceMemberRole, { workspaceId: ws.id, userId: member.id, role: WorkspaceRole.OWNER }))).toEqual(
        denied,
      );
      const m = (await h.call(admin, W.setWorkspaceMemberRole, { workspaceId: ws.id, userId: member.id, role: WorkspaceRole.GUEST })).member!;
      expect(m).toMatchObject({ userId: member.id, role: WorkspaceRole.GUEST });
      await h.call(admin, W.setWorkspaceMemberRole, { workspaceId: ws.id, userId: admin2.id, role: WorkspaceRole.MEMBER });
      await h.call(admin, W.removeWorkspaceMember, { workspaceId: ws.id, userId: admin2.id });
      expect(await rejected(h.call(admin2, W.getWorkspace, { workspaceId: ws.id }))).toEqual({
        code: grpc.status.NOT_FOUND,
        reason: "WORKSPACE_NOT_FOUND",
      });
      // Removing someone no longer there is a no-op; a role for a non-member is MEMBER_NOT_FOUND.
      await h.call(admin, W.removeWorkspaceMember, { workspaceId: ws.id, userId: admin2.id });
      expect(await rejected(h.call(admin, W.setWorkspaceMemberRole, { workspaceId: ws.id, userId: admin2.id, role: WorkspaceRole.MEMBER }))).toEqual({
        code: grpc.status.NOT_FOUND,
        reason: "MEMBER_NOT_FOUND",
      });
      expect((await h.call(owner, W.getWorkspace, { workspaceId: ws.id })).workspace!.memberCount).toBe(3);

      // Audit: role changes, removals and invitations, with actor and metadata.
      const audit = new AuditLog(sql());
      const entries = await audit.list({ entityType: "workspace", entityId: ws.id, limit: 100 });
      const actions = entries.map((e) => e.action);
      expect(actions).toContain("workspace.created");
      expect(actions.filter((a) => a === "workspace.invite.created")).toHaveLength(3);
      expect(entries.find((e) => e.action === "workspace.member.removed")).toMatchObject({
        actorId: admin.id,
        metadata: { userId: admin2.id, role: "member" },
      });
      expect(entries.find((e) => e.action === "workspace.role.changed" && e.metadata.userId === member.id)).toMatchObject({
        actorId: admin.id,
        metadata: { from: "member", to: "guest" },
      });
    });

    it("the last owner cannot leave, be demoted or be removed; with a second owner they can", async () => {
      const [owner, other] = await h.users(2);
      const ws = await workspaceWith(owner, [[other, WorkspaceRole.ADMIN]]);
      const lastOwner = { code: grpc.status.FAILED_PRECONDITION, reason: "LAST_OWNER" };
      expect(await rejected(h.call(owner, W.leaveWorkspace, { workspaceId: ws.id }))).toEqual(lastOwner);
      expect(await rejected(h.call(owner, W.removeWorkspaceMember, { workspaceId: ws.id, userId: owner.id }))).toEqual(lastOwner);
      expect(await rejected(h.call(owner, W.setWorkspaceMemberRole, { workspaceId: ws.id, userId: owner.id, role: WorkspaceRole.ADMIN }))).toEqual(
        lastOwner,
      );
      // A workspace whose only member is its owner: still the last owner.
      const solo = await createWorkspace(owner);
      expect(await rejected(h.call(owner, W.leaveWorkspace, { workspaceId: solo.id }))).toEqual(lastOwner);

      await h.call(owner, W.setWorkspaceMemberRole, { workspaceId: ws.id, userId: other.id, role: WorkspaceRole.OWNER });
      await h.call(owner, W.setWorkspaceMemberRole, { workspaceId: ws.id, userId: owner.id, role: WorkspaceRole.MEMBER });
      expect(await roleOf(ws.id, other, owner.id)).toBe(WorkspaceRole.MEMBER);
      await h.call(owner, W.leaveWorkspace, { workspaceId: ws.id });
      expect((await h.call(other, W.getWorkspace, { workspaceId: ws.id })).workspace).toMatchObject({ memberCount: 1, role: WorkspaceRole.OWNER });
      expect(await rejected(h.call(owner, W.getWorkspace, { workspaceId: ws.id }))).toEqual({
        code: grpc.status.NOT_FOUND,
        reason: "WORKSPACE_NOT_FOUND",
      });
      const left = await new AuditLog(sql()).list({ entityType: "workspace", entityId: ws.id, action: "workspace.member.left" });
      expect(left.map((e) => e.actorId)).toEqual([owner.id]);
    });
  });

  it("ListWorkspaceMembers pages by user id: every member exactly once, in order", async () => {
    const [owner, ...rest] = await h.users(8);
    const ws = await workspaceWith(
      owner,
      rest.map((u) => [u, WorkspaceRole.MEMBER] as [TestUser, WorkspaceRole]),
    );
    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await h.call(rest[0], W.listWorkspaceMembers, { workspaceId: ws.id, pageSize: 3, pageToken });
      seen.push(...page.members.map((m) => m.userId));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken);
    expect(pages).toBe(3);
    expect(seen).toEqual([owner, ...rest].map((u) => u.id).sort());
  });

  describe("authorization (BOLA): a non-member gets exactly what an unknown workspace id gets", () => {
    let owner: TestUser, member: TestUser, outsider: TestUser;
    let ws: { id: string };
    const nonexistent = randomUUID();

    beforeAll(async () => {
      [owner, member, outsider] = await h.users(3);
      ws = await workspaceWith(owner, [[member, WorkspaceRole.MEMBER]]);
    });

    const rpcs: [string, (id: string) => Promise<unknown>][] = [
      ["GetWorkspace", (id) => h.call(outsider, W.getWorkspace, { workspaceId: id })],
      ["UpdateWorkspace", (id) => h.call(outsider, W.updateWorkspace, { workspaceId: id, name: "pwned" })],
      ["CreateInviteLink", (id) => h.call(outsider, W.createInviteLink, { workspaceId: id })],
      [
        "InviteMember (username)",
        (id) => h.call(outsider, W.inviteMember, { workspaceId: id, invitee: { case: "username", value: outsider.username } }),
      ],
      [
        "InviteMember (unknown username)",
        (id) => h.call(outsider, W.inviteMember, { workspaceId: id, invitee: { case: "username", value: "nobody_zz" } }),
      ],
      ["LeaveWorkspace", (id) => h.call(outsider, W.leaveWorkspace, { workspaceId: id })],
      ["RemoveWorkspaceMember", (id) => h.call(outsider, W.removeWorkspaceMember, { workspaceId: id, userId: member.id })],
      [
        "SetWorkspaceMemberRole",
        (id) => h.call(outsider, W.setWorkspaceMemberRole, { workspaceId: id, userId: outsider.id, role: WorkspaceRole.OWNER }),
      ],
      ["ListWorkspaceMembers", (id) => h.call(outsider, W.listWorkspaceMembers, { workspaceId: id })],
    ];

    it.each(rpcs)("%s: same NOT_FOUND as a nonexistent id", async (_name, rpc) => {
      const reference = await fail(rpc(nonexistent));
      expect(reference.code).toBe(grpc.status.NOT_FOUND);
      expect(grpcErrorInfo(reference)?.reason).toBe("WORKSPACE_NOT_FOUND");
      const err = await fail(rpc(ws.id));
      expect({ code: err.code, details: err.details }).toEqual({ code: reference.code, details: reference.details });
    });

    it("JoinWorkspace by someone else's invitation id: the same as an unknown id", async () => {
      const inv = (await h.call(owner, W.inviteMember, { workspaceId: ws.id, invitee: { case: "username", value: member.username } })).invite!;
      const reference = await fail(h.call(outsider, W.joinWorkspace, { invite: { case: "inviteId", value: randomUUID() } }));
      const err = await fail(h.call(outsider, W.joinWorkspace, { invite: { case: "inviteId", value: inv.id } }));
      expect({ code: err.code, details: err.details }).toEqual({ code: reference.code, details: reference.details });
    });

    it("nothing changed, and the workspace is in none of the outsider's lists", async () => {
      const got = (await h.call(owner, W.getWorkspace, { workspaceId: ws.id })).workspace!;
      expect(got.name).not.toBe("pwned");
      expect(got.memberCount).toBe(2);
      expect(await roleOf(ws.id, owner, member.id)).toBe(WorkspaceRole.MEMBER);
      expect(await roleOf(ws.id, owner, outsider.id)).toBeUndefined();
      const mine = await h.call(outsider, W.listMyWorkspaces, {});
      expect(mine.workspaces.map((w) => w.id)).not.toContain(ws.id);
      const { rows } = await sql().query<{ n: number }>(
        "SELECT count(*)::int AS n FROM workspace_invites WHERE workspace_id = $1 AND created_by = $2",
        [ws.id, outsider.id],
      );
      expect(rows[0].n).toBe(0);
    });
  });
});
