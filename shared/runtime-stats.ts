import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Logger } from './logger.js';

/** How often a process logs its runtime figures, ms. */
export const RUNTIME_STATS_INTERVAL_MS = 10_000;

const RESOLUTION_MS = 10;

/** A histogram value (ns, which includes the sampling period) as delay beyond that period, ms. */
const delayMs = (ns: number) => Math.max(0, Math.round((ns / 1e6 - RESOLUTION_MS) * 100) / 100);

/**
 * Logs, every `intervalMs`, the event-loop delay since the previous line (p50, p99, max in ms beyond
 * the 10 ms sampling period), the
 * memory in use and whatever `extra` adds (e.g. the key pool's state). A worker whose loop stalls
 * longer than half of BullMQ's lockDuration loses its job locks, so p99 here is the figure to watch.
 *
 * @returns a function that stops the timer.
 */
export function startRuntimeStats(
  log: Logger,
  extra: () => Record<string, unknown> = () => ({}),
  intervalMs = RUNTIME_STATS_INTERVAL_MS,
): () => void {
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  h.enable();
  const timer = setInterval(() => {
    const mem = process.memoryUsage();
    log.info(
      {
        eventLoopDelayMs: {
          p50: delayMs(h.percentile(50)),
          p99: delayMs(h.percentile(99)),
          max: delayMs(h.max),
        },
        rssMb: Math.round(mem.rss / 2 ** 20),
        heapUsedMb: Math.round(mem.heapUsed / 2 ** 20),
        ...extra(),
      },
      'runtime stats',
    );
    h.reset();
  }, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    h.disable();
  };
}
