// PGlite data directories made once per test run, in global setup, and copied
// for every embedded database a test opens (a copy costs a fraction of a
// second; initdb alone costs seconds on this machine, 11 s at a load of 10):
//
// - the migrated image (TEST_PGLITE_IMAGE): initdb plus every migration, what
//   the app and the stores start from;
// - the fresh image (TEST_PGLITE_FRESH_IMAGE): initdb only, for the tests of
//   the migrations themselves (the same directory, copied before migrating).
//
// Without the images (a helper used outside Vitest) a directory is left empty:
// PGlite then runs initdb and migrate() applies everything, the same result, slower.

import { cpSync, existsSync, mkdirSync } from "node:fs";
import { createPglite } from "../../src/stores/sql/pglite.ts";
import { loadMigrations, migrate } from "../../src/stores/sql/migrate.ts";
import { MIGRATIONS_DIR } from "../../src/stores/stores.ts";

/** Where global setup leaves the images, for the test workers it forks. */
export const PGLITE_IMAGE_ENV = "TEST_PGLITE_IMAGE";
export const PGLITE_FRESH_IMAGE_ENV = "TEST_PGLITE_FRESH_IMAGE";

/** Creates a PGlite data directory at `fresh` (initdb only), copies it to `migrated` and applies every migration there. */
export async function buildPgliteImages(dirs: { fresh: string; migrated: string }): Promise<void> {
  await (await createPglite(dirs.fresh)).close();
  cpSync(dirs.fresh, dirs.migrated, { recursive: true });
  const db = await createPglite(dirs.migrated);
  try {
    await migrate(db, await loadMigrations(MIGRATIONS_DIR));
  } finally {
    await db.close();
  }
}

/** Fills `dir` (a data directory PGlite will open) with the migrated image, or the fresh one, when there is one. */
export function copyPgliteImage(dir: string, which: "migrated" | "fresh" = "migrated"): boolean {
  const image = process.env[which === "fresh" ? PGLITE_FRESH_IMAGE_ENV : PGLITE_IMAGE_ENV];
  if (!image || !existsSync(image)) return false;
  mkdirSync(dir, { recursive: true });
  cpSync(image, dir, { recursive: true });
  return true;
}
