// The input rules as pure functions (the e2e suite checks the same rules
// through the server; this covers the character-level cases that a wire
// encoding would already mangle or refuse, such as lone surrogates).

import { describe, expect, it } from "vitest";
import { AppError } from "../../src/shared/errors.ts";
import { emojiProblem } from "../../src/messages/emoji.ts";
import { messageIdFor } from "../../src/messages/ids.ts";
import { decodeSearchToken, encodeSearchToken, validateContent, validateListWindow, validateSearchQuery } from "../../src/messages/validation.ts";

function violation(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (err) {
    if (err instanceof AppError && err.kind === "invalid_argument") return err.violations[0]?.field ?? "?";
    throw err;
  }
}

describe("emoji", () => {
  it.each(["👍", "❤️", "❤", "👨‍👩‍👧‍👦", "🇺🇦", "🏳️‍🌈", "👋🏽", "1️⃣", "#️⃣", "©️", ":+1:", ":party_parrot:", ":a:"])("accepts %s", (e) => {
    expect(emojiProblem(e)).toBeNull();
  });
  it.each(["", "a", "ab", "👍👍", "👍 ", " 👍", ":Upper:", ":has space:", "::", `:${"x".repeat(33)}:`, "\ud83d", "1", "1️⃣2", "<script>"])(
    "rejects %j",
    (e) => {
      expect(emojiProblem(e)).not.toBeNull();
    },
  );
});

describe("content", () => {
  it("counts code points, not UTF-16 units", () => {
    expect(violation(() => validateContent("😀".repeat(10), 10, false))).toBeNull();
    expect(violation(() => validateContent("😀".repeat(11), 10, false))).toBe("content");
  });
  it("rejects lone surrogates, NUL and other control characters, keeps newlines and tabs", () => {
    expect(violation(() => validateContent("a\ud800b", 100, false))).toBe("content");
    expect(violation(() => validateContent("a\udc00", 100, false))).toBe("content");
    expect(violation(() => validateContent("a\u0000", 100, false))).toBe("content");
    expect(violation(() => validateContent("a\u0007", 100, false))).toBe("content");
    expect(violation(() => validateContent("line 1\nline 2\tand\r\n", 100, false))).toBeNull();
  });
  it("allows empty content only with attachments", () => {
    expect(violation(() => validateContent("", 100, false))).toBe("content");
    expect(violation(() => validateContent("   ", 100, true))).toBeNull();
  });
});

describe("windows and tokens", () => {
  it("maps the proto's before/after to a direction", () => {
    expect(validateListWindow(undefined, undefined, 0)).toEqual({ direction: "before", seq: 0, limit: 50 });
    expect(validateListWindow(0, undefined, 0)).toEqual({ direction: "before", seq: 0, limit: 50 });
    expect(validateListWindow(10, undefined, 5)).toEqual({ direction: "before", seq: 10, limit: 5 });
    expect(validateListWindow(undefined, 7, 200)).toEqual({ direction: "after", seq: 7, limit: 200 });
    // after_seq is optional: a set 0 pages from the first message, not from the newest.
    expect(validateListWindow(undefined, 0, 0)).toEqual({ direction: "after", seq: 0, limit: 50 });
    expect(validateListWindow(0, 0, 0)).toEqual({ direction: "after", seq: 0, limit: 50 });
    expect(violation(() => validateListWindow(10, 0, 0))).toBe("after_seq");
  });
  it("round-trips search tokens and refuses forged ones", () => {
    const c = { createdAt: new Date(1_700_000_000_123), seq: 42, id: "0b6f3e7a-5c1d-4e2f-9a8b-7c6d5e4f3a2b" };
    expect(decodeSearchToken(encodeSearchToken(c))).toEqual(c);
    for (const bad of ["x", "e30", Buffer.from('{"t":"1","i":"x"}').toString("base64url"), "a".repeat(300)]) {
      expect(violation(() => decodeSearchToken(bad))).toBe("page_token");
    }
  });
  it("normalises queries", () => {
    expect(validateSearchQuery("  hello \n world ")).toBe("hello world");
    expect(violation(() => validateSearchQuery("a b c d e f g h i"))).toBe("query");
  });
});

describe("message ids of the Mongo adapter", () => {
  it("are version-5 UUIDs of the idempotency key: equal for a repeat, different otherwise", () => {
    const a = messageIdFor("c", "u", "1");
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(messageIdFor("c", "u", "1")).toBe(a);
    expect(messageIdFor("c", "u", "2")).not.toBe(a);
    expect(messageIdFor("c", "v", "1")).not.toBe(a);
    // The separator keeps the parts apart.
    expect(messageIdFor("c", "u\n1", "")).not.toBe(messageIdFor("c", "u", "1\n"));
  });
});
