import { randomUUID } from 'node:crypto';
import type { Worker } from 'bullmq';
import { Cleanup } from '../shared/cleanup.js';
import { ClientCertificateStore } from '../shared/client-certificate-store.js';
import type { CertProfile } from '../shared/config.js';
import type { KeyVault } from '../shared/crypto/key-vault.js';
import type { GenerateData, GenerateReturn } from '../shared/jobs.js';
import type { Keys } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import type { RedisClient } from '../shared/redis.js';
import { WorkerMetrics } from '../shared/metrics.js';
import { RevocationStore } from '../shared/revocation-store.js';
import { createGenerateProcessor } from './generate-processor.js';
import type { CertificateAuthority } from '../shared/certificate-authority.js';
import { startHeartbeat } from './heartbeat.js';
import { JobRunner } from './job-runner.js';
import type { KeySource } from './key-source.js';
import { startWatchdog } from './watchdog.js';

export interface WorkerDeps {
  /** Patient connection (maxRetriesPerRequest: null) for the store and heartbeats; standalone or Cluster. */
  redis: RedisClient;
  keys: Keys;
  vault: KeyVault;
  keySource: KeySource;
  log: Logger;
  concurrency: number;
  /** Shape of the certificates issued (CERT_PROFILE); default `aws`. */
  certProfile?: CertProfile;
  /** CERT_ISSUER=ca: the CA that signs every certificate; undefined: self-signed. */
  ca?: CertificateAuthority | undefined;
  /** Stall detection: how long a job's lock lives without renewal, ms (default 10 000). */
  lockDurationMs?: number;
  /** How often to look for stalled jobs, ms (default 5000). */
  stalledIntervalMs?: number;
  /**
   * Keys ready in this process's key pool, if it has one: reported with every heartbeat so the API's
   * /metrics shows `key_pool_ready_keys` for all workers.
   */
  keyPoolLevel?: () => number;
  /** How often the watchdog checks that the BullMQ worker still takes jobs, ms; 0 disables (default 5000). */
  watchdogIntervalMs?: number;
}

export interface RunningWorker {
  id: string;
  /** The current BullMQ worker; the watchdog replaces it when it stops taking jobs. */
  readonly worker: Worker<GenerateData, GenerateReturn>;
  /** How many times the watchdog has replaced the BullMQ worker. */
  readonly restarts: number;
  /** Jobs this process is running now. */
  readonly active: number;
  /** Stops taking jobs, waits for active ones (at most `timeoutMs`), then releases resources. */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * Starts one BullMQ worker on the generation queue, with a heartbeat the API's /health counts and a
 * watchdog that replaces the BullMQ worker (and its connections) when it stops taking jobs.
 */
export function startWorker(deps: WorkerDeps): RunningWorker {
  const id = `worker-${process.pid}-${randomUUID().slice(0, 8)}`;
  const log = deps.log.child({ component: 'worker', workerId: id });
  const { redis, keys } = deps;
  const metrics = new WorkerMetrics(redis, keys, (err) => log.debug({ err }, 'metrics update failed'));
  const jobs = new JobRunner({
    id,
    redis,
    keys,
    log,
    concurrency: deps.concurrency,
    lockDurationMs: deps.lockDurationMs,
    stalledIntervalMs: deps.stalledIntervalMs,
    metrics,
    generate: createGenerateProcessor({
      store: new ClientCertificateStore(redis, keys),
      vault: deps.vault,
      keySource: deps.keySource,
      log,
      profile: deps.certProfile,
      ca: deps.ca,
      serials: deps.ca ? new RevocationStore(redis, keys) : undefined,
    }),
  });
  const heartbeat = startHeartbeat({ id, redis, keys, log, metrics, keyPoolLevel: deps.keyPoolLevel });
  const watchdog = startWatchdog({
    id,
    redis,
    keys,
    log,
    intervalMs: deps.watchdogIntervalMs ?? 5000,
    concurrency: deps.concurrency,
    worker: () => ({
      running: jobs.worker.isRunning(),
      active: jobs.active,
      lastActivity: jobs.lastActivity,
    }),
    replace: (reason) => jobs.replace(reason),
  });

  let drainMs = 20_000;
  const cleanup = new Cleanup()
    .add('heartbeat: stop beating', () => heartbeat.stop())
    .add('watchdog: stop ticking', () => watchdog.stop())
    .add('jobs: stop taking, let active ones finish', () => jobs.close(drainMs))
    .add('watchdog: its queue view and connection', () => watchdog.close())
    .add('heartbeat: leave the live workers', () => heartbeat.remove())
    .add('jobs: connection', () => jobs.disconnect());
  return {
    id,
    get worker() {
      return jobs.worker;
    },
    get restarts() {
      return jobs.restarts;
    },
    get active() {
      return jobs.active;
    },
    close(timeoutMs = 20_000) {
      drainMs = timeoutMs;
      return cleanup.run();
    },
  };
}
