import { PGlite, types as pgliteTypes } from "@electric-sql/pglite";
import { mkdirSync } from "node:fs";
import type { QueryResult, SqlDatabase, SqlExecutor } from "./sql.ts";

/**
 * The embedded default: Postgres compiled to WASM, persisted in `dataDir`
 * (or in memory when dataDir is null, for tests). One process owns the
 * directory; PGlite serialises queries and transactions internally.
 */
export async function createPglite(dataDir: string | null): Promise<SqlDatabase> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir ?? undefined, {
    parsers: {
      [pgliteTypes.INT8]: (v: string) => Number(v),
      [pgliteTypes.NUMERIC]: (v: string) => Number(v),
    },
  });

  const exec = (q: Pick<PGlite, "query" | "exec">): SqlExecutor => ({
    async query<R>(text: string, params?: unknown[]): Promise<QueryResult<R>> {
      const res = await q.query<R>(text, params);
      return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
    },
    async exec(script: string): Promise<void> {
      await q.exec(script);
    },
  });

  const root = exec(db);
  return {
    kind: "pglite",
    query: root.query,
    exec: root.exec,
    transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
      return db.transaction((tx) => fn(exec(tx)));
    },
    async ping() {
      await db.query("SELECT 1");
    },
    async close() {
      await db.close();
    },
  };
}
