import { HEARTBEAT_INTERVAL_MS, HEARTBEAT_TTL_MS } from '../shared/heartbeat.js';
import type { Keys } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import type { WorkerMetrics } from '../shared/metrics.js';
import type { RedisClient } from '../shared/redis.js';
import { withTimeout } from '../shared/timeout.js';

export interface Heartbeat {
  /** Stops beating (the worker still counts as alive until its last beat ages out or {@link remove}). */
  stop(): void;
  /** Takes this worker off the list the API's /health counts (bounded: Redis may be away). */
  remove(): Promise<void>;
}

/**
 * Records every HEARTBEAT_INTERVAL_MS that worker `id` is alive (the API's /health counts live
 * workers), dropping long-dead ones, and reports the key pool's level with each beat.
 */
export function startHeartbeat(o: {
  id: string;
  redis: RedisClient;
  keys: Keys;
  log: Logger;
  metrics: WorkerMetrics;
  keyPoolLevel?: (() => number) | undefined;
}): Heartbeat {
  const beat = () => {
    if (o.keyPoolLevel) void o.metrics.keyPoolLevel(o.id, o.keyPoolLevel());
    return o.redis
      .multi()
      .zadd(o.keys.workers, Date.now(), o.id)
      .zremrangebyscore(o.keys.workers, '-inf', Date.now() - HEARTBEAT_TTL_MS * 4)
      .exec()
      .catch((err: unknown) => o.log.warn({ err }, 'heartbeat failed'));
  };
  void beat();
  const timer = setInterval(beat, HEARTBEAT_INTERVAL_MS);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      void o.metrics.forget(o.id);
    },
    async remove() {
      await withTimeout(
        o.redis.zrem(o.keys.workers, o.id).catch(() => undefined),
        2000,
      );
    },
  };
}
