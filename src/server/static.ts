// Serves the built web client (web/dist) on the main port, as the fallback of
// the RPC router: whatever is not an RPC path lands here.

import { readFile, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { gzipSync } from "node:zlib";
import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";

/** The adapter's fallback signature (HTTP/1.1 and HTTP/2 compat requests alike). */
export type StaticHandler = NonNullable<ConnectNodeAdapterOptions["fallback"]>;
type Req = Parameters<StaticHandler>[0];
type Res = Parameters<StaticHandler>[1];

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".webmanifest": "application/manifest+json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".avif": "image/avif",
  ".ico": "image/x-icon",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".wasm": "application/wasm",
};
const COMPRESSIBLE = new Set([".html", ".js", ".mjs", ".css", ".json", ".map", ".webmanifest", ".txt", ".svg"]);

const IMMUTABLE = "public, max-age=31536000, immutable";
const REVALIDATE = "no-cache";
// Vite names build output assets/<name>-<hash>.<ext>: only those may be cached forever.
const HASHED_ASSET = /^\/assets\/(?:[^/]+\/)*[^/]*-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$/;
// gRPC/Connect paths (/pkg.Service/Method) never get the app's HTML, so an unknown RPC stays a 404.
const RPC_PATH = /^\/[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)+\/[^/]*$/;
// The page is same-origin only: scripts, styles and RPCs all come from this server.
const CSP =
  "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
// Files above this are streamed from disk on each request instead of kept in memory.
const CACHE_MAX_FILE_BYTES = 2 * 1024 * 1024;

const NOT_BUILT = `The web client is not built yet.

Build it once with:

    npm run build:web

then reload this page. (The gRPC, gRPC-Web and Connect APIs on this port work either way.)
`;

interface Cached {
  etag: string;
  body: Buffer;
  gzip: Buffer | null;
}

/**
 * A static site rooted at `root`. GET and HEAD only; paths are decoded, dot
 * segments and dotfiles refused, and the resolved real path must stay inside
 * the root, so nothing outside it can be read. Paths that look like app routes
 * (no file extension) get index.html, so deep links work.
 */
export function staticSite(root: string): StaticHandler {
  const absRoot = path.resolve(root);
  let realRoot: string | null = null;
  const cache = new Map<string, Cached>();

  async function resolveFile(urlPath: string): Promise<{ file: string; size: number; mtimeMs: number } | null> {
    realRoot ??= await realpath(absRoot).catch(() => null);
    if (realRoot === null) return null;
    const segments = urlPath.split("/").filter(Boolean);
    const candidate = path.join(absRoot, ...segments);
    if (candidate !== absRoot && !candidate.startsWith(absRoot + path.sep)) return null;
    const info = await stat(candidate).catch(() => null);
    if (!info?.isFile()) return null;
    // A symlink inside the root must not lead out of it.
    const real = await realpath(candidate).catch(() => null);
    if (real === null || !real.startsWith(realRoot + path.sep)) return null;
    return { file: real, size: info.size, mtimeMs: info.mtimeMs };
  }

  async function serve(req: Req, res: Res): Promise<void> {
    const method = req.method ?? "GET";
    const rawPath = (req.url ?? "/").split("?", 1)[0]!;
    if (RPC_PATH.test(rawPath)) return plain(res, 404, "not found\n");
    if (method !== "GET" && method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      return plain(res, 405, "method not allowed\n");
    }
    const urlPath = decodePath(rawPath);
    if (urlPath === null) return plain(res, 400, "bad path\n");
    if (urlPath.split("/").some((s) => s.startsWith(".") || s.includes("\\"))) return plain(res, 404, "not found\n");

    const wanted = urlPath.endsWith("/") ? `${urlPath}index.html` : urlPath;
    let found = await resolveFile(wanted);
    let asFallback = false;
    if (!found) {
      const last = urlPath.slice(urlPath.lastIndexOf("/") + 1);
      if (last.includes(".")) return plain(res, 404, "not found\n");
      // An app route: the client-side router decides what it shows.
      found = await resolveFile("/index.html");
      asFallback = true;
      if (!found) {
        res.setHeader("cache-control", "no-store");
        return plain(res, 200, NOT_BUILT);
      }
    }

    const ext = path.extname(found.file).toLowerCase();
    const etag = `W/"${found.size.toString(16)}-${Math.floor(found.mtimeMs).toString(16)}"`;
    res.setHeader("content-type", CONTENT_TYPES[ext] ?? "application/octet-stream");
    res.setHeader("cache-control", !asFallback && HASHED_ASSET.test(wanted) ? IMMUTABLE : REVALIDATE);
    res.setHeader("etag", etag);
    res.setHeader("x-content-type-options", "nosniff");
    if (ext === ".html") {
      res.setHeader("content-security-policy", CSP);
      res.setHeader("referrer-policy", "no-referrer");
    }
    const compressible = COMPRESSIBLE.has(ext);
    if (compressible) res.setHeader("vary", "accept-encoding");
    if (etagMatches(req.headers["if-none-match"], etag)) {
      res.statusCode = 304;
      finish(res, null);
      return;
    }
    if (found.size > CACHE_MAX_FILE_BYTES) {
      // Rare (the app's chunks are small): read on demand, uncompressed.
      const body = await readFile(found.file);
      res.setHeader("content-length", String(body.length));
      res.statusCode = 200;
      finish(res, method === "HEAD" ? null : body);
      return;
    }
    let entry = cache.get(found.file);
    if (entry?.etag !== etag) {
      const body = await readFile(found.file);
      entry = { etag, body, gzip: compressible && body.length > 1024 ? gzipSync(body) : null };
      cache.set(found.file, entry);
    }
    const useGzip = entry.gzip !== null && acceptsGzip(req.headers["accept-encoding"]);
    const body = useGzip ? entry.gzip! : entry.body;
    if (useGzip) res.setHeader("content-encoding", "gzip");
    res.setHeader("content-length", String(body.length));
    res.statusCode = 200;
    finish(res, method === "HEAD" ? null : body);
  }

  return (req, res) => {
    serve(req, res).catch(() => {
      if (!res.headersSent) plain(res, 500, "error\n");
      else res.destroy();
    });
  };
}

/** Percent-decodes a path; null when malformed or when it holds a NUL. */
function decodePath(raw: string): string | null {
  if (!raw.startsWith("/")) return null;
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return null;
  }
  return decoded.includes("\0") ? null : decoded;
}

function etagMatches(header: string | string[] | undefined, etag: string): boolean {
  if (!header) return false;
  const value = Array.isArray(header) ? header.join(",") : header;
  return value.split(",").some((t) => t.trim() === etag || t.trim() === "*");
}

function acceptsGzip(header: string | string[] | undefined): boolean {
  const value = Array.isArray(header) ? header.join(",") : (header ?? "");
  return value.split(",").some((part) => {
    const [coding, ...params] = part.trim().split(";");
    if (coding!.trim().toLowerCase() !== "gzip") return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

function plain(res: Res, status: number, text: string): void {
  res.statusCode = status;
  res.setHeader("content-type", "text/plain; charset=utf-8");
  res.setHeader("x-content-type-options", "nosniff");
  res.setHeader("content-length", String(Buffer.byteLength(text)));
  finish(res, Buffer.from(text));
}

function finish(res: Res, body: Buffer | null): void {
  // One call shape for both response types (their end() overloads differ).
  (res.end as (chunk?: Buffer) => void).call(res, body ?? undefined);
}
