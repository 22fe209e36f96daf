// AccessTokens.verify (synchronous HMAC, strict header and claims) and its
// cache of verified tokens, without a server: tokens minted by jose (an
// independent implementation) must verify; anything else must not.

import { describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import { AccessTokens, VerifiedTokenCache } from "../../src/auth/tokens.ts";
import { AppError } from "../../src/shared/errors.ts";

const SECRET = "a-test-secret-that-is-at-least-32-bytes";
const ids = () => ({ userId: randomUUID(), sessionId: randomUUID(), roles: ["user", "admin"] });

function refusal(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error("expected a refusal");
}

describe("AccessTokens.verify", () => {
  it("accepts what sign() mints, with every claim, and caches it", async () => {
    const tokens = new AccessTokens(SECRET, 900);
    const who = ids();
    const now = Date.now();
    const { token, expiresAt } = await tokens.sign(who, now);
    expect(tokens.verify(token)).toEqual({ ...who, issuedAtMs: now });
    expect(tokens.cachedTokens).toBe(1);
    expect(tokens.verify(token)).toEqual({ ...who, issuedAtMs: now }); // from the cache
    expect(tokens.cachedTokens).toBe(1);
    // Expiry still applies to a cached token (5 s of clock tolerance).
    expect(refusal(() => tokens.verify(token, expiresAt.getTime() + 5_000)).message).toBe("access token expired");
    expect(tokens.cachedTokens).toBe(0);
    expect(refusal(() => tokens.verify(token, expiresAt.getTime() + 5_000)).message).toBe("access token expired"); // uncached path too
    expect(tokens.verify(token, expiresAt.getTime() + 4_999).userId).toBe(who.userId);
  });

  it("refuses a token of another key, alg or type, and malformed ones, all as UNAUTHENTICATED", async () => {
    const tokens = new AccessTokens(SECRET, 900);
    const who = ids();
    const key = new TextEncoder().encode(SECRET);
    const base = (claims: Record<string, unknown> = {}, header: Record<string, unknown> = { alg: "HS256", typ: "at+jwt" }) =>
      new SignJWT({ sid: who.sessionId, roles: ["user"], ...claims })
        .setProtectedHeader(header as { alg: string })
        .setSubject(typeof claims.sub === "string" ? claims.sub : who.userId)
        .setIssuer(typeof claims.iss === "string" ? claims.iss : "chat.v1")
        .setAudience(typeof claims.aud === "string" ? claims.aud : "chat.v1")
        .setIssuedAt()
        .setExpirationTime("5m")
        .sign(key);
    expect(tokens.verify(await base()).userId).toBe(who.userId); // control
    const good = await base();
    const cases: [string, string][] = [
      ["other key", await new AccessTokens("another-secret-that-is-at-least-32-bytes", 900).sign(who).then((t) => t.token)],
      ["HS384", await base({}, { alg: "HS384", typ: "at+jwt" })],
      ["no typ", await base({}, { alg: "HS256" })],
      ["JWT typ", await base({}, { alg: "HS256", typ: "JWT" })],
      ["kid header", await base({}, { alg: "HS256", typ: "at+jwt", kid: "1" })],
      ["other issuer", await base({ iss: "someone" })],
      ["other audience", await base({ aud: "someone" })],
      ["sub not a uuid", await base({ sub: "admin" })],
      ["sid not a uuid", await base({ sid: "x" })],
      ["sid a number", await base({ sid: 7 })],
      ["roles not an array", await base({ roles: "admin" })],
      ["iat_ms not a number", await base({ iat_ms: "1" })],
      ["alg none", `${Buffer.from('{"alg":"none","typ":"at+jwt"}').toString("base64url")}.${good.split(".")[1]}.`],
      ["signature cut", good.slice(0, -1)],
      ["signature padded", `${good}=`],
      ["two parts", good.split(".").slice(0, 2).join(".")],
      ["empty", ""],
      ["huge", `${good}${"A".repeat(5000)}`],
      ["payload not JSON", `${good.split(".")[0]}.${Buffer.from("not json").toString("base64url")}.${good.split(".")[2]}`],
    ];
    for (const [what, token] of cases) {
      const err = refusal(() => tokens.verify(token));
      expect(err.kind, what).toBe("unauthenticated");
      expect(err.message, what).toBe("invalid access token");
      expect(err.reason, what).toBe("TOKEN_INVALID");
    }
    expect(tokens.cachedTokens).toBe(1); // only the control
  });

  it("never caches a refused token, and the cache is bounded, least recently used out first", async () => {
    const cache = new VerifiedTokenCache(3);
    const e = (n: number) => ({ claims: { userId: `u${n}`, sessionId: "s", roles: [], issuedAtMs: 0 }, expiresAtMs: n });
    cache.set("a", e(1));
    cache.set("b", e(2));
    cache.set("c", e(3));
    expect(cache.get("a")).toEqual(e(1)); // a is now the most recent
    cache.set("d", e(4));
    expect(cache.size).toBe(3);
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")).toEqual(e(1));
    const off = new VerifiedTokenCache(0);
    off.set("a", e(1));
    expect(off.size).toBe(0);

    const tokens = new AccessTokens(SECRET, 900, 2);
    const minted = await Promise.all([1, 2, 3].map(() => tokens.sign(ids()).then((t) => t.token)));
    for (const t of minted) tokens.verify(t);
    expect(tokens.cachedTokens).toBe(2);
    for (const t of minted) tokens.verify(t); // evicted ones verify again from scratch
    const tampered = minted[0].slice(0, -3) + (minted[0].at(-3) === "A" ? "B" : "A") + minted[0].slice(-2);
    expect(refusal(() => tokens.verify(tampered)).kind).toBe("unauthenticated");
  });
});
