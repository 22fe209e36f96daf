// What the store adapters report about their connections, so that a lost
// connection or an exhausted pool is counted (prom-client, in app.ts) and
// logged, never swallowed. The adapters themselves turn the fault into
// UNAVAILABLE for the call that hit it and reconnect on their own.

import { MongoError, MongoNetworkError, MongoServerSelectionError, MongoTopologyClosedError } from "mongodb";

export type StoreName = "postgres" | "mongo" | "redis";

export interface StoreFaults {
  /** A connection was lost: a pooled or checked-out Postgres client, a Redis connection, a MongoDB pool. */
  connectionLost(store: StoreName, err: unknown): void;
  /** A call was refused UNAVAILABLE because the pool's wait queue was full, or its wait for a connection timed out. */
  poolExhausted(store: StoreName, reason: "queue_full" | "wait_timeout"): void;
}

/** For tools (migrate, the auth CLI) and tests that build a store without a server around it. */
export const IGNORE_FAULTS: StoreFaults = { connectionLost() {}, poolExhausted() {} };

/** The retry hint (google.rpc.RetryInfo) on UNAVAILABLE for a store that could not be reached. */
export const STORE_RETRY_AFTER_MS = 1_000;

/**
 * Whether an error thrown by a store driver means "the store could not be
 * reached", as opposed to a bad query. The Postgres and Redis adapters map
 * their own; MongoDB operations are called by the feature stores directly,
 * so the edge asks this for what reaches it unmapped (then UNAVAILABLE, not INTERNAL).
 */
export function isStoreConnectionError(err: unknown): boolean {
  if (!(err instanceof MongoError)) return false;
  return (
    err instanceof MongoNetworkError ||
    err instanceof MongoServerSelectionError ||
    err instanceof MongoTopologyClosedError ||
    // Primary stepped down, shutting down, not writable primary: retryable, the driver says.
    err.hasErrorLabel("RetryableWriteError") ||
    err.hasErrorLabel("ResetPool")
  );
}
