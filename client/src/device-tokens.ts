// Device tokens (docs/AUTH.md "Login throttling"): Login and Register return a
// signed token marking this device as known to the account. Sent back with the
// next Login of that account, it keeps the device out of the throttling that
// other people's failed logins cause. It is not a credential (it grants no
// access), but keep it like the refresh token: per account, in storage that
// survives restarts. Cookie sessions (web.ts) need none of this: the server
// keeps it in an HttpOnly cookie and the body's field is empty.

/** Where device tokens persist between runs (default: memory only). */
export interface DeviceTokenStorage {
  load(): Record<string, string> | null | Promise<Record<string, string> | null>;
  save(tokens: Record<string, string>): void | Promise<void>;
}

/** Accounts remembered at most (each under its username, email and the login typed). */
const MAX_ENTRIES = 64;

const keyOf = (login: string) => login.trim().toLowerCase();

/** Device tokens by login name (username or email, case-insensitive). */
export class DeviceTokens {
  private readonly storage: DeviceTokenStorage | undefined;
  private cache: Record<string, string> | null = null;

  constructor(storage?: DeviceTokenStorage) {
    this.storage = storage;
  }

  private async all(): Promise<Record<string, string>> {
    if (!this.cache) {
      let loaded: Record<string, string> | null = null;
      try {
        loaded = (await this.storage?.load()) ?? null;
      } catch {
        // Unreadable storage: start empty (the worst case is being an unknown device).
      }
      this.cache = loaded && typeof loaded === "object" ? { ...loaded } : {};
    }
    return this.cache;
  }

  /** The token for this login name, or "" when there is none. */
  async get(login: string): Promise<string> {
    const t = (await this.all())[keyOf(login)];
    return typeof t === "string" ? t : "";
  }

  /** Keeps `token` under each of the account's names (the newest replaces older ones). */
  async remember(names: string[], token: string): Promise<void> {
    if (!token) return;
    const all = await this.all();
    for (const n of names) {
      const k = keyOf(n);
      if (!k) continue;
      delete all[k];
      all[k] = token;
    }
    // Oldest first in insertion order: drop from the front past the bound.
    const keys = Object.keys(all);
    for (const k of keys.slice(0, Math.max(0, keys.length - MAX_ENTRIES))) delete all[k];
    await this.storage?.save({ ...all });
  }
}
