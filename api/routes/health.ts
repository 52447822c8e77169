import { Hono } from 'hono';
import type { Backlog } from '../../shared/scheduler.js';
import type { AppEnv } from '../context.js';

export interface HealthReport {
  status: 'ok' | 'unavailable';
  redis: 'ok' | 'down';
  /** Worker processes whose heartbeat is fresh. */
  workers: number;
  queue?: {
    waiting: number;
    active: number;
    delayed: number;
    failed: number;
    /** The waiting jobs by class (shared/scheduler.ts): a caller's Generate waits behind `interactive` only. */
    backlog: Backlog;
  };
}

export type HealthCheck = () => Promise<HealthReport>;

/**
 * `/health` (the full report), and the two probes orchestrators need apart:
 * - `/health/live`: the process runs and its event loop answers; no dependency is checked, so a Redis
 *   outage never gets a healthy API restarted (a restart would not bring Redis back);
 * - `/health/ready`: this API can serve traffic (Redis answers and at least one worker is live); a
 *   503 takes it out of the load balancer until that is true again. While the server drains, every
 *   path, these included, answers 503 (api/server.ts).
 */
export function healthRoutes(check: HealthCheck) {
  return new Hono<AppEnv>()
    .get('/health', async (c) => {
      const report = await check();
      return c.json(report, report.status === 'ok' ? 200 : 503);
    })
    .get('/health/live', (c) => c.json({ status: 'ok' }, 200))
    .get('/health/ready', async (c) => {
      const { status, redis, workers } = await check();
      return c.json({ status, redis, workers }, status === 'ok' ? 200 : 503);
    });
}
