// Input rules of the message RPCs. Every failure is INVALID_ARGUMENT naming
// the field (proto field names, with [i] for list elements).

import { invalidArgument } from "../shared/errors.ts";
import { decodePageToken, encodePageToken } from "../shared/page-token.ts";
import { isUuid } from "./ids.ts";
import { emojiProblem } from "./emoji.ts";
import { isWellFormed } from "./text.ts";
import type { Attachment, SearchCursor } from "./types.ts";

export const MAX_ATTACHMENTS = 10;
export const MAX_MENTIONS = 50;
export const MAX_CLIENT_MESSAGE_ID = 64;
export const MAX_URL = 2048;
export const MAX_ATTACHMENT_NAME = 255;
/** 100 GiB: metadata only, but a bound keeps nonsense out. */
export const MAX_ATTACHMENT_BYTES = 100 * 1024 ** 3;
export const DEFAULT_LIST_LIMIT = 50;
export const MAX_LIST_LIMIT = 200;
export const DEFAULT_SEARCH_PAGE = 20;
export const MAX_SEARCH_PAGE = 100;
export const MAX_QUERY_CHARS = 256;
export const MAX_QUERY_TERMS = 8;

const MIME = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/i;
// C0 controls other than tab, newline and carriage return, and DEL.
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
const ANY_CONTROL = /[\u0000-\u001f\u007f]/;

function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Well-formed (no lone surrogates: those cannot be UTF-8) and free of control characters. */
function checkText(field: string, value: string, allowNewlines: boolean): void {
  if (!isWellFormed(value)) throw invalidArgument(field, "must be valid UTF-8 (no lone surrogates)");
  if ((allowNewlines ? CONTROL : ANY_CONTROL).test(value)) throw invalidArgument(field, "must not contain control characters");
}

export function requireUuid(field: string, value: string): string {
  if (value === "") throw invalidArgument(field, "is required");
  if (!isUuid(value)) throw invalidArgument(field, "must be a UUID");
  return value.toLowerCase();
}

export function optionalUuid(field: string, value: string): string | null {
  return value === "" ? null : requireUuid(field, value);
}

/** Content of a message: 1..maxChars code points, not blank unless attachments carry the message. */
export function validateContent(content: string, maxChars: number, hasAttachments: boolean): string {
  checkText("content", content, true);
  if (codePoints(content) > maxChars) throw invalidArgument("content", `must be at most ${maxChars} characters`);
  if (content.trim() === "" && !hasAttachments) throw invalidArgument("content", "must not be empty or only whitespace");
  return content;
}

export function validateClientMessageId(value: string): string {
  if (value === "") throw invalidArgument("client_message_id", "is required");
  checkText("client_message_id", value, false);
  if (codePoints(value) > MAX_CLIENT_MESSAGE_ID) throw invalidArgument("client_message_id", `must be at most ${MAX_CLIENT_MESSAGE_ID} characters`);
  return value;
}

export function validateAttachments(list: Attachment[]): Attachment[] {
  if (list.length > MAX_ATTACHMENTS) throw invalidArgument("attachments", `at most ${MAX_ATTACHMENTS} attachments`);
  return list.map((a, i) => {
    const f = `attachments[${i}]`;
    if (a.url === "") throw invalidArgument(`${f}.url`, "is required");
    if (a.url.length > MAX_URL) throw invalidArgument(`${f}.url`, `must be at most ${MAX_URL} characters`);
    checkText(`${f}.url`, a.url, false);
    let url: URL;
    try {
      url = new URL(a.url);
    } catch {
      throw invalidArgument(`${f}.url`, "must be an absolute URL");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw invalidArgument(`${f}.url`, "must use http or https");
    if (a.name.trim() === "") throw invalidArgument(`${f}.name`, "is required");
    checkText(`${f}.name`, a.name, false);
    if (codePoints(a.name) > MAX_ATTACHMENT_NAME) throw invalidArgument(`${f}.name`, `must be at most ${MAX_ATTACHMENT_NAME} characters`);
    if (!MIME.test(a.mimeType)) throw invalidArgument(`${f}.mime_type`, "must be a media type like image/png");
    if (!Number.isSafeInteger(a.sizeBytes) || a.sizeBytes < 0 || a.sizeBytes > MAX_ATTACHMENT_BYTES) {
      throw invalidArgument(`${f}.size_bytes`, `must be between 0 and ${MAX_ATTACHMENT_BYTES}`);
    }
    return { url: a.url, name: a.name, mimeType: a.mimeType.toLowerCase(), sizeBytes: a.sizeBytes };
  });
}

/** Mention ids: UUIDs, de-duplicated (membership is the service's business). */
export function validateMentions(list: string[]): string[] {
  if (list.length > MAX_MENTIONS) throw invalidArgument("mentions", `at most ${MAX_MENTIONS} mentions`);
  return [...new Set(list.map((id, i) => requireUuid(`mentions[${i}]`, id)))];
}

export function validateEmoji(emoji: string): string {
  const problem = emojiProblem(emoji);
  if (problem) throw invalidArgument("emoji", problem);
  return emoji;
}

export function validateSeq(field: string, seq: number): number {
  if (!Number.isFinite(seq) || seq < 0) throw invalidArgument(field, "must not be negative");
  return Math.min(seq, Number.MAX_SAFE_INTEGER);
}

/**
 * The proto's window: a set after_seq pages oldest first after it (0: from the
 * first message); otherwise newest first before before_seq (unset or 0: from
 * the newest). Both are `optional`, so after_seq 0 is told apart from unset.
 */
export function validateListWindow(
  beforeSeq: number | undefined,
  afterSeq: number | undefined,
  limit: number,
): { direction: "before" | "after"; seq: number; limit: number } {
  const before = validateSeq("before_seq", beforeSeq ?? 0);
  const after = afterSeq === undefined ? undefined : validateSeq("after_seq", afterSeq);
  if (before > 0 && after !== undefined) throw invalidArgument("after_seq", "is exclusive with before_seq");
  if (limit < 0 || limit > MAX_LIST_LIMIT) throw invalidArgument("limit", `must be between 1 and ${MAX_LIST_LIMIT} (0 for ${DEFAULT_LIST_LIMIT})`);
  return { direction: after !== undefined ? "after" : "before", seq: after ?? before, limit: limit === 0 ? DEFAULT_LIST_LIMIT : limit };
}

export function validateSearchQuery(query: string): string {
  checkText("query", query, true); // newlines are just whitespace here
  const text = query.trim().replace(/\s+/g, " ");
  if (text === "") throw invalidArgument("query", "is required");
  if (codePoints(text) > MAX_QUERY_CHARS) throw invalidArgument("query", `must be at most ${MAX_QUERY_CHARS} characters`);
  if (!/[\p{L}\p{N}]/u.test(text)) throw invalidArgument("query", "must contain a letter or a digit");
  if (text.split(" ").length > MAX_QUERY_TERMS) throw invalidArgument("query", `at most ${MAX_QUERY_TERMS} words`);
  return text;
}

export function validatePageSize(size: number): number {
  if (size < 0 || size > MAX_SEARCH_PAGE)
    throw invalidArgument("page_size", `must be between 1 and ${MAX_SEARCH_PAGE} (0 for ${DEFAULT_SEARCH_PAGE})`);
  return size === 0 ? DEFAULT_SEARCH_PAGE : size;
}

// Search page tokens: opaque to clients, a keyset position to us.
export function encodeSearchToken(c: SearchCursor): string {
  return encodePageToken("srch1", [c.createdAt.getTime(), c.seq, c.id.toLowerCase()]);
}

export function decodeSearchToken(token: string): SearchCursor | null {
  const v = decodePageToken("page_token", "srch1", token, ["time_ms", "seq", "uuid"]);
  return v && { createdAt: new Date(v[0]), seq: v[1], id: v[2] };
}
