import type { PresenceStatus } from "./types.ts";

/**
 * One device's entry, stored as "status|expiresAtMs|lastActiveMs|owner".
 * `owner` names the tracker (one per node process) that wrote it last, so a
 * node whose stream of the device closed does not shorten an entry another
 * node has taken over since (the device reconnected there). Entries written
 * before the owner existed decode with an empty owner.
 */
export interface DeviceEntry {
  status: Exclude<PresenceStatus, "offline">;
  expiresAt: number;
  lastActiveAt: number;
  owner: string;
}

export function encodeDevice(e: DeviceEntry): string {
  return `${e.status}|${e.expiresAt}|${e.lastActiveAt}|${e.owner}`;
}

export function decodeDevice(raw: string): DeviceEntry | null {
  const [status, expiresAt, lastActiveAt, owner = ""] = raw.split("|");
  if (status !== "online" && status !== "away" && status !== "dnd") return null;
  const e = Number(expiresAt);
  const a = Number(lastActiveAt);
  return Number.isFinite(e) && Number.isFinite(a) ? { status, expiresAt: e, lastActiveAt: a, owner } : null;
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
