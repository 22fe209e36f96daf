// One conformance suite for the SQL interface, run on a real Postgres and on
// the embedded PGlite: the same behaviour is what lets every relational store
// be written once.

import { afterAll, beforeAll, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { forEachBackend, isolatedPostgres, type SqlBackendName } from "../support/backends.ts";
import type { SqlDatabase } from "../../src/stores/sql/sql.ts";
import { sqlState, UNIQUE_VIOLATION } from "../../src/stores/sql/sql.ts";
import { createPostgres } from "../../src/stores/sql/postgres.ts";
import { createPglite } from "../../src/stores/sql/pglite.ts";
import { loadMigrations, migrate } from "../../src/stores/sql/migrate.ts";
import { MIGRATIONS_DIR } from "../../src/stores/stores.ts";
import { copyPgliteImage } from "../support/pglite-image.ts";

async function open(name: SqlBackendName): Promise<{ db: SqlDatabase; url?: string; reopen(): Promise<SqlDatabase>; cleanup(): Promise<void> }> {
  if (name === "postgres") {
    const iso = await isolatedPostgres();
    return { db: createPostgres(iso.url), url: iso.url, reopen: async () => createPostgres(iso.url), cleanup: iso.drop };
  }
  // A freshly initialised database (the run's initdb-only image, copied): the migrations below start from nothing.
  const dir = mkdtempSync(join(tmpdir(), "pglite-"));
  copyPgliteImage(dir, "fresh");
  return { db: await createPglite(dir), reopen: () => createPglite(dir), cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
}

forEachBackend("sql store", ["postgres", "pglite"] as const, (name) => {
  let db: SqlDatabase;
  let handle: Awaited<ReturnType<typeof open>>;

  beforeAll(async () => {
    handle = await open(name);
    db = handle.db;
    await db.exec("CREATE TABLE t (id int PRIMARY KEY, n bigint, at timestamptz, doc jsonb, tags text[])");
  });
  afterAll(async () => {
    await db?.close();
    await handle?.cleanup();
  });

  it("maps types the same way on both adapters", async () => {
    const at = new Date("2026-01-02T03:04:05.678Z");
    await db.query("INSERT INTO t VALUES ($1, $2, $3, $4, $5)", [1, 9_007_199_254_740_000, at, { a: [1, "x"] }, ["a", "b"]]);
    const { rows } = await db.query<{ id: number; n: number; at: Date; doc: unknown; tags: string[] }>("SELECT * FROM t WHERE id = 1");
    expect(rows[0]).toEqual({ id: 1, n: 9_007_199_254_740_000, at, doc: { a: [1, "x"] }, tags: ["a", "b"] });
    expect(typeof rows[0].n).toBe("number");
    const count = await db.query<{ c: number }>("SELECT count(*) AS c FROM t");
    expect(count.rows[0].c).toBe(1);
  });

  it("runs a named statement (prepared once per Postgres connection), also after its connection was lost", async () => {
    const named = () => db.query<{ v: number }>("SELECT $1::int + 1 AS v", [41], { name: "sql_test_named" });
    expect((await named()).rows[0].v).toBe(42);
    if (name !== "postgres") return; // PGlite ignores the name
    const pid = await db.transaction(async (tx) => {
      await tx.query("SELECT $1::int + 1 AS v", [1], { name: "sql_test_named" });
      const prepared = await tx.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = 'sql_test_named'");
      expect(prepared.rows[0].n).toBe(1);
      // Twice on the same connection: bound and executed again, not prepared again.
      expect((await tx.query<{ v: number }>("SELECT $1::int + 1 AS v", [2], { name: "sql_test_named" })).rows[0].v).toBe(3);
      return (await tx.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    });
    // Its backend dies (the statement with it), killed from outside the pool; the next connection prepares it again.
    const killer = createPostgres(handle.url!);
    await killer.query("SELECT pg_terminate_backend($1)", [pid]);
    await killer.close();
    // A call that draws the dead connection before the pool noticed gets UNAVAILABLE (retryable); then it works.
    for (let i = 0; ; i++) {
      const r = await named().catch((err: unknown) => err as Error);
      if (!(r instanceof Error)) break;
      expect(r.message).toBe("database unavailable");
      expect(i).toBeLessThan(20);
      await new Promise((res) => setTimeout(res, 50));
    }
    for (let i = 0; i < 5; i++) expect((await named()).rows[0].v).toBe(42);
  });

  it("reports rowCount for writes", async () => {
    const res = await db.query("UPDATE t SET n = n + 1 WHERE id = 1");
    expect(res.rowCount).toBe(1);
    expect((await db.query("UPDATE t SET n = 0 WHERE id = 999")).rowCount).toBe(0);
  });

  it("commits a transaction and rolls one back when it throws", async () => {
    await db.transaction(async (tx) => {
      await tx.query("INSERT INTO t (id) VALUES (2)");
    });
    await expect(
      db.transaction(async (tx) => {
        await tx.query("INSERT INTO t (id) VALUES (3)");
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    const { rows } = await db.query<{ id: number }>("SELECT id FROM t ORDER BY id");
    expect(rows.map((r) => r.id)).toEqual([1, 2]);
  });

  it("exposes the SQLSTATE of a unique violation", async () => {
    const err = await db.query("INSERT INTO t (id) VALUES (1)").catch((e) => e);
    expect(sqlState(err)).toBe(UNIQUE_VIOLATION);
  });

  it("serialises concurrent read-modify-write through row locks", async () => {
    await db.query("INSERT INTO t (id, n) VALUES (10, 0)");
    await Promise.all(
      Array.from({ length: 25 }, () =>
        db.transaction(async (tx) => {
          const { rows } = await tx.query<{ n: number }>("SELECT n FROM t WHERE id = 10 FOR UPDATE");
          await tx.query("UPDATE t SET n = $1 WHERE id = 10", [rows[0].n + 1]);
        }),
      ),
    );
    const { rows } = await db.query<{ n: number }>("SELECT n FROM t WHERE id = 10");
    expect(rows[0].n).toBe(25);
  });

  it("applies the real migrations once and is idempotent across restarts", async () => {
    const migrations = await loadMigrations(MIGRATIONS_DIR);
    expect(migrations.length).toBeGreaterThan(0);
    const first = await migrate(db, migrations);
    expect(first).toEqual(migrations.map((m) => m.name));
    expect(await migrate(db, migrations)).toEqual([]);
    await db.close();
    db = await handle.reopen();
    expect(await migrate(db, migrations)).toEqual([]);
    const { rows } = await db.query<{ c: number }>("SELECT count(*) AS c FROM schema_migrations");
    expect(rows[0].c).toBe(migrations.length);
  });

  it("applies concurrent migrate calls once (several nodes starting together)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mig-"));
    try {
      writeFileSync(join(dir, "9001_conc.sql"), "CREATE TABLE conc_one (id int); CREATE TABLE conc_two (id int);");
      const migrations = await loadMigrations(dir);
      const results = await Promise.all([migrate(db, migrations), migrate(db, migrations), migrate(db, migrations)]);
      // Exactly one caller applied it; the others waited on the lock and found it done.
      expect(results.flat()).toEqual(["9001_conc.sql"]);
      await db.query("SELECT * FROM conc_one, conc_two");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a migration that changed after it was applied", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mig-"));
    try {
      mkdirSync(dir, { recursive: true });
      const real = await loadMigrations(MIGRATIONS_DIR);
      writeFileSync(join(dir, real[0].name), `${real[0].sql}\n-- edited\n`);
      await expect(migrate(db, await loadMigrations(dir))).rejects.toThrow(/changed after it was applied/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

forEachBackend("migrations on a fresh database", ["postgres"] as const, () => {
  it("survives several nodes migrating an empty schema at once", async () => {
    const iso = await isolatedPostgres();
    const dbs = [createPostgres(iso.url), createPostgres(iso.url), createPostgres(iso.url)];
    try {
      const migrations = await loadMigrations(MIGRATIONS_DIR);
      const results = await Promise.all(dbs.map((db) => migrate(db, migrations)));
      expect(results.flat().sort()).toEqual(migrations.map((m) => m.name).sort());
    } finally {
      await Promise.all(dbs.map((db) => db.close()));
      await iso.drop();
    }
  });
});

forEachBackend("postgres pool under saturation", ["postgres"] as const, () => {
  it("answers a health ping on its own connection while every pooled connection is busy, and refuses pooled calls with STORE_BUSY", async () => {
    const iso = await isolatedPostgres();
    const db = createPostgres(iso.url, { max: 2, connectionTimeoutMillis: 300 });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    try {
      // Both pooled connections taken by transactions that wait.
      const busy = [0, 1].map(() => db.transaction(() => held));
      await new Promise((r) => setTimeout(r, 100));
      // A call through the pool waits its bound, then UNAVAILABLE STORE_BUSY (with a retry hint).
      await expect(db.query("SELECT 1")).rejects.toMatchObject({ kind: "unavailable", reason: "STORE_BUSY" });
      // The health ping does not queue behind them: the database is there.
      await expect(db.ping()).resolves.toBeUndefined();
      release();
      await Promise.all(busy);
      await expect(db.query("SELECT 1")).resolves.toMatchObject({ rowCount: 1 });
    } finally {
      release();
      await db.close();
      await iso.drop();
    }
  });
});
