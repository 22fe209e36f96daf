// The durable event log: per conversation, every durable event with a gapless
// event_seq, so a stream can answer "everything after this" from the store.
// Relational in every mode (migrations/0005_events.sql). One interface, one
// adapter over SqlDatabase (Postgres and PGlite), one conformance suite
// (test/realtime/event-log.test.ts).

import type { DomainEvent } from "../events/events.ts";
import type { SqlDatabase } from "../stores/sql/sql.ts";

export type DurableEventType = DomainEvent["type"];

export interface LoggedEvent {
  eventSeq: number;
  createdAt: Date;
  event: DomainEvent;
}

/** A message that exists in the message store but has no message_created in the log yet. */
export interface UnloggedMessage {
  messageId: string;
  seq: number;
}

/**
 * Asked (before the conversation's log lock is taken) for the messages with
 * afterSeq < seq < beforeSeq (at most `limit`, oldest first): the ones a
 * concurrent sender stored but has not logged yet, or whose publisher died.
 */
export type MessageGapFiller = (conversationId: string, afterSeq: number, beforeSeq: number, limit: number) => Promise<UnloggedMessage[]>;

export interface Checkpoint {
  id: string;
  userId: string;
  conversationIds: string[];
  seqs: number[];
  createdAt: Date;
}

export interface EventLog {
  /**
   * Appends the events of one conversation, in order, with the next event_seqs.
   * A message_created for a message already logged is skipped (retries, the
   * gap filler, the repair). When a message_created would jump over message
   * seqs not logged yet, `fill` supplies those messages and they are logged
   * first, so message_created events follow message seq order (in both
   * message stores, seq n is stored only after n-1). Returns what was appended.
   */
  append(conversationId: string, events: DomainEvent[], fill?: MessageGapFiller): Promise<LoggedEvent[]>;
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

  /** Conversations whose newest messages may lack a message_created (see repair in sink.ts). */
  lagging(olderThan: Date, limit: number): Promise<{ conversationId: string; lastSeq: number; loggedMessageSeq: number }[]>;
  /** Deletes events and checkpoints created before `before`, in batches. */
  prune(before: Date, batch?: number): Promise<{ events: number; checkpoints: number }>;
}

/** Most messages logged by one gap fill; a larger hole is given up on (ListMessages still has them). */
export const GAP_FILL_MAX = 500;

interface EventRow {
  conversation_id: string;
  event_seq: number;
  type: string;
  payload: Record<string, unknown>;
  created_at: Date;
}

/** What goes into `payload`: the event minus the columns. */
function payloadOf(e: DomainEvent): Record<string, unknown> {
  const { type: _t, conversationId: _c, ...rest } = e;
  return rest;
}

function toLogged(r: EventRow): LoggedEvent {
  return {
    eventSeq: Number(r.event_seq),
    createdAt: r.created_at,
    event: { ...r.payload, type: r.type, conversationId: r.conversation_id } as DomainEvent,
  };
}

function subjectOf(e: DomainEvent): string | null {
  return e.type === "member_joined" || e.type === "member_left" ? e.userId : null;
}

const COLUMNS = "conversation_id, event_seq, type, payload, created_at";

export class SqlEventLog implements EventLog {
  private readonly sql: SqlDatabase;

  constructor(sql: SqlDatabase) {
    this.sql = sql;
  }

  async append(conversationId: string, events: DomainEvent[], fill?: MessageGapFiller): Promise<LoggedEvent[]> {
    if (events.length === 0) return [];
    if (events.length === 1) {
      const fast = await this.appendOne(events[0]);
      if (fast) return [fast];
    }
    const createdSeqs = events.flatMap((e) => (e.type === "message_created" ? [e.seq] : []));
    // Messages that may have to be logged first are fetched before taking the
    // lock: the filler reads the message store, which may be this very
    // database (PGlite runs one transaction at a time: a read from inside
    // would wait for itself). logged_message_seq only grows, so what is
    // missing under the lock is a subset of what is fetched here.
    let gap: UnloggedMessage[] = [];
    if (fill && createdSeqs.length > 0) {
      const { rows } = await this.sql.query<{ logged_message_seq: number }>(
        "SELECT logged_message_seq FROM conversation_event_heads WHERE conversation_id = $1",
        [conversationId],
      );
      const logged = Number(rows[0]?.logged_message_seq ?? 0);
      const top = Math.max(...createdSeqs);
      if (top > logged + 1) gap = (await fill(conversationId, logged, top, GAP_FILL_MAX)).sort((a, b) => a.seq - b.seq);
    }
    return this.sql.transaction(async (tx) => {
      // Creates the head on first use and locks it: appends to one conversation
      // are serialised, which is what makes event_seq gapless.
      const { rows } = await tx.query<{ last_event_seq: number; logged_message_seq: number }>(
        `INSERT INTO conversation_event_heads AS h (conversation_id) VALUES ($1)
         ON CONFLICT (conversation_id) DO UPDATE SET last_event_seq = h.last_event_seq
         RETURNING last_event_seq, logged_message_seq`,
        [conversationId],
      );
      let seq = Number(rows[0].last_event_seq);
      let logged = Number(rows[0].logged_message_seq);

      const already = new Set<number>();
      if (createdSeqs.length > 0) {
        const top = Math.max(...createdSeqs);
        const low = Math.min(logged, ...createdSeqs.map((q) => q - 1));
        const found = await tx.query<{ message_seq: number }>(
          "SELECT message_seq FROM conversation_events WHERE conversation_id = $1 AND message_seq > $2 AND message_seq <= $3",
          [conversationId, low, top],
        );
        for (const r of found.rows) already.add(Number(r.message_seq));
      }

      const out: DomainEvent[] = [];
      for (const e of events) {
        if (e.type !== "message_created") {
          out.push(e);
          continue;
        }
        if (already.has(e.seq)) continue;
        for (const m of gap) {
          if (m.seq <= logged || m.seq >= e.seq || already.has(m.seq)) continue;
          out.push({ type: "message_created", conversationId, messageId: m.messageId, seq: m.seq });
          already.add(m.seq);
        }
        out.push(e);
        already.add(e.seq);
        logged = Math.max(logged, e.seq);
      }
      if (out.length === 0) return [];

      const seqs = out.map(() => ++seq);
      const inserted = await tx.query<EventRow>(
        `INSERT INTO conversation_events (conversation_id, event_seq, type, payload, message_seq, subject_user_id)
         SELECT $1, s, t, p, m, u FROM unnest($2::bigint[], $3::text[], $4::jsonb[], $5::bigint[], $6::uuid[]) AS x(s, t, p, m, u)
         RETURNING ${COLUMNS}`,
        [
          conversationId,
          seqs,
          out.map((e) => e.type),
          out.map((e) => JSON.stringify(payloadOf(e))),
          out.map((e) => (e.type === "message_created" ? e.seq : null)),
          out.map(subjectOf),
        ],
      );
      await tx.query("UPDATE conversation_event_heads SET last_event_seq = $2, logged_message_seq = GREATEST(logged_message_seq, $3) WHERE conversation_id = $1", [
        conversationId,
        seq,
        logged,
      ]);
      return inserted.rows.map(toLogged).sort((a, b) => a.eventSeq - b.eventSeq);
    });
  }

  /**
   * The common case in one statement (one round trip, no explicit
   * transaction): one event, the head exists, and for a message_created the
   * previous message is already logged. The UPDATE's row lock lasts for the
   * statement, so numbering stays gapless. Null when the case does not apply
   * (new head, gap, duplicate): then the general path decides.
   */
  private async appendOne(e: DomainEvent): Promise<LoggedEvent | null> {
    const messageSeq = e.type === "message_created" ? e.seq : null;
    const { rows } = await this.sql.query<{ event_seq: number; created_at: Date }>(
      `WITH h AS (
         UPDATE conversation_event_heads
            SET last_event_seq = last_event_seq + 1, logged_message_seq = GREATEST(logged_message_seq, COALESCE($5::bigint, 0))
          WHERE conversation_id = $1 AND ($5::bigint IS NULL OR logged_message_seq = $5::bigint - 1)
          RETURNING last_event_seq
       )
       INSERT INTO conversation_events (conversation_id, event_seq, type, payload, message_seq, subject_user_id)
       SELECT $1, h.last_event_seq, $2, $3::jsonb, $5::bigint, $4::uuid FROM h
       RETURNING event_seq, created_at`,
      [e.conversationId, e.type, JSON.stringify(payloadOf(e)), subjectOf(e), messageSeq],
    );
    const r = rows[0];
    return r ? { eventSeq: Number(r.event_seq), createdAt: r.created_at, event: e } : null;
  }

  async read(conversationId: string, afterSeq: number, uptoSeq: number, limit: number): Promise<LoggedEvent[]> {
    const { rows } = await this.sql.query<EventRow>(
      `SELECT ${COLUMNS} FROM conversation_events
        WHERE conversation_id = $1 AND event_seq > $2 AND event_seq <= $3 ORDER BY event_seq LIMIT $4`,
      [conversationId, afterSeq, uptoSeq, limit],
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

  async lagging(olderThan: Date, limit: number): Promise<{ conversationId: string; lastSeq: number; loggedMessageSeq: number }[]> {
    const { rows } = await this.sql.query<{ id: string; last_seq: number; logged_message_seq: number }>(
      `SELECT c.id, c.last_seq, COALESCE(h.logged_message_seq, 0) AS logged_message_seq
         FROM conversations c LEFT JOIN conversation_event_heads h ON h.conversation_id = c.id
        WHERE c.last_seq > COALESCE(h.logged_message_seq, 0) AND c.last_message_at < $1
        ORDER BY c.last_message_at LIMIT $2`,
      [olderThan, limit],
    );
    return rows.map((r) => ({ conversationId: r.id, lastSeq: Number(r.last_seq), loggedMessageSeq: Number(r.logged_message_seq) }));
  }

  async prune(before: Date, batch = 5000): Promise<{ events: number; checkpoints: number }> {
    const sweep = async (table: string): Promise<number> => {
      let total = 0;
      // Small batches: no long transaction, no lock on the whole table.
      for (;;) {
        const res = await this.sql.query(
          `DELETE FROM ${table} WHERE ctid IN (SELECT ctid FROM ${table} WHERE created_at < $1 LIMIT $2)`,
          [before, batch],
        );
        total += res.rowCount;
        if (res.rowCount < batch) return total;
      }
    };
    return { events: await sweep("conversation_events"), checkpoints: await sweep("stream_checkpoints") };
  }
}
