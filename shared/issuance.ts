/**
 * The issuance contract, one certificate (the API, api/issuer.ts) or many (the bulk CLI,
 * scripts/bulk/batch.ts):
 *
 * 1. **reserve** an id against the account's quota ({@link reserveIds}) before anything is enqueued;
 * 2. **enqueue** one job whose id derives from the certificate id ({@link generateJob}), so the same
 *    certificate can never be enqueued twice;
 * 3. **wait** for the job's end; a created or existing certificate is the answer, read from the store
 *    (the queue keeps only the outcome);
 * 4. **commit** (`ClientCertificateStore.commit`, or `commitAndRead`, which is steps 3 and 4 in one
 *    round trip) before answering it, when the job stored it provisional (the API's jobs,
 *    `provisional: true`): "answered" is recorded with the reservation while it is live, by Redis's
 *    clock, and only then is the certificate visible; an uncommitted record expires with its
 *    reservation, so an error answer (or a dead API) leaves nothing;
 * 5. **settle** (`ClientCertificateStore.settle`) whenever the wait gives no certificate: one stored
 *    at once exists after all, or its id is released (and a provisional record removed) so a late job
 *    can no longer create it. Settle never commits, so an error answer stays true when its reply is lost.
 *
 * Following these steps is what keeps a certificate from being created unseen or counted twice.
 */
import { Job } from 'bullmq';
import { tagMap } from './client-certificate.js';
import type { ClientCertificateStore } from './client-certificate-store.js';
import { BULK_JOB_CERTIFICATES, generateJobId, type GenerateData, type GenerateReturn } from './jobs.js';
import type { Tenant } from './keys.js';
import type { GenerationQueue } from './queue.js';
import type { GenerateJob } from './queue.js';

/** What the caller asked for. */
export interface GenerateRequest {
  description?: string;
  tags: Record<string, string>;
}

/** The `generate` job for a reserved id: its data and its derived job id. */
export function generateJob(
  t: Tenant,
  clientCertificateId: string,
  req: GenerateRequest,
  /** Epoch ms after which nobody waits for it. */
  deadline: number,
  batchId?: string,
): GenerateJob {
  const data: GenerateData = { ...t, clientCertificateId, tags: req.tags, deadline };
  if (req.description !== undefined) data.description = req.description;
  if (batchId !== undefined) data.batchId = batchId;
  return { name: 'generate', data, opts: { jobId: generateJobId(data) } };
}

/**
 * The `generate` job of a bulk batch for reserved `ids` (at most {@link BULK_JOB_CERTIFICATES}), issued
 * one after another in one worker slot; its id derives from the first.
 */
export function generateBulkJob(
  t: Tenant,
  ids: string[],
  req: GenerateRequest,
  deadline: number,
  batchId: string,
): GenerateJob {
  if (ids.length === 0 || ids.length > BULK_JOB_CERTIFICATES) {
    throw new RangeError(`a bulk job issues 1 to ${BULK_JOB_CERTIFICATES} certificates, not ${ids.length}`);
  }
  const job = generateJob(t, ids[0]!, req, deadline, batchId);
  if (ids.length > 1) job.data.clientCertificateIds = ids;
  return job;
}

/**
 * Reserves `ids` for `ttlMs`, counted against `limit` (0 = none). An id another request holds is
 * `taken` (draw a new one); `limitReached` means at least one did not fit the quota.
 */
export async function reserveIds(
  store: ClientCertificateStore,
  t: Tenant,
  ids: string[],
  ttlMs: number,
  limit: number,
): Promise<{ reserved: string[]; taken: string[]; limitReached: boolean }> {
  const outcomes = await Promise.all(ids.map((id) => store.reserve(t, id, ttlMs, limit)));
  const reserved = ids.filter((_, i) => outcomes[i] === 'reserved');
  const taken = ids.filter((_, i) => outcomes[i] !== 'reserved');
  return { reserved, taken, limitReached: outcomes.includes('limit') };
}

/**
 * Cuts a job's data down to its ids once its certificate is stored (the answer is in hand, or the
 * certificate is being deleted): the description and tags then live in the certificate's record
 * alone, and a Delete leaves nothing of them in BullMQ's keys. The job itself stays (how it ran,
 * its stall count) until `removeOnComplete` drops it. Safe against a late re-run: a run after the
 * first finds the stored record before it reads the data (generate-processor.ts). A job that is
 * gone already is left so.
 */
export async function redactJob(
  queue: GenerationQueue,
  t: Tenant,
  clientCertificateId: string,
): Promise<void> {
  const data: GenerateData = { ...t, clientCertificateId, tags: tagMap(), deadline: 0 };
  const job = new Job<GenerateData, GenerateReturn>(queue, 'generate', data, {}, generateJobId(data));
  await job.updateData(data).catch(() => undefined);
}

/**
 * Before a Delete (once the record is gone): {@link redactJob} for the certificate's job, unless it is a
 * bulk job of several certificates, whose data the ones not stored yet still need: such a job redacts
 * itself once it has run (worker/generate-processor.ts). Two round trips: read, then redact.
 */
export async function forgetJob(
  queue: GenerationQueue,
  t: Tenant,
  clientCertificateId: string,
): Promise<void> {
  const job = await Job.fromId<GenerateData, GenerateReturn>(
    queue,
    generateJobId({ ...t, clientCertificateId }),
  );
  if (!job || job.data.clientCertificateIds) return;
  await redactJob(queue, t, clientCertificateId);
}

/** A job whose end was not reported within the wait: not a failure of the job, which may still run. */
export class JobTimeoutError extends Error {
  override name = 'JobTimeoutError';
  constructor(
    readonly jobId: string,
    readonly ttlMs: number,
  ) {
    super(`job ${jobId} timed out: no end reported within ${ttlMs} ms`);
  }
}
