// Transports for browsers (fetch): Connect and gRPC-Web. Browsers cannot
// stream both ways, so realtime uses Subscribe + unary calls.

import type { Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import type { ChatTransport } from "./api.ts";
import type { DeviceTokenStorage } from "./device-tokens.ts";

export type WebProtocol = "connect" | "grpc-web";

export function webTransport(o: { baseUrl: string; protocol: WebProtocol; interceptors?: Interceptor[] }): ChatTransport {
  return {
    protocol: o.protocol,
    bidi: false,
    create(interceptors: Interceptor[]) {
      const all = [...interceptors, ...(o.interceptors ?? [])];
      return o.protocol === "grpc-web"
        ? createGrpcWebTransport({ baseUrl: o.baseUrl, interceptors: all })
        : createConnectTransport({ baseUrl: o.baseUrl, interceptors: all });
    },
  };
}

/** The header that asks the server to keep the refresh token in an HttpOnly cookie (docs/AUTH.md). */
export const COOKIE_SESSION_HEADER = "x-refresh-cookie";

/**
 * Cookie sessions for an app served by the chat server itself (same origin):
 * AuthService calls ask for the refresh token in an HttpOnly cookie, so no
 * script can read it and a reload can resume with `TokenManager.resume()`.
 * Pass it in `webTransport({ interceptors })`; pair it with `crossTabLock()`.
 */
export function cookieSessionInterceptor(): Interceptor {
  return (next) => (req) => {
    if (req.service.typeName === "chat.v1.AuthService") req.header.set(COOKIE_SESSION_HEADER, "1");
    return next(req);
  };
}

/**
 * TokenManager's `lock` for browsers: the Web Locks API serialises Refresh
 * across the tabs of the origin (they share the cookie). Where it is missing
 * (an insecure context), Refresh runs unserialised.
 */
export function crossTabLock(name = "chat-refresh"): <T>(f: () => Promise<T>) => Promise<T> {
  return <T>(f: () => Promise<T>): Promise<T> => {
    const locks = (globalThis.navigator as { locks?: { request<R>(name: string, f: () => Promise<R>): Promise<R> } } | undefined)?.locks;
    return locks ? locks.request(name, f) : f();
  };
}

/**
 * Device tokens in localStorage, for apps on another origin than the server
 * (no cookie session). Same-origin cookie sessions need none: the server keeps
 * the device token in an HttpOnly cookie.
 */
export function localStorageDeviceTokens(key = "chat-device-tokens"): DeviceTokenStorage {
  return {
    load() {
      try {
        const raw = globalThis.localStorage?.getItem(key);
        return raw ? (JSON.parse(raw) as Record<string, string>) : null;
      } catch {
        return null;
      }
    },
    save(tokens) {
      try {
        globalThis.localStorage?.setItem(key, JSON.stringify(tokens));
      } catch {
        // Storage full or denied: the device is then unknown at its next login, nothing worse.
      }
    },
  };
}

export * from "./index.ts";
