// The load tool: N devices, each holding one MessageService.Stream through
// @grpc/grpc-js (what native apps use), spread over several HTTP/2
// connections, in groups; a sender loop offering a set rate of messages;
// receivers timing send -> receive from a timestamp in the content (one
// process, one clock).

import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { MessageService, StreamRequestSchema, StreamResponseSchema, type StreamRequest, type StreamResponse } from "../../gen/chat/v1/message_pb.js";

const PATH = `/${MessageService.typeName}/${MessageService.method.stream.name}`;
const now = () => performance.timeOrigin + performance.now();

export interface DeviceSpec {
  token: string;
  group: string;
}

export class Device {
  readonly call: grpc.ClientDuplexStream<StreamRequest, StreamResponse>;
  readonly group: string;
  ready = false;
  ended = false;
  private n = 0;
  private readonly id: string;

  constructor(client: grpc.Client, spec: DeviceSpec, index: number, onEvent: (content: string) => void) {
    this.group = spec.group;
    this.id = `d${index}`;
    const md = new grpc.Metadata();
    if (spec.token) md.set("authorization", `Bearer ${spec.token}`);
    this.call = client.makeBidiStreamRequest(
      PATH,
      (m: StreamRequest) => Buffer.from(toBinary(StreamRequestSchema, m)),
      (b: Buffer) => fromBinary(StreamResponseSchema, b),
      md,
      {},
    );
    this.call.on("data", (f: StreamResponse) => {
      if (f.frame.case === "event" && f.frame.value.payload.case === "messageCreated") onEvent(f.frame.value.payload.value.message?.content ?? "");
      else if (f.frame.case === "ready") this.ready = true;
    });
    this.call.on("error", () => (this.ended = true));
    this.call.on("status", () => (this.ended = true));
    // hello.device_id names the group: the app ignores it beyond validation, the ceiling fans out by it.
    this.call.write(create(StreamRequestSchema, { frame: { case: "hello", value: { deviceId: spec.group } } }));
  }

  send(): void {
    this.call.write(
      create(StreamRequestSchema, {
        frame: { case: "send", value: { conversationId: this.group, clientMessageId: `${this.id}-${++this.n}`, content: String(now()) } },
      }),
    );
  }

  ping(): void {
    this.call.write(create(StreamRequestSchema, { frame: { case: "ping", value: { nonce: "" } } }));
  }

  close(): void {
    this.call.cancel();
  }
}

export class Fleet {
  readonly devices: Device[] = [];
  private readonly clients: grpc.Client[] = [];
  /** Receive latencies (ms) of the current window. */
  latencies: number[] = [];
  received = 0;
  private recording = false;
  private pinger: NodeJS.Timeout | null = null;

  /** Opens the devices over `connections` HTTP/2 connections and waits until every stream is ready. */
  static async open(address: string, specs: DeviceSpec[], connections: number, timeoutMs = 120_000): Promise<Fleet> {
    const fleet = new Fleet();
    for (let i = 0; i < connections; i++) {
      fleet.clients.push(
        new grpc.Client(address, grpc.credentials.createInsecure(), {
          "grpc.use_local_subchannel_pool": 1,
          "grpc.max_receive_message_length": 16 << 20,
        }),
      );
    }
    const onEvent = (content: string) => {
      if (!fleet.recording) return;
      fleet.received++;
      fleet.latencies.push(now() - Number(content));
    };
    // Open in batches so that the server is not asked for thousands of checkpoints in one instant.
    for (let i = 0; i < specs.length; i++) {
      fleet.devices.push(new Device(fleet.clients[i % connections], specs[i], i, onEvent));
      if (i % 500 === 499) await waitFor(() => fleet.devices.every((d) => d.ready || d.ended), timeoutMs);
    }
    await waitFor(() => fleet.devices.every((d) => d.ready || d.ended), timeoutMs);
    const failed = fleet.devices.filter((d) => !d.ready).length;
    if (failed > 0) throw new Error(`${failed} of ${specs.length} streams failed to open`);
    // Apps ping at the heartbeat interval; well inside the default 15 s.
    fleet.pinger = setInterval(() => fleet.devices.forEach((d) => d.ping()), 5_000);
    return fleet;
  }

  /**
   * Offers `rate` messages per second for `seconds` (one random device of a
   * round-robin group sends each), then waits `drainMs` for stragglers.
   * Returns what arrived: every member's stream (the sender's too) gets each message.
   */
  async run(rate: number, seconds: number, drainMs = 2_000): Promise<StepResult> {
    const byGroup = new Map<string, Device[]>();
    for (const d of this.devices) {
      const list = byGroup.get(d.group);
      if (list) list.push(d);
      else byGroup.set(d.group, [d]);
    }
    const groups = [...byGroup.values()];
    const expectedPerMessage = groups.reduce((n, g) => n + g.length, 0) / groups.length;
    this.latencies = [];
    this.received = 0;
    this.recording = true;
    const tickMs = 10;
    const start = now();
    let sent = 0;
    let g = 0;
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        const elapsed = now() - start;
        if (elapsed >= seconds * 1000) {
          clearInterval(t);
          resolve();
          return;
        }
        const due = Math.floor((elapsed / 1000) * rate) - sent;
        for (let i = 0; i < due; i++) {
          const group = groups[g++ % groups.length];
          group[Math.floor(Math.random() * group.length)].send();
          sent++;
        }
      }, tickMs);
    });
    const sendSeconds = (now() - start) / 1000;
    const expected = sent * expectedPerMessage;
    const deadline = now() + drainMs;
    while (this.received < expected && now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.recording = false;
    const lat = Float64Array.from(this.latencies).sort();
    const q = (p: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] : NaN);
    return {
      offeredPerSec: sent / sendSeconds,
      deliveredPerSec: this.received / sendSeconds,
      expected,
      received: this.received,
      p50: q(50),
      p99: q(99),
      max: lat.length ? lat[lat.length - 1] : NaN,
    };
  }

  /** Waits until nothing has arrived for two seconds (a backlog from an overloaded step drained). */
  async quiesce(maxMs = 120_000): Promise<void> {
    const deadline = now() + maxMs;
    this.recording = true;
    let last = -1;
    while (this.received !== last && now() < deadline) {
      last = this.received;
      await new Promise((r) => setTimeout(r, 2_000));
    }
    this.recording = false;
  }

  close(): void {
    if (this.pinger) clearInterval(this.pinger);
    for (const d of this.devices) d.close();
    for (const c of this.clients) c.close();
  }
}

export interface StepResult {
  offeredPerSec: number;
  deliveredPerSec: number;
  expected: number;
  received: number;
  p50: number;
  p99: number;
  max: number;
}

export async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}
