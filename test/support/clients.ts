// Real clients: Connect's node transports (Connect, gRPC-Web, gRPC) and
// @grpc/grpc-js, which is what native gRPC stubs do on the wire.

import { createClient, type Client, type Transport, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import type { DescService, DescMethod, DescMessage, MessageShape, MessageInitShape } from "@bufbuild/protobuf";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

export type ProtocolName = "connect" | "grpc-web" | "grpc";

/** Adds `authorization: Bearer <token>` when a token is given. */
export function bearer(token: string | (() => string | undefined)): Interceptor {
  return (next) => async (req) => {
    const t = typeof token === "function" ? token() : token;
    if (t) req.header.set("authorization", `Bearer ${t}`);
    return next(req);
  };
}

export function transportFor(
  protocol: ProtocolName,
  baseUrl: string,
  interceptors: Interceptor[] = [],
  httpVersion: "1.1" | "2" = protocol === "grpc" ? "2" : "1.1",
): Transport {
  if (protocol === "connect") return createConnectTransport({ baseUrl, httpVersion, interceptors });
  if (protocol === "grpc-web") return createGrpcWebTransport({ baseUrl, httpVersion, interceptors });
  return createGrpcTransport({ baseUrl, interceptors });
}

export function connectClient<S extends DescService>(
  service: S,
  protocol: ProtocolName,
  baseUrl: string,
  token?: string | (() => string | undefined),
): Client<S> {
  return createClient(service, transportFor(protocol, baseUrl, token ? [bearer(token)] : []));
}

/** A unary call through @grpc/grpc-js, typed by the generated descriptors. */
export interface GrpcError extends Error {
  code: grpc.status;
  details: string;
  metadata: grpc.Metadata;
}

export class GrpcJsClient {
  readonly raw: grpc.Client;
  constructor(address: string) {
    this.raw = new grpc.Client(address, grpc.credentials.createInsecure());
  }

  unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethod & { input: I; output: O },
    request: MessageInitShape<I>,
    opts: { token?: string; deadlineMs?: number; metadata?: Record<string, string> } = {},
  ): Promise<MessageShape<O>> {
    const md = new grpc.Metadata();
    if (opts.token) md.set("authorization", `Bearer ${opts.token}`);
    for (const [k, v] of Object.entries(opts.metadata ?? {})) md.set(k, v);
    const path = `/${method.parent.typeName}/${method.name}`;
    return new Promise((resolve, reject) => {
      this.raw.makeUnaryRequest(
        path,
        (m: MessageShape<I>) => Buffer.from(toBinary(method.input, m)),
        (b: Buffer) => fromBinary(method.output, b),
        create(method.input, request) as MessageShape<I>,
        md,
        { deadline: opts.deadlineMs ? Date.now() + opts.deadlineMs : undefined },
        (err, res) => (err ? reject(err) : resolve(res as MessageShape<O>)),
      );
    });
  }

  close(): void {
    this.raw.close();
  }
}
