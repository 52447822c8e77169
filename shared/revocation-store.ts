// CA mode's revocation records in Redis: what a delete revokes, the serial index OCSP answers from, the CRL last signed.
import { X509Certificate } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Keys, Tenant } from './keys.js';
import { withScripts, type Scripted } from './lua/index.js';
import { isCluster, type RedisClient } from './redis.js';

/** What a delete in CA mode records about the certificate it deletes. */
export interface RevocationEntry {
  /** Serial number, {@link normalSerial} form. */
  serial: string;
  /** The certificate's notAfter, epoch s: the entry is kept until then. */
  notAfter: number;
  /** When it was revoked, epoch ms. */
  revokedAt: number;
}

/**
 * A serial number as this module keys it: lowercase hex of the positive integer, no leading zeros
 * (node's X509Certificate gives `00AB..` or `AB..`; DER INTEGER contents carry a 00 before a high bit).
 */
export function normalSerial(hexOrBytes: string | Uint8Array): string {
  const hex = typeof hexOrBytes === 'string' ? hexOrBytes : Buffer.from(hexOrBytes).toString('hex');
  return hex.toLowerCase().replace(/^0+(?=.)/, '');
}

/** The revoked-and-unexpired serials of every tenant, as read for one CRL or OCSP snapshot. */
export interface RevokedSerial extends RevocationEntry {
  tenant: Tenant;
}

/** A stored, signed CRL. */
export interface StoredCrl {
  der: Buffer;
  /** Digest of the entries it lists (see api/ca-responder.ts). */
  digest: string;
  number: number;
  /** epoch ms */
  thisUpdate: number;
}

/**
 * With REDIS_WAIT_REPLICAS > 0 (api/durable-ack.ts): runs `write` on the connection to the primary that
 * owns `key` and returns once WAIT saw it on the replicas; throws (a 503) when they did not confirm it.
 */
export type ConfirmedWrite = <T>(key: string, write: (redis: RedisClient) => Promise<T>) => Promise<T>;

/** Where a serial was issued, as the serial index says. */
export interface SerialOwner {
  tenant: Tenant;
  id: string;
  /** The certificate's notAfter, epoch s; undefined for an entry indexed before notAfter was recorded. */
  notAfter: number | undefined;
}

/** CA mode's cross-tenant revocation records. */
export class RevocationStore {
  private readonly redis: Scripted;

  /**
   * @param confirm REDIS_WAIT_REPLICAS > 0 (the API): the tenant registration and the serial index are
   *   written through it, so they are on the replicas of their shard (the queue's hash slot, on a Cluster
   *   often another shard than the tenant's) before the Delete or Generate is acknowledged.
   */
  constructor(
    redis: RedisClient,
    private readonly keys: Keys,
    private readonly confirm?: ConfirmedWrite,
  ) {
    this.redis = withScripts(redis);
  }

  /**
   * Adds the tenant to the set the CRL builder reads, before its first revocation is written (confirmed
   * on the replicas with REDIS_WAIT_REPLICAS). Should this write still be lost while the tenant's
   * revocation survives (REDIS_WAIT_REPLICAS=0 and a failover of its shard), {@link reconcileTenants}
   * finds the tenant again.
   */
  async registerTenant(t: Tenant): Promise<void> {
    const member = `${t.accountId}:${t.region}`;
    if (this.confirm)
      await this.confirm(this.keys.revokedTenants, (r) => r.sadd(this.keys.revokedTenants, member));
    else await this.redis.sadd(this.keys.revokedTenants, member);
  }

  /**
   * Records which tenant and certificate a CA-issued serial belongs to, and its notAfter (so
   * {@link pruneSerials} removes it once expired). The worker writes it before the record is created;
   * with REDIS_WAIT_REPLICAS the API writes it again, confirmed, before the Generate's 201
   * ({@link indexSerialWrite}).
   */
  async indexSerial(serial: string, t: Tenant, id: string, notAfter: number): Promise<void> {
    await this.indexSerialWrite(serial, t, id, notAfter).write(this.redis);
  }

  /** {@link indexSerial} as a key and a write to run on a given connection (api/durable-ack.ts). */
  indexSerialWrite(
    serial: string,
    t: Tenant,
    id: string,
    notAfter: number,
  ): { key: string; write: (redis: RedisClient) => Promise<unknown> } {
    const k = this.keys;
    return {
      key: k.caSerials,
      write: (redis) =>
        withScripts(redis).ccCaIndex(
          k.caSerials,
          k.caSerialsExpiry,
          serial,
          `${t.accountId}:${t.region}:${id}`,
          notAfter,
        ),
    };
  }

  /** The tenant, id and notAfter a serial was issued with, or undefined when it is not in the index. */
  async lookupSerial(serial: string): Promise<SerialOwner | undefined> {
    const [v, notAfter] = await Promise.all([
      this.redis.hget(this.keys.caSerials, serial),
      this.redis.zscore(this.keys.caSerialsExpiry, serial),
    ]);
    const m = v ? /^(\d{12}):([a-z0-9-]+):([a-z0-9]+)$/.exec(v) : null;
    return m
      ? {
          tenant: { accountId: m[1]!, region: m[2]! },
          id: m[3]!,
          notAfter: notAfter === null ? undefined : Number(notAfter),
        }
      : undefined;
  }

  /**
   * Removes the index entries of certificates whose notAfter is before `nowS`, `batch` at a time.
   * @returns how many were removed.
   */
  async pruneSerials(nowS: number, batch = 1000): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.redis.ccPruneExpired(this.keys.caSerialsExpiry, this.keys.caSerials, nowS, batch);
      total += n;
      if (n < batch) return total;
    }
  }

  /**
   * Gives the index entries written before notAfter was recorded (no score in the expiry set) their
   * notAfter, so {@link pruneSerials} bounds them too: the revocation's when the certificate was deleted,
   * else its record's when that record holds this serial, else `nowS` + `maxLifetimeS` (the longest a
   * certificate issued from now on lives: an entry an older worker has just written, whose record is
   * still to come). Idempotent; every API process runs it once at start. @returns entries given one.
   */
  async backfillSerialExpiry(nowS: number, maxLifetimeS: number, count = 500): Promise<number> {
    let cursor = '0';
    let filled = 0;
    do {
      const [next, flat] = await this.redis.hscan(this.keys.caSerials, cursor, 'COUNT', count);
      cursor = next;
      const serials = flat.filter((_, i) => i % 2 === 0);
      // One round trip per page for the common case: every entry already has its notAfter.
      const scores =
        serials.length > 0 ? await this.redis.zmscore(this.keys.caSerialsExpiry, ...serials) : [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const serial = flat[i]!;
        if (scores[i / 2] !== null) continue;
        const m = /^(\d{12}):([a-z0-9-]+):([a-z0-9]+)$/.exec(flat[i + 1]!);
        if (!m) continue;
        const t = { accountId: m[1]!, region: m[2]! };
        const id = m[3]!;
        let notAfter = Number(await this.redis.zscore(this.keys.revoked(t), serial)) || undefined;
        if (notAfter === undefined) {
          const [pem, expires] = await this.redis.hmget(this.keys.certificate(t, id), 'pem', 'expires');
          notAfter = serialOf(pem) === serial && expires ? Number(expires) : nowS + maxLifetimeS;
        }
        await this.indexSerialWrite(serial, t, id, notAfter).write(this.redis);
        filled += 1;
      }
    } while (cursor !== '0');
    return filled;
  }

  /** How many serials the index holds (hash, expiry set). */
  async serialCounts(): Promise<{ serials: number; expiry: number }> {
    const [serials, expiry] = await Promise.all([
      this.redis.hlen(this.keys.caSerials),
      this.redis.zcard(this.keys.caSerialsExpiry),
    ]);
    return { serials, expiry };
  }

  /** The serial's revocation time (epoch ms) in its tenant, or undefined when it is not revoked. */
  async revokedAt(t: Tenant, serial: string): Promise<number | undefined> {
    const v = await this.redis.hget(this.keys.revokedAt(t), serial);
    return v === null ? undefined : Number(v);
  }

  /** Every tenant in the revoked-tenant set. */
  private async revokedTenants(): Promise<Tenant[]> {
    return (await this.redis.smembers(this.keys.revokedTenants)).flatMap((m) => {
      const i = m.lastIndexOf(':');
      return i > 0 ? [{ accountId: m.slice(0, i), region: m.slice(i + 1) }] : [];
    });
  }

  /**
   * Removes every tenant's revocations whose certificate expired before `nowS` (shared/lua/prune-expired.lua),
   * `batch` at a time. The tenant stays in the revoked-tenant set. @returns how many were removed.
   */
  async pruneRevoked(nowS: number, batch = 1000): Promise<number> {
    let total = 0;
    for (const t of await this.revokedTenants()) {
      for (;;) {
        const n = await this.redis.ccPruneExpired(this.keys.revoked(t), this.keys.revokedAt(t), nowS, batch);
        total += n;
        if (n < batch) break;
      }
    }
    return total;
  }

  /** Every revoked serial whose certificate has not expired at `nowS`, across tenants, sorted by serial. */
  async listRevoked(nowS: number): Promise<RevokedSerial[]> {
    const tenants = await this.revokedTenants();
    const per = await Promise.all(
      tenants.map(async (tenant) => {
        const [flat, at] = await Promise.all([
          this.redis.zrangebyscore(this.keys.revoked(tenant), nowS, '+inf', 'WITHSCORES'),
          this.redis.hgetall(this.keys.revokedAt(tenant)),
        ]);
        const out: RevokedSerial[] = [];
        for (let i = 0; i + 1 < flat.length; i += 2) {
          const serial = flat[i]!;
          out.push({ tenant, serial, notAfter: Number(flat[i + 1]), revokedAt: Number(at[serial] ?? 0) });
        }
        return out;
      }),
    );
    return per.flat().sort((a, b) => (a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0));
  }

  /**
   * Finds every tenant with a revoked set by SCAN (every master of a Cluster) and registers any the
   * tenant set lacks. @returns how many were missing.
   */
  async reconcileTenants(count = 1000): Promise<number> {
    let nodes: Redis[];
    if (isCluster(this.redis)) {
      await this.redis.ping();
      nodes = this.redis.nodes('master');
    } else {
      nodes = [this.redis];
    }
    const found: string[] = [];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', this.keys.revokedPattern, 'COUNT', count);
        cursor = next;
        for (const k of keys) {
          const t = this.keys.parseRevoked(k);
          if (t) found.push(`${t.accountId}:${t.region}`);
        }
      } while (cursor !== '0');
    }
    if (found.length === 0) return 0;
    return this.redis.sadd(this.keys.revokedTenants, ...found);
  }

  async storedCrl(): Promise<StoredCrl | undefined> {
    const h = await this.redis.hgetall(this.keys.crl);
    if (!h.der) return undefined;
    return {
      der: Buffer.from(h.der, 'base64'),
      digest: h.digest ?? '',
      number: Number(h.number),
      thisUpdate: Number(h.thisUpdate),
    };
  }

  async storeCrl(c: StoredCrl): Promise<void> {
    await this.redis.hset(this.keys.crl, {
      der: c.der.toString('base64'),
      digest: c.digest,
      number: String(c.number),
      thisUpdate: String(c.thisUpdate),
    });
  }

  /** Takes the CRL signing turn for `ms` (SET NX PX); false when another process holds it. */
  async lockCrl(ms: number): Promise<boolean> {
    return (await this.redis.set(this.keys.crlLock, String(process.pid), 'PX', ms, 'NX')) === 'OK';
  }

  async unlockCrl(): Promise<void> {
    await this.redis.del(this.keys.crlLock);
  }

  /**
   * The next CRL number: one more than the last, and never below `floor` (the caller passes the current
   * time in ms, so numbers look like 1796601600123: RFC 5280 allows 20 octets). RFC 5280 5.2.3 wants one
   * CRL issuer's numbers to increase monotonically; the counter is not WAIT-confirmed, so a failover of its
   * shard can take it back, and the floor keeps a number already published from being issued again: CRLs are
   * signed at most about one per CRL check (2 s), so the last published number is within a few of its own
   * millisecond, and after a failover the clock is seconds past it. Called under the CRL signing turn, so the
   * read and the set do not race.
   */
  async nextCrlNumber(floor: number): Promise<number> {
    const next = await this.redis.incr(this.keys.crlNumber);
    if (next >= floor) return next;
    await this.redis.set(this.keys.crlNumber, String(floor));
    return floor;
  }
}

/** The serial of a stored certificate's PEM ({@link normalSerial} form), or undefined when there is none. */
function serialOf(pem: string | null | undefined): string | undefined {
  if (!pem) return undefined;
  try {
    return normalSerial(new X509Certificate(pem).serialNumber);
  } catch {
    return undefined;
  }
}
