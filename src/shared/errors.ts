// Domain errors. Domain code throws these; the transport edge (server/errors.ts)
// maps them to Connect codes with google.rpc.ErrorInfo. Nothing here knows about
// Connect. Every AppError has a reason from the catalogue (shared/reasons.ts),
// and the reason decides the code.

import { REASONS, type ErrorKind, type Reason, type ReasonOf } from "./reasons.ts";

export type { ErrorKind, Reason, ReasonOf } from "./reasons.ts";

export interface FieldViolation {
  field: string;
  description: string;
  /** The rule that failed (protovalidate rule id such as `string.uuid`), when known. */
  reason?: string;
}

export interface AppErrorOptions {
  violations?: FieldViolation[];
  retryAfterMs?: number;
  /** ErrorInfo.metadata: small machine-readable facts (never secrets, never internals). */
  metadata?: Record<string, string>;
  cause?: unknown;
}

export class AppError extends Error {
  override name = "AppError";
  readonly reason: Reason;
  readonly kind: ErrorKind;
  readonly violations: FieldViolation[];
  readonly retryAfterMs: number | undefined;
  readonly metadata: Record<string, string>;

  constructor(reason: Reason, message: string, opts: AppErrorOptions = {}) {
    super(message, { cause: opts.cause });
    this.reason = reason;
    this.kind = REASONS[reason].kind;
    this.violations = opts.violations ?? [];
    this.retryAfterMs = opts.retryAfterMs;
    this.metadata = opts.metadata ?? {};
  }
}

/** One bad field. INVALID_FIELD unless a more precise reason applies. */
export const invalidArgument = (field: string, description: string, reason: ReasonOf<"invalid_argument"> = "INVALID_FIELD"): AppError =>
  new AppError(reason, `${field}: ${description}`, { violations: [{ field, description }] });

/** Several bad fields at once (every violation of a request in one error). */
export const invalidFields = (violations: FieldViolation[]): AppError =>
  new AppError(
    "INVALID_FIELD",
    violations.length === 1 ? `${violations[0].field}: ${violations[0].description}` : `${violations.length} invalid fields`,
    { violations },
  );

export const notFound = (reason: ReasonOf<"not_found">, message: string): AppError => new AppError(reason, message);
export const permissionDenied = (reason: ReasonOf<"permission_denied">, message: string): AppError => new AppError(reason, message);
export const alreadyExists = (reason: ReasonOf<"already_exists">, message: string): AppError => new AppError(reason, message);
export const unauthenticated = (reason: ReasonOf<"unauthenticated">, message: string, metadata?: Record<string, string>): AppError =>
  new AppError(reason, message, { metadata });
export const failedPrecondition = (reason: ReasonOf<"failed_precondition">, message: string, metadata?: Record<string, string>): AppError =>
  new AppError(reason, message, { metadata });
export const resourceExhausted = (reason: ReasonOf<"resource_exhausted">, message: string, retryAfterMs?: number): AppError =>
  new AppError(reason, message, { retryAfterMs, metadata: retryAfterMs === undefined ? {} : { retry_after_ms: String(retryAfterMs) } });
export const unavailable = (
  reason: ReasonOf<"unavailable">,
  message: string,
  cause?: unknown,
  retryAfterMs?: number,
  metadata: Record<string, string> = {},
): AppError =>
  new AppError(reason, message, {
    cause,
    retryAfterMs,
    metadata: retryAfterMs === undefined ? metadata : { ...metadata, retry_after_ms: String(retryAfterMs) },
  });
