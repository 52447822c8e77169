import type { ServerType } from '@hono/node-server';
import { ClientCertificateStore } from '../shared/client-certificate-store.js';
import { Cleanup } from '../shared/cleanup.js';
import type { Config } from '../shared/config.js';
import { Keys } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import { withTimeout } from '../shared/timeout.js';
import { createQueue, createQueueEvents } from '../shared/queue.js';
import { createRedis, failFastOptions, patientOptions, type RedisClient } from '../shared/redis.js';
import { ApiMetrics } from '../shared/metrics.js';
import { createApp } from './app.js';
import type { Credential } from './auth/credentials.js';
import { SigV4Verifier } from './auth/sigv4.js';
import { CredentialReload } from './credential-reload.js';
import { Draining } from './draining.js';
import { healthCheck } from './health-check.js';
import { listen } from './http-server.js';
import { reportConnectionCloses } from './connection-guard.js';
import { LoadShedder } from './load-shedder.js';
import { Scheduler } from '../shared/scheduler.js';
import { AuthFailureBudget } from './pre-auth.js';
import { Throttle } from './throttle.js';
import { Issuer } from './issuer.js';
import { CaResponder } from './ca-responder.js';
import { RevocationStore } from '../shared/revocation-store.js';
import { readCertificateAuthority, type CertificateAuthority } from '../shared/certificate-authority.js';
import { DurableAck } from './durable-ack.js';

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
  Partial<
    Pick<
      Config,
      | 'authFailureBurst'
      | 'authFailureRate'
      | 'authFailureDelayMs'
      | 'requestBodyTimeoutMs'
      | 'unauthenticatedIdleTimeoutMs'
      | 'maxConnectionsPerAddress'
      | 'maxConnections'
    >
  > &
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
  const credentials = new CredentialReload(config, log, opts.credentials);
  const keys = new Keys(config.redisPrefix);
  const redis = createRedis(config, failFastOptions(), 'cc-api');
  redis.on('error', (err) => log.debug({ err }, 'redis connection error'));
  const queue = createQueue(redis, keys, (err) => log.debug({ err }, 'queue error'));
  const eventsRedis = createRedis(config, patientOptions(), 'cc-api-events');
  eventsRedis.on('error', (err) => log.debug({ err }, 'redis connection error'));
  const queueEvents = createQueueEvents(eventsRedis, keys, (err) => log.debug({ err }, 'queue events error'));
  // Events published before the subscription starts would be missed: wait for it (bounded).
  await withTimeout(queueEvents.waitUntilReady(), 5000);

  // REDIS_WAIT_REPLICAS > 0: changes are acknowledged once replicas confirm them (durable-ack.ts).
  const durable = DurableAck.fromConfig(config, { redis, keys, log });
  const store = durable?.store ?? new ClientCertificateStore(redis, keys);
  const scheduler = new Scheduler(redis, keys);
  const shedder = new LoadShedder(LoadShedder.schedulerCounts(scheduler), config.generateTimeoutMs);
  LoadShedder.observe(queueEvents, shedder);
  const caResponder = startCaResponder(config, opts.ca, redis, keys, log, durable);
  const issuer = new Issuer({
    queue,
    queueEvents,
    store,
    log,
    timeoutMs: config.generateTimeoutMs,
    limitFor: (t) => credentials.current.limitFor(t.accountId) ?? config.clientCertificateLimit,
    admit: opts.loadShedding === false ? undefined : (t) => shedder.admit(t.accountId),
    durable,
    alsoConfirm: caResponder && ((t, c) => caResponder.serialIndexWrite(t, c)),
  });
  const verifier = new SigV4Verifier(credentials.current, { allowedRegions: config.allowedRegions });
  credentials.onChange((next) => verifier.useCredentials(next));

  const metrics = new ApiMetrics({ redis, keys, queue, backlog: () => scheduler.backlog() });
  if (caResponder) {
    metrics.observeCa({
      refresh: () => caResponder.currentCrl(),
      serialIndex: () => caResponder.serialIndexSize(),
      stats: caResponder.stats,
    });
  }
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
    health: healthCheck(redis, keys, queue, scheduler),
    verifier,
    bodyTimeoutMs: config.requestBodyTimeoutMs,
    authFailures: new AuthFailureBudget({
      burst: config.authFailureBurst ?? 100,
      ratePerSecond: config.authFailureRate ?? 10,
      delayMs: config.authFailureDelayMs ?? 1000,
    }),
    throttle:
      config.rateLimitRps > 0
        ? new Throttle(redis, keys, { rps: config.rateLimitRps, burst: config.rateLimitBurst })
        : undefined,
  });
  const draining = new Draining(app.fetch);
  const http = await listen(draining.fetch, {
    ...config,
    onConnectionClosed: reportConnectionCloses(log, (reason) => metrics.connectionsClosed.inc({ reason })),
  });

  let drainMs = 30_000;
  // Bounded where Redis is involved: with Redis away these would wait for a reconnect that may never come.
  const cleanup = new Cleanup()
    .add('HTTP: drain and stop listening', () => draining.close(http.server, drainMs))
    .add('queue events', () => queueEvents.close(), { boundMs: 2000 })
    .add('queue', () => queue.close(), { boundMs: 2000 })
    .add('events connection', () => eventsRedis.disconnect())
    .add('CA responder timers', () => caResponder?.close())
    .add('durable-ack connections', () => durable?.close())
    .add('redis connection', () => redis.disconnect());
  return {
    ...http,
    get inFlight() {
      return draining.inFlight;
    },
    reloadCredentials: () => credentials.reload(),
    close(timeoutMs = 30_000) {
      drainMs = timeoutMs;
      return cleanup.run();
    },
  };
}

/** CERT_ISSUER=ca: this process signs the CRL and OCSP answers (docs/security.md says why). */
function startCaResponder(
  config: ApiConfig,
  given: CertificateAuthority | undefined,
  redis: RedisClient,
  keys: Keys,
  log: Logger,
  durable: DurableAck | undefined,
): CaResponder | undefined {
  const ca =
    given ??
    (config.certIssuer === 'ca'
      ? readCertificateAuthority(config.caCertFile!, config.caKeyFile!)
      : undefined);
  return ca
    ? new CaResponder({
        ca,
        caCertPem: ca.certPem,
        // With REDIS_WAIT_REPLICAS, the tenant registration and serial index are confirmed on replicas.
        revocations: new RevocationStore(redis, keys, durable?.confirmWrite),
        log,
        crlValiditySeconds: config.crlValiditySeconds ?? 86_400,
        ocspValiditySeconds: config.ocspValiditySeconds ?? 300,
      })
    : undefined;
}
