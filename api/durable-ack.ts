/**
 * Durable acknowledgement (REDIS_WAIT_REPLICAS > 0): a change is acknowledged only once `WAIT` has
 * seen it on that many replicas of the shard that took it.
 *
 * Design, and why:
 * - WAIT covers the writes of the connection it is sent on (Redis remembers each client's replication
 *   offset after its last write). So a change and its WAIT must share one connection to one primary,
 *   and nothing may be resent elsewhere between them. Here each primary (one for standalone and
 *   Sentinel, one per Cluster master) has its own connection that never resends a command after a
 *   reconnect; a round counts as confirmed only if that connection did not drop during it (a failover
 *   in between would otherwise have WAIT confirm the new primary's state).
 * - WAIT blocks its connection until it returns, so the request path's shared connection must not
 *   send it (every Get would stall behind it while replicas are slow). Changes are grouped instead
 *   (group commit): while one round's WAIT is out, new changes queue, and the next round runs all of
 *   them and one WAIT. A change waits at most two rounds: about 2 x REDIS_WAIT_TIMEOUT_MS when the
 *   replicas do not answer, a millisecond or two when they do.
 * - Update, Delete, TagResource and UntagResource run their script on that connection, then WAIT.
 * - Generate's record is written by a worker, on another connection. The API then runs `fence` on the
 *   primary's connection: it checks that the record exists there and writes a short-lived key in the
 *   tenant's slot; the replication stream is ordered, so a WAIT that sees the fence on N replicas has
 *   seen the record too. A record missing there was lost in a failover after the worker wrote it.
 * - Not confirmed in time: the caller gets 503 with Retry-After. Update, TagResource and UntagResource
 *   are idempotent: a retry applies the same change again. A Delete may have taken effect: its retry
 *   answers 404 when it did. A Generate is undone (record, tags and index entry deleted, through this
 *   same path) before the 503, so the caller's retry counts once against the quota and the 503'd
 *   certificate never reappears; a missing record's reservation is released so a re-run job cannot
 *   create it later. The one window left: the primary dies after a replica received the record but
 *   before it received the undo (WAIT has just said the replicas are not keeping up).
 * - CA mode writes two records outside the tenant's slot, in the queue's (`{prefix}`), which on a
 *   Cluster is often another shard: the serial index OCSP reads and the set of tenants with
 *   revocations the CRL reads. The Delete registers its tenant through {@link DurableAck.confirmWrite}
 *   before its own script runs; the Generate's confirmation writes the serial's index entry again
 *   (idempotent) on that shard's connection and WAITs there too, beside the fence, and a 201 needs
 *   both confirmed (else the certificate is undone as above).
 */
import calculateSlot from 'cluster-key-slot';
import { Redis, type RedisOptions } from 'ioredis';
import type { ClientCertificate } from '../shared/client-certificate.js';
import { ClientCertificateStore } from '../shared/client-certificate-store.js';
import { ServiceUnavailableError, redisUnavailable } from '../shared/errors.js';
import type { Keys, Tenant } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import {
  createRedis,
  failFastOptions,
  isCluster,
  REDIS_SOCKET_TIMEOUT_MS,
  type RedisClient,
  type RedisTarget,
} from '../shared/redis.js';
import type { ConfirmedWrite, RevocationEntry } from '../shared/revocation-store.js';

export interface DurableAckDeps {
  /** Where Redis is (standalone, Sentinel or Cluster): the connections to each primary are opened from it. */
  target: RedisTarget;
  /** The request path's client: for a Cluster, its slot map says which master owns a key. */
  redis: RedisClient;
  keys: Keys;
  /** REDIS_WAIT_REPLICAS: how many replicas must confirm a change. */
  replicas: number;
  /** REDIS_WAIT_TIMEOUT_MS: how long WAIT waits for them. */
  timeoutMs: number;
  log: Logger;
}

/**
 * Durable acknowledgement, the one home: {@link store} is the store the routes use (changes confirmed
 * on the replicas), {@link confirmCreated} confirms a new certificate before Generate answers 201.
 */
export class DurableAck {
  private readonly confirmer: ReplicaConfirmer;
  /** The store as the routes see it: Update, Delete, TagResource and UntagResource confirmed. */
  readonly store: ClientCertificateStore;

  /** REDIS_WAIT_REPLICAS > 0: the durable acknowledgement `config` asks for; otherwise undefined. */
  static fromConfig(
    config: RedisTarget & { redisWaitReplicas?: number | undefined; redisWaitTimeoutMs?: number | undefined },
    deps: Pick<DurableAckDeps, 'redis' | 'keys' | 'log'>,
  ): DurableAck | undefined {
    if (!config.redisWaitReplicas) return undefined;
    const timeoutMs = config.redisWaitTimeoutMs ?? 1000;
    return new DurableAck({ ...deps, target: config, replicas: config.redisWaitReplicas, timeoutMs });
  }

  constructor(private readonly deps: DurableAckDeps) {
    this.confirmer = new ReplicaConfirmer(deps);
    this.store = new DurableStore(deps.redis, deps.keys, this.confirmer);
  }

  close(): void {
    this.confirmer.close();
  }

  /**
   * With REDIS_WAIT_REPLICAS > 0, answers `c` only once WAIT has seen it on that many replicas of its
   * shard. Otherwise the certificate is undone (or, if the primary no longer has it, its reservation
   * released) before the 503, so it never reappears and the caller's retry counts once against the
   * quota.
   */
  async confirmCreated(
    t: Tenant,
    c: ClientCertificate,
    log: Logger,
    also?: SideWrite,
  ): Promise<ClientCertificate> {
    const confirmer = this.confirmer;
    const id = c.clientCertificateId;
    const key = this.deps.keys.certificate(t, id);
    let acks = -1;
    try {
      const [r, side] = await Promise.all([
        confirmer.run(key, (s) => s.fence(t, id)),
        also ? confirmer.run(also.key, (_s, conn) => also.write(conn)) : undefined,
      ]);
      acks = side && !side.confirmed ? side.acks : r.acks;
      if (r.value && r.confirmed && (!side || side.confirmed)) return c;
      if (!r.value) {
        // Acknowledged by a primary that is gone: the record did not survive the failover.
        log.warn({ acks }, 'new certificate missing on the current primary: releasing its reservation');
        await confirmer.run(key, (s) => s.settle(t, id));
        throw notConfirmed(confirmer, acks, 'The certificate');
      }
    } catch (err) {
      if (err instanceof ServiceUnavailableError) throw err;
      log.warn({ err }, 'could not confirm the new certificate on the replicas');
    }
    await this.undo(t, id, log);
    throw notConfirmed(confirmer, acks, 'The certificate');
  }

  /**
   * Runs `write` on the connection to the primary that owns `key` and WAITs: the change's value once
   * confirmed on the replicas; a 503 when it was not (it may have taken effect on the primary) or when
   * Redis did not answer.
   */
  readonly confirmWrite: ConfirmedWrite = (key, write) => this.confirmedWrite(key, write);

  private async confirmedWrite<T>(key: string, write: (redis: RedisClient) => Promise<T>): Promise<T> {
    let r: Confirmed<T>;
    try {
      r = await this.confirmer.run(key, (_s, conn) => write(conn));
    } catch (err) {
      throw redisUnavailable(err);
    }
    if (!r.confirmed) throw notConfirmed(this.confirmer, r.acks);
    return r.value;
  }

  /**
   * Deletes a certificate the caller is being told failed, until a WAIT confirms the delete: the
   * first attempt before the 503 goes out (so an immediate retry finds the quota freed), further ones
   * a second apart in the background (at most 30). Each delete follows the record in its shard's
   * replication stream, so a replica that has the delete no longer has the certificate.
   */
  private async undo(t: Tenant, id: string, log: Logger): Promise<void> {
    const confirmer = this.confirmer;
    const key = this.deps.keys.certificate(t, id);
    const attempt = async (n: number): Promise<boolean> => {
      try {
        const r = await confirmer.run(key, (s) => s.delete(t, id));
        if (r.confirmed) log.warn({ attempt: n, existed: r.value }, 'unconfirmed certificate undone');
        return r.confirmed;
      } catch {
        return false; // Redis away: try again
      }
    };
    if (await attempt(1)) return;
    void (async () => {
      for (let n = 2; n <= 30; n++) {
        await new Promise((r) => setTimeout(r, 1000).unref());
        if (await attempt(n)) return;
      }
      log.error('unconfirmed certificate not confirmed undone: a failover could bring it back');
    })();
  }
}

/**
 * The store as the routes see it when REDIS_WAIT_REPLICAS > 0: Update, Delete, TagResource and
 * UntagResource run through the {@link ReplicaConfirmer}, and one that changed something but was
 * not confirmed on enough replicas in time becomes a 503 (see the design above).
 * Reads are unchanged.
 */
class DurableStore extends ClientCertificateStore {
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
      throw redisUnavailable(err);
    }
    if (changed(r.value) && !r.confirmed) throw notConfirmed(this.confirmer, r.acks);
    return r.value;
  }
}

/** A write outside the certificate's slot that a Generate's 201 also waits on (CA mode's serial index). */
export interface SideWrite {
  /** A key of the slot it writes: its shard's primary runs it and WAITs. */
  key: string;
  write: (redis: RedisClient) => Promise<unknown>;
}

/** The 503 for a change WAIT did not confirm on enough replicas in time. */
function notConfirmed(c: ReplicaConfirmer, acks: number, what = 'The change'): ServiceUnavailableError {
  return new ServiceUnavailableError(
    `${what} could not be confirmed on ${c.replicas} Redis replica(s) within ${c.timeoutMs} ms. Retry later.`,
    Math.max(1, Math.ceil((2 * c.timeoutMs) / 1000)),
    new Error(`WAIT ${c.replicas} ${c.timeoutMs}: ${acks} replica(s) confirmed`),
  );
}

/** The WAIT machinery: one connection per primary, group commit (see the design above). */
class ReplicaConfirmer {
  private readonly channels = new Map<string, Channel>();
  private closed = false;

  private readonly target: RedisTarget;
  private readonly main: RedisClient;
  private readonly keys: Keys;
  readonly replicas: number;
  readonly timeoutMs: number;
  private readonly log: Logger;

  constructor(deps: DurableAckDeps) {
    this.target = deps.target;
    this.main = deps.redis;
    this.keys = deps.keys;
    this.replicas = deps.replicas;
    this.timeoutMs = deps.timeoutMs;
    this.log = deps.log;
  }

  /**
   * Runs `op` on the connection to the primary that owns `key` (grouped with other changes), then
   * WAITs for `replicas` replicas. @returns the op's value and whether WAIT confirmed it in time.
   * @throws what the op throws (e.g. Redis unavailable).
   */
  run<T>(key: string, op: (store: ClientCertificateStore, conn: Redis) => Promise<T>): Promise<Confirmed<T>> {
    return this.channel(key).submit(op);
  }

  close(): void {
    this.closed = true;
    for (const c of this.channels.values()) c.conn.disconnect();
    this.channels.clear();
  }

  private options(): RedisOptions {
    return {
      ...failFastOptions(),
      // A command never follows the connection to another server: what ran before a drop stays
      // unconfirmed rather than being confirmed by WAIT on the new primary.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      reconnectOnError: (err) => err.message.startsWith('READONLY'),
      commandTimeout: this.timeoutMs + 2000,
      // WAIT legitimately sends nothing back for up to its timeout.
      socketTimeout: Math.max(REDIS_SOCKET_TIMEOUT_MS, this.timeoutMs + 2000),
    };
  }

  private channel(key: string): Channel {
    if (this.closed) throw new Error('replica confirmer closed');
    let id = 'primary';
    let node: { host: string; port: number } | undefined;
    if (isCluster(this.main)) {
      const owner = this.main.slots[calculateSlot(key)]?.[0];
      if (!owner) throw new Error(`no known master for slot of ${key}`);
      id = owner;
      const i = owner.lastIndexOf(':');
      node = { host: owner.slice(0, i), port: Number(owner.slice(i + 1)) };
    }
    let c = this.channels.get(id);
    if (!c) {
      const name = 'cc-api-durable';
      const conn: Redis = node
        ? new Redis({
            ...(this.target.redisPassword ? { password: this.target.redisPassword } : {}),
            ...this.options(),
            host: node.host,
            port: node.port,
            connectionName: name,
          })
        : (createRedis({ ...this.target, redisClusterNodes: undefined }, this.options(), name) as Redis);
      conn.on('error', (err) => this.log.debug({ err, node: id }, 'durable connection error'));
      c = new Channel(conn, new ClientCertificateStore(conn, this.keys), this.replicas, this.timeoutMs);
      this.channels.set(id, c);
    }
    return c;
  }
}

export interface Confirmed<T> {
  value: T;
  /** Replicas WAIT counted; -1 when WAIT itself failed. */
  acks: number;
  confirmed: boolean;
}

interface Member {
  op: (store: ClientCertificateStore, conn: Redis) => Promise<unknown>;
  resolve: (r: Confirmed<unknown>) => void;
  reject: (err: unknown) => void;
}

/** One primary's connection and its group-commit loop. */
class Channel {
  private queue: Member[] = [];
  private running = false;
  /** Incremented whenever the connection drops: a round spanning a drop is not confirmed. */
  private epoch = 0;

  constructor(
    readonly conn: Redis,
    private readonly store: ClientCertificateStore,
    private readonly replicas: number,
    private readonly timeoutMs: number,
  ) {
    conn.on('close', () => (this.epoch += 1));
  }

  /** Waits (at most 2 s) for the connection to be usable; an op on one that is not fails at once. */
  private async ready(): Promise<void> {
    if (this.conn.status === 'ready') return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.conn.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, 2000);
      this.conn.once('ready', done);
    });
  }

  submit<T>(op: (store: ClientCertificateStore, conn: Redis) => Promise<T>): Promise<Confirmed<T>> {
    return new Promise<Confirmed<T>>((resolve, reject) => {
      this.queue.push({ op, resolve: resolve as (r: Confirmed<unknown>) => void, reject });
      if (!this.running) void this.loop();
    });
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        // Awaited first: changes submitted in the same tick (a Generate's fence and its CA serial index
        // entry on one primary) join this round rather than wait for the next.
        await this.ready();
        const batch = this.queue.splice(0);
        const epoch = this.epoch;
        const ready = this.conn.status === 'ready';
        // Each op's reply is awaited before WAIT is sent: a script's EVALSHA that meets NOSCRIPT is
        // resent as EVAL, which must not land after the WAIT meant to cover it.
        const results = await Promise.all(
          batch.map((m) =>
            m.op(this.store, this.conn).then(
              (value) => ({ ok: true as const, value }),
              (err: unknown) => ({ ok: false as const, err }),
            ),
          ),
        );
        const acks =
          results.some((r) => r.ok) && ready
            ? await this.conn.wait(this.replicas, this.timeoutMs).catch(() => -1)
            : -1;
        const confirmed = acks >= this.replicas && epoch === this.epoch && this.conn.status === 'ready';
        batch.forEach((m, i) => {
          const r = results[i]!;
          if (r.ok) m.resolve({ value: r.value, acks, confirmed });
          else m.reject(r.err);
        });
      }
    } finally {
      this.running = false;
    }
  }
}
