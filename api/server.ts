import { serve, type ServerType } from '@hono/node-server';
import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { ClientCertificateStore } from '../shared/client-certificate.store.js';
import type { Config } from '../shared/config.js';
import { DEFAULT_JOB_OPTIONS, QUEUE_NAME, type GenerateData, type GenerateResult } from '../shared/jobs.js';
import { Keys } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import { createRedis, failFastOptions, patientOptions } from '../shared/redis.js';
import { HEARTBEAT_TTL_MS } from '../shared/heartbeat.js';
import { createApp } from './app.js';
import { Issuer } from './issuer.js';
import type { HealthReport } from './routes/health.js';

export interface ApiServer {
  url: string;
  port: number;
  server: ServerType;
  /** Stops accepting, lets in-flight requests finish (at most `timeoutMs`), then closes queues and Redis. */
  close(timeoutMs?: number): Promise<void>;
}

export type ApiConfig = Pick<
  Config,
  'host' | 'port' | 'redisUrl' | 'redisPrefix' | 'generateTimeoutMs' | 'defaultAccountId' | 'defaultRegion'
>;

/** Wires Redis, BullMQ and the app, and listens. Used by main.ts and by tests. */
export async function startApi(config: ApiConfig, log: Logger): Promise<ApiServer> {
  const keys = new Keys(config.redisPrefix);
  const redis: Redis = createRedis(config.redisUrl, failFastOptions(), 'cc-api');
  redis.on('error', (err) => log.debug({ err }, 'redis connection error'));
  const queue = new Queue<GenerateData, GenerateResult>(QUEUE_NAME, {
    connection: redis,
    prefix: keys.queuePrefix,
    defaultJobOptions: DEFAULT_JOB_OPTIONS,
  });
  queue.on('error', (err) => log.debug({ err }, 'queue error'));
  const eventsRedis = createRedis(config.redisUrl, patientOptions(), 'cc-api-events');
  eventsRedis.on('error', (err) => log.debug({ err }, 'redis connection error'));
  const queueEvents = new QueueEvents(QUEUE_NAME, {
    connection: eventsRedis,
    prefix: keys.queuePrefix,
  });
  queueEvents.on('error', (err) => log.debug({ err }, 'queue events error'));
  // One waiter per in-flight Generate; not a leak.
  queueEvents.setMaxListeners(0);
  // Events published before the subscription starts would be missed: wait for it (bounded).
  await Promise.race([queueEvents.waitUntilReady(), new Promise((r) => setTimeout(r, 5000).unref())]);

  const store = new ClientCertificateStore(redis, keys);
  const issuer = new Issuer({
    queue,
    queueEvents,
    store,
    log,
    timeoutMs: config.generateTimeoutMs,
    limitFor: () => 0,
  });

  const health = async (): Promise<HealthReport> => {
    try {
      const [, workers, counts] = await Promise.all([
        redis.ping(),
        redis.zcount(keys.workers, Date.now() - HEARTBEAT_TTL_MS, '+inf'),
        queue.getJobCounts('waiting', 'active', 'delayed', 'failed'),
      ]);
      const queueCounts = {
        waiting: counts.waiting ?? 0,
        active: counts.active ?? 0,
        delayed: counts.delayed ?? 0,
        failed: counts.failed ?? 0,
      };
      return { status: workers > 0 ? 'ok' : 'unavailable', redis: 'ok', workers, queue: queueCounts };
    } catch {
      return { status: 'unavailable', redis: 'down', workers: 0 };
    }
  };

  const app = createApp({
    issuer,
    store,
    log,
    health,
    defaultAccountId: config.defaultAccountId,
    defaultRegion: config.defaultRegion,
  });

  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: config.host, port: config.port }, () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    server,
    close(timeoutMs = 30_000) {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
            resolve();
          }, timeoutMs);
          timer.unref();
          server.close(() => {
            clearTimeout(timer);
            resolve();
          });
          (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
        });
        await queueEvents.close().catch(() => undefined);
        await queue.close().catch(() => undefined);
        eventsRedis.disconnect();
        redis.disconnect();
      })();
      return closing;
    },
  };
}
