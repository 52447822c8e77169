import { serve, type ServerType } from '@hono/node-server';
import { ClientCertificateStore } from '../shared/client-certificate-store.js';
import { DEFAULT_KEEP_ALIVE_TIMEOUT_MS, type Config } from '../shared/config.js';
import { Keys } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import { withTimeout } from '../shared/timeout.js';
import { createQueue, createQueueEvents } from '../shared/queue.js';
import { ServiceUnavailableError } from '../shared/errors.js';
import { createRedis, failFastOptions, patientOptions, type RedisClient } from '../shared/redis.js';
import { HEARTBEAT_TTL_MS } from '../shared/heartbeat.js';
import { ApiMetrics } from '../shared/metrics.js';
import { createApp, errorResponse } from './app.js';
import {
  CredentialStore,
  loadCredentials,
  readCredentialsFile,
  type Credential,
} from './auth/credentials.js';
import { SigV4Verifier } from './auth/sigv4.js';
import { LoadShedder } from './load-shedder.js';
import { AuthFailureBudget } from './pre-auth.js';
import { Throttle } from './throttle.js';
import { Issuer } from './issuer.js';
import { CaResponder } from './ca-responder.js';
import { RevocationStore } from '../shared/revocation-store.js';
import { readCertificateAuthority, type CertificateAuthority } from '../worker/certificate-authority.js';
import { DurableStore } from './durable-store.js';
import { ReplicaConfirmer } from './replica-confirmer.js';
import type { HealthReport } from './routes/health.js';

export interface ApiServer {
  url: string;
  port: number;
  server: ServerType;
  /** Requests being answered now. */
  readonly inFlight: number;
  /**
   * Reads CREDENTIALS_FILE again (main.ts calls it on SIGHUP). A valid file replaces the accepted
   * credentials and per-account limits in one step, for every request verified from then on; an
   * unreadable or invalid one is logged as an error and the credentials in force stay.
   * @returns whether the file was applied.
   */
  reloadCredentials(): boolean;
  /**
   * Graceful stop: stops listening, answers requests arriving on open connections with 503 and
   * `Connection: close`, lets in-flight requests finish (at most `timeoutMs`, default 30 s, then
   * cuts their connections), then closes queues and Redis.
   */
  close(timeoutMs?: number): Promise<void>;
}

export type ApiConfig = Pick<
  Config,
  | 'host'
  | 'port'
  | 'redisUrl'
  | 'redisPrefix'
  | 'generateTimeoutMs'
  | 'defaultAccountId'
  | 'defaultRegion'
  | 'nodeEnv'
  | 'credentialsFile'
  | 'clientCertificateLimit'
  | 'rateLimitRps'
  | 'rateLimitBurst'
> &
  Partial<Pick<Config, 'redisClusterNodes' | 'adminPassword'>> &
  Partial<Pick<Config, 'allowedRegions' | 'keepAliveTimeoutMs' | 'metricsToken' | 'adminReadWrite'>> &
  Partial<Pick<Config, 'authFailureBurst' | 'authFailureRate'>> &
  Partial<
    Pick<
      Config,
      | 'redisSentinels'
      | 'redisSentinelMaster'
      | 'redisSentinelPassword'
      | 'redisPassword'
      | 'redisWaitReplicas'
      | 'redisWaitTimeoutMs'
      | 'certIssuer'
      | 'caCertFile'
      | 'caKeyFile'
      | 'crlValiditySeconds'
      | 'ocspValiditySeconds'
    >
  >;

export interface ApiOptions {
  /** Credentials to accept instead of CREDENTIALS_FILE (tests). */
  credentials?: Credential[];
  /** Turns load shedding off (tests that need a deep queue). */
  loadShedding?: boolean;
  /** The CA to sign CRLs and OCSP answers with, instead of reading CA_CERT_FILE/CA_KEY_FILE (tests). */
  ca?: CertificateAuthority;
}

/**
 * Wires Redis, BullMQ and the app, and listens. Used by main.ts and by tests.
 * @throws CredentialsError before listening when the credentials cannot be loaded.
 */
export async function startApi(config: ApiConfig, log: Logger, opts: ApiOptions = {}): Promise<ApiServer> {
  // Replaced as a whole by reloadCredentials(); the issuer's limits and the verifier read the current one.
  let credentials = opts.credentials
    ? new CredentialStore(opts.credentials)
    : loadCredentials(
        {
          credentialsFile: config.credentialsFile,
          nodeEnv: config.nodeEnv,
          devAccountId: config.defaultAccountId,
        },
        log,
      );
  const keys = new Keys(config.redisPrefix);
  const redis: RedisClient = createRedis(config, failFastOptions(), 'cc-api');
  redis.on('error', (err) => log.debug({ err }, 'redis connection error'));
  const queue = createQueue(redis, keys, (err) => log.debug({ err }, 'queue error'));
  const eventsRedis = createRedis(config, patientOptions(), 'cc-api-events');
  eventsRedis.on('error', (err) => log.debug({ err }, 'redis connection error'));
  const queueEvents = createQueueEvents(eventsRedis, keys, (err) => log.debug({ err }, 'queue events error'));
  // Events published before the subscription starts would be missed: wait for it (bounded).
  await withTimeout(queueEvents.waitUntilReady(), 5000);

  // REDIS_WAIT_REPLICAS > 0: changes are acknowledged once replicas confirm them (replica-confirmer.ts).
  const confirmer = config.redisWaitReplicas
    ? new ReplicaConfirmer(
        config,
        redis,
        keys,
        config.redisWaitReplicas,
        config.redisWaitTimeoutMs ?? 1000,
        log,
      )
    : undefined;
  const store = confirmer
    ? new DurableStore(redis, keys, confirmer)
    : new ClientCertificateStore(redis, keys);
  const shedder = new LoadShedder(LoadShedder.queueCounts(queue), config.generateTimeoutMs);
  LoadShedder.observe(queueEvents, shedder);
  const issuer = new Issuer({
    queue,
    queueEvents,
    store,
    log,
    timeoutMs: config.generateTimeoutMs,
    limitFor: (t) => credentials.limitFor(t.accountId) ?? config.clientCertificateLimit,
    admit: opts.loadShedding === false ? undefined : () => shedder.admit(),
    confirmer,
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

  const verifier = new SigV4Verifier(credentials, { allowedRegions: config.allowedRegions });
  const reloadCredentials = (): boolean => {
    const file = config.credentialsFile;
    if (!file) {
      log.warn('credentials not reloaded: CREDENTIALS_FILE is not set');
      return false;
    }
    let next: CredentialStore;
    try {
      next = readCredentialsFile(file);
    } catch (err) {
      log.error(
        { err: (err as Error).message, file, credentials: credentials.size },
        'credentials not reloaded: keeping the credentials in force',
      );
      return false;
    }
    const changes = next.changesSince(credentials);
    // Both in the same tick: no request sees one store's credentials with the other's limits.
    credentials = next;
    verifier.useCredentials(next);
    log.info({ file, credentials: next.size, ...changes }, 'credentials reloaded');
    return true;
  };

  // CERT_ISSUER=ca: this process signs the CRL and OCSP answers (docs/security.md says why).
  const ca =
    opts.ca ??
    (config.certIssuer === 'ca'
      ? readCertificateAuthority(config.caCertFile!, config.caKeyFile!)
      : undefined);
  const caResponder = ca
    ? new CaResponder({
        ca,
        caCertPem: ca.certPem,
        revocations: new RevocationStore(redis, keys),
        log,
        crlValiditySeconds: config.crlValiditySeconds ?? 86_400,
        ocspValiditySeconds: config.ocspValiditySeconds ?? 300,
      })
    : undefined;

  const metrics = new ApiMetrics({ redis, keys, queue });
  if (caResponder) metrics.observeCa({ refresh: () => caResponder.currentCrl(), stats: caResponder.stats });
  const app = createApp({
    ca: caResponder,
    metrics,
    metricsToken: config.metricsToken,
    admin: config.adminPassword
      ? { queue, password: config.adminPassword, readWrite: config.adminReadWrite === true }
      : undefined,
    issuer,
    store,
    log,
    health,
    verifier,
    authFailures: new AuthFailureBudget({
      burst: config.authFailureBurst ?? 100,
      ratePerSecond: config.authFailureRate ?? 10,
    }),
    throttle:
      config.rateLimitRps > 0
        ? new Throttle(redis, keys, { rps: config.rateLimitRps, burst: config.rateLimitBurst })
        : undefined,
  });

  // Draining: once close() starts, requests still arriving on kept-alive connections are refused with
  // a 503 (a load balancer retries them elsewhere), and every answer closes its connection, so the
  // server really empties instead of serving keep-alive clients forever.
  let draining = false;
  let inFlight = 0;
  let onIdle: (() => void) | undefined;
  const fetch = async (req: Request, env: unknown): Promise<Response> => {
    if (draining) {
      const res = errorResponse(
        new ServiceUnavailableError('This server is shutting down. Retry the request.', 1),
      );
      res.headers.set('connection', 'close');
      return res;
    }
    inFlight += 1;
    try {
      const res = await app.fetch(req, env);
      if (draining) {
        try {
          res.headers.set('connection', 'close');
        } catch {
          // immutable headers: node still closes the idle connection below
        }
      }
      return res;
    } finally {
      inFlight -= 1;
      if (inFlight === 0) onIdle?.();
    }
  };

  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch, hostname: config.host, port: config.port }, () => resolve(s));
    s.once('error', reject);
  });
  // Idle keep-alive sockets stay open longer than the clients in front keep theirs (see
  // DEFAULT_KEEP_ALIVE_TIMEOUT_MS); the headers timeout must exceed it, or Node cuts a slow request's
  // headers on a reused socket first.
  const keepAliveMs = config.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS;
  const http1 = server as ServerType & { keepAliveTimeout: number; headersTimeout: number };
  http1.keepAliveTimeout = keepAliveMs;
  http1.headersTimeout = keepAliveMs + 1000;
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;

  type NodeServer = ServerType & { closeIdleConnections?: () => void; closeAllConnections?: () => void };
  const node = server as NodeServer;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    server,
    get inFlight() {
      return inFlight;
    },
    reloadCredentials,
    close(timeoutMs = 30_000) {
      closing ??= (async () => {
        draining = true;
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        const deadline = Date.now() + timeoutMs;
        const idle = new Promise<void>((resolve) => {
          onIdle = resolve;
          if (inFlight === 0) resolve();
        });
        // Idle keep-alive connections would hold close() open forever; sweep them until all are gone.
        node.closeIdleConnections?.();
        const sweeper = setInterval(() => node.closeIdleConnections?.(), 100);
        await withTimeout(idle, timeoutMs);
        await withTimeout(closed, Math.min(1000, deadline - Date.now()));
        clearInterval(sweeper);
        node.closeAllConnections?.();
        await withTimeout(closed, 1000);
        // Bounded: with Redis away these would wait for a reconnect that may never come.
        await withTimeout(
          queueEvents.close().catch(() => undefined),
          2000,
        );
        await withTimeout(
          queue.close().catch(() => undefined),
          2000,
        );
        eventsRedis.disconnect();
        confirmer?.close();
        redis.disconnect();
      })();
      return closing;
    },
  };
}
