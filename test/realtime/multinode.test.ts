// Three server processes sharing Postgres and Redis (and, in the second
// variant, MongoDB for messages): fan-out across nodes, lossless resume with
// concurrent senders on every node, idempotent retries, receipts and removal
// across nodes. Real grpc-js bidirectional streams.

import { afterAll, beforeAll, expect, it } from "vitest";
import type * as grpc from "@grpc/grpc-js";
import { forEachBackend } from "../support/backends.ts";
import { seedTargetForEnv } from "../support/seed.ts";
import { provisionBackends, spawnServer, type ProvisionedBackends, type ServerProcess } from "../support/server.ts";
import { StreamClient } from "../support/stream-client.ts";
import { channel, conversations, group, messages, users, type TestUser } from "./helpers.ts";

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

forEachBackend(
  "Stream across three nodes",
  ["postgres", "mongo"] as const,
  (variant) => {
    let backends: ProvisionedBackends;
    let seed: ReturnType<typeof seedTargetForEnv>;
    const nodes: ServerProcess[] = [];
    const channels: grpc.Client[] = [];
    const open: StreamClient[] = [];
    /** A device connected to node i (its own HTTP/2 connection). */
    const stream = (i: number, u: TestUser, hello: { resumeToken?: string } = {}) => {
      const ch = channel(nodes[i].address, { own: true });
      channels.push(ch);
      const s = StreamClient.open(ch, u.token, hello).keepAlive(2_000);
      open.push(s);
      return s;
    };

    beforeAll(async () => {
      backends = await provisionBackends({ sql: "postgres", redis: true, mongo: variant === "mongo" });
      // One at a time: the first applies the migrations.
      for (let i = 0; i < 3; i++) nodes.push(await spawnServer(backends.env, { NODE_ID: `node-${i}` }));
      seed = seedTargetForEnv(backends.env);
    });
    afterAll(async () => {
      for (const s of open) s.cancel();
      for (const c of channels) c.close();
      await Promise.all(nodes.map((n) => n.stop()));
      await seed?.close();
      await backends?.cleanup();
    });

    it("delivers messages sent on node A to a receiver on node B, in seq order", async () => {
      const [alice, bob] = await users(seed, 2);
      const conv = await group(nodes[0].baseUrl, alice, [bob]);
      const b = stream(1, bob);
      const a = stream(0, alice);
      await b.until((s) => s.ready());
      await a.until((s) => s.ready());
      for (let i = 1; i <= 30; i++) a.send(conv, `ab-${i}`, `message ${i}`);
      await b.until((s) => s.createdSeqs(conv).length === 30, 60_000, "30 messages on node B");
      expect(b.createdSeqs(conv)).toEqual(range(1, 30));
    });

    it("a receiver that disconnects while 5 senders on 3 nodes send 200 messages resumes with every seq exactly once, in order", async () => {
      const people = await users(seed, 6);
      const [receiver, ...senders] = people;
      const conv = await group(nodes[0].baseUrl, senders[0], [receiver, ...senders.slice(1)]);
      const first = stream(2, receiver);
      await first.until((s) => s.ready());
      const sending = senders.map((u, k) => {
        const s = stream(k % 3, u);
        return (async () => {
          await s.until((x) => x.ready());
          for (let i = 0; i < 40; i++) {
            s.send(conv, `c-${k}-${i}`, `from ${k}: ${i}`);
            // A few in flight per sender, as a chatty client: wait for the ack of every 5th.
            if (i % 5 === 4) await s.until((x) => x.frames.filter((f) => f.frame.case === "sendAck").length >= i + 1, 120_000, "acks");
          }
          await s.until((x) => x.frames.filter((f) => f.frame.case === "sendAck").length === 40, 120_000, "all acks");
        })();
      });

      // Drop the receiver part-way through the burst.
      await first.until((s) => s.createdSeqs(conv).length >= 30, 120_000, "first 30 messages");
      first.cancel();
      await first.ended;
      const received = first.createdSeqs(conv);
      // Resume on another node while the senders are still going.
      const second = stream(0, receiver, { resumeToken: first.lastCursor() });
      await Promise.all(sending);
      await second.until((s) => received.length + s.createdSeqs(conv).length >= 200, 120_000, "the rest after resuming");
      // Nothing lost, nothing twice, in order, across the disconnect.
      expect([...received, ...second.createdSeqs(conv)]).toEqual(range(1, 200));
      // FerretDB on a busy two-core machine can take a while for 200 sends; correctness is what is asserted.
    }, 240_000);

    it("a send retried on another node after a dropped connection yields one message", async () => {
      const [alice, bob] = await users(seed, 2);
      const conv = await group(nodes[0].baseUrl, alice, [bob]);
      const a1 = stream(0, alice);
      await a1.until((s) => s.ready());
      a1.send(conv, "retry-x", "exactly once");
      a1.cancel();
      const a2 = stream(1, alice);
      await a2.until((s) => s.ready());
      a2.send(conv, "retry-x", "exactly once");
      const ack = await a2.until((s) => s.frames.find((f) => f.frame.case === "sendAck"));
      expect(ack.frame.case === "sendAck" && ack.frame.value.message!.seq).toBe(1n);
      const list = await messages(nodes[2].baseUrl, bob.token).listMessages({ conversationId: conv, limit: 50 });
      expect(list.messages.map((m) => m.clientMessageId)).toEqual(["retry-x"]);
    });

    it("brings delivery and read receipts from a reader on one node to the sender on another", async () => {
      const [alice, bob] = await users(seed, 2);
      const conv = await group(nodes[0].baseUrl, alice, [bob]);
      const a = stream(0, alice);
      const b = stream(2, bob);
      await a.until((s) => s.ready());
      await b.until((s) => s.ready());
      a.send(conv, "rc-1", "ping");
      await b.until((s) => s.createdSeqs(conv).includes(1));
      b.write({ frame: { case: "ack", value: { cursor: b.lastCursor() } } });
      await a.until((s) =>
        s.durable().find((e) => e.payload.case === "receiptUpdated" && e.payload.value.userId === bob.id && e.payload.value.deliveredSeq === 1n),
      );
      b.write({ frame: { case: "markRead", value: { conversationId: conv, seq: 1n } } });
      await a.until((s) =>
        s.durable().find((e) => e.payload.case === "receiptUpdated" && e.payload.value.userId === bob.id && e.payload.value.readSeq === 1n),
      );
    });

    it("stops a removed member's events on every node", async () => {
      const [alice, bob, carol] = await users(seed, 3);
      const conv = await group(nodes[0].baseUrl, alice, [bob, carol]);
      const c = stream(2, carol);
      const b = stream(1, bob);
      const a = stream(0, alice);
      await Promise.all([a, b, c].map((s) => s.until((x) => x.ready())));
      a.send(conv, "rm-1", "before");
      await c.until((s) => s.createdSeqs(conv).includes(1));
      await conversations(nodes[1].baseUrl, alice.token).removeMember({ conversationId: conv, userId: carol.id });
      await c.until((s) => s.durable().find((e) => e.payload.case === "memberLeft" && e.payload.value.userId === carol.id));
      a.send(conv, "rm-2", "after");
      await b.until((s) => s.createdSeqs(conv).includes(2));
      c.write({ frame: { case: "ping", value: { nonce: "sync" } } });
      await c.until((s) => s.frames.find((f) => f.frame.case === "pong"));
      expect(c.createdSeqs(conv)).toEqual([1]);
    });
  },
  { alsoNeeds: ["postgres", "redis"] },
);
