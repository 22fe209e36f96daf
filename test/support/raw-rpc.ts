// RPCs with arbitrary bytes on the wire, for hostile-input tests: gRPC over
// HTTP/2 (node:http2), gRPC-Web and Connect over HTTP/1.1 (node:http). No
// client library in the way, so a body can be anything: truncated frames,
// random bytes, a message that does not decode. Returns the status the server
// gave, however it gave it (trailers, trailer frame, HTTP status + JSON, an
// end-stream frame, or an error frame of chat.v1.MessageService/Stream).

import http from "node:http";
import http2 from "node:http2";
import { Code } from "@connectrpc/connect";

export type RawProtocol = "grpc" | "grpc-web" | "connect";

export interface RawResult {
  /** The final status; null when the call was cut by us after `settleMs` (a stream left open) or reset. */
  code: number | null;
  message: string;
  /** HTTP/2 RST_STREAM code when the stream was reset instead of answered. */
  resetCode?: number;
  /** Payloads of the response messages (envelopes with flag 0), in order. */
  messages: Uint8Array[];
  /** Everything the server sent (headers, body, trailers) as text, to look for leaked internals. */
  text: string;
}

export interface RawRequest {
  protocol: RawProtocol;
  /** "/pkg.Service/Method" */
  path: string;
  /** The complete request body, as it goes on the wire (envelopes included where the protocol has them). */
  body: Uint8Array;
  /** Connect only: unary calls use application/proto (or json), streams application/connect+proto. */
  streaming?: boolean;
  json?: boolean;
  headers?: Record<string, string>;
  /**
   * For a call that may stay open (a stream): once this long passes with
   * nothing new from the server, the call is cancelled and reported with code null.
   */
  settleMs?: number;
  /** gRPC-Web and Connect over HTTP/2 (h2c) instead of HTTP/1.1; gRPC is always HTTP/2. */
  http2?: boolean;
  /** Fails the call (as a hang) after this long with no final status. */
  timeoutMs?: number;
}

export class HangError extends Error {}

const CONNECT_CODES: Record<string, number> = Object.fromEntries(
  Object.entries(Code)
    .filter(([, v]) => typeof v === "number")
    .map(([k, v]) => [k.replace(/[A-Z]/g, (c, i) => (i ? "_" : "") + c.toLowerCase()), v as number]),
);

/** One gRPC length-prefixed message. */
export function envelope(payload: Uint8Array, flags = 0): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(payload.byteLength, 1);
  return Buffer.concat([head, payload]);
}

/** Splits complete envelopes off the front of `buf`; returns them and the rest. */
function splitEnvelopes(buf: Buffer): { frames: { flags: number; data: Buffer }[]; rest: Buffer } {
  const frames: { flags: number; data: Buffer }[] = [];
  let at = 0;
  while (at + 5 <= buf.length) {
    const len = buf.readUInt32BE(at + 1);
    if (at + 5 + len > buf.length) break;
    frames.push({ flags: buf[at], data: buf.subarray(at + 5, at + 5 + len) });
    at += 5 + len;
  }
  return { frames, rest: buf.subarray(at) };
}

function parseGrpcWebTrailer(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of data.toString("utf8").split("\r\n")) {
    const i = line.indexOf(":");
    if (i > 0) out[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return out;
}

const decodeGrpcMessage = (m: string | undefined) => {
  try {
    return decodeURIComponent(m ?? "");
  } catch {
    return m ?? "";
  }
};

/** Sends one raw request; see RawRequest. A session/agent may be passed to reuse connections. */
export async function rawCall(
  baseUrl: string,
  req: RawRequest,
  conn: { h2?: http2.ClientHttp2Session; agent?: http.Agent } = {},
): Promise<RawResult> {
  return req.protocol === "grpc" || req.http2 ? h2Call(baseUrl, req, conn.h2) : http1Call(baseUrl, req, conn.agent);
}

function watchdog(req: RawRequest, onSettle: () => void, onHang: () => void) {
  let settle: NodeJS.Timeout | null = null;
  const hang = setTimeout(onHang, req.timeoutMs ?? 15_000);
  const bump = () => {
    if (req.settleMs === undefined) return;
    if (settle) clearTimeout(settle);
    settle = setTimeout(onSettle, req.settleMs);
  };
  bump();
  return {
    bump,
    clear() {
      clearTimeout(hang);
      if (settle) clearTimeout(settle);
    },
  };
}

function h2Call(baseUrl: string, req: RawRequest, shared?: http2.ClientHttp2Session): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const session = shared ?? http2.connect(baseUrl);
    const own = !shared;
    session.on("error", () => {});
    const stream = session.request({
      ":method": "POST",
      ":path": req.path,
      "content-type": contentTypeOf(req),
      ...protocolHeaders(req),
      ...req.headers,
    });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    let raw = Buffer.alloc(0);
    let done = false;
    const finish = (r: RawResult | Error) => {
      if (done) return;
      done = true;
      w.clear();
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
      if (own) session.close();
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    const result = () => interpret1(req, headers[":status"] as number | undefined, headers, trailers, raw);
    const w = watchdog(
      req,
      () => finish({ ...result(), code: null, message: "settled" }),
      () => finish(new HangError(`no status within ${req.timeoutMs ?? 15_000} ms`)),
    );
    stream.on("response", (h) => {
      headers = h;
      w.bump();
    });
    stream.on("trailers", (t) => (trailers = t));
    stream.on("data", (chunk: Buffer) => {
      w.bump();
      raw = Buffer.concat([raw, chunk]);
    });
    stream.on("error", () => {});
    stream.on("close", () => {
      const r = result();
      if (r.code === null && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
        finish({ ...r, message: `stream reset (${stream.rstCode})`, resetCode: stream.rstCode });
      } else {
        finish(r);
      }
    });
    stream.end(Buffer.from(req.body));
  });
}

function contentTypeOf(req: RawRequest): string {
  if (req.protocol === "grpc") return req.json ? "application/grpc+json" : "application/grpc";
  return req.protocol === "grpc-web"
    ? req.json
      ? "application/grpc-web+json"
      : "application/grpc-web+proto"
    : req.streaming
      ? req.json
        ? "application/connect+json"
        : "application/connect+proto"
      : req.json
        ? "application/json"
        : "application/proto";
}

function protocolHeaders(req: RawRequest): Record<string, string> {
  if (req.protocol === "grpc") return { te: "trailers" };
  return req.protocol === "connect" ? { "connect-protocol-version": "1" } : { "x-grpc-web": "1" };
}

/** The status of a finished (or cut) response, however the protocol carries it. */
function interpret1(
  req: RawRequest,
  statusCode: number | undefined,
  headers: Record<string, unknown>,
  trailers: Record<string, unknown>,
  raw: Buffer,
): RawResult {
  const text = JSON.stringify(headers) + raw.toString("latin1") + JSON.stringify(trailers);
  const str = (v: unknown) => (Array.isArray(v) ? String(v[0]) : v === undefined ? undefined : String(v));
  if (req.protocol === "grpc" || req.protocol === "grpc-web") {
    const { frames } = splitEnvelopes(raw);
    const messages = frames.filter((f) => (f.flags & 0x80) === 0).map((f) => f.data);
    const trailer = frames.find((f) => f.flags & 0x80);
    const t: Record<string, unknown> = { ...(trailer ? parseGrpcWebTrailer(trailer.data) : {}), ...trailers };
    const st = str(t["grpc-status"] ?? headers["grpc-status"]);
    const msg = str(t["grpc-message"] ?? headers["grpc-message"]);
    if (st === undefined) return { code: null, message: `no grpc-status (HTTP ${statusCode})`, messages, text };
    return { code: Number(st), message: decodeGrpcMessage(msg), messages, text };
  }
  if (!req.streaming) {
    if (statusCode === 200) return { code: 0, message: "", messages: [raw], text };
    try {
      const j = JSON.parse(raw.toString("utf8")) as { code?: string; message?: string };
      return { code: CONNECT_CODES[j.code ?? ""] ?? null, message: j.message ?? "", messages: [], text };
    } catch {
      return { code: null, message: `HTTP ${statusCode}, no JSON error`, messages: [], text };
    }
  }
  const { frames } = splitEnvelopes(raw);
  const messages = frames.filter((f) => f.flags === 0).map((f) => f.data);
  const end = frames.find((f) => f.flags & 0x02);
  if (!end) return { code: null, message: `no end of stream (HTTP ${statusCode})`, messages, text };
  try {
    const j = JSON.parse(end.data.toString("utf8")) as { error?: { code?: string; message?: string } };
    if (!j.error) return { code: 0, message: "", messages, text };
    return { code: CONNECT_CODES[j.error.code ?? ""] ?? null, message: j.error.message ?? "", messages, text };
  } catch {
    return { code: null, message: "end of stream is not JSON", messages, text };
  }
}

function http1Call(baseUrl: string, req: RawRequest, agent?: http.Agent): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const r = http.request(`${baseUrl}${req.path}`, {
      method: "POST",
      agent: agent ?? false,
      headers: {
        "content-type": contentTypeOf(req),
        ...protocolHeaders(req),
        ...req.headers,
      },
    });
    let done = false;
    let res: http.IncomingMessage | null = null;
    let raw = Buffer.alloc(0);
    const finish = (x: RawResult | Error) => {
      if (done) return;
      done = true;
      w.clear();
      if (!(x instanceof Error) && x.code !== null && res?.complete) {
        // answered in full: the connection may be reused
      } else {
        r.destroy();
      }
      if (x instanceof Error) reject(x);
      else resolve(x);
    };
    const w = watchdog(
      req,
      () => finish({ ...interpret(), code: null, message: "settled" }),
      () => finish(new HangError(`no status within ${req.timeoutMs ?? 15_000} ms`)),
    );
    const interpret = (): RawResult => interpret1(req, res?.statusCode, res?.headers ?? {}, {}, raw);
    r.on("response", (m) => {
      res = m;
      w.bump();
      m.on("data", (c: Buffer) => {
        raw = Buffer.concat([raw, c]);
        w.bump();
      });
      m.on("end", () => finish(interpret()));
      m.on("error", () => finish(interpret()));
    });
    r.on("error", (err) => {
      if (!done && res) finish(interpret());
      else finish(Object.assign(new Error(`request failed: ${err.message}`), { cause: err }));
    });
    r.end(Buffer.from(req.body));
  });
}
