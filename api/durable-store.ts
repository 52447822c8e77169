import { ClientCertificateStore } from '../shared/client-certificate-store.js';
import { ServiceUnavailableError } from '../shared/errors.js';
import type { Keys, Tenant } from '../shared/keys.js';
import type { RedisClient } from '../shared/redis.js';
import type { RevocationEntry } from '../shared/revocation-store.js';
import type { Confirmed, ReplicaConfirmer } from './replica-confirmer.js';

/**
 * The store as the routes see it when REDIS_WAIT_REPLICAS > 0: Update, Delete, TagResource and
 * UntagResource run through the {@link ReplicaConfirmer}, and one that changed something but was
 * not confirmed on enough replicas in time becomes a 503 (see replica-confirmer.ts for the design).
 * Reads are unchanged.
 */
export class DurableStore extends ClientCertificateStore {
  constructor(
    redis: RedisClient,
    keys: Keys,
    private readonly confirmer: ReplicaConfirmer,
  ) {
    super(redis, keys);
  }

  override async setDescription(t: Tenant, id: string, description: string | undefined): Promise<boolean> {
    return this.confirmed(
      t,
      id,
      (s) => s.setDescription(t, id, description),
      (r) => r,
    );
  }

  override async delete(t: Tenant, id: string, revocation?: RevocationEntry): Promise<boolean> {
    return this.confirmed(
      t,
      id,
      (s) => s.delete(t, id, revocation),
      (r) => r,
    );
  }

  override async tag(
    t: Tenant,
    id: string,
    tags: Record<string, string>,
    max: number,
  ): Promise<'ok' | 'notfound' | 'limit'> {
    return this.confirmed(
      t,
      id,
      (s) => s.tag(t, id, tags, max),
      (r) => r === 'ok',
    );
  }

  override async untag(t: Tenant, id: string, tagKeys: string[]): Promise<boolean> {
    return this.confirmed(
      t,
      id,
      (s) => s.untag(t, id, tagKeys),
      (r) => r,
    );
  }

  /** @param changed whether the op's result means it changed something (only those need confirming). */
  private async confirmed<T>(
    t: Tenant,
    id: string,
    op: (s: ClientCertificateStore) => Promise<T>,
    changed: (r: T) => boolean,
  ): Promise<T> {
    let r: Confirmed<T>;
    try {
      r = await this.confirmer.run(this.keys.certificate(t, id), op);
    } catch (err) {
      // Whatever the primary's connection said (down, MOVED during a failover, READONLY), it is a
      // dependency failing: 503, never a 4xx or a 500.
      throw new ServiceUnavailableError(
        'Service is temporarily unavailable (Redis is unavailable). Retry later.',
        2,
        err,
      );
    }
    if (changed(r.value) && !r.confirmed) throw notConfirmed(this.confirmer, r.acks);
    return r.value;
  }
}

/** The 503 for a change WAIT did not confirm on enough replicas in time. */
export function notConfirmed(
  c: ReplicaConfirmer,
  acks: number,
  what = 'The change',
): ServiceUnavailableError {
  return new ServiceUnavailableError(
    `${what} could not be confirmed on ${c.replicas} Redis replica(s) within ${c.timeoutMs} ms. Retry later.`,
    Math.max(1, Math.ceil((2 * c.timeoutMs) / 1000)),
    new Error(`WAIT ${c.replicas} ${c.timeoutMs}: ${acks} replica(s) confirmed`),
  );
}
