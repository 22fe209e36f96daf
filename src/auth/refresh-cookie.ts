// Browser sessions keep the refresh token in an HttpOnly cookie instead of the
// response body, so no script on the page (an XSS payload included) can read
// it. A request opts in with the `x-refresh-cookie: 1` header; native clients
// never send it and keep the token in the body. See docs/AUTH.md ("Browser
// sessions: the refresh cookie") for the threat model.
//
// CSRF: the cookie is SameSite=Strict and sent only to the Refresh path, and a
// cookie-mode request must also (1) carry the custom header, which a page on
// another origin cannot add without a CORS preflight this server never grants
// for it, and (2) come from this server's own origin: `Origin` present and
// naming the host the request was sent to, and `Sec-Fetch-Site`, when the
// browser sends it, `same-origin`.

import { permissionDenied } from "../shared/errors.ts";

export const COOKIE_MODE_HEADER = "x-refresh-cookie";
export const REFRESH_COOKIE_NAME = "chat_refresh";
/** Where browsers send the cookie: Refresh only (Connect and gRPC-Web share the path). */
export const REFRESH_COOKIE_PATH = "/chat.v1.AuthService/Refresh";

/**
 * True when the request asked for cookie mode; then it must pass the same-origin
 * checks (PERMISSION_DENIED `CSRF_CHECK_FAILED` otherwise). `authority` is the
 * Host (HTTP/1.1) or :authority (HTTP/2) the request was sent to.
 */
export function cookieModeRequested(headers: Headers, authority: string | undefined): boolean {
  const mode = headers.get(COOKIE_MODE_HEADER);
  if (mode === null) return false;
  if (mode !== "1") throw permissionDenied("CSRF_CHECK_FAILED", `${COOKIE_MODE_HEADER} must be "1"`);
  const site = headers.get("sec-fetch-site");
  if (site !== null && site !== "same-origin") throw permissionDenied("CSRF_CHECK_FAILED", "cookie sessions are same-origin only");
  const origin = headers.get("origin");
  if (!origin || !authority) throw permissionDenied("CSRF_CHECK_FAILED", "cookie sessions need an Origin header");
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    throw permissionDenied("CSRF_CHECK_FAILED", "malformed Origin header");
  }
  if (host.toLowerCase() !== normalizeAuthority(authority)) throw permissionDenied("CSRF_CHECK_FAILED", "cookie sessions are same-origin only");
  return true;
}

/** Host[:port] as URL.host writes it (lower case, default ports dropped by the browser already). */
function normalizeAuthority(authority: string): string {
  try {
    return new URL(`http://${authority}`).host.toLowerCase();
  } catch {
    return "";
  }
}

/** The refresh token from the `cookie` header(s), or "" when there is none. */
export function readRefreshCookie(headers: Headers): string {
  const raw = headers.get("cookie");
  if (!raw) return "";
  // HTTP/2 may split cookies into several fields, which Headers joins with ", ".
  for (const part of raw.split(/[;,]\s*/)) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === REFRESH_COOKIE_NAME) return part.slice(eq + 1).trim();
  }
  return "";
}

export function refreshCookie(token: string, expiresAt: Date, secure: boolean, now = Date.now()): string {
  const maxAge = Math.max(0, Math.floor((expiresAt.getTime() - now) / 1000));
  return `${REFRESH_COOKIE_NAME}=${token}; Path=${REFRESH_COOKIE_PATH}; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`;
}

export function clearedRefreshCookie(secure: boolean): string {
  return `${REFRESH_COOKIE_NAME}=; Path=${REFRESH_COOKIE_PATH}; Max-Age=0; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`;
}

// ---- device cookies ------------------------------------------------------------
// In cookie mode the device token (docs/AUTH.md "Login throttling") travels as
// an HttpOnly cookie sent only to Login, one per account that signed in on this
// browser (the name carries the user id), so that several people sharing a
// browser each keep their own.

export const DEVICE_COOKIE_PREFIX = "chat_device_";
export const DEVICE_COOKIE_PATH = "/chat.v1.AuthService/Login";

/** The values of every device cookie in the `cookie` header(s), at most `max`. */
export function readDeviceCookies(headers: Headers, max: number): string[] {
  const raw = headers.get("cookie");
  if (!raw) return [];
  const out: string[] = [];
  for (const part of raw.split(/[;,]\s*/)) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim().startsWith(DEVICE_COOKIE_PREFIX)) out.push(part.slice(eq + 1).trim());
    if (out.length >= max) break;
  }
  return out;
}

export function deviceCookie(userId: string, token: string, expiresAt: Date, secure: boolean, now = Date.now()): string {
  const maxAge = Math.max(0, Math.floor((expiresAt.getTime() - now) / 1000));
  const name = `${DEVICE_COOKIE_PREFIX}${userId.replaceAll("-", "").toLowerCase()}`;
  return `${name}=${token}; Path=${DEVICE_COOKIE_PATH}; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`;
}
