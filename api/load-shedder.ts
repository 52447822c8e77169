import type { QueueEvents } from 'bullmq';
import { TooManyRequestsError } from '../shared/errors.js';
import type { Scheduler } from '../shared/scheduler.js';

/** Job durations older than this no longer describe the workers. */
const SAMPLE_MAX_AGE_MS = 10 * 60_000;
const EWMA_WEIGHT = 0.2;
const MAX_TRACKED = 10_000;

/**
 * Counts the shedder reads for a Generate of `accountId`: `waiting` is the work that would run before
 * it, `active` the jobs running. The scheduler's in production, anything in unit tests.
 */
export type BacklogCounts = (accountId?: string) => Promise<{ waiting: number; active: number }>;

/**
 * Refuses a Generate at once (429 TooManyRequestsException) when the work ahead of it cannot finish
 * within the API's wait, instead of queueing work that would time out into a 503 anyway.
 *
 * Model: while jobs wait, every worker slot is busy, so `active` is the number of slots; a new job
 * finishes after `ceil((waiting + 1) / active)` rounds of the average job duration, which is measured
 * from the queue's own events (every API replica sees every job). With no measurement yet, or nothing
 * waiting, nothing is shed; with no worker at all the request path's timeout (503) applies instead.
 *
 * `waiting` is what the scheduler would put ahead of this account's job (shared/scheduler.ts): only
 * interactive work, never bulk, and only the jobs of other accounts up to this account's place. So
 * a bulk backlog never sheds a Generate, and when interactive work piles up the account with the
 * most in flight, whose place is furthest back, is shed first; a polite account is not.
 */
export class LoadShedder {
  private avgMs: number | undefined;
  private sampledAt = 0;
  private readonly activeSince = new Map<string, number>();

  constructor(
    private readonly counts: BacklogCounts,
    /** The API's wait for a job, ms (GENERATE_TIMEOUT_MS). */
    private readonly timeoutMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Feeds job durations from the queue's event stream. */
  static observe(queueEvents: QueueEvents, shedder: LoadShedder): void {
    queueEvents.on('active', ({ jobId }) => shedder.jobStarted(jobId));
    queueEvents.on('completed', ({ jobId }) => shedder.jobFinished(jobId));
    queueEvents.on('failed', ({ jobId }) => shedder.jobFinished(jobId));
  }

  /** The work ahead of an account's next Generate, as the scheduler orders it. */
  static schedulerCounts(scheduler: Pick<Scheduler, 'ahead'>): BacklogCounts {
    return async (accountId) => {
      const w = await scheduler.ahead(accountId ?? '');
      return { waiting: w.ahead, active: w.active };
    };
  }

  jobStarted(jobId: string): void {
    if (this.activeSince.size >= MAX_TRACKED) this.activeSince.clear(); // lost events: start over
    this.activeSince.set(jobId, this.now());
  }

  jobFinished(jobId: string): void {
    const since = this.activeSince.get(jobId);
    if (since === undefined) return;
    this.activeSince.delete(jobId);
    this.sample(this.now() - since);
  }

  /** Records one job's duration, ms. */
  sample(durationMs: number): void {
    this.avgMs =
      this.avgMs === undefined ? durationMs : this.avgMs * (1 - EWMA_WEIGHT) + durationMs * EWMA_WEIGHT;
    this.sampledAt = this.now();
  }

  /** Expected ms until a job enqueued now finishes, or undefined when it cannot be estimated. */
  async estimateMs(accountId?: string): Promise<number | undefined> {
    if (this.avgMs === undefined || this.now() - this.sampledAt > SAMPLE_MAX_AGE_MS) return undefined;
    const { waiting, active } = await this.counts(accountId);
    if (waiting === 0 || active === 0) return undefined;
    return Math.ceil((waiting + 1) / active) * this.avgMs;
  }

  /** @throws TooManyRequestsError when the backlog cannot finish within the wait. */
  async admit(accountId?: string): Promise<void> {
    const est = await this.estimateMs(accountId);
    if (est === undefined || est <= this.timeoutMs) return;
    throw new TooManyRequestsError(
      `Too many certificates are being generated: the queued work would take about ${Math.ceil(est / 1000)} s, longer than this service waits (${Math.round(this.timeoutMs / 1000)} s). Retry later.`,
      Math.max(1, Math.ceil((est - this.timeoutMs) / 1000)),
    );
  }
}
