import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { isAwsRegion, parseAllowedRegions } from './regions.js';
import { StartupError } from './startup-errors.js';
import { AWS_REGION } from './validation.js';

/** Thrown by {@link loadConfig}; the message names every bad variable. */
export class ConfigError extends StartupError {
  override name = 'ConfigError';
}

/**
 * A number from an environment variable: `def` when unset or empty, else a whole number (or, with
 * `decimal`, a non-negative decimal) within `min`..`max`. Messages leave out the variable's name;
 * {@link loadConfig} puts it in front.
 */
const numberFrom = (def: number, min: number, max: number, decimal = false) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return def;
      if (!(decimal ? /^\d+(\.\d+)?$/ : /^\d+$/).test(v.trim())) {
        const kind = decimal ? 'a non-negative number' : 'a whole number';
        ctx.addIssue({ code: 'custom', message: `must be ${kind}, got ${JSON.stringify(v)}` });
        return z.NEVER;
      }
      const n = Number(v.trim());
      if (n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `must be between ${min} and ${max}, got ${n}` });
        return z.NEVER;
      }
      return n;
    })
    .meta({ accepts: `${decimal ? 'number' : 'whole number'}, ${min}-${max}` });
const intFrom = (def: number, min: number, max: number) => numberFrom(def, min, max);

/** One of `values`, `def` when unset. */
const oneOf = <const T extends readonly [string, ...string[]]>(values: T, def: T[number]) =>
  z
    .enum(values, { error: (iss) => `must be one of ${values.join(', ')}, got ${JSON.stringify(iss.input)}` })
    .optional()
    .default(def as never)
    .meta({ accepts: values.map((v) => `\`${v}\``).join(', ') });

/** A string that must match `pattern`; unset gives `def`. */
function matching(pattern: RegExp, message: string): z.ZodOptional<z.ZodString>;
function matching(pattern: RegExp, message: string, def: string): z.ZodDefault<z.ZodString>;
function matching(pattern: RegExp, message: string, def?: string) {
  const s = z.string().regex(pattern, message);
  return def === undefined ? s.optional() : s.default(def);
}

/** Text whose surrounding spaces do not count; unset or blank gives undefined. */
const trimmed = () =>
  z
    .string()
    .optional()
    .transform((v) => v?.trim() || undefined);

/**
 * Text turned into a value by `parse`, which returns the value or what is wrong with it (without the
 * variable's name, which loadConfig puts in front); unset or blank gives undefined.
 */
const parsedWith = <T>(parse: (v: string) => T | string) =>
  trimmed().transform((v, ctx) => {
    if (v === undefined) return undefined;
    const out = parse(v);
    if (typeof out !== 'string') return out;
    ctx.addIssue({ code: 'custom', message: out });
    return z.NEVER;
  });

const base64Key = (v: string) => {
  const buf = Buffer.from(v, 'base64');
  return buf.length === 32 && buf.toString('base64') === v.replace(/\s/g, '');
};
const KEY_MESSAGE = 'must be the base64 encoding of exactly 32 bytes (e.g. from `openssl rand -base64 32`)';

/**
 * Shapes of issued certificates: `aws` is AWS's exact, extension-less certificate; `modern` adds
 * basicConstraints, keyUsage, extendedKeyUsage clientAuth and a subject key identifier.
 */
export const CERT_PROFILES = ['aws', 'modern'] as const;
export type CertProfile = (typeof CERT_PROFILES)[number];

/**
 * Who signs issued certificates: `self` (AWS's shape: each certificate signs itself) or `ca` (the CA in
 * CA_CERT_FILE/CA_KEY_FILE, so a backend trusts one CA for every certificate).
 */
export const CERT_ISSUERS = ['self', 'ca'] as const;
export type CertIssuer = (typeof CERT_ISSUERS)[number];

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

/** Descriptors {@link defaultMaxConnections} leaves for Redis connections, files, logs and Node itself. */
export const DESCRIPTOR_HEADROOM = 128;

/**
 * The default cap on the API's open client connections: the process's soft `RLIMIT_NOFILE` (the
 * "Max open files" row of `limits`, /proc/self/limits on Linux) minus {@link DESCRIPTOR_HEADROOM},
 * at least 16; 4,096 - 128 when the limit cannot be read or is unlimited.
 */
export function defaultMaxConnections(limits?: string): number {
  let text = limits;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      text = '';
    }
  }
  const soft = /^Max open files\s+(\d+)/m.exec(text)?.[1];
  const n = soft === undefined ? 4096 : Number(soft);
  return Math.max(16, Math.min(n, 1_000_000) - DESCRIPTOR_HEADROOM);
}

/**
 * How long an idle keep-alive connection stays open, ms. Above the idle time of the clients and load
 * balancers in front (AWS's ALB: 60 s; the AWS SDK's agent keeps sockets for as long as the server
 * does), so a client never reuses a socket the server has just closed (ECONNRESET). Node's own is 5 s.
 */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 65_000;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** LOG_FORMAT: `auto` picks pretty lines for a person at a terminal and JSON for everything else. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;

/** GATEWAY_LISTEN when neither it nor `--listen` is given. */
export const DEFAULT_GATEWAY_LISTEN = '127.0.0.1:8081';

/** One Redis Cluster seed node. */
export interface RedisNode {
  host: string;
  port: number;
}

/** `host:port`, IPv6 in brackets (`[::1]:7000`): the host is group 1 (brackets and all), the port group 2. */
export const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/;

/** Parses `host:port,host:port` (IPv6 as `[::1]:7000`); returns the nodes or a problem naming `name`. */
export function parseClusterNodes(value: string, name = 'REDIS_CLUSTER_NODES'): RedisNode[] | string {
  const nodes: RedisNode[] = [];
  for (const part of value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = HOST_PORT.exec(part);
    const port = m ? Number(m[2]) : NaN;
    if (!m || port < 1 || port > 65535) {
      return `${name ? `${name} ` : ''}must be a comma-separated list of host:port, got ${JSON.stringify(part)}`;
    }
    nodes.push({ host: m[1]!.replace(/^\[|\]$/g, ''), port });
  }
  if (nodes.length === 0) return `${name ? `${name} ` : ''}must name at least one host:port`;
  return nodes;
}

/**
 * Every environment variable the service reads: its name (the key), its default (`default()` or the
 * helper's first argument, which is also what docs/configuration.md shows) and its description (which
 * becomes the table's text). `Config` is derived from this object, with each name in camelCase
 * (`KEY_POOL_SIZE` -> `keyPoolSize`). Adding a variable is one entry here plus `npm run docs:config`.
 */
export const variables = z.object({
  NODE_ENV: oneOf(['development', 'production', 'test'], 'development').describe(
    'Run mode. `production` requires `MASTER_KEY` and `CREDENTIALS_FILE`.',
  ),
  HOST: z
    .string()
    .min(1, 'must not be empty')
    .optional()
    .default('127.0.0.1')
    .describe('API bind address (`0.0.0.0` in the container image).'),
  PORT: intFrom(8080, 0, 65535).describe('API port.'),
  REDIS_URL: matching(/^rediss?:\/\//, 'must start with redis:// or rediss://').describe(
    "`redis://` or `rediss://` URL. Unset: 127.0.0.1:6379, or `npm start`'s embedded Redis.",
  ),
  REDIS_PREFIX: matching(/^[A-Za-z0-9_-]{1,32}$/, 'must be 1-32 characters of [A-Za-z0-9_-]', 'cc').describe(
    'Prefix of every Redis key this service writes (records and BullMQ); `[A-Za-z0-9_-]{1,32}`.',
  ),
  WORKER_CONCURRENCY: intFrom(defaultWorkerConcurrency(), 1, 256)
    .meta({ defaultText: 'number of cores + 1' })
    .describe(
      'Jobs one worker process runs at once: one key generation per core, plus one that covers the moments a slot waits for Redis between jobs (11-12 % more certificates/s on 2 cores).',
    ),
  KEY_POOL_SIZE: intFrom(DEFAULT_KEY_POOL_SIZE, 0, 10_000).describe(
    'Pre-generated RSA-2048 keys each worker process keeps in memory (`0` = generate per job). Refilled one at a time, only while no job waits for a key; each key is used once; a crash loses only unused keys.',
  ),
  RUNTIME_STATS_INTERVAL_MS: intFrom(10_000, 0, 3_600_000).describe(
    'How often a worker logs `runtime stats` (event-loop delay p50/p99/max, RSS, heap, key-pool state), ms; `0` = never.',
  ),
  WORKER_PROCESSES: intFrom(1, 0, 64).describe('Worker processes `npm start` launches beside the API.'),
  GENERATE_TIMEOUT_MS: intFrom(30_000, 100, 600_000).describe(
    'How long a GenerateClientCertificate waits for its job before answering 503, ms.',
  ),
  LOG_LEVEL: oneOf(LOG_LEVELS, 'info').describe('Lowest level of log lines written.'),
  LOG_FORMAT: oneOf(LOG_FORMATS, 'auto').describe(
    '`auto`: pretty lines (pino-pretty) on a terminal outside production, JSON whenever stdout is not a terminal or `NODE_ENV=production`; `json` or `pretty` force one.',
  ),
  MASTER_KEY: trimmed()
    .refine((v) => v === undefined || base64Key(v), KEY_MESSAGE)
    .describe(
      'Base64 of 32 bytes (`openssl rand -base64 32`) that encrypts private keys at rest. Required with `NODE_ENV=production`; outside production, unset means "use or create `MASTER_KEY_FILE`".',
    ),
  MASTER_KEYS_PREVIOUS: z
    .string()
    .optional()
    .transform((v) =>
      (v ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .refine((keys) => keys.every(base64Key), `${KEY_MESSAGE} (comma-separated)`)
    .describe('Comma-separated older master keys, still accepted for decryption (rotation).'),
  MASTER_KEY_FILE: z
    .string()
    .optional()
    .default('.data/master.key')
    .describe(
      'Without `MASTER_KEY` outside production: a development key is generated here once (git-ignored) and a warning logged.',
    ),
  DEFAULT_REGION: z
    .string()
    .regex(AWS_REGION, { error: 'must look like an AWS region, e.g. us-east-1', abort: true })
    .refine(isAwsRegion, {
      error: (iss) =>
        `must be a region that exists in the AWS SDK's partition data, e.g. us-east-1, got ${JSON.stringify(iss.input)}`,
    })
    .default('us-east-1')
    .describe(
      "Not used by the API (every signature names its region); validated for tools: a region that exists in the AWS SDK's partition data.",
    ),
  DEFAULT_ACCOUNT_ID: matching(/^\d{12}$/, 'must be 12 digits', '000000000000').describe(
    'Account of the development credential `test`/`test` (12 digits).',
  ),
  REDIS_CLUSTER_NODES: parsedWith((v) => parseClusterNodes(v, '')).describe(
    '`host:port,host:port,...` seed nodes of a Redis Cluster (IPv6 as `[::1]:7000`); every connection then uses ioredis Cluster. Exclusive with `REDIS_URL`.',
  ),
  WORKER_LOCK_DURATION_MS: intFrom(10_000, 1000, 600_000).describe(
    "How long a worker's job lock lives without renewal, ms. A killed worker's job is re-run at most this plus `WORKER_STALLED_INTERVAL_MS` later, so keep the sum well below `GENERATE_TIMEOUT_MS`.",
  ),
  WORKER_STALLED_INTERVAL_MS: intFrom(5000, 500, 600_000).describe(
    'How often workers look for jobs whose lock expired, ms; at most `WORKER_LOCK_DURATION_MS`.',
  ),
  WORKER_WATCHDOG_INTERVAL_MS: intFrom(5000, 0, 600_000).describe(
    'How often a worker checks that its BullMQ worker still takes jobs, and replaces it if not, ms; `0` turns the watchdog off.',
  ),
  SHUTDOWN_TIMEOUT_MS: intFrom(0, 0, 3_600_000)
    .meta({ defaultText: '`0`: API `GENERATE_TIMEOUT_MS` + 10 s, worker 25 s' })
    .describe(
      'Hard limit on a graceful shutdown after SIGTERM/SIGINT, ms; after it the process exits anyway, and a second signal exits at once. Give the container at least this much (`stop_grace_period`).',
    ),
  CREDENTIALS_FILE: trimmed().describe(
    'JSON array of SigV4 credentials, re-read on `SIGHUP`. Required by the API with `NODE_ENV=production`; unset otherwise: only the development credential `test`/`test`.',
  ),
  CLIENT_CERTIFICATE_LIMIT: intFrom(60, 0, 1_000_000).describe(
    'Certificates per account and region (`0` = unlimited); the credentials file may override it per account.',
  ),
  RATE_LIMIT_RPS: numberFrom(10, 0, 1_000_000, true).describe(
    'Sustained requests per second per account and region, shared by all API processes (`0` = no throttling).',
  ),
  RATE_LIMIT_BURST: intFrom(40, 1, 1_000_000).describe(
    'Requests an idle account and region may make at once.',
  ),
  EMBEDDED_REDIS: oneOf(['auto', 'never'], 'auto').describe(
    '`never`: `npm start` does not launch a redis-server of its own when no Redis is configured or found.',
  ),
  EMBEDDED_REDIS_DIR: z
    .string()
    .optional()
    .default('.data/redis')
    .describe('Data folder of the embedded redis-server.'),
  ADMIN_PASSWORD: z
    .string()
    .optional()
    .transform((v) => v || undefined)
    .describe(
      'Password of user `admin` for the queue dashboard at `/admin/queues`; unset: the dashboard is off (404).',
    ),
  CERT_PROFILE: oneOf(CERT_PROFILES, 'aws').describe(
    "Shape of issued certificates: `aws` = AWS's exact, extension-less certificate; `modern` adds basicConstraints CA:false, keyUsage digitalSignature, extendedKeyUsage clientAuth and a subject key identifier.",
  ),
  EMBEDDED_REDIS_PORT: intFrom(6390, 1, 65535).describe(
    'Port of the redis-server `npm start` launches when no Redis is configured or found.',
  ),
  CERT_ISSUER: oneOf(CERT_ISSUERS, 'self').describe(
    "Who signs issued certificates: `self` = AWS's shape, each certificate signs itself; `ca` = the CA in `CA_CERT_FILE`/`CA_KEY_FILE` (issuer = the CA's subject, key identifiers, the `modern` extensions), so a backend trusts one CA for every certificate.",
  ),
  CA_CERT_FILE: trimmed().describe(
    "The signing CA's certificate, PEM; it may be an intermediate followed by its issuers, in order, and issued records then carry the certificate followed by the intermediate(s), so a backend that trusts only the root accepts them. Required with `CERT_ISSUER=ca`; read by workers and, for the CRL and OCSP answers it signs, by the API; both refuse to start on a certificate that is not a CA, a CA whose keyUsage leaves out keyCertSign, an expired CA, or a key that does not match it.",
  ),
  CA_KEY_FILE: trimmed().describe(
    "The signing CA's private key, unencrypted PEM, RSA or EC. Required with `CERT_ISSUER=ca`; read by workers (they sign certificates) and the API (it signs CRLs and OCSP answers, see docs/security.md), never logged, never stored in Redis.",
  ),
  CA_PUBLIC_URL: trimmed()
    .refine((v) => v === undefined || /^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(v), {
      message: 'must be an http:// or https:// URL without query or fragment',
    })
    .meta({ accepts: '`http(s)://host[:port][/base]`' })
    .describe(
      "CA mode: the API's address as backends reach it. Each CA-issued certificate then names the CRL (`<url>/ca/crl`) in its CRL distribution points and the OCSP responder (`<url>/ca/ocsp`) and CA certificate (`<url>/ca/cert`) in its authority information access. Unset: certificates name neither; the API serves both all the same.",
    ),
  CRL_VALIDITY_SECONDS: intFrom(86_400, 60, 30 * 86_400).describe(
    "CA mode: the CRL's nextUpdate is this long after its thisUpdate. The API signs a new CRL within seconds of a delete and at least every tenth of this, so a backend's copy never lapses while the API runs.",
  ),
  OCSP_VALIDITY_SECONDS: intFrom(300, 1, 7 * 86_400).describe(
    "CA mode: an OCSP answer's nextUpdate is this long after its thisUpdate; OCSP clients (nginx's ssl_ocsp_cache) keep an answer until then, so it bounds how long a revoked certificate stays accepted.",
  ),
  ALLOWED_REGIONS: parsedWith(parseAllowedRegions).describe(
    "Comma-separated regions a request's SigV4 scope may name. Unset: every region that exists in the AWS SDK's partition data; any other region is a 403 `InvalidSignatureException` before Redis is asked. A name that does not exist is refused at start.",
  ),
  KEEP_ALIVE_TIMEOUT_MS: intFrom(DEFAULT_KEEP_ALIVE_TIMEOUT_MS, 1000, 290_000).describe(
    "How long an idle keep-alive connection stays open, ms; the headers timeout is 1 s above it. Keep it above the idle timeout of the clients and load balancers in front (Node's own default, 5 s, reset the AWS SDK's pooled sockets).",
  ),
  REQUEST_BODY_TIMEOUT_MS: intFrom(10_000, 100, 300_000).describe(
    'How long a request body may take to arrive from the start of the request, ms, for chunked bodies as for `Content-Length` ones; then `408 RequestTimeoutException` and the connection is closed. Bodies are read only once SigV4 has checked the credential and date.',
  ),
  UNAUTHENTICATED_IDLE_TIMEOUT_MS: intFrom(10_000, 0, 290_000).describe(
    'How long a connection that has not carried a validly signed request may sit idle (or send its headers), ms, before the API closes it; authenticated connections keep `KEEP_ALIVE_TIMEOUT_MS`. `0` = only `KEEP_ALIVE_TIMEOUT_MS`.',
  ),
  MAX_CONNECTIONS_PER_ADDRESS: intFrom(1000, 0, 1_000_000).describe(
    'Connections one client address may hold open at once; more are closed as they arrive. `0` = no limit. Behind a proxy every client shares its address.',
  ),
  MAX_CONNECTIONS: intFrom(defaultMaxConnections(), 0, 1_000_000)
    .meta({ defaultText: 'soft `RLIMIT_NOFILE` - 128 (else 3,968)' })
    .describe(
      "Client connections the API holds open at once. From nine tenths of it on, each new connection closes an idle one (those that never authenticated before authenticated ones, oldest first) so a new client is still answered; at it, with nothing idle to close, a new connection is closed at once. The default leaves 128 descriptors for Redis and files below the process's soft open-files limit (/proc/self/limits). `0` = no limit.",
    ),
  AUTH_FAILURE_BURST: intFrom(100, 0, 1_000_000).describe(
    "Requests failing authentication (SigV4 403s, and the query and request-target bounds' 400/414) one client address may make at once; then its failing requests, and every request on a connection whose last one failed, get 429 `TooManyRequestsException` with `Retry-After` (held `AUTH_FAILURE_DELAY_MS`) until it earns more back at `AUTH_FAILURE_RATE`. `0` = no budget. IPv6 counts per /64; behind a proxy every client shares its address.",
  ),
  AUTH_FAILURE_RATE: numberFrom(10, 0.01, 1_000_000, true).describe(
    'Failed authentications per second a client address earns back, up to `AUTH_FAILURE_BURST`.',
  ),
  AUTH_FAILURE_DELAY_MS: intFrom(1000, 0, 30_000).describe(
    'How long the API holds a 429 to an address over `AUTH_FAILURE_BURST` before sending it, ms (a tarpit): the failing connection waits for its answer instead of sending its next request at once. Only connections whose requests fail are held; a new connection or one that authenticates is verified as usual. `0` = answer at once.',
  ),
  METRICS_TOKEN: trimmed().describe(
    'Bearer token `/metrics` requires (`Authorization: Bearer <token>`, else 401). Unset: `/metrics` is open, like `/health`.',
  ),
  ADMIN_READ_WRITE: z
    .enum(['true', 'false', ''], {
      error: (iss) => `must be true or false, got ${JSON.stringify(iss.input)}`,
    })
    .optional()
    .transform((v) => v === 'true')
    .meta({ accepts: '`true`, `false`' })
    .describe(
      '`true` lets the queue dashboard retry, promote, clean and delete jobs; otherwise it is read-only. Wrong dashboard passwords are slowed down either way.',
    ),
  WORKER_HEALTH_PORT: intFrom(0, 0, 65535).describe(
    "Port of a worker process's `/health/live` and `/health/ready` probe server (on `HOST`); `0` = none. `npm start` gives each worker the next port.",
  ),
  REDIS_SENTINELS: parsedWith((v) => parseClusterNodes(v, '')).describe(
    '`host:port,host:port,...` of Redis Sentinels; every connection then asks them for the current primary of `REDIS_SENTINEL_MASTER` (ioredis Sentinel support). Exclusive with `REDIS_URL` and `REDIS_CLUSTER_NODES`.',
  ),
  REDIS_SENTINEL_MASTER: trimmed().describe(
    'The name the Sentinels monitor the primary under; required with `REDIS_SENTINELS`.',
  ),
  REDIS_SENTINEL_PASSWORD: trimmed().describe("The Sentinels' own password, if they require one."),
  REDIS_PASSWORD: trimmed().describe(
    "Password of the Redis servers, for Sentinel and Cluster (a `REDIS_URL`'s own password wins).",
  ),
  REDIS_WAIT_REPLICAS: intFrom(0, 0, 100).describe(
    'Replicas that must confirm a change (`WAIT`, per shard on Cluster) before the API answers 2xx for it; not confirmed in time: 503 and the change is settled (docs/high-availability.md). `0` = answer once the primary has it.',
  ),
  REDIS_WAIT_TIMEOUT_MS: intFrom(1000, 1, 60_000).describe(
    'How long the API waits for `REDIS_WAIT_REPLICAS` confirmations before answering 503, ms.',
  ),
  // The mTLS gateway (`npm run gateway`, docs/mtls-gateway.md). Each but the last also comes as a flag, which wins,
  // so gateway/config.ts checks the values it ends up with (and that the two it needs are there).
  GATEWAY_CLIENT_CERTIFICATE_ID: trimmed().describe(
    'Gateway (`--client-certificate-id`): the client certificate it presents. Required by the gateway.',
  ),
  GATEWAY_TARGET: trimmed().describe(
    "Gateway (`--target`): the mTLS backend, `https://host:port[/base]`; a base path is put in front of every request's path. Required by the gateway.",
  ),
  GATEWAY_LISTEN: trimmed()
    .transform((v) => v ?? DEFAULT_GATEWAY_LISTEN)
    .meta({ accepts: '`host:port` (IPv6 as `[::1]:8081`)' })
    .describe('Gateway (`--listen`): where it listens, plain HTTP.'),
  GATEWAY_TARGET_CA: trimmed()
    .meta({ defaultText: "the system's CAs" })
    .describe(
      "Gateway (`--target-ca`): PEM bundle the backend's server certificate is verified against (its name is checked too).",
    ),
  GATEWAY_ACCOUNT: trimmed()
    .meta({ defaultText: '`DEFAULT_ACCOUNT_ID`', accepts: '12 digits' })
    .describe('Gateway (`--account`): account the certificate belongs to.'),
  GATEWAY_REGION: trimmed()
    .meta({ defaultText: '`DEFAULT_REGION`', accepts: 'an AWS region' })
    .describe('Gateway (`--region`): region the certificate belongs to.'),
  GATEWAY_ALLOWED_HOSTS: trimmed()
    .meta({
      defaultText: 'the listen address (and `localhost:<port>` on loopback)',
      accepts: '`host:port,host:port`',
    })
    .describe(
      "Gateway: the `Host` values it answers (as clients send them, with the port); any other is a 421, so a DNS name rebound to the gateway's address reaches nothing.",
    ),
  GATEWAY_SWITCH_FILE: trimmed().describe(
    'Gateway: a file holding a client certificate id. On SIGHUP the gateway reads it and presents that certificate from then on (rotation without a restart: requests in flight finish on the previous one). Unset: SIGHUP changes nothing.',
  ),
  GATEWAY_REFRESH_MS: intFrom(5000, 100, 15_000).describe(
    'Gateway: how often it checks that the certificate still exists, ms; a deleted certificate stops being presented within this.',
  ),
});

type Variables = z.output<typeof variables>;

/** Rules between variables. They run even when a variable is bad, so one start reports every problem. */
function crossChecks(e: Variables, ctx: z.RefinementCtx): void {
  const problem = (message: string) => ctx.addIssue({ code: 'custom', message, input: e });
  if (e.REDIS_CLUSTER_NODES !== undefined && e.REDIS_URL) {
    problem('set either REDIS_URL or REDIS_CLUSTER_NODES, not both');
  }
  if (e.REDIS_SENTINELS !== undefined) {
    if (!e.REDIS_SENTINEL_MASTER) problem('REDIS_SENTINEL_MASTER is required with REDIS_SENTINELS');
    if (e.REDIS_URL || e.REDIS_CLUSTER_NODES !== undefined) {
      problem('set only one of REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS');
    }
  } else if (e.REDIS_SENTINEL_MASTER) {
    problem('REDIS_SENTINEL_MASTER is set but REDIS_SENTINELS is not');
  }
  const lock = e.WORKER_LOCK_DURATION_MS;
  const stalled = e.WORKER_STALLED_INTERVAL_MS;
  if (typeof lock === 'number' && typeof stalled === 'number' && stalled > lock) {
    problem(`WORKER_STALLED_INTERVAL_MS (${stalled}) must not exceed WORKER_LOCK_DURATION_MS (${lock})`);
  }
  if (e.NODE_ENV === 'production' && !e.MASTER_KEY) {
    problem('MASTER_KEY is required when NODE_ENV=production');
  }
  // CREDENTIALS_FILE is required in production only by the API (api/auth/credentials.ts): workers never need it.
  if (e.CERT_ISSUER === 'ca' && (!e.CA_CERT_FILE || !e.CA_KEY_FILE)) {
    problem('CERT_ISSUER=ca needs CA_CERT_FILE and CA_KEY_FILE (PEM files of the signing CA)');
  }
}

/** `KEY_POOL_SIZE` -> `keyPoolSize`, as a type. */
type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}`
  ? `${Lowercase<Head>}${Capitalize<CamelCase<Tail>>}`
  : Lowercase<S>;
type Camel<T> = { [K in keyof T as K extends string ? CamelCase<K> : never]: T[K] };

/** `KEY_POOL_SIZE` -> `keyPoolSize`. */
export function camelCase(name: string): string {
  return name.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** The whole configuration: the variables, checked together, under their camelCase names. */
export const configSchema = variables
  .superRefine(crossChecks, { when: () => true })
  .transform(
    (e) => Object.fromEntries(Object.entries(e).map(([k, v]) => [camelCase(k), v])) as Camel<Variables>,
  );

export type Config = z.output<typeof configSchema>;

/**
 * Reads and validates the service's configuration. Pure: it reads only `env`.
 * @throws ConfigError naming every variable that is wrong, all at once.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) =>
    issue.path.length ? `${String(issue.path[0])} ${issue.message}` : issue.message,
  );
  throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
}

/**
 * {@link loadConfig} for a process's entry point: a bad configuration is written to stderr and the
 * process exits with 1, before anything starts.
 */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
}
