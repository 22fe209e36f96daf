// Reaction keys: one emoji grapheme (what a picker inserts, ZWJ sequences and
// flags included) or a :shortcode: for custom emoji. Stored as given: the
// client's picker decides the exact code points (e.g. with or without U+FE0F).

import { isWellFormed } from "./text.ts";

const SHORTCODE = /^:[a-z0-9_+-]{1,32}:$/;
// Keycaps (1️⃣, #️⃣) are a digit + U+20E3, not pictographic code points.
const PICTOGRAPHIC = /\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20E3/u;
/** Longest sensible emoji grapheme (family ZWJ sequences are ~11 code units x2). */
const MAX_EMOJI_CODE_UNITS = 64;

const graphemes = new Intl.Segmenter("en", { granularity: "grapheme" });

/** Returns a reason when `emoji` is not a valid reaction key, else null. */
export function emojiProblem(emoji: string): string | null {
  if (emoji === "") return "is required";
  if (emoji.startsWith(":")) return SHORTCODE.test(emoji) ? null : "a shortcode is :name: with 1 to 32 of a-z 0-9 _ + -";
  if (emoji.length > MAX_EMOJI_CODE_UNITS || !isWellFormed(emoji)) return "must be a single emoji or a :shortcode:";
  let count = 0;
  for (const _ of graphemes.segment(emoji)) {
    if (++count > 1) return "must be a single emoji or a :shortcode:";
  }
  return PICTOGRAPHIC.test(emoji) ? null : "must be a single emoji or a :shortcode:";
}
