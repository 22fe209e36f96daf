import pg from "pg";
import type { QueryOptions, QueryResult, SqlDatabase, SqlExecutor } from "./sql.ts";
import { AppError, unavailable } from "../../shared/errors.ts";
import { IGNORE_FAULTS, STORE_RETRY_AFTER_MS, type StoreFaults } from "../faults.ts";

const INT8_OID = 20;
const NUMERIC_OID = 1700;

// Per-pool type parsers (not the global pg.types) so nothing leaks between pools.
const types = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (oid === INT8_OID) return (v: string) => Number(v);
    if (oid === NUMERIC_OID) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as "text");
  },
};

// Errors that mean "the database is not reachable", as opposed to a bad query.
function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: string })?.code ?? "";
  return (
    ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "EPIPE", "57P01", "57P03", "08000", "08001", "08003", "08006"].includes(code) ||
    /Connection terminated|timeout exceeded when trying to connect/i.test(String((err as Error)?.message))
  );
}

/** The retry hint (google.rpc.RetryInfo) on UNAVAILABLE from a lost connection or an exhausted pool. */
const DB_RETRY_AFTER_MS = STORE_RETRY_AFTER_MS;

function isPoolWaitTimeout(err: unknown): boolean {
  return /timeout exceeded when trying to connect/i.test(String((err as Error)?.message));
}

export interface PostgresOptions {
  /** Connections in the pool. */
  max?: number;
  /** Milliseconds a call waits for a pooled connection before failing with UNAVAILABLE (and a retry hint). */
  connectionTimeoutMillis?: number;
  /** Calls that may wait for a connection at once; one more fails at once with UNAVAILABLE (and a retry hint). */
  queueMax?: number;
  statementTimeoutMillis?: number;
  faults?: StoreFaults;
}

export function createPostgres(connectionString: string, opts: PostgresOptions = {}): SqlDatabase {
  const faults = opts.faults ?? IGNORE_FAULTS;
  const queueMax = opts.queueMax ?? 1_000;
  const pool = new pg.Pool({
    connectionString,
    max: opts.max ?? 20,
    connectionTimeoutMillis: opts.connectionTimeoutMillis ?? 5_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: opts.statementTimeoutMillis ?? 15_000,
    types,
  });
  // An idle client that loses its connection emits here (the pool drops it;
  // the next query opens a new one). Without a listener the process would crash.
  pool.on("error", (err) => faults.connectionLost("postgres", err));
  // Health pings use their own connection: they ask "is the database there?",
  // and must not wait in the pool's queue behind a burst of calls (a saturated
  // pool is load, not an outage; reporting NOT_SERVING then would take the node
  // out of its load balancer exactly when its peers need it most).
  const probe = new pg.Pool({ connectionString, max: 1, connectionTimeoutMillis: 2_000, idleTimeoutMillis: 0, statement_timeout: 2_000 });
  probe.on("error", () => {}); // a lost probe connection shows as a failed ping; the next ping reconnects

  const wrap = (err: unknown): never => {
    if (isPoolWaitTimeout(err)) {
      faults.poolExhausted("postgres", "wait_timeout");
      throw unavailable("STORE_BUSY", "database busy: no connection free in time", err, DB_RETRY_AFTER_MS, { store: "sql" });
    }
    if (isConnectionError(err)) throw unavailable("STORE_UNAVAILABLE", "database unavailable", err, DB_RETRY_AFTER_MS, { store: "sql" });
    // statement_timeout (a saturated database, a long lock wait): a retry may well succeed.
    if ((err as { code?: string })?.code === "57014")
      throw unavailable("STORE_BUSY", "database busy: statement timed out", err, DB_RETRY_AFTER_MS, { store: "sql" });
    throw err;
  };
  // A bounded wait: beyond queueMax waiting calls, refuse at once instead of
  // piling up promises (and memory) behind a saturated pool.
  const admit = () => {
    if (pool.waitingCount >= queueMax) {
      faults.poolExhausted("postgres", "queue_full");
      throw unavailable("STORE_BUSY", "database busy: too many calls waiting for a connection", undefined, DB_RETRY_AFTER_MS, { store: "sql" });
    }
  };

  const exec = (client: pg.Pool | pg.PoolClient): SqlExecutor => ({
    async query<R>(text: string, params?: unknown[], options?: QueryOptions): Promise<QueryResult<R>> {
      if (client === pool) admit();
      try {
        const res = options?.name
          ? await client.query({ name: options.name, text, values: params as unknown[] })
          : await client.query(text, params as unknown[]);
        return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
      } catch (err) {
        // Inside a transaction the transaction reports the loss (once); here, the pool's query.
        if (client === pool && isConnectionError(err) && !isPoolWaitTimeout(err)) faults.connectionLost("postgres", err);
        return wrap(err);
      }
    },
    async exec(script: string): Promise<void> {
      if (client === pool) admit();
      try {
        await client.query(script);
      } catch (err) {
        wrap(err);
      }
    },
  });

  const root = exec(pool);
  return {
    kind: "postgres",
    query: root.query,
    exec: root.exec,
    async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
      admit();
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        return wrap(err);
      }
      // A checked-out client is not watched by the pool: when its backend dies
      // (failover, pg_terminate_backend, idle-in-transaction timeout, a reset)
      // it emits 'error', which without this listener kills the process. The
      // statement in flight (or the next one) then fails and the call gets UNAVAILABLE.
      let lost: Error | null = null;
      const onError = (err: Error) => {
        if (lost) return;
        lost = err;
        faults.connectionLost("postgres", err);
      };
      client.on("error", onError);
      try {
        await client.query("BEGIN");
        const result = await fn(exec(client));
        await client.query("COMMIT");
        return result;
      } catch (err) {
        // A statement that failed for the connection's sake (already mapped to UNAVAILABLE by exec).
        if (isConnectionError(err) || (err instanceof AppError && isConnectionError(err.cause))) onError(err as Error);
        if (!lost) await client.query("ROLLBACK").catch(() => {});
        if (lost) throw unavailable("STORE_UNAVAILABLE", "database unavailable", err, DB_RETRY_AFTER_MS, { store: "sql" });
        throw err;
      } finally {
        client.removeListener("error", onError);
        // With an error, the pool destroys the client instead of reusing a dead connection.
        client.release(lost ?? undefined);
      }
    },
    async ping() {
      try {
        await probe.query("SELECT 1");
      } catch (err) {
        wrap(err);
      }
    },
    async close() {
      await Promise.all([pool.end(), probe.end()]);
    },
  };
}
