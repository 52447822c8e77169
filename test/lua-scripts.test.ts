import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { parseClusterNodes } from '../shared/config.js';
import { Keys, type Tenant } from '../shared/keys.js';
import { SCRIPTS, withScripts, type ScriptName, type Scripted } from '../shared/lua/index.js';
import { QUEUE_NAME } from '../shared/jobs.js';
import { createRedis, patientOptions, type RedisClient } from '../shared/redis.js';
import { BULK_BASE, MAX_PRIORITY } from '../shared/scheduler.js';
import { useRedis, useRedisCluster } from './helpers/fixture.js';

const T: Tenant = { accountId: '111122223333', region: 'eu-west-1' };

/**
 * Every script in shared/lua/, run as registered, against the outcomes its header promises. The keys of
 * one call are one tenant's, so on a Cluster they share a slot; a script touching another slot would
 * fail there with CROSSSLOT.
 */
const CASES: Record<ScriptName, (r: Scripted, k: Keys) => Promise<void>> = {
  async ccReserve(r, k) {
    const reserve = (id: string, ttlMs: number, limit: number) =>
      r.ccReserve(k.certificate(T, id), k.index(T), k.pending(T), id, ttlMs, limit);
    assert.equal(await reserve('r1', 60_000, 2), 1, 'reserved');
    assert.equal(await reserve('r1', 60_000, 2), 0, 'the id is taken');
    assert.equal(await reserve('r2', 60_000, 2), 1);
    assert.equal(await reserve('r3', 60_000, 2), -2, 'quota reached');
    assert.equal(await reserve('r3', 60_000, 0), 1, '0 = no limit');
    assert.equal(await reserve('r4', -1000, 0), 1);
    assert.equal(await reserve('r4', 60_000, 0), 1, 'an expired reservation is dropped first');
    assert.equal(await r.zcard(k.pending(T)), 4);
  },
  async ccCreate(r, k) {
    await r.ccReserve(k.certificate(T, 'c1'), k.index(T), k.pending(T), 'c1', 60_000, 0);
    const create = (id: string) =>
      r.ccCreate(
        k.certificate(T, id),
        k.tags(T, id),
        k.index(T),
        k.pending(T),
        id,
        2,
        'pem',
        'PEM',
        'created',
        '1',
        1,
        'team',
        'a',
      );
    assert.equal(await create('c1'), 1, 'created');
    assert.deepEqual(await r.hgetall(k.certificate(T, 'c1')), { pem: 'PEM', created: '1' });
    assert.deepEqual(await r.hgetall(k.tags(T, 'c1')), { team: 'a' });
    assert.notEqual(await r.zscore(k.index(T), 'c1'), null);
    assert.equal(await r.zscore(k.pending(T), 'c1'), null, 'the reservation ends');
    assert.equal(await create('c1'), 0, 'already exists');
    assert.equal(await create('c2'), -1, 'no reservation');
    assert.equal(await r.exists(k.certificate(T, 'c2')), 0);
  },
  async ccCommit(r, k) {
    const reserve = (id: string, ttlMs: number) =>
      r.ccReserve(k.certificate(T, id), k.index(T), k.pending(T), id, ttlMs, 0);
    const createProvisional = (id: string) =>
      r.ccCreate(
        k.certificate(T, id),
        k.tags(T, id),
        k.index(T),
        k.pending(T),
        id,
        1,
        'pem',
        'PEM',
        1,
        'team',
        'a',
        '1',
      );
    const commit = (id: string) =>
      r.ccCommit(k.certificate(T, id), k.tags(T, id), k.index(T), k.pending(T), id);
    await reserve('p1', 60_000);
    assert.equal(await createProvisional('p1'), 1, 'stored provisional');
    assert.equal(await r.hget(k.certificate(T, 'p1'), 'provisional'), '1');
    assert.equal(await r.zscore(k.index(T), 'p1'), null, 'not listed');
    assert.notEqual(await r.zscore(k.pending(T), 'p1'), null, 'still counted against the quota');
    const ttl = await r.pttl(k.certificate(T, 'p1'));
    assert.ok(ttl > 0 && ttl <= 60_000, `expires with its reservation: ${ttl}`);
    assert.ok((await r.pttl(k.tags(T, 'p1'))) > 0, 'its tags too');
    assert.equal(await r.ccFence(k.certificate(T, 'p1'), k.fence(T)), 0, 'nobody sees it');
    assert.equal(await r.ccDelete(k.certificate(T, 'p1'), k.tags(T, 'p1'), k.index(T), 'p1'), 0);

    assert.equal(await commit('p1'), 1, 'committed');
    assert.equal(await r.hget(k.certificate(T, 'p1'), 'provisional'), null);
    assert.equal(await r.pttl(k.certificate(T, 'p1')), -1, 'no longer expires');
    assert.equal(await r.pttl(k.tags(T, 'p1')), -1);
    assert.notEqual(await r.zscore(k.index(T), 'p1'), null, 'listed');
    assert.equal(await r.zscore(k.pending(T), 'p1'), null, 'the reservation ends');
    assert.equal(await commit('p1'), 1, 'asking again learns the same outcome');

    await reserve('p2', 60_000);
    assert.equal(await createProvisional('p2'), 1);
    await r.zadd(k.pending(T), Date.now() - 1, 'p2'); // its reservation has passed
    assert.equal(await commit('p2'), 0, 'too late: never a certificate');
    assert.equal(await r.exists(k.certificate(T, 'p2'), k.tags(T, 'p2')), 0, 'removed with its key');
    assert.equal(await r.zscore(k.pending(T), 'p2'), null);

    await reserve('p3', 60_000);
    assert.equal(await createProvisional('p3'), 1);
    assert.equal(await r.ccSettle(k.certificate(T, 'p3'), k.pending(T), 'p3'), 0, 'given up');
    assert.equal(await r.exists(k.certificate(T, 'p3')), 0, 'record and sealed key removed');
    assert.equal(await commit('p3'), 0, 'a commit after giving up finds nothing');
    assert.equal(await r.zscore(k.index(T), 'p3'), null);

    // 'read': the commit and the API's read of its answer in one round trip.
    const commitRead = (id: string) =>
      r.ccCommit(k.certificate(T, id), k.tags(T, id), k.index(T), k.pending(T), id, 'read') as unknown;
    await reserve('q1', 60_000);
    assert.equal(await createProvisional('q1'), 1);
    assert.deepEqual(
      await commitRead('q1'),
      [1, ['pem', 'PEM'], ['team', 'a']],
      'committed, and read without the provisional mark',
    );
    assert.notEqual(await r.zscore(k.index(T), 'q1'), null, 'listed');
    assert.equal(await r.zscore(k.pending(T), 'q1'), null, 'the reservation ends');
    assert.deepEqual(await commitRead('q1'), [1, ['pem', 'PEM'], ['team', 'a']], 'asking again: the same');
    await reserve('q2', 60_000);
    assert.deepEqual(await commitRead('q2'), [0], 'no record');
    assert.notEqual(await r.zscore(k.pending(T), 'q2'), null, 'nothing changed: the caller settles');
    assert.equal(await createProvisional('q2'), 1);
    await r.zadd(k.pending(T), Date.now() - 1, 'q2');
    assert.deepEqual(await commitRead('q2'), [-1], 'too late: never a certificate');
    assert.equal(await r.exists(k.certificate(T, 'q2'), k.tags(T, 'q2')), 0, 'removed with its key');
    assert.equal(await r.zscore(k.pending(T), 'q2'), null);
  },
  async ccGet(r, k) {
    await r.hset(k.certificate(T, 'g1'), 'pem', 'PEM');
    await r.hset(k.tags(T, 'g1'), 'team', 'a');
    assert.deepEqual(await r.ccGet(k.certificate(T, 'g1'), k.tags(T, 'g1')), [
      ['pem', 'PEM'],
      ['team', 'a'],
    ]);
    assert.deepEqual(await r.ccGet(k.certificate(T, 'g2'), k.tags(T, 'g2')), [[], []]);
  },
  async ccSettle(r, k) {
    await r.hset(k.certificate(T, 's1'), 'pem', 'PEM');
    assert.equal(await r.ccSettle(k.certificate(T, 's1'), k.pending(T), 's1'), 1, 'exists');
    await r.zadd(k.pending(T), Date.now() + 60_000, 's2');
    assert.equal(await r.ccSettle(k.certificate(T, 's2'), k.pending(T), 's2'), 0, 'never will');
    assert.equal(await r.zscore(k.pending(T), 's2'), null, 'its id is released');
  },
  async ccFence(r, k) {
    assert.equal(await r.ccFence(k.certificate(T, 'f1'), k.fence(T)), 0);
    assert.equal(await r.exists(k.fence(T)), 0);
    await r.hset(k.certificate(T, 'f1'), 'pem', 'PEM');
    assert.equal(await r.ccFence(k.certificate(T, 'f1'), k.fence(T)), 1);
    const ttl = await r.pttl(k.fence(T));
    assert.ok(ttl > 0 && ttl <= 10_000, `fence expires: ${ttl}`);
  },
  async ccDelete(r, k) {
    await r.hset(k.certificate(T, 'd1'), 'pem', 'PEM');
    await r.hset(k.tags(T, 'd1'), 'team', 'a');
    await r.zadd(k.index(T), 0, 'd1');
    const del = () => r.ccDelete(k.certificate(T, 'd1'), k.tags(T, 'd1'), k.index(T), 'd1');
    assert.equal(await del(), 1);
    assert.equal(await r.exists(k.certificate(T, 'd1'), k.tags(T, 'd1')), 0);
    assert.equal(await r.zscore(k.index(T), 'd1'), null);
    assert.equal(await del(), 0, 'not found');
  },
  async ccDeleteRevoking(r, k) {
    await r.hset(k.certificate(T, 'v1'), 'pem', 'PEM');
    await r.hset(k.tags(T, 'v1'), 'team', 'a');
    await r.zadd(k.index(T), 0, 'v1');
    await r.zadd(k.revoked(T), 1000, 'old');
    await r.hset(k.revokedAt(T), 'old', '1');
    const del = () =>
      r.ccDeleteRevoking(
        k.certificate(T, 'v1'),
        k.tags(T, 'v1'),
        k.index(T),
        k.revoked(T),
        k.revokedAt(T),
        'v1',
        'ab12',
        5000,
        2_000_000,
        2000,
      );
    assert.equal(await del(), 1, 'deleted and revoked');
    assert.equal(await r.exists(k.certificate(T, 'v1'), k.tags(T, 'v1')), 0);
    assert.equal(await r.zscore(k.index(T), 'v1'), null);
    assert.equal(await r.zscore(k.revoked(T), 'ab12'), '5000');
    assert.equal(await r.hget(k.revokedAt(T), 'ab12'), '2000000');
    assert.equal(await r.zscore(k.revoked(T), 'old'), null, 'an entry past its notAfter is pruned');
    assert.equal(await r.hget(k.revokedAt(T), 'old'), null);
    assert.equal(await del(), 0, 'not found');
    assert.equal(await r.zcard(k.revoked(T)), 1, 'nothing written');
  },
  async ccCaIndex(r, k) {
    const index = (serial: string, owner: string, notAfter: number) =>
      r.ccCaIndex(k.caSerials, k.caSerialsExpiry, serial, owner, notAfter);
    assert.equal(await index('ab12', `${T.accountId}:${T.region}:aaaaaa`, 5000), 1);
    assert.equal(await r.hget(k.caSerials, 'ab12'), `${T.accountId}:${T.region}:aaaaaa`);
    assert.equal(await r.zscore(k.caSerialsExpiry, 'ab12'), '5000');
    assert.equal(await index('ab12', `${T.accountId}:${T.region}:aaaaaa`, 5000), 1, 'idempotent');
    assert.equal(await r.hlen(k.caSerials), 1);
    assert.equal(await r.zcard(k.caSerialsExpiry), 1);
  },
  async ccPruneExpired(r, k) {
    // The serial index: written by ca-index.lua, pruned by notAfter.
    for (const [serial, notAfter] of [
      ['a1', 1000],
      ['a2', 1999],
      ['a3', 2000],
      ['a4', 3000],
      ['a5', 1500],
    ] as const) {
      await r.ccCaIndex(
        k.caSerials,
        k.caSerialsExpiry,
        serial,
        `${T.accountId}:${T.region}:${serial}`,
        notAfter,
      );
    }
    const prune = (now: number, limit: number) =>
      r.ccPruneExpired(k.caSerialsExpiry, k.caSerials, now, limit);
    assert.equal(await prune(2000, 2), 2, 'at most the limit, earliest notAfter first');
    assert.equal(await r.hget(k.caSerials, 'a1'), null);
    assert.equal(await r.hget(k.caSerials, 'a5'), null);
    assert.equal(await r.hexists(k.caSerials, 'a2'), 1);
    assert.equal(await prune(2000, 10), 1, 'the rest before now; notAfter == now stays');
    assert.deepEqual((await r.hkeys(k.caSerials)).sort(), ['a3', 'a4']);
    assert.deepEqual(await r.zrange(k.caSerialsExpiry, 0, -1), ['a3', 'a4']);
    assert.equal(await prune(2000, 10), 0, 'nothing left to prune');

    // A tenant's revocations: the same pairing of a sorted set by notAfter and a hash.
    for (const [serial, notAfter] of [
      ['b1', 1000],
      ['b2', 1500],
      ['b3', 2000],
    ] as const) {
      await r.zadd(k.revoked(T), notAfter, serial);
      await r.hset(k.revokedAt(T), serial, '1');
    }
    const pruneRevoked = (now: number, limit: number) =>
      r.ccPruneExpired(k.revoked(T), k.revokedAt(T), now, limit);
    assert.equal(await pruneRevoked(2000, 1), 1, 'at most the limit');
    assert.equal(await r.hget(k.revokedAt(T), 'b1'), null);
    assert.equal(await pruneRevoked(2000, 10), 1, 'notAfter == now stays');
    assert.deepEqual(await r.zrange(k.revoked(T), 0, -1), ['b3']);
    assert.deepEqual(await r.hkeys(k.revokedAt(T)), ['b3']);
    assert.equal(await pruneRevoked(2000, 10), 0);
  },
  async ccDescribe(r, k) {
    const key = k.certificate(T, 'x1');
    assert.equal(await r.ccDescribe(key, 'set', 'text'), 0, 'not found');
    await r.hset(key, 'pem', 'PEM');
    assert.equal(await r.ccDescribe(key, 'set', 'text'), 1);
    assert.equal(await r.hget(key, 'description'), 'text');
    assert.equal(await r.ccDescribe(key, 'del'), 1);
    assert.equal(await r.hget(key, 'description'), null);
  },
  async ccTag(r, k) {
    const tag = (...kv: string[]) => r.ccTag(k.certificate(T, 't1'), k.tags(T, 't1'), 2, ...kv);
    assert.equal(await tag('a', '1'), 0, 'not found');
    await r.hset(k.certificate(T, 't1'), 'pem', 'PEM');
    assert.equal(await tag('a', '1'), 1);
    assert.equal(await tag('b', '2', 'c', '3'), -2, 'too many');
    assert.deepEqual(await r.hgetall(k.tags(T, 't1')), { a: '1' }, 'nothing written');
    assert.equal(await tag('a', '9', 'b', '2'), 1, 'a key it has does not count twice');
    assert.deepEqual(await r.hgetall(k.tags(T, 't1')), { a: '9', b: '2' });
  },
  async ccUntag(r, k) {
    const untag = (...keys: string[]) => r.ccUntag(k.certificate(T, 'u1'), k.tags(T, 'u1'), ...keys);
    assert.equal(await untag('a'), 0, 'not found');
    await r.hset(k.certificate(T, 'u1'), 'pem', 'PEM');
    await r.hset(k.tags(T, 'u1'), 'a', '1', 'b', '2');
    assert.equal(await untag('a', 'zz'), 1);
    assert.deepEqual(await r.hgetall(k.tags(T, 'u1')), { b: '2' });
    assert.equal(await untag(), 1);
  },
  async ccReseal(r, k) {
    const key = k.certificate(T, 'k1');
    assert.equal(await r.ccReseal(key, 'old', 'new'), 0, 'gone');
    assert.equal(await r.exists(key), 0, 'not recreated');
    await r.hset(key, 'key', 'old');
    assert.equal(await r.ccReseal(key, 'other', 'new'), -1, 'changed');
    assert.equal(await r.ccReseal(key, 'old', 'new'), 1);
    assert.equal(await r.hget(key, 'key'), 'new');
  },
  async ccGcra(r, k) {
    const take = () => r.ccGcra(k.throttle(T), 1000, 2);
    assert.equal(await take(), 0);
    assert.equal(await take(), 0);
    const wait = await take();
    assert.ok(wait > 0 && wait <= 1000, `burst of 2 spent: wait ${wait} ms`);
  },
  // The scheduler's scripts touch the queue's `{prefix}` slot: its own keys and BullMQ's.
  async ccSchedInteractive(r, k) {
    const prioritized = k.queueList('prioritized', QUEUE_NAME);
    const call = (account: string, ...args: (string | number)[]) =>
      r.ccSchedInteractive(
        k.schedulerAccount(account),
        prioritized,
        k.queueList('wait', QUEUE_NAME),
        k.queueList('active', QUEUE_NAME),
        ...args,
      ) as unknown as Promise<number | number[]>;
    const later = Date.now() + 60_000;
    // place: { priority, the account's jobs in flight before this one }
    assert.deepEqual(
      await call('111111111111', 'place', BULK_BASE, 'a1', later),
      [1, 0],
      'nothing in flight: V = 1',
    );
    assert.deepEqual(await call('111111111111', 'place', BULK_BASE, 'a2', later), [2, 1], 'one in flight');
    assert.deepEqual(await call('111111111111', 'place', BULK_BASE, 'gone', Date.now() - 1), [3, 2]);
    assert.deepEqual(
      await call('111111111111', 'place', BULK_BASE, 'a3', later),
      [3, 2],
      'a past deadline stops counting',
    );
    // BullMQ's scores: priority × 2^32 + arrival counter. V is the lowest waiting interactive priority.
    await r.zadd(prioritized, 5 * 2 ** 32 + 1, 'j5', 7 * 2 ** 32 + 2, 'j7', BULK_BASE * 2 ** 32, 'bulk');
    assert.deepEqual(await call('222222222222', 'place', BULK_BASE, 'b1', later), [5, 0], 'V = 5');
    assert.deepEqual(
      await call('222222222222', 'ahead', BULK_BASE),
      [1, 0, 1],
      'j5 (its place is 6); bulk never',
    );
    assert.deepEqual(await call('333333333333', 'ahead', BULK_BASE), [1, 0, 0]);
    assert.ok((await r.pttl(k.schedulerAccount('111111111111'))) > 50_000, 'expires with its last deadline');
  },
  async ccSchedBulk(r, k) {
    const prioritized = k.queueList('prioritized', QUEUE_NAME);
    const place = (batch: string, n: number) =>
      r.ccSchedBulk(k.schedulerBatch(batch), prioritized, n, 60_000, BULK_BASE, MAX_PRIORITY);
    assert.equal(await place('b1', 10), BULK_BASE, 'the first batch starts at 0');
    assert.equal(await place('b1', 5), BULK_BASE + 10, 'and continues');
    await r.zadd(prioritized, (BULK_BASE + 4) * 2 ** 32 + 9, 'waiting', 3 * 2 ** 32, 'interactive');
    assert.equal(await place('b2', 3), BULK_BASE + 4, 'a new batch starts level with the lowest waiting');
  },
  async ccSchedBacklog(r, k) {
    const prioritized = k.queueList('prioritized', QUEUE_NAME);
    await r.zadd(prioritized, 2 ** 32 + 1, 'i1', 9 * 2 ** 32 + 2, 'i2', BULK_BASE * 2 ** 32 + 3, 'b1');
    await r.rpush(k.queueList('wait', QUEUE_NAME), 'requeued');
    const counts = (await r.ccSchedBacklog(
      prioritized,
      k.queueList('wait', QUEUE_NAME),
      BULK_BASE,
    )) as unknown;
    assert.deepEqual(counts, [2, 1, 1]);
  },
};

function runAll(client: () => RedisClient): void {
  it('every registered script has a case here', () => {
    assert.deepEqual(Object.keys(CASES).sort(), Object.keys(SCRIPTS).sort());
  });
  for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
    it(name, async () => {
      // A fresh prefix per script: each starts from empty keys.
      await CASES[name](withScripts(client()), new Keys(`lua${randomBytes(4).toString('hex')}`));
    });
  }
}

describe('Lua scripts on a standalone Redis', () => {
  const fx = useRedis();
  let redis: RedisClient;
  before(() => {
    redis = createRedis(fx.redis.url, patientOptions(), 'lua-test');
  });
  after(() => redis.disconnect());
  runAll(() => redis);
});

describe('Lua scripts on a Redis Cluster', () => {
  const fx = useRedisCluster(3);
  let redis: RedisClient;
  before(() => {
    const nodes = parseClusterNodes(fx.cluster.seeds);
    assert.ok(typeof nodes !== 'string', nodes as string);
    redis = createRedis({ redisClusterNodes: nodes }, patientOptions(), 'lua-test');
  });
  after(() => redis.disconnect());
  runAll(() => redis);
});
