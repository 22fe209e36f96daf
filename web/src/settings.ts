// What the browser remembers between visits: the chosen transport (a
// preference, not a secret) and, per tab, a device id. No tokens.

import { TRANSPORTS, type TransportKind } from "./api.ts";
import { uuid } from "../../client/src/web.ts";

const TRANSPORT_KEY = "chat.transport";
const DEVICE_KEY = "chat.deviceId";

function isTransport(v: string | null): v is TransportKind {
  return TRANSPORTS.some((t) => t.kind === v);
}

/** ?transport=connect|grpc-web wins (tests and shared links use it), then the saved choice. */
export function initialTransport(): TransportKind {
  const fromUrl = new URLSearchParams(location.search).get("transport");
  if (isTransport(fromUrl)) return fromUrl;
  const saved = safeGet(localStorage, TRANSPORT_KEY);
  return isTransport(saved) ? saved : "connect";
}

export function saveTransport(kind: TransportKind): void {
  safeSet(localStorage, TRANSPORT_KEY, kind);
  const url = new URL(location.href);
  if (url.searchParams.has("transport")) {
    url.searchParams.set("transport", kind);
    history.replaceState(history.state, "", url);
  }
}

/**
 * One device id per tab (sessionStorage): Login replaces the session of the
 * same device, so two tabs sharing one id would log each other out.
 */
export function deviceId(): string {
  let id = safeGet(sessionStorage, DEVICE_KEY);
  if (!id) {
    id = uuid();
    safeSet(sessionStorage, DEVICE_KEY, id);
  }
  return id;
}

const WORKSPACE_KEY = "chat.workspace";

/** The workspace this tab shows (sessionStorage: each tab keeps its own). */
export function savedWorkspace(): string {
  return safeGet(sessionStorage, WORKSPACE_KEY) ?? "";
}

export function saveWorkspace(id: string): void {
  safeSet(sessionStorage, WORKSPACE_KEY, id);
}

// Storage throws in some privacy modes; the app works without it.
function safeGet(s: Storage, k: string): string | null {
  try {
    return s.getItem(k);
  } catch {
    return null;
  }
}

function safeSet(s: Storage, k: string, v: string): void {
  try {
    s.setItem(k, v);
  } catch {
    /* not remembered */
  }
}

/** Away after this long without input: 5 minutes, or `?idle=<seconds>` (tests, and anyone who wants it shorter). */
export function idleMs(): number {
  const s = Number(new URLSearchParams(location.search).get("idle"));
  return Number.isFinite(s) && s > 0 ? s * 1000 : 5 * 60_000;
}
