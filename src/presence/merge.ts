import type { PresenceStatus } from "./types.ts";

/** One device's entry, stored as "status|expiresAtMs|lastActiveMs". */
export interface DeviceEntry {
  status: Exclude<PresenceStatus, "offline">;
  expiresAt: number;
  lastActiveAt: number;
}

export function encodeDevice(e: DeviceEntry): string {
  return `${e.status}|${e.expiresAt}|${e.lastActiveAt}`;
}

export function decodeDevice(raw: string): DeviceEntry | null {
  const [status, expiresAt, lastActiveAt] = raw.split("|");
  if (status !== "online" && status !== "away" && status !== "dnd") return null;
  const e = Number(expiresAt);
  const a = Number(lastActiveAt);
  return Number.isFinite(e) && Number.isFinite(a) ? { status, expiresAt: e, lastActiveAt: a } : null;
}

/**
 * Merges a user's live devices: DND is sticky while any device sets it; then
 * ONLINE wins over AWAY; no live device means OFFLINE. `lastActiveAt` is the
 * latest activity of any device, live or expired (it becomes last_seen_at).
 */
export function mergeDevices(devices: Record<string, string>, now: number): { status: PresenceStatus; lastActiveAt: number | null } {
  let dnd = false;
  let online = false;
  let away = false;
  let lastActiveAt: number | null = null;
  for (const raw of Object.values(devices)) {
    const d = decodeDevice(raw);
    if (!d) continue;
    lastActiveAt = Math.max(lastActiveAt ?? 0, Math.min(d.lastActiveAt, d.expiresAt));
    if (d.expiresAt <= now) continue;
    if (d.status === "dnd") dnd = true;
    else if (d.status === "online") online = true;
    else away = true;
  }
  const status: PresenceStatus = dnd ? "dnd" : online ? "online" : away ? "away" : "offline";
  return { status, lastActiveAt };
}
