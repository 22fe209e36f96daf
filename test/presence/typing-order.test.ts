// Typing indicators: the last state sent wins (issue 11, item 7). A stale
// typing=true (received first, applied after a later typing=false, as when
// its request was slower or went to another node) must not be announced after
// the false, and must not make the throttle swallow the next real true. Two
// TypingIndicators on one Redis stand for two nodes; the in-process store for
// the single-node default.

import { afterAll, describe, expect, it } from "vitest";
import pino from "pino";
import { createMemoryStore } from "../../src/stores/ephemeral/memory.ts";
import { createRedisStore } from "../../src/stores/ephemeral/redis.ts";
import type { EphemeralStore } from "../../src/stores/ephemeral/ephemeral.ts";
import { TypingIndicators } from "../../src/presence/typing.ts";
import type { PresenceFanout, PresenceSettings } from "../../src/presence/types.ts";
import { env, isolatedRedisPrefix } from "../support/backends.ts";

const settings: PresenceSettings = {
  deviceTtlMs: 30_000,
  graceMs: 1_000,
  coalesceMs: 0,
  sweepIntervalMs: 1_000,
  typingTtlMs: 60_000,
  typingThrottleMs: 3_000,
} as PresenceSettings;

/** Everything announced, in order, from every node. */
function recorder() {
  const announced: { typing: boolean; version: number }[] = [];
  const fanout: PresenceFanout = {
    presenceChanged: async () => {},
    typingChanged: async (_c, _u, typing, version) => void announced.push({ typing, version }),
  };
  return { announced, fanout };
}

const stores: EphemeralStore[] = [];
const nodes: TypingIndicators[] = [];
afterAll(async () => {
  for (const n of nodes) n.stop();
  for (const s of stores) await s.close();
});

const backends: [string, () => Promise<[EphemeralStore, EphemeralStore]>][] = [
  [
    "in-process store (one node)",
    async () => {
      const s = createMemoryStore();
      stores.push(s);
      return [s, s];
    },
  ],
];
if (env.redis) {
  backends.push([
    "Redis (two nodes)",
    async () => {
      const prefix = isolatedRedisPrefix();
      const a = await createRedisStore(env.redis!, prefix);
      const b = await createRedisStore(env.redis!, prefix);
      stores.push(a, b);
      return [a, b];
    },
  ]);
}

describe.each(backends)("typing: the last state sent wins, on %s", (_name, open) => {
  it("a stale true applied after a later false is dropped, and the next true is announced", async () => {
    const [storeA, storeB] = await open();
    const { announced, fanout } = recorder();
    const logger = pino({ level: "silent" });
    const nodeA = new TypingIndicators({ store: storeA, fanout, settings, logger });
    const nodeB = new TypingIndicators({ store: storeB, fanout, settings, logger });
    nodes.push(nodeA, nodeB);
    const c = crypto.randomUUID();
    const u = crypto.randomUUID();

    // The user sends true, then false a few ms later; the true is received first (stamped first)…
    const trueStamp = Date.now() * 1000; // versions: µs when the server received the state (TypingIndicators.stamp())
    const falseStamp = trueStamp + 4_000; // …and the false 4 ms after it, on another node
    // …but the false is applied first.
    await nodeB.set(c, u, false, falseStamp);
    await nodeA.set(c, u, true, trueStamp);
    expect(announced.map((a) => a.typing)).toEqual([false]);

    // The user types again: announced at once, not swallowed by the throttle.
    await nodeA.set(c, u, true, falseStamp + 10_000);
    expect(announced.map((a) => a.typing)).toEqual([false, true]);
    // A repeat inside the throttle window is not re-announced; a stop is.
    await nodeB.set(c, u, true, falseStamp + 20_000);
    expect(announced.map((a) => a.typing)).toEqual([false, true]);
    await nodeA.set(c, u, false, falseStamp + 30_000);
    expect(announced.map((a) => a.typing)).toEqual([false, true, false]);
    // Versions only grow: every stream can drop anything older than what it delivered.
    const versions = announced.map((a) => a.version);
    expect([...versions].sort((x, y) => x - y)).toEqual(versions);
  });

  it("in order, true then false are both announced", async () => {
    const [storeA] = await open();
    const { announced, fanout } = recorder();
    const node = new TypingIndicators({ store: storeA, fanout, settings, logger: pino({ level: "silent" }) });
    nodes.push(node);
    const c = crypto.randomUUID();
    const u = crypto.randomUUID();
    await node.set(c, u, true);
    await node.set(c, u, false);
    expect(announced.map((a) => a.typing)).toEqual([true, false]);
  });
});
