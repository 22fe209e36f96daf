// Input validation for conversation requests. Field names are the protobuf
// field names, so a client sees exactly which field was wrong.

import { invalidArgument } from "../shared/errors.ts";

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * Channel names: ASCII letters, digits, '.', '_' and '-', starting with a
 * letter or digit. ASCII keeps case-insensitive uniqueness unambiguous (no
 * locale-dependent lower-casing, no look-alike Unicode names) and makes names
 * safe in URLs and mentions.
 */
const CHANNEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const CHANNEL_PREFIX = /^[a-z0-9][a-z0-9._-]*$/;
// Control characters other than newline and tab (for descriptions).
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u2028\u2029]/;
const CONTROL_OR_NEWLINE = /[\u0000-\u001F\u007F-\u009F\u2028\u2029]/;

/** A canonical (lower-case) UUID, or INVALID_ARGUMENT on `field`. */
export function uuid(field: string, value: string): string {
  if (!value) throw invalidArgument(field, "required");
  if (!UUID.test(value)) throw invalidArgument(field, "must be a UUID");
  return value.toLowerCase();
}

export function uuidList(field: string, values: string[], max: number): string[] {
  if (values.length > max) throw invalidArgument(field, `at most ${max} users per call`);
  const out = new Set<string>();
  values.forEach((v, i) => {
    if (!UUID.test(v)) throw invalidArgument(`${field}[${i}]`, "must be a UUID");
    out.add(v.toLowerCase());
  });
  return [...out];
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
  if (CONTROL_OR_NEWLINE.test(title)) throw invalidArgument(field, "must not contain control characters or line breaks");
  return title;
}

export function description(field: string, raw: string, maxChars: number): string {
  const text = raw.trim();
  if (chars(text) > maxChars) throw invalidArgument(field, `at most ${maxChars} characters`);
  if (CONTROL.test(text)) throw invalidArgument(field, "must not contain control characters");
  return text;
}

/** A channel-name prefix filter, lower-cased; '' means no filter. */
export function channelPrefix(field: string, raw: string, maxChars: number): string {
  const p = raw.trim().toLowerCase();
  if (p === "") return "";
  if (chars(p) > maxChars || !CHANNEL_PREFIX.test(p)) throw invalidArgument(field, "must be the start of a channel name");
  return p;
}

/** 0 means the default; anything else must be within 1..max. */
export function pageSize(field: string, value: number, def: number, max: number): number {
  if (value === 0) return def;
  if (!Number.isInteger(value) || value < 1 || value > max) throw invalidArgument(field, `must be between 1 and ${max}`);
  return value;
}
