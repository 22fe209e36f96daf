// HTTP/1.1 keep-alive after a request the server refuses before reading all of
// it (issue 11, item 5): over a raw socket, an oversized gRPC-Web (and Connect)
// request, then a second request on the same connection. The connection must
// either answer the second request or have been closed with
// `Connection: close`; before the fix the second request hung.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { HealthCheckRequestSchema } from "../../gen/grpc/health/v1/health_pb.js";
import { provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { envelope } from "../support/raw-rpc.ts";

let backends: ProvisionedBackends;
let server: TestServer;

beforeAll(async () => {
  backends = await provisionBackends({ sql: "pglite" });
  server = await startTestServer(backends.env, { MAX_MESSAGE_BYTES: "4096" });
});
afterAll(async () => {
  await server?.close();
  await backends?.cleanup();
});

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** A keep-alive HTTP/1.1 connection that reads one Content-Length or chunked response at a time. */
class Http1Conn {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  readonly closed: Promise<void>;
  isClosed = false;
  private readonly socket: net.Socket;
  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.waiters.splice(0).forEach((w) => w());
    });
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    void this.closed.then(() => {
      this.isClosed = true;
      this.waiters.splice(0).forEach((w) => w());
    });
    socket.on("error", () => {});
  }

  static open(port: number): Promise<Http1Conn> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, "127.0.0.1", () => resolve(new Http1Conn(s)));
      s.once("error", reject);
    });
  }

  write(head: string, body: Uint8Array): void {
    this.socket.write(head);
    this.socket.write(body);
  }

  private async more(): Promise<void> {
    if (this.isClosed) throw new Error("connection closed");
    await new Promise<void>((r) => this.waiters.push(r));
  }

  async response(): Promise<RawResponse> {
    let end: number;
    while ((end = this.buf.indexOf("\r\n\r\n")) < 0) await this.more();
    const [statusLine, ...lines] = this.buf.subarray(0, end).toString("latin1").split("\r\n");
    const headers: Record<string, string> = {};
    for (const l of lines) headers[l.slice(0, l.indexOf(":")).toLowerCase()] = l.slice(l.indexOf(":") + 1).trim();
    this.buf = this.buf.subarray(end + 4);
    let body = Buffer.alloc(0);
    if (headers["transfer-encoding"] === "chunked") {
      for (;;) {
        let nl: number;
        while ((nl = this.buf.indexOf("\r\n")) < 0) await this.more();
        const size = parseInt(this.buf.subarray(0, nl).toString(), 16);
        while (this.buf.length < nl + 2 + size + 2) await this.more();
        body = Buffer.concat([body, this.buf.subarray(nl + 2, nl + 2 + size)]);
        this.buf = this.buf.subarray(nl + 2 + size + 2);
        if (size === 0) break;
      }
    } else {
      const len = Number(headers["content-length"] ?? 0);
      while (this.buf.length < len) await this.more();
      body = this.buf.subarray(0, len);
      this.buf = this.buf.subarray(len);
    }
    return { status: Number(statusLine.split(" ")[1]), headers, body };
  }

  destroy(): void {
    this.socket.destroy();
  }
}

const healthCheck = envelope(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "" })));
const post = (path: string, contentType: string, length: number, extra = "") =>
  `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${contentType}\r\nContent-Length: ${length}\r\n${extra}Connection: keep-alive\r\n\r\n`;

describe("HTTP/1.1 keep-alive after an oversized request (issue 11, item 5)", () => {
  const cases = [
    { name: "gRPC-Web", contentType: "application/grpc-web+proto", extra: "X-Grpc-Web: 1\r\n", body: envelope(new Uint8Array(200_000)) },
    { name: "Connect", contentType: "application/proto", extra: "Connect-Protocol-Version: 1\r\n", body: new Uint8Array(200_000) },
  ];

  it.each(cases)(
    "$name: the next request on the connection is answered, or the connection was closed",
    async ({ contentType, extra, body }) => {
      const conn = await Http1Conn.open(server.port);
      try {
        conn.write(post("/grpc.health.v1.Health/Check", contentType, body.byteLength, extra), body);
        const first = await conn.response();
        const refused =
          first.headers["grpc-status"] === "8" ||
          first.body.includes("resource_exhausted") ||
          /grpc-status: ?8\r\n/.test(first.body.toString("latin1"));
        expect(refused, `${first.status} ${JSON.stringify(first.headers)} ${first.body.toString("latin1").slice(0, 200)}`).toBe(true);
        if (first.headers.connection?.toLowerCase() === "close") {
          // Closed, and said so: the client opens a new connection.
          await conn.closed;
          return;
        }
        // Kept alive: it must serve the next request (a hang fails the test by its timeout).
        conn.write(post("/grpc.health.v1.Health/Check", "application/grpc-web+proto", healthCheck.byteLength, "X-Grpc-Web: 1\r\n"), healthCheck);
        const second = await conn.response();
        expect(second.status).toBe(200);
        expect(second.body.toString("latin1")).toMatch(/grpc-status: ?0\r\n/);
      } finally {
        conn.destroy();
      }
    },
    20_000,
  );

  it("a normal request keeps the connection open for the next one", async () => {
    const conn = await Http1Conn.open(server.port);
    try {
      for (let i = 0; i < 3; i++) {
        conn.write(post("/grpc.health.v1.Health/Check", "application/grpc-web+proto", healthCheck.byteLength, "X-Grpc-Web: 1\r\n"), healthCheck);
        const r = await conn.response();
        expect(r.status).toBe(200);
        expect(r.body.toString("latin1")).toMatch(/grpc-status: ?0\r\n/);
        expect(r.headers.connection?.toLowerCase()).not.toBe("close");
      }
    } finally {
      conn.destroy();
    }
  });
});
