// Runs once before all test files. Where a TEST_*_URL is missing and a Docker
// engine answers, it starts that service with testcontainers and exports the
// URL for the test workers (forked after this, so they inherit process.env).

import { existsSync } from "node:fs";

type Stop = () => Promise<unknown>;

function dockerAvailable(): boolean {
  return Boolean(process.env.DOCKER_HOST) || existsSync("/var/run/docker.sock");
}

export default async function setup(): Promise<Stop | void> {
  const wanted = [
    { env: "TEST_DATABASE_URL", image: "postgres:16-alpine", port: 5432 },
    { env: "TEST_MONGO_URL", image: "mongo:7", port: 27017 },
    { env: "TEST_REDIS_URL", image: "redis:7-alpine", port: 6379 },
  ].filter((w) => !process.env[w.env]);
  if (wanted.length === 0 || !dockerAvailable()) return;

  const { GenericContainer, Wait } = await import("testcontainers");
  const stops: Stop[] = [];
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
  return async () => {
    await Promise.allSettled(stops.map((s) => s()));
  };
}
