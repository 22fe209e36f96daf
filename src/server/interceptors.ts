import { Code, ConnectError, type Interceptor, type StreamResponse, type UnaryResponse } from "@connectrpc/connect";
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { kAuth, kLogger, kRequestId, type AuthContext } from "./context.ts";
import { toConnectError } from "./errors.ts";
import type { ServerMetrics } from "./metrics.ts";
import { unauthenticated } from "../shared/errors.ts";

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

function codeName(err: unknown): string {
  return err instanceof ConnectError ? Code[err.code].replace(/[A-Z]/g, (c, i) => (i ? "_" : "") + c).toUpperCase() : "INTERNAL";
}

/**
 * The outermost interceptor: a request id (taken from `x-request-id` when sane,
 * echoed in the response), a request-scoped logger, metrics by method and code,
 * one log line per RPC, and the mapping of every error to a Connect code.
 */
export function edgeInterceptor(logger: Logger, metrics: ServerMetrics): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const fromClient = req.header.get("x-request-id");
    const requestId = fromClient && REQUEST_ID.test(fromClient) ? fromClient : randomUUID();
    const log = logger.child({ requestId, rpc: `${req.service.typeName}/${req.method.name}` });
    req.contextValues.set(kRequestId, requestId);
    req.contextValues.set(kLogger, log);
    const labels = { service: req.service.typeName, method: req.method.name };

    const finish = (err: unknown) => {
      const code = err ? codeName(err) : "OK";
      const seconds = (performance.now() - started) / 1000;
      metrics.rpcTotal.inc({ ...labels, code });
      metrics.rpcDuration.observe({ ...labels, code }, seconds);
      const line = { code, ms: Math.round(seconds * 1000), user: req.contextValues.get(kAuth)?.userId };
      if (code === "INTERNAL" || code === "UNAVAILABLE") log.warn(line, "rpc failed");
      else log.info(line, "rpc");
    };
    const mapError = (err: unknown) =>
      toConnectError(err, requestId, (e) => log.error({ err: e }, "unexpected error"));

    let res: UnaryResponse | StreamResponse;
    try {
      res = await next(req);
    } catch (err) {
      const mapped = mapError(err);
      finish(mapped);
      throw mapped;
    }
    res.header.set("x-request-id", requestId);
    if (!res.stream) {
      finish(null);
      return res;
    }
    // Streaming response: account for the stream when it ends, and map errors
    // thrown while it runs.
    metrics.activeStreams.inc({ method: req.method.name });
    const inner = res.message;
    async function* observed() {
      let failure: unknown = null;
      try {
        yield* inner;
      } catch (err) {
        failure = mapError(err);
        throw failure;
      } finally {
        metrics.activeStreams.dec({ method: req.method.name });
        finish(failure);
      }
    }
    return { ...res, message: observed() };
  };
}

/** Verifies an access token and returns the caller; throws AppError("unauthenticated") otherwise. */
export interface AccessTokenVerifier {
  verify(token: string): Promise<AuthContext>;
}

/**
 * Requires `authorization: Bearer <token>` on every RPC except the public ones
 * (fully qualified "package.Service/Method" names, or a whole "package.Service").
 */
export function authInterceptor(verifier: AccessTokenVerifier, publicRoutes: Set<string>): Interceptor {
  return (next) => async (req) => {
    const svc = req.service.typeName;
    if (publicRoutes.has(svc) || publicRoutes.has(`${svc}/${req.method.name}`)) return next(req);
    const header = req.header.get("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw unauthenticated("TOKEN_MISSING", "missing bearer access token");
    req.contextValues.set(kAuth, await verifier.verify(match[1]));
    return next(req);
  };
}
