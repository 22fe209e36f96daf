import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";

type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

export interface HttpServerOptions {
  host: string;
  port: number;
  tls: { certFile: string; keyFile: string } | null;
  maxConcurrentStreams: number;
}

export interface RunningHttpServer {
  port: number;
  /** Requests whose response has not finished yet. */
  inFlight(): number;
  /** Stops accepting connections; HTTP/2 sessions get GOAWAY, idle HTTP/1 sockets close. */
  stopAccepting(): void;
  /** Destroys whatever is still open. */
  destroy(): void;
}

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * HTTP/1.1: a response that starts before its request body was read to the
 * end (a request refused on its size or framing: the RPC layer stops reading
 * it) ends the connection, and says so with `Connection: close`. Otherwise the
 * unread rest of the body stays in the connection and the next request on it
 * waits behind it forever.
 */
function closeIfBodyUnread(req: http.IncomingMessage, res: http.ServerResponse): void {
  const hasBody = req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;
  if (!hasBody) return;
  const writeHead = res.writeHead;
  res.writeHead = function (this: http.ServerResponse, ...args: unknown[]) {
    if (!req.complete && !this.headersSent) this.setHeader("connection", "close");
    return (writeHead as (...a: unknown[]) => http.ServerResponse).apply(this, args);
  } as typeof res.writeHead;
}

/**
 * One port, every protocol: with TLS, ALPN picks HTTP/2 or HTTP/1.1; in
 * cleartext, the first bytes of a connection decide (the HTTP/2 connection
 * preface means h2c with prior knowledge, as gRPC clients use; anything else
 * is HTTP/1.1, as browsers and curl use).
 */
export async function startHttpServer(opts: HttpServerOptions, handler: Handler): Promise<RunningHttpServer> {
  let inFlight = 0;
  let stopping = false;
  const counted: Handler = (req, res) => {
    inFlight++;
    res.once("close", () => inFlight--);
    if (req.httpVersionMajor === 1) {
      if (stopping) res.setHeader("connection", "close");
      closeIfBodyUnread(req as http.IncomingMessage, res as http.ServerResponse);
    }
    handler(req, res);
  };
  const settings: http2.Settings = { maxConcurrentStreams: opts.maxConcurrentStreams };
  const sessions = new Set<http2.ServerHttp2Session>();
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  };

  let listener: net.Server;
  let h1: http.Server | null = null;
  let h2: http2.Http2Server | http2.Http2SecureServer;
  if (opts.tls) {
    h2 = http2.createSecureServer(
      { cert: readFileSync(opts.tls.certFile), key: readFileSync(opts.tls.keyFile), allowHTTP1: true, settings },
      counted as never,
    );
    listener = h2;
    h2.on("connection", track);
    h2.on("secureConnection", track);
  } else {
    h2 = http2.createServer({ settings }, counted as never);
    h1 = http.createServer(counted as http.RequestListener);
    h1.keepAliveTimeout = 65_000;
    const h1s = h1;
    const h2s = h2;
    listener = net.createServer((socket) => {
      track(socket);
      // Four bytes tell "PRI " (the HTTP/2 preface) from any HTTP/1.1 method.
      // Read them in paused mode and put them back before handing the socket
      // over: both Node servers then read them from the stream buffer.
      const decide = () => {
        const head: Buffer | null = socket.read();
        if (head === null) return void socket.once("readable", decide);
        socket.unshift(head);
        if (head.length < 4 && H2_PREFACE.subarray(0, head.length).equals(head)) return void socket.once("readable", decide);
        (head.subarray(0, 4).equals(H2_PREFACE.subarray(0, 4)) ? h2s : h1s).emit("connection", socket);
      };
      socket.once("readable", decide);
      socket.on("error", () => socket.destroy());
    });
  }
  h2.on("session", (s: http2.ServerHttp2Session) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  });
  // A client that misbehaves at the HTTP level must never take the process down.
  h2.on("sessionError", () => {});
  listener.on("clientError" as never, (_err: unknown, socket: net.Socket) => socket.destroy());
  h1?.on("clientError", (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(opts.port, opts.host, () => resolve());
  });

  return {
    port: (listener.address() as AddressInfo).port,
    inFlight: () => inFlight,
    stopAccepting() {
      stopping = true;
      listener.close();
      for (const s of sessions) s.close(); // GOAWAY: running streams finish, no new ones
      h1?.closeIdleConnections();
      if ("closeIdleConnections" in h2) (h2 as unknown as http.Server).closeIdleConnections?.();
    },
    destroy() {
      for (const s of sessions) s.destroy();
      for (const s of sockets) s.destroy();
      h1?.closeAllConnections();
    },
  };
}
