// One migrated PGlite data directory per test run, made once in global setup,
// copied for every embedded database a test opens (a copy costs a few
// milliseconds; initdb plus the migrations cost seconds on this machine).
//
// Without the image (a helper used outside Vitest) a directory is left empty:
// PGlite then runs initdb and migrate() applies everything, the same result, slower.

import { cpSync, existsSync, mkdirSync } from "node:fs";
import { createPglite } from "../../src/stores/sql/pglite.ts";
import { loadMigrations, migrate } from "../../src/stores/sql/migrate.ts";
import { MIGRATIONS_DIR } from "../../src/stores/stores.ts";

/** Where global setup leaves the image, for the test workers it forks. */
export const PGLITE_IMAGE_ENV = "TEST_PGLITE_IMAGE";

/** Creates a PGlite data directory at `dir` and applies every migration. */
export async function buildPgliteImage(dir: string): Promise<void> {
  const db = await createPglite(dir);
  try {
    await migrate(db, await loadMigrations(MIGRATIONS_DIR));
  } finally {
    await db.close();
  }
}

/** Fills `dir` (a data directory PGlite will open) with the migrated image, when there is one. */
export function copyPgliteImage(dir: string): boolean {
  const image = process.env[PGLITE_IMAGE_ENV];
  if (!image || !existsSync(image)) return false;
  mkdirSync(dir, { recursive: true });
  cpSync(image, dir, { recursive: true });
  return true;
}
