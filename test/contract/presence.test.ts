// Field presence in the contract: partial updates use `optional` (or a
// message) for every field they may leave unchanged, and ListMessages tells
// after_seq 0 ("from the first message") from unset. A field added to an
// Update* request without presence would make "unchanged" and "set to the
// zero value" the same on the wire.

import { describe, expect, it } from "vitest";
import type { DescMessage } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence as Presence } from "@bufbuild/protobuf/wkt";
import { file_chat_v1_auth } from "../../gen/chat/v1/auth_pb.js";
import { file_chat_v1_conversation } from "../../gen/chat/v1/conversation_pb.js";
import { ListMessagesRequestSchema, file_chat_v1_message } from "../../gen/chat/v1/message_pb.js";
import { file_chat_v1_notification } from "../../gen/chat/v1/notification_pb.js";
import { file_chat_v1_presence } from "../../gen/chat/v1/presence_pb.js";
import { file_chat_v1_workspace } from "../../gen/chat/v1/workspace_pb.js";

const FILES = [
  file_chat_v1_auth,
  file_chat_v1_conversation,
  file_chat_v1_message,
  file_chat_v1_notification,
  file_chat_v1_presence,
  file_chat_v1_workspace,
];
const explicit = (m: DescMessage, name: string) => {
  const f = m.fields.find((x) => x.name === name);
  if (!f) throw new Error(`${m.typeName} has no field ${name}`);
  return f.fieldKind === "message" || f.presence === Presence.EXPLICIT;
};

describe("field presence", () => {
  it("every field of an Update*Request except the ids it addresses has explicit presence", () => {
    const updates = FILES.flatMap((f) => f.messages).filter((m) => /^Update\w*Request$/.test(m.name));
    expect(updates.map((m) => m.name).sort()).toEqual([
      "UpdateConversationRequest",
      "UpdateMemberSettingsRequest",
      "UpdateProfileRequest",
      "UpdateWorkspaceRequest",
    ]);
    const implicit = updates.flatMap((m) =>
      m.fields.filter((f) => !f.name.endsWith("_id") && !explicit(m, f.name)).map((f) => `${m.name}.${f.name}`),
    );
    expect(implicit).toEqual([]);
  });

  it("ListMessagesRequest.after_seq and before_seq have explicit presence (after_seq 0 is not unset)", () => {
    expect(explicit(ListMessagesRequestSchema, "after_seq")).toBe(true);
    expect(explicit(ListMessagesRequestSchema, "before_seq")).toBe(true);
  });
});
