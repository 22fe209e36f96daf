// Bounded chaos: three server processes on Postgres + Redis (and, in the second
// variant, MongoDB/FerretDB for messages). Three senders send through unary
// SendMessage with retries (same client_message_id, switching node on failure);
// two receivers hold Streams and resume from their last cursor whenever a
// stream ends. Meanwhile the nodes' Postgres backends are killed again and
// again (pg_terminate_backend, only this test's: they carry its
// application_name) and one node is killed with SIGKILL. Afterwards every
// receiver's message_created seqs must equal ListMessages exactly: 0 lost,
// 0 duplicated, 0 out of order; every message sent is stored once; no node
// exited but the killed one.

import { afterAll, beforeAll, expect, it } from "vitest";
import pg from "pg";
import type * as grpc from "@grpc/grpc-js";
import { randomBytes } from "node:crypto";
import { forEachBackend } from "../support/backends.ts";
import { provisionBackends, spawnServer, type ProvisionedBackends, type ServerProcess } from "../support/server.ts";
import { StreamClient } from "../support/stream-client.ts";
import { channel, group, messages, users, type TestUser } from "../realtime/helpers.ts";

const SENDERS = 3;
const PER_SENDER = 30;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

forEachBackend("chaos: backend kills and a node kill -9 while sending", ["postgres", "mongo"] as const, (variant) => {
  let backends: ProvisionedBackends;
  const nodes: ServerProcess[] = [];
  const channels: grpc.Client[] = [];
  const streams: StreamClient[] = [];
  const appName = `chaos_${randomBytes(4).toString("hex")}`;
  let admin: pg.Client;
  let chaos = false;

  beforeAll(async () => {
    backends = await provisionBackends({ sql: "postgres", redis: true, mongo: variant === "mongo" });
    const url = new URL(backends.env.DATABASE_URL);
    url.searchParams.set("application_name", appName);
    // One at a time: the first applies the migrations.
    for (let i = 0; i < 3; i++) {
      nodes.push(await spawnServer(backends.env, { NODE_ID: `chaos-${i}`, DATABASE_URL: url.toString(), STREAM_HEARTBEAT_INTERVAL_MS: "2000" }));
    }
    admin = new pg.Client({ connectionString: backends.env.DATABASE_URL });
    await admin.connect();
  });
  afterAll(async () => {
    chaos = false;
    for (const s of streams) s.cancel();
    for (const c of channels) c.close();
    await admin?.end().catch(() => {});
    await Promise.all(nodes.map((n) => (n.child.exitCode === null && n.child.signalCode === null ? n.stop() : null)));
    await backends?.cleanup();
  });

  const alive = () => nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null);

  /** A receiver that keeps a Stream open on the given nodes, resuming from its last cursor whenever one ends. */
  function receiver(u: TestUser, conv: string, prefer: number) {
    const seqs: number[] = [];
    let cursor = "";
    let stopped = false;
    let resyncs = 0;
    let current: StreamClient | null = null;
    const done = (async () => {
      for (let attempt = 0; !stopped; attempt++) {
        const candidates = alive();
        if (candidates.length === 0) return;
        const node = candidates.includes(nodes[prefer]) ? nodes[prefer] : candidates[attempt % candidates.length];
        const ch = channel(node.address, { own: true });
        channels.push(ch);
        const s = StreamClient.open(ch, u.token, { resumeToken: cursor }).keepAlive(1_000);
        streams.push(s);
        current = s;
        let taken = 0;
        // Take over what this stream delivers, as it arrives, until it ends.
        for (;;) {
          const ended = await Promise.race([s.ended.then(() => true), sleep(50).then(() => false)]);
          const created = s.createdSeqs(conv);
          seqs.push(...created.slice(taken));
          taken = created.length;
          if (s.frames.some((f) => f.frame.case === "resyncRequired")) resyncs++;
          const c = s.lastCursor();
          if (c) cursor = c;
          if (ended || stopped) break;
        }
        s.cancel();
        if (!stopped) await sleep(100);
      }
    })();
    return {
      seqs,
      resyncs: () => resyncs,
      ready: async () => {
        while (!current?.ready()) await sleep(20);
      },
      async stop() {
        stopped = true;
        await done;
      },
    };
  }

  /** Sends one message, retrying (same client_message_id) on any failure, on whichever node is up. */
  async function sendWithRetry(u: TestUser, conv: string, clientMessageId: string, start: number): Promise<{ attempts: number }> {
    for (let attempt = 0; ; attempt++) {
      const up = alive();
      const node = up[(start + attempt) % up.length];
      try {
        await messages(node.baseUrl, u.token).sendMessage({ conversationId: conv, clientMessageId, content: clientMessageId }, { timeoutMs: 15_000 });
        return { attempts: attempt + 1 };
      } catch (err) {
        if (attempt >= 60) throw err;
        await sleep(100 + Math.floor(Math.random() * 200));
      }
    }
  }

  it("loses, duplicates and reorders nothing; only the killed node exits", async () => {
    const people = await users(nodes[0].baseUrl, SENDERS + 2);
    const senders = people.slice(0, SENDERS);
    const [r1, r2] = people.slice(SENDERS);
    const conv = await group(nodes[1].baseUrl, senders[0], [...senders.slice(1), r1, r2]);
    // Receivers on the nodes that survive and on the one that dies (it must resume elsewhere).
    const receivers = [receiver(r1, conv, 1), receiver(r2, conv, 0)];
    for (const r of receivers) await r.ready();

    chaos = true;
    let kills = 0;
    const killer = (async () => {
      while (chaos) {
        const { rows } = await admin
          .query<{ n: number }>("SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1", [appName])
          .catch(() => ({ rows: [{ n: 0 }] }));
        kills += rows[0].n;
        // Every second or so, every backend of these nodes at once (a failover looks like that),
        // with time to recover in between.
        await sleep(800 + Math.floor(Math.random() * 700));
      }
    })();

    let sent = 0;
    let retried = 0;
    const sending = senders.map(async (u, k) => {
      for (let i = 0; i < PER_SENDER; i++) {
        const { attempts } = await sendWithRetry(u, conv, `s${k}-${i}`, k + i);
        if (attempts > 1) retried++;
        sent++;
        if (sent === Math.floor((SENDERS * PER_SENDER) / 3)) nodes[0].child.kill("SIGKILL");
      }
    });
    await Promise.all(sending);
    chaos = false;
    await killer;

    // Everything stored: exactly once per client_message_id, seqs 1..n.
    const reader = messages(nodes[1].baseUrl, r1.token);
    const listed: { seq: number; clientMessageId: string }[] = [];
    // Newest first, page by page (before_seq), then oldest first.
    for (let before = 0; ; ) {
      const page = await reader.listMessages({ conversationId: conv, beforeSeq: BigInt(before), limit: 200 });
      for (const m of page.messages) listed.push({ seq: Number(m.seq), clientMessageId: m.clientMessageId });
      if (page.messages.length < 200) break;
      before = Number(page.messages[page.messages.length - 1].seq);
    }
    listed.reverse();
    const total = SENDERS * PER_SENDER;
    expect(listed.map((m) => m.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(new Set(listed.map((m) => m.clientMessageId)).size).toBe(total);

    // Every receiver got exactly that, in order (waiting for the tail to arrive).
    const expected = listed.map((m) => m.seq);
    for (const r of receivers) {
      const deadline = Date.now() + 60_000;
      while (r.seqs.length < expected.length && Date.now() < deadline) await sleep(50);
      await r.stop();
      expect(r.resyncs()).toBe(0);
      expect(r.seqs).toEqual(expected);
    }

    // The chaos happened, and only the killed node is gone.
    expect(kills).toBeGreaterThan(0);
    expect(nodes[0].child.signalCode).toBe("SIGKILL");
    for (const n of nodes.slice(1)) {
      expect(n.child.exitCode, n.output().slice(-2000)).toBeNull();
      expect(n.output()).not.toMatch(/Unhandled 'error' event/);
    }
    console.log(`chaos [${variant}]: ${total} messages, ${retried} needed a retry, ${kills} backends killed, node 0 killed -9`);
  }, 170_000);
});
