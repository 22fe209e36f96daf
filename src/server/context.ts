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
export const kLogger = createContextKey<Logger | undefined>(undefined, { description: "request logger" });

/** The authenticated caller; throws UNAUTHENTICATED on a public route (a wiring bug). */
export function caller(ctx: HandlerContext): AuthContext {
  const auth = ctx.values.get(kAuth);
  if (!auth) throw unauthenticated("TOKEN_MISSING", "authentication required");
  return auth;
}
