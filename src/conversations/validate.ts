// What is left of the conversation RPCs' input checks once the proto's rules
// (proto/chat/v1/conversation.proto, enforced by server/validation.ts before
// any handler runs) have passed: normalisation, and the checks that need
// configuration (CONVERSATION_TITLE_MAX_CHARS, CONVERSATION_DESCRIPTION_MAX_CHARS,
// ADD_MEMBERS_MAX_BATCH) or state (a title is a channel name only when the
// conversation is a channel, which UpdateConversation learns from the store).
// Shape checks (UUIDs, control characters, absolute maxima) live in the proto.

import { invalidArgument } from "../shared/errors.ts";

/**
 * Channel names: ASCII letters, digits, '.', '_' and '-', starting with a
 * letter or digit. ASCII keeps case-insensitive uniqueness unambiguous (no
 * locale-dependent lower-casing, no look-alike Unicode names) and makes names
 * safe in URLs and mentions.
 */
const CHANNEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** The canonical (lower-case) form of an id the rules accepted as a UUID. */
export const uuid = (value: string): string => value.toLowerCase();

/** Ids the rules accepted, de-duplicated; at most ADD_MEMBERS_MAX_BATCH (configuration). */
export function uuidList(field: string, values: string[], max: number): string[] {
  if (values.length > max) throw invalidArgument(field, `at most ${max} users per call`);
  return [...new Set(values.map(uuid))];
}

function chars(s: string): number {
  return [...s].length;
}

export function channelName(field: string, raw: string, maxChars: number): string {
  const name = raw.trim();
  if (name === "") throw invalidArgument(field, "a channel needs a name");
  if (chars(name) > maxChars) throw invalidArgument(field, `at most ${maxChars} characters`);
  if (!CHANNEL_NAME.test(name)) throw invalidArgument(field, "letters, digits, '.', '_' and '-' only, starting with a letter or digit");
  return name;
}

export function groupTitle(field: string, raw: string, maxChars: number): string {
  const title = raw.trim();
  if (chars(title) > maxChars) throw invalidArgument(field, `at most ${maxChars} characters`);
  return title;
}

export function description(field: string, raw: string, maxChars: number): string {
  const text = raw.trim();
  if (chars(text) > maxChars) throw invalidArgument(field, `at most ${maxChars} characters`);
  return text;
}

/** A channel-name prefix filter, lower-cased; '' means no filter. */
export function channelPrefix(field: string, raw: string, maxChars: number): string {
  const p = raw.trim().toLowerCase();
  if (chars(p) > maxChars) throw invalidArgument(field, "must be the start of a channel name");
  return p;
}

/** 0 means the default (the proto's rules bound it to 0..max). */
export const pageSize = (value: number, def: number): number => (value === 0 ? def : value);
