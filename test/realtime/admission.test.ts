// Admission control for stream opens (src/realtime/admission.ts), on a real
// server with Postgres: the per-user stream cap refuses the newest open, and
// opens beyond the running + waiting bound are refused with
// RESOURCE_EXHAUSTED and a RetryInfo instead of piling onto the database.
// An open is held at a known point by locking the table it reads first
// (conversation_members), so the outcomes do not depend on timing.

import { afterAll, beforeAll, expect, it } from "vitest";
import pg from "pg";
import * as grpc from "@grpc/grpc-js";
import { Code, ConnectError } from "@connectrpc/connect";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { MessageService } from "../../gen/chat/v1/message_pb.js";
import { forEachBackend } from "../support/backends.ts";
import { provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { connectClient, GrpcJsClient, type ProtocolName } from "../support/clients.ts";
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

  /** Opens a Subscribe (gRPC unless told); resolves "ready" at its first frame, or with the error that refused it. */
  function subscribe(u: TestUser): { outcome: Promise<"ready" | ConnectError>; abort: AbortController } {
    return subscribeAt(server.baseUrl, u, "grpc");
  }
  function subscribeAt(baseUrl: string, u: TestUser, protocol: ProtocolName): { outcome: Promise<"ready" | ConnectError>; abort: AbortController } {
    const abort = new AbortController();
    aborts.push(abort);
    const client = connectClient(MessageService, protocol, baseUrl, u.token);
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

  /** Holds every stream open at its first read (a lock on conversation_members) until release(). */
  async function holdOpens(): Promise<{ untilBlocked: () => Promise<void>; release: () => Promise<void> }> {
    const locker = new pg.Client({ connectionString: backends.env.DATABASE_URL });
    await locker.connect();
    await locker.query("BEGIN");
    await locker.query("LOCK TABLE conversation_members IN ACCESS EXCLUSIVE MODE");
    const mine = (await locker.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    return {
      // Until an open is the one running (its backend waits for our lock).
      async untilBlocked() {
        const watcher = new pg.Client({ connectionString: backends.env.DATABASE_URL });
        await watcher.connect();
        try {
          for (let i = 0; i < 1000; i++) {
            const { rows } = await watcher.query("SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", [mine]);
            if (rows.length > 0) return;
            await new Promise((r) => setTimeout(r, 20));
          }
          throw new Error("no stream open reached the lock");
        } finally {
          await watcher.end();
        }
      },
      async release() {
        await locker.query("ROLLBACK").catch(() => {});
        await locker.end();
      },
    };
  }

  it("opens beyond the running and waiting bound get RESOURCE_EXHAUSTED with RetryInfo, and then open once the burst is over", async () => {
    const [u1, u2, u3] = await users(server.baseUrl, 3);
    const hold = await holdOpens();
    try {
      // One runs (STREAM_OPEN_CONCURRENCY=1) and blocks at the lock.
      const first = subscribe(u1);
      await hold.untilBlocked();
      // The second waits (STREAM_OPEN_QUEUE_MAX=1) and runs out of time; the third finds the queue full.
      const second = subscribe(u2);
      const third = subscribe(u3);
      expectRefused(await third.outcome, "STREAM_OPEN_BUSY");
      expectRefused(await second.outcome, "STREAM_OPEN_BUSY");
      await hold.release();
      expect(await first.outcome).toBe("ready");
      // After the burst, the refused ones open on retry.
      expect(await subscribe(u2).outcome).toBe("ready");
    } finally {
      await hold.release();
    }
  });

  it("with the running opens and the queue full, the next opens are refused at the door (before the RPC runs) in every protocol, with the same status, reason and RetryInfo", async () => {
    // Its own node: one open at a time and no queue, so the door's bound is 1 and nothing depends on timing.
    const door = await startTestServer(backends.env, { STREAM_OPEN_CONCURRENCY: "1", STREAM_OPEN_QUEUE_MAX: "0" });
    const onDoor = (u: TestUser, protocol: ProtocolName) => subscribeAt(door.baseUrl, u, protocol);
    const intakeRefusals = async () => {
      const metrics = await (await fetch(`http://127.0.0.1:${door.app.adminPort}/metrics`)).text();
      return Number(/realtime_stream_opens_refused_total\{reason="intake_full"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    };
    const [u1, u2] = await users(door.baseUrl, 2);
    const hold = await holdOpens();
    try {
      const first = onDoor(u1, "grpc");
      await hold.untilBlocked();
      expect(await intakeRefusals()).toBe(0);
      for (const protocol of ["grpc", "grpc-web", "connect"] as const) {
        const r = await onDoor(u2, protocol).outcome;
        expectRefused(r, "STREAM_OPEN_BUSY");
        expect((r as ConnectError).message).toContain("retry after the delay given");
      }
      // A native gRPC client (grpc-js, as mobile apps use): the status and its details in the trailers.
      const native = new GrpcJsClient(door.address);
      try {
        const md = new grpc.Metadata();
        md.set("authorization", `Bearer ${u2.token}`);
        const call = native.raw.makeServerStreamRequest(
          `/${MessageService.typeName}/${MessageService.method.subscribe.name}`,
          (m: Uint8Array) => Buffer.from(m),
          (b: Buffer) => b,
          new Uint8Array(0),
          md,
        );
        const status = await new Promise<grpc.StatusObject>((resolve) => {
          call.on("data", () => {});
          call.on("error", () => {});
          call.on("status", resolve);
        });
        expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
        expect(status.details).toContain("retry after the delay given");
        expect(status.metadata.get("grpc-status-details-bin").length).toBe(1);
      } finally {
        native.raw.close();
      }
      // All four at the door (admission would have counted queue_full): a refusal that ran no RPC.
      expect(await intakeRefusals()).toBe(4);
      await hold.release();
      expect(await first.outcome).toBe("ready");
      // The door counts an open until its first response bytes (ready): with it done, opens pass again.
      for (const protocol of ["grpc", "grpc-web", "connect"] as const) expect(await onDoor(u2, protocol).outcome).toBe("ready");
      expect(await intakeRefusals()).toBe(4);
    } finally {
      await hold.release();
      await door.close();
    }
  });
});

it("GoAway's reconnect window grows with the node's stream count (reconnects arrive at about STREAM_RECONNECT_RATE per second)", () => {
  expect(goAwayWindowMs(0, 1_000, 500)).toBe(1_000);
  expect(goAwayWindowMs(400, 1_000, 500)).toBe(1_000);
  expect(goAwayWindowMs(5_000, 1_000, 500)).toBe(10_000);
  expect(goAwayWindowMs(20_000, 1_000, 500)).toBe(40_000);
});
