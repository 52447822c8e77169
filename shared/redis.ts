import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisNode } from './config.js';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** A standalone connection or a Redis Cluster client: the store, BullMQ and heartbeats take either. */
export type RedisClient = Redis | Cluster;

/** Where Redis is: a URL (standalone), Redis Cluster seed nodes, or Sentinels and the primary's name. */
export interface RedisTarget {
  redisUrl?: string | undefined;
  redisClusterNodes?: RedisNode[] | undefined;
  redisSentinels?: RedisNode[] | undefined;
  redisSentinelMaster?: string | undefined;
  redisSentinelPassword?: string | undefined;
  /** Password of the Redis servers (Sentinel and Cluster; with a URL, only when the URL has none). */
  redisPassword?: string | undefined;
}

/**
 * After a failover a connection may still reach the old primary, now a replica that answers writes
 * with READONLY: reconnect (asking the Sentinels, or the cluster, where the primary is now) and resend
 * the command. ioredis's documented remedy.
 */
export function reconnectOnReadonly(err: Error): 2 | false {
  return err.message.startsWith('READONLY') ? 2 : false;
}

/**
 * ioredis options for a primary found through Sentinel: the connection asks the Sentinels for the
 * current primary of `name` whenever it (re)connects. A killed primary drops its sockets, and a
 * demoted one drops its clients (Redis does on a role change) or answers READONLY, so every path
 * leads back to the Sentinels. Not `failoverDetector`: in ioredis 5.11 a +switch-master arriving
 * while the client is already reconnecting aborts that reconnect and leaves the client ended for
 * good ("Connection is closed."); the failover tests hit it about one run in three.
 */
export function sentinelOptions(t: RedisTarget, options: RedisOptions): RedisOptions {
  return {
    reconnectOnError: reconnectOnReadonly,
    sentinelRetryStrategy: (times) => Math.min(100 * times, 1000),
    ...options,
    sentinels: t.redisSentinels,
    name: t.redisSentinelMaster,
    ...(t.redisSentinelPassword ? { sentinelPassword: t.redisSentinelPassword } : {}),
    ...(t.redisPassword ? { password: t.redisPassword } : {}),
  };
}

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
    // A connection whose peer vanished without a FIN (failover, network partition) would otherwise
    // leave a blocking command waiting forever: TCP keep-alive notices the dead peer, and the
    // client-side guard fails a blocking command that outlives its own server-side timeout.
    keepAlive: 10_000,
    blockingTimeout: 60_000,
    retryStrategy: (times) => Math.min(200 * times, 2000),
  };
}

/**
 * Cluster client options derived from standalone ones. ioredis takes the offline queue and the retry
 * strategy at the cluster level and everything else per node; `maxRetriesPerRequest: null` (what
 * BullMQ's blocking connections require) stays in `redisOptions`, where BullMQ looks for it.
 */
export function clusterOptions(options: RedisOptions, name: string): ClusterOptions {
  const { enableOfflineQueue, retryStrategy, ...node } = options;
  const failFast = enableOfflineQueue === false;
  return {
    enableOfflineQueue: enableOfflineQueue ?? true,
    clusterRetryStrategy: (times) =>
      retryStrategy ? (retryStrategy(times) ?? null) : Math.min(100 * times, 2000),
    // While slots move or the cluster is down, retry for a short while on the request path only.
    retryDelayOnClusterDown: failFast ? 100 : 300,
    retryDelayOnFailover: failFast ? 100 : 300,
    retryDelayOnTryAgain: failFast ? 100 : 300,
    maxRedirections: failFast ? 8 : 16,
    slotsRefreshTimeout: 2000,
    redisOptions: { reconnectOnError: reconnectOnReadonly, ...node, connectionName: name },
  };
}

/**
 * One Redis connection to `target`: an ioredis Cluster when cluster nodes are configured, a standalone
 * client otherwise. `target` may also be a plain URL (undefined = the default local Redis).
 */
export function createRedis(url: string | undefined, options: RedisOptions, name: string): Redis;
export function createRedis(target: RedisTarget, options: RedisOptions, name: string): RedisClient;
export function createRedis(
  target: RedisTarget | string | undefined,
  options: RedisOptions,
  name: string,
): RedisClient {
  const t: RedisTarget = typeof target === 'object' ? target : { redisUrl: target };
  const auth: RedisOptions = t.redisPassword ? { password: t.redisPassword } : {};
  if (t.redisClusterNodes?.length) {
    return new Cluster(t.redisClusterNodes, clusterOptions({ ...auth, ...options }, name));
  }
  if (t.redisSentinels?.length) return new Redis({ ...sentinelOptions(t, options), connectionName: name });
  return new Redis(t.redisUrl ?? DEFAULT_REDIS_URL, { ...auth, ...options, connectionName: name });
}

/** A new connection with the same target and options as `client` (a Cluster or a standalone one). */
export function duplicateRedis(client: RedisClient, name: string): RedisClient {
  if (client instanceof Cluster) {
    return client.duplicate(undefined, {
      redisOptions: { ...client.options.redisOptions, connectionName: name },
    });
  }
  return client.duplicate({ connectionName: name });
}

/** True when `client` talks to a Redis Cluster. */
export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}
