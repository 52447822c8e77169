import { randomUUID } from 'node:crypto';
import { Worker, type Job } from 'bullmq';
import { ClientCertificateStore } from '../shared/client-certificate-store.js';
import type { CertProfile } from '../shared/config.js';
import type { KeyVault } from '../shared/crypto/key-vault.js';
import { QUEUE_NAME, generateReturn, type GenerateData, type GenerateReturn } from '../shared/jobs.js';
import type { Keys } from '../shared/keys.js';
import { HEARTBEAT_INTERVAL_MS, HEARTBEAT_TTL_MS } from '../shared/heartbeat.js';
import type { Logger } from '../shared/logger.js';
import { TIMED_OUT, withTimeout } from '../shared/timeout.js';
import { createQueue } from '../shared/queue.js';
import { duplicateRedis, type RedisClient } from '../shared/redis.js';
import { WorkerMetrics } from '../shared/metrics.js';
import { RevocationStore } from '../shared/revocation-store.js';
import { createGenerateProcessor } from './generate-processor.js';
import type { CertificateAuthority } from './certificate-authority.js';
import type { KeySource } from './key-source.js';

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

/** How long the watchdog waits for its probe's answer at most, ms. */
export const WATCHDOG_PROBE_TIMEOUT_MS = 3000;

/** What the watchdog saw at one tick. */
export interface WatchdogSample {
  now: number;
  /** `worker.isRunning()`: false once BullMQ's main loop has ended. */
  running: boolean;
  /** Jobs waiting in the queue, or undefined when Redis did not answer (nothing can be concluded). */
  waiting: number | undefined;
  /** Jobs this worker is running. */
  active: number;
  concurrency: number;
  /** When this worker last started or finished a job (or was created), epoch ms. */
  lastActivity: number;
  /** Since when jobs have been waiting while this worker sat idle with free capacity, if they have. */
  idleSince: number | undefined;
}

/**
 * The watchdog's decision, pure so it can be tested without a stuck worker. A worker is stuck when
 * its main loop has ended, or when jobs have been waiting for at least `graceMs` while it had free
 * capacity and neither started nor finished a job: a healthy idle worker takes a waiting job within
 * milliseconds, so it is not merely slow. (BullMQ issues 648, 2466, 2964, 3185: after a Redis
 * restart workers were seen to stay connected and take nothing.)
 *
 * @returns the reason to replace the worker (or undefined), and the new `idleSince`.
 */
export function watchdogVerdict(
  s: WatchdogSample,
  graceMs: number,
): { stuck?: string; idleSince: number | undefined } {
  if (!s.running) return { stuck: 'main loop has stopped', idleSince: undefined };
  if (s.waiting === undefined) return { idleSince: s.idleSince };
  const starving = s.waiting > 0 && s.active < s.concurrency && s.now - s.lastActivity >= graceMs;
  if (!starving) return { idleSince: undefined };
  const idleSince = s.idleSince ?? s.now;
  if (s.now - idleSince >= graceMs) {
    return { stuck: `${s.waiting} job(s) waiting while idle for ${s.now - s.lastActivity} ms`, idleSince };
  }
  return { idleSince };
}

/**
 * Starts one BullMQ worker on the generation queue, with a heartbeat the API's /health counts and a
 * watchdog that replaces the BullMQ worker (and its connections) when it stops taking jobs.
 */
export function startWorker(deps: WorkerDeps): RunningWorker {
  const id = `worker-${process.pid}-${randomUUID().slice(0, 8)}`;
  const log = deps.log.child({ component: 'worker', workerId: id });
  const store = new ClientCertificateStore(deps.redis, deps.keys);
  const generate = createGenerateProcessor({
    store,
    vault: deps.vault,
    keySource: deps.keySource,
    log,
    profile: deps.certProfile,
    ca: deps.ca,
    serials: deps.ca ? new RevocationStore(deps.redis, deps.keys) : undefined,
  });
  // Jobs running now, counted by the processor itself: BullMQ reports a job whose lock was lost
  // (partition, stall) with neither 'completed' nor 'failed', only 'error', so counting by those
  // events would leave the job running here forever and hide this worker's idleness from the watchdog.
  let active = 0;
  let lastActivity = Date.now();
  // When each run began, for the completion log; keyed by the Job object BullMQ hands to the
  // processor and then to 'completed'/'failed', so an entry never outlives its job.
  const started = new WeakMap<Job, number>();
  const processor = async (job: Job<GenerateData, GenerateReturn>): Promise<GenerateReturn> => {
    active += 1;
    lastActivity = Date.now();
    started.set(job, lastActivity);
    try {
      // The queue keeps only the outcome: the certificate stays in the store alone (shared/jobs.ts).
      return generateReturn(await generate(job));
    } finally {
      active -= 1;
      lastActivity = Date.now();
    }
  };
  const metrics = new WorkerMetrics(deps.redis, deps.keys, (err) =>
    log.debug({ err }, 'metrics update failed'),
  );
  let generation = 0;
  let restarts = 0;

  const create = () => {
    generation += 1;
    const gen = generation;
    // Each generation gets fresh connections: a wedged socket must not be inherited.
    const connection = duplicateRedis(deps.redis, `${id}-bullmq-${gen}`);
    connection.on('error', (err) => log.debug({ err }, 'redis connection error'));
    const worker = new Worker<GenerateData, GenerateReturn>(QUEUE_NAME, processor, {
      connection,
      prefix: deps.keys.queuePrefix,
      concurrency: deps.concurrency,
      lockDuration: deps.lockDurationMs ?? 10_000,
      stalledInterval: deps.stalledIntervalMs ?? 5000,
      // A job whose worker died twice is given up rather than re-run forever; its caller has long gone.
      maxStalledCount: 2,
      name: id,
    });
    worker.on('active', (job) => {
      log.debug(
        { jobId: job.id, clientCertificateId: job.data.clientCertificateId },
        'generation job started',
      );
    });
    worker.on('completed', (job, result) => {
      const durationMs = Date.now() - (started.get(job) ?? Date.now());
      if (result.status === 'created') void metrics.issued(durationMs);
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
      const durationMs = job ? Date.now() - (started.get(job) ?? Date.now()) : undefined;
      // Only the last attempt counts as a failure; earlier ones are retried.
      if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) void metrics.failed();
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
    worker.on('error', (err) => log.error({ err, generation: gen }, 'worker error'));
    worker.on('lockRenewalFailed', (jobIds) =>
      log.warn({ jobIds, generation: gen }, 'job lock lost: another worker may re-run these jobs'),
    );
    worker.on('ready', () => log.info({ generation: gen }, 'worker ready'));
    return { worker, connection };
  };

  let current = create();

  const beat = () => {
    if (deps.keyPoolLevel) void metrics.keyPoolLevel(id, deps.keyPoolLevel());
    return deps.redis
      .multi()
      .zadd(deps.keys.workers, Date.now(), id)
      .zremrangebyscore(deps.keys.workers, '-inf', Date.now() - HEARTBEAT_TTL_MS * 4)
      .exec()
      .catch((err: unknown) => log.warn({ err }, 'heartbeat failed'));
  };
  void beat();
  const heartbeat = setInterval(beat, HEARTBEAT_INTERVAL_MS);
  heartbeat.unref();

  // The watchdog's own view of the queue, on its own connection and judged by its own timed probe:
  // on a connection shared with the worker, a half-open socket would hang the query and leave the
  // watchdog without a verdict for as long as the worker is stuck (minutes, on TCP's retransmissions).
  const watchdogMs = deps.watchdogIntervalMs ?? 5000;
  const probeMs = Math.min(Math.max(1000, watchdogMs), WATCHDOG_PROBE_TIMEOUT_MS);
  const probeRedis = duplicateRedis(deps.redis, `${id}-watchdog`);
  probeRedis.on('error', (err) => log.debug({ err }, 'watchdog redis connection error'));
  const queue = createQueue(probeRedis, deps.keys, (err) => log.debug({ err }, 'watchdog queue error'));
  let unansweredSince: number | undefined;
  let idleSince: number | undefined;
  let ticking = false;
  let closing: Promise<void> | undefined;

  const replace = (reason: string) => {
    const old = current;
    restarts += 1;
    log.warn({ reason, restarts }, 'watchdog: worker stopped taking jobs; replacing it');
    current = create();
    lastActivity = Date.now();
    idleSince = undefined;
    // Force: it is wedged, so waiting for it could take forever; it runs no job (or its main loop
    // is gone), and a job it still held would be re-run through stall detection.
    void withTimeout(old.worker.close(true), 5000)
      .catch(() => undefined)
      .finally(() => old.connection.disconnect());
  };

  const tick = async () => {
    if (ticking || closing) return;
    ticking = true;
    try {
      const running = current.worker.isRunning();
      let waiting: number | undefined;
      if (running) {
        // Bounded: no answer in time, no verdict, and a fresh connection for the next probe.
        const counted = await withTimeout(
          queue.getWaitingCount().catch(() => undefined),
          probeMs,
        );
        waiting = counted === TIMED_OUT ? undefined : counted;
      }
      if (closing) return;
      if (running && waiting === undefined) {
        if (unansweredSince === undefined) {
          unansweredSince = Date.now();
          log.warn({ probeMs }, 'watchdog: no answer from Redis; reconnecting its probe');
        }
        if (probeRedis.status === 'ready') probeRedis.disconnect(true);
      } else if (waiting !== undefined && unansweredSince !== undefined) {
        log.info({ unansweredMs: Date.now() - unansweredSince }, 'watchdog: Redis answers again');
        unansweredSince = undefined;
      }
      const verdict = watchdogVerdict(
        {
          now: Date.now(),
          running,
          waiting,
          active,
          concurrency: deps.concurrency,
          lastActivity,
          idleSince,
        },
        watchdogMs,
      );
      idleSince = verdict.idleSince;
      if (verdict.stuck) replace(verdict.stuck);
    } finally {
      ticking = false;
    }
  };
  const watchdog = watchdogMs > 0 ? setInterval(() => void tick(), watchdogMs) : undefined;
  watchdog?.unref();

  return {
    id,
    get worker() {
      return current.worker;
    },
    get restarts() {
      return restarts;
    },
    get active() {
      return active;
    },
    close(timeoutMs = 20_000) {
      closing ??= (async () => {
        clearInterval(heartbeat);
        void metrics.forget(id);
        if (watchdog) clearInterval(watchdog);
        const { worker, connection } = current;
        // close() stops fetching, then waits for active jobs; it has no timeout of its own.
        const graceful = worker.close();
        if ((await withTimeout(graceful, timeoutMs)) === TIMED_OUT) {
          // A second close(true) would only return the pending close: dropping the connection is
          // what stops the jobs' lock renewal, so they stall and another worker re-runs them.
          log.warn(
            { timeoutMs, active },
            'active jobs did not finish in time: leaving them (their locks expire and they are re-run)',
          );
        }
        await withTimeout(
          queue.close().catch(() => undefined),
          2000,
        );
        probeRedis.disconnect();
        await withTimeout(
          deps.redis.zrem(deps.keys.workers, id).catch(() => undefined),
          2000,
        );
        connection.disconnect();
      })();
      return closing;
    },
  };
}
