// Entry point: read config once, start the app, stop gracefully on SIGTERM/SIGINT.

import { loadConfig, ConfigError } from "./config.ts";
import { createLogger } from "./shared/logger.ts";
import { startApp } from "./app.ts";

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`config error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel, config.nodeId);
  // Handlers go in before start-up: a signal that arrives while the app is
  // starting (or right after "serving" is logged) must stop it gracefully,
  // not kill it with the default action.
  let app: Awaited<ReturnType<typeof startApp>> | undefined;
  let stopping = false;
  const shutdown = (started: NonNullable<typeof app>) =>
    started.close().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    if (app) void shutdown(app); // else: stopped as soon as start-up finishes
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  try {
    app = await startApp(config, logger);
  } catch (err) {
    logger.fatal({ err }, "start-up failed");
    process.exit(1);
  }
  if (stopping) void shutdown(app);
}

void main();
