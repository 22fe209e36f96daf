// Transports for Node (22+) through connect-node: gRPC and Connect over HTTP/2
// stream both ways (realtime uses Stream); gRPC-Web, and Connect over
// HTTP/1.1, do not (Subscribe + unary, as in a browser).

import type { Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import type { ChatTransport } from "./api.ts";

export type NodeProtocol = "grpc" | "connect" | "grpc-web";

export interface NodeTransportOptions {
  baseUrl: string;
  protocol: NodeProtocol;
  /** Default: "2" for gRPC, "1.1" otherwise. Connect over "2" streams both ways. */
  httpVersion?: "1.1" | "2";
  /** Extra interceptors (after the SDK's own). */
  interceptors?: Interceptor[];
}

export function nodeTransport(o: NodeTransportOptions): ChatTransport {
  const httpVersion = o.protocol === "grpc" ? "2" : (o.httpVersion ?? "1.1");
  return {
    protocol: o.protocol,
    bidi: httpVersion === "2" && o.protocol !== "grpc-web",
    create(interceptors: Interceptor[]) {
      const all = [...interceptors, ...(o.interceptors ?? [])];
      if (o.protocol === "grpc") return createGrpcTransport({ baseUrl: o.baseUrl, interceptors: all });
      if (o.protocol === "grpc-web") return createGrpcWebTransport({ baseUrl: o.baseUrl, httpVersion, interceptors: all });
      return createConnectTransport({ baseUrl: o.baseUrl, httpVersion, interceptors: all });
    },
  };
}

export * from "./index.ts";
