// The input rules as pure functions: the proto's protovalidate rules
// (server/validation.ts evaluates them for every RPC and Stream frame) and
// what the service keeps. The e2e suites check the same rules through the
// server; this covers the character-level cases that a wire encoding would
// already mangle or refuse, such as lone surrogates.

import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { AppError } from "../../src/shared/errors.ts";
import { emojiProblem } from "../../src/messages/emoji.ts";
import { messageIdFor } from "../../src/messages/ids.ts";
import { checkContentLength, decodeSearchToken, encodeSearchToken, listWindow, normalizeSearchQuery } from "../../src/messages/validation.ts";
import { RequestValidator } from "../../src/server/validation.ts";

const validator = new RequestValidator();
const violationsOf: RequestValidator["violationsOf"] = (schema, message) => validator.violationsOf(schema, message);
import { ListMessagesRequestSchema, SearchMessagesRequestSchema, SendMessageRequestSchema } from "../../gen/chat/v1/message_pb.js";

function violation(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (err) {
    if (err instanceof AppError && err.kind === "invalid_argument") return err.violations[0]?.field ?? "?";
    throw err;
  }
}

const CONVERSATION = "0b6f3e7a-5c1d-4e2f-9a8b-7c6d5e4f3a2b";

/** The fields a SendMessage request with these values breaks, as "field:rule". */
function sendViolations(init: MessageInitShape<typeof SendMessageRequestSchema>): string[] {
  const req = create(SendMessageRequestSchema, { conversationId: CONVERSATION, clientMessageId: "k1", content: "hi", ...init });
  return violationsOf(SendMessageRequestSchema, req).map((v) => `${v.field}:${v.reason}`);
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
  it("counts code points, not UTF-16 units (MESSAGE_MAX_CHARS, configuration)", () => {
    expect(violation(() => checkContentLength("😀".repeat(10), 10))).toBeNull();
    expect(violation(() => checkContentLength("😀".repeat(11), 10))).toBe("content");
  });
  it("rejects lone surrogates, NUL and other control characters, keeps newlines, tabs and carriage returns", () => {
    expect(sendViolations({ content: "a\ud800b" })).toEqual(["content:text.message"]);
    expect(sendViolations({ content: "a\udc00" })).toEqual(["content:text.message"]);
    expect(sendViolations({ content: "a\u0000" })).toEqual(["content:text.message"]);
    expect(sendViolations({ content: "a\u0007" })).toEqual(["content:text.message"]);
    expect(sendViolations({ content: "a\u007f" })).toEqual(["content:text.message"]);
    expect(sendViolations({ content: "line 1\nline 2\tand\r\n 😀 é" })).toEqual([]);
  });
  it("allows empty content only with attachments (a message-level rule, reported on content)", () => {
    expect(sendViolations({ content: "" })).toEqual(["content:content.required"]);
    expect(sendViolations({ content: " \n " })).toEqual(["content:content.required"]);
    const attachment = { url: "https://example.com/a.png", name: "a.png", mimeType: "image/png", sizeBytes: 3n };
    expect(sendViolations({ content: "   ", attachments: [attachment] })).toEqual([]);
  });
  it("reports every violation at once, with the rule that failed", () => {
    expect(
      sendViolations({
        conversationId: "nope",
        clientMessageId: "a\u0000",
        content: "",
        parentMessageId: "x",
        mentions: ["0b6f3e7a-5c1d-4e2f-9a8b-7c6d5e4f3a2b", "y"],
        attachments: [{ url: "ftp://example.com/x", name: " ", mimeType: "image", sizeBytes: -1n }],
      }),
    ).toEqual([
      "conversation_id:string.uuid",
      "client_message_id:text.single_line",
      "parent_message_id:string.uuid",
      "mentions[1]:string.uuid",
      "attachments[0].url:url.http",
      "attachments[0].name:text.not_blank",
      "attachments[0].mime_type:mime_type.format",
      "attachments[0].size_bytes:int64.gte_lte",
    ]);
  });
  it("accepts UUIDs in either case and http(s) URLs only", () => {
    expect(sendViolations({ conversationId: CONVERSATION.toUpperCase(), parentMessageId: CONVERSATION })).toEqual([]);
    const at = (url: string) => sendViolations({ attachments: [{ url, name: "f", mimeType: "text/plain", sizeBytes: 0n }] });
    expect(at("https://example.com/a b")).toEqual([]);
    expect(at("HTTP://example.com")).toEqual([]);
    for (const bad of [
      "javascript:alert(1)",
      "http://",
      "//example.com",
      "file:///etc/passwd",
      "https://exa mple.com",
      `https://e.com/${"x".repeat(2048)}`,
    ]) {
      expect(at(bad).filter((v) => v.startsWith("attachments[0].url")).length, bad).toBeGreaterThan(0);
    }
  });
});

describe("windows and tokens", () => {
  it("maps the proto's before/after to a direction", () => {
    expect(listWindow(undefined, undefined, 0)).toEqual({ direction: "before", seq: 0, limit: 50 });
    expect(listWindow(0, undefined, 0)).toEqual({ direction: "before", seq: 0, limit: 50 });
    expect(listWindow(10, undefined, 5)).toEqual({ direction: "before", seq: 10, limit: 5 });
    expect(listWindow(undefined, 7, 200)).toEqual({ direction: "after", seq: 7, limit: 200 });
    // after_seq is optional: a set 0 pages from the first message, not from the newest.
    expect(listWindow(undefined, 0, 0)).toEqual({ direction: "after", seq: 0, limit: 50 });
    expect(listWindow(0, 0, 0)).toEqual({ direction: "after", seq: 0, limit: 50 });
    // Exclusive with a before_seq above 0: a rule of the proto (reported on after_seq).
    const list = (beforeSeq: bigint | undefined, afterSeq: bigint | undefined) =>
      violationsOf(ListMessagesRequestSchema, create(ListMessagesRequestSchema, { conversationId: CONVERSATION, beforeSeq, afterSeq })).map(
        (v) => `${v.field}:${v.reason}`,
      );
    expect(list(10n, 0n)).toEqual(["after_seq:after_seq.exclusive"]);
    expect(list(0n, 0n)).toEqual([]);
    expect(list(10n, undefined)).toEqual([]);
  });
  it("round-trips search tokens and refuses forged ones", () => {
    const c = { createdAt: new Date(1_700_000_000_123), seq: 42, id: "0b6f3e7a-5c1d-4e2f-9a8b-7c6d5e4f3a2b" };
    expect(decodeSearchToken(encodeSearchToken(c))).toEqual(c);
    for (const bad of ["x", "e30", Buffer.from('{"t":"1","i":"x"}').toString("base64url"), "a".repeat(300)]) {
      expect(violation(() => decodeSearchToken(bad))).toBe("page_token");
    }
  });
  it("normalises queries, and the rules bound them", () => {
    expect(normalizeSearchQuery("  hello \n world ")).toBe("hello world");
    const rules = (query: string) => violationsOf(SearchMessagesRequestSchema, create(SearchMessagesRequestSchema, { query })).map((v) => v.reason);
    expect(rules("  hello \n world ")).toEqual([]);
    expect(rules("a b c d e f g h")).toEqual([]);
    expect(rules("a b c d e f g h i")).toEqual(["query.words"]);
    expect(rules("   ")).toEqual(["text.not_blank"]);
    expect(rules("?!")).toEqual(["query.word"]);
    expect(rules("x".repeat(257))).toEqual(["string.max_len"]);
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
