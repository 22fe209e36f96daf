// Away when idle: a client with no user input for `idleMs` tells the server it
// is AWAY (SetPresence), and ONLINE again at the next input. Presence merges a
// user's devices (ONLINE beats AWAY), so the user is away only when every
// device is; notifications are made for users who are away or offline
// (docs/NOTIFICATIONS.md), which is when an idle app's badge updates live.
// No DOM here: the app reports input (`activity()`) and calls nothing else;
// a timer checks the idle time.

export type IdleStatus = "online" | "away";

export interface IdlePresenceOptions {
  /** No input for this long: away. */
  idleMs: number;
  /** Tells the server (SetPresence); a failure is retried at the next check. */
  setStatus(status: IdleStatus): Promise<void>;
  /** How often the idle time is checked (default: idleMs / 4, at most 15 s). */
  checkEveryMs?: number;
  now?: () => number;
}

export class IdlePresence {
  private readonly o: IdlePresenceOptions;
  private readonly now: () => number;
  private lastInput: number;
  /** What the server was last told successfully (it starts online with the stream). */
  private told: IdleStatus = "online";
  private sending: Promise<void> | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(o: IdlePresenceOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
    this.lastInput = this.now();
  }

  get status(): IdleStatus {
    return this.told;
  }

  start(): void {
    this.timer ??= setInterval(() => void this.check(), this.o.checkEveryMs ?? Math.min(15_000, Math.max(50, this.o.idleMs / 4)));
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** User input: back online at once if the server was told away. */
  activity(): void {
    this.lastInput = this.now();
    if (this.told === "away") void this.check();
  }

  /** Compares what the server was told with the idle time; tells it when they differ. */
  async check(): Promise<void> {
    if (this.sending) return this.sending;
    const want: IdleStatus = this.now() - this.lastInput >= this.o.idleMs ? "away" : "online";
    if (want === this.told) return;
    this.sending = this.o
      .setStatus(want)
      .then(() => {
        this.told = want;
      })
      .catch(() => {}) // offline or a server hiccup: the next check tries again
      .finally(() => {
        this.sending = null;
      });
    return this.sending;
  }
}
