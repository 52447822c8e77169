import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ClientCertificateStore } from '../shared/client-certificate.store.js';
import {
  ApiError,
  InternalServerError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  ServiceUnavailableError,
  isRedisUnavailable,
} from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { authenticate } from './auth/middleware.js';
import type { SigV4Verifier } from './auth/sigv4.js';
import { METHODS_WITHOUT_BODY, type AppEnv } from './context.js';
import type { Throttle } from './throttle.js';
import type { ApiMetrics } from '../shared/metrics.js';
import type { Issuer } from './issuer.js';
import { clientCertificateRoutes } from './routes/client-certificates.js';
import { adminRoutes } from './routes/admin.js';
import { httpMetrics, metricsRoutes } from './routes/metrics.js';
import { healthRoutes, type HealthCheck } from './routes/health.js';
import { tagRoutes } from './routes/tags.js';

export const BODY_LIMIT_BYTES = 64 * 1024;

export interface AppDeps {
  issuer: Issuer;
  store: ClientCertificateStore;
  log: Logger;
  health: HealthCheck;
  /** SigV4 verification against the credentials file. */
  verifier: SigV4Verifier;
  /** Per account and region request-rate limit; absent = none. */
  throttle?: Throttle;
  /** Prometheus metrics: counts every request and serves /metrics. Absent: no /metrics. */
  metrics?: ApiMetrics;
  /** The queue dashboard at /admin/queues; absent (no ADMIN_PASSWORD): that path is a 404. */
  admin?: { queue: Queue; password: string };
}

/** Known paths and their methods, so a wrong method gets 405 rather than 404. */
const ROUTES: [RegExp, string[]][] = [
  [/^\/clientcertificates\/?$/, ['GET', 'POST']],
  [/^\/clientcertificates\/[^/]+\/?$/, ['GET', 'PATCH', 'DELETE']],
  [/^\/tags\/.+$/, ['GET', 'PUT', 'DELETE']],
  [/^\/health\/?$/, ['GET']],
  [/^\/health\/(live|ready)\/?$/, ['GET']],
];

export function errorResponse(err: ApiError, requestId?: string): Response {
  const wire = err.toWire();
  const headers = new Headers(wire.headers);
  if (requestId) headers.set('x-amzn-requestid', requestId);
  return new Response(JSON.stringify(wire.body), { status: wire.status, headers });
}

/** Builds the HTTP API. No I/O of its own: everything it touches comes in through `deps`. */
export function createApp(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  if (deps.metrics) app.use(httpMetrics(deps.metrics));
  // The access log line has fixed fields that are never secret (no query, no headers, no body), so it
  // skips the redaction pass, which is half the cost of a line; everything else logs through the
  // request's redacting child logger.
  const accessLog = deps.log.child({}, { redact: [] });
  app.use(async (c, next) => {
    const requestId = randomUUID();
    const started = performance.now();
    c.set('requestId', requestId);
    c.set('log', deps.log.child({ requestId }));
    // Set before the handler answers: a header added to a finished response makes Hono copy it whole.
    c.header('x-amzn-RequestId', requestId);
    await next();
    accessLog.info(
      {
        requestId,
        method: c.req.method,
        path: c.req.path,
        accountId: c.get('caller')?.accountId,
        route: c.req.routePath,
        status: c.res.status,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
      },
      'request',
    );
  });

  const limitBody = bodyLimit({
    maxSize: BODY_LIMIT_BYTES,
    onError: (c) => {
      const res = errorResponse(new PayloadTooLargeError(BODY_LIMIT_BYTES), c.get('requestId'));
      // The rest of the body is never read: close the connection rather than let the client reuse it.
      res.headers.set('connection', 'close');
      return res;
    },
  });
  // Only for methods that carry a body: bodyLimit reads `c.req.raw.body`, which makes
  // @hono/node-server build a full WHATWG Request, a cost every GET would pay for nothing.
  app.use((c, next) => (METHODS_WITHOUT_BODY.has(c.req.method) ? next() : limitBody(c, next)));

  app.use(authenticate({ verifier: deps.verifier, throttle: deps.throttle }));

  app.route('/', healthRoutes(deps.health));
  if (deps.metrics) app.route('/', metricsRoutes(deps.metrics));
  if (deps.admin) app.route('/', adminRoutes(deps.admin.queue, deps.admin.password));
  app.route('/', clientCertificateRoutes(deps));
  app.route('/', tagRoutes(deps));

  app.notFound((c) => {
    const known = ROUTES.find(([re]) => re.test(c.req.path));
    if (known && !known[1].includes(c.req.method)) {
      const res = errorResponse(new MethodNotAllowedError(c.req.method, c.req.path), c.get('requestId'));
      res.headers.set('allow', known[1].join(', '));
      return res;
    }
    return errorResponse(new NotFoundError(`No route for ${c.req.method} ${c.req.path}`), c.get('requestId'));
  });

  app.onError((err, c) => {
    const log = c.get('log') ?? deps.log;
    let apiErr: ApiError;
    if (err instanceof ApiError) apiErr = err;
    else if (isRedisUnavailable(err))
      apiErr = new ServiceUnavailableError(
        'Service is temporarily unavailable (Redis is unavailable). Retry later.',
        2,
        err,
      );
    else apiErr = new InternalServerError(err);
    if (apiErr.status >= 500) log.error({ err: apiErr.cause ?? err, type: apiErr.type }, 'request failed');
    return errorResponse(apiErr, c.get('requestId'));
  });

  return app;
}
