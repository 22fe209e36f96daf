import { join } from "node:path";
import type { Logger } from "pino";
import type { Config } from "../config.ts";
import type { SqlDatabase } from "./sql/sql.ts";
import { createPostgres } from "./sql/postgres.ts";
import { createPglite } from "./sql/pglite.ts";
import { loadMigrations, migrate } from "./sql/migrate.ts";
import { connectMongo, type MongoStore } from "./mongo/mongo.ts";
import type { EphemeralStore } from "./ephemeral/ephemeral.ts";
import { createRedisStore } from "./ephemeral/redis.ts";
import { createMemoryStore } from "./ephemeral/memory.ts";
import { IGNORE_FAULTS, type StoreFaults } from "./faults.ts";

export const MIGRATIONS_DIR = join(import.meta.dirname, "../../migrations");

/** The connections a node holds. Feature stores are built on top of these in app.ts. */
export interface Stores {
  sql: SqlDatabase;
  /** Null when MONGO_URL is unset: message data then lives in `sql`. */
  mongo: MongoStore | null;
  ephemeral: EphemeralStore;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export async function openSql(config: Config, faults: StoreFaults = IGNORE_FAULTS): Promise<SqlDatabase> {
  if (!config.databaseUrl) return createPglite(join(config.dataDir, "pglite"));
  const p = config.databasePool;
  return createPostgres(config.databaseUrl, { max: p.max, connectionTimeoutMillis: p.waitMs, queueMax: p.queueMax, faults });
}

/** Opens every store and applies pending migrations; closes what it opened if any step fails. */
export async function openStores(config: Config, logger: Logger, faults: StoreFaults = IGNORE_FAULTS): Promise<Stores> {
  const opened: { close(): Promise<void> }[] = [];
  try {
    const sql = await openSql(config, faults);
    opened.push(sql);
    const applied = await migrate(sql, await loadMigrations(MIGRATIONS_DIR));
    logger.info({ store: sql.kind, applied }, applied.length ? "migrations applied" : "schema up to date");
    const mongo = config.mongoUrl ? await connectMongo(config.mongoUrl, logger, faults) : null;
    if (mongo) opened.push(mongo);
    const ephemeral = config.redisUrl ? await createRedisStore(config.redisUrl, config.redisPrefix, faults) : createMemoryStore();
    opened.push(ephemeral);
    logger.info({ relational: sql.kind, messages: mongo ? "mongo" : sql.kind, ephemeral: ephemeral.kind }, "stores ready");
    return {
      sql,
      mongo,
      ephemeral,
      async ping() {
        await Promise.all([sql.ping(), mongo?.ping(), ephemeral.ping()]);
      },
      async close() {
        await Promise.allSettled([ephemeral.close(), mongo?.close(), sql.close()]);
      },
    };
  } catch (err) {
    await Promise.allSettled(opened.map((s) => s.close()));
    throw err;
  }
}
