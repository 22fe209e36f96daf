import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { HealthState } from "./health.ts";
import { HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";

/**
 * The admin port, kept off the public one: Prometheus metrics at /metrics,
 * liveness at /healthz, readiness (stores reachable, not shutting down) at /readyz.
 */
export async function startAdminServer(
  host: string,
  port: number,
  registry: Registry,
  health: HealthState,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer(async (req, res) => {
    try {
      if (req.url === "/metrics") {
        res.setHeader("content-type", registry.contentType);
        res.end(await registry.metrics());
      } else if (req.url === "/healthz") {
        res.end("ok\n");
      } else if (req.url === "/readyz") {
        const ready = (await health.status()) === Status.SERVING;
        res.statusCode = ready ? 200 : 503;
        res.end(ready ? "ready\n" : "not ready\n");
      } else {
        res.statusCode = 404;
        res.end("not found\n");
      }
    } catch {
      res.statusCode = 500;
      res.end("error\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
