// The conversation lists' page tokens, in the one strict format of
// shared/page-token.ts. The kind prefix makes a token from one list useless
// for another; anything off is INVALID_ARGUMENT on page_token (never a
// database error).

import { decodePageToken, encodePageToken } from "../shared/page-token.ts";
import type { ActivityCursor } from "./types.ts";

export function encodeActivityToken(c: ActivityCursor): string {
  return encodePageToken("conv1", [c.activityMicros, c.id]);
}

export function decodeActivityToken(token: string): ActivityCursor | null {
  const v = decodePageToken("page_token", "conv1", token, ["micros", "uuid"]);
  return v && { activityMicros: v[0], id: v[1] };
}

export function encodeMemberToken(userId: string): string {
  return encodePageToken("mem1", [userId]);
}

export function decodeMemberToken(token: string): string | null {
  return decodePageToken("page_token", "mem1", token, ["uuid"])?.[0] ?? null;
}

export function encodeChannelToken(nameKey: string): string {
  return encodePageToken("chan1", [nameKey]);
}

export function decodeChannelToken(token: string): string | null {
  return decodePageToken("page_token", "chan1", token, ["name_key"])?.[0] ?? null;
}
