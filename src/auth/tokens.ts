// Access tokens (short-lived signed JWTs) and refresh tokens (opaque, random,
// stored only as a hash).

import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { SignJWT } from "jose";
import { unauthenticated } from "../shared/errors.ts";
import { isUuid } from "../shared/ids.ts";

const ISSUER = "chat.v1";
const AUDIENCE = "chat.v1";
// RFC 9068 media type for JWT access tokens; verification insists on it so an
// HS256 JWT minted for another purpose with the same secret is refused.
const TYPE = "at+jwt";
/** Clock skew accepted between nodes, in seconds. */
export const CLOCK_TOLERANCE_SEC = 5;
/** Far above any token this server mints (~400 bytes); refused before any work. */
const MAX_TOKEN_LENGTH = 4096;
const B64URL = /^[A-Za-z0-9_-]+$/;
/** base64url of HMAC-SHA256: 32 bytes, 43 characters without padding. */
const SIGNATURE_LENGTH = 43;

export interface AccessClaims {
  userId: string;
  sessionId: string;
  roles: string[];
  /** Issue time in ms: finer than `iat`, compared with a session's "stale before" mark. */
  issuedAtMs: number;
}

export class AccessTokens {
  private readonly key: Uint8Array;
  private readonly ttlSec: number;
  private readonly cache: VerifiedTokenCache;

  /** `cacheMax`: verified tokens kept (LRU) until they expire; 0 turns the cache off. */
  constructor(secret: string | Uint8Array, ttlSec: number, cacheMax = 10_000) {
    this.key = typeof secret === "string" ? new TextEncoder().encode(secret) : secret;
    this.ttlSec = ttlSec;
    this.cache = new VerifiedTokenCache(cacheMax);
  }

  async sign(sub: { userId: string; sessionId: string; roles: string[] }, now = Date.now()): Promise<{ token: string; expiresAt: Date }> {
    const iat = Math.floor(now / 1000);
    const exp = iat + this.ttlSec;
    const token = await new SignJWT({ sid: sub.sessionId, roles: sub.roles, iat_ms: now })
      .setProtectedHeader({ alg: "HS256", typ: TYPE })
      .setSubject(sub.userId)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(this.key);
    return { token, expiresAt: new Date(exp * 1000) };
  }

  /**
   * Checks signature, algorithm, type, issuer, audience, expiry and the shape
   * of every claim, synchronously; throws UNAUTHENTICATED. A token verified
   * before is answered from the cache until it expires (the cache holds only
   * tokens whose signature was checked, keyed by the exact string).
   */
  verify(token: string, nowMs = Date.now()): AccessClaims {
    const cached = this.cache.get(token);
    if (cached) {
      if (nowMs >= cached.expiresAtMs + CLOCK_TOLERANCE_SEC * 1000) {
        this.cache.delete(token);
        throw unauthenticated("TOKEN_EXPIRED", "access token expired");
      }
      return cached.claims;
    }
    const { claims, expiresAtMs } = this.verifyUncached(token, nowMs);
    this.cache.set(token, { claims, expiresAtMs });
    return claims;
  }

  /** Verified tokens held in the cache (for tests and metrics). */
  get cachedTokens(): number {
    return this.cache.size;
  }

  private verifyUncached(token: string, nowMs: number): { claims: AccessClaims; expiresAtMs: number } {
    const invalid = () => unauthenticated("TOKEN_INVALID", "invalid access token");
    if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH) throw invalid();
    const first = token.indexOf(".");
    const second = token.indexOf(".", first + 1);
    if (first <= 0 || second <= first + 1 || token.indexOf(".", second + 1) !== -1) throw invalid();
    const headerPart = token.slice(0, first);
    const payloadPart = token.slice(first + 1, second);
    const signaturePart = token.slice(second + 1);
    if (!B64URL.test(headerPart) || !B64URL.test(payloadPart) || signaturePart.length !== SIGNATURE_LENGTH || !B64URL.test(signaturePart)) {
      throw invalid();
    }

    // The header first: only HS256 with our type, and nothing the verifier would have to understand.
    const header = parseJsonObject(headerPart);
    if (header?.alg !== "HS256" || header.typ !== TYPE || Object.keys(header).some((k) => k !== "alg" && k !== "typ")) throw invalid();

    // Then the signature, in constant time, over the exact characters received;
    // comparing the canonical base64url text also refuses a signature with
    // altered padding bits (same bytes, different string).
    const expected = Buffer.from(createHmac("sha256", this.key).update(token.slice(0, second)).digest("base64url"), "latin1");
    if (!timingSafeEqual(expected, Buffer.from(signaturePart, "latin1"))) throw invalid();

    const p = parseJsonObject(payloadPart);
    if (!p) throw invalid();
    const { sub, sid, roles, iat, exp, nbf, iss, aud, iat_ms: iatMs } = p;
    if (iss !== ISSUER) throw invalid();
    if (!(aud === AUDIENCE || (Array.isArray(aud) && aud.includes(AUDIENCE)))) throw invalid();
    if (!isNumericDate(exp) || !isNumericDate(iat)) throw invalid();
    if (nbf !== undefined && (!isNumericDate(nbf) || nbf * 1000 > nowMs + CLOCK_TOLERANCE_SEC * 1000)) throw invalid();
    if (iat * 1000 > nowMs + CLOCK_TOLERANCE_SEC * 1000) throw invalid(); // issued in the future
    if (typeof sub !== "string" || !isUuid(sub) || typeof sid !== "string" || !isUuid(sid)) throw invalid();
    if (!Array.isArray(roles) || !roles.every((r) => typeof r === "string")) throw invalid();
    if (iatMs !== undefined && (typeof iatMs !== "number" || !Number.isFinite(iatMs))) throw invalid();
    if (nowMs >= exp * 1000 + CLOCK_TOLERANCE_SEC * 1000) throw unauthenticated("TOKEN_EXPIRED", "access token expired");
    return {
      claims: {
        userId: sub.toLowerCase(),
        sessionId: sid.toLowerCase(),
        roles: roles as string[],
        issuedAtMs: typeof iatMs === "number" ? iatMs : iat * 1000,
      },
      expiresAtMs: exp * 1000,
    };
  }
}

function parseJsonObject(part: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** A JWT NumericDate: seconds since the epoch, finite and non-negative. */
function isNumericDate(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0;
}

/**
 * Verified access tokens until they expire, least recently used dropped
 * first (a Map keeps insertion order; a hit moves the entry to the end).
 * Bounded by entry count: a token is ~400 bytes, so 10,000 entries are ~6 MB.
 */
export class VerifiedTokenCache {
  private readonly max: number;
  private readonly entries = new Map<string, { claims: AccessClaims; expiresAtMs: number }>();

  constructor(max: number) {
    this.max = max;
  }

  get size(): number {
    return this.entries.size;
  }

  get(token: string): { claims: AccessClaims; expiresAtMs: number } | undefined {
    const e = this.entries.get(token);
    if (e) {
      this.entries.delete(token);
      this.entries.set(token, e);
    }
    return e;
  }

  set(token: string, e: { claims: AccessClaims; expiresAtMs: number }): void {
    if (this.max <= 0) return;
    this.entries.delete(token);
    this.entries.set(token, e);
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  delete(token: string): void {
    this.entries.delete(token);
  }
}

/** 256 random bits, base64url: far above the 128 bits required. */
export function newRefreshToken(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * SHA-256 of a refresh token. A fast hash is right here: the token is 256
 * random bits, so there is nothing to brute-force; it only keeps a database
 * leak from handing out live tokens.
 */
export function hashRefreshToken(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}
