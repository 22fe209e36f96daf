// Which real services the tests can reach, and per-file isolation on them.
//
// Each backend comes from its TEST_*_URL (set by you, by .ci/run, or by the
// testcontainers global setup). The embedded defaults (PGlite, the in-process
// ephemeral store) need nothing. A suite whose service is missing is skipped,
// its title saying which variable enables it; the summary reporter names every
// such suite in one line at the end. REQUIRE_ALL_BACKENDS=1 turns that skip
// into a failure.

import { randomBytes } from "node:crypto";
import pg from "pg";
import { MongoClient } from "mongodb";
import { describe, it } from "vitest";

export type SqlBackendName = "postgres" | "pglite";
export type MessageBackendName = "postgres" | "pglite" | "mongo";
export type EphemeralBackendName = "redis" | "memory";
/** The whole server on one kind of stores: the embedded default, or Postgres + Redis. */
export type ServerBackendName = "embedded" | "postgres+redis";

const REQUIRE_ALL = process.env.REQUIRE_ALL_BACKENDS === "1";

export const env = {
  postgres: process.env.TEST_DATABASE_URL || null,
  mongo: process.env.TEST_MONGO_URL || null,
  redis: process.env.TEST_REDIS_URL || null,
};

const VARIABLE = { postgres: "TEST_DATABASE_URL", mongo: "TEST_MONGO_URL", redis: "TEST_REDIS_URL" } as const;
type Service = keyof typeof VARIABLE;

/**
 * For long server-level suites that need not run twice: Postgres + Redis when
 * both are configured (CI), else the embedded default. Never skipped.
 */
export function bestServerBackend(): ServerBackendName {
  return env.postgres && env.redis ? "postgres+redis" : "embedded";
}

/** The services a backend name stands for (names not listed here need none: pglite, memory, embedded). */
const SERVICES: Record<string, Service[]> = {
  postgres: ["postgres"],
  mongo: ["mongo"],
  redis: ["redis"],
  "postgres+redis": ["postgres", "redis"],
};

/** The variables that are missing for `name` (empty when it can run here). */
export function missingFor(name: string, extra: Service[] = []): string[] {
  return [...new Set([...(SERVICES[name] ?? []), ...extra])].filter((s) => !env[s]).map((s) => VARIABLE[s]);
}

/** The suffix a skipped suite carries; the summary reporter reads it back. */
export function needsMarker(variables: string[]): string {
  return `(needs ${variables.join(" and ")})`;
}

/**
 * Declares one describe block per backend in `names`. A backend whose service
 * is missing is a skip named in the closing summary, or a failing test under
 * REQUIRE_ALL_BACKENDS=1. `opts.alsoNeeds`: services every variant needs
 * (a multi-node suite on Postgres also needs Redis, shared by its nodes).
 */
export function forEachBackend<N extends string>(
  title: string,
  names: readonly N[],
  body: (name: N) => void,
  opts: { alsoNeeds?: Service[] } = {},
): void {
  for (const name of names) {
    const missing = missingFor(name, opts.alsoNeeds ?? []);
    if (missing.length === 0) {
      describe(`${title} [${name}]`, () => body(name));
      continue;
    }
    if (REQUIRE_ALL) {
      describe(`${title} [${name}]`, () => {
        it("has its backend", () => {
          throw new Error(`REQUIRE_ALL_BACKENDS=1 but ${missing.join(" and ")} is not set: ${HOW_TO}`);
        });
      });
    } else {
      describe.skip(`${title} [${name}] ${needsMarker(missing)}`, () => body(name));
    }
  }
}

/** How to get the services (printed with a REQUIRE_ALL_BACKENDS failure; the summary line says the same). */
export const HOW_TO =
  "TEST_DATABASE_URL=postgres://user@host:5432/db, TEST_REDIS_URL=redis://host:6379, TEST_MONGO_URL=mongodb://host:27017/ (MongoDB 6+ or FerretDB); or run a Docker engine for testcontainers";

export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString("hex")}`;
}

/** A fresh schema on the test Postgres; the URL selects it through search_path. */
export async function isolatedPostgres(): Promise<{ url: string; drop(): Promise<void> }> {
  if (!env.postgres) throw new Error("TEST_DATABASE_URL is not set");
  const schema = uniqueName("t");
  const client = new pg.Client({ connectionString: env.postgres });
  await client.connect();
  await client.query(`CREATE SCHEMA ${schema}`);
  await client.end();
  const url = new URL(env.postgres);
  url.searchParams.set("options", `-c search_path=${schema}`);
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: env.postgres! });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    },
  };
}

/** A fresh database on the test MongoDB-protocol server. */
export async function isolatedMongo(): Promise<{ url: string; drop(): Promise<void> }> {
  if (!env.mongo) throw new Error("TEST_MONGO_URL is not set");
  const dbName = uniqueName("t");
  const url = new URL(env.mongo);
  url.pathname = `/${dbName}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new MongoClient(url.toString(), { serverSelectionTimeoutMS: 5000 });
      await client.connect();
      await client
        .db(dbName)
        .dropDatabase()
        .catch(() => {});
      await client.close();
    },
  };
}

/** A unique key prefix on the test Redis (keys and channels). */
export function isolatedRedisPrefix(): string {
  return `${uniqueName("t")}:`;
}
