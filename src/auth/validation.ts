// What is left of the account RPCs' input checks once the proto's rules
// (proto/chat/v1/auth.proto, enforced by server/validation.ts before any
// handler runs) have passed: normalisation (trimming, lower-casing), and the
// password checks that need a word list or the account (PASSWORD_TOO_WEAK).
// Shape checks (lengths, formats, control characters, UUIDs) live in the
// proto only.

import { invalidArgument } from "../shared/errors.ts";

/** The email as given (trimmed) and the lower-cased key it is unique by. */
export function normalizeEmail(raw: string): { email: string; normalized: string } {
  const email = raw.trim();
  return { email, normalized: email.toLowerCase() };
}

export const normalizeUsername = (raw: string): string => raw.trim().toLowerCase();

/** Display names, device ids and names are stored trimmed. */
export const trimmed = (raw: string): string => raw.trim();

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
