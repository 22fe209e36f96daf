// The door in front of stream admission (admission.ts). Admission decides
// inside the RPC handler, so every open it refuses has already paid
// connect-es's per-call machinery, the interceptors (auth, validation, the
// log line) and the error serialisation: milliseconds each. In a burst of
// thousands of opens that work alone holds the event loop for seconds, and
// every other call on the node (health checks, sends) waits behind it.
//
// So the number of stream opens in their open phase (from the request to the
// first response bytes: `ready`, or an error) is counted here, before
// connect-es, and beyond what admission could take (the opens running plus
// its queue) an open is answered at once with a precomputed
// RESOURCE_EXHAUSTED STREAM_OPEN_BUSY + RetryInfo: the same answer admission
// gives when its queue is full, at a fraction of the cost.

import type http from "node:http";
import type http2 from "node:http2";
import { MessageService } from "../../gen/chat/v1/message_pb.js";
import { resourceExhausted } from "../shared/errors.ts";
import { toConnectError } from "../server/errors.ts";
import { PrecomputedRefusal } from "../server/refusal.ts";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

/** The stream-opening RPCs, by request path. */
const OPEN_PATHS = new Set([
  `/${MessageService.typeName}/${MessageService.method.stream.name}`,
  `/${MessageService.typeName}/${MessageService.method.subscribe.name}`,
]);

/** RetryInfo delays of the precomputed refusals: 1 s plus 0–2 s in 250 ms steps, as admission's own (1–3 s, jittered). */
const RETRY_DELAYS_MS = Array.from({ length: 9 }, (_, i) => 1_000 + i * 250);

export class OpenIntake {
  private readonly limit: number;
  private readonly refusal: PrecomputedRefusal;
  private readonly onRefused: () => void;
  private opening = 0;

  /**
   * `limit`: opens that may be in their open phase at once (admission's
   * running opens plus its queue). `onRefused`: counts a refusal (admission's
   * metric, reason `intake_full`).
   */
  constructor(limit: number, onRefused: () => void) {
    this.limit = limit;
    this.onRefused = onRefused;
    this.refusal = new PrecomputedRefusal(
      RETRY_DELAYS_MS.map((ms) =>
        toConnectError(resourceExhausted("STREAM_OPEN_BUSY", "too many streams opening on this node: retry after the delay given", ms), "", () => {}),
      ),
    );
  }

  /** Stream opens between their request and their first response bytes. */
  get inOpenPhase(): number {
    return this.opening;
  }

  /**
   * Called for every request before connect-es. Returns true when it answered
   * the request itself (a refused open); otherwise the open is counted until
   * its first response bytes or its end, and connect-es handles it.
   */
  refuse(req: NodeRequest, res: NodeResponse): boolean {
    if (req.method !== "POST" || !OPEN_PATHS.has(req.url?.split("?", 1)[0] ?? "")) return false;
    if (this.opening >= this.limit && this.refusal.write(req, res)) {
      this.onRefused();
      return true;
    }
    this.opening++;
    let counted = true;
    const leave = () => {
      if (!counted) return;
      counted = false;
      this.opening--;
    };
    // connect-node writes the head with the first message (ready) or with the error.
    const writeHead = res.writeHead;
    res.writeHead = function (this: NodeResponse, ...args: unknown[]) {
      leave();
      return (writeHead as (...a: unknown[]) => NodeResponse).apply(this, args);
    } as typeof res.writeHead;
    res.once("close", leave);
    return false;
  }
}
