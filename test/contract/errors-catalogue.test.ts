// Every error the server can produce has a catalogued reason, and docs/ERRORS.md
// is the catalogue. Adding an error = an entry in src/shared/reasons.ts +
// `npm run docs:errors`; this file fails until both are done.

import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { errorsDoc } from "../../scripts/errors-doc.ts";
import { codeOf, toConnectError } from "../../src/server/errors.ts";
import { AppError, invalidArgument, resourceExhausted } from "../../src/shared/errors.ts";
import { ERROR_DOMAIN, REASONS, isReason, type Reason } from "../../src/shared/reasons.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith(".ts") ? [p] : [];
  });
}
const SRC = sources(join(ROOT, "src")).map((path) => ({ path: path.slice(ROOT.length), text: readFileSync(path, "utf8") }));

describe("error catalogue", () => {
  it("docs/ERRORS.md is generated from the catalogue (npm run docs:errors)", () => {
    expect(readFileSync(join(ROOT, "docs/ERRORS.md"), "utf8")).toBe(errorsDoc());
  });

  it("reasons are UPPER_SNAKE, at most 63 characters (the ErrorInfo rule)", () => {
    for (const r of Object.keys(REASONS)) expect(r).toMatch(/^[A-Z][A-Z0-9_]{0,61}[A-Z0-9]$/);
  });

  it("every reason literal used by an error construction in src/ is catalogued", () => {
    // new AppError("X", ...), notFound("X", ...), invalidArgument(f, d, "X"), ...
    const helper =
      /\b(?:new AppError|notFound|permissionDenied|alreadyExists|unauthenticated|failedPrecondition|resourceExhausted|unavailable)\(\s*"([^"]+)"/g;
    const third = /\binvalidArgument\([^;]*?,\s*"([A-Z][A-Z0-9_]+)"\)/g;
    const used = new Set<string>();
    for (const { path, text } of SRC) {
      if (path === "src/shared/errors.ts" || path === "src/shared/reasons.ts") continue;
      for (const m of text.matchAll(helper)) {
        expect(isReason(m[1]), `${path}: ${m[0]}`).toBe(true);
        used.add(m[1]);
      }
      for (const m of text.matchAll(third)) {
        expect(isReason(m[1]), `${path}: ${m[0]}`).toBe(true);
        used.add(m[1]);
      }
    }
    expect(used.size).toBeGreaterThan(20);
  });

  it("every catalogued reason is produced somewhere (no dead entries)", () => {
    const all = SRC.filter((f) => f.path !== "src/shared/reasons.ts")
      .map((f) => f.text)
      .join("\n");
    const dead = (Object.keys(REASONS) as Reason[]).filter((r) => !all.includes(`"${r}"`));
    // INVALID_FIELD is the default of invalidArgument() and of the validation interceptor.
    expect(dead.filter((r) => r !== "INVALID_FIELD")).toEqual([]);
  });

  it("no ConnectError is built outside the edge: errors are AppErrors with a reason", () => {
    // The edge (errors.ts, interceptors.ts) may build one, and only through toConnectError.
    const EDGE = new Set(["src/server/errors.ts", "src/server/interceptors.ts"]);
    const offenders = SRC.filter((f) => !EDGE.has(f.path) && /new ConnectError\(/.test(f.text)).map((f) => f.path);
    expect(offenders).toEqual([]);
    const interceptors = SRC.find((f) => f.path === "src/server/interceptors.ts")!.text;
    for (const m of interceptors.matchAll(/^.*new ConnectError\(.*$/gm)) expect(m[0]).toContain("toConnectError(");
  });
});

describe("toConnectError", () => {
  const info = (e: ConnectError) => e.findDetails(ErrorInfoSchema)[0];

  it("gives every AppError its reason, the catalogue's code and the chat.v1 domain", () => {
    for (const reason of Object.keys(REASONS) as Reason[]) {
      const ce = toConnectError(new AppError(reason, "x"), "rid", () => {});
      expect(ce.code, reason).toBe(codeOf(reason));
      expect(info(ce)).toMatchObject({ reason, domain: ERROR_DOMAIN });
    }
  });

  it("keeps metadata, violations and the retry delay", () => {
    const limited = toConnectError(resourceExhausted("RATE_LIMITED", "slow down", 1500), "rid", () => {});
    expect(info(limited).metadata).toEqual({ retry_after_ms: "1500" });
    const bad = toConnectError(invalidArgument("page_token", "bad", "PAGE_TOKEN_INVALID"), "rid", () => {});
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(info(bad).reason).toBe("PAGE_TOKEN_INVALID");
  });

  it("gives transport errors a reason, and turns unexpected ones into INTERNAL with the request id", () => {
    expect(info(toConnectError(new ConnectError("late", Code.DeadlineExceeded), "rid", () => {})).reason).toBe("DEADLINE_EXCEEDED");
    expect(info(toConnectError(new ConnectError("bad json", Code.InvalidArgument), "rid", () => {})).reason).toBe("REQUEST_MALFORMED");
    let logged = 0;
    for (const thrown of [new Error("boom"), new ConnectError("oops", Code.Internal), new ConnectError("odd", Code.PermissionDenied)]) {
      const ce = toConnectError(thrown, "rid-7", () => logged++);
      expect(ce.code).toBe(Code.Internal);
      expect(ce.rawMessage).not.toContain("boom");
      expect(info(ce)).toMatchObject({ reason: "INTERNAL", metadata: { request_id: "rid-7" } });
    }
    expect(logged).toBe(3);
  });

  it("passes an already-mapped error through unchanged", () => {
    const once = toConnectError(new AppError("MESSAGE_DELETED", "gone"), "rid", () => {});
    expect(toConnectError(once, "rid", () => {})).toBe(once);
  });
});
