// Domain events: what a persisted change announces. Every change writes its
// event in the same transaction as the change (a transactional outbox, see
// docs/REALTIME.md "One durable write per change"), so an event exists exactly
// when its change committed. The event carries what subscribers need (the
// stored message, the conversation after the change, reaction counts), so
// announcing it re-reads nothing.
//
// Features get their events back from their store (the rows just written) and
// hand them to the EventSink, which publishes them after the reply, in event
// order. Tests use RecordingEventSink to assert what was announced.

import type { StoredMessage } from "../messages/types.ts";
import type { ConversationRecord } from "../conversations/types.ts";

/** Per emoji of one message, viewer-independent (`reacted` is per viewer: clients keep their own). */
export interface ReactionCount {
  emoji: string;
  count: number;
}

export type DomainEvent =
  | { type: "message_created"; conversationId: string; messageId: string; seq: number; message?: StoredMessage }
  | { type: "message_edited"; conversationId: string; messageId: string; seq: number; message?: StoredMessage; reactions?: ReactionCount[] }
  | { type: "message_deleted"; conversationId: string; messageId: string; seq: number }
  | {
      type: "reaction_updated";
      conversationId: string;
      messageId: string;
      emoji: string;
      userId: string;
      added: boolean;
      /** How many reacted with this emoji after the change (absent in events logged before issue 12). */
      count?: number;
    }
  | { type: "receipt_updated"; conversationId: string; userId: string; deliveredSeq: number; readSeq: number }
  | { type: "conversation_updated"; conversationId: string; conversation?: ConversationRecord }
  | { type: "member_joined"; conversationId: string; userId: string; role: string }
  | { type: "member_left"; conversationId: string; userId: string; removed: boolean };

/** An event as written to the log: its gapless per-conversation number and commit-time timestamp. */
export interface LoggedEvent {
  eventSeq: number;
  createdAt: Date;
  event: DomainEvent;
}

export interface EventSink {
  /**
   * Runs `write`, a change that commits its events in its own transaction,
   * and returns its result as soon as it resolves; the events `eventsOf`
   * picks from the result are then published in the background, in event
   * order per conversation (`conversationIds`: the conversations the write
   * may log in; used to order publications of concurrent writes on a node).
   * Publishing never fails the write: it retries, counts, and the receiving
   * streams fill anything lost from the log.
   */
  track<T>(conversationIds: string[], write: () => Promise<T>, eventsOf: (result: T) => LoggedEvent[]): Promise<T>;
}

/** Keeps every event in memory; for tests. */
export class RecordingEventSink implements EventSink {
  readonly logged: LoggedEvent[] = [];
  get events(): DomainEvent[] {
    return this.logged.map((l) => l.event);
  }
  async track<T>(_c: string[], write: () => Promise<T>, eventsOf: (result: T) => LoggedEvent[]): Promise<T> {
    const r = await write();
    this.logged.push(...eventsOf(r));
    return r;
  }
}
