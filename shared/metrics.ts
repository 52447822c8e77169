import type { Queue } from 'bullmq';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RedisClient } from './redis.js';
import { HEARTBEAT_TTL_MS } from './heartbeat.js';
import type { Keys } from './keys.js';
import type { Backlog, WorkClass } from './scheduler.js';

const CLASSES: WorkClass[] = ['interactive', 'bulk'];

/*
 * Why worker figures travel through Redis: workers run in other processes (and on other hosts) and
 * have no HTTP server, so Prometheus cannot scrape them. Each worker adds to shared counters in Redis
 * (one HINCRBY pipeline per job, negligible beside a 200 ms key generation) and the API renders them on
 * /metrics. The figures are therefore cluster-wide and survive worker restarts (counters only reset if
 * Redis loses its data); every API replica reports the same totals, so aggregate them with max(), not
 * sum(). HTTP figures stay per API process (prom-client's default), as usual.
 */

/** Upper bounds (seconds) of the generation-duration histogram: around a ~0.2 s RSA-2048 key. */
export const GENERATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Upper bounds (seconds) of the queue-wait histogram: interactive waits are sub-second, bulk ones hours. */
export const WAIT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200];
/** Certificates expiring within this many seconds count as "expiring soon". */
export const EXPIRING_WINDOW_SECONDS = 30 * 24 * 3600;

/** Redis keys of the metrics, in the queue's hash slot. */
function metricKeys(keys: Keys) {
  return {
    counters: `${keys.queuePrefix}:metrics`,
    keyPool: `${keys.queuePrefix}:metrics:keypool`,
  };
}

/**
 * Interactive jobs the workers have finished so far (the queue-wait histogram's count), for the bulk
 * CLI's "yielding" note.
 */
export async function interactiveJobsServed(redis: RedisClient, keys: Keys): Promise<number> {
  return Number((await redis.hget(metricKeys(keys).counters, 'wait_interactive_count')) ?? 0);
}

/** What a worker process records; every method is best-effort and never throws. */
/**
 * More commands for the same MULTI as a job's metrics (keys in the queue's hash slot only, as the
 * counters are): one round trip per finished job instead of two (worker/job-runner.ts).
 */
export type AlsoInMulti = (m: ReturnType<RedisClient['multi']>) => void;

export class WorkerMetrics {
  private readonly k: ReturnType<typeof metricKeys>;

  constructor(
    private readonly redis: RedisClient,
    keys: Keys,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {
    this.k = metricKeys(keys);
  }

  /**
   * `count` certificates (default 1) were created by one job, each taking `durationMs` (a job of
   * several: its time shared out). (Their expiry is indexed by the store itself, which also sees deletes.)
   */
  async issued(
    durationMs: number,
    waited?: { cls: WorkClass; ms: number },
    also?: AlsoInMulti,
    count = 1,
  ): Promise<void> {
    const seconds = durationMs / 1000;
    const bucket = GENERATION_BUCKETS.find((b) => seconds <= b);
    const m = this.redis
      .multi()
      .hincrby(this.k.counters, 'issued', count)
      .hincrby(this.k.counters, 'generation_count', count)
      .hincrbyfloat(this.k.counters, 'generation_sum', seconds * count)
      .hincrby(this.k.counters, `generation_le_${bucket ?? '+Inf'}`, count);
    if (waited) this.addWait(m, waited.cls, waited.ms);
    also?.(m);
    await m.exec().then(undefined, this.onError);
  }

  /**
   * How long a job of class `cls` waited in the queue before a worker started it, for a job that
   * created no certificate (an issued one reports it through {@link issued}).
   */
  async waited(cls: WorkClass, ms: number, also?: AlsoInMulti): Promise<void> {
    const m = this.redis.multi();
    this.addWait(m, cls, ms);
    also?.(m);
    await m.exec().then(undefined, this.onError);
  }

  private addWait(m: ReturnType<RedisClient['multi']>, cls: WorkClass, ms: number): void {
    const seconds = Math.max(0, ms) / 1000;
    const bucket = WAIT_BUCKETS.find((b) => seconds <= b);
    m.hincrby(this.k.counters, `wait_${cls}_count`, 1)
      .hincrbyfloat(this.k.counters, `wait_${cls}_sum`, seconds)
      .hincrby(this.k.counters, `wait_${cls}_le_${bucket ?? '+Inf'}`, 1);
  }

  /** A generation job failed for good (its last attempt). */
  async failed(): Promise<void> {
    await this.redis.hincrby(this.k.counters, 'failed', 1).then(undefined, this.onError);
  }

  /**
   * The hook for a key pool: the number of keys ready in this worker process. Call it whenever it is
   * convenient (the worker calls it on every heartbeat); the API sums the levels of live workers.
   */
  async keyPoolLevel(workerId: string, ready: number): Promise<void> {
    await this.redis.hset(this.k.keyPool, workerId, `${ready}:${Date.now()}`).then(undefined, this.onError);
  }

  /** Forgets a stopping worker's key pool level. */
  async forget(workerId: string): Promise<void> {
    await this.redis.hdel(this.k.keyPool, workerId).then(undefined, this.onError);
  }
}

export interface ApiMetricsDeps {
  redis: RedisClient;
  keys: Keys;
  queue: Pick<Queue, 'getJobCounts'>;
  /** Jobs waiting by class (shared/scheduler.ts), for `queue_backlog_jobs`. */
  backlog?: () => Promise<Backlog>;
}

/** The API process's Prometheus registry: its own HTTP figures plus the cluster-wide ones from Redis. */
export class ApiMetrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  /** Connections the API's connection guard closed, by reason (api/connection-guard.ts). */
  readonly connectionsClosed: Counter<'reason'>;
  private readonly k: ReturnType<typeof metricKeys>;

  constructor(private readonly deps: ApiMetricsDeps) {
    this.k = metricKeys(deps.keys);
    const registers = [this.registry];
    this.httpRequests = new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered by this API process, by route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency in this API process, by route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.connectionsClosed = new Counter({
      name: 'http_connections_closed_total',
      help: 'Client connections this API process closed to stay within its limits: max_connections (a new one, at MAX_CONNECTIONS with every connection busy), idle_evicted (an idle one, near MAX_CONNECTIONS), per_address (over MAX_CONNECTIONS_PER_ADDRESS), unauthenticated_idle (never authenticated, idle past UNAUTHENTICATED_IDLE_TIMEOUT_MS).',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['max_connections', 'idle_evicted', 'per_address', 'unauthenticated_idle'])
      this.connectionsClosed.inc({ reason }, 0);
    // collect() runs with the gauge as `this`; these reach the figures.
    const jobCounts = () => this.deps.queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed');
    const backlog = this.deps.backlog;
    const keyPoolLevel = () => this.keyPoolLevel();
    const expiringSoon = () => this.expiringSoon();
    new Gauge({
      name: 'queue_jobs',
      help: 'Generation jobs in the queue, by state (waiting, active, delayed).',
      labelNames: ['state'],
      registers,
      async collect() {
        const c = await jobCounts();
        // Every job the scheduler enqueues has a priority: BullMQ counts those waiting as `prioritized`.
        this.set({ state: 'waiting' }, (c.waiting ?? 0) + (c.prioritized ?? 0));
        for (const state of ['active', 'delayed']) this.set({ state }, c[state] ?? 0);
      },
    });
    if (backlog) {
      new Gauge({
        name: 'queue_backlog_jobs',
        help: 'Generation jobs waiting, by class (interactive: a caller waits; bulk: npm run bulk; requeued: left by a dead worker, run first).',
        labelNames: ['class'],
        registers,
        async collect() {
          const b = await backlog();
          for (const cls of ['interactive', 'bulk', 'requeued'] as const) this.set({ class: cls }, b[cls]);
        },
      });
    }
    new Gauge({
      name: 'key_pool_ready_keys',
      help: 'Pre-generated RSA keys ready in the key pools of all live workers.',
      registers,
      async collect() {
        this.set(await keyPoolLevel());
      },
    });
    new Gauge({
      name: 'certificates_expiring_within_30_days',
      help: 'Existing certificates whose notAfter is within the next 30 days (not yet expired).',
      registers,
      async collect() {
        this.set(await expiringSoon());
      },
    });
  }

  /** The Prometheus text exposition: this registry, then the worker figures kept in Redis. */
  /**
   * CA mode: revocation figures, read from `ca` at each scrape. `refresh` brings the revoked count up
   * to date (the CRL check, cached for seconds); OCSP answers are counted by this API process.
   */
  observeCa(ca: {
    refresh(): Promise<unknown>;
    /** Entries of the serial index OCSP reads (one HLEN). */
    serialIndex(): Promise<number>;
    stats: {
      revoked: number;
      crlThisUpdate: number;
      ocsp: Record<'good' | 'revoked' | 'unknown', number>;
    };
  }): void {
    const registers = [this.registry];
    new Gauge({
      name: 'ca_revoked_certificates',
      help: 'CA mode: revoked serials whose certificates have not expired (what the CRL lists).',
      registers,
      async collect() {
        await ca.refresh().catch(() => undefined);
        this.set(ca.stats.revoked);
      },
    });
    new Gauge({
      name: 'ca_crl_age_seconds',
      help: 'CA mode: seconds since the thisUpdate of the CRL in force (-1 before there is one).',
      registers,
      collect() {
        this.set(ca.stats.crlThisUpdate ? (Date.now() - ca.stats.crlThisUpdate) / 1000 : -1);
      },
    });
    new Gauge({
      name: 'ca_serial_index_entries',
      help: 'CA mode: serials in the index OCSP reads (CA-issued certificates not expired when last pruned, every 60 s).',
      registers,
      async collect() {
        const n = await ca.serialIndex().catch(() => undefined);
        if (n !== undefined) this.set(n);
      },
    });
    new Counter({
      name: 'ca_ocsp_responses_total',
      help: 'CA mode: OCSP single answers given by this API process, by status (good, revoked, unknown).',
      labelNames: ['status'],
      registers,
      collect() {
        this.reset();
        for (const status of ['good', 'revoked', 'unknown'] as const)
          this.inc({ status }, ca.stats.ocsp[status]);
      },
    });
  }

  async render(): Promise<string> {
    const [own, counters] = await Promise.all([
      this.registry.metrics(),
      this.deps.redis.hgetall(this.k.counters),
    ]);
    return own + renderWorkerCounters(counters);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private async keyPoolLevel(): Promise<number> {
    const [levels, live] = await Promise.all([
      this.deps.redis.hgetall(this.k.keyPool),
      this.deps.redis.zrangebyscore(this.deps.keys.workers, Date.now() - HEARTBEAT_TTL_MS, '+inf'),
    ]);
    const alive = new Set(live);
    let sum = 0;
    for (const [worker, v] of Object.entries(levels)) {
      if (alive.has(worker)) sum += Number(v.split(':')[0]) || 0;
      else void this.deps.redis.hdel(this.k.keyPool, worker).catch(() => undefined); // a gone worker
    }
    return sum;
  }

  /**
   * One ZCOUNT over the expiry index the store keeps on create and delete (`Keys.expiry`), in one round
   * trip with the removal of entries already past: the same Redis work per scrape however many
   * certificates exist or expire soon, across every tenant.
   */
  private async expiringSoon(): Promise<number> {
    const now = Math.floor(Date.now() / 1000);
    const key = this.deps.keys.expiry;
    const res = await this.deps.redis
      .multi()
      .zremrangebyscore(key, '-inf', `(${now}`)
      .zcount(key, now, now + EXPIRING_WINDOW_SECONDS)
      .exec();
    const [err, count] = res?.[1] ?? [new Error('expiry count: no reply')];
    if (err) throw err;
    return Number(count);
  }
}

/** Prometheus text for the worker counters and the generation histogram kept in a Redis hash. */
export function renderWorkerCounters(h: Record<string, string>): string {
  const n = (k: string) => Number(h[k] ?? 0);
  const lines = [
    '# HELP certificates_issued_total Certificates created by all workers.',
    '# TYPE certificates_issued_total counter',
    `certificates_issued_total ${n('issued')}`,
    '# HELP certificates_failed_total Generation jobs that failed on their last attempt, all workers.',
    '# TYPE certificates_failed_total counter',
    `certificates_failed_total ${n('failed')}`,
    '# HELP certificate_generation_duration_seconds Time from a job becoming active to its certificate being stored, all workers.',
    '# TYPE certificate_generation_duration_seconds histogram',
  ];
  let cumulative = 0;
  for (const b of GENERATION_BUCKETS) {
    cumulative += n(`generation_le_${b}`);
    lines.push(`certificate_generation_duration_seconds_bucket{le="${b}"} ${cumulative}`);
  }
  lines.push(`certificate_generation_duration_seconds_bucket{le="+Inf"} ${n('generation_count')}`);
  lines.push(`certificate_generation_duration_seconds_sum ${n('generation_sum')}`);
  lines.push(`certificate_generation_duration_seconds_count ${n('generation_count')}`);
  lines.push(
    '# HELP queue_wait_seconds Time from a job being enqueued to a worker starting it, by class (interactive, bulk), all workers.',
    '# TYPE queue_wait_seconds histogram',
  );
  for (const cls of CLASSES) {
    let cum = 0;
    for (const b of WAIT_BUCKETS) {
      cum += n(`wait_${cls}_le_${b}`);
      lines.push(`queue_wait_seconds_bucket{class="${cls}",le="${b}"} ${cum}`);
    }
    lines.push(`queue_wait_seconds_bucket{class="${cls}",le="+Inf"} ${n(`wait_${cls}_count`)}`);
    lines.push(`queue_wait_seconds_sum{class="${cls}"} ${n(`wait_${cls}_sum`)}`);
    lines.push(`queue_wait_seconds_count{class="${cls}"} ${n(`wait_${cls}_count`)}`);
  }
  return lines.join('\n') + '\n';
}
