// Runs once before all test files, in the main Vitest process; the test
// workers are forked after it and inherit what it puts in process.env.
//
// 1. Where a TEST_*_URL is missing and a Docker engine answers, it starts that
//    service with testcontainers and exports the URL.
// 2. It builds the PGlite images of the run: the migrated one (TEST_PGLITE_IMAGE),
//    which every embedded database in the tests starts from, and the fresh one
//    (TEST_PGLITE_FRESH_IMAGE, initdb only) for the migration tests.
// 3. It hashes the test password once (TEST_PASSWORD_HASH), so seeded users
//    can log in without each paying argon2id.
// 4. It reserves the folder for the run's one web build (TEST_WEB_BUILD): the
//    first browser test file builds the app there, the others reuse it.

import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildPgliteImages, PGLITE_FRESH_IMAGE_ENV, PGLITE_IMAGE_ENV } from "./pglite-image.ts";
import { PASSWORD_HASH_ENV, hashTestPassword } from "./seed.ts";
import { WEB_BUILD_ENV } from "./web-build.ts";

type Stop = () => Promise<unknown>;

function dockerAvailable(): boolean {
  return Boolean(process.env.DOCKER_HOST) || existsSync("/var/run/docker.sock");
}

async function startContainers(stops: Stop[]): Promise<void> {
  const wanted = [
    { env: "TEST_DATABASE_URL", image: "postgres:16-alpine", port: 5432 },
    { env: "TEST_MONGO_URL", image: "mongo:7", port: 27017 },
    { env: "TEST_REDIS_URL", image: "redis:7-alpine", port: 6379 },
  ].filter((w) => !process.env[w.env]);
  if (wanted.length === 0 || !dockerAvailable()) return;

  const { GenericContainer, Wait } = await import("testcontainers");
  for (const w of wanted) {
    try {
      let c = new GenericContainer(w.image).withExposedPorts(w.port);
      if (w.env === "TEST_DATABASE_URL") {
        c = c.withEnvironment({ POSTGRES_PASSWORD: "postgres" }).withWaitStrategy(Wait.forLogMessage(/ready to accept connections/, 2));
      }
      const started = await c.start();
      const host = started.getHost();
      const port = started.getMappedPort(w.port);
      process.env[w.env] =
        w.env === "TEST_DATABASE_URL"
          ? `postgres://postgres:postgres@${host}:${port}/postgres`
          : w.env === "TEST_MONGO_URL"
            ? `mongodb://${host}:${port}/`
            : `redis://${host}:${port}`;
      stops.push(() => started.stop());
      console.log(`[testcontainers] ${w.image} for ${w.env}`);
    } catch (err) {
      console.warn(`[testcontainers] could not start ${w.image}: ${(err as Error).message}`);
    }
  }
}

export default async function setup(): Promise<Stop> {
  const stops: Stop[] = [];
  const imageRoot = mkdtempSync(join(tmpdir(), "chat-test-image-"));
  stops.push(async () => rmSync(imageRoot, { recursive: true, force: true }));
  const image = join(imageRoot, "pglite");
  const fresh = join(imageRoot, "pglite-fresh");
  const webRoot = mkdtempSync(join(tmpdir(), "chat-test-web-"));
  stops.push(async () => rmSync(webRoot, { recursive: true, force: true }));
  process.env[WEB_BUILD_ENV] = webRoot;
  await Promise.all([
    startContainers(stops),
    buildPgliteImages({ fresh, migrated: image }).then(() => {
      process.env[PGLITE_IMAGE_ENV] = image;
      process.env[PGLITE_FRESH_IMAGE_ENV] = fresh;
    }),
    hashTestPassword().then((hash) => {
      process.env[PASSWORD_HASH_ENV] = hash;
    }),
  ]);
  return async () => {
    await Promise.allSettled(stops.map((s) => s()));
  };
}
