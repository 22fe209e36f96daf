// Makes a session's end take effect for its access tokens on every node within
// a bound, with no store round trip per call (docs/AUTH.md, "Revocation across
// nodes").
//
// The database is the authority on sessions; access tokens are self-contained
// JWTs. Every node keeps in memory the sessions whose access changed within an
// access-token lifetime: revoked ones (all their tokens refused) and "stale"
// ones (tokens issued before a time refused: roles changed, the client
// refreshes). The view is fed by
//   1. the node's own revocations, at once;
//   2. pushes from the other nodes over the ephemeral store's pub/sub
//      (SESSION_REVOKED_CHANNEL, SESSION_STALE_CHANNEL): Redis, or the
//      in-process twin on one node;
//   3. a periodic catch-up from the database ("whose access changed since the
//      last catch-up", sessions.access_changed_at), which repairs a message
//      lost while the subscription was down or a publish that failed.
//
// Fail-safe: a call is answered from memory only while the view is known to be
// current: the subscription is live and a catch-up has completed since it
// (re)connected, or the last catch-up started less than `maxLagMs` ago (the
// catch-up polls every maxLagMs / 2 while the subscription is down). Otherwise
// the call reads its session from the database (UNAVAILABLE if that fails):
// a lost Redis connection never lets a revoked token through, it only costs
// lookups until the feed is back.

import type { Logger } from "pino";
import { Counter, Gauge, type Registry } from "prom-client";
import type { EphemeralStore } from "../stores/ephemeral/ephemeral.ts";
import { unauthenticated, unavailable } from "../shared/errors.ts";
import type { SessionAccessChange, SessionAccessSource } from "./auth-store.ts";
import type { AccessClaims } from "./tokens.ts";
import { CLOCK_TOLERANCE_SEC } from "./tokens.ts";

/** Channel (in the ephemeral store) announcing ended sessions; payload: SessionRevokedMessage as JSON. */
export const SESSION_REVOKED_CHANNEL = "session-revoked";
/** Channel announcing sessions whose older tokens are refused; payload: SessionStaleMessage as JSON. */
export const SESSION_STALE_CHANNEL = "session-stale";

export interface SessionRevokedMessage {
  userId: string;
  sessionIds: string[];
  /** e.g. "logout", "revoked", "refresh_token_reuse", "suspended", "password_changed", "replaced". */
  reason: string;
}

export interface SessionStaleMessage {
  userId: string;
  sessionIds: string[];
  /** Tokens issued before this time (ms) are refused. */
  beforeMs: number;
}

export interface RevocationSettings {
  accessTokenTtlSec: number;
  /** Catch-up period while the subscription is live (AUTH_REVOCATION_CATCHUP_MS). */
  catchupIntervalMs: number;
  /** Oldest catch-up that may answer a call while the subscription is down (AUTH_REVOCATION_MAX_LAG_MS). */
  maxLagMs: number;
}

/**
 * Re-read this much before the previous catch-up's time: a revocation's
 * access_changed_at is taken inside its transaction, which may commit a little
 * after a catch-up that ran meanwhile. Re-reading is harmless (idempotent).
 */
const CATCHUP_OVERLAP_MS = 30_000;

interface Entry {
  revoked: boolean;
  staleBeforeMs: number;
  /** When the entry stops mattering: every token it can refuse has expired. */
  untilMs: number;
}

export interface RevocationMetrics {
  lookups: Counter;
  catchups: Counter<"result">;
  feedLive: Gauge;
  feedLost: Counter;
  sessions: Gauge;
}

export function createRevocationMetrics(registry?: Registry): RevocationMetrics {
  const registers = registry ? [registry] : [];
  return {
    lookups: new Counter({
      name: "auth_revocation_fallback_lookups_total",
      help: "Access-token checks that read the session from the database because the revocation feed could not vouch for the in-memory view",
      registers,
    }),
    catchups: new Counter({
      name: "auth_revocation_catchups_total",
      help: "Revocation catch-up reads from the database, by result (ok, failed)",
      labelNames: ["result"],
      registers,
    }),
    feedLive: new Gauge({ name: "auth_revocation_feed_live", help: "1 while the revocation subscription is live and caught up", registers }),
    feedLost: new Counter({ name: "auth_revocation_feed_lost_total", help: "Times the revocation subscription was lost", registers }),
    sessions: new Gauge({ name: "auth_revocation_sessions", help: "Sessions held in the in-memory revocation view", registers }),
  };
}

export class SessionRevocations {
  private readonly ephemeral: EphemeralStore;
  private readonly source: SessionAccessSource;
  private readonly settings: RevocationSettings;
  private readonly markerTtlMs: number;
  private readonly metrics: RevocationMetrics;
  private readonly logger?: Logger;
  private readonly view = new Map<string, Entry>();

  /** Subscription state, as reported by the ephemeral store. */
  private subscribed = false;
  /** A catch-up that started after the subscription last became live has completed. */
  private caughtUpSinceLive = false;
  private liveSinceMs = 0;
  /** Node time just before the last successful catch-up's query was sent. */
  private lastCatchupStartMs = -Infinity;
  /** Database time of the last successful catch-up (the next one reads from it, minus the overlap). */
  private lastCatchupDbNow: Date | null = null;
  private catchupRunning: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly cleanups: (() => Promise<void> | void)[] = [];
  private closed = false;

  constructor(deps: {
    ephemeral: EphemeralStore;
    source: SessionAccessSource;
    settings: RevocationSettings;
    metrics?: RevocationMetrics;
    logger?: Logger;
  }) {
    this.ephemeral = deps.ephemeral;
    this.source = deps.source;
    this.settings = deps.settings;
    this.markerTtlMs = (deps.settings.accessTokenTtlSec + 2 * CLOCK_TOLERANCE_SEC) * 1000;
    this.metrics = deps.metrics ?? createRevocationMetrics();
    this.logger = deps.logger;
  }

  /** Subscribes to the feed and loads the current revocations; resolves when the view is current. */
  async start(): Promise<void> {
    this.cleanups.push(
      await SessionRevocations.subscribe(this.ephemeral, (m) => this.apply(m.sessionIds, { revoked: true, staleBeforeMs: 0 }, Date.now())),
      await this.ephemeral.subscribe(SESSION_STALE_CHANNEL, (bytes) => {
        const m = parseJson<SessionStaleMessage>(bytes);
        if (m && Array.isArray(m.sessionIds) && typeof m.beforeMs === "number")
          this.apply(m.sessionIds, { revoked: false, staleBeforeMs: m.beforeMs }, m.beforeMs);
      }),
      this.ephemeral.onSubscriptionState((live) => this.feedChanged(live)),
    );
    this.feedChanged(this.ephemeral.subscriptionLive());
    await this.catchup();
    this.schedule();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const c of this.cleanups.splice(0)) await c();
  }

  /** Whether a call at `nowMs` may be answered from memory. */
  isCurrent(nowMs = Date.now()): boolean {
    return (this.subscribed && this.caughtUpSinceLive) || nowMs - this.lastCatchupStartMs < this.settings.maxLagMs;
  }

  /**
   * Marks sessions revoked for their access tokens here at once, then tells
   * the other nodes. Call after the database says so (the catch-up reads it there).
   */
  async revoked(userId: string, sessionIds: string[], reason: string): Promise<void> {
    if (sessionIds.length === 0) return;
    this.apply(sessionIds, { revoked: true, staleBeforeMs: 0 }, Date.now());
    const message: SessionRevokedMessage = { userId, sessionIds, reason };
    await this.ephemeral.publish(SESSION_REVOKED_CHANNEL, new TextEncoder().encode(JSON.stringify(message)));
  }

  /** Refuses these sessions' tokens issued before `beforeMs`, here at once, then on the other nodes. Call after the database says so. */
  async staleBefore(userId: string, sessionIds: string[], beforeMs: number): Promise<void> {
    if (sessionIds.length === 0) return;
    this.apply(sessionIds, { revoked: false, staleBeforeMs: beforeMs }, beforeMs);
    const message: SessionStaleMessage = { userId, sessionIds, beforeMs };
    await this.ephemeral.publish(SESSION_STALE_CHANNEL, new TextEncoder().encode(JSON.stringify(message)));
  }

  /**
   * Throws UNAUTHENTICATED when the token's session was revoked or its roles
   * changed since it was issued. Synchronous (returns undefined) while the
   * in-memory view is current; otherwise a promise of the database's answer.
   */
  check(claims: AccessClaims, nowMs = Date.now()): void | Promise<void> {
    if (this.isCurrent(nowMs)) {
      const e = this.view.get(claims.sessionId);
      if (e) {
        if (e.untilMs <= nowMs) this.view.delete(claims.sessionId);
        else refuse(e, claims);
      }
      return;
    }
    return this.lookup(claims);
  }

  /**
   * Subscribes to revocations from every node (for closing streams).
   * Returns the unsubscribe function.
   */
  static subscribe(ephemeral: EphemeralStore, handler: (m: SessionRevokedMessage) => void): Promise<() => Promise<void>> {
    return ephemeral.subscribe(SESSION_REVOKED_CHANNEL, (bytes) => {
      const message = parseJson<SessionRevokedMessage>(bytes);
      if (message && Array.isArray(message.sessionIds)) handler(message);
    });
  }

  /** Sessions held in memory (tests, metrics). */
  get size(): number {
    return this.view.size;
  }

  /** Runs one catch-up now (tests; also the timer's job). Resolves when it is done; throws if it failed. */
  catchup(): Promise<void> {
    this.catchupRunning ??= this.runCatchup().finally(() => (this.catchupRunning = null));
    return this.catchupRunning;
  }

  private async lookup(claims: AccessClaims): Promise<void> {
    this.metrics.lookups.inc();
    let state;
    try {
      state = await this.source.sessionAccess(claims.sessionId);
    } catch (err) {
      throw unavailable("STORE_UNAVAILABLE", "cannot check the session: revocation feed and database unavailable; retry", err, 1_000, {
        store: "sql",
      });
    }
    // No such session: purged long ago (its tokens expired) or its user deleted.
    if (!state || state.revoked) throw unauthenticated("SESSION_REVOKED", "session revoked");
    if (state.staleBeforeMs !== null && claims.issuedAtMs < state.staleBeforeMs)
      throw unauthenticated("TOKEN_OUTDATED", "access token outdated; refresh it");
  }

  private apply(sessionIds: string[], change: { revoked: boolean; staleBeforeMs: number }, fromMs: number): void {
    const untilMs = Math.max(fromMs, Date.now()) + this.markerTtlMs;
    for (const id of sessionIds) {
      if (typeof id !== "string") continue;
      const e = this.view.get(id);
      if (e) {
        // A revocation never un-happens; a stale mark only moves forward.
        e.revoked ||= change.revoked;
        e.staleBeforeMs = Math.max(e.staleBeforeMs, change.staleBeforeMs);
        e.untilMs = Math.max(e.untilMs, untilMs);
      } else {
        this.view.set(id, { revoked: change.revoked, staleBeforeMs: change.staleBeforeMs, untilMs });
      }
    }
    this.metrics.sessions.set(this.view.size);
  }

  private applyChanges(changes: SessionAccessChange[]): void {
    for (const c of changes) {
      if (c.revoked) this.apply([c.sessionId], { revoked: true, staleBeforeMs: 0 }, c.changedAtMs);
      if (c.staleBeforeMs !== null) this.apply([c.sessionId], { revoked: false, staleBeforeMs: c.staleBeforeMs }, c.staleBeforeMs);
    }
  }

  private feedChanged(live: boolean): void {
    if (live === this.subscribed) return;
    this.subscribed = live;
    this.caughtUpSinceLive = false;
    if (live) {
      this.liveSinceMs = Date.now();
      // Messages sent while it was down are lost: catch up (with a read that
      // starts after this moment) before trusting it again.
      const running = this.catchupRunning;
      void (async () => {
        if (running) await running.catch(() => {});
        await this.catchup();
      })().catch(() => {});
    } else {
      this.metrics.feedLost.inc();
      this.logger?.warn("revocation feed lost: checking from the database until it is back and caught up");
    }
    this.metrics.feedLive.set(0);
    this.schedule();
  }

  private async runCatchup(): Promise<void> {
    const startedMs = Date.now();
    const subscribedAtStart = this.subscribed;
    const since = this.lastCatchupDbNow && new Date(this.lastCatchupDbNow.getTime() - CATCHUP_OVERLAP_MS);
    try {
      const { changes, now } = await this.source.accessChangesSince(since, this.markerTtlMs);
      this.applyChanges(changes);
      this.lastCatchupDbNow = now;
      this.lastCatchupStartMs = Math.max(this.lastCatchupStartMs, startedMs);
      if (subscribedAtStart && this.subscribed && startedMs >= this.liveSinceMs) this.caughtUpSinceLive = true;
      this.metrics.feedLive.set(this.subscribed && this.caughtUpSinceLive ? 1 : 0);
      this.metrics.catchups.inc({ result: "ok" });
      // Expired entries go here rather than on the call path.
      const nowMs = Date.now();
      for (const [id, e] of this.view) if (e.untilMs <= nowMs) this.view.delete(id);
      this.metrics.sessions.set(this.view.size);
    } catch (err) {
      this.metrics.catchups.inc({ result: "failed" });
      this.logger?.warn({ err }, "revocation catch-up failed; retrying");
      throw err;
    }
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    // While the feed is down, poll fast enough that the view stays within maxLagMs.
    const delay = this.subscribed ? this.settings.catchupIntervalMs : Math.max(10, Math.floor(this.settings.maxLagMs / 2));
    this.timer = setTimeout(() => {
      this.timer = null;
      this.catchup()
        .catch(() => {})
        .finally(() => this.schedule());
    }, delay);
    this.timer.unref();
  }
}

function refuse(e: Entry, claims: AccessClaims): void {
  if (e.revoked) throw unauthenticated("SESSION_REVOKED", "session revoked");
  if (claims.issuedAtMs < e.staleBeforeMs) throw unauthenticated("TOKEN_OUTDATED", "access token outdated; refresh it");
}

function parseJson<T>(bytes: Uint8Array): T | null {
  try {
    const v: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return v !== null && typeof v === "object" ? (v as T) : null;
  } catch {
    return null;
  }
}
