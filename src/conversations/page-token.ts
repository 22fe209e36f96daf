// Opaque page tokens: base64url of "<kind>:<position>". The kind prefix makes a
// token from one list useless for another; every part is validated, and
// anything off is INVALID_ARGUMENT on page_token (never a database error).

import { invalidArgument } from "../shared/errors.ts";
import type { ActivityCursor } from "./types.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MICROS = /^\d{1,16}$/; // < 2^53, so exact as a JS number
const NAME_KEY = /^[a-z0-9][a-z0-9._-]{0,999}$/;

function encode(kind: string, body: string): string {
  return Buffer.from(`${kind}:${body}`, "utf8").toString("base64url");
}

function decode(kind: string, token: string): string {
  const bad = () => invalidArgument("page_token", "malformed or foreign page token; pass next_page_token from the previous page unchanged", "PAGE_TOKEN_INVALID");
  if (token.length > 512 || !/^[A-Za-z0-9_-]+$/.test(token)) throw bad();
  const text = Buffer.from(token, "base64url").toString("utf8");
  if (!text.startsWith(`${kind}:`)) throw bad();
  return text.slice(kind.length + 1);
}

export function encodeActivityToken(c: ActivityCursor): string {
  return encode("conv1", `${c.activityMicros}:${c.id}`);
}

export function decodeActivityToken(token: string): ActivityCursor {
  const body = decode("conv1", token);
  const [micros, id, ...rest] = body.split(":");
  if (rest.length > 0 || !MICROS.test(micros ?? "") || !UUID.test(id ?? "")) throw invalidArgument("page_token", "malformed page token", "PAGE_TOKEN_INVALID");
  return { activityMicros: Number(micros), id };
}

export function encodeMemberToken(userId: string): string {
  return encode("mem1", userId);
}

export function decodeMemberToken(token: string): string {
  const id = decode("mem1", token);
  if (!UUID.test(id)) throw invalidArgument("page_token", "malformed page token", "PAGE_TOKEN_INVALID");
  return id;
}

export function encodeChannelToken(nameKey: string): string {
  return encode("chan1", nameKey);
}

export function decodeChannelToken(token: string): string {
  const key = decode("chan1", token);
  if (!NAME_KEY.test(key)) throw invalidArgument("page_token", "malformed page token", "PAGE_TOKEN_INVALID");
  return key;
}
