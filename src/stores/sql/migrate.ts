import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { SqlDatabase } from "./sql.ts";

export interface Migration {
  version: string; // the file name's numeric prefix, e.g. "0001"
  name: string; // the file name
  sql: string;
  checksum: string;
}

export async function loadMigrations(dir: string): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
  const out: Migration[] = [];
  for (const name of files) {
    const sql = await readFile(join(dir, name), "utf8");
    out.push({ version: name.slice(0, 4), name, sql, checksum: createHash("sha256").update(sql).digest("hex") });
  }
  const seen = new Set<string>();
  for (const m of out) {
    if (seen.has(m.version)) throw new Error(`two migrations share version ${m.version}`);
    seen.add(m.version);
  }
  return out;
}

/**
 * Applies pending migrations in order, each in its own transaction, and records
 * them in schema_migrations. Safe when several nodes start at once: a
 * transaction-scoped advisory lock (per schema) serialises them. An applied
 * migration whose file changed fails start-up rather than drifting silently.
 * Returns the names applied by this call.
 */
export async function migrate(db: SqlDatabase, migrations: Migration[]): Promise<string[]> {
  // Under the lock: concurrent CREATE TABLE IF NOT EXISTS is not safe in Postgres
  // (two nodes starting on an empty schema collide in the catalog).
  await db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':migrations'))");
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version text PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
  });
  const applied: string[] = [];
  for (const m of migrations) {
    const done = await db.transaction(async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':migrations'))");
      const { rows } = await tx.query<{ checksum: string }>("SELECT checksum FROM schema_migrations WHERE version = $1", [m.version]);
      if (rows.length > 0) {
        if (rows[0].checksum !== m.checksum) {
          throw new Error(`migration ${m.name} was changed after it was applied (checksum mismatch); add a new migration instead`);
        }
        return false;
      }
      await tx.exec(m.sql);
      await tx.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [m.version, m.name, m.checksum]);
      return true;
    });
    if (done) applied.push(m.name);
  }
  return applied;
}
