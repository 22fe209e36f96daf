import { createContextKey } from "@connectrpc/connect";
import type { HandlerContext } from "@connectrpc/connect";
import type { Logger } from "pino";
import { unauthenticated } from "../shared/errors.ts";

/** Who is calling: set by the auth interceptor on every authenticated RPC. */
export interface AuthContext {
  userId: string;
  sessionId: string;
  roles: string[];
}

export const kAuth = createContextKey<AuthContext | undefined>(undefined, { description: "authenticated caller" });
export const kRequestId = createContextKey<string>("", { description: "request id" });
export const kClientAddress = createContextKey<string>("", { description: "client address" });
/** Host (HTTP/1.1) or :authority (HTTP/2) the request was sent to. */
export const kRequestAuthority = createContextKey<string | undefined>(undefined, { description: "request authority" });
export const kLogger = createContextKey<Logger | undefined>(undefined, { description: "request logger" });
/**
 * Aborted when the node starts shutting down. Calls that would otherwise run
 * until the client leaves (reflection streams, WatchPresence) end at once on
 * it, instead of holding shutdown for the whole grace period.
 */
export const kDraining = createContextKey<AbortSignal>(new AbortController().signal, { description: "node shutting down" });

/** The call's own signal, also aborted when the node starts shutting down. */
export function untilDraining(ctx: HandlerContext): AbortSignal {
  return AbortSignal.any([ctx.signal, ctx.values.get(kDraining)]);
}

/** The authenticated caller; throws UNAUTHENTICATED on a public route (a wiring bug). */
export function caller(ctx: HandlerContext): AuthContext {
  const auth = ctx.values.get(kAuth);
  if (!auth) throw unauthenticated("TOKEN_MISSING", "authentication required");
  return auth;
}
