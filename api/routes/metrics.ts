import { timingSafeEqual } from 'node:crypto';
import { Hono, type MiddlewareHandler } from 'hono';
import type { ApiMetrics } from '../../shared/metrics.js';
import type { AppEnv } from '../context.js';
import { CLIENT_CLOSED_REQUEST, clientGone } from '../request-body.js';

/** Whether an Authorization header carries `Bearer <token>`, compared in constant time. */
function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) return false;
  const given = Buffer.from(m[1]!);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * `GET /metrics`: Prometheus text; it shows counts, never records. Without METRICS_TOKEN it is open
 * (for a scraper on a private network); with it, only `Authorization: Bearer <token>` (Prometheus's
 * `authorization` / `bearer_token` setting) is answered, anything else is a 401 that asks Redis nothing.
 */
export function metricsRoutes(metrics: ApiMetrics, token?: string) {
  return new Hono<AppEnv>().get('/metrics', async (c) => {
    if (token !== undefined && !bearerMatches(c.req.header('authorization'), token)) {
      return c.text('401 Unauthorized: /metrics needs Authorization: Bearer <METRICS_TOKEN>\n', 401, {
        'www-authenticate': 'Bearer realm="metrics"',
      });
    }
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
      // A client that left before the answer is nginx's 499, never the 5xx its aborted read may have become.
      const status = clientGone(c) ? CLIENT_CLOSED_REQUEST : c.res.status;
      const labels = { method: c.req.method, route: matched ?? 'unmatched', status: String(status) };
      end(labels);
      metrics.httpRequests.inc(labels);
    }
  };
}
