import type { BatchEntry, ListCursor, Notification } from "./types.ts";

/**
 * Notification storage: MongoDB when configured, else the relational store.
 * Both adapters pass test/notifications/store-conformance.test.ts.
 */
export interface NotificationStore {
  /** Folds a message into its batch, creating the batch on first use. Safe under concurrency. */
  addToBatch(entry: BatchEntry): Promise<void>;
  /** Batches whose window ended and that were not flushed yet, oldest first. */
  dueBatches(now: Date, limit: number): Promise<Notification[]>;
  /** Claims a due batch for flushing; true for exactly one caller across nodes. */
  markBatched(id: string, at: Date): Promise<boolean>;
  /** A user's notifications, newest first, strictly after `after`. */
  list(userId: string, opts: { limit: number; after: ListCursor | null; unseenOnly: boolean }): Promise<Notification[]>;
  unseenCount(userId: string): Promise<number>;
  /** Marks the given ids, or everything created at or before upTo, as seen; returns how many changed. */
  markSeen(userId: string, opts: { ids: string[]; upTo: Date | null }, at: Date): Promise<number>;
}
