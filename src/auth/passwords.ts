// Password hashing with argon2id (OWASP Password Storage Cheat Sheet).

import { randomBytes } from "node:crypto";
import { hash, verify, needsRehash, argon2id } from "argon2";
import type { Argon2Params } from "../config.ts";

export class PasswordHasher {
  private readonly params: Argon2Params;
  private readonly dummyHash: string;

  private constructor(params: Argon2Params, dummyHash: string) {
    this.params = params;
    this.dummyHash = dummyHash;
  }

  /**
   * Builds a hasher, including a hash of a random secret with the same
   * parameters, so that a login for an unknown account does the same work
   * as one with a wrong password.
   */
  static async create(params: Argon2Params): Promise<PasswordHasher> {
    const dummy = await hash(randomBytes(32).toString("base64url"), { type: argon2id, ...params });
    return new PasswordHasher(params, dummy);
  }

  hash(password: string): Promise<string> {
    return hash(password, { type: argon2id, ...this.params });
  }

  /** Verifies; a malformed stored hash counts as a mismatch, never a crash. */
  async verify(storedHash: string, password: string): Promise<boolean> {
    try {
      return await verify(storedHash, password);
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
