// Who reacted to a message: ListReactions pages merged into one entry per
// emoji (an emoji whose users span pages appears once, with all of them).

import type { Client } from "@connectrpc/connect";
import type { MessageService } from "../../gen/chat/v1/message_pb.js";

export interface WhoReacted {
  emoji: string;
  /** How many reacted with it in all (the server's count, even when `userIds` stops short at `maxUsers`). */
  count: number;
  /** True when the caller is one of them. */
  reacted: boolean;
  /** Who, by user id, in the server's order (by id). */
  userIds: string[];
}

export interface WhoReactedOptions {
  /** Only this emoji. */
  emoji?: string;
  /** Stop after this many (emoji, user) pairs in all (default 500): enough for a tooltip or a popover. */
  maxUsers?: number;
  /** Pairs per page (default: the server's, 100). */
  pageSize?: number;
  signal?: AbortSignal;
}

/** Pages through ListReactions; `complete` is false when `maxUsers` cut it short. */
export async function whoReacted(
  messages: Client<typeof MessageService>,
  messageId: string,
  o: WhoReactedOptions = {},
): Promise<{ reactions: WhoReacted[]; complete: boolean }> {
  const max = o.maxUsers ?? 500;
  const byEmoji = new Map<string, WhoReacted>();
  let pageToken = "";
  let users = 0;
  do {
    const res = await messages.listReactions({ messageId, emoji: o.emoji ?? "", pageSize: o.pageSize ?? 0, pageToken }, { signal: o.signal });
    for (const r of res.reactions) {
      let entry = byEmoji.get(r.emoji);
      if (!entry) byEmoji.set(r.emoji, (entry = { emoji: r.emoji, count: r.count, reacted: r.reacted, userIds: [] }));
      // The latest page's count and flag are the freshest.
      entry.count = Math.max(r.count, entry.userIds.length + r.userIds.length);
      entry.reacted = r.reacted;
      entry.userIds.push(...r.userIds);
      users += r.userIds.length;
    }
    pageToken = res.nextPageToken;
  } while (pageToken && users < max);
  return { reactions: [...byEmoji.values()], complete: pageToken === "" };
}
