import { Code, ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { BadRequestSchema, BadRequest_FieldViolationSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AppError, unavailable } from "../shared/errors.ts";
import { isStoreConnectionError, STORE_RETRY_AFTER_MS } from "../stores/faults.ts";
import { ERROR_DOMAIN, REASONS, type ErrorKind, type Reason } from "../shared/reasons.ts";

const CODES: Record<ErrorKind, Code> = {
  invalid_argument: Code.InvalidArgument,
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  resource_exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
  canceled: Code.Canceled,
  deadline_exceeded: Code.DeadlineExceeded,
  unimplemented: Code.Unimplemented,
  internal: Code.Internal,
};

/** The status code of a catalogued reason. */
export const codeOf = (reason: Reason): Code => CODES[REASONS[reason].kind];

/** Reasons for the errors Connect itself raises (decoding, limits, deadlines, unknown RPCs). */
const TRANSPORT_REASONS: Partial<Record<Code, Reason>> = {
  [Code.Canceled]: "CANCELED",
  [Code.DeadlineExceeded]: "DEADLINE_EXCEEDED",
  [Code.Unimplemented]: "UNIMPLEMENTED",
  [Code.InvalidArgument]: "REQUEST_MALFORMED",
  [Code.ResourceExhausted]: "REQUEST_TOO_LARGE",
  [Code.Unavailable]: "UNAVAILABLE",
};

const errorInfo = (reason: Reason, metadata: Record<string, string> = {}) => ({
  desc: ErrorInfoSchema,
  value: create(ErrorInfoSchema, { reason, domain: ERROR_DOMAIN, metadata }),
});

function internal(requestId: string): ConnectError {
  return new ConnectError(`internal error (request id ${requestId})`, Code.Internal, undefined, [errorInfo("INTERNAL", { request_id: requestId })]);
}

/** The ErrorInfo reason a ConnectError carries, if any. */
export function reasonOf(err: ConnectError): string | undefined {
  return err.findDetails(ErrorInfoSchema).find((i) => i.domain === ERROR_DOMAIN)?.reason;
}

/** A request message that does not decode: INVALID_ARGUMENT, REQUEST_MALFORMED, with a BadRequest detail. */
export function invalidMessageError(detail: string): ConnectError {
  const description = `the request message does not decode: ${detail}`.slice(0, 300);
  return toConnectError(new AppError("REQUEST_MALFORMED", description, { violations: [{ field: "request", description }] }), "", () => {});
}

/**
 * connect-es reports a request message it cannot decode as INTERNAL
 * ("parse binary: …", or a compressed frame with no encoding); streams see it
 * when they read the next message. It is the client's fault: INVALID_ARGUMENT.
 * Returns null for any other error.
 */
export function clientDecodeError(err: unknown): ConnectError | null {
  if (!(err instanceof ConnectError) || err.code !== Code.Internal) return null;
  if (err.rawMessage.startsWith("parse binary: ")) return invalidMessageError(err.rawMessage.slice("parse binary: ".length));
  if (err.rawMessage.startsWith("received compressed envelope")) return invalidMessageError("a compressed message with no grpc-encoding");
  return null;
}

/**
 * Turns anything a handler threw into a ConnectError fit for a client: every
 * one carries google.rpc.ErrorInfo (domain chat.v1, a catalogued reason).
 * Domain errors keep their code and details (field violations, retry delay);
 * anything unexpected becomes INTERNAL with the request id and no internals.
 * `unexpected` is called for those so the edge can log the real error.
 */
export function toConnectError(err: unknown, requestId: string, unexpected: (err: unknown) => void): ConnectError {
  // A store driver's "could not reach it" that no adapter mapped (MongoDB operations): UNAVAILABLE, retry.
  if (isStoreConnectionError(err)) err = unavailable("STORE_UNAVAILABLE", "database unavailable", err, STORE_RETRY_AFTER_MS, { store: "mongo" });
  if (err instanceof AppError) {
    const details = [errorInfo(err.reason, err.metadata)];
    if (err.violations.length > 0) {
      details.push({
        desc: BadRequestSchema,
        value: create(BadRequestSchema, {
          fieldViolations: err.violations.map((v) =>
            create(BadRequest_FieldViolationSchema, { field: v.field, description: v.description, reason: v.reason ?? "" }),
          ),
        }),
      } as never);
    }
    if (err.retryAfterMs !== undefined) {
      details.push({ desc: RetryInfoSchema, value: create(RetryInfoSchema, { retryDelay: durationFromMs(err.retryAfterMs) }) } as never);
    }
    return new ConnectError(err.message, codeOf(err.reason), undefined, details);
  }
  if (err instanceof ConnectError) {
    const decode = clientDecodeError(err);
    if (decode) return decode;
    // Already mapped (e.g. thrown again by an outer layer): keep it.
    if (reasonOf(err) !== undefined) return err;
    // Deadline, cancellation, decoding errors from Connect itself get their
    // transport reason. An INTERNAL or UNKNOWN from inside is someone's bug:
    // hide its message. Any other code must come from an AppError.
    const reason = TRANSPORT_REASONS[err.code];
    if (reason === undefined) {
      unexpected(err);
      return internal(requestId);
    }
    err.details.push(errorInfo(reason));
    return err;
  }
  unexpected(err);
  return internal(requestId);
}
