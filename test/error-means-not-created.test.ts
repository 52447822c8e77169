import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { awsClient, generate, showOutcome } from '../devtools/aws-client.js';
import { serviceEnv, spawnApi } from '../devtools/processes.js';
import { waitFor } from '../devtools/redis-server.js';
import { ClientCertificateStore } from '../shared/client-certificate-store.js';
import { KeyVault } from '../shared/crypto/key-vault.js';
import { Keys } from '../shared/keys.js';
import { createLogger } from '../shared/logger.js';
import { createRedis, patientOptions } from '../shared/redis.js';
import { generateRsaKey, type KeySource } from '../worker/key-source.js';
import { startWorker, type RunningWorker } from '../worker/worker.js';
import { useRedis } from './helpers/fixture.js';
import { TENANT, storeView } from './helpers/records.js';

/**
 * A Generate's certificate becomes visible only once the API that answers 201 has committed it
 * (shared/lua/commit.lua); until then it is provisional and expires with its reservation. So an API
 * that dies between the job's end and its answer leaves nothing behind, with nobody to clean up.
 */
describe('an API killed while its Generates are in flight', () => {
  const fx = useRedis();
  const workers: RunningWorker[] = [];
  after(async () => {
    await Promise.all(workers.map((w) => w.close(500)));
  });

  it('leaves no certificate: the jobs finish, their records stay invisible and expire with the reservation', async () => {
    const TIMEOUT_MS = 8000;
    const env = serviceEnv({ url: fx.redis.url }, { GENERATE_TIMEOUT_MS: String(TIMEOUT_MS) });
    const api = await spawnApi(env);
    const redis = createRedis(fx.redis.url, patientOptions(), 'test-worker');
    redis.on('error', () => undefined);
    const keys = new Keys(env.REDIS_PREFIX!);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const hanging: KeySource = { take: () => gate.then(() => generateRsaKey()), close: async () => {} };
    const worker = startWorker({
      redis,
      keys,
      vault: new KeyVault([env.MASTER_KEY!]),
      keySource: hanging,
      log: createLogger('silent', 'test'),
      concurrency: 3,
      watchdogIntervalMs: 0,
    });
    workers.push(worker);
    const view = storeView({ redisUrl: fx.redis.url }, env.REDIS_PREFIX!);
    try {
      const client = awsClient(api.url, { requestTimeoutMs: 20_000, maxAttempts: 1 });
      const inFlight = [1, 2, 3].map(() => generate(client));
      await waitFor(() => worker.active === 3, 15_000);
      const jobs = await view.queue.getJobs(['active']);
      const ids = jobs.map((j) => (j.data as { clientCertificateId: string }).clientCertificateId);
      assert.equal(ids.length, 3);

      await api.kill(); // between the job's end and the answer, as far as these requests go
      for (const o of await Promise.all(inFlight)) assert.ok(!o.ok, `no answer can come: ${showOutcome(o)}`);
      release();
      // The jobs end as they would have: each stores its record, provisional.
      await waitFor(async () => (await view.queue.getCompletedCount()) === 3, 15_000);
      const store = new ClientCertificateStore(view.redis, keys);
      for (const id of ids) {
        assert.equal(await store.get(TENANT, id), undefined, `${id} is visible without a 201`);
        assert.ok(await store.get(TENANT, id, { provisional: true }), `${id} was stored provisional`);
      }
      assert.deepEqual(await view.all(), [], 'nothing listed');

      // Nobody is left to give up the reservations: Redis removes the records (and sealed keys) itself.
      await waitFor(
        async () => (await view.redis.exists(...ids.map((id) => keys.certificate(TENANT, id)))) === 0,
        TIMEOUT_MS + 15_000,
        200,
      );
      assert.equal(await view.redis.exists(...ids.map((id) => keys.tags(TENANT, id))), 0);

      // Another API replica answers as if nothing had happened: its certificate is the only one.
      const next = await spawnApi(env);
      const outcome = await generate(awsClient(next.url, { requestTimeoutMs: 20_000 }));
      assert.ok(outcome.ok, showOutcome(outcome));
      assert.deepEqual(
        (await view.all()).map((c) => c.clientCertificateId),
        [outcome.cert.clientCertificateId],
      );
      assert.deepEqual(await store.count(TENANT), { existing: 1, pending: 0 });
    } finally {
      await view.close();
      redis.disconnect();
    }
  });
});
