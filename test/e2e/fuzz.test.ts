// Seeded wire fuzzing (issue 11, item 3): FUZZ_CASES requests (10,000 by
// default) over every RPC the server has and all three protocols, against a
// real server process on Postgres + Redis. Cases: hostile but well-formed
// messages (NULs, huge and empty strings, foreign and forged ids and page
// tokens, extreme numbers, unknown enum values), valid-looking messages with
// bytes mutated, random bytes, truncated frames, over-long varints, invalid
// UTF-8, and bad or forged access tokens. It fails on any INTERNAL or UNKNOWN
// (also inside Stream error frames), a call left without a status, a hang,
// SQL or stack text in a response, an "unexpected error" in the server log, or
// the server exiting; the message names the seed and the case.
//
// Deterministic: case i is drawn from its own generator seeded by (FUZZ_SEED, i),
// so `FUZZ_SEED=<seed> FUZZ_ONLY=<i>` replays one case.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import http from "node:http";
import http2 from "node:http2";
import { create, fromBinary, toBinary, type DescField, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";
import { SignJWT } from "jose";
import { AuthService } from "../../gen/chat/v1/auth_pb.js";
import { ConversationService, ConversationType } from "../../gen/chat/v1/conversation_pb.js";
import { MessageService, StreamRequestSchema, StreamResponseSchema } from "../../gen/chat/v1/message_pb.js";
import { PresenceService } from "../../gen/chat/v1/presence_pb.js";
import { NotificationService } from "../../gen/chat/v1/notification_pb.js";
import { WorkspaceService } from "../../gen/chat/v1/workspace_pb.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import * as reflectionV1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as reflectionV1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { provisionBackends, spawnServer, TEST_SECRET, type ProvisionedBackends, type ServerProcess } from "../support/server.ts";
import { connectClient } from "../support/clients.ts";
import { registerUser } from "../support/users.ts";
import { envelope, HangError, rawCall, type RawProtocol, type RawRequest, type RawResult } from "../support/raw-rpc.ts";
import { env } from "../support/backends.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 20261101);
const CASES = Number(process.env.FUZZ_CASES ?? 10_000);
const ONLY = process.env.FUZZ_ONLY === undefined ? null : Number(process.env.FUZZ_ONLY);
const CONCURRENCY = 16;
const MAX_MESSAGE_BYTES = 65_536;

const SERVICES: DescService[] = [
  AuthService,
  ConversationService,
  MessageService,
  PresenceService,
  NotificationService,
  WorkspaceService,
  Health,
  reflectionV1.ServerReflection,
  reflectionV1alpha.ServerReflection,
];
// Every RPC, with the three that run argon2 (tens of ms of CPU each) drawn a quarter as often.
const ARGON2 = new Set<DescMethod>([AuthService.method.register, AuthService.method.login, AuthService.method.changePassword]);
const METHODS: DescMethod[] = SERVICES.flatMap((s) => s.methods).flatMap((m) => (ARGON2.has(m) ? [m] : [m, m, m, m]));
const PROTOCOLS: RawProtocol[] = ["grpc", "grpc-web", "connect"];

/** Text that must never reach a client: SQL, driver and stack internals. */
const LEAK =
  /\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b|relation "|syntax error at|invalid byte sequence|violates (unique|foreign|check)|duplicate key|node_modules|\bat [\w.<>]+ \(|\.ts:\d+:\d+|TypeError|ReferenceError|RangeError|Cannot read prop|ECONNREFUSED|MongoServerError|ReplyError/;

// ---- a small deterministic generator ----------------------------------------------------------------

class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  next(): number {
    // mulberry32
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

const caseRng = (i: number) => new Rng((Math.imul(SEED, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b)) >>> 0);

// ---- what the generator knows about the server's world ------------------------------------------------

interface World {
  tokens: { main: string; other: string; victim: () => string; forged: string[] };
  ids: string[];
}

const b64 = (s: string) => Buffer.from(s).toString("base64url");

function stringPool(w: World): string[] {
  const uuid = "0b6f3e7a-5c1d-4e2f-9a8b-7c6d5e4f3a2b";
  return [
    "",
    " ",
    "hello",
    "\u0000",
    "a\u0000b",
    "\u0007\u001b[31m",
    "\u202e\u200b",
    "\ud83d\udc4d",
    "\ud800",
    "x".repeat(300),
    "ü".repeat(5000),
    "not-a-uuid",
    "00000000-0000-0000-0000-000000000000",
    uuid,
    uuid.toUpperCase(),
    "a@b.c",
    "../../etc/passwd",
    "%00%ff",
    "<script>alert(1)</script>",
    "chat.v1.AuthService",
    "grpc.health.v1.Health",
    b64(JSON.stringify({ t: 9e15, s: 1, i: uuid })),
    b64(JSON.stringify([1e300, uuid])),
    b64(`srch1:9000000000000000:1:${uuid}`),
    b64(`ntf1:99999999999999999999:${uuid}`),
    b64(`conv1:9007199254740993:${uuid}`),
    b64(`mem1:${uuid.toUpperCase()}`),
    b64("chan1:"),
    "AAAA",
    "====",
    ...w.ids,
    ...w.ids,
  ];
}

const INT32 = [0, 1, -1, 2, 50, 101, 1000, 2147483647, -2147483648];
const UINT32 = [0, 1, 2, 100, 4294967295];
const INT64 = [0n, 1n, -1n, 100n, 9007199254740993n, 9223372036854775807n, -9223372036854775808n];
const UINT64 = [0n, 1n, 18446744073709551615n];
const DOUBLE = [0, -1, 1.5, 1e300, -1e300, Number.NaN, Number.POSITIVE_INFINITY];

function scalarValue(rng: Rng, t: ScalarType, strings: string[], benign: boolean): unknown {
  switch (t) {
    case ScalarType.STRING:
      return benign ? rng.pick(strings.slice(0, 3).concat(strings.slice(-6))) : rng.pick(strings);
    case ScalarType.BYTES:
      return rng.bytes(rng.int(40));
    case ScalarType.BOOL:
      return rng.chance(0.5);
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return benign ? rng.int(20) : rng.pick(INT32);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return benign ? rng.int(20) : rng.pick(UINT32);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return benign ? BigInt(rng.int(20)) : rng.pick(INT64);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return benign ? BigInt(rng.int(20)) : rng.pick(UINT64);
    default:
      return benign ? rng.int(20) : rng.pick(DOUBLE);
  }
}

function fieldValue(rng: Rng, f: DescField, strings: string[], benign: boolean, depth: number): unknown {
  switch (f.fieldKind) {
    case "scalar":
      return scalarValue(rng, f.scalar, strings, benign);
    case "enum":
      return benign || rng.chance(0.7) ? rng.pick(f.enum.values).number : rng.pick([-1, 99, 2147483647]);
    case "message":
      return depth > 2 ? undefined : messageInit(rng, f.message, strings, benign, depth + 1);
    case "list": {
      const n = rng.int(benign ? 3 : 5);
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) {
        if (f.listKind === "scalar") out.push(scalarValue(rng, f.scalar, strings, benign));
        else if (f.listKind === "enum") out.push(rng.pick(f.enum.values).number);
        else if (depth <= 2) out.push(messageInit(rng, f.message, strings, benign, depth + 1));
      }
      return out;
    }
    case "map":
      return {};
  }
}

/** A message init with random (benign: plausible) values in a random subset of fields. */
function messageInit(rng: Rng, desc: DescMessage, strings: string[], benign: boolean, depth = 0): Record<string, unknown> {
  const init: Record<string, unknown> = {};
  for (const f of desc.fields) {
    if (f.oneof || !rng.chance(benign ? 0.8 : 0.6)) continue;
    const v = fieldValue(rng, f, strings, benign, depth);
    if (v !== undefined) init[f.localName] = v;
  }
  for (const o of desc.oneofs) {
    if (!rng.chance(0.85)) continue;
    const f = rng.pick(o.fields);
    const v = fieldValue(rng, f, strings, benign, depth);
    if (v !== undefined) init[o.localName] = { case: f.localName, value: v };
  }
  return init;
}

function encodeMessage(desc: DescMessage, init: Record<string, unknown>): Uint8Array {
  return toBinary(desc, create(desc, init as never));
}

/** A varint of 11 bytes: longer than any 64-bit value. */
function hugeVarintField(rng: Rng): Uint8Array {
  const tag = ((1 + rng.int(20)) << 3) | 0;
  return Uint8Array.from([tag, ...Array(10).fill(0xff), 0x01]);
}

/** A length-delimited field (string-typed if there is one) holding invalid UTF-8. */
function badUtf8Field(rng: Rng, desc: DescMessage): Uint8Array {
  const strings = desc.fields.filter((f) => f.fieldKind === "scalar" && f.scalar === ScalarType.STRING);
  const no = strings.length ? rng.pick(strings).number : 1 + rng.int(10);
  const bad = rng.pick([[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x61, 0xfe, 0x62]]);
  return Uint8Array.from([(no << 3) | 2, bad.length, ...bad]);
}

function mutate(rng: Rng, bytes: Uint8Array): Uint8Array {
  const b = Array.from(bytes);
  const n = 1 + rng.int(4);
  for (let k = 0; k < n; k++) {
    const at = rng.int(b.length + 1);
    switch (rng.int(4)) {
      case 0:
        if (b.length) b[at % b.length] ^= 1 << rng.int(8);
        break;
      case 1:
        b.splice(at, 0, rng.int(256));
        break;
      case 2:
        b.splice(at, 1 + rng.int(3));
        break;
      default:
        if (b.length) b[at % b.length] = rng.pick([0x00, 0xff, 0x80, 0x7f, 0x0a, 0x12]);
    }
  }
  return Uint8Array.from(b);
}

// ---- one case ------------------------------------------------------------------------------------------

type Strategy = "hostile" | "mutated" | "random" | "truncated" | "varint" | "utf8" | "token" | "json";
const STRATEGIES: Strategy[] = ["hostile", "hostile", "hostile", "mutated", "mutated", "random", "truncated", "varint", "utf8", "token", "json"];

interface Case {
  index: number;
  method: DescMethod;
  protocol: RawProtocol;
  strategy: Strategy;
  request: RawRequest;
}

function tokenFor(rng: Rng, w: World, method: DescMethod, strategy: Strategy): string | null {
  if (strategy === "token") return rng.pick([...w.tokens.forged, w.tokens.other, "", "garbage", `${w.tokens.main.slice(0, -3)}AAA`]);
  // Logging out would end the main session for every later case: a throwaway one does it.
  if (method === AuthService.method.logout || method === AuthService.method.revokeSession || method === AuthService.method.changePassword) {
    return w.tokens.victim();
  }
  return rng.chance(0.9) ? w.tokens.main : w.tokens.other;
}

function payloadFor(rng: Rng, w: World, input: DescMessage, strategy: Strategy): Uint8Array {
  const strings = stringPool(w);
  switch (strategy) {
    case "hostile":
    case "token":
      return encodeMessage(input, messageInit(rng, input, strings, false));
    case "mutated":
      return mutate(rng, encodeMessage(input, messageInit(rng, input, strings, true)));
    case "random":
      return rng.bytes(rng.int(80));
    case "truncated": {
      const full = encodeMessage(input, messageInit(rng, input, strings, true));
      return full.subarray(0, rng.int(full.length + 1));
    }
    case "varint":
      return Uint8Array.from([...encodeMessage(input, messageInit(rng, input, strings, true)), ...hugeVarintField(rng)]);
    case "utf8":
      return Uint8Array.from([...encodeMessage(input, messageInit(rng, input, strings, true)), ...badUtf8Field(rng, input)]);
    case "json":
      return new Uint8Array();
  }
}

function jsonBody(rng: Rng, w: World, input: DescMessage): Uint8Array {
  const strings = stringPool(w);
  const obj: Record<string, unknown> = {};
  for (const f of input.fields) {
    if (!rng.chance(0.6)) continue;
    obj[f.jsonName] = rng.pick<unknown>([
      rng.pick(strings),
      rng.pick(INT32),
      "9223372036854775808",
      1e300,
      -1,
      true,
      null,
      [],
      {},
      { "@type": "x" },
      "AAAA",
    ]);
  }
  const text = JSON.stringify(obj);
  const variant = rng.int(4);
  const s = variant === 0 ? text.slice(0, rng.int(text.length + 1)) : variant === 1 ? text.replace(/"/, "") : text;
  const bytes = Buffer.from(s, "utf8");
  return variant === 2 ? Uint8Array.from([...bytes.subarray(0, -1), 0xff, 0x7d]) : bytes;
}

function makeCase(index: number, w: World): Case {
  const rng = caseRng(index);
  const method = rng.pick(METHODS);
  const protocol = rng.pick(PROTOCOLS);
  let strategy = rng.pick(STRATEGIES);
  const bidi = method.methodKind === "bidi_streaming";
  const streaming = method.methodKind !== "unary";
  if (strategy === "json" && bidi) strategy = "hostile";
  const token = tokenFor(rng, w, method, strategy);
  const headers: Record<string, string> = token === null || token === "" ? {} : { authorization: `Bearer ${token}` };
  const json = strategy === "json";

  let body: Uint8Array;
  if (json) {
    const msg = jsonBody(rng, w, method.input);
    body = protocol === "connect" && !streaming ? msg : envelope(msg);
  } else if (bidi) {
    // A well-formed first frame (hello / a reflection request) and then more frames, some broken.
    const first =
      method === MessageService.method.stream
        ? encodeMessage(StreamRequestSchema, { frame: { case: "hello", value: { deviceId: rng.pick(["", "fuzz", "\u0000"]) } } })
        : payloadFor(rng, w, method.input, "hostile");
    const frames = [envelope(first)];
    const n = rng.int(5);
    for (let k = 0; k < n; k++) frames.push(envelope(payloadFor(rng, w, method.input, rng.pick(STRATEGIES.filter((s) => s !== "json")))));
    if (strategy === "truncated") frames.push(envelope(rng.bytes(20)).subarray(0, 3 + rng.int(15)));
    body = Buffer.concat(frames);
  } else {
    const msg = payloadFor(rng, w, method.input, strategy);
    if (protocol === "connect" && !streaming) body = msg;
    else if (strategy === "truncated" && rng.chance(0.5))
      body = envelope(msg).subarray(0, rng.int(msg.length + 5)); // cut inside the frame
    else if (strategy === "random" && rng.chance(0.3))
      body = rng.bytes(rng.int(30)); // not even a frame
    else if (strategy === "varint" && rng.chance(0.2))
      body = Buffer.concat([envelope(msg), envelope(msg)]); // two messages for one
    else body = envelope(msg, strategy === "mutated" && rng.chance(0.1) ? rng.pick([0x01, 0x80, 0x02]) : 0);
  }
  if (strategy === "random" && rng.chance(0.05)) body = Buffer.concat([envelope(new Uint8Array(MAX_MESSAGE_BYTES + 1 + rng.int(1000)))]);
  return {
    index,
    method,
    protocol,
    strategy,
    request: {
      protocol,
      path: `/${method.parent.typeName}/${method.name}`,
      body,
      streaming,
      json,
      headers,
      http2: protocol === "grpc" || bidi || rng.chance(0.3),
      // A stream that is still open once the server has been quiet this long is fine: we hang up.
      settleMs: streaming ? 300 : undefined,
      timeoutMs: 20_000,
    },
  };
}

/** What is wrong with a result, or null. */
function problem(c: Case, r: RawResult): string | null {
  if (r.code === 13 || r.code === 2) return `status ${r.code === 13 ? "INTERNAL" : "UNKNOWN"}: ${r.message}`;
  if (r.code === null) {
    const streaming = c.method.methodKind !== "unary";
    // A stream still open when we hung up, or one reset at the HTTP/2 level with a code a client maps (not INTERNAL_ERROR).
    if (streaming && r.message === "settled") {
      // fall through to the frame checks
    } else if (r.resetCode !== undefined && r.resetCode !== http2.constants.NGHTTP2_INTERNAL_ERROR) {
      // e.g. REFUSED_STREAM, ENHANCE_YOUR_CALM, CANCEL
    } else {
      return `no status: ${r.message}`;
    }
  }
  const leak = LEAK.exec(r.text);
  if (leak) return `leaked internals: "${leak[0]}" in ${JSON.stringify(r.text.slice(Math.max(0, leak.index - 80), leak.index + 80))}`;
  if (c.method === MessageService.method.stream) {
    for (const m of r.messages) {
      let frame;
      try {
        frame = fromBinary(StreamResponseSchema, m).frame;
      } catch {
        continue; // JSON or not ours
      }
      if (frame.case === "error" && (frame.value.code === 13 || frame.value.code === 2))
        return `error frame ${frame.value.code}: ${frame.value.message}`;
    }
  }
  return null;
}

function describeCase(c: Case): string {
  const hex = Buffer.from(c.request.body).toString("hex");
  return [
    `FUZZ_SEED=${SEED} FUZZ_ONLY=${c.index}`,
    `  ${c.protocol}${c.request.http2 ? "/h2" : "/http1.1"} ${c.request.path} (${c.method.methodKind}) strategy=${c.strategy}${c.request.json ? " json" : ""}`,
    `  headers: ${JSON.stringify(c.request.headers)}`,
    `  body (${c.request.body.byteLength} bytes): ${hex.length > 600 ? `${hex.slice(0, 600)}…` : hex}`,
  ].join("\n");
}

// ---- the run ------------------------------------------------------------------------------------------

let backends: ProvisionedBackends;
let server: ServerProcess;
let world: World;

beforeAll(async () => {
  backends = await provisionBackends({ sql: env.postgres ? "postgres" : "pglite", redis: Boolean(env.redis) });
  server = await spawnServer(backends.env, {
    MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES),
    // The fuzzer is one address hammering Login/Register: it must keep reaching the handlers.
    LOGIN_MAX_FAILURES_PER_ADDRESS: "1000000",
    REGISTER_MAX_PER_ADDRESS: "1000000",
  });
  const main = await registerUser(server.baseUrl);
  const other = await registerUser(server.baseUrl);
  const conv = await connectClient(ConversationService, "connect", server.baseUrl, main.accessToken).createConversation({
    type: ConversationType.GROUP,
    title: "fuzz",
    memberIds: [other.user.id],
  });
  const sent = await connectClient(MessageService, "connect", server.baseUrl, main.accessToken).sendMessage({
    conversationId: conv.conversation!.id,
    clientMessageId: "fuzz-1",
    content: "hello",
  });
  const sign = (sub: string, sid: string, secret = TEST_SECRET, exp: string | number = "10m") =>
    new SignJWT({ sid, roles: ["admin"], iat_ms: Date.now() })
      .setProtectedHeader({ alg: "HS256", typ: "at+jwt" })
      .setSubject(sub)
      .setIssuer("chat.v1")
      .setAudience("chat.v1")
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(new TextEncoder().encode(secret));
  const forged = [
    await sign("not-a-uuid", "also-not"),
    await sign("0b6f3e7a-5c1d-4e2f-9a8b-7c6d5e4f3a2b", "0b6f3e7a-5c1d-4e2f-9a8b-7c6d5e4f3a2b"), // well-formed, unknown user
    await sign(main.user.id, main.sessionId, "another-secret-another-secret-0123456789"),
    await sign(main.user.id, main.sessionId, TEST_SECRET, Math.floor(Date.now() / 1000) - 3600),
    `eyJhbGciOiJub25lIn0.${b64(JSON.stringify({ sub: main.user.id, sid: main.sessionId }))}.`,
  ];
  const victim = (await registerUser(server.baseUrl)).accessToken;
  world = {
    tokens: { main: main.accessToken, other: other.accessToken, victim: () => victim, forged },
    ids: [conv.conversation!.id, sent.message!.id, main.user.id, other.user.id, other.sessionId],
  };
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await backends?.cleanup();
});

describe("seeded wire fuzzing (issue 11, item 3)", () => {
  it(`${ONLY === null ? CASES : 1} cases over ${new Set(METHODS).size} RPCs and ${PROTOCOLS.length} protocols: never INTERNAL, UNKNOWN, a hang, a leak or a crash (seed ${SEED})`, async () => {
    const started = performance.now();
    const indexes = ONLY === null ? Array.from({ length: CASES }, (_, i) => i) : [ONLY];
    const failures: string[] = [];
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    let session: http2.ClientHttp2Session | null = null;
    const h2 = () => {
      if (!session || session.closed || session.destroyed) {
        session = http2.connect(server.baseUrl);
        session.on("error", () => {});
      }
      return session;
    };
    const codes = new Map<string, number>();
    const stats = new Map<string, { n: number; ms: number }>();
    let next = 0;
    const worker = async () => {
      while (next < indexes.length && failures.length < 10) {
        const c = makeCase(indexes[next++], world);
        let r: RawResult;
        const t0 = performance.now();
        try {
          r = await rawCall(server.baseUrl, c.request, { h2: h2(), agent });
          const k = `${c.method.name}/${c.protocol}/${c.request.http2 ? 2 : 1}`;
          const st = stats.get(k) ?? { n: 0, ms: 0 };
          st.n++;
          st.ms += performance.now() - t0;
          stats.set(k, st);
        } catch (err) {
          failures.push(`${describeCase(c)}\n  ${err instanceof HangError ? "HANG" : "transport error"}: ${(err as Error).message}`);
          continue;
        }
        const key = r.code === null ? "none" : String(r.code);
        codes.set(key, (codes.get(key) ?? 0) + 1);
        const p = problem(c, r);
        if (p) failures.push(`${describeCase(c)}\n  ${p}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    agent.destroy();
    if (process.env.FUZZ_STATS) {
      const top = [...stats].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25);
      console.log(top.map(([k, v]) => `${k}: n=${v.n} total=${Math.round(v.ms)}ms avg=${Math.round(v.ms / v.n)}ms`).join("\n"));
    }
    (session as http2.ClientHttp2Session | null)?.close();

    // Still alive, still serving, and nothing it could not explain. (The server writes its log in
    // batches at least every 100 ms: wait for the last cases' lines.)
    await new Promise((r) => setTimeout(r, 300));
    expect(server.child.exitCode, `the server exited (seed ${SEED})\n${server.output().slice(-3000)}`).toBeNull();
    const unexpected = server
      .output()
      .split("\n")
      .filter((l) => /unexpected error|uncaught|unhandled/i.test(l));
    console.log(
      `fuzz: seed ${SEED}, ${indexes.length} cases in ${Math.round(performance.now() - started)} ms, status codes ${JSON.stringify(Object.fromEntries([...codes].sort()))}`,
    );
    expect(failures, `seed ${SEED}:\n${failures.join("\n\n")}`).toEqual([]);
    expect(unexpected.slice(0, 5), `seed ${SEED}: the server logged unexpected errors`).toEqual([]);
  }, 600_000);
});
