import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { awsClient, showOutcome as show, generate } from '../devtools/aws-client.js';
import { killAll, serviceEnv, spawnApi, spawnWorker, type ServiceProcess } from '../devtools/processes.js';
import { TENANT, storeView, type StoreView } from './helpers/records.js';
import { startPrimaryWithReplicas, type TestReplicatedRedis } from './helpers/redis-replicated.js';
import { signedFetch } from '../devtools/signed-fetch.js';

/** Freezes the replica and cuts its link, so WAIT cannot be satisfied; undone by the returned function. */
async function cutOff(redis: TestReplicatedRedis): Promise<() => Promise<void>> {
  const replica = redis.replicas[0]!;
  replica.pause();
  await redis.primary.cli('CLIENT', 'KILL', 'TYPE', 'replica');
  return async () => {
    replica.resume();
    const { waitFor } = await import('../devtools/redis-server.js');
    // Connected is not caught up: the replica may need a full resync (diskless, after Redis's 5 s
    // repl-diskless-sync-delay), so wait until it is online and has acknowledged every write the primary
    // took meanwhile (WAIT, in short calls: redis-cli runs at most 5 s here).
    await waitFor(
      async () => /slave0:.*state=online/.test(await redis.primary.cli('INFO', 'replication')),
      30_000,
      100,
    );
    await waitFor(async () => (await redis.primary.cli('WAIT', '1', '1000')) === '1', 30_000, 100);
  };
}

describe('durable acknowledgement: REDIS_WAIT_REPLICAS=1 on a primary with one replica', () => {
  let redis: TestReplicatedRedis;
  let api: ServiceProcess;
  let view: StoreView;
  before(async () => {
    redis = await startPrimaryWithReplicas(1);
    const env = serviceEnv(
      { url: `redis://127.0.0.1:${redis.primary.port}` },
      {
        REDIS_WAIT_REPLICAS: '1',
        // Long enough for a replica on a loaded 2-core machine (300 ms once failed the retry in CI-like
        // runs: the resumed replica had not caught up), short enough that the cut-off cases stay quick.
        REDIS_WAIT_TIMEOUT_MS: '2000',
        CLIENT_CERTIFICATE_LIMIT: '1',
        KEY_POOL_SIZE: '2',
        LOG_LEVEL: 'info',
      },
    );
    [api] = await Promise.all([spawnApi(env), spawnWorker(env)]);
    view = storeView({ redisUrl: `redis://127.0.0.1:${redis.primary.port}` }, env.REDIS_PREFIX!);
  });
  after(async () => {
    await view?.close();
    await killAll();
    await redis?.destroy();
  });

  it('answers Generate 503 with Retry-After while no replica confirms, undoes it, and the retry counts once against the quota', async () => {
    const client = awsClient(api.url);
    const restore = await cutOff(redis);
    let o;
    try {
      o = await generate(client, { description: 'first' });
    } finally {
      await restore();
    }
    assert.equal(o.ok, false, show(o));
    if (o.ok) return;
    assert.equal(o.status, 503);
    assert.equal(o.type, 'ServiceUnavailableException');
    assert.match(o.message, /could not be confirmed on 1 Redis replica\(s\) within 2000 ms\. Retry later\./);
    assert.ok(Number(o.retryAfter) >= 1, `Retry-After: ${o.retryAfter}`);
    assert.deepEqual(
      await view.store.count(TENANT),
      { existing: 0, pending: 0 },
      'the 503 certificate was not undone',
    );

    // The limit is 1: the retry must not find the first attempt counted.
    const retry = await generate(client, { description: 'retry' });
    assert.ok(retry.ok, show(retry));
    assert.equal(retry.cert.description, 'retry');
    assert.equal(retry.cert.$metadata.httpStatusCode, 201);
    assert.deepEqual(await view.store.count(TENANT), { existing: 1, pending: 0 });
    // And it is on the replica: WAIT confirmed it before the 201.
    const key = view.store.keys.certificate(TENANT, retry.cert.clientCertificateId!);
    assert.equal(await redis.replicas[0]!.cli('EXISTS', key), '1');
    client.destroy();
  });

  it('answers Update, TagResource, UntagResource and Delete 2xx with the replica, 503 without it', async () => {
    const [c] = await view.all();
    assert.ok(c);
    const id = c.clientCertificateId;
    const arn = encodeURIComponent(`arn:aws:apigateway:us-east-1::/clientcertificates/${id}`);
    const json = { 'content-type': 'application/json' };
    const patch = (value: string) =>
      signedFetch(api.url, `/clientcertificates/${id}`, {
        method: 'PATCH',
        headers: json,
        body: JSON.stringify({ patchOperations: [{ op: 'replace', path: '/description', value }] }),
      });
    const tag = () =>
      signedFetch(api.url, `/tags/${arn}`, {
        method: 'PUT',
        headers: json,
        body: JSON.stringify({ tags: { team: 'a' } }),
      });
    const untag = () => signedFetch(api.url, `/tags/${arn}?tagKeys=team`, { method: 'DELETE' });
    const del = () => signedFetch(api.url, `/clientcertificates/${id}`, { method: 'DELETE' });

    assert.equal((await patch('two')).status, 200);
    assert.equal((await tag()).status, 204);
    assert.equal((await untag()).status, 204);

    const restore = await cutOff(redis);
    try {
      for (const [name, call] of [
        ['update', () => patch('three')],
        ['tag', tag],
        ['untag', untag],
        ['delete', del],
      ] as const) {
        const res = await call();
        assert.equal(res.status, 503, `${name}: ${res.status} ${await res.clone().text()}`);
        assert.equal(res.headers.get('x-amzn-errortype'), 'ServiceUnavailableException');
        assert.ok(Number(res.headers.get('retry-after')) >= 1);
        assert.match(
          ((await res.json()) as { message: string }).message,
          /could not be confirmed on 1 Redis replica/,
        );
      }
    } finally {
      await restore();
    }
    // The unconfirmed Delete may have taken effect: a retry says which (202, or 404 when it had).
    const again = await del();
    assert.ok(again.status === 202 || again.status === 404, String(again.status));
    assert.equal(await view.store.get(TENANT, id), undefined);
  });
});
