// The embedded default (no DATABASE_URL, no REDIS_URL: PGlite and the
// in-process ephemeral store): Stream works the same, including concurrent
// senders (each send statement numbers its event on PGlite's single
// connection) and resume.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type * as grpc from "@grpc/grpc-js";
import { provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { StreamClient } from "../support/stream-client.ts";
import { channel, group, users, type TestUser } from "./helpers.ts";

describe("Stream on the embedded default [pglite + in-process]", () => {
  let backends: ProvisionedBackends;
  let server: TestServer;
  let ch: grpc.Client;
  let people: TestUser[];
  const open: StreamClient[] = [];

  beforeAll(async () => {
    backends = await provisionBackends({ sql: "pglite" });
    server = await startTestServer(backends.env);
    ch = channel(server.address);
    people = await users(server, 4);
  });
  afterAll(async () => {
    for (const s of open) s.cancel();
    ch?.close();
    await server?.close();
    await backends?.cleanup();
  });

  it("delivers concurrent senders' messages in seq order and resumes without loss", async () => {
    const [receiver, ...senders] = people;
    const conv = await group(server.baseUrl, senders[0], [receiver, ...senders.slice(1)]);
    const r = StreamClient.open(ch, receiver.token);
    open.push(r);
    await r.until((s) => s.ready());
    const streams = senders.map((u) => {
      const s = StreamClient.open(ch, u.token);
      open.push(s);
      return s;
    });
    await Promise.all(streams.map((s) => s.until((x) => x.ready())));
    for (let i = 0; i < 10; i++) streams.forEach((s, k) => s.send(conv, `e-${k}-${i}`, `${k}:${i}`));
    await r.until((s) => s.createdSeqs(conv).length >= 15);
    r.cancel();
    await r.ended;
    await Promise.all(streams.map((s) => s.until((x) => x.frames.filter((f) => f.frame.case === "sendAck").length === 10)));
    const back = StreamClient.open(ch, receiver.token, { resumeToken: r.lastCursor() });
    open.push(back);
    await back.until((s) => r.createdSeqs(conv).length + s.createdSeqs(conv).length >= 30);
    expect([...r.createdSeqs(conv), ...back.createdSeqs(conv)]).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });
});
