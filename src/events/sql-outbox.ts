// Writing events into the durable log (migrations/0005_events.sql) inside the
// transaction of the change they announce: the transactional outbox. Used by
// every relational store that changes something a stream shows (messages,
// conversations, watermarks); the realtime module reads the log.
//
// Numbering: conversation_event_heads.last_event_seq, moved under that row's
// lock in the same transaction as the insert, so event_seq is gapless per
// conversation and events of one conversation commit in event_seq order.
//
// Lock order (no deadlock cycle between writers): the conversations row, then
// the conversation's head row, then member rows, then message rows. Sends and
// membership changes hold the conversation row and take the head next;
// receipts (member rows) take the head first; edits and reactions take the
// head first (`lockHead`) and read in a later statement, so the reaction
// counts they log are exact at the event's place in the order. (Member rows
// come after the head because the send statement's member-activity trigger,
// migration 0007, updates them at the very end of the statement.)

import type { SqlExecutor } from "../stores/sql/sql.ts";
import type { StoredMessage } from "../messages/types.ts";
import type { ConversationRecord } from "../conversations/types.ts";
import type { DomainEvent, LoggedEvent } from "./events.ts";

/** The payload column: the event minus its columns, dates as ISO strings. */
export function payloadOf(e: DomainEvent): string {
  const { type: _t, conversationId: _c, ...rest } = e;
  return JSON.stringify(rest);
}

/** message_seq column: set for message_created only (one event per message: a unique index). */
function messageSeqOf(e: DomainEvent): number | null {
  return e.type === "message_created" ? e.seq : null;
}

/** subject_user_id column: whose membership changed. */
export function subjectOf(e: DomainEvent): string | null {
  return e.type === "member_joined" || e.type === "member_left" ? e.userId : null;
}

const date = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(v as string));

export function messageFromJson(j: Record<string, unknown>): StoredMessage {
  return {
    id: j.id as string,
    conversationId: j.conversationId as string,
    seq: Number(j.seq),
    senderId: j.senderId as string,
    clientMessageId: j.clientMessageId as string,
    content: j.content as string,
    parentMessageId: (j.parentMessageId as string | null) ?? null,
    mentions: (j.mentions as string[] | null) ?? [],
    attachments: (j.attachments as StoredMessage["attachments"] | null) ?? [],
    replyCount: Number(j.replyCount ?? 0),
    lastReplyAt: date(j.lastReplyAt),
    createdAt: date(j.createdAt)!,
    editedAt: date(j.editedAt),
    deletedAt: date(j.deletedAt),
  };
}

function conversationFromJson(j: Record<string, unknown>): ConversationRecord {
  return {
    ...(j as unknown as ConversationRecord),
    memberCount: Number(j.memberCount),
    lastSeq: Number(j.lastSeq),
    lastMessageAt: date(j.lastMessageAt)!,
    createdAt: date(j.createdAt)!,
    updatedAt: date(j.updatedAt)!,
  };
}

/** A log row back into the event (dates revived). */
export function decodeEvent(type: string, conversationId: string, payload: Record<string, unknown>): DomainEvent {
  const e = { ...payload, type, conversationId } as Record<string, unknown>;
  if (e.message && typeof e.message === "object") e.message = messageFromJson(e.message as Record<string, unknown>);
  if (e.conversation && typeof e.conversation === "object") e.conversation = conversationFromJson(e.conversation as Record<string, unknown>);
  return e as unknown as DomainEvent;
}

/**
 * The message row `alias` as the JSON a message-carrying payload holds (for
 * statements that build the event in SQL: the send).
 */
export function messageJsonSql(alias: string): string {
  const a = alias;
  return `jsonb_build_object('id', ${a}.id, 'conversationId', ${a}.conversation_id, 'seq', ${a}.seq, 'senderId', ${a}.sender_id,
    'clientMessageId', ${a}.client_message_id, 'content', ${a}.content, 'parentMessageId', ${a}.parent_message_id,
    'mentions', to_jsonb(${a}.mentions), 'attachments', ${a}.attachments, 'replyCount', ${a}.reply_count,
    'lastReplyAt', ${a}.last_reply_at, 'createdAt', ${a}.created_at, 'editedAt', ${a}.edited_at, 'deletedAt', ${a}.deleted_at)`;
}

/**
 * Takes the conversation's head lock (creating the head on first use) without
 * appending: what follows in the transaction reads under the event order.
 */
export async function lockHead(tx: SqlExecutor, conversationId: string): Promise<void> {
  await tx.query(
    `INSERT INTO conversation_event_heads AS h (conversation_id) VALUES ($1)
     ON CONFLICT (conversation_id) DO UPDATE SET last_event_seq = h.last_event_seq`,
    [conversationId],
  );
}

/**
 * Appends events of one conversation, in order, with the next event_seqs: one
 * statement (the head's upsert and the inserts). Must run in the transaction
 * of the change (or be the change's own statement).
 */
export async function appendEvents(tx: SqlExecutor, conversationId: string, events: DomainEvent[]): Promise<LoggedEvent[]> {
  if (events.length === 0) return [];
  const n = events.length;
  const createdMax = Math.max(0, ...events.map((e) => messageSeqOf(e) ?? 0));
  const { rows } = await tx.query<{ event_seq: number; created_at: Date; i: number }>(
    `WITH h AS (
       INSERT INTO conversation_event_heads AS h (conversation_id, last_event_seq, logged_message_seq) VALUES ($1, $2, $3)
       ON CONFLICT (conversation_id) DO UPDATE
         SET last_event_seq = h.last_event_seq + $2, logged_message_seq = GREATEST(h.logged_message_seq, $3)
       RETURNING last_event_seq
     )
     INSERT INTO conversation_events (conversation_id, event_seq, type, payload, message_seq, subject_user_id)
     SELECT $1, h.last_event_seq - $2 + x.i, x.t, x.p, x.m, x.u
       FROM h, unnest($4::text[], $5::jsonb[], $6::bigint[], $7::uuid[]) WITH ORDINALITY AS x(t, p, m, u, i)
     RETURNING event_seq, created_at`,
    [conversationId, n, createdMax, events.map((e) => e.type), events.map(payloadOf), events.map(messageSeqOf), events.map(subjectOf)],
  );
  const sorted = rows.map((r) => ({ eventSeq: Number(r.event_seq), createdAt: r.created_at })).sort((a, b) => a.eventSeq - b.eventSeq);
  return sorted.map((r, i) => ({ ...r, event: events[i] }));
}

/** Appends per conversation (a change touching several: delivery receipts). */
export async function appendEventsOfMany(tx: SqlExecutor, events: DomainEvent[]): Promise<LoggedEvent[]> {
  const byConversation = new Map<string, DomainEvent[]>();
  for (const e of events) byConversation.set(e.conversationId, [...(byConversation.get(e.conversationId) ?? []), e]);
  const out: LoggedEvent[] = [];
  // Sorted: two such transactions take the head locks in the same order.
  for (const c of [...byConversation.keys()].sort()) out.push(...(await appendEvents(tx, c, byConversation.get(c)!)));
  return out;
}
