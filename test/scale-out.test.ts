import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { awsClient, showOutcome, generate } from '../devtools/aws-client.js';
import { serviceEnv, spawnApi, spawnWorker, type ServiceProcess } from '../devtools/processes.js';
import { assertConsistent, storeView } from './helpers/records.js';
import { waitFor } from '../devtools/redis-server.js';
import { useRedis } from './helpers/fixture.js';

describe('scale-out', () => {
  const fx = useRedis();

  it('2 APIs and 3 workers on one Redis answer 24 concurrent requests with 24 distinct certificates', async (t) => {
    const env = serviceEnv(
      { url: fx.redis.url },
      { GENERATE_TIMEOUT_MS: '60000', WORKER_CONCURRENCY: '2', KEY_POOL_SIZE: '2' },
    );
    const procs = await Promise.all([
      spawnApi(env),
      spawnApi(env),
      spawnWorker(env),
      spawnWorker(env),
      spawnWorker(env),
    ]);
    const [apiA, apiB, ...workers] = procs;
    const clients = [awsClient(apiA!.url), awsClient(apiB!.url)];
    const outcomes = await Promise.all(
      Array.from({ length: 24 }, (_, i) => generate(clients[i % 2]!, { description: `replica ${i}` })),
    );
    for (const o of outcomes) assert.ok(o.ok, showOutcome(o));

    const view = storeView({ redisUrl: fx.redis.url }, env.REDIS_PREFIX!);
    try {
      await assertConsistent(outcomes, view);
    } finally {
      await view.close();
    }
    const completed = (w: ServiceProcess) =>
      w.logs.filter((l) => l.msg === 'generation job completed').length;
    // Logs arrive asynchronously: wait (bounded) until every worker's lines are in.
    await waitFor(() => workers.reduce((n, w) => n + completed(w), 0) >= 24, 10_000);
    const perWorker = workers.map(completed);
    assert.equal(
      perWorker.reduce((a, b) => a + b, 0),
      24,
    );
    assert.ok(perWorker.filter((n) => n > 0).length >= 2, `work not shared: ${perWorker.join(', ')}`);
    t.diagnostic(`jobs per worker: ${perWorker.join(', ')}`);
  });
});
