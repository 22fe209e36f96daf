// PasswordHasher with the real argon2 binding, and its concurrency gate.

import { describe, expect, it } from "vitest";
import { hash, argon2i } from "argon2";
import { Gate, PasswordHasher } from "../../src/auth/passwords.ts";

const OWASP = { memoryCost: 19456, timeCost: 2, parallelism: 1 };

describe("PasswordHasher", () => {
  it("hashes with argon2id and the given parameters, and verifies", async () => {
    const h = await PasswordHasher.create(OWASP);
    const stored = await h.hash("correct horse battery staple");
    expect(stored).toMatch(/^\$argon2id\$v=19\$/);
    expect(await h.verify(stored, "correct horse battery staple")).toBe(true);
    expect(await h.verify(stored, "correct horse battery stapl")).toBe(false);
    expect(await h.verify("not a hash", "whatever")).toBe(false);
    expect(await h.verifyDummy("whatever")).toBe(false);
    expect(h.needsRehash(stored)).toBe(false);
  });

  it("asks for a re-hash when the parameters were raised or the hash is not argon2id", async () => {
    const old = await PasswordHasher.create(OWASP);
    const raised = await PasswordHasher.create({ ...OWASP, memoryCost: 24576 });
    const stored = await old.hash("a password here");
    expect(raised.needsRehash(stored)).toBe(true);
    expect(raised.needsRehash(await raised.hash("a password here"))).toBe(false);
    expect(old.needsRehash(await hash("a password here", { type: argon2i, ...OWASP }))).toBe(true);
    expect(old.needsRehash("garbage")).toBe(true);
  });
});

describe("Gate", () => {
  it("runs at most `max` operations at once, in arrival order", async () => {
    const gate = new Gate(2);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const releases: (() => void)[] = [];
    const results = Array.from({ length: 6 }, (_, i) =>
      gate.run(async () => {
        started.push(i);
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((resolve) => releases.push(resolve));
        running--;
        return i;
      }),
    );
    // Release whichever operations are running until all six have run.
    for (let released = 0; released < 6; released++) {
      while (releases.length === 0) await new Promise((r) => setImmediate(r));
      expect(running).toBeLessThanOrEqual(2);
      releases.shift()!();
    }
    expect(await Promise.all(results)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(peak).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("frees the slot when an operation fails", async () => {
    const gate = new Gate(1);
    await expect(gate.run(async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await gate.run(async () => "next")).toBe("next");
  });
});
