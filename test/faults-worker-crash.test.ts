import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useRedis } from './helpers/fixture.js';
import { awsClient, showOutcome, generate } from '../devtools/aws-client.js';
import { serviceEnv, spawnApi, spawnWorker, type LogLine } from '../devtools/processes.js';
import { assertConsistent, storeView } from './helpers/records.js';

const TIMEOUT_MS = 30_000;

describe('a worker killed mid-job', () => {
  const fx = useRedis();

  it('re-runs its jobs elsewhere: every request gets a 201 or a clean 5xx, nothing twice, nothing lost', async () => {
    const env = serviceEnv(
      { url: fx.redis.url },
      {
        GENERATE_TIMEOUT_MS: String(TIMEOUT_MS),
        // Short locks so the dead worker's jobs are found within a few seconds.
        WORKER_LOCK_DURATION_MS: '3000',
        WORKER_STALLED_INTERVAL_MS: '1000',
        WORKER_CONCURRENCY: '4',
      },
    );
    const [api, victim, survivor] = await Promise.all([spawnApi(env), spawnWorker(env), spawnWorker(env)]);
    const client = awsClient(api.url, { requestTimeoutMs: TIMEOUT_MS + 15_000 });

    const requests = Array.from({ length: 12 }, (_, i) => generate(client, { description: `crash ${i}` }));

    // SIGKILL the victim while it holds a job it has started and not finished.
    const startedOn = (l: LogLine) => l.msg === 'generation job started';
    const unfinished = () => {
      const done = new Set(
        victim.logs.filter((l) => l.msg === 'generation job completed').map((l) => l.jobId),
      );
      return victim.logs.filter((l) => startedOn(l) && !done.has(l.jobId)).map((l) => String(l.jobId));
    };
    await victim.waitForLog(() => unfinished().length > 0, TIMEOUT_MS);
    const killedWith = unfinished();
    await victim.kill();

    const outcomes = await Promise.all(requests);
    const summary = outcomes.map(showOutcome).join('\n');
    for (const o of outcomes) assert.ok(o.ms < TIMEOUT_MS + 10_000, `answered too late:\n${summary}`);

    const view = storeView({ redisUrl: fx.redis.url }, env.REDIS_PREFIX!);
    try {
      await assertConsistent(outcomes, view);
      // The killed jobs really went through stall detection and were finished by the survivor. (A
      // job whose completion line was still on its way when the victim died may have finished
      // there: logs are asynchronous, so at least one, not every, candidate must have stalled.)
      const stalled: string[] = [];
      for (const jobId of killedWith) {
        const job = await view.queue.getJob(jobId);
        assert.ok(job, `job ${jobId} vanished`);
        if (job.stalledCounter >= 1) stalled.push(jobId);
      }
      assert.ok(stalled.length >= 1, `none of ${killedWith.join(', ')} was detected as stalled`);
      for (const jobId of stalled) {
        await survivor.waitForLog((l) => l.msg === 'generation job completed' && l.jobId === jobId, 10_000);
      }
      // With re-runs well inside the API's wait, nobody should have been told to retry.
      assert.equal(outcomes.filter((o) => o.ok).length, 12, summary);
      const { pending } = await view.store.count({ accountId: '000000000000', region: 'us-east-1' });
      assert.equal(pending, 0, 'reservations left behind');
    } finally {
      await view.close();
    }
  });
});
