// Reads the environment once, validates it, and returns a frozen Config.
// A bad value fails start-up with one line naming the variable.

import path from "node:path";
import { availableParallelism } from "node:os";

export class ConfigError extends Error {
  override name = "ConfigError";
}

export interface Argon2Params {
  memoryCost: number; // KiB
  timeCost: number;
  parallelism: number;
}

export interface Config {
  host: string;
  port: number;
  /** Admin HTTP port for /metrics, /healthz, /readyz; null disables it. */
  adminPort: number | null;
  /** TLS is on when both are set; otherwise cleartext h2c + HTTP/1.1. */
  tlsCertFile: string | null;
  tlsKeyFile: string | null;
  databaseUrl: string | null;
  /** The Postgres connection pool (DATABASE_URL): its size, and how its exhaustion is answered. */
  databasePool: {
    max: number;
    /** How long a call waits for a free connection before UNAVAILABLE (with a retry hint). */
    waitMs: number;
    /** Calls that may wait for a connection at once; beyond, UNAVAILABLE (with a retry hint) at once. */
    queueMax: number;
  };
  mongoUrl: string | null;
  redisUrl: string | null;
  /** Prefix for every Redis key and channel, so deployments can share one Redis. */
  redisPrefix: string;
  dataDir: string;
  logLevel: string;
  nodeId: string;
  corsOrigins: string[];
  /** The built web client served at `/` (WEB_DIR); null when WEB_DIR=off. */
  webDir: string | null;
  maxMessageBytes: number;
  maxConcurrentStreams: number;
  shutdownGraceMs: number;
  auth: {
    accessTokenSecret: string;
    /** True when no secret was configured and a dev secret was derived; refused in production. */
    accessTokenSecretGenerated: boolean;
    accessTokenTtlSec: number;
    refreshIdleTtlSec: number;
    sessionAbsoluteTtlSec: number;
    /** The browser refresh cookie gets `Secure` (REFRESH_COOKIE_SECURE; default: when TLS is on). */
    refreshCookieSecure: boolean;
    argon2: Argon2Params;
    /** Password hashes computed at once; further logins queue (keeps libuv threads for I/O). */
    argon2MaxConcurrent: number;
    /** Verified access tokens cached (LRU) until they expire; 0 = no cache. */
    tokenCacheMax: number;
    /** Revocation catch-up from the database while the pub/sub feed is live. */
    revocationCatchupMs: number;
    /** While the feed is down: oldest catch-up that may answer a call; older means a per-call database read. */
    revocationMaxLagMs: number;
    /** Lifetime of a device token (docs/AUTH.md "Login throttling"); renewed by each login. */
    deviceTokenTtlSec: number;
    rateLimits: {
      loginFailuresPerAccountAddress: number;
      loginFailuresPerAccount: number;
      loginFailuresPerDevice: number;
      loginWindowSec: number;
      loginFailuresPerAddress: number;
      loginAddressWindowSec: number;
      loginBackoffBaseSec: number;
      loginBackoffMaxSec: number;
      registerPerAddress: number;
      registerPerAccount: number;
      registerWindowSec: number;
    };
  };
  limits: {
    messageMaxChars: number;
  };
  /** How long a stored `idempotency-key` response is replayed. */
  idempotencyKeyTtlSec: number;
  presence: {
    deviceTtlMs: number;
    graceMs: number;
    coalesceMs: number;
    sweepIntervalMs: number;
    typingTtlMs: number;
    typingThrottleMs: number;
  };
  notifications: {
    batchWindowMs: number;
    /** Webhook for push delivery (APNs/FCM gateways); null: notifications are only listed. */
    webhookUrl: string | null;
    webhookSecret: string;
    webhookMaxAttempts: number;
    /** First retry delay; doubles per attempt. */
    webhookBackoffMs: number;
  };
  realtime: {
    /** How often clients ping (Stream) / the server sends heartbeats (Subscribe); ~3 silent intervals close a stream. */
    heartbeatIntervalMs: number;
    /** Frames (plus pending events) one stream may have waiting before it is cut off with RESOURCE_EXHAUSTED. */
    streamQueueMax: number;
    /** Events behind in one conversation beyond which a resume gets resync_required instead of a replay. */
    resyncThreshold: number;
    /** Events and resume checkpoints older than this are pruned; resuming from before gets resync_required. */
    eventRetentionSec: number;
    /** Period of the retention job (and, with MongoDB, the sweep for messages whose send never committed). */
    maintenanceIntervalMs: number;
    /** Period of the head check that fills events whose publication was lost (ms; 0 turns it off). */
    headCheckMs: number;
    /** GoAway at shutdown: clients reconnect after a random delay up to this (at least; see reconnectRatePerSec). */
    goAwayReconnectMs: number;
    /**
     * GoAway spreads the node's streams' reconnects so that they arrive at about this many per
     * second: the random delay's upper bound is max(goAwayReconnectMs, streams / rate seconds).
     */
    reconnectRatePerSec: number;
    /** Streams (Stream + Subscribe) one user may hold on one node; the newest beyond is refused (STREAM_LIMIT). */
    maxStreamsPerUser: number;
    /** Stream opens (subscribe, heads, replay) running at once on one node. */
    openConcurrency: number;
    /** Stream opens that may wait for a slot; one more is refused at once (STREAM_OPEN_BUSY). */
    openQueueMax: number;
    /** Longest wait of a stream open for a slot before it is refused (STREAM_OPEN_BUSY). */
    openWaitMs: number;
  };
  conversations: {
    groupMaxMembers: number;
    channelMaxMembers: number;
    /** Most user ids in one AddMembers (or CreateConversation member_ids). */
    addMembersMaxBatch: number;
    /** Channel names and group titles, in characters. */
    titleMaxChars: number;
    descriptionMaxChars: number;
  };
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string, fallback: string): string {
  const v = env[name];
  return v === undefined || v === "" ? fallback : v;
}

function optional(env: Env, name: string): string | null {
  const v = env[name];
  return v === undefined || v.trim() === "" ? null : v.trim();
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^-?\d+$/.test(raw.trim())) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not an integer`);
  }
  const n = Number(raw);
  if (n < min || n > max) {
    throw new ConfigError(`${name}=${raw} is out of range ${min}..${max}`);
  }
  return n;
}

function url(env: Env, name: string, protocols: string[]): string | null {
  const v = optional(env, name);
  if (v === null) return null;
  let parsed: URL;
  try {
    parsed = new URL(v);
  } catch {
    throw new ConfigError(`${name} is not a valid URL`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${name} must use ${protocols.join(" or ")} (got ${parsed.protocol})`);
  }
  return v;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

export function loadConfig(env: Env = process.env): Config {
  const logLevel = str(env, "LOG_LEVEL", "info");
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL=${logLevel} is not one of ${LOG_LEVELS.join(", ")}`);
  }
  const adminRaw = str(env, "ADMIN_PORT", "9090");
  const adminPort = adminRaw === "off" ? null : int(env, "ADMIN_PORT", 9090, 0, 65535);
  const tlsCertFile = optional(env, "TLS_CERT_FILE");
  const tlsKeyFile = optional(env, "TLS_KEY_FILE");
  if ((tlsCertFile === null) !== (tlsKeyFile === null)) {
    throw new ConfigError("TLS_CERT_FILE and TLS_KEY_FILE must be set together");
  }
  // "auto": Secure exactly when this server speaks TLS; "on" behind a TLS-terminating proxy.
  const cookieSecureRaw = str(env, "REFRESH_COOKIE_SECURE", "auto");
  if (!["auto", "on", "off"].includes(cookieSecureRaw)) throw new ConfigError(`REFRESH_COOKIE_SECURE=${cookieSecureRaw} is not one of auto, on, off`);
  const refreshCookieSecure = cookieSecureRaw === "auto" ? tlsCertFile !== null : cookieSecureRaw === "on";
  const production = env.NODE_ENV === "production";
  const secret = optional(env, "ACCESS_TOKEN_SECRET");
  let secretGenerated = false;
  if (secret === null) {
    if (production) {
      throw new ConfigError("ACCESS_TOKEN_SECRET is required when NODE_ENV=production");
    }
    secretGenerated = true;
  } else if (Buffer.byteLength(secret) < 32) {
    throw new ConfigError("ACCESS_TOKEN_SECRET must be at least 32 bytes");
  }
  if (int(env, "LOGIN_BACKOFF_BASE_SEC", 1, 1, 3600) > int(env, "LOGIN_BACKOFF_MAX_SEC", 15 * 60, 1, 24 * 3600)) {
    throw new ConfigError("LOGIN_BACKOFF_BASE_SEC must not exceed LOGIN_BACKOFF_MAX_SEC");
  }
  const corsOrigins = str(env, "CORS_ORIGINS", "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const o of corsOrigins) {
    if (o !== "*" && !/^https?:\/\/[^/]+$/.test(o)) {
      throw new ConfigError(`CORS_ORIGINS entry ${JSON.stringify(o)} must be * or scheme://host[:port]`);
    }
  }
  const config: Config = {
    host: str(env, "HOST", "0.0.0.0"),
    port: int(env, "PORT", 8080, 0, 65535),
    adminPort,
    tlsCertFile,
    tlsKeyFile,
    databaseUrl: url(env, "DATABASE_URL", ["postgres:", "postgresql:"]),
    databasePool: {
      max: int(env, "DB_POOL_MAX", 20, 1, 1_000),
      waitMs: int(env, "DB_POOL_WAIT_MS", 5_000, 1, 600_000),
      queueMax: int(env, "DB_POOL_QUEUE_MAX", 500, 0, 1_000_000),
    },
    mongoUrl: url(env, "MONGO_URL", ["mongodb:", "mongodb+srv:"]),
    redisUrl: url(env, "REDIS_URL", ["redis:", "rediss:"]),
    redisPrefix: str(env, "REDIS_PREFIX", "chat:"),
    dataDir: str(env, "DATA_DIR", "./data"),
    logLevel,
    nodeId: str(env, "NODE_ID", `node-${process.pid}`),
    corsOrigins,
    // Default: the repo's web/dist, wherever the process was started from.
    webDir: str(env, "WEB_DIR", "") === "off" ? null : str(env, "WEB_DIR", path.join(import.meta.dirname, "..", "web", "dist")),
    maxMessageBytes: int(env, "MAX_MESSAGE_BYTES", 256 * 1024, 1024, 64 * 1024 * 1024),
    maxConcurrentStreams: int(env, "MAX_CONCURRENT_STREAMS", 256, 1, 100_000),
    shutdownGraceMs: int(env, "SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    auth: {
      // Without a configured secret (dev only) the composition root makes a
      // random per-process one (restarts then cost clients a Refresh); see app.ts.
      accessTokenSecret: secret ?? "",
      accessTokenSecretGenerated: secretGenerated,
      accessTokenTtlSec: int(env, "ACCESS_TOKEN_TTL_SEC", 15 * 60, 5, 24 * 3600),
      refreshIdleTtlSec: int(env, "REFRESH_IDLE_TTL_SEC", 14 * 24 * 3600, 60, 365 * 24 * 3600),
      sessionAbsoluteTtlSec: int(env, "SESSION_ABSOLUTE_TTL_SEC", 90 * 24 * 3600, 60, 3650 * 24 * 3600),
      refreshCookieSecure,
      argon2: {
        // OWASP minimum for argon2id: m=19 MiB, t=2, p=1. Lower values are refused.
        memoryCost: int(env, "ARGON2_MEMORY_KIB", 19456, 19456, 4 * 1024 * 1024),
        timeCost: int(env, "ARGON2_TIME_COST", 2, 2, 20),
        parallelism: int(env, "ARGON2_PARALLELISM", 1, 1, 16),
      },
      // argon2 runs on libuv's pool (4 threads by default), shared with file I/O
      // (PGlite) and DNS: by default one hash per core, at most 3.
      argon2MaxConcurrent: int(env, "ARGON2_MAX_CONCURRENT", Math.max(1, Math.min(availableParallelism(), 3)), 1, 64),
      tokenCacheMax: int(env, "ACCESS_TOKEN_CACHE_MAX", 10_000, 0, 10_000_000),
      revocationCatchupMs: int(env, "AUTH_REVOCATION_CATCHUP_MS", 1_000, 10, 3_600_000),
      // Below 1 s so that a revocation is seen on every node within a second even while Redis is away.
      revocationMaxLagMs: int(env, "AUTH_REVOCATION_MAX_LAG_MS", 500, 20, 60_000),
      deviceTokenTtlSec: int(env, "LOGIN_DEVICE_TOKEN_TTL_SEC", 180 * 24 * 3600, 60, 3650 * 24 * 3600),
      // Login throttling (docs/AUTH.md "Login throttling"): failures let through
      // per bucket before growing delays begin; no bucket locks anyone out.
      rateLimits: {
        // One account from one address, unknown devices (a success resets it).
        loginFailuresPerAccountAddress: int(env, "LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS", 5, 1, 1_000_000),
        // One account from all unknown devices together: above what one address can reach in the window.
        loginFailuresPerAccount: int(env, "LOGIN_MAX_FAILURES_PER_ACCOUNT", 300, 1, 1_000_000),
        // One known device (device token) of one account.
        loginFailuresPerDevice: int(env, "LOGIN_MAX_FAILURES_PER_DEVICE", 5, 1, 1_000_000),
        loginWindowSec: int(env, "LOGIN_FAILURE_WINDOW_SEC", 24 * 3600, 1, 30 * 24 * 3600),
        // One address over all accounts, unknown devices (password spraying).
        loginFailuresPerAddress: int(env, "LOGIN_MAX_FAILURES_PER_ADDRESS", 100, 1, 1_000_000),
        loginAddressWindowSec: int(env, "LOGIN_ADDRESS_WINDOW_SEC", 15 * 60, 1, 7 * 24 * 3600),
        // Delays double from the base up to the max with each failure past the free ones.
        loginBackoffBaseSec: int(env, "LOGIN_BACKOFF_BASE_SEC", 1, 1, 3600),
        loginBackoffMaxSec: int(env, "LOGIN_BACKOFF_MAX_SEC", 15 * 60, 1, 24 * 3600),
        registerPerAddress: int(env, "REGISTER_MAX_PER_ADDRESS", 100, 1, 1_000_000),
        registerPerAccount: int(env, "REGISTER_MAX_PER_EMAIL", 5, 1, 1_000_000),
        registerWindowSec: int(env, "REGISTER_WINDOW_SEC", 3600, 1, 7 * 24 * 3600),
      },
    },
    limits: {
      messageMaxChars: int(env, "MESSAGE_MAX_CHARS", 4000, 1, 100_000),
    },
    idempotencyKeyTtlSec: int(env, "IDEMPOTENCY_KEY_TTL_SEC", 24 * 3600, 60, 30 * 24 * 3600),
    presence: {
      // A device is offline after three missed heartbeats (see the realtime heartbeat interval).
      deviceTtlMs: int(env, "PRESENCE_DEVICE_TTL_MS", 45_000, 100, 3_600_000),
      graceMs: int(env, "PRESENCE_GRACE_MS", 5_000, 0, 600_000),
      coalesceMs: int(env, "PRESENCE_COALESCE_MS", 1_000, 10, 600_000),
      sweepIntervalMs: int(env, "PRESENCE_SWEEP_MS", 1_000, 10, 600_000),
      typingTtlMs: int(env, "TYPING_TTL_MS", 6_000, 100, 600_000),
      typingThrottleMs: int(env, "TYPING_THROTTLE_MS", 3_000, 0, 600_000),
    },
    notifications: {
      batchWindowMs: int(env, "NOTIFY_BATCH_WINDOW_MS", 30_000, 10, 3_600_000),
      webhookUrl: url(env, "NOTIFY_WEBHOOK_URL", ["http:", "https:"]),
      webhookSecret: str(env, "NOTIFY_WEBHOOK_SECRET", ""),
      webhookMaxAttempts: int(env, "NOTIFY_WEBHOOK_MAX_ATTEMPTS", 5, 1, 20),
      webhookBackoffMs: int(env, "NOTIFY_WEBHOOK_BACKOFF_MS", 1_000, 1, 600_000),
    },
    realtime: {
      heartbeatIntervalMs: int(env, "STREAM_HEARTBEAT_INTERVAL_MS", 15_000, 100, 600_000),
      streamQueueMax: int(env, "STREAM_QUEUE_MAX", 1_000, 4, 1_000_000),
      resyncThreshold: int(env, "STREAM_RESYNC_THRESHOLD", 1_000, 1, 1_000_000),
      eventRetentionSec: int(env, "EVENT_RETENTION_SEC", 7 * 24 * 3600, 60, 365 * 24 * 3600),
      maintenanceIntervalMs: int(env, "REALTIME_MAINTENANCE_INTERVAL_MS", 60_000, 100, 24 * 3600 * 1000),
      headCheckMs: int(env, "REALTIME_HEAD_CHECK_MS", 1_000, 0, 600_000),
      goAwayReconnectMs: int(env, "STREAM_GOAWAY_RECONNECT_MS", 1_000, 0, 600_000),
      reconnectRatePerSec: int(env, "STREAM_RECONNECT_RATE", 500, 1, 1_000_000),
      maxStreamsPerUser: int(env, "STREAM_MAX_PER_USER", 10, 1, 100_000),
      openConcurrency: int(env, "STREAM_OPEN_CONCURRENCY", 16, 1, 10_000),
      openQueueMax: int(env, "STREAM_OPEN_QUEUE_MAX", 1_000, 0, 1_000_000),
      openWaitMs: int(env, "STREAM_OPEN_WAIT_MS", 5_000, 1, 600_000),
    },
    conversations: {
      groupMaxMembers: int(env, "GROUP_MAX_MEMBERS", 500, 2, 100_000),
      channelMaxMembers: int(env, "CHANNEL_MAX_MEMBERS", 10_000, 2, 1_000_000),
      addMembersMaxBatch: int(env, "ADD_MEMBERS_MAX_BATCH", 100, 1, 1000),
      titleMaxChars: int(env, "CONVERSATION_TITLE_MAX_CHARS", 80, 1, 200),
      descriptionMaxChars: int(env, "CONVERSATION_DESCRIPTION_MAX_CHARS", 1000, 0, 10_000),
    },
  };
  if (config.notifications.webhookUrl && Buffer.byteLength(config.notifications.webhookSecret) < 16) {
    throw new ConfigError("NOTIFY_WEBHOOK_SECRET (at least 16 bytes) is required with NOTIFY_WEBHOOK_URL");
  }
  return Object.freeze(config);
}
