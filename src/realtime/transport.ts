// The one place realtime reaches below Connect: a stream whose client stopped
// reading cannot be told RESOURCE_EXHAUSTED in band (the status would queue
// behind the unread data), so it is reset at the HTTP/2 level instead.

import http2 from "node:http2";
import type http from "node:http";
import { createContextKey, type HandlerContext } from "@connectrpc/connect";

export type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;

/** The Node request behind an RPC; set by the composition root's contextValues. */
export const kNodeRequest = createContextKey<NodeRequest | undefined>(undefined, { description: "node request" });

/**
 * Cuts the call at the transport. HTTP/2: RST_STREAM with ENHANCE_YOUR_CALM,
 * which gRPC clients report as RESOURCE_EXHAUSTED (the gRPC spec's mapping);
 * only this stream ends, the connection and its other streams live on.
 * HTTP/1.1 (Connect streaming from browsers): the connection carries only
 * this call, so it is closed.
 */
export function hardCutter(ctx: HandlerContext): (() => void) | null {
  const req = ctx.values.get(kNodeRequest);
  if (!req) return null;
  return () => {
    if ("stream" in req && req.stream) {
      if (req.stream.destroyed) return;
      req.stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      // Fail the pending write as "destroyed" (the RST above is already on its
      // way), which Connect treats as a hang-up rather than logging a failure.
      req.stream.destroy(Object.assign(new Error("stream cut off: the client fell behind"), { code: "ERR_STREAM_DESTROYED" }));
    } else {
      req.socket?.destroy();
    }
  };
}
