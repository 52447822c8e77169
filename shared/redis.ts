import { Redis, type RedisOptions } from 'ioredis';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/**
 * Options for the request path: no offline queue and short timeouts, so a Redis outage becomes a
 * fast 503 instead of a hanging request.
 */
export function failFastOptions(): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 2000,
    retryStrategy: (times) => Math.min(100 * times, 1000),
  };
}

/** Options for workers and QueueEvents: blocking commands, retry forever, reconnect patiently. */
export function patientOptions(): RedisOptions {
  return {
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    connectTimeout: 5000,
    retryStrategy: (times) => Math.min(200 * times, 2000),
  };
}

export function createRedis(url: string | undefined, options: RedisOptions, name: string): Redis {
  return new Redis(url ?? DEFAULT_REDIS_URL, { ...options, connectionName: name });
}
