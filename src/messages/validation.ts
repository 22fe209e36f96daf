// What is left of the message RPCs' input checks once the proto's rules
// (proto/chat/v1/message.proto, enforced by server/validation.ts before any
// handler runs) have passed: normalisation, and the checks that need
// configuration (MESSAGE_MAX_CHARS) or something the rules cannot say (one
// emoji grapheme). Shape checks (UUIDs, lengths, control characters, URLs,
// ranges) live in the proto only.

import { invalidArgument } from "../shared/errors.ts";
import { decodePageToken, encodePageToken, textToHex } from "../shared/page-token.ts";
import { emojiProblem } from "./emoji.ts";
import type { Attachment, ReactorCursor, SearchCursor } from "./types.ts";

export const DEFAULT_LIST_LIMIT = 50;
export const DEFAULT_SEARCH_PAGE = 20;
export const DEFAULT_REACTIONS_PAGE = 100;

function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** The canonical (lower-case) form of an id the rules accepted as a UUID. */
export const canonicalId = (id: string): string => id.toLowerCase();

/** An optional id: "" is none. */
export const optionalId = (id: string): string | null => (id === "" ? null : id.toLowerCase());

/** MESSAGE_MAX_CHARS (configuration), in code points. */
export function checkContentLength(content: string, maxChars: number): string {
  if (codePoints(content) > maxChars) throw invalidArgument("content", `must be at most ${maxChars} characters`);
  return content;
}

/** An edit keeps a message non-blank unless the stored message has attachments (state). */
export function checkEditedContent(content: string, hasAttachments: boolean): void {
  if (content.trim() === "" && !hasAttachments) throw invalidArgument("content", "must not be empty or only whitespace");
}

export function normalizeAttachments(list: Attachment[]): Attachment[] {
  return list.map((a) => ({ url: a.url, name: a.name, mimeType: a.mimeType.toLowerCase(), sizeBytes: a.sizeBytes }));
}

/** Mention ids, de-duplicated (membership is the service's business). */
export function normalizeMentions(list: string[]): string[] {
  return [...new Set(list.map(canonicalId))];
}

/** One emoji grapheme or a :shortcode: (grapheme segmentation is beyond the proto's rules). */
export function validateEmoji(emoji: string): string {
  const problem = emojiProblem(emoji);
  if (problem) throw invalidArgument("emoji", problem);
  return emoji;
}

const clampSeq = (seq: number): number => Math.min(seq, Number.MAX_SAFE_INTEGER);

/**
 * The proto's window: a set after_seq pages oldest first after it (0: from the
 * first message); otherwise newest first before before_seq (unset or 0: from
 * the newest). Both are `optional`, so after_seq 0 is told apart from unset;
 * the rules (after_seq.exclusive, limit 0 to 200) have passed.
 */
export function listWindow(
  beforeSeq: number | undefined,
  afterSeq: number | undefined,
  limit: number,
): { direction: "before" | "after"; seq: number; limit: number } {
  const before = clampSeq(beforeSeq ?? 0);
  const after = afterSeq === undefined ? undefined : clampSeq(afterSeq);
  return { direction: after !== undefined ? "after" : "before", seq: after ?? before, limit: limit === 0 ? DEFAULT_LIST_LIMIT : limit };
}

export const readUpTo = clampSeq;

/** The query as searched: trimmed, runs of whitespace as one space. */
export function normalizeSearchQuery(query: string): string {
  return query.trim().replace(/\s+/g, " ");
}

export const searchPageSize = (size: number): number => (size === 0 ? DEFAULT_SEARCH_PAGE : size);

// Search page tokens: opaque to clients, a keyset position to us.
export function encodeSearchToken(c: SearchCursor): string {
  return encodePageToken("srch1", [c.createdAt.getTime(), c.seq, c.id.toLowerCase()]);
}

export function decodeSearchToken(token: string): SearchCursor | null {
  const v = decodePageToken("page_token", "srch1", token, ["time_ms", "seq", "uuid"]);
  return v && { createdAt: new Date(v[0]), seq: v[1], id: v[2] };
}

export const reactionsPageSize = (size: number): number => (size === 0 ? DEFAULT_REACTIONS_PAGE : size);

// ListReactions page tokens: the last (emoji, user id) of the previous page.
export function encodeReactorToken(c: ReactorCursor): string {
  return encodePageToken("rx1", [textToHex(c.emoji), c.userId]);
}

export function decodeReactorToken(token: string): ReactorCursor | null {
  const v = decodePageToken("page_token", "rx1", token, ["text_hex", "uuid"]);
  if (!v) return null;
  // Only a valid reaction key can be a position in the list.
  if (emojiProblem(v[0]) !== null)
    throw invalidArgument("page_token", "is not a token from a previous page; pass next_page_token back unchanged", "PAGE_TOKEN_INVALID");
  return { emoji: v[0], userId: v[1] };
}
