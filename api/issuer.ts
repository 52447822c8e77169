import { Queue, QueueEvents, type Job } from 'bullmq';
import type { ClientCertificate } from '../shared/client-certificate.js';
import type { ClientCertificateStore } from '../shared/client-certificate.store.js';
import {
  InternalServerError,
  LimitExceededError,
  ServiceUnavailableError,
  isRedisUnavailable,
} from '../shared/errors.js';
import { newClientCertificateId } from '../shared/ids.js';
import { generateJobId, type GenerateData, type GenerateResult } from '../shared/jobs.js';
import type { Tenant } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';

export interface IssuerDeps {
  queue: Queue<GenerateData, GenerateResult>;
  queueEvents: QueueEvents;
  store: ClientCertificateStore;
  log: Logger;
  /** How long a Generate waits for its job, ms. */
  timeoutMs: number;
  /** Certificates per account and region; 0 = unlimited. */
  limitFor: (t: Tenant) => number;
  /** Load shedding: throws (429) when the backlog cannot finish in time; called before anything is reserved. */
  admit?: () => Promise<void>;
}

export interface GenerateRequest {
  description?: string;
  tags: Record<string, string>;
}

/** Extra time a reservation outlives the API's wait, so a slow answer is never mistaken for a lost one. */
const RESERVATION_GRACE_MS = 5000;
const ID_ATTEMPTS = 10;

/**
 * Generate, as the API sees it: reserve an id (counting against the quota), enqueue one job whose id
 * derives from it, wait for it within `timeoutMs`, and settle the reservation whatever happens, so a
 * certificate is never created without the caller being told, nor told without being stored.
 */
export class Issuer {
  constructor(private readonly deps: IssuerDeps) {}

  async generate(t: Tenant, req: GenerateRequest, log: Logger): Promise<ClientCertificate> {
    const { store, queue, queueEvents, timeoutMs } = this.deps;
    if (this.deps.admit) await this.guard(this.deps.admit);
    const deadline = Date.now() + timeoutMs;
    const id = await this.guard(() => this.reserveId(t, timeoutMs + RESERVATION_GRACE_MS));
    const jlog = log.child({ clientCertificateId: id });

    const data: GenerateData = { ...t, clientCertificateId: id, tags: req.tags, deadline };
    if (req.description !== undefined) data.description = req.description;
    let job: Job<GenerateData, GenerateResult>;
    try {
      job = await queue.add('generate', data, { jobId: generateJobId(data) });
    } catch (err) {
      await store.settle(t, id).catch(() => undefined);
      throw this.unavailable(err, 'could not enqueue the generation job');
    }
    jlog.debug({ jobId: job.id }, 'generation job enqueued');

    let result: GenerateResult | undefined;
    let failure: unknown;
    try {
      result = (await job.waitUntilFinished(
        queueEvents,
        Math.max(1, deadline - Date.now()),
      )) as GenerateResult;
    } catch (err) {
      failure = err;
    }
    if (result && (result.status === 'created' || result.status === 'exists')) return result.certificate;

    // No usable answer: the job failed, timed out, or ran too late. Whatever the job does from now
    // on, settle decides once: the certificate exists (answer it) or never will.
    const settled = await this.guard(() => store.settle(t, id));
    if (settled) return settled;
    await job.remove().catch(() => undefined); // still waiting: drop it; active: it will find no reservation
    const timedOut = failure instanceof Error && /timed out|timeout/i.test(failure.message);
    if (failure && !timedOut && !isRedisUnavailable(failure)) {
      jlog.error({ err: failure, jobId: job.id }, 'generation job failed');
      throw new InternalServerError(failure);
    }
    jlog.warn(
      { jobId: job.id, timeoutMs, reason: failure ? String(failure) : result?.status },
      'generation not finished in time',
    );
    throw new ServiceUnavailableError(
      `The certificate could not be generated within ${Math.round(timeoutMs / 1000)} s; no certificate was created. Retry later.`,
      Math.max(1, Math.ceil(timeoutMs / 10_000)),
      failure,
    );
  }

  private async reserveId(t: Tenant, ttlMs: number): Promise<string> {
    const limit = this.deps.limitFor(t);
    for (let i = 0; i < ID_ATTEMPTS; i++) {
      const id = newClientCertificateId();
      const r = await this.deps.store.reserve(t, id, ttlMs, limit);
      if (r === 'reserved') return id;
      if (r === 'limit') {
        throw new LimitExceededError(
          `The maximum number of client certificates (${limit}) for this account in ${t.region} has been reached. Delete unused client certificates and try again.`,
        );
      }
    }
    throw new InternalServerError(new Error('could not allocate a free client certificate id'));
  }

  /** Runs a Redis call of the request path, turning an outage into a 503. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isRedisUnavailable(err)) throw this.unavailable(err, 'Redis is unavailable');
      throw err;
    }
  }

  private unavailable(err: unknown, what: string): ServiceUnavailableError {
    return new ServiceUnavailableError(`Service is temporarily unavailable (${what}). Retry later.`, 2, err);
  }
}
