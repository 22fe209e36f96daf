// Throttles for Login and Register, in the ephemeral store (Redis when
// configured, so all nodes share the counters; in process otherwise).
//
// Login is throttled with growing delays, not a lockout, and in separate
// buckets so that a stranger's failures cannot shut the owner out (OWASP
// "Slow Down Online Guessing Attacks with Device Cookies"; docs/AUTH.md
// "Login throttling"):
//
// - a known device (a valid device token for the account) counts only its own
//   failures, and no other bucket applies to it;
// - an unknown device counts in three buckets: the account from this address,
//   the account from everywhere, and this address over all accounts.
//
// Each bucket lets `free` failures through per window; from then on it is a
// gate: one attempt may pass, which closes the gate for a delay that doubles
// with each further failure (base, 2×base, ... up to max). Attempts while the
// gate is closed are refused with RESOURCE_EXHAUSTED + RetryInfo and are not
// counted. An attempt is counted (and the gate closed) before the password is
// checked, so parallel guesses cannot slip through; a success hands it back.

import { RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";
import type { EphemeralStore } from "../stores/ephemeral/ephemeral.ts";
import { resourceExhausted, unavailable } from "../shared/errors.ts";

export interface AuthRateLimitSettings {
  /** Failures of one account from one address (unknown devices) before delays begin. */
  loginFailuresPerAccountAddress: number;
  /** Failures of one account from all unknown devices together before delays begin for them. */
  loginFailuresPerAccount: number;
  /** Failures from one known device (device token) before delays begin for it. */
  loginFailuresPerDevice: number;
  /** Failures counted per account, account+address and device are forgotten this long after the first. */
  loginWindowSec: number;
  /** Failures from one address over all accounts (unknown devices) before delays begin for it. */
  loginFailuresPerAddress: number;
  /** The per-address count is forgotten this long after its first failure. */
  loginAddressWindowSec: number;
  /** The first delay; each further failure doubles it. */
  loginBackoffBaseSec: number;
  /** The longest delay. */
  loginBackoffMaxSec: number;
  /** Registrations per client address per window. */
  registerPerAddress: number;
  /** Registration attempts per email address per window. */
  registerPerAccount: number;
  registerWindowSec: number;
}

/** Which bucket refused an attempt (audit metadata and the error message). */
export type LoginScope = "device" | "account_address" | "account" | "address";

const MESSAGES: Record<LoginScope, string> = {
  device: "too many failed logins from this device; wait before trying again",
  account_address: "too many failed logins for this account from this address; wait before trying again",
  account: "too many failed logins for this account from unknown devices; wait before trying again, or sign in from a device you used before",
  address: "too many failed logins from this address; wait before trying again",
};

/** A refused login attempt: which bucket, and how long until its gate opens. */
export class LoginThrottled extends Error {
  readonly scope: LoginScope;
  readonly retryAfterMs: number;
  constructor(scope: LoginScope, retryAfterMs: number) {
    super(MESSAGES[scope]);
    this.scope = scope;
    this.retryAfterMs = retryAfterMs;
  }
}

/** One throttling bucket kind: a failure counter and a gate, per key. */
class Backoff {
  readonly scope: LoginScope;
  private readonly free: number;
  private readonly baseSec: number;
  private readonly maxSec: number;
  private readonly counter: RateLimiterAbstract;
  private readonly gate: RateLimiterAbstract;

  constructor(ephemeral: EphemeralStore, scope: LoginScope, free: number, windowSec: number, baseSec: number, maxSec: number) {
    this.scope = scope;
    this.free = free;
    this.baseSec = baseSec;
    this.maxSec = maxSec;
    // The counter never refuses: it only counts (atomically, so parallel attempts get distinct numbers).
    this.counter = ephemeral.rateLimiter({ keyPrefix: `auth:login:${scope}:n`, points: 1_000_000_000, durationSec: windowSec });
    // One point: the first consume claims the gate, later ones are refused until it expires.
    this.gate = ephemeral.rateLimiter({ keyPrefix: `auth:login:${scope}:gate`, points: 1, durationSec: maxSec });
  }

  /** Milliseconds until the key's gate opens; 0 when open. */
  async closedFor(key: string): Promise<number> {
    const res = await guard(() => this.gate.get(key));
    return res && res.consumedPoints >= 1 && res.msBeforeNext > 0 ? res.msBeforeNext : 0;
  }

  /**
   * Counts an attempt; past the free ones it must claim the gate, and closes
   * it for the delay due after this attempt. Throws LoginThrottled (the
   * attempt then not counted) when the gate is held.
   */
  async take(key: string): Promise<Taken> {
    const counted = await guard(() => this.counter.consume(key, 1));
    const n = counted.consumedPoints;
    if (n < this.free) return { backoff: this, key, claimed: false };
    try {
      await this.gate.consume(key, 1);
    } catch (err) {
      await guard(() => this.counter.reward(key, 1));
      if (err instanceof RateLimiterRes) throw new LoginThrottled(this.scope, err.msBeforeNext);
      throw storeDown(err);
    }
    await guard(() => this.gate.block(key, this.delaySec(n - this.free + 1)));
    return { backoff: this, key, claimed: true };
  }

  /** The delay after the k-th failure past the free ones (k ≥ 1). */
  delaySec(k: number): number {
    return Math.min(this.maxSec, this.baseSec * 2 ** Math.min(k - 1, 40));
  }

  /** Gives a taken attempt back (another bucket refused it). */
  async undo(t: Taken): Promise<void> {
    await guard(() => this.counter.reward(t.key, 1));
    if (t.claimed) await guard(() => this.gate.delete(t.key));
  }

  /** A success: the key starts afresh. */
  async reset(key: string): Promise<void> {
    await Promise.all([guard(() => this.counter.delete(key)), guard(() => this.gate.delete(key))]);
  }

  /** A success that must not wipe the bucket (an address shared with guessers): one failure handed back. */
  async forgiveOne(key: string): Promise<void> {
    // Never below zero: successes must not bank credit for later failures.
    const res = await guard(() => this.counter.get(key));
    if (res && res.consumedPoints > 0) await guard(() => this.counter.reward(key, 1));
  }
}

interface Taken {
  backoff: Backoff;
  key: string;
  claimed: boolean;
}

/** Who is logging in, as the throttles see it. */
export interface LoginAttempt {
  /** `user:<id>` for an account, `login:<name>` for a name with no account (throttled alike). */
  accountKey: string;
  /** The socket address ("" when unknown). */
  address: string;
  /** The device key of a valid device token for this account; null for an unknown device. */
  deviceKey: string | null;
}

export class AuthRateLimits {
  private readonly device: Backoff;
  private readonly accountAddress: Backoff;
  private readonly account: Backoff;
  private readonly address: Backoff;
  private readonly registerAddress: RateLimiterAbstract;
  private readonly registerAccount: RateLimiterAbstract;

  constructor(ephemeral: EphemeralStore, s: AuthRateLimitSettings) {
    const b = [s.loginBackoffBaseSec, s.loginBackoffMaxSec] as const;
    this.device = new Backoff(ephemeral, "device", s.loginFailuresPerDevice, s.loginWindowSec, ...b);
    this.accountAddress = new Backoff(ephemeral, "account_address", s.loginFailuresPerAccountAddress, s.loginWindowSec, ...b);
    this.account = new Backoff(ephemeral, "account", s.loginFailuresPerAccount, s.loginWindowSec, ...b);
    this.address = new Backoff(ephemeral, "address", s.loginFailuresPerAddress, s.loginAddressWindowSec, ...b);
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

  private buckets(a: LoginAttempt): [Backoff, string][] {
    if (a.deviceKey !== null) return [[this.device, `${a.accountKey}:${a.deviceKey}`]];
    const out: [Backoff, string][] = [];
    if (a.address) out.push([this.accountAddress, `${a.accountKey}@${a.address}`]);
    out.push([this.account, a.accountKey]);
    if (a.address) out.push([this.address, a.address]);
    return out;
  }

  /**
   * Counts a login attempt before the password is checked; throws
   * LoginThrottled (nothing counted) while any of its buckets' gates is closed.
   */
  async beginLogin(a: LoginAttempt): Promise<void> {
    const buckets = this.buckets(a);
    // Refuse cheaply (and without counting) while a gate is closed. The buckets are independent keys: in parallel.
    const closed = await Promise.all(buckets.map(([b, key]) => b.closedFor(key)));
    let worst: LoginThrottled | null = null;
    closed.forEach((ms, i) => {
      if (ms > 0 && (!worst || ms > worst.retryAfterMs)) worst = new LoginThrottled(buckets[i][0].scope, ms);
    });
    if (worst) throw worst;
    const results = await Promise.allSettled(buckets.map(([b, key]) => b.take(key)));
    const refused = results.find((r) => r.status === "rejected");
    if (refused) {
      // One bucket refused (or the store failed): the others give their count back.
      await Promise.all(results.map((r) => (r.status === "fulfilled" ? r.value.backoff.undo(r.value) : undefined)));
      throw refused.reason;
    }
  }

  /** The right password: the account's buckets start afresh; the address gets one failure back. */
  async loginSucceeded(a: LoginAttempt): Promise<void> {
    await Promise.all(this.buckets(a).map(([b, key]) => (b === this.address ? b.forgiveOne(key) : b.reset(key))));
  }

  async beginRegister(emailKey: string, address: string): Promise<void> {
    if (address) await consume(this.registerAddress, address, "too many registrations from this address; try again later");
    await consume(this.registerAccount, emailKey, "too many registration attempts for this email; try again later");
  }
}

/** The RPC error for a refused login attempt. */
export function loginThrottledError(t: LoginThrottled) {
  return resourceExhausted("LOGIN_THROTTLED", t.message, Math.max(1000, Math.ceil(t.retryAfterMs)));
}

async function consume(limiter: RateLimiterAbstract, key: string, message: string): Promise<void> {
  try {
    await limiter.consume(key, 1);
  } catch (err) {
    // rate-limiter-flexible rejects with a RateLimiterRes when over the limit,
    // and with an Error when its store fails.
    if (err instanceof RateLimiterRes) throw resourceExhausted("RATE_LIMITED", message, Math.max(1000, Math.ceil(err.msBeforeNext)));
    throw storeDown(err);
  }
}

function storeDown(err: unknown) {
  return unavailable("STORE_UNAVAILABLE", "rate limiter unavailable", err, undefined, { store: "rate_limiter" });
}

async function guard<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw storeDown(err);
  }
}
