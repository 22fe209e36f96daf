// Input rules for accounts. Each function returns the normalised value or
// throws INVALID_ARGUMENT naming the request field.

import { invalidArgument } from "../shared/errors.ts";
import { UUID_PATTERN as UUID_RE } from "../shared/ids.ts";

export const USERNAME_RE = /^[a-z0-9_.]{3,32}$/;
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 128;
export const DISPLAY_NAME_MAX = 64;
export const DEVICE_ID_MAX = 128;
export const DEVICE_NAME_MAX = 128;
const EMAIL_MAX = 254; // RFC 5321 path limit
// Control and format characters (incl. bidi overrides) have no place in names.
export const CONTROL_RE = /[\p{Cc}\p{Cf}\u2028\u2029]/u;

/** Length in Unicode code points, which is what users mean by "characters". */
export const charLength = (s: string): number => [...s].length;

export function normalizeEmail(field: string, raw: string): { email: string; normalized: string } {
  const email = raw.trim();
  if (email === "") throw invalidArgument(field, "is required");
  if (email.length > EMAIL_MAX) throw invalidArgument(field, `must be at most ${EMAIL_MAX} characters`);
  // Deliberately loose: one @, something on both sides, a dot in the domain, no spaces.
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email) || CONTROL_RE.test(email)) {
    throw invalidArgument(field, "is not a valid email address");
  }
  return { email, normalized: email.toLowerCase() };
}

export function normalizeUsername(field: string, raw: string): string {
  const username = raw.trim().toLowerCase();
  if (username === "") throw invalidArgument(field, "is required");
  if (!USERNAME_RE.test(username)) throw invalidArgument(field, "must be 3 to 32 characters of a-z, 0-9, '_' and '.'");
  return username;
}

/** Checks length only; never trims or truncates (a password is what the user typed). */
export function checkPassword(field: string, password: string): string {
  const n = charLength(password);
  if (n === 0) throw invalidArgument(field, "is required");
  if (n < PASSWORD_MIN) throw invalidArgument(field, `must be at least ${PASSWORD_MIN} characters`);
  if (n > PASSWORD_MAX) throw invalidArgument(field, `must be at most ${PASSWORD_MAX} characters`);
  return password;
}

export function normalizeDisplayName(field: string, raw: string): string {
  const name = raw.trim();
  if (name === "") throw invalidArgument(field, "must not be empty");
  if (charLength(name) > DISPLAY_NAME_MAX) throw invalidArgument(field, `must be at most ${DISPLAY_NAME_MAX} characters`);
  if (CONTROL_RE.test(name)) throw invalidArgument(field, "must not contain control characters");
  return name;
}

export function checkDeviceId(field: string, raw: string): string {
  const id = raw.trim();
  if (charLength(id) > DEVICE_ID_MAX) throw invalidArgument(field, `must be at most ${DEVICE_ID_MAX} characters`);
  if (CONTROL_RE.test(id)) throw invalidArgument(field, "must not contain control characters");
  return id;
}

export function checkDeviceName(field: string, raw: string): string {
  const name = raw.trim();
  if (charLength(name) > DEVICE_NAME_MAX) throw invalidArgument(field, `must be at most ${DEVICE_NAME_MAX} characters`);
  if (CONTROL_RE.test(name)) throw invalidArgument(field, "must not contain control characters");
  return name;
}

export function checkUuid(field: string, raw: string): string {
  if (raw === "") throw invalidArgument(field, "is required");
  if (!UUID_RE.test(raw)) throw invalidArgument(field, "is not a valid id");
  return raw.toLowerCase();
}

// Very common passwords of at least 8 characters (from public breach-frequency
// lists). Only a first line of defence: ASVS 6.2.4 asks for the top 3000; see docs/AUTH.md.
const COMMON_PASSWORDS = new Set([
  "password",
  "password1",
  "password12",
  "password123",
  "password1234",
  "passw0rd",
  "p@ssw0rd",
  "p@ssword",
  "12345678",
  "123456789",
  "1234567890",
  "12345678910",
  "0123456789",
  "87654321",
  "987654321",
  "11111111",
  "00000000",
  "88888888",
  "12341234",
  "11223344",
  "123123123",
  "1q2w3e4r",
  "1q2w3e4r5t",
  "1qaz2wsx",
  "zaq12wsx",
  "qwertyui",
  "qwertyuiop",
  "qwerty123",
  "qwerty12",
  "qwerty1234",
  "asdfghjkl",
  "asdfasdf",
  "zxcvbnm1",
  "iloveyou",
  "iloveyou1",
  "sunshine",
  "princess",
  "football",
  "baseball",
  "superman",
  "starwars",
  "computer",
  "whatever",
  "welcome1",
  "welcome123",
  "letmein1",
  "trustno1",
  "changeme",
  "admin123",
  "administrator",
  "abc12345",
  "abcd1234",
  "aa123456",
  "michelle",
  "jennifer",
  "liverpool",
  "chelsea1",
  "charlie1",
  "jordan23",
  "football1",
  "baseball1",
  "1234qwer",
  "q1w2e3r4",
  "q1w2e3r4t5",
  "a1b2c3d4",
  "mustang1",
  "shadow12",
  "master12",
  "dragon12",
  "monkey12",
  "secret12",
  "chatapp1",
  "letmeinnow",
]);

/**
 * Refuses passwords that are trivially guessable in this context: very
 * common ones, one repeated character, or ones containing the username or
 * the email's local part (ASVS 6.2.4 / 6.2.11, partly). No composition rules.
 */
export function checkPasswordNotGuessable(field: string, password: string, context: { username: string; email: string }): void {
  const p = password.toLowerCase();
  if (COMMON_PASSWORDS.has(p) || /^(.)\1*$/su.test(p)) throw invalidArgument(field, "is too common or easy to guess", "PASSWORD_TOO_WEAK");
  const local = context.email.toLowerCase().split("@")[0] ?? "";
  for (const word of [context.username.toLowerCase(), local]) {
    if (word.length >= 3 && p.includes(word)) throw invalidArgument(field, "must not contain your username or email address", "PASSWORD_TOO_WEAK");
  }
}
