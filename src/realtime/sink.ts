// The EventSink the features hand their committed events to. Each change wrote
// its event in its own transaction (the transactional outbox,
// src/events/sql-outbox.ts), so by the time an event reaches this sink it is
// durable and numbered; what is left is to tell the nodes, and that never
// holds the caller's reply:
//
// - publish in event order per conversation: a write's events wait only for
//   writes on this node that began before it committed (one of them may hold
//   the previous event_seq), never for later ones, so a busy conversation is
//   never starved;
// - build each chat.v1.Event from the event's own payload (no re-read), once,
//   and PUBLISH it on `ev:<conversation>` (membership changes also on
//   `user:<user>`);
// - a failed PUBLISH is retried once, then counted
//   (realtime_publish_failures_total) and logged; the receiving streams fill
//   the hole from the log (the hub's head check), with or without a later event.

import type { Logger } from "pino";
import { Counter, type Registry } from "prom-client";
import type { DomainEvent, EventSink, LoggedEvent } from "../events/events.ts";
import type { EphemeralStore } from "../stores/ephemeral/ephemeral.ts";
import type { EventMaterializer } from "./materialize.ts";
import { conversationChannel, encodeEventEnvelope, encodeMembershipChange, userChannel } from "./envelope.ts";

export interface SinkHooks {
  /**
   * Called before each publication; false drops it (tests: a node that died
   * right after its commit, before announcing).
   */
  beforePublish?(l: LoggedEvent): boolean;
}

export interface SinkDeps {
  materializer: EventMaterializer;
  ephemeral: EphemeralStore;
  logger: Logger;
  registry?: Registry;
  /** Also told about every committed event, after the reply (notifications). */
  also?: (events: DomainEvent[]) => void;
  hooks?: SinkHooks;
}

const RETRY_DELAY_MS = 50;

/** Per conversation on this node: the writes in flight and the events waiting for them. */
interface Order {
  started: number;
  inflight: Set<number>;
  held: { l: LoggedEvent; barrier: number }[];
}

export class RealtimeEventSink implements EventSink {
  private readonly d: SinkDeps;
  private readonly orders = new Map<string, Order>();
  private readonly metrics: { published: Counter; failures: Counter } | null;
  /** Publications started and not finished (close waits for them). */
  private readonly pending = new Set<Promise<void>>();

  constructor(deps: SinkDeps) {
    this.d = deps;
    const registers = deps.registry ? [deps.registry] : [];
    this.metrics = deps.registry
      ? {
          published: new Counter({ name: "realtime_events_published_total", help: "Durable events published to the fan-out", registers }),
          failures: new Counter({
            name: "realtime_publish_failures_total",
            help: "Durable events whose publication failed after a retry (streams fill them from the log)",
            registers,
          }),
        }
      : null;
  }

  async track<T>(conversationIds: string[], write: () => Promise<T>, eventsOf: (result: T) => LoggedEvent[]): Promise<T> {
    const tickets = conversationIds.map((c) => this.begin(c));
    let result: T;
    try {
      result = await write();
    } catch (err) {
      conversationIds.forEach((c, i) => this.end(c, tickets[i], []));
      throw err;
    }
    let events: LoggedEvent[] = [];
    try {
      events = eventsOf(result);
      if (events.length > 0) this.d.also?.(events.map((l) => l.event));
    } finally {
      const tracked = new Set(conversationIds);
      conversationIds.forEach((c, i) =>
        this.end(
          c,
          tickets[i],
          events.filter((l) => l.event.conversationId === c),
        ),
      );
      const rest = events.filter((l) => !tracked.has(l.event.conversationId));
      if (rest.length > 0) this.publishNow(rest.sort((a, b) => a.eventSeq - b.eventSeq));
    }
    return result;
  }

  /** Waits for publications in flight (shutdown). */
  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private begin(c: string): number {
    let o = this.orders.get(c);
    if (!o) this.orders.set(c, (o = { started: 0, inflight: new Set(), held: [] }));
    const t = ++o.started;
    o.inflight.add(t);
    return t;
  }

  private end(c: string, ticket: number, events: LoggedEvent[]): void {
    const o = this.orders.get(c);
    if (!o) return;
    o.inflight.delete(ticket);
    // Writes that began before this one finished may hold lower event_seqs; later ones cannot.
    for (const l of events) o.held.push({ l, barrier: o.started });
    if (o.held.length > 1) o.held.sort((a, b) => a.l.eventSeq - b.l.eventSeq);
    let oldest = Infinity;
    for (const t of o.inflight) if (t < oldest) oldest = t;
    let n = 0;
    while (n < o.held.length && oldest > o.held[n].barrier) n++;
    if (n > 0) this.publishNow(o.held.splice(0, n).map((h) => h.l));
    if (o.inflight.size === 0 && o.held.length === 0) this.orders.delete(c);
  }

  /** Publishes in the given order (issued in order on one connection, so they arrive in order). */
  private publishNow(events: LoggedEvent[]): void {
    for (const l of events) {
      if (this.d.hooks?.beforePublish && !this.d.hooks.beforePublish(l)) continue;
      const p = this.publishOne(l).finally(() => this.pending.delete(p));
      this.pending.add(p);
    }
  }

  private async publishOne(l: LoggedEvent): Promise<void> {
    const e = l.event;
    const sends: [string, Uint8Array][] = [];
    // The event's workspace id: cached after the conversation's first event on this node.
    await this.d.materializer.warm([e.conversationId]).catch((err) => {
      this.d.logger.warn({ err, conversationId: e.conversationId }, "reading the conversation's workspace failed; the event goes out without it");
    });
    try {
      const event = this.d.materializer.build(l);
      sends.push([conversationChannel(e.conversationId), encodeEventEnvelope(true, l.eventSeq, event)]);
      if (e.type === "member_joined" || e.type === "member_left") {
        sends.push([
          userChannel(e.userId),
          encodeMembershipChange({ conversationId: e.conversationId, eventSeq: l.eventSeq, joined: e.type === "member_joined" }),
        ]);
      }
    } catch (err) {
      return this.failed(l, err);
    }
    for (const [channel, bytes] of sends) {
      try {
        await this.d.ephemeral.publish(channel, bytes);
      } catch {
        try {
          await new Promise((r) => setTimeout(r, RETRY_DELAY_MS));
          await this.d.ephemeral.publish(channel, bytes);
        } catch (err) {
          return this.failed(l, err);
        }
      }
    }
    this.metrics?.published.inc();
  }

  private failed(l: LoggedEvent, err: unknown): void {
    this.metrics?.failures.inc();
    this.d.logger.warn(
      { err, conversationId: l.event.conversationId, eventSeq: l.eventSeq, type: l.event.type },
      "publishing a committed event failed; streams will fill it from the log",
    );
  }
}
