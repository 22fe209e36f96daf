// The durable event log: per conversation, every durable event with a gapless
// event_seq, so a stream can answer "everything after this" from the store.
// Events are written by the features in the transaction of their change
// (src/events/sql-outbox.ts); realtime reads them.
// Relational in every mode (migrations/0005_events.sql). One interface, one
// adapter over SqlDatabase (Postgres and PGlite), one conformance suite
// (test/realtime/event-log.test.ts).

import type { DomainEvent, LoggedEvent } from "../events/events.ts";
import { appendEvents, decodeEvent } from "../events/sql-outbox.ts";
import type { SqlDatabase } from "../stores/sql/sql.ts";

export type DurableEventType = DomainEvent["type"];
export type { LoggedEvent };

export interface Checkpoint {
  id: string;
  userId: string;
  conversationIds: string[];
  seqs: number[];
  createdAt: Date;
}

export interface EventLog {
  /**
   * Appends events of one conversation in a transaction of their own. The
   * features write their events inside their own transactions
   * (src/events/sql-outbox.ts); this is for tests and tools.
   */
  append(conversationId: string, events: DomainEvent[]): Promise<LoggedEvent[]>;
  /** Events with afterSeq < event_seq <= uptoSeq, oldest first, at most `limit`. */
  read(conversationId: string, afterSeq: number, uptoSeq: number, limit: number): Promise<LoggedEvent[]>;
  /** last_event_seq per conversation (0 when it has none). */
  heads(conversationIds: string[]): Promise<Map<string, number>>;
  /** The lowest event_seq still retained per conversation (absent: none retained). */
  oldestRetained(conversationIds: string[]): Promise<Map<string, number>>;
  /** The latest member_joined / member_left about `userId` in the conversation with event_seq > afterSeq. */
  lastMembershipEvent(conversationId: string, userId: string, type: "member_joined" | "member_left", afterSeq: number): Promise<LoggedEvent | null>;
  /** For each conversation: the seq of the last message_created with event_seq <= the given one. */
  messageSeqsAt(positions: Map<string, number>): Promise<Map<string, number>>;

  saveCheckpoint(cp: Omit<Checkpoint, "createdAt">): Promise<Checkpoint>;
  getCheckpoint(id: string): Promise<Checkpoint | null>;

  /** Deletes events and checkpoints created before `before`, in batches. */
  prune(before: Date, batch?: number): Promise<{ events: number; checkpoints: number }>;
}

interface EventRow {
  conversation_id: string;
  event_seq: number;
  type: string;
  payload: Record<string, unknown>;
  created_at: Date;
}

function toLogged(r: EventRow): LoggedEvent {
  return { eventSeq: Number(r.event_seq), createdAt: r.created_at, event: decodeEvent(r.type, r.conversation_id, r.payload) };
}

const COLUMNS = "conversation_id, event_seq, type, payload, created_at";

export class SqlEventLog implements EventLog {
  private readonly sql: SqlDatabase;

  constructor(sql: SqlDatabase) {
    this.sql = sql;
  }

  append(conversationId: string, events: DomainEvent[]): Promise<LoggedEvent[]> {
    return this.sql.transaction((tx) => appendEvents(tx, conversationId, events));
  }

  async read(conversationId: string, afterSeq: number, uptoSeq: number, limit: number): Promise<LoggedEvent[]> {
    const { rows } = await this.sql.query<EventRow>(
      `SELECT ${COLUMNS} FROM conversation_events
        WHERE conversation_id = $1 AND event_seq > $2 AND event_seq <= $3 ORDER BY event_seq LIMIT $4`,
      [conversationId, afterSeq, uptoSeq, limit],
      { name: "event_log_read" },
    );
    return rows.map(toLogged);
  }

  async heads(conversationIds: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>(conversationIds.map((id) => [id, 0]));
    if (conversationIds.length === 0) return out;
    const { rows } = await this.sql.query<{ conversation_id: string; last_event_seq: number }>(
      "SELECT conversation_id, last_event_seq FROM conversation_event_heads WHERE conversation_id = ANY($1::uuid[])",
      [conversationIds],
    );
    for (const r of rows) out.set(r.conversation_id, Number(r.last_event_seq));
    return out;
  }

  async oldestRetained(conversationIds: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (conversationIds.length === 0) return out;
    // One index probe per conversation (the primary key's first entry).
    const { rows } = await this.sql.query<{ id: string; oldest: number | null }>(
      `SELECT id, (SELECT e.event_seq FROM conversation_events e WHERE e.conversation_id = c.id ORDER BY e.event_seq LIMIT 1) AS oldest
         FROM unnest($1::uuid[]) AS c(id)`,
      [conversationIds],
    );
    for (const r of rows) if (r.oldest !== null) out.set(r.id, Number(r.oldest));
    return out;
  }

  async lastMembershipEvent(
    conversationId: string,
    userId: string,
    type: "member_joined" | "member_left",
    afterSeq: number,
  ): Promise<LoggedEvent | null> {
    const { rows } = await this.sql.query<EventRow>(
      `SELECT ${COLUMNS} FROM conversation_events
        WHERE conversation_id = $1 AND subject_user_id = $2 AND type = $3 AND event_seq > $4
        ORDER BY event_seq DESC LIMIT 1`,
      [conversationId, userId, type, afterSeq],
    );
    return rows[0] ? toLogged(rows[0]) : null;
  }

  async messageSeqsAt(positions: Map<string, number>): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (positions.size === 0) return out;
    const ids = [...positions.keys()];
    const { rows } = await this.sql.query<{ id: string; message_seq: number | null }>(
      `SELECT p.id, (SELECT e.message_seq FROM conversation_events e
                      WHERE e.conversation_id = p.id AND e.event_seq <= p.seq AND e.message_seq IS NOT NULL
                      ORDER BY e.event_seq DESC LIMIT 1) AS message_seq
         FROM unnest($1::uuid[], $2::bigint[]) AS p(id, seq)`,
      [ids, ids.map((id) => positions.get(id)!)],
    );
    for (const r of rows) if (r.message_seq !== null) out.set(r.id, Number(r.message_seq));
    return out;
  }

  async saveCheckpoint(cp: Omit<Checkpoint, "createdAt">): Promise<Checkpoint> {
    const { rows } = await this.sql.query<{ created_at: Date }>(
      "INSERT INTO stream_checkpoints (id, user_id, conversation_ids, seqs) VALUES ($1, $2, $3::uuid[], $4::bigint[]) RETURNING created_at",
      [cp.id, cp.userId, cp.conversationIds, cp.seqs],
    );
    return { ...cp, createdAt: rows[0].created_at };
  }

  async getCheckpoint(id: string): Promise<Checkpoint | null> {
    const { rows } = await this.sql.query<{ id: string; user_id: string; conversation_ids: string[]; seqs: (string | number)[]; created_at: Date }>(
      "SELECT id, user_id, conversation_ids, seqs, created_at FROM stream_checkpoints WHERE id = $1",
      [id],
    );
    const r = rows[0];
    if (!r) return null;
    return { id: r.id, userId: r.user_id, conversationIds: r.conversation_ids, seqs: r.seqs.map(Number), createdAt: r.created_at };
  }

  async prune(before: Date, batch = 5000): Promise<{ events: number; checkpoints: number }> {
    const sweep = async (table: string): Promise<number> => {
      let total = 0;
      // Small batches: no long transaction, no lock on the whole table.
      for (;;) {
        const res = await this.sql.query(`DELETE FROM ${table} WHERE ctid IN (SELECT ctid FROM ${table} WHERE created_at < $1 LIMIT $2)`, [
          before,
          batch,
        ]);
        total += res.rowCount;
        if (res.rowCount < batch) return total;
      }
    };
    return { events: await sweep("conversation_events"), checkpoints: await sweep("stream_checkpoints") };
  }
}
