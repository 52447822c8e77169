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
    };
    result:
      | { status: 'created' | 'exists'; certificate: ClientCertificate }
      | { status: 'cancelled' | 'expired'; clientCertificateId: string };
  };
}

export type JobName = keyof JobTypes;
export type GenerateData = JobTypes['generate']['data'];
export type GenerateResult = JobTypes['generate']['result'];

/** A job id derived from the certificate id, so enqueueing the same certificate twice is a no-op. */
export function generateJobId(d: Pick<GenerateData, 'accountId' | 'region' | 'clientCertificateId'>): string {
  return `gen-${d.accountId}-${d.region}-${d.clientCertificateId}`;
}

export const DEFAULT_JOB_OPTIONS: DefaultJobOptions = {
  // A crashed worker's job is re-run through stall detection; a job that threw is tried once more.
  attempts: 2,
  backoff: { type: 'fixed', delay: 100 },
  // Kept for a while so waiters that subscribe late still find the result; never `true`.
  removeOnComplete: { age: 3600, count: 10_000 },
  removeOnFail: { age: 24 * 3600, count: 10_000 },
};
