// The EventSink the other modules announce persisted changes to: append to
// the durable log (which gives each event its event_seq), materialise the full
// chat.v1.Event once, publish it on `ev:<conversationId>`; membership changes
// also on `user:<userId>`. Plus the maintenance job: retention and the repair
// of message_created events lost to a crash between a message's commit and
// its announcement.

import type { Logger } from "pino";
import type { DomainEvent, EventSink } from "../events/events.ts";
import type { EphemeralStore } from "../stores/ephemeral/ephemeral.ts";
import type { StoredMessage } from "../messages/types.ts";
import type { EventLog, MessageGapFiller } from "./event-log.ts";
import type { EventMaterializer } from "./materialize.ts";
import type { MessageReader } from "./ports.ts";
import { conversationChannel, encodeEventEnvelope, encodeMembershipChange, userChannel } from "./envelope.ts";

export interface SinkDeps {
  log: EventLog;
  materializer: EventMaterializer;
  messages: MessageReader;
  ephemeral: EphemeralStore;
  logger: Logger;
}

const PAGE = 200;

export class RealtimeEventSink implements EventSink {
  private readonly d: SinkDeps;

  constructor(deps: SinkDeps) {
    this.d = deps;
  }

  async publish(events: DomainEvent[]): Promise<void> {
    const groups = new Map<string, DomainEvent[]>();
    for (const e of events) {
      const list = groups.get(e.conversationId);
      if (list) list.push(e);
      else groups.set(e.conversationId, [e]);
    }
    await Promise.all(
      [...groups].map(([c, list]) =>
        this.publishConversation(c, list).catch((err: unknown) => {
          // The change itself is durable (ListMessages shows it); only this
          // announcement is lost. See "Known gaps" in docs/REALTIME.md.
          this.d.logger.warn({ err, conversationId: c, events: list.map((e) => e.type) }, "announcing events failed");
        }),
      ),
    );
  }

  private async publishConversation(conversationId: string, events: DomainEvent[]): Promise<void> {
    const known = new Map<string, StoredMessage>();
    const fill: MessageGapFiller = async (c, afterSeq, beforeSeq, limit) => {
      const out: { messageId: string; seq: number }[] = [];
      let from = afterSeq;
      while (out.length < limit && from < beforeSeq - 1) {
        const page = await this.d.messages.listAfter(c, from, Math.min(PAGE, beforeSeq - 1 - from));
        for (const m of page) {
          if (m.seq >= beforeSeq) break;
          known.set(m.id, m);
          out.push({ messageId: m.id, seq: m.seq });
        }
        if (page.length === 0) break;
        from = page[page.length - 1].seq;
      }
      return out;
    };
    const logged = await this.d.log.append(conversationId, events, fill);
    if (logged.length === 0) return;
    const built = await this.d.materializer.materialize(logged, "", known);
    const channel = conversationChannel(conversationId);
    // Issued in order on one connection, so they arrive in event_seq order (a
    // reordering between publishers on different nodes is repaired by the streams).
    await Promise.all(built.map((event, i) => this.d.ephemeral.publish(channel, encodeEventEnvelope(true, logged[i].eventSeq, event))));
    const membership = logged.filter((l) => l.event.type === "member_joined" || l.event.type === "member_left");
    await Promise.all(
      membership.map((l) => {
        const e = l.event as Extract<DomainEvent, { type: "member_joined" | "member_left" }>;
        return this.d.ephemeral.publish(
          userChannel(e.userId),
          encodeMembershipChange({ conversationId, eventSeq: l.eventSeq, joined: e.type === "member_joined" }),
        );
      }),
    );
  }

  /**
   * Logs message_created for messages stored at least `graceMs` ago that were
   * never announced (the node died between the two). Announcing the next
   * message of a conversation repairs it too (the gap fill); this covers a
   * conversation's last message.
   */
  async repair(graceMs: number, limit = 100): Promise<number> {
    const lagging = await this.d.log.lagging(new Date(Date.now() - graceMs), limit);
    let repaired = 0;
    for (const l of lagging) {
      const [last] = await this.d.messages.listAfter(l.conversationId, l.lastSeq - 1, 1);
      if (!last) continue;
      const before = repaired;
      await this.publishConversation(l.conversationId, [{ type: "message_created", conversationId: l.conversationId, messageId: last.id, seq: last.seq }])
        .then(() => (repaired += last.seq - l.loggedMessageSeq))
        .catch((err: unknown) => this.d.logger.warn({ err, conversationId: l.conversationId }, "event repair failed"));
      if (repaired > before) this.d.logger.warn({ conversationId: l.conversationId, upTo: last.seq }, "logged message_created events that were never announced");
    }
    return repaired;
  }
}
