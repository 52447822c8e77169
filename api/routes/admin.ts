import { timingSafeEqual } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Queue } from 'bullmq';
import { Hono, type MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { basicAuth } from 'hono/basic-auth';
import { LoginBackoff } from '../auth/login-backoff.js';
import type { AppContext, AppEnv } from '../context.js';

export const ADMIN_BASE_PATH = '/admin/queues';
export const ADMIN_USER = 'admin';

/** Compares in constant time, so response timing does not reveal how much of a guess was right. */
function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * bull-board's page loads its translations with fetch(), and fetch() throws on a URL that carries
 * user:password@ (Fetch standard, Request constructor: "If parsedURL includes credentials, then throw a
 * TypeError"). Open the page as http://admin:…@host/admin/queues and Chromium resolves the page's
 * relative URLs against that address (its `<base href>` keeps the credentials): the scripts, styles and
 * the JSON API (XHR) still load, but the translation request is never sent and the UI shows its raw keys
 * (MENU.QUEUES, QUEUE.STATUS.ALL). This script runs before the UI's deferred scripts and, in that case
 * only, reloads the same address without the credentials; the browser has cached them for the realm and
 * sends them again by itself.
 */
export const DROP_URL_CREDENTIALS_SCRIPT =
  '<script>(function(){var b=new URL(document.baseURI);if(!b.username&&!b.password)return;' +
  "var u=new URL(location.href);u.username='';u.password='';location.replace(u.href)})()</script>";

/** bull-board's stylesheet link to Google Fonts; the UI's own CSS falls back to the system's sans-serif. */
const EXTERNAL_FONTS = /<link [^>]*href="https:\/\/fonts\.googleapis\.com\/[^"]*"[^>]*>\s*/g;

/**
 * The dashboard's HTML page (the other answers are files and JSON), adjusted: DROP_URL_CREDENTIALS_SCRIPT
 * added, and the Google Fonts stylesheet removed, so the page asks nothing of the internet (on a network
 * that drops outside traffic silently, the browser would hold the page until that request timed out).
 */
const adjustPage: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  if (!c.res.headers.get('content-type')?.startsWith('text/html')) return;
  const html = (await c.res.text())
    .replace(EXTERNAL_FONTS, '')
    .replace('</head>', `${DROP_URL_CREDENTIALS_SCRIPT}</head>`);
  const res = new Response(html, c.res);
  res.headers.delete('content-length');
  c.res = undefined;
  c.res = res;
};

/** The client a guess comes from: the peer's address (behind a proxy, the proxy's). */
function clientOf(c: AppContext): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown'; // app.request() in tests: no socket
  }
}

export interface AdminOptions {
  /** ADMIN_READ_WRITE: let the dashboard retry, promote, clean and delete jobs (default: read-only). */
  readWrite?: boolean;
  /** Slows down wrong passwords per client (default: a LoginBackoff with its defaults). */
  backoff?: LoginBackoff;
}

/**
 * The BullMQ dashboard (bull-board) at /admin/queues behind HTTP basic auth (admin / `password`).
 * It shows job data (ids, tags, descriptions; never keys), so it is mounted only when ADMIN_PASSWORD
 * is set; otherwise the path is an ordinary 404. Read-only (its retry, promote, clean and delete
 * actions answer 405) unless `readWrite`. Wrong passwords are slowed down per client (LoginBackoff):
 * a client that must wait gets a 429 with Retry-After before its password is looked at.
 */
export function adminRoutes(queue: Queue, password: string, opts: AdminOptions = {}) {
  const backoff = opts.backoff ?? new LoginBackoff();
  const serverAdapter = new HonoAdapter(serveStatic);
  serverAdapter.setBasePath(ADMIN_BASE_PATH);
  createBullBoard({
    queues: [new BullMQAdapter(queue, { readOnlyMode: opts.readWrite !== true })],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Client certificates' } },
  });
  const app = new Hono<AppEnv>();
  const check = basicAuth({
    verifyUser: (username, pass) => same(username, ADMIN_USER) && same(pass, password),
    realm: 'client-certificates admin',
  });
  // basicAuth throws its 401 as an HTTPException; answer it here rather than in the app's AWS-shaped onError.
  const auth: MiddlewareHandler<AppEnv> = async (c, next) => {
    const client = clientOf(c);
    const waitMs = backoff.waitMs(client);
    if (waitMs > 0) {
      return c.text('429 Too Many Requests: too many wrong passwords; retry later\n', 429, {
        'retry-after': String(Math.ceil(waitMs / 1000)),
      });
    }
    let passed = false;
    try {
      await check(c, async () => {
        passed = true;
        backoff.succeeded(client);
        await next();
      });
    } catch (err) {
      if (!(err instanceof HTTPException)) throw err;
      // No Authorization header at all is a browser's first request, not a guess.
      if (!passed && c.req.header('authorization') !== undefined) backoff.failed(client);
      return err.getResponse();
    }
  };
  app.use(ADMIN_BASE_PATH, auth);
  app.use(`${ADMIN_BASE_PATH}/*`, auth);
  app.use(ADMIN_BASE_PATH, adjustPage);
  app.use(`${ADMIN_BASE_PATH}/*`, adjustPage);
  // The page's own address is without the slash (its <base href> has it); a typed slash lands there too.
  app.get(`${ADMIN_BASE_PATH}/`, (c) => c.redirect(ADMIN_BASE_PATH, 301));
  app.route(ADMIN_BASE_PATH, serverAdapter.registerPlugin());
  return app;
}
