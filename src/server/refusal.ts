// A precomputed error response, written straight to the Node response in the
// request's protocol (gRPC, gRPC-Web, Connect streaming) without going through
// connect-es's handler. For refusing load at the door: when thousands of calls
// arrive at once, each one costs connect-es's per-call machinery and our
// interceptors (milliseconds) before anything can refuse it; this costs one
// header block and one cached buffer.
//
// The bytes are the ones connect-es itself writes for the same error (its own
// serializers: setTrailerStatus, the gRPC-Web trailer frame, the Connect
// end-stream message), so clients cannot tell the difference, except that
// there is no x-request-id (nothing ran that could be logged under one).

import type http from "node:http";
import type http2 from "node:http2";
import type { ConnectError } from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { createTrailerSerialization, trailerFlag } from "@connectrpc/connect/protocol-grpc-web";
import { endStreamFlag, endStreamToJson } from "@connectrpc/connect/protocol-connect";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

type Protocol = "grpc" | "grpc-web" | "connect-stream";

/** The protocol of a streaming call by its content type (null: not one this writes; let connect-es answer). */
function protocolOf(req: NodeRequest): Protocol | null {
  const t = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
  if (t === "application/grpc" || t === "application/grpc+proto" || t === "application/grpc+json") return req.httpVersionMajor === 2 ? "grpc" : null; // gRPC needs HTTP/2 trailers
  if (t === "application/grpc-web" || t === "application/grpc-web+proto" || t === "application/grpc-web+json") return "grpc-web";
  if (t === "application/connect+proto" || t === "application/connect+json") return "connect-stream";
  return null;
}

function envelope(flag: number, data: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + data.byteLength);
  out[0] = flag;
  out.writeUInt32BE(data.byteLength, 1);
  out.set(data, 5);
  return out;
}

interface Encoded {
  /** gRPC: the trailer fields. */
  grpcTrailer: Record<string, string>;
  /** gRPC-Web: the body (one trailer frame). */
  grpcWebBody: Buffer;
  /** Connect streaming: the body (one end-stream message). */
  connectBody: Buffer;
}

function encode(err: ConnectError): Encoded {
  const trailer = new Headers();
  setTrailerStatus(trailer, err);
  const grpcTrailer: Record<string, string> = {};
  trailer.forEach((v, k) => {
    grpcTrailer[k] = v;
  });
  const grpcWebBody = envelope(trailerFlag, createTrailerSerialization().serialize(trailer));
  const connectBody = envelope(endStreamFlag, Buffer.from(JSON.stringify(endStreamToJson(new Headers(), err, undefined))));
  return { grpcTrailer, grpcWebBody, connectBody };
}

/**
 * One refusal in several variants (for example RetryInfo delays with
 * different jitter), encoded once; `write` picks one at random.
 */
export class PrecomputedRefusal {
  private readonly variants: Encoded[];

  constructor(errors: ConnectError[]) {
    if (errors.length === 0) throw new Error("PrecomputedRefusal needs at least one error");
    this.variants = errors.map(encode);
  }

  /**
   * Answers the call with the error and returns true; false (nothing written)
   * when the request's protocol is not one it writes, so the caller lets
   * connect-es handle the call as usual. Headers already set on `res` (CORS)
   * are kept.
   */
  write(req: NodeRequest, res: NodeResponse): boolean {
    const protocol = protocolOf(req);
    if (protocol === null) return false;
    const v = this.variants[Math.floor(Math.random() * this.variants.length)];
    const contentType = req.headers["content-type"]!;
    // The request body is not read: end the exchange without waiting for it.
    if (protocol === "grpc") {
      const r = res as http2.Http2ServerResponse;
      r.writeHead(200, { "content-type": contentType });
      r.addTrailers(v.grpcTrailer);
      r.end();
    } else {
      // (HTTP/1.1 with an unread body: server/http.ts adds `Connection: close`.)
      const r = res as http.ServerResponse;
      r.writeHead(200, { "content-type": contentType });
      r.end(protocol === "grpc-web" ? v.grpcWebBody : v.connectBody);
    }
    return true;
  }
}
