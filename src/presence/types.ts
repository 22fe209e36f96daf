export type PresenceStatus = "online" | "away" | "dnd" | "offline";

/** A user's presence merged over all their devices. */
export interface Presence {
  userId: string;
  status: PresenceStatus;
  /** When the user was last online; set when offline (null if never seen). */
  lastSeenAt: Date | null;
}

/** Where presence and typing changes go: the realtime layer delivers them to streams. */
export interface PresenceFanout {
  /** A user's merged presence changed: tell users who share a conversation with them. */
  presenceChanged(presence: Presence): Promise<void>;
  /** Someone started or stopped typing in a conversation; `version` (µs since the epoch) orders the states of one user and conversation. */
  typingChanged(conversationId: string, userId: string, typing: boolean, version: number): Promise<void>;
}

export interface PresenceSettings {
  /** A device that stops heart-beating for this long is offline (3 heartbeat intervals). */
  deviceTtlMs: number;
  /** A closed stream keeps its device online this long, so a quick reconnect does not flicker. */
  graceMs: number;
  /** At most one presence_updated per user per window; changes inside it are coalesced. */
  coalesceMs: number;
  /** How often each node looks for expired devices. */
  sweepIntervalMs: number;
  /** A typing indicator without refresh ends by itself after this long. */
  typingTtlMs: number;
  /** Repeated typing=true inside this window is not re-announced. */
  typingThrottleMs: number;
}
