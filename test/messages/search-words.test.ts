// Search matches words, not fragments inside other words, on every adapter
// (Postgres/PGlite full text, MongoDB $text, and FerretDB's regex fallback).

import { afterAll, beforeAll, expect, it } from "vitest";
import { forEachBackend } from "../support/backends.ts";
import { insertConversation, insertUsers, newMessage, openStoreEnv, type StoreEnv } from "./fixtures.ts";

forEachBackend("search by words", ["mongo", "postgres", "pglite"] as const, (name) => {
  let env: StoreEnv;
  beforeAll(async () => {
    env = await openStoreEnv(name);
  });
  afterAll(async () => env?.cleanup());

  it("finds a term as a word, not inside another word", async () => {
    const [u] = await insertUsers(env.sql, 1);
    const c = await insertConversation(env.sql, [u]);
    const inside = await env.store.send(newMessage(c, u, { clientMessageId: "a", content: "token c93 alpha" }));
    const word = await env.store.send(newMessage(c, u, { clientMessageId: "b", content: "room 3 beta" }));
    const search = async (text: string) =>
      (await env.store.search({ userId: u, text, conversationId: c, limit: 10, after: null })).messages.map((m) => m.id);
    expect(await search("3")).toEqual([word.message.id]);
    expect(await search("C93")).toEqual([inside.message.id]);
    expect(await search("alpha token")).toEqual([inside.message.id]);
    expect(await search("beta alpha")).toEqual([]);
  });
});
