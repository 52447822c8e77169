import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { AWS_REGION } from './validation.js';

/** Thrown by {@link loadConfig}; the message names every bad variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * A number from an environment variable: `def` when unset or empty, else a whole number (or, with
 * `decimal`, a non-negative decimal) within `min`..`max`; anything else is an error naming `name`.
 */
const numberFrom = (name: string, def: number, min: number, max: number, decimal = false) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return def;
      if (!(decimal ? /^\d+(\.\d+)?$/ : /^\d+$/).test(v.trim())) {
        const kind = decimal ? 'a non-negative number' : 'a whole number';
        ctx.addIssue({ code: 'custom', message: `${name} must be ${kind}, got ${JSON.stringify(v)}` });
        return z.NEVER;
      }
      const n = Number(v.trim());
      if (n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `${name} must be between ${min} and ${max}, got ${n}` });
        return z.NEVER;
      }
      return n;
    });
const intFrom = (name: string, def: number, min: number, max: number) => numberFrom(name, def, min, max);

/**
 * Shapes of issued certificates: `aws` is AWS's exact, extension-less certificate; `modern` adds
 * basicConstraints, keyUsage, extendedKeyUsage clientAuth and a subject key identifier.
 */
export const CERT_PROFILES = ['aws', 'modern'] as const;
export type CertProfile = (typeof CERT_PROFILES)[number];

/**
 * Jobs per worker process: one per core, plus one. Key generation (~150-200 ms of one core each) is
 * nearly the whole cost of a job, but between two jobs a slot waits for Redis (BullMQ hands over the
 * next job, the record is stored) and the key pool does not refill while requests wait, so with one
 * slot per core the cores idle for those moments. The extra slot keeps one generation ready to take
 * them: on 2 cores, 3 slots issued 11-12 % more certificates per second than 2 (interleaved 30 s
 * runs: 10.97 -> 12.17 and 11.30 -> 12.63).
 */
export function defaultWorkerConcurrency(cores = availableParallelism()): number {
  return Math.max(1, cores) + 1;
}

/**
 * Keys each worker process keeps ready. A pooled key costs ~3 KB of memory and ~200 ms of one core to
 * make; 32 answers a burst of 32 requests per process at signature speed (AWS's own control-plane
 * burst is 40 requests per account) and refills in ~6 s of one core.
 */
export const DEFAULT_KEY_POOL_SIZE = 32;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).optional().default('development'),
  HOST: z.string().min(1).optional().default('127.0.0.1'),
  PORT: intFrom('PORT', 8080, 0, 65535),
  REDIS_URL: z
    .string()
    .optional()
    .refine(
      (v) => v === undefined || /^rediss?:\/\//.test(v),
      'REDIS_URL must start with redis:// or rediss://',
    ),
  REDIS_PREFIX: z
    .string()
    .optional()
    .default('cc')
    .refine((v) => /^[A-Za-z0-9_-]{1,32}$/.test(v), 'REDIS_PREFIX must be 1-32 characters of [A-Za-z0-9_-]'),
  WORKER_CONCURRENCY: intFrom('WORKER_CONCURRENCY', defaultWorkerConcurrency(), 1, 256),
  KEY_POOL_SIZE: intFrom('KEY_POOL_SIZE', DEFAULT_KEY_POOL_SIZE, 0, 10_000),
  RUNTIME_STATS_INTERVAL_MS: intFrom('RUNTIME_STATS_INTERVAL_MS', 10_000, 0, 3_600_000),
  WORKER_PROCESSES: intFrom('WORKER_PROCESSES', 1, 0, 64),
  GENERATE_TIMEOUT_MS: intFrom('GENERATE_TIMEOUT_MS', 30_000, 100, 600_000),
  LOG_LEVEL: z.enum(LOG_LEVELS).optional().default('info'),
  MASTER_KEY: z.string().optional(),
  MASTER_KEYS_PREVIOUS: z.string().optional(),
  MASTER_KEY_FILE: z.string().optional().default('.data/master.key'),
  DEFAULT_REGION: z
    .string()
    .optional()
    .default('us-east-1')
    .refine((v) => AWS_REGION.test(v), 'DEFAULT_REGION must look like an AWS region, e.g. us-east-1'),
  DEFAULT_ACCOUNT_ID: z
    .string()
    .optional()
    .default('000000000000')
    .refine((v) => /^\d{12}$/.test(v), 'DEFAULT_ACCOUNT_ID must be 12 digits'),
  REDIS_CLUSTER_NODES: z.string().optional(),
  WORKER_LOCK_DURATION_MS: intFrom('WORKER_LOCK_DURATION_MS', 10_000, 1000, 600_000),
  WORKER_STALLED_INTERVAL_MS: intFrom('WORKER_STALLED_INTERVAL_MS', 5000, 500, 600_000),
  WORKER_WATCHDOG_INTERVAL_MS: intFrom('WORKER_WATCHDOG_INTERVAL_MS', 5000, 0, 600_000),
  SHUTDOWN_TIMEOUT_MS: intFrom('SHUTDOWN_TIMEOUT_MS', 0, 0, 3_600_000),
  CREDENTIALS_FILE: z.string().optional(),
  CLIENT_CERTIFICATE_LIMIT: intFrom('CLIENT_CERTIFICATE_LIMIT', 60, 0, 1_000_000),
  RATE_LIMIT_RPS: numberFrom('RATE_LIMIT_RPS', 10, 0, 1_000_000, true),
  RATE_LIMIT_BURST: intFrom('RATE_LIMIT_BURST', 40, 1, 1_000_000),
  EMBEDDED_REDIS: z.enum(['auto', 'never']).optional().default('auto'),
  EMBEDDED_REDIS_DIR: z.string().optional().default('.data/redis'),
  ADMIN_PASSWORD: z.string().optional(),
  CERT_PROFILE: z
    .enum(CERT_PROFILES, {
      error: (iss) =>
        `CERT_PROFILE must be one of ${CERT_PROFILES.join(', ')}, got ${JSON.stringify(iss.input)}`,
    })
    .optional()
    .default('aws'),
  EMBEDDED_REDIS_PORT: intFrom('EMBEDDED_REDIS_PORT', 6390, 1, 65535),
  WORKER_HEALTH_PORT: intFrom('WORKER_HEALTH_PORT', 0, 0, 65535),
  REDIS_SENTINELS: z.string().optional(),
  REDIS_SENTINEL_MASTER: z.string().optional(),
  REDIS_SENTINEL_PASSWORD: z.string().optional(),
  REDIS_PASSWORD: z.string().optional(),
  REDIS_WAIT_REPLICAS: intFrom('REDIS_WAIT_REPLICAS', 0, 0, 100),
  REDIS_WAIT_TIMEOUT_MS: intFrom('REDIS_WAIT_TIMEOUT_MS', 1000, 1, 60_000),
});

/** One Redis Cluster seed node. */
export interface RedisNode {
  host: string;
  port: number;
}

/** Parses `host:port,host:port` (IPv6 as `[::1]:7000`); returns the nodes or a problem naming `name`. */
export function parseClusterNodes(value: string, name = 'REDIS_CLUSTER_NODES'): RedisNode[] | string {
  const nodes: RedisNode[] = [];
  for (const part of value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/.exec(part);
    const port = m ? Number(m[2]) : NaN;
    if (!m || port < 1 || port > 65535) {
      return `${name} must be a comma-separated list of host:port, got ${JSON.stringify(part)}`;
    }
    nodes.push({ host: m[1]!.replace(/^\[|\]$/g, ''), port });
  }
  if (nodes.length === 0) return `${name} must name at least one host:port`;
  return nodes;
}

export interface Config {
  nodeEnv: 'development' | 'production' | 'test';
  host: string;
  port: number;
  /** Redis URL; undefined means "the default, 127.0.0.1:6379, or an embedded one". */
  redisUrl: string | undefined;
  /**
   * Redis Cluster seed nodes from REDIS_CLUSTER_NODES (`host:port,...`); when set, every connection is
   * an ioredis Cluster and REDIS_URL must be unset.
   */
  redisClusterNodes: RedisNode[] | undefined;
  /** Prefix of every Redis key this service writes (records and BullMQ). */
  redisPrefix: string;
  /** Jobs one worker process runs at once; default one per core. */
  workerConcurrency: number;
  /** Pre-generated RSA keys each worker process keeps in memory; 0 = generate per job. */
  keyPoolSize: number;
  /** How often a worker logs event-loop delay, memory and key-pool figures, ms; 0 = never. */
  runtimeStatsIntervalMs: number;
  /** Worker processes `npm start` launches beside the API. */
  workerProcesses: number;
  /** How long the API waits for a generation job, in milliseconds. */
  generateTimeoutMs: number;
  /**
   * How long a worker's job lock lives without renewal, ms. A killed worker's job is re-run at most
   * lock duration + stalled interval after the kill, so keep that sum well below GENERATE_TIMEOUT_MS.
   */
  workerLockDurationMs: number;
  /** How often workers look for stalled jobs (locks that expired), ms. */
  workerStalledIntervalMs: number;
  /** How often the worker watchdog checks that the BullMQ worker still takes jobs, ms; 0 disables it. */
  workerWatchdogIntervalMs: number;
  /**
   * Hard limit on a graceful shutdown, ms; after it the process exits anyway. 0 means the process's
   * default: GENERATE_TIMEOUT_MS + 10 s for the API (in-flight requests may wait that long), 25 s for a worker.
   */
  shutdownTimeoutMs: number;
  logLevel: (typeof LOG_LEVELS)[number];
  /** Base64 of 32 bytes; undefined in development means "use or create MASTER_KEY_FILE". */
  masterKey: string | undefined;
  /** Older master keys still accepted for decryption (rotation). */
  previousMasterKeys: string[];
  masterKeyFile: string;
  defaultRegion: string;
  defaultAccountId: string;
  /** JSON file of SigV4 credentials; undefined outside production means "the test/test credential". */
  credentialsFile: string | undefined;
  /** Certificates per account and region unless the credentials file overrides it; 0 = unlimited. */
  clientCertificateLimit: number;
  /** Sustained requests per second per account and region; 0 turns throttling off. */
  rateLimitRps: number;
  /** Requests an idle account and region may make at once. */
  rateLimitBurst: number;
  embeddedRedis: 'auto' | 'never';
  embeddedRedisDir: string;
  /** Password of the `admin` user of the /admin/queues dashboard; undefined: the dashboard is off. */
  adminPassword: string | undefined;
  /** Shape of the certificates workers issue. */
  certProfile: CertProfile;
  /** Port of the redis-server `npm start` launches when no Redis is configured or found. */
  embeddedRedisPort: number;
  /** Port of a worker process's /health/live and /health/ready probe server (on HOST); 0 = none. */
  workerHealthPort: number;
  /**
   * Redis Sentinels from REDIS_SENTINELS (`host:port,...`); when set, every connection asks them for
   * the current primary of REDIS_SENTINEL_MASTER (ioredis's Sentinel support), and REDIS_URL and
   * REDIS_CLUSTER_NODES must be unset.
   */
  redisSentinels: RedisNode[] | undefined;
  /** The name the Sentinels monitor the primary under (REDIS_SENTINEL_MASTER). */
  redisSentinelMaster: string | undefined;
  /** Password of the Sentinels themselves (REDIS_SENTINEL_PASSWORD), if they require one. */
  redisSentinelPassword: string | undefined;
  /** Password of the Redis servers (REDIS_PASSWORD), for Sentinel and Cluster; a REDIS_URL's own wins. */
  redisPassword: string | undefined;
  /**
   * Replicas that must confirm a change (WAIT) before the API acknowledges it; 0 = acknowledge once the
   * primary has it. On Cluster, replicas of the shard that took the write.
   */
  redisWaitReplicas: number;
  /** How long to wait for those confirmations before answering 503, ms. */
  redisWaitTimeoutMs: number;
}

function checkKey(name: string, value: string): string | undefined {
  const buf = Buffer.from(value, 'base64');
  if (buf.length !== 32 || buf.toString('base64') !== value.replace(/\s/g, '')) {
    return `${name} must be the base64 encoding of exactly 32 bytes (e.g. from \`openssl rand -base64 32\`)`;
  }
  return undefined;
}

/**
 * Reads and validates the service's configuration. Pure: it reads only `env`.
 * @throws ConfigError naming every variable that is wrong.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0] ?? '');
      problems.push(issue.message.includes(name) ? issue.message : `${name}: ${issue.message}`);
    }
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  const masterKey = e.MASTER_KEY?.trim() || undefined;
  if (masterKey) {
    const p = checkKey('MASTER_KEY', masterKey);
    if (p) problems.push(p);
  }
  const previousMasterKeys = (e.MASTER_KEYS_PREVIOUS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const k of previousMasterKeys) {
    const p = checkKey('MASTER_KEYS_PREVIOUS', k);
    if (p) problems.push(`${p} (comma-separated)`);
  }
  let redisClusterNodes: RedisNode[] | undefined;
  if (e.REDIS_CLUSTER_NODES !== undefined && e.REDIS_CLUSTER_NODES.trim() !== '') {
    const nodes = parseClusterNodes(e.REDIS_CLUSTER_NODES);
    if (typeof nodes === 'string') problems.push(nodes);
    else redisClusterNodes = nodes;
    if (e.REDIS_URL) problems.push('set either REDIS_URL or REDIS_CLUSTER_NODES, not both');
  }
  let redisSentinels: RedisNode[] | undefined;
  const sentinelMaster = e.REDIS_SENTINEL_MASTER?.trim() || undefined;
  if (e.REDIS_SENTINELS !== undefined && e.REDIS_SENTINELS.trim() !== '') {
    const nodes = parseClusterNodes(e.REDIS_SENTINELS, 'REDIS_SENTINELS');
    if (typeof nodes === 'string') problems.push(nodes);
    else redisSentinels = nodes;
    if (!sentinelMaster) problems.push('REDIS_SENTINEL_MASTER is required with REDIS_SENTINELS');
    if (e.REDIS_URL || redisClusterNodes) {
      problems.push('set only one of REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS');
    }
  } else if (sentinelMaster) {
    problems.push('REDIS_SENTINEL_MASTER is set but REDIS_SENTINELS is not');
  }
  if (e.WORKER_STALLED_INTERVAL_MS > e.WORKER_LOCK_DURATION_MS) {
    problems.push(
      `WORKER_STALLED_INTERVAL_MS (${e.WORKER_STALLED_INTERVAL_MS}) must not exceed WORKER_LOCK_DURATION_MS (${e.WORKER_LOCK_DURATION_MS})`,
    );
  }
  if (e.NODE_ENV === 'production' && !masterKey) {
    problems.push('MASTER_KEY is required when NODE_ENV=production');
  }
  // CREDENTIALS_FILE is required in production only by the API (api/auth/credentials.ts): workers never need it.
  const credentialsFile = e.CREDENTIALS_FILE?.trim() || undefined;
  if (problems.length) throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  return {
    nodeEnv: e.NODE_ENV,
    host: e.HOST,
    port: e.PORT,
    redisUrl: e.REDIS_URL,
    redisClusterNodes,
    redisPrefix: e.REDIS_PREFIX,
    workerConcurrency: e.WORKER_CONCURRENCY,
    keyPoolSize: e.KEY_POOL_SIZE,
    runtimeStatsIntervalMs: e.RUNTIME_STATS_INTERVAL_MS,
    workerProcesses: e.WORKER_PROCESSES,
    generateTimeoutMs: e.GENERATE_TIMEOUT_MS,
    workerLockDurationMs: e.WORKER_LOCK_DURATION_MS,
    workerStalledIntervalMs: e.WORKER_STALLED_INTERVAL_MS,
    workerWatchdogIntervalMs: e.WORKER_WATCHDOG_INTERVAL_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
    masterKey,
    previousMasterKeys,
    masterKeyFile: e.MASTER_KEY_FILE,
    defaultRegion: e.DEFAULT_REGION,
    defaultAccountId: e.DEFAULT_ACCOUNT_ID,
    credentialsFile,
    clientCertificateLimit: e.CLIENT_CERTIFICATE_LIMIT,
    rateLimitRps: e.RATE_LIMIT_RPS,
    rateLimitBurst: e.RATE_LIMIT_BURST,
    embeddedRedis: e.EMBEDDED_REDIS,
    embeddedRedisDir: e.EMBEDDED_REDIS_DIR,
    certProfile: e.CERT_PROFILE,
    adminPassword: e.ADMIN_PASSWORD || undefined,
    embeddedRedisPort: e.EMBEDDED_REDIS_PORT,
    workerHealthPort: e.WORKER_HEALTH_PORT,
    redisSentinels,
    redisSentinelMaster: redisSentinels ? sentinelMaster : undefined,
    redisSentinelPassword: e.REDIS_SENTINEL_PASSWORD || undefined,
    redisPassword: e.REDIS_PASSWORD || undefined,
    redisWaitReplicas: e.REDIS_WAIT_REPLICAS,
    redisWaitTimeoutMs: e.REDIS_WAIT_TIMEOUT_MS,
  };
}
