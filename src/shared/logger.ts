import { pino, type Logger } from "pino";

/**
 * Structured JSON logs on stdout; secrets in headers or bodies are redacted.
 * Written asynchronously (a line per RPC is logged at info: synchronous writes
 * cost a syscall on the event loop per call); pino flushes what is pending
 * when the process exits.
 */
export function createLogger(level: string, nodeId: string): Logger {
  return pino(
    {
      level,
      base: { node: nodeId },
      redact: ["password", "*.password", "refreshToken", "*.refreshToken", "accessToken", "*.accessToken", "authorization"],
    },
    pino.destination({ dest: 1, sync: false }),
  );
}
