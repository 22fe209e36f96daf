import { MongoClient, type Db, type IndexDescription } from "mongodb";
import type { Logger } from "pino";
import { IGNORE_FAULTS, type StoreFaults } from "../faults.ts";

/**
 * What the connected MongoDB-protocol server can do. Real MongoDB 6+ can do
 * everything (transactions and change streams need a replica set); FerretDB
 * 1.x has no TTL or text indexes, transactions or change streams. Stores read
 * these flags and degrade as docs/STORES.md describes, instead of failing.
 */
export interface MongoCapabilities {
  server: "mongodb" | "ferretdb";
  version: string;
  textIndex: boolean;
  ttlIndex: boolean;
  transactions: boolean;
  changeStreams: boolean;
  /**
   * Whether single-document updates are atomic under concurrency. MongoDB: yes.
   * FerretDB 1.x: no — concurrent $inc or conditional updates of one document
   * lose writes (measured: 30 concurrent $inc left 2); only inserts under a
   * unique index are atomic. Stores that must be exact under concurrency on
   * every server use insert-only documents.
   */
  atomicUpdates: boolean;
}

export interface MongoStore {
  client: MongoClient;
  db: Db;
  capabilities: MongoCapabilities;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export async function connectMongo(url: string, logger: Logger, faults: StoreFaults = IGNORE_FAULTS): Promise<MongoStore> {
  const client = new MongoClient(url, {
    serverSelectionTimeoutMS: 5_000,
    connectTimeoutMS: 5_000,
    maxPoolSize: 50,
    // The database names the deployment; a URL without one uses "chat".
    appName: "chat-backend",
  });
  // The driver emits no 'error' on the client: an operation on a lost
  // connection rejects (MongoNetworkError and kin, answered UNAVAILABLE at the
  // edge: isStoreConnectionError) and the pool is cleared and refilled. A
  // cleared pool is what a loss looks like from here; count it.
  // Topology errors (an incompatible server after a failover) are re-emitted here as 'error'.
  client.on("error", (err) => faults.connectionLost("mongo", err));
  client.on("connectionPoolCleared", (ev) => faults.connectionLost("mongo", new Error(`pool for ${ev.address} cleared`)));
  await client.connect();
  const db = client.db(new URL(url).pathname.replace(/^\//, "") || "chat");
  const capabilities = await detectCapabilities(db);
  logger.info({ mongo: capabilities }, "mongo connected");
  if (capabilities.server === "ferretdb") {
    logger.warn(
      "MongoDB-protocol server is FerretDB: no TTL/text indexes, transactions or change streams; " +
        "no atomic concurrent updates; using the documented fallbacks (periodic expiry sweep, regex search, insert-only counters)",
    );
  }
  return {
    client,
    db,
    capabilities,
    async ping() {
      await db.command({ ping: 1 });
    },
    async close() {
      await client.close();
    },
  };
}

export async function detectCapabilities(db: Db): Promise<MongoCapabilities> {
  const admin = db.admin();
  const build = (await admin.command({ buildInfo: 1 })) as { version?: string; ferretdbVersion?: string };
  if (build.ferretdbVersion) {
    return {
      server: "ferretdb",
      version: build.ferretdbVersion,
      textIndex: false,
      ttlIndex: false,
      transactions: false,
      changeStreams: false,
      atomicUpdates: false,
    };
  }
  const version = build.version ?? "0";
  const major = Number(version.split(".")[0]);
  if (!(major >= 6)) throw new Error(`MongoDB ${version} is too old: 6.0 or newer is required`);
  const hello = (await admin.command({ hello: 1 })) as { setName?: string; msg?: string };
  const replicated = Boolean(hello.setName) || hello.msg === "isdbgrid";
  return { server: "mongodb", version, textIndex: true, ttlIndex: true, transactions: replicated, changeStreams: replicated, atomicUpdates: true };
}

/**
 * Creates indexes idempotently (createIndexes with the same spec is a no-op).
 * TTL and text indexes are left out where the server lacks them; the caller
 * then relies on its fallback (sweepExpired for TTL).
 */
export async function ensureIndexes(store: MongoStore, collection: string, specs: IndexDescription[]): Promise<void> {
  const caps = store.capabilities;
  const usable = specs.filter((s) => {
    if (s.expireAfterSeconds !== undefined && !caps.ttlIndex) return false;
    if (Object.values(s.key).includes("text") && !caps.textIndex) return false;
    return true;
  });
  // One index per call: FerretDB 1.24 drops the connection when a createIndexes
  // naming several already existing indexes is repeated (a second node or a
  // restart then cannot start); one at a time is idempotent on every server.
  for (const spec of usable) await store.db.collection(collection).createIndexes([spec]);
}

/** The TTL fallback: delete documents whose `field` (a Date) has passed. */
export async function sweepExpired(store: MongoStore, collection: string, field: string, now = new Date()): Promise<number> {
  const res = await store.db.collection(collection).deleteMany({ [field]: { $lt: now } });
  return res.deletedCount;
}
