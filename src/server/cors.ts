import { cors } from "@connectrpc/connect";
import type http from "node:http";
import type http2 from "node:http2";

type Req = http.IncomingMessage | http2.Http2ServerRequest;
type Res = http.ServerResponse | http2.Http2ServerResponse;

const ALLOW_HEADERS = [...cors.allowedHeaders, "authorization", "x-request-id", "idempotency-key"].join(", ");
const EXPOSE_HEADERS = [...cors.exposedHeaders, "x-request-id"].join(", ");
const ALLOW_METHODS = cors.allowedMethods.join(", ");

/**
 * CORS for browsers on other origins (Connect and gRPC-Web). Same-origin
 * requests need none of it. Credentials are bearer headers, not cookies, so
 * no allow-credentials. Returns true when it answered a preflight itself.
 */
export function applyCors(allowed: string[], req: Req, res: Res): boolean {
  const origin = req.headers.origin;
  if (!origin || allowed.length === 0) return false;
  const any = allowed.includes("*");
  if (!any && !allowed.includes(origin)) return false;
  res.setHeader("access-control-allow-origin", any ? "*" : origin);
  if (!any) res.setHeader("vary", "origin");
  res.setHeader("access-control-expose-headers", EXPOSE_HEADERS);
  if (req.method === "OPTIONS" && req.headers["access-control-request-method"]) {
    res.setHeader("access-control-allow-methods", ALLOW_METHODS);
    res.setHeader("access-control-allow-headers", ALLOW_HEADERS);
    res.setHeader("access-control-max-age", "7200");
    res.statusCode = 204;
    res.end();
    return true;
  }
  return false;
}
