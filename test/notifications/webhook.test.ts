// The webhook push sender against a real local HTTP receiver: signed
// deliveries, retries with backoff on failures, and no retry on a refusal.

import { afterAll, beforeAll, expect, it } from "vitest";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { pino } from "pino";
import { type PushOutcome, signWebhook, verifyWebhook, WebhookPushSender } from "../../src/notifications/webhook.ts";
import type { PushedNotification } from "../../src/notifications/types.ts";
import { until } from "../support/poll.ts";

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  /** When the request arrived (ms, monotonic). */
  at: number;
}

let server: http.Server;
let url: string;
const received: Received[] = [];
/** Status codes to answer, in order, per delivery id; then 200. */
const script = new Map<string, number[]>();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      received.push({ headers: req.headers, body, at: performance.now() });
      const plan = script.get(String(req.headers["x-chat-delivery"])) ?? [];
      res.statusCode = plan.shift() ?? 200;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/push`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function notification(): PushedNotification {
  return {
    id: randomUUID(),
    userId: randomUUID(),
    workspaceId: randomUUID(),
    conversationId: randomUUID(),
    type: "mention",
    messageIds: [randomUUID()],
    messageCount: 3,
    senderIds: [randomUUID()],
    preview: "hi @you",
    lastSeq: 7,
    createdAt: new Date(),
    windowEndsAt: new Date(),
    batchedAt: new Date(),
    seenAt: null,
  };
}

const SECRET = "webhook-test-secret-0123456789";
const BACKOFF_MS = 40;
const sender = () => new WebhookPushSender({ url, secret: SECRET, maxAttempts: 4, backoffMs: BACKOFF_MS }, pino({ level: "silent" }));

it("delivers a signed JSON notification", async () => {
  const n = notification();
  await sender().send(n);
  await until(() => received.some((r) => r.headers["x-chat-delivery"] === n.id));
  const got = received.find((r) => r.headers["x-chat-delivery"] === n.id)!;
  const delivery = { timestamp: String(got.headers["x-chat-timestamp"]), body: got.body, signature: String(got.headers["x-chat-signature"]) };
  // What a receiver checks: it verifies with the shared secret, and nothing else passes.
  expect(verifyWebhook(SECRET, delivery)).toBe(true);
  expect(verifyWebhook("another-secret-0123456789", delivery)).toBe(false);
  expect(verifyWebhook(SECRET, { ...delivery, body: got.body.replace("hi @you", "hi @them") })).toBe(false);
  expect(verifyWebhook(SECRET, { ...delivery, signature: delivery.signature.slice(0, -1) })).toBe(false);
  // A captured delivery replayed ten minutes later is refused.
  expect(verifyWebhook(SECRET, delivery, { nowMs: Number(delivery.timestamp) * 1000 + 600_000 })).toBe(false);
  expect(JSON.parse(got.body)).toMatchObject({
    id: n.id,
    type: "mention",
    userId: n.userId,
    workspaceId: n.workspaceId,
    messageCount: 3,
    preview: "hi @you",
  });
});

it("retries 5xx and 429 with backoff until it is accepted", async () => {
  const n = notification();
  script.set(n.id, [503, 429, 500]);
  await sender().send(n);
  await until(() => received.filter((r) => r.headers["x-chat-delivery"] === n.id).length === 4);
  const attempts = received.filter((r) => r.headers["x-chat-delivery"] === n.id);
  expect(attempts.map((a) => a.headers["x-chat-attempt"])).toEqual(["1", "2", "3", "4"]);
  // Every attempt is signed on its own.
  for (const a of attempts) expect(a.headers["x-chat-signature"]).toBe(signWebhook(SECRET, String(a.headers["x-chat-timestamp"]), a.body));
  // Spaced by the backoff: before retry k the sender waits at least half of BACKOFF_MS * 2^(k-1)
  // (full jitter over the upper half), so the gaps are at least 20, 40 and 80 ms. A lower bound
  // only: a slow machine makes gaps longer, never shorter; retries without backoff come within a ms.
  const gaps = attempts.slice(1).map((a, i) => a.at - attempts[i].at);
  gaps.forEach((gap, i) => expect(gap, `gap before attempt ${i + 2}`).toBeGreaterThanOrEqual((BACKOFF_MS * 2 ** i) / 2 - 1));
});

it("gives up after maxAttempts and does not retry a 4xx refusal", async () => {
  const failing = notification();
  script.set(failing.id, [500, 500, 500, 500, 500, 500]);
  const refused = notification();
  script.set(refused.id, [400]);
  const outcomes: PushOutcome[] = [];
  const s = new WebhookPushSender(
    { url, secret: SECRET, maxAttempts: 4, backoffMs: BACKOFF_MS, onOutcome: (o) => outcomes.push(o) },
    pino({ level: "silent" }),
  );
  await s.send(failing);
  await s.send(refused);
  await until(() => received.filter((r) => r.headers["x-chat-delivery"] === failing.id).length === 4);
  // Let any wrongly scheduled retry happen: well past the largest backoff.
  await new Promise((r) => setTimeout(r, 8 * BACKOFF_MS * 2));
  expect(received.filter((r) => r.headers["x-chat-delivery"] === failing.id)).toHaveLength(4);
  expect(received.filter((r) => r.headers["x-chat-delivery"] === refused.id)).toHaveLength(1);
  // Neither ends silently: each outcome is reported once (the module counts them in notification_push_total).
  expect(outcomes.sort()).toEqual(["gave_up", "refused"]);
});

it("counts a push dropped with the queue full, and a delivered one", async () => {
  const outcomes: PushOutcome[] = [];
  const s = new WebhookPushSender(
    { url, secret: SECRET, maxAttempts: 1, backoffMs: BACKOFF_MS, maxQueued: 1, concurrency: 1, onOutcome: (o) => outcomes.push(o) },
    pino({ level: "silent" }),
  );
  const first = notification();
  const second = notification();
  await s.send(first);
  await s.send(second); // the queue holds one: this one is dropped, and said so
  expect(outcomes).toEqual(["dropped"]);
  await until(() => outcomes.length === 2);
  expect(outcomes).toEqual(["dropped", "delivered"]);
  expect(received.filter((r) => r.headers["x-chat-delivery"] === second.id)).toHaveLength(0);
});
