import { Code, ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { BadRequestSchema, RetryInfoSchema, BadRequest_FieldViolationSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AppError, unavailable, type ErrorKind } from "../shared/errors.ts";
import { isStoreConnectionError, STORE_RETRY_AFTER_MS } from "../stores/faults.ts";

const CODES: Record<ErrorKind, Code> = {
  invalid_argument: Code.InvalidArgument,
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  resource_exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
};

/**
 * Turns anything a handler threw into a ConnectError fit for a client:
 * domain errors keep their code and details (field violations, retry delay);
 * anything unexpected becomes INTERNAL with the request id and no internals.
 * `unexpected` is called for those so the edge can log the real error.
 */
export function toConnectError(err: unknown, requestId: string, unexpected: (err: unknown) => void): ConnectError {
  // A store driver's "could not reach it" that no adapter mapped (MongoDB operations): UNAVAILABLE, retry.
  if (isStoreConnectionError(err)) err = unavailable("database unavailable", err, STORE_RETRY_AFTER_MS);
  if (err instanceof AppError) {
    const details = [];
    if (err.violations.length > 0) {
      details.push({
        desc: BadRequestSchema,
        value: create(BadRequestSchema, {
          fieldViolations: err.violations.map((v) => create(BadRequest_FieldViolationSchema, v)),
        }),
      });
    }
    if (err.retryAfterMs !== undefined) {
      details.push({ desc: RetryInfoSchema, value: create(RetryInfoSchema, { retryDelay: durationFromMs(err.retryAfterMs) }) });
    }
    return new ConnectError(err.message, CODES[err.kind], undefined, details);
  }
  if (err instanceof ConnectError) {
    // Deadline and cancellation errors from Connect itself pass through. An
    // INTERNAL or UNKNOWN from inside is someone's bug: hide its message.
    if (err.code === Code.Internal || err.code === Code.Unknown) {
      unexpected(err);
      return new ConnectError(`internal error (request id ${requestId})`, Code.Internal);
    }
    return err;
  }
  unexpected(err);
  return new ConnectError(`internal error (request id ${requestId})`, Code.Internal);
}
