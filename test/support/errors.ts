// Reading errors in tests: a call that must fail, and the field violations of
// a google.rpc.BadRequest detail as grpc-js and Connect clients expose them.

import { ConnectError } from "@connectrpc/connect";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { fromBinary } from "@bufbuild/protobuf";
import { BadRequestSchema, ErrorInfoSchema, type ErrorInfo } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import type { GrpcError } from "./clients.ts";

/** Awaits a call that must fail; returns the error. */
export async function failure<E = unknown>(call: Promise<unknown>): Promise<E> {
  try {
    await call;
  } catch (err) {
    return err as E;
  }
  throw new Error("expected the call to fail, it succeeded");
}

/** Field names of the google.rpc.BadRequest detail of a grpc-js error. */
export function grpcViolations(err: GrpcError): string[] {
  const bin = err.metadata?.get("grpc-status-details-bin")?.[0];
  if (!bin) return [];
  const status = fromBinary(StatusSchema, typeof bin === "string" ? Buffer.from(bin, "base64") : bin);
  return status.details.flatMap((d) => anyUnpack(d, BadRequestSchema)?.fieldViolations.map((v) => v.field) ?? []);
}

/** Field names of the BadRequest detail of a Connect error. */
export function connectViolations(err: unknown): string[] {
  return ConnectError.from(err)
    .findDetails(BadRequestSchema)
    .flatMap((d) => d.fieldViolations.map((v) => v.field));
}

/** The google.rpc.ErrorInfo detail of a grpc-js error (undefined when absent). */
export function grpcErrorInfo(err: GrpcError): ErrorInfo | undefined {
  const bin = err.metadata?.get("grpc-status-details-bin")?.[0];
  if (!bin) return undefined;
  const status = fromBinary(StatusSchema, typeof bin === "string" ? Buffer.from(bin, "base64") : bin);
  for (const d of status.details) {
    const info = anyUnpack(d, ErrorInfoSchema);
    if (info) return info;
  }
  return undefined;
}

/** The google.rpc.ErrorInfo detail of a Connect error. */
export function connectErrorInfo(err: unknown): ErrorInfo | undefined {
  return ConnectError.from(err).findDetails(ErrorInfoSchema)[0];
}

/** Every field violation (field, reason) of a Connect error. */
export function connectViolationDetails(err: unknown): { field: string; reason: string }[] {
  return ConnectError.from(err)
    .findDetails(BadRequestSchema)
    .flatMap((d) => d.fieldViolations.map((v) => ({ field: v.field, reason: v.reason })));
}
