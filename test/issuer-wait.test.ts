import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { waitForJob } from '../api/issuer.js';
import { QUEUE_NAME } from '../shared/jobs.js';
import { createRedis, duplicateRedis, patientOptions, type RedisClient } from '../shared/redis.js';
import { startRedis, waitFor, type TestRedis } from '../devtools/redis-server.js';
import { JobTimeoutError } from '../shared/issuance.js';

describe('waitForJob (the API waiting for its generation job)', () => {
  let redis: TestRedis;
  let conn: RedisClient;
  let eventsConn: RedisClient;
  let workerConn: RedisClient;
  let queue: Queue;
  let queueEvents: QueueEvents;
  let worker: Worker;
  const prefix = '{w}';

  before(async () => {
    redis = await startRedis();
    conn = createRedis(redis.url, patientOptions(), 'cc-wait-test');
    eventsConn = duplicateRedis(conn, 'cc-wait-test-events');
    workerConn = duplicateRedis(conn, 'cc-wait-test-worker');
    queue = new Queue(QUEUE_NAME, { connection: conn, prefix });
    queueEvents = new QueueEvents(QUEUE_NAME, { connection: eventsConn, prefix });
    await queueEvents.waitUntilReady();
    // A real worker: `ok-*` jobs return their data, `bad-*` jobs throw.
    worker = new Worker(
      QUEUE_NAME,
      async (job) => {
        if (job.id!.startsWith('bad-')) throw new Error('the key generator broke');
        return { status: 'expired', clientCertificateId: job.id };
      },
      { connection: workerConn, prefix },
    );
    await worker.waitUntilReady();
  });
  after(async () => {
    await worker?.close();
    await queueEvents?.close();
    await queue?.close();
    for (const c of [conn, eventsConn, workerConn]) c?.disconnect();
    await redis?.destroy();
  });

  const listeners = (jobId: string) =>
    ['completed', 'failed'].reduce(
      (n, e) => n + (queueEvents as unknown as NodeJS.EventEmitter).listenerCount(`${e}:${jobId}`),
      0,
    );

  it('resolves with the return value of a job added after it started listening, then stops listening', async () => {
    const wait = waitForJob(queueEvents, 'ok-1', 10_000);
    await queue.add('generate', {}, { jobId: 'ok-1' });
    assert.deepEqual(await wait.result, { status: 'expired', clientCertificateId: 'ok-1' });
    assert.equal(listeners('ok-1'), 0);
  });

  it("rejects with the job's failure", async () => {
    const wait = waitForJob(queueEvents, 'bad-1', 10_000);
    await queue.add('generate', {}, { jobId: 'bad-1' });
    await assert.rejects(
      wait.result,
      (err: Error) => !(err instanceof JobTimeoutError) && /the key generator broke/.test(err.message),
    );
    assert.equal(listeners('bad-1'), 0);
  });

  it('times out, and an end before anyone awaits it is not an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (r: unknown) => unhandled.push(r);
    process.on('unhandledRejection', onUnhandled);
    try {
      const wait = waitForJob(queueEvents, 'never-added', 5);
      // The caller is still busy (enqueueing) when the wait ends: its timer has fired and let go of its listeners.
      await waitFor(() => listeners('never-added') === 0, 5_000, 5);
      await assert.rejects(wait.result, JobTimeoutError);
      assert.deepEqual(unhandled, []);
      assert.equal(listeners('never-added'), 0);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('cancel() stops listening', () => {
    const wait = waitForJob(queueEvents, 'cancelled', 10_000);
    assert.equal(listeners('cancelled'), 2);
    wait.cancel();
    assert.equal(listeners('cancelled'), 0);
  });
});
