import { CLIENT_CERTIFICATE_ID } from './ids.js';

/**
 * Every Redis key name this service uses, and nowhere else.
 *
 * Keys of one account and region share the hash tag `{account:region}`, so every multi-key script
 * touches one Redis Cluster slot. BullMQ's keys share the tag `{prefix}`.
 */
export interface Tenant {
  accountId: string;
  region: string;
}

export class Keys {
  constructor(readonly prefix: string) {}

  /** BullMQ's `prefix` option: a hash tag so all of the queue's keys live in one cluster slot. */
  get queuePrefix(): string {
    return `{${this.prefix}}`;
  }

  private tenant(t: Tenant): string {
    return `${this.prefix}:{${t.accountId}:${t.region}}`;
  }

  /** Hash: the certificate's fields and its encrypted private key. */
  certificate(t: Tenant, id: string): string {
    return `${this.tenant(t)}:cert:${id}`;
  }

  /** Hash: the certificate's tags, key → value. */
  tags(t: Tenant, id: string): string {
    return `${this.tenant(t)}:cert:${id}:tags`;
  }

  /** Sorted set (all scores 0): ids of existing certificates, walked in id order for paging. */
  index(t: Tenant): string {
    return `${this.tenant(t)}:index`;
  }

  /** Sorted set: ids reserved by a Generate still in flight, scored by expiry (epoch ms). */
  pending(t: Tenant): string {
    return `${this.tenant(t)}:pending`;
  }

  /**
   * String, a few seconds' TTL: written only so that a WAIT on the same connection covers an earlier
   * write by another connection to the same shard (see api/durable-ack.ts).
   */
  fence(t: Tenant): string {
    return `${this.tenant(t)}:fence`;
  }

  /** String: the account and region's request-rate state (GCRA theoretical arrival time, epoch ms). */
  throttle(t: Tenant): string {
    return `${this.tenant(t)}:throttle`;
  }

  /** Set: ids reserved by one bulk batch (`npm run bulk`), so an interrupted batch can be resumed. */
  bulkBatch(t: Tenant, batchId: string): string {
    return `${this.tenant(t)}:bulk:${batchId}`;
  }

  /**
   * Set: the ids of the jobs one bulk batch enqueued (each job issues up to BULK_JOB_CERTIFICATES of
   * its ids), so a resumed batch finds the job that holds each id.
   */
  bulkBatchJobs(t: Tenant, batchId: string): string {
    return `${this.tenant(t)}:bulk:${batchId}:jobs`;
  }

  /**
   * SCAN MATCH pattern of every certificate hash of every tenant (exactly six characters after
   * `:cert:`, so not the `:tags` hashes). Other keys may match too: check each with
   * {@link parseCertificate}. The prefix holds no glob characters (config allows `[A-Za-z0-9_-]`).
   */
  get certificatePattern(): string {
    return `${this.prefix}:{*}:cert:??????`;
  }

  /** The tenant and id of a {@link certificate} key, or undefined when `key` is not one. */
  parseCertificate(key: string): { tenant: Tenant; id: string } | undefined {
    const head = `${this.prefix}:{`;
    if (!key.startsWith(head)) return undefined;
    const m = /^(\d{12}):([a-z0-9-]+)\}:cert:([^:]+)$/.exec(key.slice(head.length));
    if (!m || !CLIENT_CERTIFICATE_ID.test(m[3]!)) return undefined;
    return { tenant: { accountId: m[1]!, region: m[2]! }, id: m[3]! };
  }

  /**
   * Sorted set of every existing certificate of every tenant, `{@link expiryMember}` → notAfter (epoch
   * s), kept by the store on create and delete, so /metrics counts what expires soon with one ZCOUNT.
   * In the queue's hash slot, as one key across tenants.
   */
  get expiry(): string {
    return `{${this.prefix}}:metrics:expiry`;
  }

  /** A certificate's member in {@link expiry}. */
  expiryMember(t: Tenant, id: string): string {
    return `${t.accountId}:${t.region}:${id}`;
  }

  /**
   * CA mode. Sorted set: serials (lowercase minimal hex) of the tenant's deleted, hence revoked,
   * certificates → their notAfter (epoch s). Written in the same script as the delete.
   */
  revoked(t: Tenant): string {
    return `${this.tenant(t)}:revoked`;
  }

  /** CA mode. Hash: revoked serial → when it was revoked (epoch ms); beside {@link revoked}. */
  revokedAt(t: Tenant): string {
    return `${this.tenant(t)}:revoked:at`;
  }

  /** SCAN MATCH pattern of every tenant's {@link revoked} set (check each with {@link parseRevoked}). */
  get revokedPattern(): string {
    return `${this.prefix}:{*}:revoked`;
  }

  /** The tenant of a {@link revoked} key, or undefined when `key` is not one. */
  parseRevoked(key: string): Tenant | undefined {
    const m = /^\{(\d{12}):([a-z0-9-]+)\}:revoked$/.exec(key.slice(this.prefix.length + 1));
    return key.startsWith(`${this.prefix}:`) && m ? { accountId: m[1]!, region: m[2]! } : undefined;
  }

  /** CA mode. Set: `account:region` of every tenant that has a {@link revoked} set (the CRL reads them all). */
  get revokedTenants(): string {
    return `{${this.prefix}}:ca:revoked-tenants`;
  }

  /**
   * CA mode. Hash: serial of every unexpired CA-issued certificate → `account:region:id`, for OCSP.
   * Bounded by {@link caSerialsExpiry} (shared/lua/ca-index.lua, prune-expired.lua).
   */
  get caSerials(): string {
    return `{${this.prefix}}:ca:serials`;
  }

  /** CA mode. Sorted set: each {@link caSerials} serial → its certificate's notAfter (epoch s), for pruning. */
  get caSerialsExpiry(): string {
    return `{${this.prefix}}:ca:serials:expiry`;
  }

  /** CA mode. Hash: the CRL last signed (`der` base64, `digest` of its entries, `number`, `thisUpdate` ms). */
  get crl(): string {
    return `{${this.prefix}}:ca:crl`;
  }

  /** CA mode. String, seconds' TTL: held by the API process signing the next CRL, so replicas sign one between them. */
  get crlLock(): string {
    return `{${this.prefix}}:ca:crl-lock`;
  }

  /** CA mode. Counter: the last CRL number used. */
  get crlNumber(): string {
    return `{${this.prefix}}:ca:crl-number`;
  }

  /** Sorted set: worker id → last heartbeat (epoch ms). */
  get workers(): string {
    return `{${this.prefix}}:workers`;
  }

  /**
   * One of BullMQ's own keys of the generation queue (`prioritized`: sorted set of waiting jobs, score
   * priority × 2³² + arrival counter; `wait`: list of jobs without a priority, which BullMQ serves
   * first, i.e. jobs a dead worker left behind; `active`: list of running jobs). Read by the scheduler
   * (shared/scheduler.ts) only; BullMQ writes them.
   */
  queueList(part: 'prioritized' | 'wait' | 'active', queueName: string): string {
    return `{${this.prefix}}:${queueName}:${part}`;
  }

  /**
   * Sorted set, per account (all regions): ids of the account's interactive jobs waiting or running,
   * scored by their deadline (epoch ms), so entries of jobs nobody finishes (a dead worker, a
   * removed job) prune themselves. Its size orders the account's next Generate (shared/scheduler.ts).
   */
  schedulerAccount(accountId: string): string {
    return `{${this.prefix}}:sched:account:${accountId}`;
  }

  /** String: the next position of one bulk batch in the bulk order (shared/scheduler.ts). */
  schedulerBatch(batchId: string): string {
    return `{${this.prefix}}:sched:batch:${batchId}`;
  }

  /** Matches every key of this service, for tests and tooling (SCAN MATCH). */
  get all(): string {
    return `*${this.prefix}*`;
  }
}
