import type { BatchEntry, ListCursor, Notification } from "./types.ts";

/**
 * Notification storage: MongoDB when configured, else the relational store.
 * Both adapters pass test/notifications/store-conformance.test.ts.
 */
export interface NotificationStore {
  /**
   * Folds a message into the user's open batch for the conversation, or opens
   * one (window from `entry.at` to `entry.at + entry.windowMs`) when there is
   * none. Exact under concurrency, across nodes: one open batch at a time.
   * Returns the batch with this message in it (for the live event).
   */
  addToBatch(entry: BatchEntry): Promise<Notification>;
  /** Batches whose window ended and that were not flushed yet, oldest first. */
  dueBatches(now: Date, limit: number): Promise<Notification[]>;
  /**
   * Claims a batch for push and closes it (the next message opens a new one).
   * Returns the batch as claimed, with every message folded in before the
   * claim, to exactly one caller across nodes; null to the others.
   */
  markBatched(id: string, at: Date): Promise<Notification | null>;
  /** A user's notifications, newest first, strictly after `after`. */
  list(userId: string, opts: { limit: number; after: ListCursor | null; unseenOnly: boolean }): Promise<Notification[]>;
  unseenCount(userId: string): Promise<number>;
  /** Marks the given ids, or everything created at or before upTo, as seen; returns how many changed. */
  markSeen(userId: string, opts: { ids: string[]; upTo: Date | null }, at: Date): Promise<number>;
}
