// Access tokens (short-lived signed JWTs) and refresh tokens (opaque, random,
// stored only as a hash).

import { createHash, randomBytes } from "node:crypto";
import { SignJWT, jwtVerify, errors as joseErrors } from "jose";
import { unauthenticated } from "../shared/errors.ts";

const ISSUER = "chat.v1";
const AUDIENCE = "chat.v1";
// RFC 9068 media type for JWT access tokens; verification insists on it so an
// HS256 JWT minted for another purpose with the same secret is refused.
const TYPE = "at+jwt";
/** Clock skew accepted between nodes, in seconds. */
export const CLOCK_TOLERANCE_SEC = 5;

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

  constructor(secret: string | Uint8Array, ttlSec: number) {
    this.key = typeof secret === "string" ? new TextEncoder().encode(secret) : secret;
    this.ttlSec = ttlSec;
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

  /** Checks signature, algorithm, type, issuer, audience and expiry; throws UNAUTHENTICATED. */
  async verify(token: string): Promise<AccessClaims> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.key, {
        algorithms: ["HS256"],
        issuer: ISSUER,
        audience: AUDIENCE,
        typ: TYPE,
        requiredClaims: ["sub", "sid", "exp", "iat"],
        clockTolerance: CLOCK_TOLERANCE_SEC,
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw unauthenticated("TOKEN_EXPIRED", "access token expired");
      throw unauthenticated("TOKEN_INVALID", "invalid access token");
    }
    const { sub, sid, roles, iat_ms: iatMs, iat } = payload as Record<string, unknown>;
    if (typeof sub !== "string" || typeof sid !== "string" || !Array.isArray(roles) || !roles.every((r) => typeof r === "string")) {
      throw unauthenticated("TOKEN_INVALID", "invalid access token");
    }
    return { userId: sub, sessionId: sid, roles: roles as string[], issuedAtMs: typeof iatMs === "number" ? iatMs : Number(iat) * 1000 };
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
