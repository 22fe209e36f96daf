import { Code, ConnectError, type Interceptor, type StreamResponse, type UnaryResponse } from "@connectrpc/connect";
import { randomUUID } from "node:crypto";
import http2 from "node:http2";
import { kNodeRequest, type NodeRequest } from "../realtime/transport.ts";
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
      clientLeft(req.signal, err) ? CANCELED : toConnectError(err, requestId, (e) => log.error({ err: e }, "unexpected error"));

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
        // Settled when the HTTP/2 stream has closed: a client that cancels (grpc-js, grpc-go) half-closes
        // and then resets, so the handler may have ended "normally" a moment before the reset arrives.
        // A client that cancelled or went away is a cancel, not an OK, and never an INTERNAL.
        const node = req.contextValues.get(kNodeRequest);
        const settle = () => {
          if (failure === null && (clientLeft(req.signal, null) || resetByClient(node))) failure = CANCELED;
          metrics.activeStreams.dec({ method: req.method.name });
          finish(failure);
        };
        if (node && "stream" in node && node.stream && !node.stream.closed) node.stream.once("close", settle);
        else settle();
      }
    }
    return { ...res, message: observed() };
  };
}

// (With ErrorInfo CANCELED, like every error: built once through the edge mapping.)
const CANCELED = toConnectError(new ConnectError("the client cancelled the call or went away", Code.Canceled), "", () => {});

/** Node's codes for "the other side closed the stream or connection under us". */
const GONE = new Set([
  "ERR_STREAM_PREMATURE_CLOSE",
  "ERR_STREAM_DESTROYED",
  "ERR_HTTP2_INVALID_STREAM",
  "ERR_HTTP2_STREAM_CANCEL",
  "ECONNRESET",
  "EPIPE",
]);

/**
 * Whether the call ended because the client left: it cancelled (HTTP/2
 * RST_STREAM CANCEL: connect aborts the call's signal with CANCELED) or its
 * stream or connection closed under a request still being read ("Premature
 * close"). That is the client's doing, logged as CANCELED at info, never as an
 * INTERNAL error. A deadline is not a cancel.
 */
function clientLeft(signal: AbortSignal, err: unknown): boolean {
  const reason: unknown = signal.aborted ? signal.reason : undefined;
  if (reason instanceof ConnectError && reason.code === Code.DeadlineExceeded) return false;
  if (reason instanceof ConnectError && reason.code === Code.Canceled) return true;
  if (err instanceof ConnectError && err.code === Code.Canceled) return true;
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (GONE.has((e as { code?: string }).code ?? "")) return true;
  }
  return false;
}

/**
 * An HTTP/2 stream the client reset (grpc-js and grpc-go cancel with RST_STREAM
 * CANCEL): the request body then simply ends, before connect aborts the call's
 * signal, so a handler reading it finishes "normally".
 */
function resetByClient(node: NodeRequest | undefined): boolean {
  if (!node || !("stream" in node) || !node.stream) return false;
  // A killed client (its connection closed under the open stream) shows as an abort, a reset
  // other than NO_ERROR, or a session already destroyed when the stream closes.
  const rst = node.stream.rstCode;
  return node.aborted || (rst !== undefined && rst !== http2.constants.NGHTTP2_NO_ERROR) || node.stream.session?.destroyed === true;
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
