/**
 * Fair issuance wherever the service runs (issue 22, item 4): two API processes and two worker processes on
 * a 3-master Redis Cluster, and on a primary with replicas behind Sentinels. The scheduler's state lives
 * in Redis, so every replica must see one order: a bulk batch and a flooding account's backlog queued
 * through one API process, a polite account's Generate through the other, served by both workers.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { generate, showOutcome } from '../devtools/aws-client.js';
import { serviceEnv, spawnApi, spawnWorker, type ServiceProcess } from '../devtools/processes.js';
import { waitFor } from '../devtools/redis-server.js';
import { parseClusterNodes } from '../shared/config.js';
import { BULK_JOB_CERTIFICATES } from '../shared/jobs.js';
import { Keys } from '../shared/keys.js';
import type { RedisTarget } from '../shared/redis.js';
import { useRedisCluster, useSentinelSet } from './helpers/fixture.js';
import { BULK_TENANT, FLOODER, POLITE, backlog, clientOf, ids, spawnBulk } from './helpers/fair.js';
import { storeView } from './helpers/records.js';

const SETTINGS = {
  WORKER_CONCURRENCY: '1',
  GENERATE_TIMEOUT_MS: '60000',
  CLIENT_CERTIFICATE_LIMIT: '0',
};

/**
 * A bulk batch (through `npm run bulk`) and 24 Generates of a flooding account (through API 1) are queued
 * before any worker runs; two workers start; a polite account's Generate (through API 2) is then answered
 * while the flooder's backlog still waits and before any of the batch: first in, first out it would come
 * after all 54. Then everything completes once, and the accounts' shares are released.
 */
async function fairAcrossReplicas(t: TestContext, env: Record<string, string>, target: RedisTarget) {
  const dir = mkdtempSync(join(tmpdir(), 'cc-fair-replicated-'));
  const credentialsFile = join(dir, 'credentials.json');
  writeFileSync(credentialsFile, JSON.stringify([FLOODER, POLITE]), { mode: 0o600 });
  env = { ...env, CREDENTIALS_FILE: credentialsFile };
  const [api1, api2] = await Promise.all([spawnApi(env, 90_000), spawnApi(env, 90_000)]);
  const out = join(dir, 'batch.ndjson');
  const count = 30;
  /** The batch's jobs, of up to BULK_JOB_CERTIFICATES certificates each. */
  const jobs = Math.ceil(count / BULK_JOB_CERTIFICATES);
  const bulk = spawnBulk(count, out, env);
  const view = storeView(target, env.REDIS_PREFIX!);
  const flooder = clientOf(api1, FLOODER);
  const polite = clientOf(api2, POLITE);
  const workers: ServiceProcess[] = [];
  let bulkEnded: { code: number | null; stderr: string } | undefined;
  void bulk.done.then((r) => (bulkEnded = r));
  try {
    await waitFor(async () => {
      if (bulkEnded) throw new Error(`npm run bulk exited (${bulkEnded.code}) early: ${bulkEnded.stderr}`);
      return (await backlog(api1)).bulk === jobs;
    }, 60_000);
    const n = 24;
    let answered = 0;
    const flood = Array.from({ length: n }, (_, i) =>
      generate(flooder, { description: `flood ${i}` }).then((o) => (answered++, o)),
    );
    // Queued through API 1, seen by API 2: one backlog for every replica.
    await waitFor(
      async () => {
        const b = await backlog(api2);
        return b.interactive + b.bulk === n + jobs;
      },
      30_000,
      20,
    );
    assert.deepEqual(await backlog(api2), { interactive: n, bulk: jobs, requeued: 0 });
    workers.push(...(await Promise.all([spawnWorker(env, 90_000), spawnWorker(env, 90_000)])));
    await waitFor(() => answered >= 2, 60_000, 10);

    const o = await generate(polite, { description: 'polite' });
    const floodFirst = answered;
    const bulkFirst = (await view.store.count(BULK_TENANT)).existing;
    assert.ok(o.ok, showOutcome(o));
    t.diagnostic(
      `answered before the polite Generate: ${floodFirst} of ${n} flooder's, ${bulkFirst} of the batch`,
    );
    assert.ok(floodFirst <= n / 2, `${floodFirst} of the flooder's ${n} Generates were answered first`);
    assert.equal(bulkFirst, 0, 'a bulk job ran while interactive work waited');

    const floods = await Promise.all(flood);
    for (const f of floods) assert.ok(f.ok, showOutcome(f));
    const run = await bulk.done;
    assert.equal(run.code, 0, run.stderr);
    const written = ids(out);
    assert.equal(new Set(written).size, count, 'no certificate twice');
    const stored = await view.all(BULK_TENANT);
    assert.deepEqual(stored.map((c) => c.clientCertificateId).sort(), [...written].sort());
    for (const w of workers) {
      assert.ok(
        w.logs.some((l) => l.msg === 'generation job started'),
        'both worker processes took jobs',
      );
    }
    // Each worker ends its jobs' counts in their accounts' shares (the flooder's Generates went through
    // one API process and were served by both workers).
    const keys = new Keys(env.REDIS_PREFIX!);
    await waitFor(
      async () =>
        (await view.redis.zcard(keys.schedulerAccount(FLOODER.accountId))) === 0 &&
        (await view.redis.zcard(keys.schedulerAccount(POLITE.accountId))) === 0,
      10_000,
    );
  } finally {
    flooder.destroy();
    polite.destroy();
    bulk.child.kill('SIGKILL');
    await view.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('fair issuance on a 3-master Redis Cluster, 2 API and 2 worker processes', () => {
  const fx = useRedisCluster(3);

  it('interactive work before bulk and accounts in turn, one order for every replica', async (t) => {
    const nodes = parseClusterNodes(fx.cluster.seeds);
    assert.ok(Array.isArray(nodes));
    await fairAcrossReplicas(t, serviceEnv({ clusterNodes: fx.cluster.seeds }, SETTINGS), {
      redisClusterNodes: nodes,
    });
  });
});

describe('fair issuance behind Sentinels (a primary, 2 replicas, 3 Sentinels), 2 API and 2 worker processes', () => {
  const fx = useSentinelSet();

  it('interactive work before bulk and accounts in turn, one order for every replica', async (t) => {
    const s = fx.set;
    await fairAcrossReplicas(
      t,
      serviceEnv(
        { url: '' },
        { ...SETTINGS, REDIS_SENTINELS: s.sentinelAddrs, REDIS_SENTINEL_MASTER: s.masterName },
      ),
      {
        redisSentinels: s.sentinels.map((x) => ({ host: '127.0.0.1', port: x.port })),
        redisSentinelMaster: s.masterName,
      },
    );
  });
});
