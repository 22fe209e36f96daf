// Long-lived calls at shutdown and on a client's cancel, against a server
// running as its own process (grpc-js, what grpcurl and native stubs speak):
// - an idle reflection stream (grpcurl's), a Subscribe and a WatchPresence
//   must not hold SIGTERM for the whole grace period: with a 10-minute grace
//   the process must still exit (within this test's bound) with code 0 and no
//   error-level log line;
// - a client that cancels a reflection stream is logged as CANCELED, not as
//   an INTERNAL "Premature close".

import { afterAll, describe, expect, it } from "vitest";
import http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { env } from "../support/backends.ts";
import { provisionBackends, spawnServer, type ProvisionedBackends, type ServerProcess } from "../support/server.ts";
import { until } from "../support/poll.ts";
import { users } from "../realtime/helpers.ts";
import { ServerReflectionRequestSchema, ServerReflectionResponseSchema } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { SubscribeRequestSchema, SubscribeResponseSchema } from "../../gen/chat/v1/message_pb.js";
import { WatchPresenceRequestSchema, WatchPresenceResponseSchema } from "../../gen/chat/v1/presence_pb.js";

const REFLECTION = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";

/** A reflection stream that has answered one ListServices and now sits idle, as grpcurl's does. */
async function idleReflection(client: grpc.Client): Promise<{ call: grpc.ClientDuplexStream<unknown, unknown>; ended: Promise<grpc.StatusObject> }> {
  const call = client.makeBidiStreamRequest(
    REFLECTION,
    (m: unknown) => Buffer.from(toBinary(ServerReflectionRequestSchema, m as never)),
    (b: Buffer) => fromBinary(ServerReflectionResponseSchema, b),
  );
  const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
  call.on("error", () => {});
  const first = new Promise((resolve) => call.once("data", resolve));
  call.write(create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } }));
  await first;
  return { call, ended };
}

function serverStream(
  client: grpc.Client,
  path: string,
  token: string,
  encode: (m: unknown) => Buffer,
  decode: (b: Buffer) => unknown,
  req: unknown,
) {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${token}`);
  const call = client.makeServerStreamRequest(path, encode, decode, req, md);
  const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
  call.on("error", () => {});
  const first = new Promise((resolve) => call.once("data", resolve));
  return { call, ended, first };
}

const errorLines = (out: string) => out.split("\n").filter((l) => /"level":(50|60)/.test(l));

describe("long-lived calls at shutdown and cancel", () => {
  // Fresh stores per node.
  const backends: ProvisionedBackends[] = [];
  const clients: grpc.Client[] = [];
  const nodes: ServerProcess[] = [];
  const startNode = async (overrides: Record<string, string> = {}) => {
    const b = await provisionBackends({ sql: env.postgres ? "postgres" : "pglite" });
    backends.push(b);
    const node = await spawnServer(b.env, overrides);
    nodes.push(node);
    return node;
  };
  afterAll(async () => {
    for (const c of clients) c.close();
    for (const n of nodes) if (n.child.exitCode === null) await n.kill();
    for (const b of backends) await b.cleanup();
  });

  it("idle reflection, Subscribe and WatchPresence streams do not hold SIGTERM for the grace period; exit 0, nothing logged at error", async () => {
    // A grace period far longer than the test's timeout: waiting it out fails the test.
    const node = await startNode({ SHUTDOWN_GRACE_MS: "600000" });
    const [alice] = await users(node.baseUrl, 1);
    const client = new grpc.Client(node.address, grpc.credentials.createInsecure());
    clients.push(client);
    const reflection = await idleReflection(client);
    const sub = serverStream(
      client,
      "/chat.v1.MessageService/Subscribe",
      alice.token,
      (m) => Buffer.from(toBinary(SubscribeRequestSchema, m as never)),
      (b) => fromBinary(SubscribeResponseSchema, b),
      create(SubscribeRequestSchema, {}),
    );
    await sub.first; // ready
    const watch = serverStream(
      client,
      "/chat.v1.PresenceService/WatchPresence",
      alice.token,
      (m) => Buffer.from(toBinary(WatchPresenceRequestSchema, m as never)),
      (b) => fromBinary(WatchPresenceResponseSchema, b),
      create(WatchPresenceRequestSchema, { userIds: [alice.id] }),
    );
    await watch.first;

    const code = await node.stop();
    expect(code).toBe(0);
    const [r, s, w] = await Promise.all([reflection.ended, sub.ended, watch.ended]);
    // Ended by the server, not cut off: a clean end of stream, or UNAVAILABLE ("go elsewhere").
    for (const st of [r, s, w]) expect([grpc.status.OK, grpc.status.UNAVAILABLE], `${st.code} ${st.details}`).toContain(st.code);
    expect(errorLines(node.output())).toEqual([]);
    expect(node.output()).not.toMatch(/Premature close/);
  });

  it("a reflection stream cancelled by the client is logged as CANCELED, never INTERNAL", async () => {
    const node = await startNode();
    const client = new grpc.Client(node.address, grpc.credentials.createInsecure());
    clients.push(client);
    const lines = () =>
      node
        .output()
        .split("\n")
        .filter((l) => l.includes("ServerReflection/ServerReflectionInfo") && /"msg":"rpc/.test(l));
    // A client whose connection simply closes under the open stream (a killed grpcurl): "Premature close" on the server.
    const session = http2.connect(node.baseUrl);
    const req = session.request({ ":method": "POST", ":path": REFLECTION, "content-type": "application/grpc", te: "trailers" });
    req.on("error", () => {});
    const body = toBinary(
      ServerReflectionRequestSchema,
      create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } }),
    );
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(body.length, 1);
    req.write(Buffer.concat([prefix, body]));
    await new Promise((resolve) => req.once("data", resolve));
    session.destroy();

    await until(() => lines().length === 1, 10_000, "the dropped call logged");
    expect(JSON.parse(lines()[0]).code).toBe("CANCELED"); // no race here: the connection is gone
    for (let i = 0; i < 3; i++) {
      const { call, ended } = await idleReflection(client);
      call.cancel();
      expect((await ended).code).toBe(grpc.status.CANCELLED);
    }
    await until(() => lines().length === 4, 10_000, "four reflection calls logged");
    // grpc-js cancels with a half-close and then RST_STREAM CANCEL. Usually the reset arrives first and
    // the call is CANCELED; but reflection ends on the half-close, and when its OK trailers go out before
    // the reset arrives the HTTP/2 stream closed normally and the server did complete the call: OK.
    // Never INTERNAL.
    for (const l of lines().slice(1)) expect(["CANCELED", "OK"], l).toContain(JSON.parse(l).code);
    expect(errorLines(node.output())).toEqual([]);
    expect(await node.stop()).toBe(0);
  });
});
