// Preloaded into the benchmarked servers (NODE_OPTIONS=--expose-gc --import):
// on SIGUSR2, a full GC and one line of memory figures on stdout, so idle-stream
// memory is measured without garbage from setting the streams up.

process.on("SIGUSR2", () => {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  process.stdout.write(
    `${JSON.stringify({ gcMemory: { rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers } })}\n`,
  );
});
