import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { useRedis } from './helpers/fixture.js';
import { awsClient, showOutcome, generate } from '../devtools/aws-client.js';
import {
  killAll,
  serviceEnv,
  spawnApi,
  spawnWorker,
  waitForExit,
  type LogLine,
} from '../devtools/processes.js';
import { assertConsistent, storeView } from './helpers/records.js';
import { waitFor } from '../devtools/redis-server.js';

const enqueued = (l: LogLine) => l.msg === 'generation job enqueued';

describe('graceful shutdown', () => {
  const fx = useRedis();
  afterEach(() => killAll());

  it('SIGTERM to an API lets in-flight requests finish with 201, refuses new ones, then exits 0', async () => {
    const env = serviceEnv({ url: fx.redis.url }, { GENERATE_TIMEOUT_MS: '30000' });
    const api = await spawnApi(env);
    const client = awsClient(api.url, { requestTimeoutMs: 40_000 });
    // No worker yet: the requests stay in flight for as long as the test wants.
    const inFlight = [1, 2, 3, 4].map((i) => generate(client, { description: `in flight ${i}` }));
    await waitFor(() => api.logs.filter(enqueued).length === 4, 15_000);

    api.signal('SIGTERM');
    await api.waitForLog((l) => l.msg === 'shutting down');
    // A new request on a new connection: nobody listens any more (or, racing, a 503).
    const refused = await fetch(`${api.url}/health`, { signal: AbortSignal.timeout(5000) }).then(
      (r) => `HTTP ${r.status}`,
      (err: Error & { cause?: { code?: string } }) => err.cause?.code ?? err.message,
    );
    assert.match(refused, /^(ECONNREFUSED|ECONNRESET|HTTP 503)$/);
    assert.ok(api.alive, 'the API exited with requests in flight');

    const worker = await spawnWorker(env);
    const outcomes = await Promise.all(inFlight);
    for (const o of outcomes) assert.ok(o.ok, showOutcome(o));
    assert.deepEqual(await waitForExit(api, 15_000), { code: 0, signal: null });
    assert.ok(api.logs.some((l) => l.msg === 'shutdown complete'));

    const view = storeView({ redisUrl: fx.redis.url }, env.REDIS_PREFIX!);
    try {
      await assertConsistent(outcomes, view);
    } finally {
      await view.close();
    }
    await worker.kill();
  });

  it('a second signal makes the API exit at once, even with requests in flight', async () => {
    const env = serviceEnv({ url: fx.redis.url }, { GENERATE_TIMEOUT_MS: '30000' });
    const api = await spawnApi(env);
    const pending = generate(awsClient(api.url, { requestTimeoutMs: 40_000 }));
    await api.waitForLog(enqueued, 15_000);
    api.signal('SIGTERM');
    await api.waitForLog((l) => l.msg === 'shutting down');
    assert.ok(api.alive);
    api.signal('SIGTERM');
    assert.deepEqual(await waitForExit(api, 5000), { code: 1, signal: null });
    assert.ok(api.logs.some((l) => l.msg === 'second signal: exiting now'));
    const o = await pending;
    assert.equal(o.ok, false, 'a request cut by a forced exit cannot have succeeded');
  });

  it('the hard timeout ends a drain that takes too long', async () => {
    const env = serviceEnv(
      { url: fx.redis.url },
      { GENERATE_TIMEOUT_MS: '30000', SHUTDOWN_TIMEOUT_MS: '3000' },
    );
    const api = await spawnApi(env);
    const pending = generate(awsClient(api.url, { requestTimeoutMs: 40_000 }));
    await api.waitForLog(enqueued, 15_000);
    api.signal('SIGTERM');
    // Well before GENERATE_TIMEOUT_MS: the drain gave up on the stuck request.
    const exit = await waitForExit(api, 10_000);
    assert.ok(exit.code === 0 || exit.code === 1, JSON.stringify(exit));
    const o = await pending;
    assert.equal(o.ok, false);
  });

  it('SIGTERM to a worker finishes its active jobs, takes no new ones, and exits 0', async () => {
    const env = serviceEnv({ url: fx.redis.url }, { GENERATE_TIMEOUT_MS: '60000', WORKER_CONCURRENCY: '3' });
    const [api, leaving] = await Promise.all([spawnApi(env), spawnWorker(env)]);
    const client = awsClient(api.url, { requestTimeoutMs: 70_000 });
    const requests = Array.from({ length: 9 }, (_, i) => generate(client, { description: `drain ${i}` }));
    const unfinished = () => {
      const done = new Set(
        leaving.logs.filter((l) => l.msg === 'generation job completed').map((l) => l.jobId),
      );
      return leaving.logs
        .filter((l) => l.msg === 'generation job started' && !done.has(l.jobId))
        .map((l) => String(l.jobId));
    };
    await leaving.waitForLog(() => unfinished().length > 0, 30_000);
    leaving.signal('SIGTERM');
    const activeAtSignal = unfinished();
    assert.deepEqual(await waitForExit(leaving, 30_000), { code: 0, signal: null });
    const completedByLeaving = new Set(
      leaving.logs.filter((l) => l.msg === 'generation job completed').map((l) => String(l.jobId)),
    );
    for (const jobId of activeAtSignal) assert.ok(completedByLeaving.has(jobId), `${jobId} was abandoned`);

    // What it did not take waits for the next worker, and every caller still gets a 201.
    const next = await spawnWorker(env);
    const outcomes = await Promise.all(requests);
    for (const o of outcomes) assert.ok(o.ok, showOutcome(o));
    const view = storeView({ redisUrl: fx.redis.url }, env.REDIS_PREFIX!);
    try {
      await assertConsistent(outcomes, view);
      for (const jobId of activeAtSignal) {
        const job = await view.queue.getJob(jobId);
        assert.equal(job?.stalledCounter, 0, `${jobId} had to be recovered as stalled`);
      }
    } finally {
      await view.close();
    }
    await next.kill();
  });
});
