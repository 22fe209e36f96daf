// Presence, typing and notifications through real server processes sharing
// Postgres and Redis, with real grpc-js streams (as native apps hold them).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { AuthService } from "../../gen/chat/v1/auth_pb.js";
import { ConversationService, ConversationType } from "../../gen/chat/v1/conversation_pb.js";
import { MessageService, type Event } from "../../gen/chat/v1/message_pb.js";
import { PresenceService, PresenceStatus } from "../../gen/chat/v1/presence_pb.js";
import { NotificationService, NotificationType } from "../../gen/chat/v1/notification_pb.js";
import { timestampFromDate, timestampMs } from "@bufbuild/protobuf/wkt";
import { forEachBackend } from "../support/backends.ts";
import { provisionBackends, spawnServer, type ProvisionedBackends, type ServerProcess } from "../support/server.ts";
import { connectClient } from "../support/clients.ts";
import { registerUser } from "../support/users.ts";
import { DEFAULT_TEST_PASSWORD, seedTargetForEnv, seedUsers, type SeedTarget, type TestUser } from "../support/seed.ts";
import { StreamClient } from "../support/stream-client.ts";
import { channel } from "../realtime/helpers.ts";
import { signWebhook } from "../../src/notifications/webhook.ts";
import { DEFAULT_WORKSPACE_ID } from "../../src/workspaces/types.ts";
import { until } from "../support/poll.ts";

const WEBHOOK_SECRET = "presence-e2e-webhook-secret";
const SETTINGS = {
  PRESENCE_DEVICE_TTL_MS: "1500",
  PRESENCE_GRACE_MS: "400",
  PRESENCE_SWEEP_MS: "100",
  PRESENCE_COALESCE_MS: "100",
  TYPING_TTL_MS: "800",
  TYPING_THROTTLE_MS: "300",
  NOTIFY_BATCH_WINDOW_MS: "1500",
  NOTIFY_WEBHOOK_SECRET: WEBHOOK_SECRET,
  NOTIFY_WEBHOOK_BACKOFF_MS: "50",
};

type Person = TestUser;

/** Another device of the same user: a second session. */
async function device(baseUrl: string, p: Person, deviceId: string): Promise<string> {
  const res = await connectClient(AuthService, "connect", baseUrl).login({
    login: p.username,
    password: DEFAULT_TEST_PASSWORD,
    deviceId,
    deviceName: deviceId,
  });
  return res.tokens!.accessToken;
}

function presenceOf(s: StreamClient, userId: string): { status: PresenceStatus; lastSeen: Date | null }[] {
  return s.frames.flatMap((f) => {
    if (f.frame.case !== "event" || f.frame.value.payload.case !== "presenceUpdated") return [];
    const p = f.frame.value.payload.value;
    if (p.userId !== userId) return [];
    return [{ status: p.status, lastSeen: p.lastSeenAt ? new Date(Number(p.lastSeenAt.seconds) * 1000 + p.lastSeenAt.nanos / 1e6) : null }];
  });
}

function typingOf(s: StreamClient, userId: string): boolean[] {
  return s.frames.flatMap((f) => {
    const e: Event | undefined = f.frame.case === "event" ? f.frame.value : undefined;
    return e?.payload.case === "typingUpdated" && e.payload.value.userId === userId ? [e.payload.value.typing] : [];
  });
}

forEachBackend(
  "presence, typing and notifications across nodes",
  ["postgres"] as const,
  () => {
    let backends: ProvisionedBackends;
    let nodeA: ServerProcess;
    let nodeB: ServerProcess;
    let seed: SeedTarget & { close(): Promise<void> };
    // Seeded into the nodes' shared Postgres (the argument, a node's URL, is kept for readability).
    const person = async (_node?: string): Promise<Person> => (await seedUsers(seed, 1))[0];
    let webhook: http.Server;
    const deliveries: { headers: http.IncomingHttpHeaders; body: string }[] = [];
    const streams: StreamClient[] = [];
    const open = (node: ServerProcess, token: string) => {
      const s = StreamClient.open(channel(node.address, { own: true }), token);
      streams.push(s);
      return s;
    };

    beforeAll(async () => {
      webhook = http.createServer((req, res) => {
        let body = "";
        req.on("data", (c) => (body += c));
        req.on("end", () => {
          deliveries.push({ headers: req.headers, body });
          // The first attempt of every delivery fails: retries must happen.
          res.statusCode = req.headers["x-chat-attempt"] === "1" ? 503 : 200;
          res.end();
        });
      });
      await new Promise<void>((r) => webhook.listen(0, "127.0.0.1", r));
      backends = await provisionBackends({ sql: "postgres", redis: true });
      const env = { ...SETTINGS, NOTIFY_WEBHOOK_URL: `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/push` };
      [nodeA, nodeB] = await Promise.all([spawnServer(backends.env, env), spawnServer(backends.env, env)]);
      seed = seedTargetForEnv(backends.env);
    });
    afterAll(async () => {
      for (const s of streams) s.cancel();
      await Promise.allSettled([nodeA?.stop(), nodeB?.stop()]);
      await new Promise((r) => webhook?.close(r));
      await seed?.close();
      await backends?.cleanup();
    });

    async function groupOf(owner: Person, members: Person[]): Promise<string> {
      const res = await connectClient(ConversationService, "connect", nodeA.baseUrl, owner.token).createConversation({
        type: ConversationType.GROUP,
        title: "presence",
        memberIds: members.map((m) => m.id),
      });
      return res.conversation!.id;
    }

    it("is online while any device holds a stream, then offline with last_seen_at", async () => {
      const alice = await person(nodeA.baseUrl);
      const bob = await person(nodeA.baseUrl);
      await groupOf(bob, [alice]);
      const watcher = open(nodeA, bob.token);
      await watcher.until((s) => s.ready(), 10_000, "bob ready");

      const phone = open(nodeA, alice.token);
      await watcher.until(() => presenceOf(watcher, alice.id).some((p) => p.status === PresenceStatus.ONLINE), 10_000, "alice online");
      const laptop = open(nodeB, await device(nodeB.baseUrl, alice, "laptop"));
      await laptop.until((s) => s.ready(), 10_000, "laptop ready");

      phone.cancel(); // one device goes
      const presence = connectClient(PresenceService, "connect", nodeB.baseUrl, bob.token);
      // Past the grace period and a few sweeps, the laptop still holds her online.
      await until(async () => (await phone.ended) !== null, 5000);
      const graceOver = Date.now() + 400 + 300;
      while (Date.now() < graceOver) await new Promise((r) => setTimeout(r, 50));
      expect((await presence.getPresence({ userIds: [alice.id] })).presences[0].status).toBe(PresenceStatus.ONLINE);

      const before = Date.now();
      laptop.cancel(); // the last device goes
      await watcher.until(() => presenceOf(watcher, alice.id).some((p) => p.status === PresenceStatus.OFFLINE), 10_000, "alice offline");
      const offline = presenceOf(watcher, alice.id).find((p) => p.status === PresenceStatus.OFFLINE)!;
      expect(offline.lastSeen!.getTime()).toBeGreaterThanOrEqual(before - 1000);
      expect(presenceOf(watcher, alice.id).map((p) => p.status)).toEqual([PresenceStatus.ONLINE, PresenceStatus.OFFLINE]);
      const got = (await presence.getPresence({ userIds: [alice.id] })).presences[0];
      expect(got.status).toBe(PresenceStatus.OFFLINE);
      expect(timestampMs(got.lastSeenAt!)).toBeGreaterThanOrEqual(before - 1000);
    });

    it("makes no offline event for a quick reconnect (to another node)", async () => {
      const alice = await person(nodeA.baseUrl);
      const bob = await person(nodeA.baseUrl);
      await groupOf(bob, [alice]);
      const watcher = open(nodeB, bob.token);
      await watcher.until((s) => s.ready());
      const first = open(nodeA, alice.token);
      await watcher.until(() => presenceOf(watcher, alice.id).length === 1, 10_000, "alice online");
      first.cancel();
      const second = open(nodeB, alice.token); // the same device, back within the grace period
      await second.until((s) => s.ready());
      // Stay past the grace period and the device TTL, then leave for real.
      const stay = Date.now() + 2000;
      while (Date.now() < stay) await new Promise((r) => setTimeout(r, 50));
      second.cancel();
      await watcher.until(() => presenceOf(watcher, alice.id).some((p) => p.status === PresenceStatus.OFFLINE), 10_000, "alice offline");
      // One online, one offline: the reconnect produced nothing in between.
      expect(presenceOf(watcher, alice.id).map((p) => p.status)).toEqual([PresenceStatus.ONLINE, PresenceStatus.OFFLINE]);
    });

    it("turns a killed node's users offline within the device TTL", async () => {
      const doomed = await spawnServer(backends.env, SETTINGS);
      const alice = await person(nodeA.baseUrl);
      const bob = await person(nodeA.baseUrl);
      await groupOf(bob, [alice]);
      const watcher = open(nodeA, bob.token);
      await watcher.until((s) => s.ready());
      open(doomed, alice.token);
      await watcher.until(() => presenceOf(watcher, alice.id).some((p) => p.status === PresenceStatus.ONLINE), 10_000, "alice online");
      await doomed.kill(); // SIGKILL: no disconnect, no clean-up
      // Nobody tells the others: the device entry expires (TTL 1.5 s) and a surviving node's sweep publishes it.
      await watcher.until(() => presenceOf(watcher, alice.id).some((p) => p.status === PresenceStatus.OFFLINE), 10_000, "alice offline");
    });

    it("merges device statuses: ONLINE beats AWAY, DND is sticky", async () => {
      const alice = await person(nodeA.baseUrl);
      const laptopToken = await device(nodeA.baseUrl, alice, "laptop");
      const phone = connectClient(PresenceService, "connect", nodeA.baseUrl, alice.token);
      const laptop = connectClient(PresenceService, "grpc", nodeB.baseUrl, laptopToken);
      open(nodeA, alice.token);
      open(nodeB, laptopToken);
      await phone.setPresence({ status: PresenceStatus.AWAY });
      expect((await laptop.setPresence({ status: PresenceStatus.ONLINE })).presence!.status).toBe(PresenceStatus.ONLINE);
      expect((await laptop.setPresence({ status: PresenceStatus.AWAY })).presence!.status).toBe(PresenceStatus.AWAY);
      expect((await phone.setPresence({ status: PresenceStatus.DND })).presence!.status).toBe(PresenceStatus.DND);
      expect((await laptop.setPresence({ status: PresenceStatus.ONLINE })).presence!.status).toBe(PresenceStatus.DND);
      await expect(phone.setPresence({ status: PresenceStatus.OFFLINE })).rejects.toMatchObject({ code: 3 });
    });

    it("sends typing only to members with a stream open, and ends it by itself", async () => {
      const alice = await person(nodeA.baseUrl);
      const bob = await person(nodeA.baseUrl);
      const outsider = await person(nodeA.baseUrl);
      const conversationId = await groupOf(alice, [bob]);
      const bobStream = open(nodeB, bob.token);
      const outsiderStream = open(nodeB, outsider.token);
      await Promise.all([bobStream.until((s) => s.ready()), outsiderStream.until((s) => s.ready())]);
      const presence = connectClient(PresenceService, "connect", nodeA.baseUrl, alice.token);
      await presence.sendTyping({ conversationId, typing: true });
      await bobStream.until(() => typingOf(bobStream, alice.id).length === 2, 10_000, "typing then its expiry");
      expect(typingOf(bobStream, alice.id)).toEqual([true, false]);
      expect(typingOf(outsiderStream, alice.id)).toEqual([]);
      // Non-members cannot type there.
      await expect(
        connectClient(PresenceService, "connect", nodeA.baseUrl, outsider.token).sendTyping({ conversationId, typing: true }),
      ).rejects.toMatchObject({
        code: 5,
      });
    });

    it("batches mentions of an offline user into one notification, pushed through the signed webhook", async () => {
      const alice = await person(nodeA.baseUrl); // offline: no stream
      const bob = await person(nodeA.baseUrl);
      const conversationId = await groupOf(bob, [alice]);
      const msgs = connectClient(MessageService, "connect", nodeB.baseUrl, bob.token);
      for (let i = 0; i < 3; i++) {
        await msgs.sendMessage({ conversationId, clientMessageId: `m-${i}`, content: `hey @${alice.username} ${i}`, mentions: [alice.id] });
      }
      const list = connectClient(NotificationService, "connect", nodeA.baseUrl, alice.token);
      await until(async () => (await list.listNotifications({})).notifications.length > 0, 10_000, "a notification");
      // Wait for the window to close and the batch to be pushed (after one failed attempt).
      await until(
        () => deliveries.filter((d) => d.body.includes(conversationId) && d.headers["x-chat-attempt"] === "2").length === 1,
        15_000,
        "pushed",
      );
      const res = await list.listNotifications({});
      expect(res.notifications).toHaveLength(1);
      expect(res.notifications[0]).toMatchObject({ type: NotificationType.MENTION, conversationId, messageCount: 3, seen: false });
      // Pushed once its window (opened by the first mention) ended.
      expect(timestampMs(res.notifications[0].batchedAt!)).toBeGreaterThanOrEqual(
        timestampMs(res.notifications[0].createdAt!) + Number(SETTINGS.NOTIFY_BATCH_WINDOW_MS),
      );
      expect(res.unseenCount).toBe(1);
      const pushed = deliveries.find((d) => d.body.includes(conversationId) && d.headers["x-chat-attempt"] === "2")!;
      expect(pushed.headers["x-chat-signature"]).toBe(signWebhook(WEBHOOK_SECRET, String(pushed.headers["x-chat-timestamp"]), pushed.body));
      // Created without a workspace: the default one, and the push says so.
      expect(JSON.parse(pushed.body)).toMatchObject({
        userId: alice.id,
        workspaceId: DEFAULT_WORKSPACE_ID,
        conversationId,
        messageCount: 3,
        type: "mention",
      });
      // Bob, the sender, gets nothing; alice marks hers seen.
      expect((await connectClient(NotificationService, "connect", nodeA.baseUrl, bob.token).listNotifications({})).notifications).toEqual([]);
      expect((await list.markNotificationsSeen({ notificationIds: [res.notifications[0].id] })).markedCount).toBe(1);
      expect((await list.listNotifications({ unseenOnly: true })).notifications).toEqual([]);
    });

    it("notifies a muted conversation only on direct mention, and nobody who is online", async () => {
      const alice = await person(nodeA.baseUrl);
      const bob = await person(nodeA.baseUrl);
      const carol = await person(nodeA.baseUrl); // online: holds a stream
      const conversationId = await groupOf(bob, [alice, carol]);
      await connectClient(ConversationService, "connect", nodeA.baseUrl, alice.token).updateMemberSettings({
        conversationId,
        mutedUntil: timestampFromDate(new Date(Date.now() + 3_600_000)),
      });
      const carolStream = open(nodeA, carol.token);
      await carolStream.until((s) => s.ready());
      const msgs = connectClient(MessageService, "connect", nodeA.baseUrl, bob.token);
      // A thread parent by alice, then a reply: a thread reply in a muted conversation does not notify.
      const parent = await connectClient(MessageService, "connect", nodeA.baseUrl, alice.token).sendMessage({
        conversationId,
        clientMessageId: "p",
        content: "parent",
      });
      await msgs.sendMessage({ conversationId, clientMessageId: "r", content: "reply", parentMessageId: parent.message!.id });
      await msgs.sendMessage({ conversationId, clientMessageId: "c", content: "to carol", mentions: [carol.id] });
      await msgs.sendMessage({ conversationId, clientMessageId: "a", content: "to alice", mentions: [alice.id] });
      const aliceList = connectClient(NotificationService, "connect", nodeA.baseUrl, alice.token);
      await until(async () => (await aliceList.listNotifications({})).notifications.length > 0, 10_000, "alice's notification");
      const got = (await aliceList.listNotifications({})).notifications;
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ type: NotificationType.MENTION, messageCount: 1 });
      // Carol was mentioned but is online: nothing for her.
      expect((await connectClient(NotificationService, "connect", nodeA.baseUrl, carol.token).listNotifications({})).notifications).toEqual([]);
    });
  },
  { alsoNeeds: ["redis"] },
);

describe("presence bad input", () => {
  let backends: ProvisionedBackends;
  let node: ServerProcess;
  beforeAll(async () => {
    backends = await provisionBackends({ sql: "pglite" });
    node = await spawnServer(backends.env);
  });
  afterAll(async () => {
    await node?.stop();
    await backends?.cleanup();
  });

  it("rejects bad ids and too many users with INVALID_ARGUMENT", async () => {
    const r = await registerUser(node.baseUrl); // PGlite belongs to the server process: register through it
    const me = { id: r.user.id, token: r.accessToken };
    const presence = connectClient(PresenceService, "connect", node.baseUrl, me.token);
    await expect(presence.getPresence({ userIds: [] })).rejects.toMatchObject({ code: 3 });
    await expect(presence.getPresence({ userIds: ["nope"] })).rejects.toMatchObject({ code: 3 });
    await expect(presence.getPresence({ userIds: Array.from({ length: 501 }, () => me.id) })).rejects.toMatchObject({ code: 3 });
    await expect(presence.sendTyping({ conversationId: "x", typing: true })).rejects.toMatchObject({ code: 3 });
    const notifications = connectClient(NotificationService, "connect", node.baseUrl, me.token);
    await expect(notifications.listNotifications({ pageToken: "garbage" })).rejects.toMatchObject({ code: 3 });
    await expect(notifications.markNotificationsSeen({})).rejects.toMatchObject({ code: 3 });
    expect((await presence.getPresence({ userIds: [me.id] })).presences[0].status).toBe(PresenceStatus.OFFLINE);
  });
});
