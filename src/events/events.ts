// Domain events: what features announce after a change is persisted
// (persist, then broadcast). Features depend only on the EventSink interface;
// the realtime layer implements it to log durable events and fan them out to
// streams. Tests use RecordingEventSink to assert what was announced.

export type DomainEvent =
  | { type: "message_created"; conversationId: string; messageId: string; seq: number }
  | { type: "message_edited"; conversationId: string; messageId: string; seq: number }
  | { type: "message_deleted"; conversationId: string; messageId: string; seq: number }
  | { type: "reaction_updated"; conversationId: string; messageId: string; emoji: string; userId: string; added: boolean }
  | { type: "receipt_updated"; conversationId: string; userId: string; deliveredSeq: number; readSeq: number }
  | { type: "conversation_updated"; conversationId: string }
  | { type: "member_joined"; conversationId: string; userId: string; role: string }
  | { type: "member_left"; conversationId: string; userId: string; removed: boolean };

export interface EventSink {
  /** Called after the change is durable. Must not throw for delivery problems. */
  publish(events: DomainEvent[]): Promise<void>;
}

/** Keeps every event in memory; for tests and as the default before realtime exists. */
export class RecordingEventSink implements EventSink {
  readonly events: DomainEvent[] = [];
  async publish(events: DomainEvent[]): Promise<void> {
    this.events.push(...events);
  }
}
