// Domain errors. Domain code throws these; the transport edge (server/errors.ts)
// maps them to Connect codes. Nothing here knows about Connect.

export type ErrorKind =
  | "invalid_argument"
  | "unauthenticated"
  | "permission_denied"
  | "not_found"
  | "already_exists"
  | "failed_precondition"
  | "resource_exhausted"
  | "unavailable";

export interface FieldViolation {
  field: string;
  description: string;
}

export class AppError extends Error {
  override name = "AppError";
  readonly kind: ErrorKind;
  readonly violations: FieldViolation[];
  readonly retryAfterMs: number | undefined;

  constructor(kind: ErrorKind, message: string, opts: { violations?: FieldViolation[]; retryAfterMs?: number; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.kind = kind;
    this.violations = opts.violations ?? [];
    this.retryAfterMs = opts.retryAfterMs;
  }
}

export const invalidArgument = (field: string, description: string): AppError =>
  new AppError("invalid_argument", `${field}: ${description}`, { violations: [{ field, description }] });

export const notFound = (what: string): AppError => new AppError("not_found", `${what} not found`);
export const permissionDenied = (message: string): AppError => new AppError("permission_denied", message);
export const alreadyExists = (message: string): AppError => new AppError("already_exists", message);
export const unauthenticated = (message = "authentication required"): AppError => new AppError("unauthenticated", message);
export const failedPrecondition = (message: string): AppError => new AppError("failed_precondition", message);
export const resourceExhausted = (message: string, retryAfterMs?: number): AppError =>
  new AppError("resource_exhausted", message, { retryAfterMs });
export const unavailable = (message: string, cause?: unknown, retryAfterMs?: number): AppError =>
  new AppError("unavailable", message, { cause, retryAfterMs });
