import { randomUUID } from 'node:crypto';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { ClientCertificateStore } from '../shared/client-certificate.store.js';
import type { CertProfile } from '../shared/config.js';
import type { KeyVault } from '../shared/crypto/key-vault.js';
import { QUEUE_NAME, type GenerateData, type GenerateResult } from '../shared/jobs.js';
import type { Keys } from '../shared/keys.js';
import { HEARTBEAT_INTERVAL_MS, HEARTBEAT_TTL_MS } from '../shared/heartbeat.js';
import type { Logger } from '../shared/logger.js';
import { createGenerateProcessor } from './generate.processor.js';
import type { KeySource } from './key-source.js';

export interface WorkerDeps {
  /** Patient connection (maxRetriesPerRequest: null) for the store and heartbeats. */
  redis: Redis;
  keys: Keys;
  vault: KeyVault;
  keySource: KeySource;
  log: Logger;
  concurrency: number;
  /** Shape of the certificates issued (CERT_PROFILE); default `aws`. */
  certProfile?: CertProfile;
  /** Stall detection: how long a job's lock lives without renewal. */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
}

export interface RunningWorker {
  id: string;
  worker: Worker<GenerateData, GenerateResult>;
  /** Stops taking jobs, waits for active ones (at most `timeoutMs`), then releases resources. */
  close(timeoutMs?: number): Promise<void>;
}

/** Starts one BullMQ worker on the generation queue, with a heartbeat the API's /health counts. */
export function startWorker(deps: WorkerDeps): RunningWorker {
  const id = `worker-${process.pid}-${randomUUID().slice(0, 8)}`;
  const log = deps.log.child({ component: 'worker', workerId: id });
  const store = new ClientCertificateStore(deps.redis, deps.keys);
  const processor = createGenerateProcessor({
    store,
    vault: deps.vault,
    keys: deps.keySource,
    log,
    profile: deps.certProfile,
  });
  const started = new Map<string, number>();

  const connection = deps.redis.duplicate({ connectionName: `${id}-bullmq` });
  connection.on('error', (err) => log.debug({ err }, 'redis connection error'));
  const worker = new Worker<GenerateData, GenerateResult>(QUEUE_NAME, processor, {
    connection,
    prefix: deps.keys.queuePrefix,
    concurrency: deps.concurrency,
    lockDuration: deps.lockDurationMs ?? 15_000,
    stalledInterval: deps.stalledIntervalMs ?? 5_000,
    maxStalledCount: 2,
    name: id,
  });
  worker.on('active', (job) => started.set(job.id!, Date.now()));
  worker.on('completed', (job, result) => {
    const durationMs = Date.now() - (started.get(job.id!) ?? Date.now());
    started.delete(job.id!);
    log.info(
      {
        jobId: job.id,
        clientCertificateId: job.data.clientCertificateId,
        attempt: job.attemptsMade,
        durationMs,
        status: result.status,
      },
      'generation job completed',
    );
  });
  worker.on('failed', (job, err) => {
    const durationMs = job ? Date.now() - (started.get(job.id!) ?? Date.now()) : undefined;
    if (job) started.delete(job.id!);
    log.error(
      {
        jobId: job?.id,
        clientCertificateId: job?.data.clientCertificateId,
        attempt: job?.attemptsMade,
        durationMs,
        err,
      },
      'generation job failed',
    );
  });
  worker.on('error', (err) => log.error({ err }, 'worker error'));

  const beat = () =>
    deps.redis
      .multi()
      .zadd(deps.keys.workers, Date.now(), id)
      .zremrangebyscore(deps.keys.workers, '-inf', Date.now() - HEARTBEAT_TTL_MS * 4)
      .exec()
      .catch((err: unknown) => log.warn({ err }, 'heartbeat failed'));
  void beat();
  const timer = setInterval(beat, HEARTBEAT_INTERVAL_MS);
  timer.unref();

  let closing: Promise<void> | undefined;
  return {
    id,
    worker,
    close(timeoutMs = 20_000) {
      closing ??= (async () => {
        clearInterval(timer);
        const graceful = worker.close();
        let timedOut = false;
        await Promise.race([
          graceful,
          new Promise<void>((r) => setTimeout(() => ((timedOut = true), r()), timeoutMs).unref()),
        ]);
        if (timedOut) {
          log.warn({ timeoutMs }, 'active jobs did not finish in time: forcing close (they will be re-run)');
          await worker.close(true);
        }
        await deps.redis.zrem(deps.keys.workers, id).catch(() => undefined);
        connection.disconnect();
      })();
      return closing;
    },
  };
}
