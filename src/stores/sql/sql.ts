// One small SQL interface over node-postgres and PGlite, so every relational
// store is written once and runs on a real Postgres server or embedded.
//
// Conventions both adapters honour: $1-style parameters; int8 comes back as a
// JS number (seq values stay far below 2^53); timestamptz as Date; jsonb parsed.

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

export interface QueryOptions {
  /**
   * A name for a hot, fixed statement: on Postgres it is prepared once per
   * connection (parsed and planned once, then only bound and executed). Only
   * for statements whose text never varies and whose plan does not depend on
   * the parameters (a generic plan is fine). PGlite ignores it.
   */
  name?: string;
}

export interface SqlExecutor {
  query<R = Record<string, unknown>>(text: string, params?: unknown[], options?: QueryOptions): Promise<QueryResult<R>>;
  /** Runs a script of several statements, without parameters (migrations). */
  exec(script: string): Promise<void>;
}

export interface SqlDatabase extends SqlExecutor {
  readonly kind: "postgres" | "pglite";
  /** Runs fn in one transaction: COMMIT when it resolves, ROLLBACK when it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Cheap liveness probe for health checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Postgres SQLSTATE of a failed query, if it is one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

export const UNIQUE_VIOLATION = "23505";
export const SERIALIZATION_FAILURE = "40001";
export const DEADLOCK_DETECTED = "40P01";
