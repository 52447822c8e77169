import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import { ApiError, InternalServerError, isRedisUnavailable, redisUnavailable } from '../shared/errors.js';
import { authenticate, authorise, throttlePerAccount } from './auth/middleware.js';
import type { AppEnv } from './context.js';
import type { AppDeps } from './deps.js';
import { guardPreAuth } from './pre-auth.js';
import { CLIENT_CLOSED_REQUEST, bodyUnread, clientGone, guardBody } from './request-body.js';
import { answerWrongMethods, errorResponse, noRoute, ownPaths } from './routing.js';
import { caRoutes } from './routes/ca.js';
import { clientCertificateRoutes } from './routes/client-certificates.js';
import { ADMIN_BASE_PATH, adminRoutes } from './routes/admin.js';
import { httpMetrics, metricsRoutes } from './routes/metrics.js';
import { healthRoutes } from './routes/health.js';
import { tagRoutes } from './routes/tags.js';

export type { AppDeps } from './deps.js';
export { errorResponse } from './routing.js';

export const BODY_LIMIT_BYTES = 64 * 1024;
/** How long a request body may take to arrive, ms (REQUEST_BODY_TIMEOUT_MS). */
export const DEFAULT_BODY_TIMEOUT_MS = 10_000;

/** Probes, metrics and the queue dashboard (which has its own basic auth): answered without a signature. */
function publicRoutes(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.route('/', answerWrongMethods(healthRoutes(deps.health)));
  // A feature that is off still owns its path, so it is a 404 rather than a request for a signature.
  app.route(
    '/',
    deps.metrics
      ? answerWrongMethods(metricsRoutes(deps.metrics, deps.metricsToken))
      : ownPaths(new Hono(), '/metrics', '/metrics/'),
  );
  if (deps.ca) app.route('/', answerWrongMethods(caRoutes(deps.ca, deps.store)));
  app.route(
    '/',
    deps.admin
      ? adminRoutes(deps.admin.queue, deps.admin.password, deps.admin)
      : ownPaths(new Hono(), ADMIN_BASE_PATH, `${ADMIN_BASE_PATH}/*`),
  );
  return app;
}

/**
 * The ClientCertificate API: every request is authenticated (SigV4), then counted against its
 * account's rate, then authorised. Mounted after the public routes, its middleware also answers every
 * path nobody serves: an unsigned request there gets AWS's 403, a signed one a 404.
 */
function signedRoutes(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(authenticate(deps.verifier, deps.authFailures));
  if (deps.throttle) app.use(throttlePerAccount(deps.throttle));
  app.use(authorise());
  app.route('/', clientCertificateRoutes(deps));
  app.route('/', tagRoutes(deps));
  return answerWrongMethods(app);
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
        status: clientGone(c) ? CLIENT_CLOSED_REQUEST : c.res.status,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
      },
      'request',
    );
  });

  // A failing connection over its address's budget is held and refused here; then the request target is
  // bounded before routing, in one pass over the URL: what follows (SigV4's canonical query) is then small.
  app.use(guardPreAuth(deps.authFailures));

  // Size and deadline, for chunked bodies as for Content-Length ones, without reading the body here:
  // a request SigV4 refuses by its headers alone never waits for its body (request-body.ts).
  app.use(
    guardBody({ maxBytes: BODY_LIMIT_BYTES, timeoutMs: deps.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS }),
  );

  app.route('/', publicRoutes(deps));
  app.route('/', signedRoutes(deps));
  app.notFound(noRoute);

  app.onError((err, c) => {
    const log = c.get('log') ?? deps.log;
    if (clientGone(c)) {
      // Not a server error: nobody is there to answer, and a stack trace per abort would page the operator.
      log.info({ reason: (err as Error).message }, 'client closed the request');
      return new Response(null, { status: CLIENT_CLOSED_REQUEST });
    }
    let apiErr: ApiError;
    if (err instanceof ApiError) apiErr = err;
    else if (isRedisUnavailable(err)) apiErr = redisUnavailable(err);
    else apiErr = new InternalServerError(err);
    if (apiErr.status >= 500) log.error({ err: apiErr.cause ?? err, type: apiErr.type }, 'request failed');
    const res = errorResponse(apiErr, c.get('requestId'));
    // The rest of an unread body is never read: close the connection rather than wait for it.
    if (bodyUnread(c)) res.headers.set('connection', 'close');
    return res;
  });

  return app;
}
