// A Postgres backend lost in the middle of a call (failover, pg_terminate_backend,
// idle-in-transaction timeout, a network reset) must cost that call UNAVAILABLE,
// never the process. The server runs as a child process (an unhandled 'error'
// event kills it) on Postgres, and on Postgres + MongoDB (FerretDB) for messages.
//
// The call is held at a known point inside the database: this test takes the
// conversation's row lock, so the server's backend waits for it inside its
// transaction (UpdateConversation on every adapter; SendMessage on the Mongo
// adapter, whose send holds a transaction across the MongoDB insert). That
// backend, the one blocked by ours, is then terminated.

import { afterAll, beforeAll, expect, it } from "vitest";
import pg from "pg";
import { Code, ConnectError } from "@connectrpc/connect";
import { forEachBackend } from "../support/backends.ts";
import { provisionBackends, spawnServer, type ProvisionedBackends, type ServerProcess } from "../support/server.ts";
import { until } from "../support/poll.ts";
import { conversations, group, messages, users, type TestUser } from "../realtime/helpers.ts";

forEachBackend("a lost database connection", ["postgres", "mongo"] as const, (variant) => {
  let backends: ProvisionedBackends;
  let node: ServerProcess;
  let locker: pg.Client;
  // Outside the locker's transaction: pg_stat_activity is a snapshot per transaction.
  let watcher: pg.Client;
  let alice: TestUser;
  let bob: TestUser;
  let conv: string;

  beforeAll(async () => {
    backends = await provisionBackends({ sql: "postgres", redis: true, mongo: variant === "mongo" });
    node = await spawnServer(backends.env, { NODE_ID: `loss-${variant}` });
    [alice, bob] = await users(node.baseUrl, 2);
    conv = await group(node.baseUrl, alice, [bob]);
    locker = new pg.Client({ connectionString: backends.env.DATABASE_URL });
    await locker.connect();
    watcher = new pg.Client({ connectionString: backends.env.DATABASE_URL });
    await watcher.connect();
  });
  afterAll(async () => {
    await locker?.end().catch(() => {});
    await watcher?.end().catch(() => {});
    await node?.stop();
    await backends?.cleanup();
  });

  /**
   * Runs `call` while holding the conversation row lock, terminates the server
   * backend that waits for it, and returns how the call ended.
   */
  async function killBackendDuring(call: () => Promise<unknown>): Promise<unknown> {
    await locker.query("BEGIN");
    await locker.query("SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", [conv]);
    const mine = (await locker.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    let settled: string | null = null;
    const outcome = call().then(
      () => ((settled = "OK"), null),
      (err: unknown) => ((settled = String(err)), err),
    );
    let victims: number[] = [];
    await until(
      async () => {
        if (settled !== null)
          throw new Error(
            `the call ended before its backend was killed: ${settled}\n${node
              .output()
              .split("\n")
              .filter((l) => /unexpected|error/.test(l))
              .slice(-5)
              .join("\n")}`,
          );
        if (node.child.exitCode !== null) throw new Error(`the node exited (${node.child.exitCode}):\n${node.output().slice(-2000)}`);
        const { rows } = await watcher.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", [mine]);
        victims = rows.map((r) => r.pid);
        return victims.length > 0;
      },
      30_000,
      "a server backend waiting for the row lock",
    );
    await watcher.query("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", [victims]);
    await locker.query("ROLLBACK");
    return outcome;
  }

  const expectUnavailable = (err: unknown) => {
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code, String(err)).toBe(Code.Unavailable);
  };

  it("UpdateConversation whose transaction loses its backend gets UNAVAILABLE; the node stays up and the next call succeeds", async () => {
    const client = conversations(node.baseUrl, alice.token);
    const err = await killBackendDuring(() => client.updateConversation({ conversationId: conv, title: "renamed while failing" }));
    expectUnavailable(err);
    // The node is still up, and the next call on the same pool goes through.
    const res = await client.updateConversation({ conversationId: conv, title: "renamed after" });
    expect(res.conversation?.title).toBe("renamed after");
    expect(node.child.exitCode).toBeNull();
    expect(node.output()).not.toMatch(/Unhandled 'error' event/);
    // Counted, not swallowed.
    const adminPort = Number(/"adminPort":(\d+)/.exec(node.output())![1]);
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    expect(Number(/store_connection_errors_total\{store="postgres"\} (\d+)/.exec(metrics)?.[1] ?? 0)).toBeGreaterThan(0);
  });

  it("SendMessage that loses its backend gets UNAVAILABLE; its retry with the same client_message_id lands exactly once", async () => {
    const client = messages(node.baseUrl, bob.token);
    const req = { conversationId: conv, clientMessageId: `loss-${variant}-1`, content: "sent across a backend kill" };
    const err = await killBackendDuring(() => client.sendMessage(req));
    expectUnavailable(err);
    const first = await client.sendMessage(req);
    const again = await client.sendMessage(req);
    expect(again.message?.id).toBe(first.message?.id);
    const listed = await client.listMessages({ conversationId: conv, limit: 50 });
    expect(listed.messages.filter((m) => m.content === req.content)).toHaveLength(1);
    expect(node.child.exitCode).toBeNull();
  });

  it("many calls across repeated backend kills: every one UNAVAILABLE or OK, never INTERNAL, and the node stays up", async () => {
    const client = conversations(node.baseUrl, alice.token);
    for (let i = 0; i < 5; i++) {
      const err = await killBackendDuring(() => client.updateConversation({ conversationId: conv, title: `round ${i}` }));
      expectUnavailable(err);
    }
    await until(
      async () =>
        await client.getConversation({ conversationId: conv }).then(
          () => true,
          () => false,
        ),
      10_000,
      "a call after the kills",
    );
    expect(node.child.exitCode).toBeNull();
  });
});
