import type { Redis } from 'ioredis';
import { tagMap, type ClientCertificate } from './client-certificate.js';
import { CLIENT_CERTIFICATE_ID } from './ids.js';
import { Keys, type Tenant } from './keys.js';
import type { RevocationEntry } from './revocation-store.js';
import { withScripts, type Scripted } from './lua/index.js';
import { isCluster, type RedisClient } from './redis.js';

/**
 * A flat HGETALL reply from a script ([k1, v1, k2, v2, ...]) as a map with no prototype: the tag hash's
 * fields are callers' tag keys (`__proto__` among them).
 */
function pairs(flat: string[]): Record<string, string> {
  const out = tagMap();
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

export type ReserveResult = 'reserved' | 'taken' | 'limit';
export type CreateResult = 'created' | 'exists' | 'cancelled';

/** What the worker stores for a new certificate. */
export interface NewCertificate extends ClientCertificate {
  /** The private key, already sealed by the KeyVault. */
  encryptedKey: string;
}

/**
 * Client certificate records in Redis, scoped by account and region. Knows nothing of HTTP or queues.
 * Every multi-key operation is one Lua script (shared/lua/) over keys of one hash slot, so it is
 * atomic and works on Redis Cluster.
 */
export class ClientCertificateStore {
  private readonly redis: Scripted;

  constructor(
    redis: RedisClient,
    readonly keys: Keys,
  ) {
    this.redis = withScripts(redis);
  }

  /**
   * Reserves an id for a Generate in flight, counting it against `limit` (0 = no limit) until it is
   * created or `ttlMs` passes.
   */
  async reserve(t: Tenant, id: string, ttlMs: number, limit: number): Promise<ReserveResult> {
    const k = this.keys;
    const r = await this.redis.ccReserve(k.certificate(t, id), k.index(t), k.pending(t), id, ttlMs, limit);
    return r === 1 ? 'reserved' : r === 0 ? 'taken' : 'limit';
  }

  /**
   * Stores a certificate if its reservation is still live; a second call for the same id is a no-op.
   * `provisional`: stored invisible, and removed by Redis when the reservation expires, unless
   * {@link commit} makes it a certificate first (see shared/lua/create.lua).
   */
  async createIfReserved(t: Tenant, c: NewCertificate, provisional = false): Promise<CreateResult> {
    const k = this.keys;
    const fields: string[] = [
      'pem',
      c.pemEncodedCertificate,
      'created',
      String(c.createdDate),
      'expires',
      String(c.expirationDate),
      'key',
      c.encryptedKey,
    ];
    if (c.description !== undefined) fields.push('description', c.description);
    const tags = Object.entries(c.tags).flat();
    const r = await this.redis.ccCreate(
      k.certificate(t, c.clientCertificateId),
      k.tags(t, c.clientCertificateId),
      k.index(t),
      k.pending(t),
      c.clientCertificateId,
      fields.length / 2,
      ...fields,
      tags.length / 2,
      ...tags,
      provisional ? '1' : '0',
    );
    if (r === 1 && !provisional) await this.indexExpiry('zadd', t, c.clientCertificateId, c.expirationDate);
    return r === 1 ? 'created' : r === 0 ? 'exists' : 'cancelled';
  }

  /**
   * Keeps the cross-tenant expiry index (`Keys.expiry`) that /metrics counts. It lives in another hash
   * slot than the tenant's keys, so it cannot join their script on a Redis Cluster: it is written right
   * after, best-effort (a metric, never a record; a failure here must not fail a Generate or Delete
   * that has happened). A process dying between the two writes leaves the index one entry off until
   * that entry's date passes.
   */
  private async indexExpiry(op: 'zadd' | 'zrem', t: Tenant, id: string, expires = 0): Promise<void> {
    const member = this.keys.expiryMember(t, id);
    const write =
      op === 'zadd'
        ? this.redis.zadd(this.keys.expiry, expires, member)
        : this.redis.zrem(this.keys.expiry, member);
    await write.then(undefined, () => undefined);
  }

  /**
   * Makes provisional certificate `c` (stored by a job) a certificate, if its reservation is still
   * live: true when it is one (now or already), false when it never will be (then it is removed). Safe
   * to repeat, so a caller whose reply was lost asks again to learn the outcome.
   */
  async commit(t: Tenant, c: ClientCertificate): Promise<boolean> {
    const k = this.keys;
    const id = c.clientCertificateId;
    const r = await this.redis.ccCommit(k.certificate(t, id), k.tags(t, id), k.index(t), k.pending(t), id);
    if (r === 1) await this.indexExpiry('zadd', t, id, c.expirationDate);
    return r === 1;
  }

  /**
   * {@link commit} and the read of the answer in one round trip (the API's Generate, after its job
   * reported the certificate stored): the certificate once it is one (now or already); `none` when
   * there is no record (nothing was changed: settle); `never` when it never will be (its reservation
   * ran out first; then it is removed). Safe to repeat, as `commit` is.
   */
  async commitAndRead(t: Tenant, id: string): Promise<ClientCertificate | 'none' | 'never'> {
    const k = this.keys;
    const r = (await this.redis.ccCommit(
      k.certificate(t, id),
      k.tags(t, id),
      k.index(t),
      k.pending(t),
      id,
      'read',
    )) as unknown as [number, string[]?, string[]?];
    if (r[0] === -1) return 'never';
    const c = r[0] === 1 ? fromHash(id, pairs(r[1] ?? []), pairs(r[2] ?? [])) : undefined;
    if (!c) return 'none';
    await this.indexExpiry('zadd', t, id, c.expirationDate);
    return c;
  }

  /**
   * Gives up a reservation whose job did not answer: returns the certificate if one was stored at once
   * (not provisional) after all; otherwise releases the id so a late job can no longer create it, and
   * removes a provisional record of it. Never commits anything.
   */
  async settle(t: Tenant, id: string): Promise<ClientCertificate | undefined> {
    const exists = await this.redis.ccSettle(this.keys.certificate(t, id), this.keys.pending(t), id);
    return exists === 1 ? this.get(t, id) : undefined;
  }

  /**
   * Whether certificate `id` exists; when it does, also writes the tenant's fence key after it, so a
   * WAIT on this connection afterwards covers the certificate whichever connection created it.
   */
  async fence(t: Tenant, id: string): Promise<boolean> {
    if (!isId(id)) return false;
    return (await this.redis.ccFence(this.keys.certificate(t, id), this.keys.fence(t))) === 1;
  }

  /** @param opts.provisional also a record not committed yet (the worker re-running its job). */
  async get(
    t: Tenant,
    id: string,
    opts: { provisional?: boolean } = {},
  ): Promise<ClientCertificate | undefined> {
    if (!isId(id)) return undefined;
    const [fields, tags] = (await this.redis.ccGet(
      this.keys.certificate(t, id),
      this.keys.tags(t, id),
    )) as unknown as [string[], string[]];
    const f = pairs(fields);
    if (f.provisional !== undefined && !opts.provisional) return undefined;
    return fromHash(id, f, pairs(tags));
  }

  /**
   * The sealed private key of a certificate, or undefined when there is no such certificate.
   * @param opts.provisional also of a record not committed yet (rekey reseals those too).
   */
  async getEncryptedKey(
    t: Tenant,
    id: string,
    opts: { provisional?: boolean } = {},
  ): Promise<string | undefined> {
    if (!isId(id)) return undefined;
    const [key, provisional] = await this.redis.hmget(this.keys.certificate(t, id), 'key', 'provisional');
    if (provisional !== null && !opts.provisional) return undefined;
    return key ?? undefined;
  }

  /**
   * Replaces a record's sealed private key with `next`, atomically and only if it is still `expected`
   * (compare-and-set). @returns 'gone' when the record no longer exists (nothing is written), 'changed'
   * when its sealed key is no longer `expected`.
   */
  async replaceEncryptedKey(
    t: Tenant,
    id: string,
    expected: string,
    next: string,
  ): Promise<'replaced' | 'gone' | 'changed'> {
    if (!isId(id)) return 'gone';
    const r = await this.redis.ccReseal(this.keys.certificate(t, id), expected, next);
    return r === 1 ? 'replaced' : r === 0 ? 'gone' : 'changed';
  }

  /**
   * Every certificate of every tenant, one SCAN reply at a time (each a few hundred records at most):
   * SCAN over the single node, or over every master of a Redis Cluster. As with SCAN, a record that
   * exists for the whole walk is seen at least once (possibly twice); one created or deleted meanwhile
   * may or may not be. Never KEYS, which would block Redis.
   * @param count SCAN's COUNT hint: keys looked at per round trip.
   */
  async *scanCertificates(count = 500): AsyncGenerator<{ tenant: Tenant; id: string }[]> {
    let nodes: Redis[];
    if (isCluster(this.redis)) {
      await this.redis.ping(); // waits until the cluster's slot map is known
      nodes = this.redis.nodes('master');
    } else {
      nodes = [this.redis];
    }
    const pattern = this.keys.certificatePattern;
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count);
        cursor = next;
        const page = found.flatMap((key) => {
          const c = this.keys.parseCertificate(key);
          return c ? [c] : [];
        });
        if (page.length > 0) yield page;
      } while (cursor !== '0');
    }
  }

  /**
   * One page of certificates in id order, after the id `after`. Walking with the last id of each page
   * never repeats or skips a certificate that exists for the whole walk, whatever else is created or
   * deleted meanwhile.
   */
  async list(
    t: Tenant,
    limit: number,
    after?: string,
  ): Promise<{ items: ClientCertificate[]; last?: string }> {
    const ids = await this.redis.zrangebylex(
      this.keys.index(t),
      after ? `(${after}` : '-',
      '+',
      'LIMIT',
      0,
      limit + 1,
    );
    const more = ids.length > limit;
    const page = ids.slice(0, limit);
    if (page.length === 0) return { items: [] };
    const pipe = this.redis.pipeline();
    for (const id of page) pipe.hgetall(this.keys.certificate(t, id)).hgetall(this.keys.tags(t, id));
    const res = (await pipe.exec()) ?? [];
    const items: ClientCertificate[] = [];
    page.forEach((id, i) => {
      const [e1, fields] = res[i * 2] ?? [];
      const [e2, tags] = res[i * 2 + 1] ?? [];
      if (e1) throw e1;
      if (e2) throw e2;
      const c = fromHash(id, fields as Record<string, string>, tags as Record<string, string>);
      if (c) items.push(c); // deleted between the two reads: it did not exist for the whole walk
    });
    return more ? { items, last: page[page.length - 1] } : { items };
  }

  /** @param description the new description, or undefined to remove it. @returns false when not found. */
  async setDescription(t: Tenant, id: string, description: string | undefined): Promise<boolean> {
    if (!isId(id)) return false;
    const key = this.keys.certificate(t, id);
    const r =
      description === undefined
        ? await this.redis.ccDescribe(key, 'del')
        : await this.redis.ccDescribe(key, 'set', description);
    return r === 1;
  }

  /**
   * @param revocation CA mode: the certificate's revocation, recorded in the same atomic step as the
   *   delete (shared/lua/delete-revoking.lua).
   * @returns false when not found.
   */
  async delete(t: Tenant, id: string, revocation?: RevocationEntry): Promise<boolean> {
    if (!isId(id)) return false;
    const k = this.keys;
    const deleted = revocation
      ? (await this.redis.ccDeleteRevoking(
          k.certificate(t, id),
          k.tags(t, id),
          k.index(t),
          k.revoked(t),
          k.revokedAt(t),
          id,
          revocation.serial,
          revocation.notAfter,
          revocation.revokedAt,
          Math.floor(revocation.revokedAt / 1000),
        )) === 1
      : (await this.redis.ccDelete(k.certificate(t, id), k.tags(t, id), k.index(t), id)) === 1;
    if (deleted) await this.indexExpiry('zrem', t, id);
    return deleted;
  }

  /** Merges tags; never leaves more than `max`. */
  async tag(
    t: Tenant,
    id: string,
    tags: Record<string, string>,
    max: number,
  ): Promise<'ok' | 'notfound' | 'limit'> {
    if (!isId(id)) return 'notfound';
    const r = await this.redis.ccTag(
      this.keys.certificate(t, id),
      this.keys.tags(t, id),
      max,
      ...Object.entries(tags).flat(),
    );
    return r === 1 ? 'ok' : r === 0 ? 'notfound' : 'limit';
  }

  /** @returns false when not found. */
  async untag(t: Tenant, id: string, tagKeys: string[]): Promise<boolean> {
    if (!isId(id)) return false;
    return (await this.redis.ccUntag(this.keys.certificate(t, id), this.keys.tags(t, id), ...tagKeys)) === 1;
  }

  /** Certificates that exist, plus those being generated. */
  async count(t: Tenant): Promise<{ existing: number; pending: number }> {
    const [existing, pending] = await Promise.all([
      this.redis.zcard(this.keys.index(t)),
      this.redis.zcard(this.keys.pending(t)),
    ]);
    return { existing, pending };
  }
}

/**
 * Ids become part of key names, so an id from a request that is not a well-formed id names no
 * certificate; without this, `abc123:tags` would address certificate abc123's tag hash as a record.
 */
function isId(id: string): boolean {
  return CLIENT_CERTIFICATE_ID.test(id);
}

function fromHash(
  id: string,
  f: Record<string, string>,
  tags: Record<string, string>,
): ClientCertificate | undefined {
  if (!f || f.pem === undefined) return undefined;
  const c: ClientCertificate = {
    clientCertificateId: id,
    pemEncodedCertificate: f.pem,
    createdDate: Number(f.created),
    expirationDate: Number(f.expires),
    tags: tagMap(Object.entries(tags ?? {})),
  };
  if (f.description !== undefined) c.description = f.description;
  return c;
}
