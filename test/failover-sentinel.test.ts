import { after, describe, it } from 'node:test';
import { assertNothingLost, assertSomethingLost, failoverScenario } from './helpers/failover-load.js';
import { killAll, serviceEnv } from '../devtools/processes.js';
import { startSentinelSet, type TestSentinelSet } from './helpers/redis-replicated.js';

const LIMIT = 60;

async function scenario(set: TestSentinelSet, waitReplicas: number) {
  const env = serviceEnv(
    { url: '' },
    {
      REDIS_SENTINELS: set.sentinelAddrs,
      REDIS_SENTINEL_MASTER: set.masterName,
      REDIS_WAIT_REPLICAS: String(waitReplicas),
      REDIS_WAIT_TIMEOUT_MS: '500',
      GENERATE_TIMEOUT_MS: '5000',
      CLIENT_CERTIFICATE_LIMIT: String(LIMIT),
      KEY_POOL_SIZE: '16',
      WORKER_CONCURRENCY: '3',
      WORKER_WATCHDOG_INTERVAL_MS: '1000',
      LOG_LEVEL: process.env.FAILOVER_DEBUG ? 'debug' : 'info',
    },
  );
  return failoverScenario({
    env,
    primary: set.primary,
    replicas: set.replicas,
    target: {
      redisSentinels: set.sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
      redisSentinelMaster: set.masterName,
    },
  });
}

/**
 * The scenario 3(a) on a primary, two replicas and three Sentinels (down-after 1 s): see
 * failoverScenario for the steps.
 */
describe('Sentinel failover under load (real redis-server, redis-server --sentinel)', () => {
  let set: TestSentinelSet | undefined;
  after(async () => {
    await killAll();
    await set?.destroy();
  });

  it('with REDIS_WAIT_REPLICAS=1 loses no acknowledged change and answers 2xx again within 20 s', async (t) => {
    set = await startSentinelSet();
    const r = await scenario(set, 1);
    t.diagnostic(JSON.stringify(r));
    assertNothingLost(r, LIMIT);
    await killAll();
    await set.destroy();
    set = undefined;
  });

  it('with REDIS_WAIT_REPLICAS=0 (the default) the same scenario loses acknowledged changes', async (t) => {
    set = await startSentinelSet();
    const r = await scenario(set, 0);
    t.diagnostic(JSON.stringify(r));
    assertSomethingLost(r);
  });
});
