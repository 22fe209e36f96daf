// Device tokens ("device cookies", OWASP "Slow Down Online Guessing Attacks
// with Device Cookies"): after a successful login the client receives a signed
// token naming the account and a random device id. Presented on a later login
// of the same account, it puts that client in its own throttling bucket, so
// failures by strangers (who cannot get a token without the password) never
// slow the owner's known devices. See docs/AUTH.md ("Login throttling").
//
// The token is not a credential: it grants nothing but a separate failure
// count. A forged, expired, malformed or other account's token is ignored
// (the client is an unknown device), never an error.
//
// Format: `dt1.<payload>.<mac>`, payload = base64url(JSON {u, d, e}) with the
// user id, a random device id and the expiry (unix seconds); mac =
// base64url(HMAC-SHA256(key, "dt1." + payload)), the key derived from the
// access-token secret with HKDF under its own label, so no access token can
// pass for a device token or the other way round.

import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
import { isUuid } from "../shared/ids.ts";

const PREFIX = "dt1.";
/** Far above any token this module mints (~130 characters); longer input is ignored unparsed. */
export const DEVICE_TOKEN_MAX_LENGTH = 512;
const B64URL = /^[A-Za-z0-9_-]+$/;

export interface DeviceClaims {
  userId: string;
  /** Random, per token: the throttling key of this device for this account. */
  deviceKey: string;
  expiresAt: Date;
}

export class DeviceTokens {
  private readonly key: Buffer;
  private readonly ttlSec: number;

  constructor(secret: string | Uint8Array, ttlSec: number) {
    const ikm = typeof secret === "string" ? Buffer.from(secret) : Buffer.from(secret);
    this.key = Buffer.from(hkdfSync("sha256", ikm, Buffer.alloc(0), "chat.v1 device token", 32));
    this.ttlSec = ttlSec;
  }

  /** A fresh token for the account (a new device key each time: a login renews it). */
  issue(userId: string, now = Date.now()): { token: string; expiresAt: Date } {
    const exp = Math.floor(now / 1000) + this.ttlSec;
    const payload = Buffer.from(JSON.stringify({ u: userId, d: randomBytes(16).toString("base64url"), e: exp })).toString("base64url");
    return { token: `${PREFIX}${payload}.${this.mac(payload)}`, expiresAt: new Date(exp * 1000) };
  }

  /**
   * The claims of a token this server issued for `userId` and not yet expired;
   * null for anything else (no exception, whatever the input).
   */
  verify(token: string, userId: string, now = Date.now()): DeviceClaims | null {
    if (token.length === 0 || token.length > DEVICE_TOKEN_MAX_LENGTH || !token.startsWith(PREFIX)) return null;
    const rest = token.slice(PREFIX.length);
    const dot = rest.indexOf(".");
    if (dot <= 0) return null;
    const payload = rest.slice(0, dot);
    const mac = rest.slice(dot + 1);
    if (!B64URL.test(payload) || !B64URL.test(mac)) return null;
    const want = Buffer.from(this.mac(payload), "base64url");
    const got = Buffer.from(mac, "base64url");
    if (got.length !== want.length || !timingSafeEqual(got, want)) return null;
    let claims: unknown;
    try {
      claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    } catch {
      return null;
    }
    if (typeof claims !== "object" || claims === null) return null;
    const { u, d, e } = claims as Record<string, unknown>;
    if (typeof u !== "string" || !isUuid(u) || typeof d !== "string" || !B64URL.test(d) || d.length > 64) return null;
    if (typeof e !== "number" || !Number.isInteger(e) || e * 1000 <= now) return null;
    if (u !== userId) return null;
    return { userId: u, deviceKey: d, expiresAt: new Date(e * 1000) };
  }

  private mac(payload: string): string {
    return createHmac("sha256", this.key).update(PREFIX).update(payload).digest("base64url");
  }
}
