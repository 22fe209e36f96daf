// The web client's static files on the main port, next to the RPCs: cache
// headers, content types, SPA fallback, GET/HEAD only, no path traversal,
// and a helpful page when the app is not built. Raw HTTP requests, so paths
// reach the server exactly as written (fetch would normalise "..").

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import http from "node:http";
import http2 from "node:http2";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { createClient } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { transportFor } from "../support/clients.ts";

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function raw(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}

const SECRET = "top-secret-do-not-serve";
const INDEX = `<!doctype html><html><head><title>chat</title><script type="module" src="/assets/index-AbCdEf12.js"></script></head><body><div id="app"></div></body></html>`;
const BIG_JS = `console.log(${JSON.stringify("x".repeat(4000))});\n`;

let root: string;
let site: string;
let backends: ProvisionedBackends;
let server: TestServer;

beforeAll(async () => {
  // root/secret.txt sits next to the site: it must never be reachable.
  root = mkdtempSync(join(tmpdir(), "chat-static-"));
  site = join(root, "dist");
  mkdirSync(join(site, "assets", "nested"), { recursive: true });
  writeFileSync(join(root, "secret.txt"), SECRET);
  writeFileSync(join(site, "index.html"), INDEX);
  writeFileSync(join(site, ".gitkeep"), SECRET);
  writeFileSync(join(site, "assets", "index-AbCdEf12.js"), BIG_JS);
  writeFileSync(join(site, "assets", "index-Zz9_Yy8-.css"), "body{margin:0}");
  writeFileSync(join(site, "assets", "nested", "logo-Qw3rTy12.svg"), "<svg xmlns='http://www.w3.org/2000/svg'/>");
  writeFileSync(join(site, "assets", "unhashed.js"), "export {};");
  writeFileSync(join(site, "favicon.ico"), Buffer.from([0, 0, 1, 0]));
  symlinkSync(join(root, "secret.txt"), join(site, "assets", "link-AbCdEf12.txt"));
  backends = await provisionBackends({ sql: "pglite" });
  server = await startTestServer(backends.env, { WEB_DIR: site });
});
afterAll(async () => {
  await server?.close();
  await backends?.cleanup();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("static web client", () => {
  it("serves index.html at / with no-cache, an ETag and a CSP", async () => {
    const res = await raw(server.port, "GET", "/");
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(res.headers["cache-control"]).toBe("no-cache");
    expect(res.headers.etag).toMatch(/^W\/"[0-9a-f]+-[0-9a-f]+"$/);
    expect(res.headers["content-security-policy"]).toContain("default-src 'self'");
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    expect(res.body.toString()).toBe(INDEX);
  });

  it("caches hashed assets for a year, immutable, with the right content types", async () => {
    const cases = [
      ["/assets/index-AbCdEf12.js", "text/javascript; charset=utf-8"],
      ["/assets/index-Zz9_Yy8-.css", "text/css; charset=utf-8"],
      ["/assets/nested/logo-Qw3rTy12.svg", "image/svg+xml"],
    ] as const;
    for (const [path, type] of cases) {
      const res = await raw(server.port, "GET", path);
      expect(res.status, path).toBe(200);
      expect(res.headers["content-type"], path).toBe(type);
      expect(res.headers["cache-control"], path).toBe("public, max-age=31536000, immutable");
    }
    const ico = await raw(server.port, "GET", "/favicon.ico");
    expect(ico.headers["content-type"]).toBe("image/x-icon");
    expect(ico.headers["cache-control"]).toBe("no-cache"); // not hashed: may change between builds
    const unhashed = await raw(server.port, "GET", "/assets/unhashed.js");
    expect(unhashed.headers["cache-control"]).toBe("no-cache");
  });

  it("compresses text when the client accepts gzip", async () => {
    const res = await raw(server.port, "GET", "/assets/index-AbCdEf12.js", { "accept-encoding": "br, gzip" });
    expect(res.headers["content-encoding"]).toBe("gzip");
    expect(res.headers.vary).toBe("accept-encoding");
    expect(Number(res.headers["content-length"])).toBe(res.body.length);
    expect(res.body.length).toBeLessThan(BIG_JS.length);
    expect(gunzipSync(res.body).toString()).toBe(BIG_JS);
    const identity = await raw(server.port, "GET", "/assets/index-AbCdEf12.js", { "accept-encoding": "gzip;q=0" });
    expect(identity.headers["content-encoding"]).toBeUndefined();
    expect(identity.body.toString()).toBe(BIG_JS);
  });

  it("answers a matching If-None-Match with 304 and no body", async () => {
    const first = await raw(server.port, "GET", "/");
    const again = await raw(server.port, "GET", "/", { "if-none-match": first.headers.etag as string });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    const stale = await raw(server.port, "GET", "/", { "if-none-match": 'W/"0-0"' });
    expect(stale.status).toBe(200);
  });

  it("falls back to index.html for app routes, but not for missing files", async () => {
    for (const path of ["/c/5b0e3f1c-0000-4000-8000-000000000000", "/login", "/deep/link/?x=1"]) {
      const res = await raw(server.port, "GET", path);
      expect(res.status, path).toBe(200);
      expect(res.headers["cache-control"], path).toBe("no-cache");
      expect(res.body.toString(), path).toBe(INDEX);
    }
    for (const path of ["/missing.js", "/assets/index-00000000.js", "/assets/nested/nope.png"]) {
      const res = await raw(server.port, "GET", path);
      expect(res.status, path).toBe(404);
      expect(res.body.toString(), path).not.toContain("<html");
    }
  });

  it("answers HEAD with headers only", async () => {
    const res = await raw(server.port, "HEAD", "/assets/index-AbCdEf12.js");
    expect(res.status).toBe(200);
    expect(Number(res.headers["content-length"])).toBe(Buffer.byteLength(BIG_JS));
    expect(res.body.length).toBe(0);
  });

  it("refuses other methods, and unknown RPC paths stay 404 (never HTML)", async () => {
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const res = await raw(server.port, method, "/");
      expect(res.status, method).toBe(405);
      expect(res.headers.allow, method).toBe("GET, HEAD");
    }
    for (const method of ["GET", "POST"]) {
      const res = await raw(server.port, method, "/chat.v1.AuthService/NoSuchMethod");
      expect(res.status, method).toBe(404);
      expect(res.body.toString()).not.toContain("<html");
    }
  });

  it("never serves anything outside the site, dotfiles, or through a symlink that leads out", async () => {
    const attempts = [
      "/../secret.txt",
      "/assets/../../secret.txt",
      "/%2e%2e/secret.txt",
      "/%2E%2E%2Fsecret.txt",
      "/assets/..%2f..%2fsecret.txt",
      "/..%5csecret.txt",
      "/assets/%2e%2e/%2e%2e/secret.txt",
      "/.gitkeep",
      "/%2egitkeep",
      "/assets/link-AbCdEf12.txt",
      "/secret.txt%00.js",
      "/%E0%A4%A",
      "//secret.txt",
    ];
    for (const path of attempts) {
      const res = await raw(server.port, "GET", path);
      expect(res.body.toString(), path).not.toContain(SECRET);
      expect([400, 404], `${path} -> ${res.status}`).toContain(res.status);
    }
  });

  it("serves the app over HTTP/2 (h2c) too", async () => {
    const session = http2.connect(server.baseUrl);
    try {
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = session.request({ ":path": "/", ":method": "GET" });
        let status = 0;
        let body = "";
        req.on("response", (h) => (status = Number(h[":status"])));
        req.setEncoding("utf8");
        req.on("data", (c: string) => (body += c));
        req.on("end", () => resolve({ status, body }));
        req.on("error", reject);
        req.end();
      });
      expect(status).toBe(200);
      expect(body).toBe(INDEX);
    } finally {
      session.close();
    }
  });

  it("leaves the RPCs alone on the same port", async () => {
    for (const protocol of ["connect", "grpc-web", "grpc"] as const) {
      const client = createClient(Health, transportFor(protocol, server.baseUrl));
      expect((await client.check({ service: "" })).status, protocol).toBe(Status.SERVING);
    }
  });
});

describe("when the app is not built, or disabled", () => {
  let empty: string;
  let other: ProvisionedBackends;
  let notBuilt: TestServer;
  let off: TestServer;
  beforeAll(async () => {
    empty = mkdtempSync(join(tmpdir(), "chat-static-empty-"));
    other = await provisionBackends({ sql: "pglite" });
    notBuilt = await startTestServer(other.env, { WEB_DIR: empty });
  });
  afterAll(async () => {
    await notBuilt?.close();
    await off?.close();
    await other?.cleanup();
    if (empty) rmSync(empty, { recursive: true, force: true });
  });

  it("answers / with a short page saying how to build it", async () => {
    const res = await raw(notBuilt.port, "GET", "/");
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(res.headers["cache-control"]).toBe("no-store");
    expect(res.body.toString()).toContain("npm run build:web");
    expect((await raw(notBuilt.port, "GET", "/assets/index-AbCdEf12.js")).status).toBe(404);
  });

  it("picks up a build made while the server runs", async () => {
    writeFileSync(join(empty, "index.html"), INDEX);
    const res = await raw(notBuilt.port, "GET", "/");
    expect(res.body.toString()).toBe(INDEX);
  });

  it("with WEB_DIR=off answers 404 for non-RPC paths, as before", async () => {
    await notBuilt.close();
    off = await startTestServer(other.env, { WEB_DIR: "off" });
    expect((await raw(off.port, "GET", "/")).status).toBe(404);
    const client = createClient(Health, transportFor("connect", off.baseUrl));
    expect((await client.check({ service: "" })).status).toBe(Status.SERVING);
  });
});
