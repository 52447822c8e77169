import type { Context, Hono } from 'hono';
import { MethodNotAllowedError, NotFoundError, type ApiError } from '../shared/errors.js';
import type { AppEnv } from './context.js';

/** An error in AWS's wire format, with the request's id. */
export function errorResponse(err: ApiError, requestId?: string): Response {
  const wire = err.toWire();
  const headers = new Headers(wire.headers);
  if (requestId) headers.set('x-amzn-requestid', requestId);
  return new Response(JSON.stringify(wire.body), { status: wire.status, headers });
}

/** The answer for a path no route serves. */
export function noRoute(c: Context<AppEnv>): Response {
  return errorResponse(new NotFoundError(`No route for ${c.req.method} ${c.req.path}`), c.get('requestId'));
}

/** Answers every method on `paths` with {@link noRoute}: paths a sub-app owns but does not serve now. */
export function ownPaths(app: Hono<AppEnv>, ...paths: string[]): Hono<AppEnv> {
  for (const path of paths) app.all(path, noRoute);
  return app;
}

/** The order `Allow` lists methods in, whatever order the routes were registered in. */
const METHOD_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const byMethodOrder = (a: string, b: string) =>
  (METHOD_ORDER.indexOf(a) + 1 || 99) - (METHOD_ORDER.indexOf(b) + 1 || 99);

/**
 * Adds, after `app`'s routes, a 405 with `Allow` for a method its routes do not serve on a path they
 * do, so the registered routes are the only list of what is allowed. The path with a trailing slash
 * (which Hono routes apart) answers the same way: 405 for a method the path does not serve, else 404.
 */
export function answerWrongMethods(app: Hono<AppEnv>): Hono<AppEnv> {
  const allowed = new Map<string, string[]>();
  for (const r of app.routes) {
    if (r.method === 'ALL') continue;
    const methods = allowed.get(r.path) ?? [];
    if (!methods.includes(r.method)) methods.push(r.method);
    allowed.set(r.path, methods);
  }
  for (const [path, methods] of allowed) {
    methods.sort(byMethodOrder);
    const handler = (c: Context<AppEnv>) => {
      if (methods.includes(c.req.method)) return noRoute(c);
      const res = errorResponse(new MethodNotAllowedError(c.req.method, c.req.path), c.get('requestId'));
      res.headers.set('allow', methods.join(', '));
      return res;
    };
    app.all(path, handler);
    // A greedy last parameter (`:arn{.+}`) already takes a trailing slash.
    if (!path.endsWith('}')) app.all(`${path}/`, handler);
  }
  return app;
}
