// Resume cursors. A stream's position is a vector: conversation -> last
// event_seq delivered. To keep cursors short whatever the number of
// conversations, a cursor names a checkpoint (that vector persisted at one
// moment, stream_checkpoints) plus a small delta: (index into the
// checkpoint's conversation list, seq) for the conversations that moved since.
//
// Wire form: base64url( 0x01 | checkpoint uuid (16 bytes) | varint n | n x (varint index, varint seq) ).

import { invalidArgument } from "../shared/errors.ts";

export interface CursorValue {
  checkpointId: string;
  /** index into the checkpoint's conversation list -> event_seq */
  delta: [number, number][];
}

const VERSION = 1;
/** A cursor longer than this is not one of ours. */
const MAX_CURSOR_CHARS = 2048;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function pushVarint(out: number[], n: number): void {
  // Seqs stay far below 2^53; 7 bits at a time with plain arithmetic (no 32-bit bit ops).
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
}

export function encodeCursor(c: CursorValue): string {
  const out: number[] = [VERSION];
  const hex = c.checkpointId.replace(/-/g, "");
  for (let i = 0; i < 32; i += 2) out.push(parseInt(hex.slice(i, i + 2), 16));
  pushVarint(out, c.delta.length);
  for (const [index, seq] of c.delta) {
    pushVarint(out, index);
    pushVarint(out, seq);
  }
  return Buffer.from(out).toString("base64url");
}

/** Decodes a cursor; INVALID_ARGUMENT naming `field` when it is not one. */
export function decodeCursor(field: string, text: string): CursorValue {
  const bad = () => invalidArgument(field, "is not a cursor issued by this server", "CURSOR_INVALID");
  if (text.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(text)) throw bad();
  const b = Buffer.from(text, "base64url");
  if (b.length < 18 || b[0] !== VERSION) throw bad();
  let pos = 17;
  const varint = (): number => {
    let n = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (pos >= b.length) throw bad();
      const byte = b[pos++];
      n += (byte & 0x7f) * mul;
      if (byte < 0x80) return n;
      mul *= 0x80;
    }
    throw bad();
  };
  const hex = b.subarray(1, 17).toString("hex");
  const checkpointId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  if (!UUID.test(checkpointId)) throw bad();
  const n = varint();
  if (n > 10_000) throw bad();
  const delta: [number, number][] = [];
  for (let i = 0; i < n; i++) delta.push([varint(), varint()]);
  if (pos !== b.length) throw bad();
  return { checkpointId, delta };
}
