// A notification reaches its user's open streams live (notification_created):
// on Postgres + Redis across two nodes (the stream on one, the send on the
// other), on the embedded default (PGlite + the in-process twin) and with the
// MongoDB notification store. Bidi Stream (grpc-js) and Subscribe (Connect).
// Nothing after the event is needed to flush it: each check waits for that
// event alone.

import { afterAll, beforeAll, expect, it } from "vitest";
import { ConversationService, ConversationType } from "../../gen/chat/v1/conversation_pb.js";
import { MessageService, type Event, type SubscribeResponse } from "../../gen/chat/v1/message_pb.js";
import { PresenceService, PresenceStatus } from "../../gen/chat/v1/presence_pb.js";
import { NotificationService, NotificationType } from "../../gen/chat/v1/notification_pb.js";
import { forEachBackend } from "../support/backends.ts";
import { provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { connectClient } from "../support/clients.ts";
import { StreamClient } from "../support/stream-client.ts";
import { channel, users } from "../realtime/helpers.ts";
import type { TestUser } from "../support/seed.ts";
import { until } from "../support/poll.ts";

const notificationsIn = (events: Event[]) =>
  events.flatMap((e) => (e.payload.case === "notificationCreated" ? [{ conversationId: e.conversationId, ...e.payload.value }] : []));

forEachBackend("live notifications", ["postgres+redis", "embedded", "mongo"] as const, (name) => {
  let backends: ProvisionedBackends;
  let nodeA: TestServer;
  let nodeB: TestServer;
  const streams: StreamClient[] = [];
  const aborts: AbortController[] = [];

  beforeAll(async () => {
    backends = await provisionBackends({
      sql: name === "embedded" ? "pglite" : "postgres",
      redis: name === "postgres+redis",
      mongo: name === "mongo",
    });
    // A short batch window (long enough for two sends under load): the test also sees a batch grow,
    // then a new one after the push.
    nodeA = await startTestServer(backends.env, { NOTIFY_BATCH_WINDOW_MS: "3000" });
    // Two nodes where they share the fan-out (Redis); one node otherwise.
    nodeB = name === "postgres+redis" ? await startTestServer(backends.env, { NOTIFY_BATCH_WINDOW_MS: "3000" }) : nodeA;
  });
  afterAll(async () => {
    for (const s of streams) s.cancel();
    for (const a of aborts) a.abort();
    if (nodeB !== nodeA) await nodeB?.close();
    await nodeA?.close();
    await backends?.cleanup();
  });

  /** A Connect Subscribe on `node`, collecting its events. */
  function subscribe(node: TestServer, token: string): { events: Event[]; ready: Promise<void> } {
    const abort = new AbortController();
    aborts.push(abort);
    const events: Event[] = [];
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    void (async () => {
      try {
        for await (const res of connectClient(MessageService, "connect", node.baseUrl, token).subscribe(
          {},
          { signal: abort.signal },
        ) as AsyncIterable<SubscribeResponse>) {
          if (res.frame.case === "ready") ready();
          if (res.frame.case === "event") events.push(res.frame.value);
        }
      } catch {
        // cancelled at the end
      }
    })();
    return { events, ready: isReady };
  }

  it("an away user's Stream and Subscribe get notification_created when mentioned (and as the batch grows); an online user's get none", async () => {
    const [alice, bob, carol] = (await users(nodeA, 3)) as TestUser[];
    const conv = (
      await connectClient(ConversationService, "connect", nodeA.baseUrl, alice.token).createConversation({
        type: ConversationType.GROUP,
        title: "live notifications",
        memberIds: [bob.id, carol.id],
      })
    ).conversation!.id;

    // Bob: a bidi Stream on node B and a Subscribe on node A, then away. Carol: a Stream, online.
    const bobStream = StreamClient.open(channel(nodeB.address, { own: true }), bob.token);
    const carolStream = StreamClient.open(channel(nodeB.address, { own: true }), carol.token);
    streams.push(bobStream, carolStream);
    const bobSub = subscribe(nodeA, bob.token);
    await Promise.all([bobStream.until((s) => s.ready()), carolStream.until((s) => s.ready()), bobSub.ready]);
    await connectClient(PresenceService, "connect", nodeB.baseUrl, bob.token).setPresence({ status: PresenceStatus.AWAY });

    const send = connectClient(MessageService, "connect", nodeA.baseUrl, alice.token);
    await send.sendMessage({
      conversationId: conv,
      clientMessageId: "n-1",
      content: `@${bob.username} @${carol.username} look`,
      mentions: [bob.id, carol.id],
    });

    const first = await bobStream.until((s) => notificationsIn(s.events())[0], 10_000, "notification_created on bob's Stream");
    expect(first).toMatchObject({ conversationId: conv, unseenCount: 1 });
    expect(first.notification).toMatchObject({ type: NotificationType.MENTION, conversationId: conv, messageCount: 1, seen: false });
    expect(first.notification!.senderIds).toEqual([alice.id]);
    expect(first.notification!.preview).toContain("look");
    await until(() => notificationsIn(bobSub.events).length === 1, 10_000, "notification_created on bob's Subscribe");
    expect(notificationsIn(bobSub.events)[0].notification!.id).toBe(first.notification!.id);

    // A second mention in the same window: the same notification, grown (replace by id).
    await send.sendMessage({ conversationId: conv, clientMessageId: "n-2", content: `@${bob.username} again`, mentions: [bob.id] });
    const grown = await bobStream.until((s) => notificationsIn(s.events())[1], 10_000, "the grown notification");
    expect(grown.notification).toMatchObject({ id: first.notification!.id, messageCount: 2 });
    expect(grown.notification!.preview).toContain("again");
    expect(grown.unseenCount).toBe(1);

    // What ListNotifications says is what the stream said.
    const listed = await connectClient(NotificationService, "connect", nodeA.baseUrl, bob.token).listNotifications({});
    expect(listed.notifications.map((n) => [n.id, n.messageCount])).toEqual([[first.notification!.id, 2]]);
    expect(listed.unseenCount).toBe(1);

    // After the window closed and the batch was pushed, the next mention opens a new one: unseen 2.
    await until(
      async () =>
        (await connectClient(NotificationService, "connect", nodeA.baseUrl, bob.token).listNotifications({})).notifications[0]?.batchedAt !==
        undefined,
      10_000,
      "the first batch pushed",
    );
    await send.sendMessage({ conversationId: conv, clientMessageId: "n-3", content: `@${bob.username} third`, mentions: [bob.id] });
    const next = await bobStream.until((s) => notificationsIn(s.events())[2], 10_000, "a new notification");
    expect(next.notification!.id).not.toBe(first.notification!.id);
    expect(next.notification!.messageCount).toBe(1);
    expect(next.unseenCount).toBe(2);

    // Carol is online: mentioned, but not notified, so no event (her stream did get the messages).
    await carolStream.until((s) => s.createdSeqs(conv).length === 3, 10_000, "carol's messages");
    expect(notificationsIn(carolStream.events())).toEqual([]);
    // Alice, the sender, gets none either, and no other stream of bob's got it twice.
    expect(notificationsIn(bobStream.events())).toHaveLength(3);
  });
});
