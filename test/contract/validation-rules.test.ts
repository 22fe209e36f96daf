// The proto's rules cover the whole request surface: every field of every
// request message (and of the messages and Stream frames inside them) carries
// a buf.validate rule, except booleans, and every rule compiles and evaluates.
// A new request field without a rule fails here.

import { create, getOption, hasOption, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { field as fieldRules, message as messageRules } from "../../gen/buf/validate/validate_pb.js";
import { AuthService } from "../../gen/chat/v1/auth_pb.js";
import { ConversationService } from "../../gen/chat/v1/conversation_pb.js";
import { MessageService } from "../../gen/chat/v1/message_pb.js";
import { NotificationService } from "../../gen/chat/v1/notification_pb.js";
import { PresenceService } from "../../gen/chat/v1/presence_pb.js";
import { WorkspaceService } from "../../gen/chat/v1/workspace_pb.js";
import { RequestValidator } from "../../src/server/validation.ts";

const validator = new RequestValidator();
const violationsOf: RequestValidator["violationsOf"] = (schema, message) => validator.violationsOf(schema, message);

const SERVICES = [AuthService, ConversationService, MessageService, PresenceService, NotificationService, WorkspaceService];

/** Request messages and the chat.v1 messages reachable from them (Attachment, the Stream frames). */
function requestMessages(): DescMessage[] {
  const seen = new Map<string, DescMessage>();
  const visit = (m: DescMessage) => {
    if (seen.has(m.typeName) || !m.typeName.startsWith("chat.v1.")) return;
    seen.set(m.typeName, m);
    for (const f of m.fields) if (f.message) visit(f.message);
  };
  for (const s of SERVICES) for (const m of s.methods) visit(m.input);
  return [...seen.values()];
}

/** A field needs no rule of its own: a bool, a message whose fields have rules, or a oneof member whose message has them. */
function exempt(f: DescField): boolean {
  if (f.fieldKind === "scalar" && f.scalar === 8 /* BOOL */) return true;
  return f.fieldKind === "message" && f.message.typeName.startsWith("chat.v1.");
}

describe("the proto's rules", () => {
  const messages = requestMessages();

  it("reach the Stream frames and the attachments", () => {
    const names = messages.map((m) => m.typeName);
    for (const n of [
      "chat.v1.StreamRequest",
      "chat.v1.Hello",
      "chat.v1.TypingFrame",
      "chat.v1.Ack",
      "chat.v1.Ping",
      "chat.v1.RefreshAuth",
      "chat.v1.Attachment",
    ]) {
      expect(names).toContain(n);
    }
  });

  it("annotate every request field (bools and chat.v1 messages, whose own fields carry rules, aside)", () => {
    const missing = messages.flatMap((m) => m.fields.filter((f) => !exempt(f) && !hasOption(f, fieldRules)).map((f) => `${m.typeName}.${f.name}`));
    expect(missing).toEqual([]);
  });

  it("compile and evaluate for every request type (an empty request of each)", () => {
    for (const m of messages) expect(() => violationsOf(m, create(m)), m.typeName).not.toThrow();
  });

  it("are compiled at start for every request type and every chat.v1 type inside one (what the server warms)", () => {
    const fresh = new RequestValidator();
    const warmed = fresh.warm(SERVICES.flatMap((s) => s.methods.map((m) => m.input)));
    // Every request message and frame is among them (google.protobuf types have no rules of ours).
    expect(warmed).toBeGreaterThanOrEqual(requestMessages().length);
    // Warming again is harmless, and a warmed validator answers as a cold one does.
    expect(fresh.warm(SERVICES.flatMap((s) => s.methods.map((m) => m.input)))).toBe(warmed);
    for (const m of requestMessages()) expect(fresh.violationsOf(m, create(m))).toEqual(violationsOf(m, create(m)));
  });

  it("name the field they are about first in the id of every message-level rule", () => {
    for (const m of messages) {
      if (!hasOption(m, messageRules)) continue;
      for (const rule of getOption(m, messageRules).cel) {
        expect(
          m.fields.map((f) => f.name),
          `${m.typeName} ${rule.id}`,
        ).toContain(rule.id.split(".")[0]);
      }
    }
  });
});
