import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { ClientCertificateStore } from '../shared/client-certificate-store.js';
import { newClientCertificateId } from '../shared/ids.js';
import { Keys, type Tenant } from '../shared/keys.js';
import { createRedis, patientOptions } from '../shared/redis.js';
import { startRedis, type TestRedis } from '../devtools/redis-server.js';

const T: Tenant = { accountId: '000000000000', region: 'us-east-1' };

describe('ClientCertificateStore (real Redis)', () => {
  let redis: TestRedis;
  let conn: Redis;
  let keys: Keys;
  let store: ClientCertificateStore;

  before(async () => {
    redis = await startRedis();
    conn = createRedis(redis.url, patientOptions(), 'cc-store-test');
  });
  beforeEach(() => {
    keys = new Keys(`s${randomUUID().slice(0, 8)}`);
    store = new ClientCertificateStore(conn, keys);
  });
  after(async () => {
    conn.disconnect();
    await redis.destroy();
  });

  async function put(id: string, tags: Record<string, string> = {}): Promise<void> {
    assert.equal(await store.reserve(T, id, 60_000, 0), 'reserved');
    const r = await store.createIfReserved(T, {
      clientCertificateId: id,
      pemEncodedCertificate: `pem-${id}`,
      createdDate: 1_700_000_000,
      expirationDate: 1_731_536_000,
      tags,
      encryptedKey: 'sealed',
    });
    assert.equal(r, 'created');
  }

  it('treats an id that is not 6 characters of [a-z0-9] as naming nothing, so it cannot reach another key', async () => {
    await put('abc123', { team: 'payments' });
    // `abc123:tags` would otherwise address abc123's tag hash as if it were a certificate record.
    const alias = 'abc123:tags';
    assert.equal(await store.get(T, alias), undefined);
    assert.equal(await store.getEncryptedKey(T, alias), undefined);
    assert.equal(await store.setDescription(T, alias, 'x'), false);
    assert.equal(await store.tag(T, alias, { x: 'y' }, 50), 'notfound');
    assert.equal(await store.untag(T, alias, ['team']), false);
    assert.equal(await store.delete(T, alias), false);
    assert.deepEqual(await conn.hgetall(keys.tags(T, 'abc123')), { team: 'payments' }, 'tags untouched');
    assert.deepEqual({ ...(await store.get(T, 'abc123'))?.tags }, { team: 'payments' });
  });

  it('delete removes the record with its sealed key, the tags and the index entry', async () => {
    await put('del001', { a: 'b' });
    assert.equal(await store.delete(T, 'del001'), true);
    assert.equal(await conn.exists(keys.certificate(T, 'del001'), keys.tags(T, 'del001')), 0);
    assert.equal(await conn.zscore(keys.index(T), 'del001'), null);
    assert.equal(await store.delete(T, 'del001'), false);
  });

  it('list walks every certificate once, in id order, while others are created and deleted concurrently', async () => {
    const initial = new Set<string>();
    while (initial.size < 150) initial.add(newClientCertificateId());
    for (const id of initial) await put(id);
    const doomed = [...initial].filter((_, i) => i % 5 === 0);
    const created = new Set<string>();

    let walking = true;
    const churn = (async () => {
      let i = 0;
      while (walking) {
        let id = newClientCertificateId();
        while (initial.has(id) || created.has(id)) id = newClientCertificateId();
        created.add(id);
        await put(id);
        const victim = doomed[i++ % doomed.length]!;
        await store.delete(T, victim);
        await new Promise((r) => setImmediate(r));
      }
    })();

    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    try {
      do {
        const page = await store.list(T, 7, after);
        pages++;
        seen.push(...page.items.map((c) => c.clientCertificateId));
        after = page.last;
        await new Promise((r) => setTimeout(r, 2)); // let the churn move between pages
      } while (after);
    } finally {
      walking = false;
      await churn;
    }

    assert.ok(pages > 20 && created.size > 10, `pages ${pages}, created ${created.size}`);
    assert.equal(new Set(seen).size, seen.length, 'no repeats');
    assert.deepEqual(seen, [...seen].sort());
    for (const id of initial) {
      if (!doomed.includes(id)) assert.ok(seen.includes(id), `${id} skipped`);
    }
  });

  it('tag merges up to the maximum and refuses atomically past it', async () => {
    await put('tag001', { a: '1', b: '2' });
    assert.equal(await store.tag(T, 'tag001', { b: '3', c: '4' }, 3), 'ok');
    assert.equal(await store.tag(T, 'tag001', { d: '5', a: '6' }, 3), 'limit');
    assert.deepEqual({ ...(await store.get(T, 'tag001'))?.tags }, { a: '1', b: '3', c: '4' });
    assert.equal(await store.tag(T, 'nosuch', { a: '1' }, 3), 'notfound');
    assert.equal(await conn.exists(keys.tags(T, 'nosuch')), 0);
  });
});
