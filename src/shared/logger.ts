import { pino, type Logger } from "pino";

/**
 * Structured JSON logs on stdout; secrets in headers or bodies are redacted.
 * Written asynchronously and in batches: a line per RPC is logged at info, and
 * a write(2) per line was 14% of the server's CPU under a SendMessage load
 * (bench/outbox.ts with --cpu-prof). Lines are held until 4 KiB are pending or
 * FLUSH_MS has passed, whichever comes first, so a quiet node's lines still
 * appear within FLUSH_MS; pino flushes what is pending when the process exits.
 */
const FLUSH_MS = 100;

export function createLogger(level: string, nodeId: string): Logger {
  return pino(
    {
      level,
      base: { node: nodeId },
      redact: ["password", "*.password", "refreshToken", "*.refreshToken", "accessToken", "*.accessToken", "authorization"],
    },
    pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: FLUSH_MS }),
  );
}
