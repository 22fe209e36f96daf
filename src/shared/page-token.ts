// Page tokens, every list's: base64url of "<kind>:<part>:<part>…". One strict
// decoder for all of them, so a token is either exactly what this server
// issued (right kind, right number of parts, each part in range) or
// INVALID_ARGUMENT on page_token; a value a store cannot take (a time past
// year 9999, a number past 2^53, a non-UUID) never reaches one.

import { invalidArgument } from "./errors.ts";

/** What one part of a token may be. */
export type TokenPart =
  | "uuid" // lower-case canonical UUID
  | "time_ms" // milliseconds since the epoch, 0 .. 9999-12-31
  | "micros" // microseconds since the epoch, 0 .. 2^53-1
  | "seq" // non-negative safe integer
  | "flag" // 0 or 1
  | "name_key" // a lower-case channel name key
  | "username" // a stored (lower-case) username
  | "text_hex"; // any short text (up to 128 UTF-8 bytes), hex of its UTF-8 (so ':' inside it is no separator)

type PartValue<P extends TokenPart> = P extends "uuid" | "name_key" | "username" | "text_hex" ? string : number;
export type TokenValues<K extends readonly TokenPart[]> = { [I in keyof K]: PartValue<K[I]> };

const MAX_TOKEN_CHARS = 512;
/** 9999-12-31T23:59:59.999Z: every store (Postgres timestamptz, BSON dates, JS Date) takes it. */
export const MAX_TOKEN_TIME_MS = 253_402_300_799_999;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DIGITS = /^(0|[1-9]\d{0,15})$/;
const NAME_KEY = /^[a-z0-9][a-z0-9._-]{0,999}$/;
/** As the users table's CHECK constraint (migrations/0002_auth.sql). */
const USERNAME = /^[a-z0-9_.]{3,32}$/;
const HEX_TEXT = /^(?:[0-9a-f]{2}){1,128}$/;
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** "text_hex": the UTF-8 bytes of a short text in lower-case hex. */
export function textToHex(text: string): string {
  return Buffer.from(text, "utf8").toString("hex");
}

function hexToText(hex: string): string | null {
  if (!HEX_TEXT.test(hex)) return null;
  try {
    return UTF8.decode(Buffer.from(hex, "hex"));
  } catch {
    return null;
  }
}

function checkPart(p: TokenPart, text: string): string | number | null {
  switch (p) {
    case "uuid":
      return UUID.test(text) ? text : null;
    case "name_key":
      return NAME_KEY.test(text) ? text : null;
    case "username":
      return USERNAME.test(text) ? text : null;
    case "text_hex":
      return hexToText(text);
    case "flag":
      return text === "0" || text === "1" ? Number(text) : null;
    default: {
      if (!DIGITS.test(text)) return null;
      const n = Number(text);
      if (!Number.isSafeInteger(n)) return null;
      if (p === "time_ms" && n > MAX_TOKEN_TIME_MS) return null;
      return n;
    }
  }
}

export function encodePageToken(kind: string, parts: readonly (string | number)[]): string {
  return Buffer.from(`${kind}:${parts.join(":")}`, "utf8").toString("base64url");
}

/**
 * Decodes a token issued by encodePageToken with the same kind and part
 * shapes; "" is no token (null). Anything else throws INVALID_ARGUMENT on
 * `field`.
 */
export function decodePageToken<const K extends readonly TokenPart[]>(field: string, kind: string, token: string, parts: K): TokenValues<K> | null {
  if (token === "") return null;
  const bad = () => invalidArgument(field, "is not a token from a previous page; pass next_page_token back unchanged", "PAGE_TOKEN_INVALID");
  if (token.length > MAX_TOKEN_CHARS || !/^[A-Za-z0-9_-]+$/.test(token)) throw bad();
  const text = Buffer.from(token, "base64url").toString("utf8");
  if (!text.startsWith(`${kind}:`)) throw bad();
  const raw = text.slice(kind.length + 1).split(":");
  if (raw.length !== parts.length) throw bad();
  const out: (string | number)[] = [];
  for (let i = 0; i < parts.length; i++) {
    const v = checkPart(parts[i], raw[i]);
    if (v === null) throw bad();
    out.push(v);
  }
  return out as TokenValues<K>;
}
