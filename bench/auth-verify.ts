// Access-token verification cost, two ways, in one process:
//
// 1. Micro-benchmark: jose's jwtVerify (async WebCrypto, the verifier before
//    issue 12) against AccessTokens.verify (synchronous node:crypto HMAC) with
//    its cache off and on, same token, same options, rounds interleaved so a
//    busy machine slows all of them alike. CPU µs per verification.
// 2. End to end: a server on Postgres + Redis in this process, sequential
//    AuthService/GetMe calls over grpc-js; Redis commands per call, counted with
//    MONITOR on this run's key prefix (the shared Redis's other traffic is
//    left out), and this process's CPU per call.
//
//   node bench/auth-verify.ts      # BENCH_VERIFY_OPS (20000 per round), BENCH_CALLS (2000)
//
// Part 2 uses only the public server API, so the same file runs on an older
// tree for a before/after of the Redis round trips.

import { availableParallelism, loadavg } from "node:os";
import { randomUUID } from "node:crypto";
import { jwtVerify } from "jose";
import { Redis } from "ioredis";
import { AuthService } from "../gen/chat/v1/auth_pb.js";
import { GrpcJsClient } from "../test/support/clients.ts";
import { provisionBackends, startTestServer } from "../test/support/server.ts";
import { registerUser } from "../test/support/users.ts";
import { AccessTokens } from "../src/auth/tokens.ts";

const OPS = Number(process.env.BENCH_VERIFY_OPS ?? 20_000);
const CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const ROUNDS = 5;
const SECRET = "bench-secret-that-is-at-least-32-bytes-long";

async function micro(): Promise<void> {
  const key = new TextEncoder().encode(SECRET);
  const signer = new AccessTokens(SECRET, 900);
  const { token } = await signer.sign({ userId: randomUUID(), sessionId: randomUUID(), roles: ["user"] });
  const uncached = new AccessTokens(SECRET, 900, 0);
  const cached = new AccessTokens(SECRET, 900);
  const options = {
    algorithms: ["HS256"],
    issuer: "chat.v1",
    audience: "chat.v1",
    typ: "at+jwt",
    requiredClaims: ["sub", "sid", "exp", "iat"],
    clockTolerance: 5,
  };
  const paths: [string, () => unknown][] = [
    ["jose jwtVerify (async WebCrypto; before)", () => jwtVerify(token, key, options)],
    ["AccessTokens.verify, cache off (sync HMAC)", () => uncached.verify(token)],
    ["AccessTokens.verify, cache hit", () => cached.verify(token)],
  ];
  const cpu = new Map<string, number[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, fn] of paths) {
      for (let i = 0; i < 500; i++) await fn(); // warm-up
      const before = process.cpuUsage();
      for (let i = 0; i < OPS; i++) await fn();
      const used = process.cpuUsage(before);
      (cpu.get(name) ?? cpu.set(name, []).get(name)!).push((used.user + used.system) / OPS);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const jose = median(cpu.get(paths[0][0])!);
  console.log(
    `\nVerification CPU, ${OPS} verifications per round, ${ROUNDS} interleaved rounds, median round (µs of process CPU per verification):\n`,
  );
  console.log("| path | CPU µs / verification | ÷ jose |");
  console.log("|---|---:|---:|");
  for (const [name] of paths) {
    const m = median(cpu.get(name)!);
    console.log(`| ${name} | ${m.toFixed(2)} | ${(m / jose).toFixed(3)} |`);
  }
}

async function endToEnd(): Promise<void> {
  const backends = await provisionBackends({ sql: "postgres", redis: true });
  const server = await startTestServer(backends.env, { LOG_LEVEL: "warn", REGISTER_MAX_PER_ADDRESS: "1000000" });
  const prefix = backends.env.REDIS_PREFIX;
  const monitorClient = new Redis(process.env.TEST_REDIS_URL!);
  const monitor = await monitorClient.monitor();
  let ours = 0;
  const byCommand = new Map<string, number>();
  monitor.on("monitor", (_time: string, args: string[]) => {
    if (!args.some((a) => typeof a === "string" && a.startsWith(prefix))) return;
    ours++;
    const name = String(args[0]).toLowerCase();
    byCommand.set(name, (byCommand.get(name) ?? 0) + 1);
  });
  try {
    const client = new GrpcJsClient(server.address);
    const me = await registerUser(server.baseUrl);
    const getMe = () => client.unary(AuthService.method.getMe, {}, { token: me.accessToken });
    for (let i = 0; i < 200; i++) await getMe();
    await new Promise((r) => setTimeout(r, 200)); // let MONITOR lines of the warm-up arrive
    ours = 0;
    byCommand.clear();
    const cpuBefore = process.cpuUsage();
    const t0 = performance.now();
    const lat: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const s = performance.now();
      await getMe();
      lat.push(performance.now() - s);
    }
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpuBefore);
    await new Promise((r) => setTimeout(r, 500));
    lat.sort((a, b) => a - b);
    console.log(`\nEnd to end: ${CALLS} sequential AuthService/GetMe calls (grpc-js, server in this process, Postgres + Redis)\n`);
    console.log("| Redis commands per call (MONITOR, this run's prefix) | by command | process CPU ms / call | p50 ms | wall ms / call |");
    console.log("|---:|---|---:|---:|---:|");
    const commands = [...byCommand].map(([k, v]) => `${k} ${(v / CALLS).toFixed(3)}`).join(", ") || "none";
    console.log(
      `| ${(ours / CALLS).toFixed(3)} | ${commands} | ${((cpu.user + cpu.system) / 1000 / CALLS).toFixed(3)} | ${lat[Math.floor(lat.length / 2)].toFixed(2)} | ${(wall / CALLS).toFixed(2)} |`,
    );
    client.close();
  } finally {
    monitorClient.disconnect();
    await server.close();
    await backends.cleanup();
  }
}

console.log(
  `load average (1/5/15 min) at the start: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" / ")} on ${availableParallelism()} cores`,
);
if (process.env.BENCH_PART !== "e2e") await micro();
if (process.env.BENCH_PART !== "micro") await endToEnd();
console.log(
  `\nload average (1/5/15 min) at the end: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" / ")}`,
);
