import { createHash } from "node:crypto";
export { isUuid } from "../shared/ids.ts";

// A fixed namespace for message ids derived from their idempotency key.
const MESSAGE_NAMESPACE = Buffer.from("6f1c2b0e5d7a4c3e9b8a1f2e3d4c5b6a", "hex");

/**
 * RFC 9562 version-5 UUID of (conversation, sender, client_message_id). The
 * Mongo adapter uses it as the message _id, so a repeated send collides on
 * the primary key and the original is found by _id: the cheapest lookup on
 * every MongoDB-protocol server (FerretDB only pushes _id equality down).
 */
export function messageIdFor(conversationId: string, senderId: string, clientMessageId: string): string {
  const hash = createHash("sha1")
    .update(MESSAGE_NAMESPACE)
    .update(JSON.stringify([conversationId, senderId, clientMessageId]), "utf8") // unambiguous, whatever the parts hold
    .digest();
  hash[6] = (hash[6] & 0x0f) | 0x50; // version 5
  hash[8] = (hash[8] & 0x3f) | 0x80; // RFC variant
  const hex = hash.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
