// Transports for browsers (fetch): Connect and gRPC-Web. Browsers cannot
// stream both ways, so realtime uses Subscribe + unary calls.

import type { Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import type { ChatTransport } from "./api.ts";

export type WebProtocol = "connect" | "grpc-web";

export function webTransport(o: { baseUrl: string; protocol: WebProtocol; interceptors?: Interceptor[] }): ChatTransport {
  return {
    protocol: o.protocol,
    bidi: false,
    create(interceptors: Interceptor[]) {
      const all = [...interceptors, ...(o.interceptors ?? [])];
      return o.protocol === "grpc-web"
        ? createGrpcWebTransport({ baseUrl: o.baseUrl, interceptors: all })
        : createConnectTransport({ baseUrl: o.baseUrl, interceptors: all });
    },
  };
}

export * from "./index.ts";
