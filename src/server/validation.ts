// Request validation: the protovalidate rules written in the proto
// (proto/chat/v1/*.proto, `buf.validate` options) are the API's input rules,
// enforced here once for every RPC and every Stream frame. A request that
// breaks any of them is answered INVALID_ARGUMENT, reason INVALID_FIELD, with
// every violation in one google.rpc.BadRequest (field path, description, and
// the rule id as FieldViolation.reason). Services keep only the checks that
// need state or configuration (membership, MESSAGE_MAX_CHARS, ...).
//
// protovalidate compiles the rules of a message type on first use and caches
// the plan per descriptor, so the hot paths (SendMessage, `send` frames) pay
// the evaluation only. The composition root makes one RequestValidator and
// hands it to the interceptor and to the Stream handler.

import { create, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { pathToString, type Path } from "@bufbuild/protobuf/reflect";
import type { Interceptor } from "@connectrpc/connect";
import { createValidator, type Violation } from "@bufbuild/protovalidate";
import { invalidFields, type FieldViolation } from "../shared/errors.ts";

/**
 * The proto's patterns (`matches()` in our CEL rules) are written in the
 * subset RE2 and JavaScript's Unicode regular expressions share: character
 * classes with \p{...} categories and \xNN, anchors, bounded repetition; none
 * can backtrack badly (the two with a nested repetition are guarded by a
 * length check in the rule itself). They run on the platform's RegExp,
 * compiled once per pattern: the RE2 port protovalidate uses by default took
 * about 1.3 ms per SendMessage for a 480-character message (and seconds to
 * compile the Unicode classes), which is too slow for the send path.
 */
function nativeMatcher(): (pattern: string, against: string) => boolean {
  const patterns = new Map<string, RegExp>();
  return (pattern, against) => {
    let re = patterns.get(pattern);
    if (!re) {
      re = new RegExp(pattern, "u");
      patterns.set(pattern, re);
    }
    return re.test(against);
  };
}

/** The message type a violation's path ends in (the request itself for an empty path). */
function messageAt(root: DescMessage, path: Path): DescMessage {
  let desc = root;
  for (const el of path) if (el.kind === "field" && el.message) desc = el.message;
  return desc;
}

/**
 * A message-level rule (a CEL rule on the message, e.g. "content.required" on
 * SendMessageRequest) has no field path of its own (nor a rule path); our rule
 * ids name the field it is about first, and the violation is reported on that
 * field.
 */
function fieldOf(root: DescMessage, v: Violation): string {
  const at = pathToString(v.field);
  if (v.rule.length > 0) return at; // a field rule: its path is the field's
  const name = v.ruleId.split(".", 1)[0];
  if (!messageAt(root, v.field).fields.some((f) => f.name === name)) return at;
  return at === "" ? name : `${at}.${name}`;
}

/** The proto's input rules, compiled per message type on first use. */
export class RequestValidator {
  private readonly validator = createValidator({ regexMatch: nativeMatcher() });

  /** Every rule the message breaks, as field violations (empty when it is valid). */
  violationsOf<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): FieldViolation[] {
    const result = this.validator.validate(schema, message);
    switch (result.kind) {
      case "valid":
        return [];
      case "invalid":
        return result.violations.map((v) => ({ field: fieldOf(schema, v), description: v.message, reason: v.ruleId }));
      default:
        // A rule that does not compile or cannot be evaluated is our bug, never the client's: INTERNAL.
        throw result.error;
    }
  }

  /**
   * Compiles the rules of these message types and of every message type they
   * reach, now: protovalidate compiles a type's CEL rules on its first
   * validation (tens of ms for a request type with many rules), which would
   * otherwise land on the first call of each RPC after a start, when a node
   * that just came up takes its share of reconnects. A rule that does not
   * compile fails the start instead of a call.
   */
  warm(schemas: Iterable<DescMessage>): number {
    const seen = new Set<string>();
    const visit = (desc: DescMessage) => {
      if (seen.has(desc.typeName) || desc.typeName.startsWith("google.protobuf.")) return;
      seen.add(desc.typeName);
      const result = this.validator.validate(desc, create(desc));
      if (result.kind === "error") throw result.error;
      for (const f of desc.fields) {
        if (f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message")) visit(f.message);
        else if (f.fieldKind === "map" && f.mapKind === "message") visit(f.message);
      }
    };
    for (const desc of schemas) visit(desc);
    return seen.size;
  }

  /** Throws INVALID_ARGUMENT (INVALID_FIELD) listing every violation, or returns. */
  validate<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): void {
    const violations = this.violationsOf(schema, message);
    if (violations.length > 0) throw invalidFields(violations);
  }
}

/**
 * Validates the request of every unary and server-streaming RPC before its
 * handler runs. Bidirectional streams (MessageService.Stream) validate each
 * frame in their handler, which answers a bad frame with an error frame and
 * keeps the stream open (realtime/handler.ts).
 */
export function validationInterceptor(validator: RequestValidator): Interceptor {
  return (next) => async (req) => {
    if (!req.stream) {
      validator.validate(req.method.input, req.message);
      return next(req);
    }
    if (req.method.methodKind !== "server_streaming") return next(req);
    const input = req.method.input;
    const messages = req.message;
    return next({
      ...req,
      message: (async function* () {
        for await (const m of messages) {
          validator.validate(input, m);
          yield m;
        }
      })(),
    });
  };
}
