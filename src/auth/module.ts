// Builds the auth feature from config and stores (called by the composition root).

import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { Config } from "../config.ts";
import type { Stores } from "../stores/stores.ts";
import { AuditLog } from "../audit/audit-log.ts";
import { SqlAuthStore } from "./auth-store.ts";
import { AuthService } from "./auth-service.ts";
import { PasswordHasher } from "./passwords.ts";
import { AuthRateLimits } from "./rate-limits.ts";
import { SessionRevocations } from "./revocations.ts";
import { AccessTokens } from "./tokens.ts";

export interface AuthModule {
  service: AuthService;
  audit: AuditLog;
  revocations: SessionRevocations;
  /** Stops the periodic sweep of ended sessions. */
  close(): void;
}

const PURGE_INTERVAL_MS = 3600 * 1000;

export async function createAuthModule(config: Config, stores: Stores, logger: Logger): Promise<AuthModule> {
  const a = config.auth;
  let secret: string | Uint8Array = a.accessTokenSecret;
  if (a.accessTokenSecretGenerated) {
    // Dev only (config refuses this in production). Per process: another node
    // or a restart cannot verify these tokens, so clients have to Refresh.
    secret = randomBytes(32);
    logger.warn("ACCESS_TOKEN_SECRET is not set: using a random per-process secret; set it for more than one node");
  }
  const audit = new AuditLog(stores.sql);
  const revocations = new SessionRevocations(stores.ephemeral, a.accessTokenTtlSec);
  const service = new AuthService({
    store: new SqlAuthStore(stores.sql),
    hasher: await PasswordHasher.create(a.argon2, a.argon2MaxConcurrent),
    tokens: new AccessTokens(secret, a.accessTokenTtlSec),
    revocations,
    rateLimits: new AuthRateLimits(stores.ephemeral, a.rateLimits),
    audit,
    settings: { accessTokenTtlSec: a.accessTokenTtlSec, refreshIdleTtlSec: a.refreshIdleTtlSec, sessionAbsoluteTtlSec: a.sessionAbsoluteTtlSec },
    logger: logger.child({ module: "auth" }),
  });
  const purge = setInterval(() => {
    service.purgeEndedSessions().catch((err) => logger.warn({ err }, "purging ended sessions failed"));
  }, PURGE_INTERVAL_MS);
  purge.unref();
  return { service, audit, revocations, close: () => clearInterval(purge) };
}
