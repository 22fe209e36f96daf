// Which real services the tests can reach, and per-file isolation on them.
//
// Each backend comes from its TEST_*_URL (set by you, by .ci/run, or by the
// testcontainers global setup). The embedded SQL default and the in-process
// ephemeral store need nothing. A suite whose service is missing is skipped
// with a loud line saying what to set; REQUIRE_ALL_BACKENDS=1 turns that skip
// into a failure.

import { randomBytes } from "node:crypto";
import pg from "pg";
import { MongoClient } from "mongodb";
import { describe, it } from "vitest";

export type SqlBackendName = "postgres" | "pglite";
export type MessageBackendName = "postgres" | "pglite" | "mongo";
export type EphemeralBackendName = "redis" | "memory";

const REQUIRE_ALL = process.env.REQUIRE_ALL_BACKENDS === "1";

export const env = {
  postgres: process.env.TEST_DATABASE_URL || null,
  mongo: process.env.TEST_MONGO_URL || null,
  redis: process.env.TEST_REDIS_URL || null,
};

const HOW_TO: Record<string, string> = {
  postgres: "set TEST_DATABASE_URL=postgres://user@host:5432/db (or run a Docker engine for testcontainers)",
  mongo: "set TEST_MONGO_URL=mongodb://host:27017/ (MongoDB 6+ or FerretDB; or run a Docker engine)",
  redis: "set TEST_REDIS_URL=redis://host:6379 (or run a Docker engine)",
};

export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString("hex")}`;
}

/**
 * Declares one describe block per backend in `names`. Missing services are a
 * loud skip, or a failing test under REQUIRE_ALL_BACKENDS=1.
 */
export function forEachBackend<N extends string>(title: string, names: readonly N[], body: (name: N) => void): void {
  for (const name of names) {
    const missing = (name === "postgres" && !env.postgres) || (name === "mongo" && !env.mongo) || (name === "redis" && !env.redis);
    if (!missing) {
      describe(`${title} [${name}]`, () => body(name));
      continue;
    }
    const line = `SKIPPED ${title} [${name}]: no ${name} service. To run it, ${HOW_TO[name]}.`;
    if (REQUIRE_ALL) {
      describe(`${title} [${name}]`, () => {
        it("has its backend", () => {
          throw new Error(`REQUIRE_ALL_BACKENDS=1 but ${line}`);
        });
      });
    } else {
      console.warn(`\n${"!".repeat(100)}\n!! ${line}\n${"!".repeat(100)}\n`);
      describe.skip(`${title} [${name}] (no service)`, () => body(name));
    }
  }
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
      await client.db(dbName).dropDatabase().catch(() => {});
      await client.close();
    },
  };
}

/** A unique key prefix on the test Redis (keys and channels). */
export function isolatedRedisPrefix(): string {
  return `${uniqueName("t")}:`;
}
