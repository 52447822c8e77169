import type { EventEmitter } from 'node:events';
import type { QueueEvents } from 'bullmq';
import type { ClientCertificate } from '../shared/client-certificate.js';
import type { ClientCertificateStore } from '../shared/client-certificate-store.js';
import {
  InternalServerError,
  LimitExceededError,
  ServiceUnavailableError,
  isRedisUnavailable,
  redisUnavailable,
  serviceUnavailable,
} from '../shared/errors.js';
import { newClientCertificateId } from '../shared/ids.js';
import {
  JobTimeoutError,
  generateJob,
  forgetJob,
  redactJob,
  reserveIds,
  type GenerateRequest,
} from '../shared/issuance.js';
import type { GenerateReturn } from '../shared/jobs.js';
import type { Tenant } from '../shared/keys.js';
import { enqueue, type GenerationQueue } from '../shared/queue.js';

export type { GenerateRequest } from '../shared/issuance.js';
import type { Logger } from '../shared/logger.js';
import type { DurableAck, SideWrite } from './durable-ack.js';

export interface IssuerDeps {
  queue: GenerationQueue;
  queueEvents: QueueEvents;
  store: ClientCertificateStore;
  log: Logger;
  /** How long a Generate waits for its job, ms. */
  timeoutMs: number;
  /** Certificates per account and region; 0 = unlimited. */
  limitFor: (t: Tenant) => number;
  /**
   * Load shedding: throws (429) when the work ahead of this account's Generate cannot finish in time;
   * called before anything is reserved.
   */
  admit?: (t: Tenant) => Promise<void>;
  /** REDIS_WAIT_REPLICAS > 0: a new certificate is answered only once replicas confirm it. */
  durable?: DurableAck | undefined;
  /**
   * With `durable`: a write in another slot that must be on the replicas too before the 201 (CA mode:
   * the serial's index entry, api/ca-responder.ts); undefined when there is none for `c`.
   */
  alsoConfirm?: ((t: Tenant, c: ClientCertificate) => SideWrite | undefined) | undefined;
}

/**
 * The end of job `jobId` as the queue's event stream reports it: its return value, its failure, or a
 * timeout after `ttlMs`. Call it before adding the job, so the end cannot pass unseen.
 */
export function waitForJob(
  queueEvents: QueueEvents,
  jobId: string,
  ttlMs: number,
): { result: Promise<GenerateReturn>; cancel: () => void } {
  // Per-job events (`completed:<id>`) are emitted by QueueEvents but absent from its typed listeners.
  const events = queueEvents as unknown as EventEmitter;
  let cancel = () => {};
  const result = new Promise<GenerateReturn>((resolve, reject) => {
    const completed = `completed:${jobId}`;
    const failed = `failed:${jobId}`;
    const onCompleted = (args: { returnvalue: unknown }) => {
      stop();
      resolve(args.returnvalue as GenerateReturn);
    };
    const onFailed = (args: { failedReason: string }) => {
      stop();
      reject(new Error(args.failedReason));
    };
    const timer = setTimeout(() => {
      stop();
      reject(new JobTimeoutError(jobId, ttlMs));
    }, ttlMs);
    function stop() {
      clearTimeout(timer);
      events.off(completed, onCompleted);
      events.off(failed, onFailed);
    }
    events.on(completed, onCompleted);
    events.on(failed, onFailed);
    cancel = stop;
  });
  // The caller awaits it only once the job is added: an end (or the timeout) before then must not
  // count as an unhandled rejection, which would stop the process.
  result.catch(() => undefined);
  return { result, cancel };
}

/** Extra time a reservation outlives the API's wait, so a slow answer is never mistaken for a lost one. */
const RESERVATION_GRACE_MS = 5000;
const ID_ATTEMPTS = 10;
/** How long a commit whose reply was lost is asked again before the API gives up with a 503, ms. */
export const COMMIT_RETRY_MS = 60_000;
const COMMIT_RETRY_PAUSE_MS = 250;

/**
 * Generate, as the API sees it: the issuance contract (shared/issuance.ts) for one certificate within
 * `timeoutMs`, so a certificate is never created without the caller being told, nor told without
 * being stored.
 */
export class Issuer {
  constructor(private readonly deps: IssuerDeps) {}

  async generate(t: Tenant, req: GenerateRequest, log: Logger): Promise<ClientCertificate> {
    const { store, queue, queueEvents, timeoutMs } = this.deps;
    const admit = this.deps.admit;
    if (admit) await this.guard(() => admit(t));
    const deadline = Date.now() + timeoutMs;
    const id = await this.guard(() => this.reserveId(t, timeoutMs + RESERVATION_GRACE_MS));
    const jlog = log.child({ clientCertificateId: id });

    const job = generateJob(t, id, req, deadline);
    // The record stays provisional, invisible and expiring with the reservation, until commit() below
    // (shared/lua/create.lua): so an error answer, or this process dying, never leaves a certificate.
    job.data.provisional = true;
    const jobId = job.opts.jobId;
    // Listening before the job exists, the waiter cannot miss its end: no read of the job's state
    // after enqueueing (job.waitUntilFinished makes one) and no listener on the queue per request.
    const outcome = waitForJob(queueEvents, jobId, Math.max(1, deadline - Date.now()));
    try {
      await enqueue(queue, { tenant: t, class: 'interactive' }, job);
    } catch (err) {
      outcome.cancel();
      await store.settle(t, id).catch(() => undefined);
      throw serviceUnavailable('could not enqueue the generation job', err);
    }
    jlog.debug({ jobId }, 'generation job enqueued');

    let result: GenerateReturn | undefined;
    let failure: unknown;
    try {
      result = await outcome.result;
    } catch (err) {
      failure = err;
    }
    if (result && (result.status === 'created' || result.status === 'exists')) {
      // The job stored it: read it and commit it in one round trip (issuance.ts, steps 3 and 4), while
      // the description and tags leave the job's data (the answer is in hand or never will be).
      const [, issued] = await Promise.all([redactJob(queue, t, id), this.commit(t, id, jlog)]);
      if (issued) return this.confirmed(t, issued, jlog);
      // No record after all: settle, below.
    }

    // No usable answer: the job failed, timed out, or ran too late. Whatever the job does from now
    // on, settle decides once: the certificate exists (answer it) or never will. Settle never
    // commits, so when it cannot reach Redis the error answer below is still true: nobody commits a
    // provisional record but this request, and Redis removes it when its reservation expires.
    const settled = await this.guard(() => store.settle(t, id));
    if (settled) {
      await redactJob(queue, t, id);
      return this.confirmed(t, settled, jlog);
    }
    await queue.remove(jobId).catch(() => undefined); // still waiting: drop it; active: it will find no reservation
    if (failure && !(failure instanceof JobTimeoutError) && !isRedisUnavailable(failure)) {
      jlog.error({ err: failure, jobId }, 'generation job failed');
      throw new InternalServerError(failure);
    }
    jlog.warn(
      { jobId, timeoutMs, reason: failure ? String(failure) : result?.status },
      'generation not finished in time',
    );
    throw new ServiceUnavailableError(
      `The certificate could not be generated within ${Math.round(timeoutMs / 1000)} s; no certificate was created. Retry later.`,
      Math.max(1, Math.ceil(timeoutMs / 10_000)),
      failure,
    );
  }

  /**
   * Records "answered" with the reservation (shared/lua/commit.lua) before the 201, reading the
   * certificate in the same round trip: returns it once it is a certificate, undefined when there is
   * no record (the caller settles), throws a 503 when it never will be (its reservation ran out
   * first). A reply lost on the way (a partition starting now) leaves the outcome unknown, so the
   * commit is asked again until Redis answers, at most {@link COMMIT_RETRY_MS}: an error answer must
   * not go out for a certificate that was committed after all.
   */
  private async commit(t: Tenant, id: string, log: Logger): Promise<ClientCertificate | undefined> {
    const until = Date.now() + COMMIT_RETRY_MS;
    for (let attempt = 1; ; attempt++) {
      let outcome: ClientCertificate | 'none' | 'never';
      try {
        outcome = await this.deps.store.commitAndRead(t, id);
      } catch (err) {
        if (Date.now() >= until) {
          log.error({ err, attempt }, 'commit outcome unknown: Redis did not answer in time');
          throw redisUnavailable(err);
        }
        if (attempt === 1) log.warn({ err }, 'commit not answered: asking again until Redis answers');
        await new Promise((r) => setTimeout(r, COMMIT_RETRY_PAUSE_MS));
        continue;
      }
      if (outcome === 'none') return undefined;
      if (outcome !== 'never') return outcome;
      log.warn('reservation over before the certificate was committed: it was removed');
      throw new ServiceUnavailableError(
        `The certificate could not be generated within ${Math.round(this.deps.timeoutMs / 1000)} s; no certificate was created. Retry later.`,
        Math.max(1, Math.ceil(this.deps.timeoutMs / 10_000)),
      );
    }
  }

  /** With REDIS_WAIT_REPLICAS > 0, `c` once replicas confirm it (durable-ack.ts); else `c`. */
  private confirmed(t: Tenant, c: ClientCertificate, log: Logger): Promise<ClientCertificate> {
    return this.deps.durable
      ? this.deps.durable.confirmCreated(t, c, log, this.deps.alsoConfirm?.(t, c))
      : Promise.resolve(c);
  }

  /**
   * Before a Delete: cuts the certificate's job data to its ids, for a job the API never redacted (a
   * bulk batch's, or one whose API process stopped before it had the answer).
   */
  async forget(t: Tenant, id: string): Promise<void> {
    await forgetJob(this.deps.queue, t, id);
  }

  private async reserveId(t: Tenant, ttlMs: number): Promise<string> {
    const limit = this.deps.limitFor(t);
    for (let i = 0; i < ID_ATTEMPTS; i++) {
      const r = await reserveIds(this.deps.store, t, [newClientCertificateId()], ttlMs, limit);
      if (r.reserved[0]) return r.reserved[0];
      if (r.limitReached) {
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
      if (isRedisUnavailable(err)) throw redisUnavailable(err);
      throw err;
    }
  }
}
