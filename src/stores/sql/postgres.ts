import pg from "pg";
import type { QueryResult, SqlDatabase, SqlExecutor } from "./sql.ts";
import { unavailable } from "../../shared/errors.ts";

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

function wrap(err: unknown): never {
  if (isConnectionError(err)) throw unavailable("database unavailable", err);
  throw err;
}

export interface PostgresOptions {
  max?: number;
  /** Milliseconds to wait for a pooled connection before failing with UNAVAILABLE. */
  connectionTimeoutMillis?: number;
  statementTimeoutMillis?: number;
}

export function createPostgres(connectionString: string, opts: PostgresOptions = {}): SqlDatabase {
  const pool = new pg.Pool({
    connectionString,
    max: opts.max ?? 20,
    connectionTimeoutMillis: opts.connectionTimeoutMillis ?? 5_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: opts.statementTimeoutMillis ?? 15_000,
    types,
  });
  // An idle client that loses its connection emits here; without a listener
  // the process would crash. The next query reconnects.
  pool.on("error", () => {});

  const exec = (client: pg.Pool | pg.PoolClient): SqlExecutor => ({
    async query<R>(text: string, params?: unknown[]): Promise<QueryResult<R>> {
      try {
        const res = await client.query(text, params as unknown[]);
        return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
      } catch (err) {
        return wrap(err);
      }
    },
    async exec(script: string): Promise<void> {
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
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        return wrap(err);
      }
      try {
        await client.query("BEGIN");
        const result = await fn(exec(client));
        await client.query("COMMIT");
        return result;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => {});
        if (isConnectionError(err)) throw unavailable("database unavailable", err);
        throw err;
      } finally {
        client.release();
      }
    },
    async ping() {
      await root.query("SELECT 1");
    },
    async close() {
      await pool.end();
    },
  };
}
