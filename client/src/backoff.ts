// Reconnect delays: exponential backoff with full jitter (a uniformly random
// delay between 0 and min(cap, base * 2^attempt)), so that clients dropped
// together (a server restart) do not come back together.

export interface BackoffOptions {
  /** First ceiling, ms. Default 500. */
  baseMs?: number;
  /** Largest ceiling, ms. Default 15 000. */
  maxMs?: number;
}

export function fullJitterMs(attempt: number, o: BackoffOptions = {}, random: () => number = Math.random): number {
  const ceiling = Math.min(o.maxMs ?? 15_000, (o.baseMs ?? 500) * 2 ** Math.min(attempt, 20));
  return Math.floor(random() * ceiling);
}

/** A sleep that can be cut short (wake) or abandoned (signal). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
