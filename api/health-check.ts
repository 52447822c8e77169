import type { Keys } from '../shared/keys.js';
import { HEARTBEAT_TTL_MS } from '../shared/heartbeat.js';
import type { GenerationQueue } from '../shared/queue.js';
import type { RedisClient } from '../shared/redis.js';
import type { Scheduler } from '../shared/scheduler.js';
import type { HealthCheck, HealthReport } from './routes/health.js';

/** /health's report: Redis answers, workers with a live heartbeat, the queue's counts and backlog by class. */
export function healthCheck(
  redis: RedisClient,
  keys: Keys,
  queue: GenerationQueue,
  scheduler: Pick<Scheduler, 'backlog'>,
): HealthCheck {
  return async (): Promise<HealthReport> => {
    try {
      const [, workers, counts, backlog] = await Promise.all([
        redis.ping(),
        redis.zcount(keys.workers, Date.now() - HEARTBEAT_TTL_MS, '+inf'),
        queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed'),
        scheduler.backlog(),
      ]);
      const queueCounts = {
        // Jobs with a priority (every job the scheduler enqueues) wait as BullMQ's `prioritized`.
        waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
        active: counts.active ?? 0,
        delayed: counts.delayed ?? 0,
        failed: counts.failed ?? 0,
        backlog,
      };
      return { status: workers > 0 ? 'ok' : 'unavailable', redis: 'ok', workers, queue: queueCounts };
    } catch {
      return { status: 'unavailable', redis: 'down', workers: 0 };
    }
  };
}
