// Small helpers for the auth tests: catching gRPC errors and reading their
// google.rpc details the way a native client does.

import { fromBinary } from "@bufbuild/protobuf";
import { anyUnpack, durationMs } from "@bufbuild/protobuf/wkt";
import { ConnectError } from "@connectrpc/connect";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { BadRequestSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { SqlDatabase } from "../../src/stores/sql/sql.ts";
import type { GrpcError } from "../support/clients.ts";

/** Awaits a call that must fail and returns its grpc-js error. */
export async function grpcFailure(call: Promise<unknown>): Promise<GrpcError> {
  try {
    await call;
  } catch (err) {
    return err as GrpcError;
  }
  throw new Error("expected the call to fail, it succeeded");
}

/** Awaits a call that must fail and returns its ConnectError. */
export async function connectFailure(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail, it succeeded");
}

/** Field names from the BadRequest detail in `grpc-status-details-bin`. */
export function violatedFields(err: GrpcError): string[] {
  const status = statusOf(err);
  const fields: string[] = [];
  for (const d of status?.details ?? []) {
    const br = anyUnpack(d, BadRequestSchema);
    if (br) fields.push(...br.fieldViolations.map((v) => v.field));
  }
  return fields;
}

/** The RetryInfo delay in ms from `grpc-status-details-bin`, if any. */
export function retryDelayMs(err: GrpcError): number | undefined {
  for (const d of statusOf(err)?.details ?? []) {
    const ri = anyUnpack(d, RetryInfoSchema);
    if (ri?.retryDelay) return durationMs(ri.retryDelay);
  }
  return undefined;
}

function statusOf(err: GrpcError) {
  const bin = err.metadata?.get("grpc-status-details-bin")?.[0];
  if (!bin) return undefined;
  return fromBinary(StatusSchema, typeof bin === "string" ? Buffer.from(bin, "base64") : bin);
}

export interface AuditRow {
  actor_id: string | null;
  action: string;
  entity_type: string;
  entity_id: string;
  metadata: Record<string, unknown>;
  client_address: string | null;
}

export async function auditRows(sql: SqlDatabase, where: { action?: string; entityId?: string; actorId?: string } = {}): Promise<AuditRow[]> {
  const { rows } = await sql.query<AuditRow>(
    `SELECT actor_id, action, entity_type, entity_id, metadata, client_address FROM audit_log
     WHERE ($1::text IS NULL OR action = $1) AND ($2::text IS NULL OR entity_id = $2) AND ($3::uuid IS NULL OR actor_id = $3)
     ORDER BY id`,
    [where.action ?? null, where.entityId ?? null, where.actorId ?? null],
  );
  return rows;
}

/** Polls until `check` returns a truthy value (no fixed sleeps in assertions). */
export async function eventually<T>(check: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
