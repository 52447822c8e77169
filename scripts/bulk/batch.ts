// scripts/bulk/: `npm run bulk`: issues many certificates in one batch (arguments, the batch itself, progress).
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import type { QueueEvents } from 'bullmq';
import { toJson, type ClientCertificate } from '../../shared/client-certificate.js';
import type { ClientCertificateStore } from '../../shared/client-certificate-store.js';
import { newClientCertificateId } from '../../shared/ids.js';
import { generateBulkJob, reserveIds } from '../../shared/issuance.js';
import { BULK_JOB_CERTIFICATES, certificateIdsOf, generateJobId } from '../../shared/jobs.js';
import type { Keys, Tenant } from '../../shared/keys.js';
import { enqueueMany, type GenerationQueue } from '../../shared/queue.js';
import type { RedisClient } from '../../shared/redis.js';
import { UsageError, type BulkArgs } from './args.js';

/** The batch cannot fit in the account's quota; nothing was issued. The CLI exits with 3. */
export class QuotaError extends Error {
  override name = 'QuotaError';
}

/** The output file is not one this tool can append to. The CLI exits with 1. */
export class OutputError extends Error {
  override name = 'OutputError';
}

export interface BulkDeps {
  redis: RedisClient;
  keys: Keys;
  store: ClientCertificateStore;
  queue: GenerationQueue;
  queueEvents: QueueEvents;
  /** Certificates per account and region; 0 = no limit. */
  limit: number;
  /** Called whenever the number of records in the file changes. */
  progress?: (done: number, total: number) => void;
  /** Informational messages (resume, pick-ups). */
  info?: (message: string) => void;
  /** Aborting stops waiting; queued jobs keep running and a re-run picks them up. */
  signal?: AbortSignal;
  /**
   * How often the oldest outstanding jobs ({@link RECONCILE_BATCH} of them) are re-checked, in case an
   * event was missed; default 2000 ms.
   */
  reconcileEveryMs?: number;
}

export interface BulkResult {
  /** Records in the file at the end. */
  written: number;
  /** Records already in the file when this run started. */
  alreadyWritten: number;
  /** Records of an earlier, interrupted run that this run found and wrote. */
  pickedUp: number;
  /** New certificates this run enqueued. */
  enqueued: number;
  /** Ids whose job failed or expired; a re-run issues replacements. */
  failed: { clientCertificateId: string; reason: string }[];
  interrupted: boolean;
}

/** What `FILE.batch.json` remembers between runs. */
interface BatchState {
  batchId: string;
  accountId: string;
  region: string;
  count: number;
  description?: string;
  tags: Record<string, string>;
}

const IN_FLIGHT = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'paused']);
const CHUNK = 200;
/**
 * Outstanding certificates re-checked per round of the periodic re-check (with their jobs: a job
 * issues up to BULK_JOB_CERTIFICATES), oldest first. Not all of them: a
 * batch of 10,000 re-read whole every 2 s cost Redis and this process ~10 ms of CPU per certificate
 * issued (the bench's mixed phase), more than the rest of the service. The oldest are the ones that
 * ran first (a batch runs in its order), so an ended job whose event was missed is among them; a
 * round that finds one is followed by the next at once, so a run that missed many catches up.
 */
export const RECONCILE_BATCH = 50;

/** How long a bulk reservation (and its job) stays valid: one hour plus one second per certificate. */
export function bulkTtlMs(count: number): number {
  return 3600_000 + count * 1000;
}

/** The batch state file beside the output. */
export function stateFile(out: string): string {
  return `${out}.batch.json`;
}

/**
 * Issues `args.count` certificates into `args.out`, resumably.
 *
 * - The output holds one public record per line; a line cut short by a crash is dropped.
 * - `FILE.batch.json` holds the batch id; every id the batch reserves is recorded in Redis under it
 *   (before its reservation and its job exist), and every job carries it. A re-run therefore finds
 *   certificates that were created but not yet written, waits for jobs still queued, releases ids
 *   whose jobs failed or expired, and issues only what is still missing: no duplicates.
 * - Ids are reserved through the store, against the same quota as the API, before anything is enqueued;
 *   when the batch does not fit, nothing is issued.
 */
export async function runBulk(args: BulkArgs, deps: BulkDeps): Promise<BulkResult> {
  const t: Tenant = { accountId: args.accountId, region: args.region };
  const { store, queue, keys, redis } = deps;
  const existing = readOutput(args.out);
  const state = loadOrCreateState(args, existing.size);
  const batchKey = keys.bulkBatch(t, state.batchId);
  const jobsKey = keys.bulkBatchJobs(t, state.batchId);
  const result: BulkResult = {
    written: existing.size,
    alreadyWritten: existing.size,
    pickedUp: 0,
    enqueued: 0,
    failed: [],
    interrupted: false,
  };
  const total = args.count;

  if (existing.size >= total) {
    finish(args.out);
    await redis.del(batchKey, jobsKey);
    deps.progress?.(existing.size, total);
    return result;
  }

  const fd = openSync(args.out, 'a');
  const write = (c: ClientCertificate) => {
    if (existing.has(c.clientCertificateId) || result.written >= total) return;
    // One write per line: a crash leaves at most one partial last line, which readOutput drops.
    writeSync(fd, JSON.stringify(toJson(c)) + '\n');
    existing.add(c.clientCertificateId);
    result.written++;
    deps.progress?.(result.written, total);
  };
  const release = async (id: string, reason: string) => {
    // settle: the certificate exists after all (keep it), or its id can never be created any more.
    const late = await store.settle(t, id);
    if (late) {
      write(late);
      return;
    }
    await redis.srem(batchKey, id);
    result.failed.push({ clientCertificateId: id, reason });
  };

  try {
    deps.progress?.(result.written, total);

    // 1. What an earlier run of this batch left: created, still queued, or lost. First the jobs still
    // queued or running, and the ids each holds (a job issues several: `clientCertificateIds`).
    const members = (await redis.smembers(batchKey)).filter((id) => !existing.has(id));
    const outstanding = new Set<string>();
    /** Outstanding id → the id of the job that issues it. */
    const jobOf = new Map<string, string>();
    const queuedJobs = members.length > 0 ? await redis.smembers(jobsKey) : [];
    for (let i = 0; i < queuedJobs.length; i += CHUNK) {
      const jobIds = queuedJobs.slice(i, i + CHUNK);
      const states = await Promise.all(jobIds.map((j) => queue.getJobState(j)));
      for (const [k, jobId] of jobIds.entries()) {
        if (!IN_FLIGHT.has(states[k]!)) continue;
        const job = await queue.getJob(jobId);
        if (job) for (const id of certificateIdsOf(job.data)) jobOf.set(id, jobId);
      }
    }
    for (let i = 0; i < members.length; i += CHUNK) {
      const ids = members.slice(i, i + CHUNK);
      const records = await Promise.all(ids.map((id) => store.get(t, id)));
      for (const [j, id] of ids.entries()) {
        const rec = records[j];
        if (rec) {
          write(rec);
          result.pickedUp++;
          continue;
        }
        // A job of one id (or the first of several) has the id's own job id: batches of earlier versions.
        const ownJobId = generateJobId({ ...t, clientCertificateId: id });
        const inFlight = jobOf.has(id) || IN_FLIGHT.has(await queue.getJobState(ownJobId));
        if (inFlight) {
          outstanding.add(id);
          if (!jobOf.has(id)) jobOf.set(id, ownJobId);
        } else {
          // Failed, expired or gone: free the id; a replacement is issued below.
          const late = await store.settle(t, id);
          if (late) {
            write(late);
            result.pickedUp++;
          } else await redis.srem(batchKey, id);
        }
      }
    }
    if (members.length > 0) {
      deps.info?.(
        `resuming batch ${state.batchId}: ${result.alreadyWritten} records in the file, ${result.pickedUp} picked up, ${outstanding.size} still queued`,
      );
    }

    // 2. Reserve and enqueue what is missing, within the quota.
    const need = total - result.written - outstanding.size;
    if (need > 0) {
      const ttlMs = bulkTtlMs(need);
      if (deps.limit > 0) {
        const c = await store.count(t);
        if (c.existing + c.pending + need > deps.limit) throw quotaError(args, deps.limit, c, need);
      }
      const fresh = await reserve(t, need, ttlMs, deps, batchKey, args);
      const deadline = Date.now() + ttlMs - 60_000;
      for (let i = 0; i < fresh.length; i += CHUNK) {
        const ids = fresh.slice(i, i + CHUNK);
        const jobs = [];
        for (let j = 0; j < ids.length; j += BULK_JOB_CERTIFICATES) {
          jobs.push(
            generateBulkJob(t, ids.slice(j, j + BULK_JOB_CERTIFICATES), args, deadline, state.batchId),
          );
        }
        // Recorded before the jobs exist: a run that dies now leaves a job id that is not there, which
        // a re-run skips (its ids are then settled), never a job it cannot find.
        await redis.sadd(jobsKey, ...jobs.map((j) => j.opts.jobId));
        await enqueueMany(queue, { tenant: t, class: 'bulk', batchId: state.batchId }, jobs);
        for (const j of jobs) {
          for (const id of certificateIdsOf(j.data)) {
            outstanding.add(id);
            jobOf.set(id, j.opts.jobId);
          }
        }
        result.enqueued += ids.length;
      }
    }

    // 3. Wait for every outstanding job; events make it quick, a periodic re-check makes it certain.
    await waitAll(t, outstanding, jobOf, deps, write, release);
    result.interrupted = deps.signal?.aborted ?? false;
  } finally {
    fsyncSync(fd);
    closeSync(fd);
  }

  if (!result.interrupted && result.failed.length === 0 && result.written >= total) {
    finish(args.out);
    await redis.del(batchKey, jobsKey);
  }
  return result;
}

async function reserve(
  t: Tenant,
  need: number,
  ttlMs: number,
  deps: BulkDeps,
  batchKey: string,
  args: BulkArgs,
): Promise<string[]> {
  const reserved: string[] = [];
  const undo = async () => {
    for (const id of reserved) await deps.store.settle(t, id);
    if (reserved.length) await deps.redis.srem(batchKey, ...reserved);
  };
  try {
    while (reserved.length < need) {
      const ids = Array.from({ length: Math.min(CHUNK, need - reserved.length) }, newClientCertificateId);
      // Recorded in the batch first: an id reserved by a run that then dies is still found by the next.
      await deps.redis.sadd(batchKey, ...ids);
      const r = await reserveIds(deps.store, t, ids, ttlMs, deps.limit);
      reserved.push(...r.reserved);
      if (r.taken.length) await deps.redis.srem(batchKey, ...r.taken);
      if (r.limitReached) {
        // Someone else took the last slots meanwhile: issue nothing rather than part of the batch.
        await undo();
        throw quotaError(args, deps.limit, await deps.store.count(t), need);
      }
    }
  } catch (err) {
    if (!(err instanceof QuotaError)) await undo().catch(() => undefined);
    throw err;
  }
  return reserved;
}

async function waitAll(
  t: Tenant,
  outstanding: Set<string>,
  jobOf: Map<string, string>,
  deps: BulkDeps,
  write: (c: ClientCertificate) => void,
  release: (id: string, reason: string) => Promise<void>,
): Promise<void> {
  if (outstanding.size === 0) return;
  const { store, queue, queueEvents } = deps;
  /** Job id → its outstanding ids (a job issues up to BULK_JOB_CERTIFICATES). */
  const idsOf = new Map<string, string[]>();
  for (const id of outstanding) {
    const jobId = jobOf.get(id)!;
    const ids = idsOf.get(jobId);
    if (ids) ids.push(id);
    else idsOf.set(jobId, [id]);
  }
  const checking = new Set<string>();
  let wake: () => void = () => undefined;

  /**
   * Writes the stored certificates of one job, and settles the rest once the job is over. Returns how
   * many of its ids it settled (0: the job is still queued or running, or is being checked already).
   */
  const check = async (jobId: string): Promise<number> => {
    const ids = (idsOf.get(jobId) ?? []).filter((id) => outstanding.has(id));
    if (ids.length === 0 || checking.has(jobId)) return 0;
    checking.add(jobId);
    try {
      let settled = 0;
      const records = await Promise.all(ids.map((id) => store.get(t, id)));
      const missing: string[] = [];
      for (const [i, id] of ids.entries()) {
        const rec = records[i];
        if (!rec) missing.push(id);
        else if (outstanding.delete(id)) {
          write(rec);
          settled++;
        }
      }
      if (missing.length === 0) return settled;
      const st = await queue.getJobState(jobId);
      if (IN_FLIGHT.has(st)) return settled;
      const job = st === 'failed' || st === 'completed' ? await queue.getJob(jobId) : undefined;
      for (const id of missing) {
        if (!outstanding.delete(id)) continue;
        let reason: string = st === 'unknown' ? 'job disappeared' : st;
        if (st === 'failed') reason = job?.failedReason ?? 'failed';
        if (st === 'completed') {
          const rv = job?.returnvalue;
          // A job of several: this certificate's own outcome.
          const own = job && rv?.outcomes?.[certificateIdsOf(job.data).indexOf(id)];
          reason = rv && 'status' in rv ? `job ${own ?? rv.status}` : 'completed without a certificate';
        }
        await release(id, reason);
        settled++;
      }
      return settled;
    } finally {
      checking.delete(jobId);
      if (outstanding.size === 0) wake();
    }
  };

  const onEvent = ({ jobId }: { jobId: string }) => {
    if (idsOf.has(jobId)) void check(jobId).catch(() => undefined); // the periodic re-check retries
  };
  queueEvents.on('completed', onEvent);
  queueEvents.on('failed', onEvent);
  try {
    while (outstanding.size > 0 && !deps.signal?.aborted) {
      // The jobs of the oldest outstanding ids (a Set keeps insertion order: earlier runs' first, then
      // this run's in the order they were enqueued, which is the order they run in).
      const jobs = new Set<string>();
      let n = 0;
      for (const id of outstanding) {
        if (n++ >= RECONCILE_BATCH) break;
        jobs.add(jobOf.get(id)!);
      }
      const ended = (await Promise.all([...jobs].map(check))).reduce((a, b) => a + b, 0);
      if (outstanding.size === 0) break;
      // Ended jobs found here, not through their events: look at the next ones at once.
      if (ended > 0) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deps.reconcileEveryMs ?? 2000);
        const done = () => (clearTimeout(timer), resolve());
        wake = done;
        deps.signal?.addEventListener('abort', done, { once: true });
      });
    }
  } finally {
    queueEvents.off('completed', onEvent);
    queueEvents.off('failed', onEvent);
  }
}

function quotaError(
  args: BulkArgs,
  limit: number,
  c: { existing: number; pending: number },
  need: number,
): QuotaError {
  const room = Math.max(0, limit - c.existing - c.pending);
  return new QuotaError(
    `--count ${args.count} does not fit the quota of ${limit} client certificates for account ${args.accountId} in ${args.region}: ` +
      `${c.existing} exist and ${c.pending} are being generated, so at most ${room} more can be issued, and this batch needs ${need}. ` +
      `Nothing was issued. Delete unused certificates or lower --count.`,
  );
}

/**
 * The ids already in the output file. A last line without its newline (a crash mid-write) is cut off;
 * any other line that is not a record stops the run rather than risk appending to a foreign file.
 */
function readOutput(out: string): Set<string> {
  const ids = new Set<string>();
  if (!existsSync(out)) return ids;
  const text = readFileSync(out, 'utf8');
  const complete = text.lastIndexOf('\n') + 1;
  if (complete < text.length) truncateSync(out, Buffer.byteLength(text.slice(0, complete)));
  const lines = text.slice(0, complete).split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let id: unknown;
    try {
      id = (JSON.parse(line) as { clientCertificateId?: unknown }).clientCertificateId;
    } catch {
      id = undefined;
    }
    if (typeof id !== 'string') {
      throw new OutputError(`${out} line ${i + 1} is not a client certificate record; choose another --out`);
    }
    ids.add(id);
  });
  return ids;
}

function loadOrCreateState(args: BulkArgs, written: number): BatchState {
  const file = stateFile(args.out);
  if (existsSync(file)) {
    const s = JSON.parse(readFileSync(file, 'utf8')) as BatchState;
    const same = (name: string, a: unknown, b: unknown) => {
      if (JSON.stringify(a) !== JSON.stringify(b)) {
        throw new UsageError(
          `${name} ${JSON.stringify(a ?? null)} differs from the interrupted batch in ${file} (${JSON.stringify(b ?? null)}): ` +
            `re-run with the same arguments to complete it, or choose another --out`,
        );
      }
    };
    same('--count', args.count, s.count);
    same('--account', args.accountId, s.accountId);
    same('--region', args.region, s.region);
    same('--description', args.description, s.description);
    same('--tag', sortKeys(args.tags), sortKeys(s.tags));
    return s;
  }
  const s: BatchState = {
    batchId: randomBytes(8).toString('hex'),
    accountId: args.accountId,
    region: args.region,
    count: args.count,
    tags: args.tags,
  };
  if (args.description !== undefined) s.description = args.description;
  if (written < args.count) {
    // Written (and renamed into place) before anything is reserved, so a crash never loses the batch id.
    writeFileSync(`${file}.tmp`, JSON.stringify(s) + '\n');
    renameSync(`${file}.tmp`, file);
  }
  return s;
}

function sortKeys(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function finish(out: string): void {
  rmSync(stateFile(out), { force: true });
}
