/**
 * The order of work in the generation queue: who is served next when a worker slot frees.
 * docs/scheduling.md explains the design; the short of it:
 *
 * - Every job gets a BullMQ priority (lower first; FIFO within one value). BullMQ serves jobs
 *   without a priority before all others, so the only such jobs are those a dead worker left
 *   behind (BullMQ puts stalled jobs back on its plain wait list): a handful, run at once.
 * - **Interactive** work (a caller waits) has priorities 1 … {@link BULK_BASE} − 1, **bulk** work
 *   {@link BULK_BASE} … {@link MAX_PRIORITY}: a bulk job runs only when no interactive job waits, and
 *   it runs whenever none does (work-conserving; one queue, one set of workers).
 * - Among interactive jobs, **fair queuing by account** (start-time fair queuing with the account's
 *   backlog as its virtual finish time): a new job of account A gets priority `V + n(A)`, where
 *   `n(A)` is the number of A's interactive jobs waiting or running, across all regions, and `V` the
 *   lowest priority still waiting (1 when none waits). An account with nothing in flight goes to the
 *   front (behind at most one job of each busy account); an account with 12 in flight gets the 12th
 *   place from the front; several busy accounts are served in turn, each in proportion to what it
 *   asks until it asks for more than its share. `V` rises as work is served and returns to 1 whenever
 *   the interactive backlog empties.
 * - Among bulk jobs, **fair queuing by batch**: a batch's jobs take consecutive positions from
 *   `max(Vb, where the batch left off)`, `Vb` being the lowest bulk position waiting, so batches
 *   running at once alternate job by job and a new batch starts level with the others.
 *
 * State: per account a sorted set of its interactive jobs scored by deadline (they prune themselves:
 * a job nobody finishes stops counting at its deadline, when the API has given up on it); per batch
 * its next position. All in the queue's hash slot, so each step is one Lua script (shared/lua/sched-*.lua)
 * on Redis Cluster too.
 */
import { withScripts, type Scripted } from './lua/index.js';
import type { RedisClient } from './redis.js';
import { QUEUE_NAME } from './jobs.js';
import type { Keys, Tenant } from './keys.js';

/** `interactive`: a caller waits for the job (the API); `bulk`: `npm run bulk` (the door's `Work['class']`). */
export type WorkClass = 'interactive' | 'bulk';

/** BullMQ's highest priority (2²¹). */
export const MAX_PRIORITY = 2_097_152;
/** The first bulk priority; every interactive priority is lower. */
export const BULK_BASE = 1_048_576;

/** The class of a job from its BullMQ priority. */
export function classOf(priority: number | undefined): WorkClass {
  return (priority ?? 0) >= BULK_BASE ? 'bulk' : 'interactive';
}

/** Jobs waiting, by class. */
export interface Backlog {
  interactive: number;
  bulk: number;
  /** Jobs a dead worker left behind, put back at the head of the queue by BullMQ (any class). */
  requeued: number;
}

/** What the load shedder needs to judge a Generate of one account. */
export interface WorkAhead {
  /** Jobs that would run before this account's next interactive job. */
  ahead: number;
  /** Jobs running now (all classes): while jobs wait, the number of busy worker slots. */
  active: number;
  /** The account's own interactive jobs waiting or running. */
  pending: number;
}

/** The scheduler's state in Redis: one per Redis client and key prefix. */
export class Scheduler {
  private readonly redis: Scripted;

  constructor(
    redis: RedisClient,
    private readonly keys: Keys,
    private readonly queueName: string = QUEUE_NAME,
  ) {
    this.redis = withScripts(redis);
  }

  /** The account's script call (shared/lua/sched-interactive.lua). */
  private account(accountId: string, ...args: (string | number)[]): Promise<unknown> {
    return this.redis.ccSchedInteractive(
      this.keys.schedulerAccount(accountId),
      this.q('prioritized'),
      this.q('wait'),
      this.q('active'),
      ...args,
    );
  }

  private q(part: 'prioritized' | 'wait' | 'active'): string {
    return this.keys.queueList(part, this.queueName);
  }

  /**
   * The priority of a new interactive job of `t`'s account, counted as the account's until it
   * finishes ({@link finished}) or `deadline` passes, and how many of the account's interactive jobs
   * were waiting or running before it (all regions). Atomic: concurrent Generates of one account get
   * consecutive places.
   */
  async interactive(
    t: Tenant,
    jobId: string,
    deadline: number,
  ): Promise<{ priority: number; inFlight: number }> {
    const [priority, inFlight] = (await this.account(
      t.accountId,
      'place',
      BULK_BASE,
      jobId,
      Math.round(deadline),
    )) as number[];
    return { priority: Number(priority), inFlight: Number(inFlight) };
  }

  /** Priorities for the next `count` jobs of bulk batch `batchId`, in order. */
  async bulk(batchId: string, count: number, ttlMs: number): Promise<number[]> {
    if (count <= 0) return [];
    const first = Number(
      await this.redis.ccSchedBulk(
        this.keys.schedulerBatch(batchId),
        this.q('prioritized'),
        count,
        Math.max(1000, Math.round(ttlMs)),
        BULK_BASE,
        MAX_PRIORITY,
      ),
    );
    return Array.from({ length: count }, (_, i) => Math.min(MAX_PRIORITY, first + i));
  }

  /** The work that would run before the account's next interactive job. */
  async ahead(accountId: string): Promise<WorkAhead> {
    const [ahead, active, pending] = (await this.account(accountId, 'ahead', BULK_BASE)) as number[];
    return { ahead: Number(ahead), active: Number(active), pending: Number(pending) };
  }

  /** Jobs waiting, by class. */
  async backlog(): Promise<Backlog> {
    const [interactive, bulk, requeued] = (await this.redis.ccSchedBacklog(
      this.q('prioritized'),
      this.q('wait'),
      BULK_BASE,
    )) as unknown as number[];
    return { interactive: Number(interactive), bulk: Number(bulk), requeued: Number(requeued) };
  }

  /** An interactive job is over (finished for good, or never enqueued): it no longer counts. */
  async finished(accountId: string, jobId: string): Promise<void> {
    await this.redis.zrem(this.keys.schedulerAccount(accountId), jobId);
  }

  /**
   * {@link finished} as one more command of a transaction `m` (on a client of the queue's hash slot):
   * the worker sends it with the job's metrics, one round trip for both.
   */
  finishedIn(m: { zrem(key: string, member: string): unknown }, accountId: string, jobId: string): void {
    m.zrem(this.keys.schedulerAccount(accountId), jobId);
  }
}
