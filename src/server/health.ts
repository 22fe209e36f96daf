import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { notFound } from "../shared/errors.ts";
import { create } from "@bufbuild/protobuf";
import { untilDraining } from "./context.ts";
import {
  Health,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Status,
  HealthListResponseSchema,
  type HealthCheckResponse,
} from "../../gen/grpc/health/v1/health_pb.js";

/**
 * Serving state for grpc.health.v1.Health. "" is the whole server; each
 * registered service name answers the same. A probe (the stores' pings)
 * decides SERVING vs NOT_SERVING; results are cached briefly so health checks
 * cannot hammer the databases.
 */
export class HealthState {
  private shuttingDown = false;
  private last: { at: number; ok: boolean } | null = null;
  private probing: Promise<boolean> | null = null;
  private readonly services: Set<string>;
  private readonly probe: () => Promise<void>;
  private readonly cacheMs: number;

  constructor(services: string[], probe: () => Promise<void>, cacheMs = 1000) {
    this.services = new Set(["", ...services]);
    this.probe = probe;
    this.cacheMs = cacheMs;
  }

  knows(service: string): boolean {
    return this.services.has(service);
  }

  names(): string[] {
    return [...this.services];
  }

  markShuttingDown(): void {
    this.shuttingDown = true;
  }

  async status(): Promise<Status> {
    if (this.shuttingDown) return Status.NOT_SERVING;
    const now = Date.now();
    if (!this.last || now - this.last.at > this.cacheMs) {
      // One probe at a time: checks arriving while it runs share its answer.
      this.probing ??= this.probe().then(
        () => true,
        () => false,
      );
      const probing = this.probing;
      const ok = await probing;
      if (this.probing === probing) {
        this.probing = null;
        this.last = { at: now, ok };
      }
      if (this.shuttingDown) return Status.NOT_SERVING;
      return ok ? Status.SERVING : Status.NOT_SERVING;
    }
    return this.last.ok ? Status.SERVING : Status.NOT_SERVING;
  }
}

function response(status: Status): HealthCheckResponse {
  return create(HealthCheckResponseSchema, { status });
}

async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}

export function registerHealth(router: ConnectRouter, state: HealthState, watchIntervalMs = 1000): void {
  router.service(Health, {
    async check(req) {
      if (!state.knows(req.service)) throw notFound("SERVICE_UNKNOWN", `unknown service ${req.service}`);
      return response(await state.status());
    },
    async *watch(req, ctx: HandlerContext) {
      // Per the health protocol, an unknown service is reported as SERVICE_UNKNOWN, not an error.
      if (!state.knows(req.service)) {
        yield response(Status.SERVICE_UNKNOWN);
        const until = untilDraining(ctx);
        await new Promise((resolve) => (until.aborted ? resolve(null) : until.addEventListener("abort", resolve, { once: true })));
        return;
      }
      // At shutdown the watcher gets NOT_SERVING as the last word and the stream ends at once.
      const draining = untilDraining(ctx);
      let previous: Status | null = null;
      while (!ctx.signal.aborted) {
        const now = await state.status();
        if (now !== previous) {
          yield response(now);
          previous = now;
        }
        if (draining.aborted) return;
        await sleep(watchIntervalMs, draining);
      }
    },
    async list() {
      const statuses: Record<string, HealthCheckResponse> = {};
      const s = await state.status();
      for (const name of state.names()) statuses[name] = response(s);
      return create(HealthListResponseSchema, { statuses });
    },
  });
}
