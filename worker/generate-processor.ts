import type { Job } from 'bullmq';
import { VALIDITY_SECONDS, tagMap, type ClientCertificate } from '../shared/client-certificate.js';
import type { ClientCertificateStore } from '../shared/client-certificate-store.js';
import type { CertProfile } from '../shared/config.js';
import { keyAad, type KeyVault } from '../shared/crypto/key-vault.js';
import { certificateIdsOf, type GenerateData, type GenerateResult } from '../shared/jobs.js';
import type { Logger } from '../shared/logger.js';
import { normalSerial, type RevocationStore } from '../shared/revocation-store.js';
import { classOf } from '../shared/scheduler.js';
import type { CertificateAuthority } from '../shared/certificate-authority.js';
import { buildCertificate, randomSerialHex } from './certificate-builder.js';
import type { KeySource } from './key-source.js';

export interface ProcessorDeps {
  store: ClientCertificateStore;
  vault: KeyVault;
  keySource: KeySource;
  log: Logger;
  /** Shape of the certificates issued; default `aws`. */
  profile?: CertProfile;
  /** CERT_ISSUER=ca: the CA that signs every certificate; undefined: self-signed. */
  ca?: CertificateAuthority | undefined;
  /** With `ca`: where each issued serial is indexed for the OCSP responder, before its record is stored. */
  serials?: RevocationStore | undefined;
  /** Clock, epoch ms; tests move it. */
  now?: () => number;
}

/**
 * job → key → certificate → sealed key → store (create-if-reserved) → public record, for each
 * certificate of the job (one, or several for a bulk job: `clientCertificateIds`), one after another.
 * Safe to run twice for one job: the second run finds the records and returns them.
 * One Redis round trip per certificate on a job's first start (the create), two on later starts.
 */
export function createGenerateProcessor(deps: ProcessorDeps) {
  const now = deps.now ?? Date.now;

  async function issue(job: Job<GenerateData>, id: string): Promise<GenerateResult> {
    const d = job.data;
    const tenant = { accountId: d.accountId, region: d.region };
    const log = deps.log.child({ jobId: job.id, clientCertificateId: id, attempt: job.attemptsMade + 1 });

    // A job started before (its worker died, or its last attempt threw) may already have stored its
    // certificate: answer that one rather than generate a key for nothing. On its first start it
    // cannot have, and the create below refuses a second record anyway, so that run skips the read.
    if (job.attemptsStarted > 1) {
      const existing = await deps.store.get(tenant, id, { provisional: true });
      if (existing) return { status: 'exists', certificate: existing };
    }
    if (now() > d.deadline) {
      // Nobody waits for it any more; the API has released (or will release) the id.
      log.info('job past its deadline: skipped');
      return { status: 'expired', clientCertificateId: id };
    }

    // Pooled keys go to the jobs a caller waits for first, and the last of them to accounts with little
    // in flight (worker/key-pool.ts).
    const key = await deps.keySource.take(classOf(job.priority), d.inFlight);
    const createdDate = Math.floor(now() / 1000);
    const serialHex = randomSerialHex();
    const pem = buildCertificate({
      publicKeyPem: key.publicKeyPem,
      privateKey: key.privateKey,
      createdDate,
      serialHex,
      profile: deps.profile,
      issuer: deps.ca,
      holder: { ...tenant, id },
    });
    // Indexed before the record exists, so every stored CA-issued certificate is known to OCSP; a
    // serial whose record is never stored is answered `unknown`.
    if (deps.ca && deps.serials) {
      await deps.serials.indexSerial(normalSerial(serialHex), tenant, id, createdDate + VALIDITY_SECONDS);
    }
    const pkcs8 = key.privateKey.export({ type: 'pkcs8', format: 'der' });
    const encryptedKey = deps.vault.encrypt(pkcs8, keyAad(d.accountId, d.region, id));
    pkcs8.fill(0);

    const certificate: ClientCertificate = {
      clientCertificateId: id,
      // CA mode with an intermediate: the certificate followed by its chain, so a backend that trusts
      // only the root accepts it (TLS stacks send every certificate of the PEM).
      pemEncodedCertificate: deps.ca?.chainPem.length
        ? [pem, ...deps.ca.chainPem].join('\r\n').replace(/\r?\n/g, '\r\n')
        : pem,
      createdDate,
      expirationDate: createdDate + VALIDITY_SECONDS,
      tags: tagMap(Object.entries(d.tags)),
    };
    if (d.description !== undefined) certificate.description = d.description;

    const outcome = await deps.store.createIfReserved(
      tenant,
      { ...certificate, encryptedKey },
      d.provisional === true,
    );
    if (outcome === 'cancelled') {
      log.warn('reservation released before the certificate was stored: discarded');
      return { status: 'cancelled', clientCertificateId: id };
    }
    if (outcome === 'exists') {
      const stored = await deps.store.get(tenant, id, { provisional: true });
      if (!stored) throw new Error('certificate vanished after a concurrent create');
      return { status: 'exists', certificate: stored };
    }
    return { status: 'created', certificate };
  }

  /**
   * A bulk job of several certificates that ran for the last time: its description and tags now live in
   * the stored records alone, as the API's redactJob does for its own jobs (a Delete leaves a job of
   * several alone while some of its certificates still need its data: shared/issuance.ts forgetJob). A
   * re-run after this (a lost lock) finds the stored records; one it does not find is past its
   * reservation anyway (deadline 0: skipped).
   */
  async function redact(job: Job<GenerateData>): Promise<void> {
    const d = job.data;
    if (d.description === undefined && Object.keys(d.tags).length === 0) return;
    const ids: GenerateData = {
      accountId: d.accountId,
      region: d.region,
      clientCertificateId: d.clientCertificateId,
      tags: tagMap(),
      deadline: 0,
    };
    if (d.clientCertificateIds) ids.clientCertificateIds = d.clientCertificateIds;
    await job
      .updateData(ids)
      .catch((err: unknown) => deps.log.debug({ err, jobId: job.id }, 'job data not redacted'));
  }

  return async function processGenerate(job: Job<GenerateData>): Promise<GenerateResult[]> {
    const ids = certificateIdsOf(job.data);
    const results: GenerateResult[] = [];
    let lastRun = true;
    try {
      for (const id of ids) results.push(await issue(job, id));
    } catch (err) {
      // BullMQ tries a job that threw again while it has attempts left: it needs the data then.
      lastRun = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      throw err;
    } finally {
      if (ids.length > 1 && lastRun) await redact(job);
    }
    return results;
  };
}
