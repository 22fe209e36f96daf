// The token manager: holds the access/refresh token pair, refreshes ahead of
// expiry, and makes refresh single-flight. A refresh token is good for ONE
// Refresh (rotation); presenting it twice counts as reuse and the server
// revokes the whole session, so every caller that needs a fresh token shares
// the one Refresh in flight, and a caller holding a token someone already
// replaced just gets the new one.

import { Code, ConnectError } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { TokenPair } from "../../gen/chat/v1/auth_pb.js";

export interface Tokens {
  accessToken: string;
  refreshToken: string;
  /** ms since the epoch. */
  accessTokenExpiresAt: number;
  sessionId: string;
}

/** Where tokens live between runs (a keychain, a file, memory). Default: memory only. */
export interface TokenStorage {
  load(): Tokens | null | Promise<Tokens | null>;
  save(tokens: Tokens | null): void | Promise<void>;
}

/** The session is over (refresh token refused, logged out): sign in again. */
export class SessionEndedError extends Error {
  override name = "SessionEndedError";
}

export interface TokenManagerOptions {
  /** Calls AuthService.Refresh (no bearer token). */
  refresh(refreshToken: string): Promise<{ tokens?: TokenPair }>;
  storage?: TokenStorage;
  /** Refresh this long before expiry, capped at half the token's lifetime. Default 60 s. */
  refreshAheadMs?: number;
  now?: () => number;
  /** The session ended (refresh refused): called once per session. */
  onSessionEnded?: (err: unknown) => void;
  /**
   * Runs each Refresh exclusively among everyone holding the same refresh
   * credential. Browser tabs share one refresh cookie: two tabs refreshing at
   * once would present it twice, which is reuse (web.ts: `crossTabLock`).
   */
  lock?: <T>(f: () => Promise<T>) => Promise<T>;
}

export function tokensFromPair(p: TokenPair): Tokens {
  return {
    accessToken: p.accessToken,
    refreshToken: p.refreshToken,
    accessTokenExpiresAt: p.accessTokenExpiresAt ? timestampMs(p.accessTokenExpiresAt) : Number.MAX_SAFE_INTEGER,
    sessionId: p.sessionId,
  };
}

export class TokenManager {
  private readonly o: TokenManagerOptions;
  private tokens: Tokens | null = null;
  /** When the current pair was obtained (for the "half the lifetime" cap). */
  private obtainedAt = 0;
  private inFlight: Promise<Tokens> | null = null;
  private loaded: Promise<void> | null = null;
  private readonly listeners = new Set<(t: Tokens | null) => void>();
  /** Refresh calls made (for tests and metrics). */
  refreshCount = 0;

  constructor(o: TokenManagerOptions) {
    this.o = o;
  }

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }

  /** Loads stored tokens once (no-op without storage). */
  load(): Promise<void> {
    this.loaded ??= (async () => {
      const t = (await this.o.storage?.load()) ?? null;
      if (t && !this.tokens) this.adopt(t, false);
    })();
    return this.loaded;
  }

  get current(): Tokens | null {
    return this.tokens;
  }

  get signedIn(): boolean {
    return this.tokens !== null;
  }

  /** After Login/Register (or to restore a pair). */
  set(t: Tokens): void {
    this.adopt(t, true);
  }

  clear(): void {
    this.tokens = null;
    void this.o.storage?.save(null);
    this.emit();
  }

  onChange(f: (t: Tokens | null) => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  /** When to refresh ahead of expiry: refreshAheadMs before it, at most half the lifetime. */
  refreshAt(): number {
    if (!this.tokens) return 0;
    const exp = this.tokens.accessTokenExpiresAt;
    const lifetime = Math.max(0, exp - this.obtainedAt);
    return exp - Math.min(this.o.refreshAheadMs ?? 60_000, lifetime / 2);
  }

  /** A usable access token: the current one, or a fresh one when it is due for refresh. */
  async accessToken(): Promise<string> {
    await this.load();
    if (!this.tokens) throw new SessionEndedError("signed out");
    if (this.now() < this.refreshAt()) return this.tokens.accessToken;
    return (await this.refresh(this.tokens.accessToken)).accessToken;
  }

  /**
   * A fresh pair. `stale`: the access token the caller found wanting; if the
   * current one is already another, that is returned without a Refresh.
   * Concurrent callers share one Refresh.
   */
  async refresh(stale?: string): Promise<Tokens> {
    await this.load();
    if (this.inFlight) return this.inFlight;
    const t = this.tokens;
    if (!t) throw new SessionEndedError("signed out");
    if (stale !== undefined && t.accessToken !== stale) return t;
    const p = (async () => {
      try {
        this.refreshCount++;
        const res = await this.exclusive(() => this.o.refresh(t.refreshToken));
        if (!res.tokens) throw new ConnectError("Refresh returned no tokens", Code.Internal);
        // Signed out (or another pair set) meanwhile: keep that.
        if (this.tokens !== t) {
          if (!this.tokens) throw new SessionEndedError("signed out");
          return this.tokens;
        }
        this.adopt(tokensFromPair(res.tokens), true);
        return this.tokens!;
      } catch (err) {
        if (err instanceof SessionEndedError) throw err;
        const code = ConnectError.from(err).code;
        if ((code === Code.Unauthenticated || code === Code.PermissionDenied) && this.tokens === t) {
          this.clear();
          this.o.onSessionEnded?.(err);
          throw new SessionEndedError("session ended", { cause: err });
        }
        throw err; // offline or server trouble: keep the session, try again later
      }
    })();
    this.inFlight = p;
    try {
      return await p;
    } finally {
      this.inFlight = null;
    }
  }

  /**
   * Cookie sessions (the server keeps the refresh token in an HttpOnly cookie,
   * so the page never holds it): asks Refresh for a pair with none in hand, as
   * after a reload. True when signed in; false when the server says there is no
   * session (no or dead cookie); network trouble is thrown.
   */
  async resume(): Promise<boolean> {
    await this.load();
    if (this.tokens) return true;
    if (this.inFlight) return this.inFlight.then(() => true);
    const p = (async () => {
      this.refreshCount++;
      const res = await this.exclusive(() => this.o.refresh(""));
      if (!res.tokens) throw new ConnectError("Refresh returned no tokens", Code.Internal);
      if (!this.tokens) this.adopt(tokensFromPair(res.tokens), true);
      return this.tokens!;
    })();
    this.inFlight = p;
    try {
      await p;
      return true;
    } catch (err) {
      const code = ConnectError.from(err).code;
      if (code === Code.Unauthenticated || code === Code.PermissionDenied) return false;
      throw err;
    } finally {
      this.inFlight = null;
    }
  }

  private exclusive<T>(f: () => Promise<T>): Promise<T> {
    return this.o.lock ? this.o.lock(f) : f();
  }

  private adopt(t: Tokens, save: boolean): void {
    this.tokens = t;
    this.obtainedAt = this.now();
    if (save) void this.o.storage?.save(t);
    this.emit();
  }

  private emit(): void {
    for (const f of this.listeners) f(this.tokens);
  }
}

/** Errors worth retrying with the same request later (offline, server restarting, overloaded). */
export function isTransient(err: unknown): boolean {
  if (err instanceof SessionEndedError) return false;
  const code = ConnectError.from(err).code;
  return (
    code === Code.Unavailable ||
    code === Code.Unknown ||
    code === Code.Canceled ||
    code === Code.DeadlineExceeded ||
    code === Code.Aborted ||
    code === Code.ResourceExhausted ||
    code === Code.Internal
  );
}
