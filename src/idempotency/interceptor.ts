// The `idempotency-key` request header for mutating unary RPCs whose retry
// could repeat an effect after something else happened in between (e.g. an
// edit retried after a later edit, a reaction re-added after its removal). A
// Connect interceptor, so any service opts in by method name in app.ts.
// Without the header a call runs as usual.

import { createHash } from "node:crypto";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Interceptor, UnaryResponse } from "@connectrpc/connect";
import { kAuth } from "../server/context.ts";
import { invalidArgument, unavailable } from "../shared/errors.ts";
import type { IdempotencyStore } from "./store.ts";

export const IDEMPOTENCY_HEADER = "idempotency-key";
/** Set on a response that was replayed from a stored one. */
export const REPLAYED_HEADER = "idempotent-replayed";
const KEY = /^[\x21-\x7e]{1,255}$/;

export interface IdempotencyInterceptorOptions {
  /** How long a repeat waits for a first call that is still running. */
  waitForPendingMs?: number;
  pollMs?: number;
}

/** `methods` holds "package.Service/Method" names. */
export function idempotencyInterceptor(store: IdempotencyStore, methods: ReadonlySet<string>, opts: IdempotencyInterceptorOptions = {}): Interceptor {
  const waitMs = opts.waitForPendingMs ?? 5_000;
  const pollMs = opts.pollMs ?? 50;
  return (next) => async (req) => {
    const name = `${req.service.typeName}/${req.method.name}`;
    if (req.stream || !methods.has(name)) return next(req);
    const key = req.header.get(IDEMPOTENCY_HEADER);
    if (key === null) return next(req);
    if (!KEY.test(key)) throw invalidArgument(IDEMPOTENCY_HEADER, "must be 1 to 255 visible ASCII characters");
    const auth = req.contextValues.get(kAuth);
    if (!auth) return next(req); // public routes are not keyed per user

    const requestHash = createHash("sha256").update(toBinary(req.method.input, req.message)).digest("hex");
    const deadline = Date.now() + waitMs;
    for (;;) {
      const claim = await store.claim(auth.userId, name, key, requestHash);
      if (claim.state === "mismatch") throw invalidArgument(IDEMPOTENCY_HEADER, "was already used with a different request");
      if (claim.state === "done") {
        const replay: UnaryResponse = {
          stream: false,
          service: req.service,
          method: req.method,
          header: new Headers({ [REPLAYED_HEADER]: "true" }),
          trailer: new Headers(),
          message: fromBinary(req.method.output, claim.response),
        };
        return replay;
      }
      if (claim.state === "claimed") break;
      // pending: the first call is still running (here or on another node)
      if (Date.now() >= deadline) throw unavailable("a call with this idempotency key is still running; retry later");
      await new Promise((r) => setTimeout(r, pollMs));
    }

    let res;
    try {
      res = await next(req);
    } catch (err) {
      // Failures are not stored: the retry runs again.
      await store.release(auth.userId, name, key).catch(() => {});
      throw err;
    }
    if (!res.stream) await store.complete(auth.userId, name, key, toBinary(req.method.output, res.message));
    return res;
  };
}
