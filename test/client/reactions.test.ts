// The SDK's whoReacted (client/src/reactions.ts) against the real server:
// ListReactions pages merged into one entry per emoji, over gRPC, Connect and
// gRPC-Web; `maxUsers` stops early and says so.

import { afterAll, beforeAll, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { ChatClient, nodeTransport, type NodeProtocol } from "../../client/src/node.ts";
import { ConversationType } from "../../gen/chat/v1/conversation_pb.js";
import { forEachBackend } from "../support/backends.ts";
import { provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { DEFAULT_TEST_PASSWORD } from "../support/users.ts";

forEachBackend("SDK whoReacted", ["embedded"] as const, () => {
  let backends: ProvisionedBackends;
  let server: TestServer;
  const clients: ChatClient[] = [];

  beforeAll(async () => {
    backends = await provisionBackends({ sql: "pglite" });
    server = await startTestServer(backends.env);
  });
  afterAll(async () => {
    for (const c of clients) await c.close();
    await server?.close();
    await backends?.cleanup();
  });

  async function user(protocol: NodeProtocol): Promise<{ client: ChatClient; id: string }> {
    const client = new ChatClient({ transport: nodeTransport({ baseUrl: server.baseUrl, protocol }) });
    clients.push(client);
    const username = `rx_${randomBytes(5).toString("hex")}`;
    const u = await client.register({ email: `${username}@example.test`, username, password: DEFAULT_TEST_PASSWORD, displayName: "" });
    return { client, id: u.id };
  }

  it.each(["grpc", "connect", "grpc-web"] as NodeProtocol[])(
    "over %s: one entry per emoji across pages, counts, own flag, filter, maxUsers",
    async (protocol) => {
      const me = await user(protocol);
      const others = await Promise.all(Array.from({ length: 5 }, () => user("connect")));
      const conv = (
        await me.client.api.conversations.createConversation({ type: ConversationType.GROUP, title: "rx", memberIds: others.map((o) => o.id) })
      ).conversation!.id;
      const m = await me.client.send(conv, "react to this");
      for (const o of others) await o.client.api.messages.addReaction({ messageId: m.id, emoji: "🎉" });
      await others[0].client.api.messages.addReaction({ messageId: m.id, emoji: ":shipit:" });
      await me.client.api.messages.addReaction({ messageId: m.id, emoji: ":shipit:" });
      const sorted = (ids: string[]) => [...ids].sort();

      // Pages of 2 pairs: 🎉's five users span three pages, merged into one entry.
      const all = await me.client.whoReacted(m.id, { pageSize: 2 });
      expect(all.complete).toBe(true);
      expect(all.reactions).toEqual([
        { emoji: ":shipit:", count: 2, reacted: true, userIds: sorted([me.id, others[0].id]) },
        { emoji: "🎉", count: 5, reacted: false, userIds: sorted(others.map((o) => o.id)) },
      ]);
      // One emoji.
      expect((await others[1].client.whoReacted(m.id, { emoji: "🎉" })).reactions).toEqual([
        { emoji: "🎉", count: 5, reacted: true, userIds: sorted(others.map((o) => o.id)) },
      ]);
      // Cut short: the count is still the whole one.
      const some = await me.client.whoReacted(m.id, { pageSize: 2, maxUsers: 3 });
      expect(some.complete).toBe(false);
      expect(some.reactions.map((r) => [r.emoji, r.count, r.userIds.length])).toEqual([
        [":shipit:", 2, 2],
        ["🎉", 5, 2],
      ]);
      // A message nobody reacted to, and one the caller cannot see (NOT_FOUND, as an unknown id).
      const quiet = await me.client.send(conv, "nothing here");
      expect(await me.client.whoReacted(quiet.id)).toEqual({ reactions: [], complete: true });
      const stranger = await user(protocol);
      await expect(stranger.client.whoReacted(m.id)).rejects.toMatchObject({ code: 5 });
    },
  );
});
