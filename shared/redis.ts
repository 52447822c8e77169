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
 * Dead connections (docs/operations.md, "Network partitions"). A partition that closes nothing leaves a
 * socket that raises no error: commands written to it wait on TCP's retransmissions (minutes), and a
 * fresh connection's SYN backs off too. So every connection of every process:
 * - is destroyed and reconnected when Redis sends no byte for {@link REDIS_SOCKET_TIMEOUT_MS} while a
 *   command waits for its answer (ioredis `socketTimeout`); blocking commands block for less than that
 *   (BullMQ's fetch {@link WORKER_BLOCK_S}, QueueEvents {@link QUEUE_EVENTS_BLOCK_MS});
 * - is probed with a PING every {@link REDIS_PROBE_INTERVAL_MS} while idle ({@link probeLiveness}), so
 *   an idle dead connection is found too;
 * - keeps TCP keep-alive on ({@link REDIS_KEEPALIVE_MS} idle) as the kernel's own backstop;
 * - reconnects with a short connect timeout (1 s: a SYN lost to the partition is not left to the
 *   kernel's back-off) and at most 250 ms between attempts, so one reaches Redis within about 1.3 s of
 *   a heal.
 * Together: a dead connection is found within {@link REDIS_DEAD_CONNECTION_BOUND_MS}.
 */
export const REDIS_SOCKET_TIMEOUT_MS = 5000;
export const REDIS_PROBE_INTERVAL_MS = 2000;
export const REDIS_KEEPALIVE_MS = 1000;
export const REDIS_CONNECT_TIMEOUT_MS = 1000;
/** Longest pause between reconnection attempts, ms. */
export const REDIS_RECONNECT_MAX_DELAY_MS = 250;
/** The stated bound: probe interval + socket timeout. */
export const REDIS_DEAD_CONNECTION_BOUND_MS = REDIS_PROBE_INTERVAL_MS + REDIS_SOCKET_TIMEOUT_MS;
/** How long a worker's fetch blocks (BullMQ `drainDelay`), s: below the socket timeout, with margin. */
export const WORKER_BLOCK_S = 2;
/** How long QueueEvents' XREAD blocks, ms: below the socket timeout, with margin. */
export const QUEUE_EVENTS_BLOCK_MS = 2000;

/** The liveness options every connection carries (see {@link REDIS_SOCKET_TIMEOUT_MS}). */
function livenessOptions(): RedisOptions {
  return {
    connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
    keepAlive: REDIS_KEEPALIVE_MS,
    socketTimeout: REDIS_SOCKET_TIMEOUT_MS,
  };
}

/**
 * Options for the request path: no offline queue and short timeouts, so a Redis outage becomes a
 * fast 503 instead of a hanging request.
 */
export function failFastOptions(): RedisOptions {
  return {
    ...livenessOptions(),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: 2000,
    retryStrategy: (times) => Math.min(50 * times, REDIS_RECONNECT_MAX_DELAY_MS),
  };
}

/** Options for workers and QueueEvents: blocking commands, retry forever, reconnect patiently. */
export function patientOptions(): RedisOptions {
  return {
    ...livenessOptions(),
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    // ioredis's own guard: a blocking command that outlives its server-side timeout is given up.
    blockingTimeout: 60_000,
    retryStrategy: (times) => Math.min(50 * times, REDIS_RECONNECT_MAX_DELAY_MS),
  };
}

/**
 * PINGs `client` (every node of a Cluster) every {@link REDIS_PROBE_INTERVAL_MS} while it is connected,
 * so that with `socketTimeout` an idle dead connection is found and replaced before a request needs
 * it. Stops when the client ends.
 */
export function probeLiveness(client: RedisClient): void {
  const timer = setInterval(() => {
    const nodes: Redis[] = client instanceof Cluster ? client.nodes('all') : [client];
    for (const n of nodes) if (n.status === 'ready') n.ping().catch(() => undefined);
  }, REDIS_PROBE_INTERVAL_MS);
  timer.unref();
  client.once('end', () => clearInterval(timer));
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
  let client: RedisClient;
  if (t.redisClusterNodes?.length) {
    client = new Cluster(t.redisClusterNodes, clusterOptions({ ...auth, ...options }, name));
  } else if (t.redisSentinels?.length) {
    client = new Redis({ ...sentinelOptions(t, options), connectionName: name });
  } else {
    client = new Redis(t.redisUrl ?? DEFAULT_REDIS_URL, { ...auth, ...options, connectionName: name });
  }
  probeLiveness(client);
  return client;
}

/** A new connection with the same target and options as `client` (a Cluster or a standalone one). */
export function duplicateRedis(client: RedisClient, name: string): RedisClient {
  const copy =
    client instanceof Cluster
      ? client.duplicate(undefined, {
          redisOptions: { ...client.options.redisOptions, connectionName: name },
        })
      : client.duplicate({ connectionName: name });
  probeLiveness(copy);
  return copy;
}

/** True when `client` talks to a Redis Cluster. */
export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}
