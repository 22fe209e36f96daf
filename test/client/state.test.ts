// The SDK's pure pieces: the state helpers, the backoff, and the token
// manager's rules (single flight, stale tokens, session end). The same rules
// against the real server: test/client/sdk.test.ts.

import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { ChatMessageSchema, EventSchema, type ChatMessage, type Event } from "../../gen/chat/v1/message_pb.js";
import { ConversationSchema } from "../../gen/chat/v1/conversation_pb.js";
import { TokenPairSchema } from "../../gen/chat/v1/auth_pb.js";
import { PresenceStatus } from "../../gen/chat/v1/presence_pb.js";
import { fullJitterMs, PresenceState, SessionEndedError, Timeline, TokenManager, TypingState, UnreadCounts } from "../../client/src/index.ts";

const C = "11111111-1111-4111-8111-111111111111";
const msg = (seq: number, sender = "bob", extra: { content?: string; conversationId?: string; parentMessageId?: string } = {}): ChatMessage =>
  create(ChatMessageSchema, { id: `m${seq}`, conversationId: C, seq: BigInt(seq), senderId: sender, content: `c${seq}`, ...extra });
const created = (m: ChatMessage): Event =>
  create(EventSchema, { conversationId: C, cursor: `k${m.seq}`, payload: { case: "messageCreated", value: { message: m } } });

describe("Timeline", () => {
  it("merges pages and events by seq, each once, newest version winning; finds gaps", () => {
    const t = new Timeline(C);
    t.upsert(msg(3), msg(1), msg(2));
    expect(t.apply(created(msg(2)))).toBe(true); // same seq, a new object: replaced, not added
    t.apply(created(msg(5)));
    expect(t.messages().map((m) => Number(m.seq))).toEqual([1, 2, 3, 5]);
    expect(t.gaps()).toEqual([{ afterSeq: 3n, beforeSeq: 5n }]);
    t.apply(create(EventSchema, { conversationId: C, payload: { case: "messageEdited", value: { message: msg(3, "bob", { content: "edited" }) } } }));
    expect(t.get("m3")?.content).toBe("edited");
    t.apply(create(EventSchema, { conversationId: C, payload: { case: "messageDeleted", value: { messageId: "m1", seq: 1n } } }));
    expect(t.get("m1")).toMatchObject({ deleted: true, content: "" });
    expect(t.size).toBe(4);
    expect(t.lastSeq).toBe(5n);
    // Other conversations and thread replies stay out.
    expect(t.upsert(msg(9, "bob", { conversationId: "other" }), msg(10, "bob", { parentMessageId: "m2" }))).toBe(false);
  });
});

describe("UnreadCounts", () => {
  it("counts others' new messages after the read mark and clears on the user's own read receipt", () => {
    const u = new UnreadCounts("me");
    u.seed([create(ConversationSchema, { id: C, unreadCount: 2, lastReadSeq: 3n, lastSeq: 5n })]);
    expect(u.count(C)).toBe(2);
    u.apply(created(msg(5))); // already counted by the server
    u.apply(created(msg(6)));
    u.apply(created(msg(7, "me"))); // own
    u.apply(created(msg(6))); // twice: once
    expect(u.count(C)).toBe(3);
    // Read up to 5 on another device: the seeded ones are read, 6 is not.
    u.apply(create(EventSchema, { conversationId: C, payload: { case: "receiptUpdated", value: { userId: "me", readSeq: 5n } } }));
    expect(u.count(C)).toBe(1);
    expect(u.markRead(C, 7n)).toBe(true);
    expect(u.total()).toBe(0);
  });
});

describe("TypingState and PresenceState", () => {
  it("expire on their own", () => {
    let now = 1_000;
    const typing = new TypingState({ ttlMs: 6_000, now: () => now });
    typing.apply(create(EventSchema, { conversationId: C, payload: { case: "typingUpdated", value: { userId: "bob", typing: true } } }));
    expect(typing.typing(C)).toEqual(["bob"]);
    now += 6_001;
    expect(typing.typing(C)).toEqual([]);
    typing.apply(create(EventSchema, { conversationId: C, payload: { case: "typingUpdated", value: { userId: "bob", typing: true } } }));
    typing.apply(create(EventSchema, { conversationId: C, payload: { case: "typingUpdated", value: { userId: "bob", typing: false } } }));
    expect(typing.typing(C)).toEqual([]);

    const presence = new PresenceState({ ttlMs: 60_000, now: () => now });
    presence.apply(
      create(EventSchema, {
        payload: { case: "presenceUpdated", value: { userId: "bob", status: PresenceStatus.OFFLINE, lastSeenAt: timestampFromMs(5_000) } },
      }),
    );
    expect(presence.get("bob")).toEqual({ status: PresenceStatus.OFFLINE, lastSeenAt: new Date(5_000) });
    now += 60_001;
    expect(presence.get("bob")).toBeUndefined();
  });
});

describe("fullJitterMs", () => {
  it("is uniform in [0, min(cap, base * 2^attempt))", () => {
    expect(fullJitterMs(0, { baseMs: 500 }, () => 0)).toBe(0);
    expect(fullJitterMs(0, { baseMs: 500 }, () => 0.5)).toBe(250);
    expect(fullJitterMs(4, { baseMs: 500, maxMs: 15_000 }, () => 0.5)).toBe(4_000);
    expect(fullJitterMs(40, { baseMs: 500, maxMs: 15_000 }, () => 0.999_999)).toBe(14_999);
  });
});

describe("TokenManager", () => {
  const pair = (n: number, expiresAtMs: number) =>
    create(TokenPairSchema, { accessToken: `a${n}`, refreshToken: `r${n}`, sessionId: "s", accessTokenExpiresAt: timestampFromMs(expiresAtMs) });

  it("shares one Refresh among concurrent callers and never presents a refresh token twice", async () => {
    const presented: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let n = 1;
    const tm = new TokenManager({
      refresh: async (rt) => {
        presented.push(rt);
        await gate;
        n++;
        return { tokens: pair(n, Date.now() + 600_000) };
      },
    });
    tm.set({ accessToken: "a1", refreshToken: "r1", sessionId: "s", accessTokenExpiresAt: Date.now() + 600_000 });
    const all = Promise.all(Array.from({ length: 20 }, () => tm.refresh("a1")));
    release();
    const got = await all;
    expect(new Set(got.map((t) => t.accessToken))).toEqual(new Set(["a2"]));
    // A caller that saw the old token after the refresh gets the new one without a Refresh.
    expect((await tm.refresh("a1")).accessToken).toBe("a2");
    expect(presented).toEqual(["r1"]);
  });

  it("refreshes ahead of expiry, and ends the session when Refresh is refused", async () => {
    let calls = 0;
    let ended = 0;
    let now = 1_000_000;
    const tm = new TokenManager({
      now: () => now,
      refresh: async () => {
        calls++;
        if (calls > 1) throw new ConnectError("reused", Code.Unauthenticated);
        return { tokens: pair(2, now + 60_000) };
      },
      onSessionEnded: () => ended++,
    });
    tm.set({ accessToken: "a1", refreshToken: "r1", sessionId: "s", accessTokenExpiresAt: now + 60_000 });
    now += 29_000;
    expect(await tm.accessToken()).toBe("a1");
    // 30 s left of a 60 s token: due (half the lifetime before expiry).
    now += 1_000;
    expect(await tm.accessToken()).toBe("a2");
    expect(await tm.accessToken()).toBe("a2");
    expect(calls).toBe(1);
    await expect(tm.refresh()).rejects.toBeInstanceOf(SessionEndedError);
    expect(ended).toBe(1);
    expect(tm.signedIn).toBe(false);
    await expect(tm.accessToken()).rejects.toBeInstanceOf(SessionEndedError);
  });
});
