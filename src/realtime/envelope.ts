// What travels over the ephemeral store's pub/sub between nodes.
//
// `ev:{<conversationId>}`: one message per event, decoded once per node and
// fanned out in process to that node's streams:
//   byte 0: 1 = durable (has an event_seq), 2 = ephemeral (typing: no seq)
//   bytes 1..8: event_seq as a big-endian float64 (0 for ephemeral)
//   rest: the chat.v1.Event, serialized, with an empty cursor (cursors are per stream)
//
// `user:{<userId>}`: membership changes of that user, so the user's streams on
// every node add or drop the conversation live (JSON, rare), and the user's own
// ephemeral events (notification_created), as an ephemeral event envelope above
// (byte 0 = 2; JSON starts with `{`).

import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { EventSchema, type Event } from "../../gen/chat/v1/message_pb.js";

// Hash-tagged ({…}): on Redis Cluster with sharded pub/sub (SSUBSCRIBE/SPUBLISH)
// a channel lives on the shard owning its slot, so each conversation's and
// each user's traffic goes to one shard only (docs/SCALING.md). Plain Redis
// ignores the braces.
export const conversationChannel = (conversationId: string): string => `ev:{${conversationId}}`;
export const userChannel = (userId: string): string => `user:{${userId}}`;

export interface EventEnvelope {
  durable: boolean;
  eventSeq: number;
  event: Event;
}

export function encodeEventEnvelope(durable: boolean, eventSeq: number, event: Event): Uint8Array {
  const body = toBinary(EventSchema, event);
  const out = new Uint8Array(9 + body.length);
  out[0] = durable ? 1 : 2;
  new DataView(out.buffer).setFloat64(1, eventSeq);
  out.set(body, 9);
  return out;
}

/** Null for anything malformed (a peer on another version, garbage): dropped, never thrown. */
export function decodeEventEnvelope(bytes: Uint8Array): EventEnvelope | null {
  if (bytes.length < 9 || (bytes[0] !== 1 && bytes[0] !== 2)) return null;
  try {
    const eventSeq = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getFloat64(1);
    const event = fromBinary(EventSchema, bytes.subarray(9));
    if (!event.conversationId || !Number.isSafeInteger(eventSeq) || eventSeq < 0) return null;
    return { durable: bytes[0] === 1, eventSeq, event };
  } catch {
    return null;
  }
}

export interface MembershipChange {
  conversationId: string;
  /** event_seq of the member_joined / member_left event. */
  eventSeq: number;
  joined: boolean;
}

export function encodeMembershipChange(m: MembershipChange): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ c: m.conversationId, s: m.eventSeq, j: m.joined }));
}

export function decodeMembershipChange(bytes: Uint8Array): MembershipChange | null {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes)) as { c?: unknown; s?: unknown; j?: unknown };
    if (typeof v.c !== "string" || typeof v.s !== "number" || !Number.isSafeInteger(v.s) || typeof v.j !== "boolean") return null;
    return { conversationId: v.c, eventSeq: v.s, joined: v.j };
  } catch {
    return null;
  }
}
