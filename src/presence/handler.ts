// chat.v1.PresenceService over Connect: protobuf in, domain call, protobuf out.

import type { ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { PresenceSchema, type PresenceService, PresenceStatus as PbStatus, type Presence as PbPresence } from "../../gen/chat/v1/presence_pb.js";
import { caller, untilDraining } from "../server/context.ts";
import type { PresenceDomain } from "./service.ts";
import type { Presence, PresenceStatus } from "./types.ts";

const TO_PB: Record<PresenceStatus, PbStatus> = {
  online: PbStatus.ONLINE,
  away: PbStatus.AWAY,
  dnd: PbStatus.DND,
  offline: PbStatus.OFFLINE,
};
const FROM_PB: Partial<Record<PbStatus, PresenceStatus>> = {
  [PbStatus.ONLINE]: "online",
  [PbStatus.AWAY]: "away",
  [PbStatus.DND]: "dnd",
  [PbStatus.OFFLINE]: "offline",
};

export function presenceStatusToPb(s: PresenceStatus): PbStatus {
  return TO_PB[s];
}

export function presenceToPb(p: Presence): PbPresence {
  return create(PresenceSchema, {
    userId: p.userId,
    status: TO_PB[p.status],
    lastSeenAt: p.lastSeenAt ? timestampFromDate(p.lastSeenAt) : undefined,
  });
}

export function presenceHandler(domain: PresenceDomain): Partial<ServiceImpl<typeof PresenceService>> {
  return {
    async setPresence(req, ctx) {
      const me = caller(ctx);
      return { presence: presenceToPb(await domain.setPresence(me.userId, me.sessionId, FROM_PB[req.status] ?? null)) };
    },
    async getPresence(req, ctx) {
      return { presences: (await domain.getPresence(caller(ctx).userId, req.userIds)).map(presenceToPb) };
    },
    async sendTyping(req, ctx) {
      await domain.sendTyping(caller(ctx).userId, req.conversationId, req.typing);
      return {};
    },
    async *watchPresence(req, ctx) {
      // Ends cleanly when the node drains (clients re-watch elsewhere), not at the end of the grace period.
      for await (const p of domain.watch(caller(ctx).userId, req.userIds, untilDraining(ctx))) yield { presence: presenceToPb(p) };
    },
  };
}
