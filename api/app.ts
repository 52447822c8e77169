import { randomUUID } from 'node:crypto';
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
import { regionFromRequest, type AppEnv } from './context.js';
import type { Issuer } from './issuer.js';
import { clientCertificateRoutes } from './routes/client-certificates.js';
import { healthRoutes, type HealthCheck } from './routes/health.js';
import { tagRoutes } from './routes/tags.js';

export const BODY_LIMIT_BYTES = 64 * 1024;
const METHODS_WITHOUT_BODY = new Set(['GET', 'HEAD', 'OPTIONS']);
const REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/;

export interface AppDeps {
  issuer: Issuer;
  store: ClientCertificateStore;
  log: Logger;
  health: HealthCheck;
  defaultAccountId: string;
  defaultRegion: string;
}

/** Known paths and their methods, so a wrong method gets 405 rather than 404. */
const ROUTES: [RegExp, string[]][] = [
  [/^\/clientcertificates\/?$/, ['GET', 'POST']],
  [/^\/clientcertificates\/[^/]+\/?$/, ['GET', 'PATCH', 'DELETE']],
  [/^\/tags\/.+$/, ['GET', 'PUT', 'DELETE']],
  [/^\/health\/?$/, ['GET']],
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

  app.use(async (c, next) => {
    const requestId = randomUUID();
    const started = performance.now();
    const log = deps.log.child({ requestId });
    c.set('requestId', requestId);
    c.set('log', log);
    const region = regionFromRequest(c.req.header('authorization'), new URL(c.req.url));
    c.set('tenant', {
      accountId: deps.defaultAccountId,
      region: region && REGION.test(region) ? region : deps.defaultRegion,
    });
    await next();
    c.header('x-amzn-RequestId', requestId);
    log.info(
      {
        method: c.req.method,
        path: c.req.path,
        route: c.req.routePath,
        status: c.res.status,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
      },
      'request',
    );
  });

  const limitBody = bodyLimit({
    maxSize: BODY_LIMIT_BYTES,
    onError: (c) => errorResponse(new PayloadTooLargeError(BODY_LIMIT_BYTES), c.get('requestId')),
  });
  // Only for methods that carry a body: bodyLimit reads `c.req.raw.body`, which makes
  // @hono/node-server build a full WHATWG Request, a cost every GET would pay for nothing.
  app.use((c, next) => (METHODS_WITHOUT_BODY.has(c.req.method) ? next() : limitBody(c, next)));

  app.route('/', healthRoutes(deps.health));
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
