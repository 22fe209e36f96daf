// Helpers for the conversation tests: opening an isolated, migrated SQL store,
// inserting users directly (store-level tests need no auth), and reading the
// google.rpc details of errors as native clients do.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID, randomBytes } from "node:crypto";
import type { SqlBackendName } from "../support/backends.ts";
import { isolatedPostgres } from "../support/backends.ts";
import type { SqlDatabase, SqlExecutor } from "../../src/stores/sql/sql.ts";
import { createPostgres } from "../../src/stores/sql/postgres.ts";
import { createPglite } from "../../src/stores/sql/pglite.ts";
import { loadMigrations, migrate } from "../../src/stores/sql/migrate.ts";
import { MIGRATIONS_DIR } from "../../src/stores/stores.ts";

export async function openMigratedSql(name: SqlBackendName): Promise<{ db: SqlDatabase; cleanup(): Promise<void> }> {
  let db: SqlDatabase;
  let drop: () => Promise<void>;
  if (name === "postgres") {
    const iso = await isolatedPostgres();
    db = createPostgres(iso.url, { max: 30 });
    drop = iso.drop;
  } else {
    const dir = mkdtempSync(join(tmpdir(), "conv-pglite-"));
    db = await createPglite(dir);
    drop = async () => rmSync(dir, { recursive: true, force: true });
  }
  await migrate(db, await loadMigrations(MIGRATIONS_DIR));
  return {
    db,
    async cleanup() {
      await db.close();
      await drop();
    },
  };
}

/** Inserts `n` users straight into the users table and returns their ids. */
export async function insertUsers(db: SqlExecutor, n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, () => randomUUID());
  const names = ids.map(() => `u_${randomBytes(6).toString("hex")}`);
  await db.query(
    `INSERT INTO users (id, email, email_normalized, username, display_name, password_hash)
     SELECT id, name || '@example.test', name || '@example.test', name, name, 'x'
     FROM unnest($1::uuid[], $2::text[]) AS t(id, name)`,
    [ids, names],
  );
  return ids;
}

export { failure, grpcViolations, connectViolations } from "../support/errors.ts";
