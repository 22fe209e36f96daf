import { Counter, Histogram, Gauge, Registry, collectDefaultMetrics } from "prom-client";

/** The Prometheus registry of one server instance (no global default registry). */
export interface ServerMetrics {
  registry: Registry;
  rpcTotal: Counter<"service" | "method" | "code">;
  rpcDuration: Histogram<"service" | "method" | "code">;
  activeStreams: Gauge<"method">;
  storeConnectionErrors: Counter<"store">;
  storePoolExhausted: Counter<"store" | "reason">;
}

export function createMetrics(): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    rpcTotal: new Counter({
      name: "rpc_requests_total",
      help: "RPCs handled, by service, method and final code",
      labelNames: ["service", "method", "code"],
      registers: [registry],
    }),
    rpcDuration: new Histogram({
      name: "rpc_duration_seconds",
      help: "RPC latency (for streams: how long the stream lived), by service, method and code",
      labelNames: ["service", "method", "code"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600],
      registers: [registry],
    }),
    activeStreams: new Gauge({
      name: "rpc_active_streams",
      help: "Streaming RPCs currently open, by method",
      labelNames: ["method"],
      registers: [registry],
    }),
    storeConnectionErrors: new Counter({
      name: "store_connection_errors_total",
      help: "Store connections lost or failing (Postgres clients, Redis connections, MongoDB pool clears), by store",
      labelNames: ["store"],
      registers: [registry],
    }),
    storePoolExhausted: new Counter({
      name: "store_pool_exhausted_total",
      help: "Calls answered UNAVAILABLE because the connection pool was exhausted (queue_full: wait queue at DB_POOL_QUEUE_MAX; wait_timeout: no connection within DB_POOL_WAIT_MS)",
      labelNames: ["store", "reason"],
      registers: [registry],
    }),
  };
}
