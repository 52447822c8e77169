import type { DefaultJobOptions } from 'bullmq';
import type { ClientCertificate } from './client-certificate.js';

/** The one queue: certificate generation. */
export const QUEUE_NAME = 'client-certificates';

/**
 * Job name → payload and result: the contract both the API and the worker compile against.
 * Neither side ever carries a private key.
 */
export interface JobTypes {
  generate: {
    data: {
      accountId: string;
      region: string;
      clientCertificateId: string;
      description?: string;
      tags: Record<string, string>;
      /** Epoch ms after which nobody waits for this job: the worker skips it. */
      deadline: number;
      /**
       * Set by the API: store the record provisional (invisible, expiring with the reservation) until
       * the API commits it just before answering 201, so no error answer leaves a certificate behind.
       */
      provisional?: boolean;
      /** Set by `npm run bulk`: the batch that reserved this id, so an interrupted run can resume it. */
      batchId?: string;
      /**
       * Set by `npm run bulk` for a job of several certificates ({@link BULK_JOB_CERTIFICATES} at most):
       * every id it issues, in order, the first being `clientCertificateId` (so the job's id derives from
       * it). Each id was reserved as a single job's is; the job issues them one after another in one
       * worker slot, and a re-run issues only those not stored yet. Absent: the job issues one.
       */
      clientCertificateIds?: string[];
      /**
       * Set by the queue's door for interactive work: the account's interactive jobs waiting or running
       * when this one was placed (shared/scheduler.ts). The worker's key pool keeps its last keys for
       * accounts with little in flight (worker/key-pool.ts).
       */
      inFlight?: number;
    };
    result:
      | { status: 'created' | 'exists'; certificate: ClientCertificate }
      | { status: 'cancelled' | 'expired'; clientCertificateId: string };
  };
}

export type JobName = keyof JobTypes;
export type GenerateData = JobTypes['generate']['data'];
/** What the worker's processor finds out: the certificate itself when there is one. */
export type GenerateResult = JobTypes['generate']['result'];
/**
 * What the queue keeps of a finished job (its return value, and the copy in the events stream): the
 * outcome and the id, never the certificate, its description or tags, so nothing of a certificate
 * stays readable in BullMQ's keys after it is deleted. The API reads the certificate from the store.
 */
export interface GenerateReturn {
  /** A job of several certificates: `created` when each was created or existed, else the first other outcome. */
  status: GenerateResult['status'];
  /** The job's (first) certificate. */
  clientCertificateId: string;
  /** A job of several certificates: each one's outcome, in the order of `clientCertificateIds`. */
  outcomes?: GenerateResult['status'][];
}

/**
 * Certificates one bulk job issues at most. A job's own cost (BullMQ's moves and four events, read by
 * every API process and the bulk CLI; the metrics transaction; the log line) is then shared by this
 * many certificates, while a worker slot is held for this many keys in a row: an interactive job
 * arriving when every slot holds a bulk job waits for the first to end (docs/scheduling.md).
 */
export const BULK_JOB_CERTIFICATES = 4;

/** The ids a job issues, in order. */
export function certificateIdsOf(
  d: Pick<GenerateData, 'clientCertificateId' | 'clientCertificateIds'>,
): string[] {
  return d.clientCertificateIds ?? [d.clientCertificateId];
}

/** The part of a processor's results (one per certificate of the job) the queue may keep. */
export function generateReturn(results: GenerateResult[]): GenerateReturn {
  const idOf = (r: GenerateResult) =>
    'certificate' in r ? r.certificate.clientCertificateId : r.clientCertificateId;
  const first = results[0]!;
  if (results.length === 1) return { status: first.status, clientCertificateId: idOf(first) };
  const other = results.find((r) => r.status !== 'created' && r.status !== 'exists');
  return {
    status: other ? other.status : results.some((r) => r.status === 'created') ? 'created' : 'exists',
    clientCertificateId: idOf(first),
    outcomes: results.map((r) => r.status),
  };
}

/**
 * Entries the queue's events stream keeps at most (BullMQ's `maxLenEvents`, trimmed approximately).
 * An entry holds an event name, a job id and a {@link GenerateReturn}: about 150 bytes, so ~1.5 MB in
 * all, whatever the tenants store. Waiters read new entries as they come, far inside this.
 */
export const EVENTS_STREAM_MAX_LEN = 10_000;

/** A job id derived from the certificate id, so enqueueing the same certificate twice is a no-op. */
export function generateJobId(d: Pick<GenerateData, 'accountId' | 'region' | 'clientCertificateId'>): string {
  return `gen-${d.accountId}-${d.region}-${d.clientCertificateId}`;
}

export const DEFAULT_JOB_OPTIONS: DefaultJobOptions = {
  // A crashed worker's job is re-run through stall detection; a job that threw is tried once more.
  attempts: 2,
  backoff: { type: 'fixed', delay: 100 },
  // Kept for a while so the bulk CLI can read how a job ended (the API removes its own jobs once it has
  // the answer); never `true`. A kept job holds its data (description, tags: up to ~20 KB), so the
  // counts bound that memory: 1,000 jobs of each kind, ~40 MB at worst across all tenants.
  removeOnComplete: { age: 3600, count: 1000 },
  removeOnFail: { age: 24 * 3600, count: 1000 },
};
