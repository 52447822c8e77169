import { Hono, type MiddlewareHandler } from 'hono';
import type { ApiMetrics } from '../../shared/metrics.js';
import type { AppEnv } from '../context.js';

/** `GET /metrics`: Prometheus text. Unauthenticated by design (scrapers); it shows counts, never records. */
export function metricsRoutes(metrics: ApiMetrics) {
  return new Hono<AppEnv>().get('/metrics', async (c) => {
    const body = await metrics.render();
    return c.body(body, 200, { 'content-type': metrics.contentType });
  });
}

/**
 * Counts and times every request by its route pattern (`/clientcertificates/:clientcertificate_id`),
 * never the raw path, so ids do not explode the label set; unknown paths share `unmatched`.
 */
export function httpMetrics(metrics: ApiMetrics): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const end = metrics.httpDuration.startTimer();
    try {
      await next();
    } finally {
      const matched = c.req.matchedRoutes.filter((r) => r.method !== 'ALL').at(-1)?.path;
      const labels = { method: c.req.method, route: matched ?? 'unmatched', status: String(c.res.status) };
      end(labels);
      metrics.httpRequests.inc(labels);
    }
  };
}
