// The Node request handler for every RPC: connect-node's adapter, plus a check
// of unary request bodies that connect-es does not make itself.
//
// connect-es decodes a request message before any interceptor runs and
// reports a malformed protobuf body ("parse binary: …") as INTERNAL, on
// every protocol. That is the client's fault, so it must be INVALID_ARGUMENT.
// For streaming calls the decode error reaches the handler and the edge
// interceptor (server/errors.ts maps it); for unary calls nothing of ours
// runs, so the request body of each unary call in a binary encoding is
// decoded once here first (the same decoder, the same options) and a
// malformed one is refused with INVALID_ARGUMENT before connect-es sees it.
// The cost is one extra decode of a message of at most readMaxBytes.

import { gunzipSync, brotliDecompressSync } from "node:zlib";
import type http from "node:http";
import type http2 from "node:http2";
import { createConnectRouter, type ConnectRouter, type ConnectRouterOptions, type ContextValues } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest } from "@connectrpc/connect/protocol";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import { fromBinary, type DescMessage } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { invalidMessageError } from "./errors.ts";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

export interface RpcAdapterOptions extends ConnectRouterOptions {
  routes: (router: ConnectRouter) => void;
  readMaxBytes: number;
  fallback?: (req: NodeRequest, res: NodeResponse) => void;
  contextValues?: (req: NodeRequest) => ContextValues;
  /** A handler that failed outside the RPC (the response could not be written). */
  onHandlerFailure: (rpc: string, err: unknown) => void;
}

/** How a unary request body carries its message, by content type; null: not a binary encoding. */
interface Framing {
  enveloped: boolean;
  /** A frame flag that marks the end of the stream rather than a message (gRPC-Web's trailers). */
  endFlag: number;
  encodingHeader: string;
}

function binaryFraming(contentType: string | null): Framing | null {
  const t = (contentType ?? "").split(";")[0].trim().toLowerCase();
  if (t === "application/grpc" || t === "application/grpc+proto") return { enveloped: true, endFlag: 0, encodingHeader: "grpc-encoding" };
  if (t === "application/grpc-web" || t === "application/grpc-web+proto") return { enveloped: true, endFlag: 0x80, encodingHeader: "grpc-encoding" };
  if (t === "application/proto") return { enveloped: false, endFlag: 0, encodingHeader: "content-encoding" };
  return null;
}

function decompress(encoding: string | null, data: Uint8Array, max: number): Uint8Array | null {
  try {
    switch ((encoding ?? "identity").toLowerCase()) {
      case "identity":
        return data;
      case "gzip":
        return gunzipSync(data, { maxOutputLength: max });
      case "br":
        return brotliDecompressSync(data, { maxOutputLength: max });
      default:
        return null; // connect-es refuses an unknown encoding itself
    }
  } catch {
    return null; // corrupt or too large: connect-es answers that with its own code
  }
}

function decodes(desc: DescMessage, data: Uint8Array): void {
  try {
    fromBinary(desc, data);
  } catch (err) {
    throw invalidMessageError(err instanceof Error ? err.message : String(err));
  }
}

/** Throws INVALID_ARGUMENT when a complete message in `body` does not decode; anything else is left to connect-es. */
function checkBody(desc: DescMessage, body: Uint8Array, framing: Framing, encoding: string | null, max: number): void {
  if (!framing.enveloped) {
    const data = decompress(encoding, body, max);
    if (data) decodes(desc, data);
    return;
  }
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  for (let at = 0; at + 5 <= body.byteLength; ) {
    const flags = body[at];
    const len = view.getUint32(at + 1);
    if (at + 5 + len > body.byteLength) return; // truncated: connect-es says so
    const payload = body.subarray(at + 5, at + 5 + len);
    at += 5 + len;
    if (framing.endFlag && (flags & framing.endFlag) === framing.endFlag) continue; // connect-es does not decode it as a message
    if (flags & 0x01 && !encoding) throw invalidMessageError("a compressed message with no grpc-encoding");
    const data = flags & 0x01 ? decompress(encoding, payload, max) : payload;
    if (data) decodes(desc, data);
  }
}

async function* checkedBody(body: AsyncIterable<Uint8Array>, check: (bytes: Uint8Array) => void, max: number): AsyncGenerator<Uint8Array> {
  const it = body[Symbol.asyncIterator]();
  const held: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    held.push(r.value);
    size += r.value.byteLength;
    if (size > max + 5) {
      // Over the limit: connect-es refuses it with RESOURCE_EXHAUSTED; pass it through unchecked.
      yield* held;
      for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
      return;
    }
  }
  check(held.length === 1 ? held[0] : Buffer.concat(held));
  yield* held;
}

function checkUnary(h: UniversalHandler, max: number): UniversalHandler {
  const desc = h.method.input;
  const wrapped = (req: UniversalServerRequest) => {
    const framing = binaryFraming(req.header.get("content-type"));
    const body = req.body as unknown;
    if (framing === null || body === null || typeof body !== "object" || !(Symbol.asyncIterator in body)) return h(req);
    const encoding = req.header.get(framing.encodingHeader);
    const check = (bytes: Uint8Array) => checkBody(desc, bytes, framing, encoding, max);
    return h({ ...req, body: checkedBody(body as AsyncIterable<Uint8Array>, check, max) });
  };
  return Object.assign(wrapped, h);
}

/** Like connectNodeAdapter (same routing, same fallback), with unary request bodies checked. */
export function rpcNodeHandler(options: RpcAdapterOptions): (req: NodeRequest, res: NodeResponse) => void {
  const router = createConnectRouter({ acceptCompression: [compressionGzip, compressionBrotli], ...options });
  options.routes(router);
  const paths = new Map<string, UniversalHandler>();
  for (const h of router.handlers) paths.set(h.requestPath, h.method.methodKind === "unary" ? checkUnary(h, options.readMaxBytes) : h);
  const notFound = (_req: NodeRequest, res: NodeResponse) => {
    res.statusCode = 404;
    res.end();
  };
  return (req, res) => {
    const h = paths.get(req.url?.split("?", 2)[0] ?? "");
    if (!h) return (options.fallback ?? notFound)(req, res);
    const uReq = universalRequestFromNodeRequest(req, res as never, undefined, options.contextValues?.(req));
    h(uReq)
      .then((uRes) => universalResponseToNodeResponse(uRes, res as never))
      .catch((err: unknown) => {
        if (ConnectError.from(err).code === Code.Aborted) return;
        options.onHandlerFailure(`${h.service.typeName}/${h.method.name}`, err);
      });
  };
}
