// `npm run migrate`: applies pending migrations and exits (start-up does the
// same; this is for deploy pipelines that migrate before rolling nodes).

import { loadConfig, ConfigError } from "../config.ts";
import { openSql, MIGRATIONS_DIR } from "../stores/stores.ts";
import { loadMigrations, migrate } from "../stores/sql/migrate.ts";

try {
  const config = loadConfig();
  const db = await openSql(config);
  try {
    const applied = await migrate(db, await loadMigrations(MIGRATIONS_DIR));
    console.log(applied.length ? `applied: ${applied.join(", ")}` : "schema up to date");
  } finally {
    await db.close();
  }
} catch (err) {
  console.error(err instanceof ConfigError ? `config error: ${err.message}` : `migrate failed: ${(err as Error).message}`);
  process.exit(err instanceof ConfigError ? 2 : 1);
}
