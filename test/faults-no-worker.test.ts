import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateJobId } from '../shared/jobs.js';
import { useRedis } from './helpers/fixture.js';
import { awsClient, showOutcome, generate, type Outcome } from '../devtools/aws-client.js';
import { serviceEnv, spawnApi, spawnWorker } from '../devtools/processes.js';
import { TENANT, storeView } from './helpers/records.js';
import { waitFor } from '../devtools/redis-server.js';

const TIMEOUT_MS = 1500;

describe('no worker running', () => {
  const fx = useRedis();

  it('answers 503 with Retry-After after GENERATE_TIMEOUT_MS, and the job never creates a certificate later', async () => {
    const env = serviceEnv({ url: fx.redis.url }, { GENERATE_TIMEOUT_MS: String(TIMEOUT_MS) });
    const api = await spawnApi(env);
    const client = awsClient(api.url, { requestTimeoutMs: 30_000 });

    const health = await fetch(`${api.url}/health`);
    assert.equal(health.status, 503);
    assert.equal(((await health.json()) as { workers: number }).workers, 0);

    const lost = await generate(client, { description: 'nobody will make me' });
    assert.equal(lost.ok, false, showOutcome(lost));
    if (lost.ok) return;
    assert.equal(lost.status, 503);
    assert.equal(lost.type, 'ServiceUnavailableException');
    assert.equal(
      lost.message,
      'The certificate could not be generated within 2 s; no certificate was created. Retry later.',
    );
    assert.ok(Number(lost.retryAfter) >= 1, `Retry-After: ${lost.retryAfter}`);
    assert.ok(lost.ms >= TIMEOUT_MS - 50, `answered before the timeout: ${showOutcome(lost)}`);

    const view = storeView({ redisUrl: fx.redis.url }, env.REDIS_PREFIX!);
    try {
      // The id the API reserved and gave up is known only from its log line.
      const gaveUp = await api.waitForLog((l) => l.msg === 'generation not finished in time', 10_000);
      const id = String(gaveUp.clientCertificateId);
      assert.deepEqual(await view.store.count(TENANT), { existing: 0, pending: 0 });

      // A worker arrives late; a fresh request proves it takes jobs (FIFO: it would have met the old
      // job first), and the given-up job must not have produced anything.
      const worker = await spawnWorker(env);
      // On a loaded machine one key may take longer than this test's short timeout: retry until one
      // lands (each miss is itself a 503 that must leave nothing behind).
      let fresh: Outcome | undefined;
      await waitFor(async () => (fresh = await generate(client, { description: 'made' })).ok, 60_000, 100);
      assert.ok(fresh?.ok, fresh && showOutcome(fresh));
      await waitFor(async () => (await view.queue.getJobCounts('waiting', 'active')).waiting === 0, 10_000);
      const all = await view.all();
      assert.deepEqual(
        all.map((c) => c.clientCertificateId),
        [fresh.cert.clientCertificateId],
      );
      assert.equal(await view.store.get(TENANT, id), undefined);
      assert.equal(await view.queue.getJob(generateJobId({ ...TENANT, clientCertificateId: id })), undefined);
      assert.ok(!worker.logs.some((l) => l.clientCertificateId === id && l.status === 'created'));
    } finally {
      await view.close();
    }
  });
});
