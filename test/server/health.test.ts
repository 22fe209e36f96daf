// HealthState: the serving status from a probe of the stores, shared by concurrent checks.

import { expect, it } from "vitest";
import { HealthState } from "../../src/server/health.ts";
import { HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";

it("runs one probe for checks that arrive while it runs, and caches its answer", async () => {
  let probes = 0;
  let finish!: () => void;
  const state = new HealthState([], () => {
    probes++;
    return new Promise<void>((r) => (finish = r));
  });
  const checks = Array.from({ length: 50 }, () => state.status());
  finish();
  expect(await Promise.all(checks)).toEqual(Array(50).fill(Status.SERVING));
  expect(probes).toBe(1);
  expect(await state.status()).toBe(Status.SERVING);
  expect(probes).toBe(1); // within the cache period
});

it("answers NOT_SERVING when the probe fails, and SERVING again once it passes", async () => {
  let fail = true;
  const state = new HealthState(
    [],
    async () => {
      if (fail) throw new Error("database unreachable");
    },
    0,
  );
  expect(await state.status()).toBe(Status.NOT_SERVING);
  fail = false;
  await new Promise((r) => setTimeout(r, 2));
  expect(await state.status()).toBe(Status.SERVING);
  state.markShuttingDown();
  expect(await state.status()).toBe(Status.NOT_SERVING);
});
