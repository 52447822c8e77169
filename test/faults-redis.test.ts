import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useRedis } from './helpers/fixture.js';
import { awsClient, showOutcome, generate, type Outcome } from '../devtools/aws-client.js';
import { serviceEnv, spawnApi, spawnWorker } from '../devtools/processes.js';
import { assertConsistent, storeView } from './helpers/records.js';
import { waitFor } from '../devtools/redis-server.js';

/** A hang detector, not a speed test: fail-fast answers take milliseconds, a hang takes forever. */
const FAIL_FAST_BOUND_MS = 5000;
const RECOVERY_BOUND_MS = 15_000;

async function health(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('Redis outage', () => {
  const fx = useRedis();

  it('fails fast with 503 while Redis is down and recovers without a restart when it is back', async (t) => {
    const env = serviceEnv(
      { url: fx.redis.url },
      { GENERATE_TIMEOUT_MS: '5000', WORKER_WATCHDOG_INTERVAL_MS: '1000', WORKER_CONCURRENCY: '2' },
    );
    const [api, worker] = await Promise.all([spawnApi(env), spawnWorker(env)]);
    const client = awsClient(api.url, { requestTimeoutMs: 30_000 });
    const outcomes: Outcome[] = [];
    const record = async (p: Promise<Outcome>) => {
      const o = await p;
      outcomes.push(o);
      return o;
    };

    const warm = await record(generate(client));
    assert.ok(warm.ok, showOutcome(warm));
    await waitFor(async () => (await health(api.url)).status === 200, 15_000, 200);

    await fx.redis.stop(true);

    const down = await Promise.all([1, 2, 3].map(() => record(generate(client))));
    for (const o of down) {
      assert.equal(o.ok, false, showOutcome(o));
      if (o.ok) continue;
      assert.equal(o.status, 503, showOutcome(o));
      assert.equal(o.type, 'ServiceUnavailableException');
      assert.match(o.message, /Redis is unavailable.*Retry later/);
      assert.ok(Number(o.retryAfter) >= 1, `Retry-After: ${o.retryAfter}`);
      assert.ok(o.ms < FAIL_FAST_BOUND_MS, `not fail-fast: ${showOutcome(o)}`);
    }
    const h = await health(api.url);
    assert.equal(h.status, 503);
    assert.equal(h.body.redis, 'down');

    await fx.redis.start();
    const back = Date.now();
    // Poll with real requests: the first 201 proves API, queue events and worker all came back.
    await waitFor(async () => (await record(generate(client))).ok, RECOVERY_BOUND_MS + 10_000, 250);
    const recoveredMs = Date.now() - back;
    assert.ok(recoveredMs < RECOVERY_BOUND_MS + 5000, `recovered only after ${recoveredMs} ms`);
    await waitFor(async () => (await health(api.url)).status === 200, RECOVERY_BOUND_MS, 200);

    // And it keeps working under load, with the same processes.
    const after = await Promise.all([1, 2, 3, 4].map(() => record(generate(client))));
    for (const o of after) assert.ok(o.ok, showOutcome(o));
    assert.ok(api.alive && worker.alive);

    const view = storeView({ redisUrl: fx.redis.url }, env.REDIS_PREFIX!);
    try {
      // The restarted Redis had no persistence: only what was created after it came back is there.
      const afterRestart = outcomes.filter((o) => o !== warm);
      await assertConsistent(afterRestart, view);
    } finally {
      await view.close();
    }
    const replaced = worker.logs.filter(
      (l) => l.msg === 'watchdog: worker stopped taking jobs; replacing it',
    );
    t.diagnostic(
      `while down: ${down.map((o) => o.ms).join(', ')} ms; recovered ${recoveredMs} ms after Redis came back; watchdog replacements: ${replaced.length}`,
    );
  });
});
