import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { DEV_CREDENTIAL, type Credential } from '../api/auth/credentials.js';
import { startApi, type ApiConfig, type ApiServer } from '../api/server.js';
import type { CertProfile } from '../shared/config.js';
import { ClientCertificateStore } from '../shared/client-certificate-store.js';
import { KeyVault } from '../shared/crypto/key-vault.js';
import { Keys } from '../shared/keys.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { createRedis, patientOptions, type RedisClient } from '../shared/redis.js';
import type { CertificateAuthority } from '../shared/certificate-authority.js';
import { directKeySource, type KeySource } from '../worker/key-source.js';
import { startWorker, type RunningWorker } from '../worker/worker.js';

/** Collects every log line a test service writes, so tests can assert what was (not) logged. */
export class LogSink extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: string, cb: () => void) {
    this.lines.push(...chunk.toString().split('\n').filter(Boolean));
    cb();
  }
}

export interface TestService {
  api: ApiServer;
  workers: RunningWorker[];
  redis: RedisClient;
  keys: Keys;
  /** The store on the test's own Redis connection, for looking behind the API. */
  store: ClientCertificateStore;
  vault: KeyVault;
  masterKey: string;
  logs: LogSink;
  log: Logger;
  addWorker(opts?: {
    keySource?: KeySource;
    concurrency?: number;
    watchdogIntervalMs?: number;
  }): RunningWorker;
  /** One more API process on the same Redis and prefix (same credentials and limits). */
  addApi(): Promise<ApiServer>;
  close(): Promise<void>;
}

export interface ServiceOptions {
  workers?: number;
  generateTimeoutMs?: number;
  prefix?: string;
  keySource?: KeySource;
  certProfile?: CertProfile;
  /** CERT_ISSUER=ca: the CA workers sign with. */
  ca?: CertificateAuthority;
  /** Turns the /admin/queues dashboard on. */
  adminPassword?: string;
  /** Accepted credentials; default: the development credential test/test, account 000000000000. */
  credentials?: Credential[];
  /** CLIENT_CERTIFICATE_LIMIT; default 60 as in production. */
  clientCertificateLimit?: number;
  /** RATE_LIMIT_RPS / RATE_LIMIT_BURST; default off, so tests on a busy machine never throttle each other. */
  rateLimit?: { rps: number; burst: number };
  /** Load shedding (default on). */
  loadShedding?: boolean;
  /** Master keys, current first (default: one fresh random key). */
  masterKeys?: string[];
  /** More API settings (ALLOWED_REGIONS, KEEP_ALIVE_TIMEOUT_MS, METRICS_TOKEN, ADMIN_READ_WRITE, ...). */
  api?: Partial<ApiConfig>;
}

/** The API and `workers` in-process worker(s) on a real Redis, under a fresh key prefix. */
export async function startService(redisUrl: string, opts: ServiceOptions = {}): Promise<TestService> {
  const prefix = opts.prefix ?? `t${randomUUID().slice(0, 8)}`;
  const logs = new LogSink();
  const log = createLogger('debug', 'test', logs);
  const keys = new Keys(prefix);
  const masterKeys = opts.masterKeys ?? [randomBytes(32).toString('base64')];
  const masterKey = masterKeys[0]!;
  const vault = new KeyVault(masterKeys);
  const redis = createRedis(redisUrl, patientOptions(), 'cc-test');
  redis.on('error', () => undefined);
  const workers: RunningWorker[] = [];
  const addWorker = (
    o: { keySource?: KeySource; concurrency?: number; watchdogIntervalMs?: number } = {},
  ) => {
    const w = startWorker({
      redis,
      keys,
      vault,
      keySource: o.keySource ?? opts.keySource ?? directKeySource,
      log,
      concurrency: o.concurrency ?? 2,
      certProfile: opts.certProfile,
      ca: opts.ca,
      ...(o.watchdogIntervalMs !== undefined ? { watchdogIntervalMs: o.watchdogIntervalMs } : {}),
    });
    workers.push(w);
    return w;
  };
  for (let i = 0; i < (opts.workers ?? 1); i++) addWorker();
  const apiConfig: ApiConfig = {
    host: '127.0.0.1',
    port: 0,
    redisUrl,
    redisPrefix: prefix,
    generateTimeoutMs: opts.generateTimeoutMs ?? 20_000,
    defaultAccountId: '000000000000',
    defaultRegion: 'us-east-1',
    nodeEnv: 'test',
    credentialsFile: undefined,
    clientCertificateLimit: opts.clientCertificateLimit ?? 60,
    rateLimitRps: opts.rateLimit?.rps ?? 0,
    rateLimitBurst: opts.rateLimit?.burst ?? 40,
    adminPassword: opts.adminPassword,
    ...opts.api,
  };
  const apiOptions = {
    credentials: opts.credentials ?? [{ ...DEV_CREDENTIAL, allow: [...DEV_CREDENTIAL.allow] }],
    loadShedding: opts.loadShedding,
    ca: opts.ca,
  };
  const api = await startApi(apiConfig, log, apiOptions);
  const extraApis: ApiServer[] = [];
  const addApi = async () => {
    const a = await startApi(apiConfig, log, apiOptions);
    extraApis.push(a);
    return a;
  };
  return {
    api,
    workers,
    redis,
    keys,
    store: new ClientCertificateStore(redis, keys),
    vault,
    masterKey,
    logs,
    log,
    addWorker,
    addApi,
    async close() {
      await Promise.all([api, ...extraApis].map((a) => a.close(1000)));
      await Promise.all(workers.map((w) => w.close(1000)));
      redis.disconnect();
    },
  };
}
