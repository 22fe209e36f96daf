// Builds the auth feature from config and stores (called by the composition root).

import type { WorkspaceAccess } from "../conversations/ports.ts";
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { Config } from "../config.ts";
import type { Stores } from "../stores/stores.ts";
import { AuditLog } from "../audit/audit-log.ts";
import { SqlAuthStore } from "./auth-store.ts";
import { AuthService } from "./auth-service.ts";
import { PasswordHasher } from "./passwords.ts";
import { AuthRateLimits } from "./rate-limits.ts";
import { createRevocationMetrics, SessionRevocations } from "./revocations.ts";
import { AccessTokens } from "./tokens.ts";
import { DeviceTokens } from "./device-tokens.ts";

export interface AuthModule {
  service: AuthService;
  audit: AuditLog;
  revocations: SessionRevocations;
  /** Stops the periodic sweep of ended sessions and the revocation feed. */
  close(): Promise<void>;
}

const PURGE_INTERVAL_MS = 3600 * 1000;

/** Builds the module and loads the current revocations (the view is current when this resolves). */
export async function createAuthModule(
  config: Config,
  stores: Stores,
  logger: Logger,
  registry?: Registry,
  workspaces?: WorkspaceAccess,
): Promise<AuthModule> {
  const a = config.auth;
  let secret: string | Uint8Array = a.accessTokenSecret;
  if (a.accessTokenSecretGenerated) {
    // Dev only (config refuses this in production). Per process: another node
    // or a restart cannot verify these tokens, so clients have to Refresh.
    secret = randomBytes(32);
    logger.warn("ACCESS_TOKEN_SECRET is not set: using a random per-process secret; set it for more than one node");
  }
  const audit = new AuditLog(stores.sql);
  const store = new SqlAuthStore(stores.sql);
  const revocations = new SessionRevocations({
    ephemeral: stores.ephemeral,
    source: store,
    settings: { accessTokenTtlSec: a.accessTokenTtlSec, catchupIntervalMs: a.revocationCatchupMs, maxLagMs: a.revocationMaxLagMs },
    metrics: createRevocationMetrics(registry),
    logger: logger.child({ module: "auth" }),
  });
  const hasher = await PasswordHasher.create(a.argon2, a.argon2MaxConcurrent);
  await revocations.start();
  const service = new AuthService({
    store,
    hasher,
    tokens: new AccessTokens(secret, a.accessTokenTtlSec, a.tokenCacheMax),
    revocations,
    rateLimits: new AuthRateLimits(stores.ephemeral, a.rateLimits),
    // Signed with a key derived from the same secret: a per-process dev secret makes them per process too (then ignored, never refused).
    deviceTokens: new DeviceTokens(secret, a.deviceTokenTtlSec),
    audit,
    settings: { accessTokenTtlSec: a.accessTokenTtlSec, refreshIdleTtlSec: a.refreshIdleTtlSec, sessionAbsoluteTtlSec: a.sessionAbsoluteTtlSec },
    logger: logger.child({ module: "auth" }),
    workspaces,
  });
  const purge = setInterval(() => {
    service.purgeEndedSessions().catch((err) => logger.warn({ err }, "purging ended sessions failed"));
  }, PURGE_INTERVAL_MS);
  purge.unref();
  return {
    service,
    audit,
    revocations,
    async close() {
      clearInterval(purge);
      await revocations.close();
    },
  };
}
