/**
 * The one door into the generation queue. Everything that puts work in, and every view of the queue a
 * process keeps (the API's counts and dashboard, the bulk CLI's job states, the worker's watchdog),
 * comes from here, so that one rule decides the order of work.
 *
 * Contract:
 * - {@link createQueue} is the only place a `Queue` is created, with the one set of job options
 *   (`DEFAULT_JOB_OPTIONS`); {@link createQueueEvents} the only place its event stream is opened.
 * - {@link enqueue} (one job: a Generate a caller waits for) and {@link enqueueMany} (many jobs: a
 *   bulk batch) are the only ways in; nothing else calls `queue.add` or `queue.addBulk`.
 * - Every call says whose work it is and what kind ({@link Work}): the tenant (account and region)
 *   and the class, `interactive` (the API: a caller is waiting) or `bulk` (`npm run bulk`, with its
 *   batch id). Every job of one call belongs to that tenant. A scheduler (fair ordering between
 *   classes and accounts) lives behind these two functions; callers never order work themselves.
 * - A job's id derives from its certificate id (`generateJobId`), so enqueueing the same job twice is
 *   a no-op; the job data is the contract in `jobs.ts` and never holds a private key.
 * - Resolves once the jobs are in Redis, so a waiter that listens on {@link createQueueEvents} before
 *   the call cannot miss their end; rejects when Redis refuses them.
 */
import { Queue, QueueEvents } from 'bullmq';
import {
  DEFAULT_JOB_OPTIONS,
  EVENTS_STREAM_MAX_LEN,
  QUEUE_NAME,
  type GenerateData,
  type GenerateReturn,
} from './jobs.js';
import { Keys, type Tenant } from './keys.js';
import { QUEUE_EVENTS_BLOCK_MS, type RedisClient } from './redis.js';
import { Scheduler } from './scheduler.js';

/** The generation queue as BullMQ sees it: read it (counts, states, jobs) but enqueue only through this module. */
export type GenerationQueue = Queue<GenerateData, GenerateReturn>;

/** One `generate` job: its data and its derived id (built by `generateJob` in issuance.ts). */
export interface GenerateJob {
  name: 'generate';
  data: GenerateData;
  opts: { jobId: string };
}

/** Whose work a call enqueues, and what kind: what a scheduler orders by. */
export type Work =
  { tenant: Tenant; class: 'interactive' } | { tenant: Tenant; class: 'bulk'; batchId: string };

/** `interactive`: a caller waits for the job (the API); `bulk`: `npm run bulk` and any later batch path. */
export type WorkClass = Work['class'];

/** The generation queue on `connection`, with the one set of job options. */
export function createQueue(
  connection: RedisClient,
  keys: Keys,
  onError: (err: Error) => void = () => undefined,
): GenerationQueue {
  const queue = new Queue<GenerateData, GenerateReturn>(QUEUE_NAME, {
    connection,
    prefix: keys.queuePrefix,
    defaultJobOptions: DEFAULT_JOB_OPTIONS,
    streams: { events: { maxLen: EVENTS_STREAM_MAX_LEN } },
  });
  queue.on('error', onError);
  schedulers.set(queue, new Scheduler(connection, keys, QUEUE_NAME));
  return queue;
}

/**
 * The queue's event stream, on a connection of its own (it blocks). Waiters come and go with the jobs
 * in flight, so listeners are not capped.
 */
export function createQueueEvents(
  connection: RedisClient,
  keys: Keys,
  onError: (err: Error) => void = () => undefined,
): QueueEvents {
  const events = new QueueEvents(QUEUE_NAME, {
    connection,
    prefix: keys.queuePrefix,
    // Blocks for less than the socket timeout (shared/redis.ts), so a silent socket means a dead one.
    blockingTimeout: QUEUE_EVENTS_BLOCK_MS,
  });
  events.on('error', onError);
  events.setMaxListeners(0);
  return events;
}

const schedulers = new WeakMap<GenerationQueue, Scheduler>();

/** The scheduler on the queue's own connection and key prefix. */
function schedulerOf(queue: GenerationQueue): Scheduler {
  let s = schedulers.get(queue);
  if (!s) {
    // A queue made elsewhere (tests): its connection option is the ioredis client it was given, and
    // its prefix Keys.queuePrefix, `{prefix}`.
    const connection = queue.opts.connection as unknown as RedisClient;
    if (typeof connection?.defineCommand !== 'function') {
      throw new Error('enqueue: the queue must come from createQueue (shared/queue.ts)');
    }
    const prefix = (queue.opts.prefix ?? '').replace(/^\{(.*)\}$/, '$1');
    s = new Scheduler(connection, new Keys(prefix), queue.name);
    schedulers.set(queue, s);
  }
  return s;
}

/**
 * Enqueues one job for `work` (a Generate a caller waits for), at the place the scheduler gives it
 * (shared/scheduler.ts): interactive work before bulk, accounts in turn.
 */
export async function enqueue(queue: GenerationQueue, work: Work, job: GenerateJob): Promise<void> {
  if (work.class === 'bulk') return enqueueMany(queue, work, [job]);
  const scheduler = schedulerOf(queue);
  const { accountId } = work.tenant;
  const { priority, inFlight } = await scheduler.interactive(work.tenant, job.opts.jobId, job.data.deadline);
  try {
    // inFlight: the worker's key pool keeps its last keys for accounts with little in flight.
    await queue.add(job.name, { ...job.data, inFlight }, { ...job.opts, priority });
  } catch (err) {
    await scheduler.finished(accountId, job.opts.jobId).catch(() => undefined);
    throw err;
  }
}

/**
 * Enqueues many jobs for `work` (a bulk batch) in one round trip, at the batch's next places in the
 * bulk order (shared/scheduler.ts): after every interactive job, alternating with other batches.
 */
export async function enqueueMany(queue: GenerationQueue, work: Work, jobs: GenerateJob[]): Promise<void> {
  if (jobs.length === 0) return;
  if (work.class === 'interactive') {
    for (const job of jobs) await enqueue(queue, work, job);
    return;
  }
  const scheduler = schedulerOf(queue);
  const ttlMs = Math.max(...jobs.map((j) => j.data.deadline)) - Date.now();
  const priorities = await scheduler.bulk(work.batchId, jobs.length, ttlMs);
  await queue.addBulk(jobs.map((j, i) => ({ ...j, opts: { ...j.opts, priority: priorities[i]! } })));
}
