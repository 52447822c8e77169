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

export const ADMIN_BASE_PATH = '/admin/queues';
export const ADMIN_USER = 'admin';

/** Compares in constant time, so response timing does not reveal how much of a guess was right. */
function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

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
    // The UI's own files (scripts, styles, translations) hold no data, and the UI fetches some of them
    // with fetch(), which does not resend basic credentials: leave them open. Pages and the JSON API stay shut.
    if (c.req.path.startsWith(`${ADMIN_BASE_PATH}/static/`)) return next();
    try {
      await check(c, next);
    } catch (err) {
      if (err instanceof HTTPException) return err.getResponse();
      throw err;
    }
  };
  app.use(ADMIN_BASE_PATH, auth);
  app.use(`${ADMIN_BASE_PATH}/*`, auth);
  app.route(ADMIN_BASE_PATH, serverAdapter.registerPlugin());
  return app;
}
