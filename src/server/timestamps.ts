// Client-supplied google.protobuf.Timestamp values, checked once for every handler.

import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { invalidArgument } from "../shared/errors.ts";

/** A client-supplied timestamp as a Date, or INVALID_ARGUMENT (out-of-range values would make an Invalid Date or a store error). */
export function dateFromTimestamp(field: string, ts: Timestamp): Date {
  const d = timestampDate(ts);
  const year = d.getUTCFullYear();
  if (ts.nanos < 0 || ts.nanos > 999_999_999 || !Number.isFinite(d.getTime()) || year < 1 || year > 9999) {
    throw invalidArgument(field, "not a valid timestamp (years 1 to 9999)");
  }
  return d;
}
