// Admission control for stream opens (src/realtime/admission.ts), on a real
// server with Postgres: the per-user stream cap refuses the newest open, and
// opens beyond the running + waiting bound are refused with
// RESOURCE_EXHAUSTED and a RetryInfo instead of piling onto the database.
// An open is held at a known point by locking the table it reads first
// (conversation_members), so the outcomes do not depend on timing.

import { afterAll, beforeAll, expect, it } from "vitest";
import pg from "pg";
import { Code, ConnectError } from "@connectrpc/connect";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { MessageService } from "../../gen/chat/v1/message_pb.js";
import { forEachBackend } from "../support/backends.ts";
import { provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { connectClient } from "../support/clients.ts";
import { reasonOf } from "../../src/server/errors.ts";
import { users, type TestUser } from "./helpers.ts";
import { goAwayWindowMs } from "../../src/realtime/admission.ts";

forEachBackend("stream admission", ["postgres"] as const, () => {
  let backends: ProvisionedBackends;
  let server: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  const aborts: AbortController[] = [];

  beforeAll(async () => {
    backends = await provisionBackends({ sql: "postgres" });
    server = await startTestServer(backends.env, {
      STREAM_MAX_PER_USER: "3",
      STREAM_OPEN_CONCURRENCY: "1",
      STREAM_OPEN_QUEUE_MAX: "1",
      STREAM_OPEN_WAIT_MS: "300",
    });
    [alice, bob] = await users(server.baseUrl, 2);
  });
  afterAll(async () => {
    for (const a of aborts) a.abort();
    await server?.close();
    await backends?.cleanup();
  });

  /** Opens a Subscribe over gRPC; resolves "ready" at its first frame, or with the error that refused it. */
  function subscribe(u: TestUser): { outcome: Promise<"ready" | ConnectError>; abort: AbortController } {
    const abort = new AbortController();
    aborts.push(abort);
    const client = connectClient(MessageService, "grpc", server.baseUrl, u.token);
    const outcome = (async () => {
      try {
        for await (const res of client.subscribe({}, { signal: abort.signal })) {
          if (res.frame.case === "ready") return "ready" as const;
        }
        throw new Error("stream ended without ready");
      } catch (err) {
        return ConnectError.from(err);
      }
    })();
    return { outcome, abort };
  }

  const expectRefused = (r: "ready" | ConnectError, reason: string) => {
    expect(r).toBeInstanceOf(ConnectError);
    const err = r as ConnectError;
    expect(err.code, String(err)).toBe(Code.ResourceExhausted);
    expect(reasonOf(err)).toBe(reason);
    const retry = err.findDetails(RetryInfoSchema)[0];
    expect(Number(retry?.retryDelay?.seconds ?? 0) * 1000 + (retry?.retryDelay?.nanos ?? 0) / 1e6).toBeGreaterThan(0);
  };

  it("refuses a user's newest stream beyond STREAM_MAX_PER_USER (open ones live on), and admits one again after a close", async () => {
    // One after the other (this server admits one open at a time, one more waiting).
    const open: ReturnType<typeof subscribe>[] = [];
    for (let i = 0; i < 3; i++) {
      open.push(subscribe(alice));
      expect(await open[i].outcome).toBe("ready");
    }
    expectRefused(await subscribe(alice).outcome, "STREAM_LIMIT");
    // Another user is not affected.
    expect(await subscribe(bob).outcome).toBe("ready");
    // The three first are still open: closing one frees a place.
    open[0].abort.abort();
    let again: "ready" | ConnectError = await subscribe(alice).outcome;
    for (let i = 0; again !== "ready" && i < 50; i++) again = await subscribe(alice).outcome; // the close is seen a moment later
    expect(again).toBe("ready");
    for (const s of open) s.abort.abort();
  });

  it("opens beyond the running and waiting bound get RESOURCE_EXHAUSTED with RetryInfo, and then open once the burst is over", async () => {
    const [u1, u2, u3] = await users(server.baseUrl, 3);
    const locker = new pg.Client({ connectionString: backends.env.DATABASE_URL });
    await locker.connect();
    try {
      // Hold every open at its first read: one runs (STREAM_OPEN_CONCURRENCY=1) and blocks here.
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE conversation_members IN ACCESS EXCLUSIVE MODE");
      const first = subscribe(u1);
      // Wait until it is the one running (its backend waits for our lock).
      const watcher = new pg.Client({ connectionString: backends.env.DATABASE_URL });
      await watcher.connect();
      const mine = (await locker.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      for (let i = 0; i < 1000; i++) {
        const { rows } = await watcher.query("SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", [mine]);
        if (rows.length > 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await watcher.end();
      // The second waits (STREAM_OPEN_QUEUE_MAX=1) and runs out of time; the third finds the queue full.
      const second = subscribe(u2);
      const third = subscribe(u3);
      expectRefused(await third.outcome, "STREAM_OPEN_BUSY");
      expectRefused(await second.outcome, "STREAM_OPEN_BUSY");
      await locker.query("ROLLBACK");
      expect(await first.outcome).toBe("ready");
      // After the burst, the refused ones open on retry.
      expect(await subscribe(u2).outcome).toBe("ready");
    } finally {
      await locker.end();
    }
  });
});

it("GoAway's reconnect window grows with the node's stream count (reconnects arrive at about STREAM_RECONNECT_RATE per second)", () => {
  expect(goAwayWindowMs(0, 1_000, 500)).toBe(1_000);
  expect(goAwayWindowMs(400, 1_000, 500)).toBe(1_000);
  expect(goAwayWindowMs(5_000, 1_000, 500)).toBe(10_000);
  expect(goAwayWindowMs(20_000, 1_000, 500)).toBe(40_000);
});
