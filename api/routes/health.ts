import { Hono } from 'hono';
import type { AppEnv } from '../context.js';

export interface HealthReport {
  status: 'ok' | 'unavailable';
  redis: 'ok' | 'down';
  /** Worker processes whose heartbeat is fresh. */
  workers: number;
  queue?: { waiting: number; active: number; delayed: number; failed: number };
}

export type HealthCheck = () => Promise<HealthReport>;

export function healthRoutes(check: HealthCheck) {
  return new Hono<AppEnv>().get('/health', async (c) => {
    const report = await check();
    return c.json(report, report.status === 'ok' ? 200 : 503);
  });
}
