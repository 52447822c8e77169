import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { startApi, type ApiServer } from '../../api/server.js';
import type { CertProfile } from '../../shared/config.js';
import { KeyVault } from '../../shared/crypto/key-vault.js';
import { Keys } from '../../shared/keys.js';
import { createLogger, type Logger } from '../../shared/logger.js';
import { createRedis, patientOptions, type RedisClient } from '../../shared/redis.js';
import { directKeySource, type KeySource } from '../../worker/key-source.js';
import { startWorker, type RunningWorker } from '../../worker/worker.js';

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
  vault: KeyVault;
  masterKey: string;
  logs: LogSink;
  log: Logger;
  addWorker(opts?: {
    keySource?: KeySource;
    concurrency?: number;
    watchdogIntervalMs?: number;
  }): RunningWorker;
  close(): Promise<void>;
}

/** The API and `workers` in-process worker(s) on a real Redis, under a fresh key prefix. */
export async function startService(
  redisUrl: string,
  opts: {
    workers?: number;
    generateTimeoutMs?: number;
    prefix?: string;
    keySource?: KeySource;
    certProfile?: CertProfile;
  } = {},
): Promise<TestService> {
  const prefix = opts.prefix ?? `t${randomUUID().slice(0, 8)}`;
  const logs = new LogSink();
  const log = createLogger('debug', 'test', logs);
  const keys = new Keys(prefix);
  const masterKey = randomBytes(32).toString('base64');
  const vault = new KeyVault([masterKey]);
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
      ...(o.watchdogIntervalMs !== undefined ? { watchdogIntervalMs: o.watchdogIntervalMs } : {}),
    });
    workers.push(w);
    return w;
  };
  for (let i = 0; i < (opts.workers ?? 1); i++) addWorker();
  const api = await startApi(
    {
      host: '127.0.0.1',
      port: 0,
      redisUrl,
      redisPrefix: prefix,
      generateTimeoutMs: opts.generateTimeoutMs ?? 20_000,
      defaultAccountId: '000000000000',
      defaultRegion: 'us-east-1',
    },
    log,
  );
  return {
    api,
    workers,
    redis,
    keys,
    vault,
    masterKey,
    logs,
    log,
    addWorker,
    async close() {
      await api.close(1000);
      await Promise.all(workers.map((w) => w.close(1000)));
      redis.disconnect();
    },
  };
}
