import { Worker, type Job } from 'bullmq';
import {
  QUEUE_NAME,
  generateReturn,
  type GenerateData,
  type GenerateResult,
  type GenerateReturn,
} from '../shared/jobs.js';
import type { Keys } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import type { AlsoInMulti, WorkerMetrics } from '../shared/metrics.js';
import { duplicateRedis, WORKER_BLOCK_S, type RedisClient } from '../shared/redis.js';
import { Scheduler, classOf } from '../shared/scheduler.js';
import { TIMED_OUT, withTimeout } from '../shared/timeout.js';

export interface JobRunnerOptions {
  /** This worker's id (BullMQ's worker name, connection names). */
  id: string;
  /** The connection each BullMQ worker generation duplicates. */
  redis: RedisClient;
  keys: Keys;
  log: Logger;
  concurrency: number;
  /** Stall detection: how long a job's lock lives without renewal, ms (default 10 000). */
  lockDurationMs?: number | undefined;
  /** How often to look for stalled jobs, ms (default 5000). */
  stalledIntervalMs?: number | undefined;
  metrics: WorkerMetrics;
  /** Runs one generate job. */
  /** Runs one generate job: one result per certificate it issues. */
  generate: (job: Job<GenerateData>) => Promise<GenerateResult[]>;
}

/**
 * This process's BullMQ worker on the generation queue, with its events logged and counted, and
 * replaceable as a whole (fresh connections) when the watchdog finds it stuck.
 */
export class JobRunner {
  /**
   * Jobs running now, counted by the processor itself: BullMQ reports a job whose lock was lost
   * (partition, stall) with neither 'completed' nor 'failed', only 'error', so counting by those
   * events would leave the job running here forever and hide this worker's idleness from the watchdog.
   */
  active = 0;
  /** When a job last started or finished here (or the worker was created or replaced), epoch ms. */
  lastActivity = Date.now();
  /** How many times the BullMQ worker has been replaced. */
  restarts = 0;
  private generation = 0;
  // When each run began, for the completion log; keyed by the Job object BullMQ hands to the
  // processor and then to 'completed'/'failed', so an entry never outlives its job.
  private readonly started = new WeakMap<Job, number>();
  private current: { worker: Worker<GenerateData, GenerateReturn>; connection: RedisClient };

  private readonly scheduler: Scheduler;

  constructor(private readonly o: JobRunnerOptions) {
    this.scheduler = new Scheduler(o.redis, o.keys);
    this.current = this.create();
  }

  /**
   * A job is over for good: its figures (the certificates it created and how long each took, or else
   * its wait in the queue) and, for an interactive job, the end of its count in its account's share
   * (shared/scheduler.ts) go to Redis in one transaction, one round trip per job.
   */
  private over(job: Job<GenerateData>, issued?: { ms: number; count: number }): void {
    const cls = classOf(job.priority);
    const waitedMs = queueWaitMs(job);
    const jobId = job.id;
    const also: AlsoInMulti | undefined =
      cls === 'interactive' && jobId
        ? (m) => this.scheduler.finishedIn(m, job.data.accountId, jobId)
        : undefined;
    if (issued && issued.count > 0) {
      void this.o.metrics.issued(issued.ms / issued.count, { cls, ms: waitedMs }, also, issued.count);
    } else void this.o.metrics.waited(cls, waitedMs, also);
  }

  /** The current BullMQ worker. */
  get worker(): Worker<GenerateData, GenerateReturn> {
    return this.current.worker;
  }

  private readonly processor = async (job: Job<GenerateData, GenerateReturn>): Promise<GenerateReturn> => {
    this.active += 1;
    this.lastActivity = Date.now();
    this.started.set(job, this.lastActivity);
    try {
      // The queue keeps only the outcome: the certificate stays in the store alone (shared/jobs.ts).
      return generateReturn(await this.o.generate(job));
    } finally {
      this.active -= 1;
      this.lastActivity = Date.now();
    }
  };

  /** Replaces a stuck BullMQ worker by a new one on fresh connections. */
  replace(reason: string): void {
    const old = this.current;
    this.restarts += 1;
    this.o.log.warn(
      { reason, restarts: this.restarts },
      'watchdog: worker stopped taking jobs; replacing it',
    );
    this.current = this.create();
    this.lastActivity = Date.now();
    // Force: it is wedged, so waiting for it could take forever; it runs no job (or its main loop
    // is gone), and a job it still held would be re-run through stall detection.
    void withTimeout(old.worker.close(true), 5000)
      .catch(() => undefined)
      .finally(() => old.connection.disconnect());
  }

  /** Stops taking jobs and waits for active ones, at most `timeoutMs`; then leaves them. */
  async close(timeoutMs: number): Promise<void> {
    // close() stops fetching, then waits for active jobs; it has no timeout of its own.
    if ((await withTimeout(this.current.worker.close(), timeoutMs)) === TIMED_OUT) {
      // A second close(true) would only return the pending close: dropping the connection is
      // what stops the jobs' lock renewal, so they stall and another worker re-runs them.
      this.o.log.warn(
        { timeoutMs, active: this.active },
        'active jobs did not finish in time: leaving them (their locks expire and they are re-run)',
      );
    }
  }

  /** Drops the current worker's connection. */
  disconnect(): void {
    this.current.connection.disconnect();
  }

  private create() {
    const o = this.o;
    const log = o.log;
    this.generation += 1;
    const gen = this.generation;
    // Each generation gets fresh connections: a wedged socket must not be inherited.
    const connection = duplicateRedis(o.redis, `${o.id}-bullmq-${gen}`);
    connection.on('error', (err) => log.debug({ err }, 'redis connection error'));
    const worker = new Worker<GenerateData, GenerateReturn>(QUEUE_NAME, this.processor, {
      connection,
      prefix: o.keys.queuePrefix,
      concurrency: o.concurrency,
      lockDuration: o.lockDurationMs ?? 10_000,
      stalledInterval: o.stalledIntervalMs ?? 5000,
      // A job whose worker died twice is given up rather than re-run forever; its caller has long gone.
      maxStalledCount: 2,
      // Blocks for less than the socket timeout (shared/redis.ts), so a silent socket means a dead one.
      drainDelay: WORKER_BLOCK_S,
      // After a connection error BullMQ waits this long before fetching again (default 15 s): short,
      // so a worker resumes within a second or two of Redis coming back.
      runRetryDelay: 500,
      name: o.id,
    });
    worker.on('active', (job) => {
      log.debug(
        { jobId: job.id, clientCertificateId: job.data.clientCertificateId },
        'generation job started',
      );
    });
    worker.on('completed', (job, result) => {
      const durationMs = Date.now() - (this.started.get(job) ?? Date.now());
      const count = result.outcomes
        ? result.outcomes.filter((s) => s === 'created').length
        : Number(result.status === 'created');
      this.over(job, { ms: durationMs, count });
      log.info(
        {
          jobId: job.id,
          clientCertificateId: job.data.clientCertificateId,
          attempt: job.attemptsMade,
          durationMs,
          status: result.status,
          ...(result.outcomes ? { certificates: result.outcomes.length, created: count } : {}),
        },
        'generation job completed',
      );
    });
    worker.on('failed', (job, err) => {
      const durationMs = job ? Date.now() - (this.started.get(job) ?? Date.now()) : undefined;
      // Only the last attempt counts as a failure; earlier ones are retried.
      if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) {
        void o.metrics.failed();
        this.over(job);
      }
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
  }
}

/** How long a job waited in the queue before its (latest) start, ms. */
function queueWaitMs(job: Job): number {
  return Math.max(0, (job.processedOn ?? Date.now()) - job.timestamp);
}
