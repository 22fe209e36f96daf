// With TLS_CERT_FILE/TLS_KEY_FILE the same port speaks TLS, with ALPN choosing
// HTTP/2 (gRPC) or HTTP/1.1 (Connect, gRPC-Web from browsers).

import { afterAll, beforeAll, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import https from "node:https";
import * as grpc from "@grpc/grpc-js";
import { fromBinary, toBinary, create } from "@bufbuild/protobuf";
import {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Status,
} from "../../gen/grpc/health/v1/health_pb.js";
import { provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";

let dir: string;
let backends: ProvisionedBackends;
let server: TestServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tls-"));
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
    ],
    { stdio: "ignore" },
  );
  backends = await provisionBackends({ sql: "pglite" });
  server = await startTestServer(backends.env, { TLS_CERT_FILE: join(dir, "cert.pem"), TLS_KEY_FILE: join(dir, "key.pem") });
});
afterAll(async () => {
  await server?.close();
  await backends?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

it("serves gRPC over TLS (HTTP/2 via ALPN) to grpc-js", async () => {
  const client = new grpc.Client(`localhost:${server.port}`, grpc.credentials.createSsl(readFileSync(join(dir, "cert.pem"))));
  const res = await new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      (m: unknown) => Buffer.from(toBinary(HealthCheckRequestSchema, m as never)),
      (b: Buffer) => fromBinary(HealthCheckResponseSchema, b),
      create(HealthCheckRequestSchema, {}),
      (err, r) => (err ? reject(err) : resolve(r)),
    ),
  );
  client.close();
  expect(res).toMatchObject({ status: Status.SERVING });
});

it("serves the Connect protocol over HTTPS/1.1 on the same port", async () => {
  const body = await new Promise<string>((resolve, reject) => {
    const req = https.request(
      {
        host: "localhost",
        port: server.port,
        path: "/grpc.health.v1.Health/Check",
        method: "POST",
        ca: readFileSync(join(dir, "cert.pem")),
        headers: { "content-type": "application/json" },
      } as https.RequestOptions,
      (res) => {
        let b = "";
        res.on("data", (c) => (b += c));
        res.on("end", () => resolve(b));
      },
    );
    req.on("error", reject);
    req.end("{}");
  });
  expect(JSON.parse(body)).toEqual({ status: "SERVING" });
});
