import { timingSafeEqual } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Queue } from 'bullmq';
import { Hono, type MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { basicAuth } from 'hono/basic-auth';
import type { AppEnv } from '../context.js';
import { ownPaths } from '../routing.js';

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

/**
 * The BullMQ dashboard (bull-board) at /admin/queues behind HTTP basic auth (admin / `password`).
 * It can retry, promote and delete jobs, and shows job data (ids, tags, descriptions; never keys), so
 * it is mounted only when ADMIN_PASSWORD is set; otherwise the path is an ordinary 404.
 */
export function adminRoutes(queue: Queue, password: string) {
  const serverAdapter = new HonoAdapter(serveStatic);
  serverAdapter.setBasePath(ADMIN_BASE_PATH);
  createBullBoard({
    queues: [new BullMQAdapter(queue, { readOnlyMode: false })],
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
    try {
      await check(c, next);
    } catch (err) {
      if (err instanceof HTTPException) return err.getResponse();
      throw err;
    }
  };
  app.use(ADMIN_BASE_PATH, auth);
  app.use(`${ADMIN_BASE_PATH}/*`, auth);
  app.use(ADMIN_BASE_PATH, adjustPage);
  app.use(`${ADMIN_BASE_PATH}/*`, adjustPage);
  // The page's own address is without the slash (its <base href> has it); a typed slash lands there too.
  app.get(`${ADMIN_BASE_PATH}/`, (c) => c.redirect(ADMIN_BASE_PATH, 301));
  app.route(ADMIN_BASE_PATH, serverAdapter.registerPlugin());
  // Everything under the base path is the dashboard's, served or not: never a request for a signature.
  return ownPaths(app, ADMIN_BASE_PATH, `${ADMIN_BASE_PATH}/*`);
}
