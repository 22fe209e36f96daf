// Password hashing with argon2id (OWASP Password Storage Cheat Sheet). At
// most `maxConcurrent` hashes run at once: more only slow each other down on
// the same cores and starve libuv's pool, which file I/O and DNS share.

import { randomBytes } from "node:crypto";
import { hash, verify, needsRehash, argon2id } from "argon2";
import type { Argon2Params } from "../config.ts";

/** A FIFO semaphore: at most `max` operations run at once, the rest wait their turn. */
export class Gate {
  private readonly max: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(max: number) {
    this.max = max;
  }

  async run<T>(op: () => Promise<T>): Promise<T> {
    if (this.running >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await op();
    } finally {
      const next = this.waiting.shift();
      if (next)
        next(); // hands its slot over: `running` stays the same
      else this.running--;
    }
  }
}

export class PasswordHasher {
  private readonly params: Argon2Params;
  private readonly dummyHash: string;
  private readonly gate: Gate;

  private constructor(params: Argon2Params, dummyHash: string, maxConcurrent: number) {
    this.params = params;
    this.dummyHash = dummyHash;
    this.gate = new Gate(maxConcurrent);
  }

  /**
   * Builds a hasher, including a hash of a random secret with the same
   * parameters, so that a login for an unknown account does the same work
   * as one with a wrong password.
   */
  static async create(params: Argon2Params, maxConcurrent = 1): Promise<PasswordHasher> {
    const dummy = await hash(randomBytes(32).toString("base64url"), { type: argon2id, ...params });
    return new PasswordHasher(params, dummy, maxConcurrent);
  }

  hash(password: string): Promise<string> {
    return this.gate.run(() => hash(password, { type: argon2id, ...this.params }));
  }

  /** Verifies; a malformed stored hash counts as a mismatch, never a crash. */
  async verify(storedHash: string, password: string): Promise<boolean> {
    try {
      return await this.gate.run(() => verify(storedHash, password));
    } catch {
      return false;
    }
  }

  /** Spends the same time as verify() for an account that does not exist. */
  async verifyDummy(password: string): Promise<false> {
    await this.verify(this.dummyHash, password);
    return false;
  }

  /** True when the stored hash is not argon2id with the configured parameters. */
  needsRehash(storedHash: string): boolean {
    if (!storedHash.startsWith("$argon2id$")) return true;
    try {
      return needsRehash(storedHash, this.params);
    } catch {
      return true;
    }
  }
}
