import { pino, type Logger } from "pino";

/** Structured JSON logs on stdout; secrets in headers or bodies are redacted. */
export function createLogger(level: string, nodeId: string): Logger {
  return pino({
    level,
    base: { node: nodeId },
    redact: ["password", "*.password", "refreshToken", "*.refreshToken", "accessToken", "*.accessToken", "authorization"],
  });
}
