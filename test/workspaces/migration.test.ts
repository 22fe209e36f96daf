// Migration 0009 on a database with data from before it (Postgres and PGlite):
// existing users and conversations end up in the default workspace (deployment
// admins as its owners), conversations.workspace_id is NOT NULL, users created
// afterwards join the default workspace at sign-up, and calls that name no
// workspace (today's clients) work unchanged on the migrated data.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { ConversationType, Visibility } from "../../gen/chat/v1/conversation_pb.js";
import { WorkspaceRole, WorkspaceService } from "../../gen/chat/v1/workspace_pb.js";
import { loadConfig } from "../../src/config.ts";
import type { SqlDatabase } from "../../src/stores/sql/sql.ts";
import { createPostgres } from "../../src/stores/sql/postgres.ts";
import { createPglite } from "../../src/stores/sql/pglite.ts";
import { loadMigrations, migrate } from "../../src/stores/sql/migrate.ts";
import { MIGRATIONS_DIR } from "../../src/stores/stores.ts";
import { DEFAULT_WORKSPACE_ID } from "../../src/workspaces/types.ts";
import { forEachBackend } from "../support/backends.ts";
import { GrpcJsClient } from "../support/clients.ts";
import { insertConversation, seedUsers, type TestUser } from "../support/seed.ts";
import { provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { M } from "../conversations/e2e-support.ts";

const W = WorkspaceService.method;

forEachBackend("migration 0009: existing data moves into the default workspace", ["postgres", "pglite"] as const, (backend) => {
  let backends: ProvisionedBackends;
  let server: TestServer;
  let client: GrpcJsClient;
  let admin: TestUser, alice: TestUser, bob: TestUser;
  let group: string, channel: string, dm: string;

  beforeAll(async () => {
    backends = await provisionBackends({ sql: backend });
    const vars = backends.env;
    // The database as it was before workspaces: migrations up to 0008, then data.
    const db: SqlDatabase =
      backend === "postgres" ? createPostgres(vars.DATABASE_URL, { max: 4 }) : await createPglite(join(vars.DATA_DIR, "pglite"));
    try {
      const before = (await loadMigrations(MIGRATIONS_DIR)).filter((m) => m.version < "0009");
      await migrate(db, before);
      const target = { sql: db, auth: loadConfig(vars).auth };
      [admin] = await seedUsers(target, 1, { roles: ["user", "admin"] });
      [alice, bob] = await seedUsers(target, 2);
      group = await insertConversation(db, [alice.id, bob.id]);
      channel = randomUUID();
      await db.query(
        `INSERT INTO conversations (id, type, title, visibility, owner_id, member_count, last_message_at) VALUES ($1, 'channel', 'General', 'public', $2, 1, now())`,
        [channel, alice.id],
      );
      await db.query("INSERT INTO conversation_members (conversation_id, user_id, role) VALUES ($1, $2, 'owner')", [channel, alice.id]);
      dm = randomUUID();
      const key = alice.id < bob.id ? `${alice.id}:${bob.id}` : `${bob.id}:${alice.id}`;
      await db.query(
        `INSERT INTO conversations (id, type, visibility, member_count, last_message_at, direct_key) VALUES ($1, 'direct', 'private', 2, now(), $2)`,
        [dm, key],
      );
      await db.query("INSERT INTO conversation_members (conversation_id, user_id, role) SELECT $1, u, 'member' FROM unnest($2::uuid[]) u", [
        dm,
        [alice.id, bob.id],
      ]);
    } finally {
      await db.close();
    }
    // The server applies 0009 (and anything after it) at start.
    server = await startTestServer(vars, { REGISTER_MAX_PER_ADDRESS: "1000000" });
    client = new GrpcJsClient(server.address);
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
    await backends?.cleanup();
  });

  const sql = () => server.app.stores.sql;
  const call: GrpcJsClient["unary"] = (method, req, opts) => client.unary(method, req, opts);

  it("every existing user is a member of the default workspace; deployment admins own it", async () => {
    const { rows } = await sql().query<{ user_id: string; role: string }>("SELECT user_id, role FROM workspace_members WHERE workspace_id = $1", [
      DEFAULT_WORKSPACE_ID,
    ]);
    const roles = Object.fromEntries(rows.map((r) => [r.user_id, r.role]));
    expect(roles).toEqual({ [admin.id]: "owner", [alice.id]: "member", [bob.id]: "member" });
    const ws = (await call(W.getWorkspace, { workspaceId: DEFAULT_WORKSPACE_ID }, { token: alice.token })).workspace!;
    expect(ws).toMatchObject({ isDefault: true, slug: "default", memberCount: 3, role: WorkspaceRole.MEMBER });
    expect((await call(W.listMyWorkspaces, {}, { token: admin.token })).workspaces.map((w) => [w.id, w.role])).toEqual([
      [DEFAULT_WORKSPACE_ID, WorkspaceRole.OWNER],
    ]);
  });

  it("every existing conversation belongs to it, and workspace_id is NOT NULL", async () => {
    const { rows } = await sql().query<{ id: string; workspace_id: string }>("SELECT id, workspace_id FROM conversations");
    expect(rows.map((r) => r.id).sort()).toEqual([group, channel, dm].sort());
    for (const r of rows) expect(r.workspace_id).toBe(DEFAULT_WORKSPACE_ID);
    const { rows: cols } = await sql().query<{ is_nullable: string }>(
      "SELECT is_nullable FROM information_schema.columns WHERE table_name = 'conversations' AND column_name = 'workspace_id' AND table_schema = current_schema()",
    );
    expect(cols[0].is_nullable).toBe("NO");
  });

  it("users created after the migration join the default workspace at sign-up", async () => {
    const [carol] = await seedUsers(server, 1);
    const ws = (await call(W.getWorkspace, { workspaceId: DEFAULT_WORKSPACE_ID }, { token: carol.token })).workspace!;
    expect(ws).toMatchObject({ role: WorkspaceRole.MEMBER, memberCount: 4 });
  });

  describe("calls that name no workspace work unchanged on the old data", () => {
    it("ListConversations, GetConversation, GetOrCreateDirect, ListPublicChannels", async () => {
      const list = await call(M.listConversations, {}, { token: alice.token });
      expect(list.conversations.map((c) => c.id).sort()).toEqual([group, channel, dm].sort());
      expect((await call(M.getConversation, { conversationId: group }, { token: bob.token })).conversation!.memberCount).toBe(2);
      const direct = await call(M.getOrCreateDirect, { userId: bob.id }, { token: alice.token });
      expect(direct).toMatchObject({ created: false, conversation: { id: dm } });
      const channels = await call(M.listPublicChannels, {}, { token: bob.token });
      expect(channels.conversations.map((c) => c.id)).toEqual([channel]);
      await call(M.joinConversation, { conversationId: channel }, { token: bob.token });
    });

    it("CreateConversation: new conversations land in the default workspace; channel names stay unique in it", async () => {
      const created = (
        await call(M.createConversation, { type: ConversationType.CHANNEL, title: "random", visibility: Visibility.PUBLIC }, { token: bob.token })
      ).conversation!;
      const { rows } = await sql().query<{ workspace_id: string }>("SELECT workspace_id FROM conversations WHERE id = $1", [created.id]);
      expect(rows[0].workspace_id).toBe(DEFAULT_WORKSPACE_ID);
      const err = await call(M.createConversation, { type: ConversationType.CHANNEL, title: "GENERAL" }, { token: bob.token }).catch((e) => e);
      expect(err.code).toBe(6); // ALREADY_EXISTS
    });
  });
});
