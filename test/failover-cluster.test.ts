import { after, describe, it } from 'node:test';
import { Keys } from '../shared/keys.js';
import { assertNothingLost, assertSomethingLost, failoverScenario } from './helpers/failover-load.js';
import { killAll, serviceEnv } from '../devtools/processes.js';
import { TENANT } from './helpers/records.js';
import { startReplicatedCluster, type TestReplicatedCluster } from './helpers/redis-replicated.js';
import { waitFor } from '../devtools/redis-server.js';

const LIMIT = 60;

async function scenario(cluster: TestReplicatedCluster, waitReplicas: number) {
  const env = serviceEnv(
    { clusterNodes: cluster.seeds },
    {
      REDIS_WAIT_REPLICAS: String(waitReplicas),
      REDIS_WAIT_TIMEOUT_MS: '500',
      GENERATE_TIMEOUT_MS: '5000',
      CLIENT_CERTIFICATE_LIMIT: String(LIMIT),
      KEY_POOL_SIZE: '16',
      WORKER_CONCURRENCY: '3',
      WORKER_WATCHDOG_INTERVAL_MS: '1000',
      LOG_LEVEL: 'info',
    },
  );
  // The shard that holds the tenant's certificates loses its master.
  const shard = await cluster.shardOf(new Keys(env.REDIS_PREFIX!).index(TENANT));
  const killed = shard.master;
  return failoverScenario({
    env,
    primary: killed,
    replicas: shard.replicas,
    target: { redisClusterNodes: cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })) },
    // The shard's only replica is now its master: the killed node comes back (as an orchestrator
    // would restart it) and rejoins as that master's replica, so WAIT can be satisfied again.
    afterKill: async () => {
      const promoted = shard.replicas[0]!;
      await waitFor(async () => (await promoted.cli('ROLE')).startsWith('master'), 15_000, 100);
      await killed.respawn();
    },
  });
}

/** The scenario 3(b): a 3-master, 3-replica Redis Cluster (node timeout 1 s), one master killed. */
describe('Redis Cluster failover under load (real redis-server, redis-cli --cluster)', () => {
  let cluster: TestReplicatedCluster | undefined;
  after(async () => {
    await killAll();
    await cluster?.destroy();
  });

  it('with REDIS_WAIT_REPLICAS=1 loses no acknowledged change and answers 2xx again within 20 s', async (t) => {
    cluster = await startReplicatedCluster(3);
    const r = await scenario(cluster, 1);
    t.diagnostic(JSON.stringify(r));
    assertNothingLost(r, LIMIT);
    await killAll();
    await cluster.destroy();
    cluster = undefined;
  });

  it('with REDIS_WAIT_REPLICAS=0 (the default) the same scenario loses acknowledged changes', async (t) => {
    cluster = await startReplicatedCluster(3);
    const r = await scenario(cluster, 0);
    t.diagnostic(JSON.stringify(r));
    assertSomethingLost(r);
  });
});
