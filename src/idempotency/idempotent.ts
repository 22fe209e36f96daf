// The `idempotency-key` request header for mutating unary RPCs whose late
// retry could redo an effect after something else happened in between (an
// edit retried after a later edit, a reaction re-added after its removal, a
// second group created). Wraps any service implementation, so a service opts
// in per method in app.ts. Without the header a call runs as usual.
//
// (A handler wrapper rather than an interceptor: a replayed response must keep
// the protocol's response headers, which only the handler context holds.)

import { create, fromBinary, toBinary, type DescMessage, type DescService } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { caller } from "../server/context.ts";
import { invalidArgument, unavailable } from "../shared/errors.ts";
import type { IdempotencyStore } from "./store.ts";
import { createHash } from "node:crypto";

export const IDEMPOTENCY_HEADER = "idempotency-key";
/** Set on a response that was replayed from a stored one. */
export const REPLAYED_HEADER = "idempotent-replayed";
const KEY = /^[\x21-\x7e]{1,255}$/;

export interface IdempotentOptions {
  /** How long a repeat waits for a first call that is still running. */
  waitForPendingMs?: number;
  pollMs?: number;
}

type UnaryFn = (req: unknown, ctx: HandlerContext) => Promise<unknown>;

/**
 * Returns `impl` with the named unary methods honouring `idempotency-key`:
 * the first call with a key runs and its response is stored (per user, method
 * and key, for the store's TTL); a repeat with the same request gets the stored
 * response; a repeat with another request is INVALID_ARGUMENT; a repeat while
 * the first still runs waits for it. Failed calls are not stored.
 */
export function idempotent<S extends DescService>(
  service: S,
  impl: Partial<ServiceImpl<S>>,
  store: IdempotencyStore,
  methods: (keyof ServiceImpl<S> & string)[],
  opts: IdempotentOptions = {},
): Partial<ServiceImpl<S>> {
  const waitMs = opts.waitForPendingMs ?? 5_000;
  const pollMs = opts.pollMs ?? 50;
  const out: Record<string, unknown> = { ...impl };
  for (const localName of methods) {
    const method = service.methods.find((m) => m.localName === localName);
    const inner = (impl as Record<string, UnaryFn | undefined>)[localName];
    if (method?.methodKind !== "unary" || !inner) throw new Error(`idempotent: ${service.typeName} has no unary ${localName}`);
    const name = `${service.typeName}/${method.name}`;
    const input = method.input as DescMessage;
    const output = method.output as DescMessage;
    out[localName] = async (req: unknown, ctx: HandlerContext) => {
      const key = ctx.requestHeader.get(IDEMPOTENCY_HEADER);
      if (key === null) return inner(req, ctx);
      if (!KEY.test(key)) throw invalidArgument(IDEMPOTENCY_HEADER, "must be 1 to 255 visible ASCII characters", "IDEMPOTENCY_KEY_INVALID");
      const userId = caller(ctx).userId;
      const requestHash = createHash("sha256")
        .update(toBinary(input, req as never))
        .digest("hex");
      const deadline = Date.now() + waitMs;
      for (;;) {
        const claim = await store.claim(userId, name, key, requestHash);
        if (claim.state === "mismatch")
          throw invalidArgument(IDEMPOTENCY_HEADER, "was already used with a different request", "IDEMPOTENCY_KEY_REUSED");
        if (claim.state === "done") {
          ctx.responseHeader.set(REPLAYED_HEADER, "true");
          return fromBinary(output, claim.response);
        }
        if (claim.state === "claimed") break;
        // pending: the first call is still running, here or on another node
        if (Date.now() >= deadline)
          throw unavailable("IDEMPOTENT_CALL_IN_PROGRESS", "a call with this idempotency key is still running; retry later");
        await new Promise((r) => setTimeout(r, pollMs));
      }
      let res: unknown;
      try {
        res = await inner(req, ctx);
      } catch (err) {
        await store.release(userId, name, key).catch(() => {});
        throw err;
      }
      await store.complete(userId, name, key, toBinary(output, create(output, res as never)));
      return res;
    };
  }
  return out as Partial<ServiceImpl<S>>;
}
