import { createServer, type Server } from 'node:http';
import type { RedisClient } from '../shared/redis.js';
import { withTimeout } from '../shared/timeout.js';

/** How long the readiness probe waits for Redis before calling it down, ms. */
const READY_PING_TIMEOUT_MS = 1000;

export interface WorkerHealthServer {
  port: number;
  close(): Promise<void>;
}

/**
 * A worker process has no HTTP API (the API counts its Redis heartbeat), so orchestrators get a tiny
 * probe server: `GET /health/live` answers 200 while the process runs (no dependency checked);
 * `GET /health/ready` answers 200 when Redis answers a PING within 1 s and the BullMQ worker runs,
 * 503 otherwise. The worker's connection is patient (it queues commands while Redis is away), so the
 * ping is bounded here rather than by the connection.
 * @param port TCP port; 0 takes a free one (tests).
 */
export async function startWorkerHealthServer(opts: {
  host: string;
  port: number;
  redis: RedisClient;
  /** False once the worker is closing or its BullMQ loop has ended. */
  running: () => boolean;
}): Promise<WorkerHealthServer> {
  const redisUp = async (): Promise<boolean> => {
    try {
      return (await withTimeout(opts.redis.ping(), READY_PING_TIMEOUT_MS)) === 'PONG';
    } catch {
      return false;
    }
  };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]!.replace(/\/$/, '');
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { message: 'Method not allowed' });
    if (path === '/health/live') return send(200, { status: 'ok' });
    if (path === '/health/ready') {
      void redisUp().then((up) => {
        const running = opts.running();
        const ok = up && running;
        send(ok ? 200 : 503, {
          status: ok ? 'ok' : 'unavailable',
          redis: up ? 'ok' : 'down',
          worker: running ? 'running' : 'stopped',
        });
      });
      return;
    }
    send(404, { message: `No route for ${req.method} ${path}` });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : opts.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
