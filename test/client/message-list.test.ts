// The SDK's timeline reconciliation (client/src/message-list.ts, the web
// app's message model): every path a message can take into the view (history
// page, SendMessage reply, live event, replay after reconnect, gap fill) lands
// on one entry, in seq order, never twice. Plain logic, so it runs in Node;
// the browser tests cover it end to end.

import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { MessageList as Timeline, messageData, toggledReactions, type MessageData } from "../../client/src/message-list.ts";
import { ChatMessageSchema, ReactionSchema } from "../../gen/chat/v1/message_pb.js";
import { backoffMs } from "../../web/src/stream.ts";

const CONV = "c1";
const ME = "me";
const PEER = "peer";

function msg(seq: number, over: Partial<MessageData> = {}): MessageData {
  return {
    id: `m${seq}`,
    conversationId: CONV,
    seq,
    senderId: PEER,
    clientMessageId: `peer-${seq}`,
    content: `message ${seq}`,
    createdAt: new Date(1_700_000_000_000 + seq * 1000),
    editedAt: null,
    deleted: false,
    reactions: [],
    parentMessageId: "",
    replyCount: 0,
    mentions: [],
    ...over,
  };
}

const contents = (t: Timeline) => t.items().map((m) => m.content);

describe("MessageList", () => {
  it("shows a pending send at once and turns it into the stored message in place (reply first, then the event)", () => {
    const t = new Timeline(CONV);
    t.addOlder([msg(2), msg(1)], false);
    const pending = t.addPending(ME, "cm-1", "hello");
    expect(t.items().map((m) => [m.content, m.state])).toEqual([
      ["message 1", "sent"],
      ["message 2", "sent"],
      ["hello", "pending"],
    ]);
    const stored = msg(3, { id: "m3", senderId: ME, clientMessageId: "cm-1", content: "hello" });
    expect(t.upsert(stored)).toBe("confirmed");
    expect(t.upsert(stored)).toBe("updated"); // the live event for the same message
    const items = t.items();
    expect(items).toHaveLength(3);
    expect(items[2]).toBe(pending); // same object: the UI keeps its element
    expect(items[2]!.state).toBe("sent");
    expect(items[2]!.seq).toBe(3);
  });

  it("reconciles when the live event arrives before the SendMessage reply", () => {
    const t = new Timeline(CONV);
    t.addPending(ME, "cm-1", "first");
    t.addPending(ME, "cm-2", "second");
    expect(t.upsert(msg(1, { senderId: ME, clientMessageId: "cm-1", content: "first" }))).toBe("confirmed");
    expect(t.upsert(msg(1, { senderId: ME, clientMessageId: "cm-1", content: "first" }))).toBe("updated");
    expect(t.items().map((m) => [m.content, m.state])).toEqual([
      ["first", "sent"],
      ["second", "pending"],
    ]);
    t.upsert(msg(2, { senderId: ME, clientMessageId: "cm-2", content: "second" }));
    expect(t.items().map((m) => m.state)).toEqual(["sent", "sent"]);
  });

  it("never shows a message twice whatever mix of pages, events and replays brings it", () => {
    const t = new Timeline(CONV);
    for (const seq of [5, 3, 4]) t.upsert(msg(seq)); // live events first
    t.addOlder([msg(5), msg(4), msg(3), msg(2), msg(1)], false); // then the page
    for (let seq = 1; seq <= 6; seq++) t.upsert(msg(seq)); // then a replay after reconnect
    expect(contents(t)).toEqual([1, 2, 3, 4, 5, 6].map((s) => `message ${s}`));
    expect(t.size).toBe(6);
  });

  it("a peer's client_message_id equal to ours is a different message", () => {
    const t = new Timeline(CONV);
    t.addPending(ME, "same", "mine");
    expect(t.upsert(msg(1, { senderId: PEER, clientMessageId: "same", content: "theirs" }))).toBe("added");
    expect(t.items().map((m) => [m.content, m.state])).toEqual([
      ["theirs", "sent"],
      ["mine", "pending"],
    ]);
  });

  it("pages older history in and knows where the beginning is", () => {
    const t = new Timeline(CONV);
    expect(t.addOlder([msg(10), msg(9), msg(8)], true)).toBe(3);
    t.loadedLatest = true;
    expect(t.oldestSeq).toBe(8);
    expect(t.newestSeq).toBe(10);
    expect(t.hasMoreBefore).toBe(true);
    expect(t.addOlder([msg(7), msg(6)], false)).toBe(2);
    expect(t.hasMoreBefore).toBe(false);
    expect(t.oldestSeq).toBe(6);
  });

  it("reports a gap only once the newest page is loaded", () => {
    const t = new Timeline(CONV);
    t.upsert(msg(3));
    expect(t.gapBefore(7)).toBeNull(); // not loaded: the page will cover it
    t.loadedLatest = true;
    expect(t.gapBefore(4)).toBeNull();
    expect(t.gapBefore(7)).toEqual({ afterSeq: 3, beforeSeq: 7 });
  });

  it("keeps failed sends for retry or discard, and ignores other conversations", () => {
    const t = new Timeline(CONV);
    t.addPending(ME, "cm-1", "oops");
    t.setSendState(ME, "cm-1", "failed", "too long");
    expect(t.items()[0]).toMatchObject({ state: "failed", error: "too long" });
    t.setSendState(ME, "cm-1", "pending", null);
    expect(t.items()[0]).toMatchObject({ state: "pending", error: null });
    t.discardPending(ME, "cm-1");
    expect(t.size).toBe(0);
    expect(t.upsert(msg(1, { conversationId: "other" }))).toBe("ignored");
    expect(t.size).toBe(0);
  });

  it("applies edits, deletions and reaction counts to the one entry", () => {
    const t = new Timeline(CONV);
    t.upsert(msg(1));
    const before = t.items()[0]!.rev;
    t.upsert(msg(1, { content: "edited", editedAt: new Date() }));
    expect(t.items()[0]!.content).toBe("edited");
    expect(t.items()[0]!.rev).toBeGreaterThan(before);
    expect(t.setReactions("m1", [{ emoji: "👍", count: 2, reacted: true }])).toBe(true);
    expect(t.items()[0]!.reactions).toEqual([{ emoji: "👍", count: 2, reacted: true }]);
    expect(t.markDeleted("m1", 1)).toBe(true);
    expect(t.items()[0]).toMatchObject({ deleted: true, content: "", reactions: [] });
    expect(t.markDeleted("m1", 1)).toBe(false);
  });
});

describe("reconnect backoff (the SDK's full jitter)", () => {
  it("is uniform in [0, min(cap, 500 ms * 2^attempt)), growing exponentially and capped", () => {
    expect(backoffMs(0, 0)).toBe(0);
    expect(backoffMs(0, 0.5)).toBe(250);
    expect(backoffMs(0, 0.999)).toBe(499);
    expect(backoffMs(3, 0.5)).toBe(2000);
    expect(backoffMs(50, 0.5)).toBe(7_500);
    expect(backoffMs(50, 0.9999)).toBe(14_998);
  });
});

describe("messageData and toggledReactions", () => {
  it("turns a ChatMessage into plain data (seq as a number, times as Dates, absent times null)", () => {
    const at = new Date("2026-01-02T03:04:05.678Z");
    const m = create(ChatMessageSchema, {
      id: "m9",
      conversationId: CONV,
      seq: 9n,
      senderId: PEER,
      clientMessageId: "c9",
      content: "hi",
      parentMessageId: "m1",
      replyCount: 0,
      mentions: [ME],
      reactions: [create(ReactionSchema, { emoji: "👍", count: 2, reacted: true })],
      createdAt: timestampFromDate(at),
    });
    const d = messageData(m);
    expect(d).toEqual({
      id: "m9",
      conversationId: CONV,
      seq: 9,
      senderId: PEER,
      clientMessageId: "c9",
      content: "hi",
      createdAt: at,
      editedAt: null,
      deleted: false,
      reactions: [{ emoji: "👍", count: 2, reacted: true }],
      parentMessageId: "m1",
      replyCount: 0,
      mentions: [ME],
    });
    // A copy: changing the view does not change the message.
    d.mentions.push("x");
    expect(m.mentions).toEqual([ME]);
    // It goes into a list like any page or event.
    const tl = new Timeline(CONV);
    expect(tl.upsert(d)).toBe("added");
    expect(tl.upsert(messageData(m))).toBe("updated");
    expect(tl.items()).toHaveLength(1);
  });

  it("adds to an emoji's count or a new one, removes only one's own, and drops emptied ones, without touching the input", () => {
    const before = [
      { emoji: "👍", count: 1, reacted: true },
      { emoji: "🎉", count: 2, reacted: false },
    ];
    expect(toggledReactions(before, "🎉", true)).toEqual([
      { emoji: "👍", count: 1, reacted: true },
      { emoji: "🎉", count: 3, reacted: true },
    ]);
    expect(toggledReactions(before, "👀", true)).toEqual([...before, { emoji: "👀", count: 1, reacted: true }]);
    expect(toggledReactions(before, "👍", false)).toEqual([{ emoji: "🎉", count: 2, reacted: false }]);
    expect(toggledReactions(before, "🎉", false)).toEqual(before); // not ours to take back
    expect(before[1]).toEqual({ emoji: "🎉", count: 2, reacted: false });
  });
});
