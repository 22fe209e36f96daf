// The SDK's away-when-idle (client/src/idle.ts) on a clock the test moves:
// away once after idleMs without input, online at the next input, a failed
// SetPresence tried again at the next check, never two at once. The browser
// test (test/browser/app.test.ts, "away when idle") runs it against the server.

import { expect, it } from "vitest";
import { IdlePresence, type IdleStatus } from "../../client/src/idle.ts";

function setup(fail = 0) {
  let t = 0;
  const told: IdleStatus[] = [];
  let failures = fail;
  const idle = new IdlePresence({
    idleMs: 1_000,
    now: () => t,
    setStatus: async (s) => {
      if (failures > 0) {
        failures--;
        throw new Error("offline");
      }
      told.push(s);
    },
  });
  return { idle, told, advance: (ms: number) => (t += ms) };
}

it("says away once after idleMs without input, and online at the next input", async () => {
  const { idle, told, advance } = setup();
  advance(999);
  await idle.check();
  expect(told).toEqual([]);
  advance(1);
  await idle.check();
  await idle.check();
  expect(told).toEqual(["away"]);
  expect(idle.status).toBe("away");
  idle.activity();
  await idle.check();
  expect(told).toEqual(["away", "online"]);
  expect(idle.status).toBe("online");
  // Input while online tells the server nothing.
  advance(500);
  idle.activity();
  await idle.check();
  expect(told).toEqual(["away", "online"]);
});

it("tries again at the next check when SetPresence fails, and sends one call at a time", async () => {
  const { idle, told, advance } = setup(1);
  advance(2_000);
  await idle.check(); // fails: still online as far as the server knows
  expect(told).toEqual([]);
  expect(idle.status).toBe("online");
  await Promise.all([idle.check(), idle.check(), idle.check()]);
  expect(told).toEqual(["away"]);
});
