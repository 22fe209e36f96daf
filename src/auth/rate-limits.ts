// Throttles for Login and Register, per account and per client address, in the
// ephemeral store (Redis when configured, so all nodes share the counters).

import { RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";
import type { EphemeralStore } from "../stores/ephemeral/ephemeral.ts";
import { resourceExhausted, unavailable } from "../shared/errors.ts";

export interface AuthRateLimitSettings {
  /** Login attempts per account per window; the next one is refused. Success resets the count. */
  loginFailuresPerAccount: number;
  /** Failed logins per client address per window. */
  loginFailuresPerAddress: number;
  loginWindowSec: number;
  /** Registrations per client address per window. */
  registerPerAddress: number;
  /** Registration attempts per email address per window. */
  registerPerAccount: number;
  registerWindowSec: number;
}

export class AuthRateLimits {
  private readonly loginAccount: RateLimiterAbstract;
  private readonly loginAddress: RateLimiterAbstract;
  private readonly registerAddress: RateLimiterAbstract;
  private readonly registerAccount: RateLimiterAbstract;

  constructor(ephemeral: EphemeralStore, s: AuthRateLimitSettings) {
    this.loginAccount = ephemeral.rateLimiter({ keyPrefix: "auth:login:account", points: s.loginFailuresPerAccount, durationSec: s.loginWindowSec });
    this.loginAddress = ephemeral.rateLimiter({ keyPrefix: "auth:login:address", points: s.loginFailuresPerAddress, durationSec: s.loginWindowSec });
    this.registerAddress = ephemeral.rateLimiter({
      keyPrefix: "auth:register:address",
      points: s.registerPerAddress,
      durationSec: s.registerWindowSec,
    });
    this.registerAccount = ephemeral.rateLimiter({
      keyPrefix: "auth:register:account",
      points: s.registerPerAccount,
      durationSec: s.registerWindowSec,
    });
  }

  /**
   * Counts a login attempt before the password is checked, so that parallel
   * guesses cannot slip past the limit; success hands the points back.
   */
  async beginLogin(accountKey: string, address: string): Promise<void> {
    await consume(this.loginAccount, accountKey, "too many failed logins for this account; try again later");
    if (address) await consume(this.loginAddress, address, "too many failed logins from this address; try again later");
  }

  async loginSucceeded(accountKey: string, address: string): Promise<void> {
    await guard(() => this.loginAccount.delete(accountKey));
    if (address) await guard(() => this.loginAddress.reward(address, 1));
  }

  async beginRegister(emailKey: string, address: string): Promise<void> {
    if (address) await consume(this.registerAddress, address, "too many registrations from this address; try again later");
    await consume(this.registerAccount, emailKey, "too many registration attempts for this email; try again later");
  }
}

async function consume(limiter: RateLimiterAbstract, key: string, message: string): Promise<void> {
  try {
    await limiter.consume(key, 1);
  } catch (err) {
    // rate-limiter-flexible rejects with a RateLimiterRes when over the limit,
    // and with an Error when its store fails.
    if (err instanceof RateLimiterRes) throw resourceExhausted("RATE_LIMITED", message, Math.max(1000, Math.ceil(err.msBeforeNext)));
    throw unavailable("STORE_UNAVAILABLE", "rate limiter unavailable", err, undefined, { store: "rate_limiter" });
  }
}

async function guard(op: () => Promise<unknown>): Promise<void> {
  try {
    await op();
  } catch (err) {
    throw unavailable("STORE_UNAVAILABLE", "rate limiter unavailable", err, undefined, { store: "rate_limiter" });
  }
}
