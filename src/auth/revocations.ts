// Makes a session's end take effect for its access tokens at once, on every
// node, without a database read per call.
//
// The database is the authority on sessions; access tokens are self-contained
// JWTs. To refuse a revoked session's still-unexpired token, revocation writes
// a marker in the ephemeral store (Redis when configured: shared by all nodes)
// that lives as long as any token of that session can: the access-token TTL
// plus clock tolerance. Every authenticated call reads that one key. Markers
// are also cached in process (a revocation never un-happens), so repeated calls
// with a dead token cost nothing. A "stale" marker instead of "revoked" refuses
// only tokens issued before a moment (roles changed: the client refreshes and
// gets a token with the new roles).
//
// Every revocation is also published on SESSION_REVOKED_CHANNEL so that the
// realtime layer can close the open streams of those sessions.

import type { EphemeralStore } from "../stores/ephemeral/ephemeral.ts";
import { unauthenticated } from "../shared/errors.ts";
import type { AccessClaims } from "./tokens.ts";
import { CLOCK_TOLERANCE_SEC } from "./tokens.ts";

/** Channel (in the ephemeral store) announcing ended sessions; payload: SessionRevokedMessage as JSON. */
export const SESSION_REVOKED_CHANNEL = "session-revoked";

export interface SessionRevokedMessage {
  userId: string;
  sessionIds: string[];
  /** e.g. "logout", "revoked", "refresh_token_reuse", "suspended", "password_changed", "replaced". */
  reason: string;
}

const REVOKED = "revoked";
const key = (sessionId: string) => `auth:session:${sessionId}`;
const LOCAL_MAX = 10_000;

export class SessionRevocations {
  private readonly ephemeral: EphemeralStore;
  private readonly markerTtlMs: number;
  /** sessionId -> time the marker stops mattering (ms). Only "revoked" is cached: it is final. */
  private readonly local = new Map<string, number>();

  constructor(ephemeral: EphemeralStore, accessTokenTtlSec: number) {
    this.ephemeral = ephemeral;
    this.markerTtlMs = (accessTokenTtlSec + 2 * CLOCK_TOLERANCE_SEC) * 1000;
  }

  /** Marks sessions revoked for their access tokens, then announces it. Call after the database says so. */
  async revoked(userId: string, sessionIds: string[], reason: string): Promise<void> {
    if (sessionIds.length === 0) return;
    await Promise.all(sessionIds.map((id) => this.ephemeral.set(key(id), REVOKED, { ttlMs: this.markerTtlMs })));
    for (const id of sessionIds) this.remember(id);
    const message: SessionRevokedMessage = { userId, sessionIds, reason };
    await this.ephemeral.publish(SESSION_REVOKED_CHANNEL, new TextEncoder().encode(JSON.stringify(message)));
  }

  /** Refuses access tokens of these sessions issued before `atMs` (they carry outdated roles). */
  async staleBefore(sessionIds: string[], atMs: number): Promise<void> {
    await Promise.all(
      sessionIds.map(async (id) => {
        // Never downgrade a revocation to a mere staleness mark.
        if ((await this.ephemeral.get(key(id))) === REVOKED) return;
        await this.ephemeral.set(key(id), String(atMs), { ttlMs: this.markerTtlMs });
      }),
    );
  }

  /** Throws UNAUTHENTICATED when the token's session was revoked or its roles changed since it was issued. */
  async check(claims: AccessClaims): Promise<void> {
    const cachedUntil = this.local.get(claims.sessionId);
    if (cachedUntil !== undefined) {
      if (cachedUntil > Date.now()) throw unauthenticated("SESSION_REVOKED", "session revoked");
      this.local.delete(claims.sessionId);
    }
    const marker = await this.ephemeral.get(key(claims.sessionId));
    if (marker === null) return;
    if (marker === REVOKED) {
      this.remember(claims.sessionId);
      throw unauthenticated("SESSION_REVOKED", "session revoked");
    }
    if (claims.issuedAtMs < Number(marker)) throw unauthenticated("TOKEN_OUTDATED", "access token outdated; refresh it");
  }

  /**
   * Subscribes to revocations from every node (for closing streams).
   * Returns the unsubscribe function.
   */
  static subscribe(ephemeral: EphemeralStore, handler: (m: SessionRevokedMessage) => void): Promise<() => Promise<void>> {
    return ephemeral.subscribe(SESSION_REVOKED_CHANNEL, (bytes) => {
      let message: SessionRevokedMessage;
      try {
        message = JSON.parse(new TextDecoder().decode(bytes)) as SessionRevokedMessage;
      } catch {
        return;
      }
      handler(message);
    });
  }

  private remember(sessionId: string): void {
    if (this.local.size >= LOCAL_MAX) {
      // Oldest first (Map keeps insertion order); the ephemeral store still knows.
      const first = this.local.keys().next().value;
      if (first !== undefined) this.local.delete(first);
    }
    this.local.set(sessionId, Date.now() + this.markerTtlMs);
  }
}
