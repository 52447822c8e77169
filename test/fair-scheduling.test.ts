import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Worker } from 'bullmq';
import { generateJob } from '../shared/issuance.js';
import { BULK_JOB_CERTIFICATES, QUEUE_NAME } from '../shared/jobs.js';
import { Keys, type Tenant } from '../shared/keys.js';
import { createQueue, enqueue, enqueueMany } from '../shared/queue.js';
import { createRedis, patientOptions } from '../shared/redis.js';
import { BULK_BASE } from '../shared/scheduler.js';
import { useRedis } from './helpers/fixture.js';
import { BULK_TENANT, FLOODER, POLITE, backlog, clientOf, ids, spawnBulk } from './helpers/fair.js';
import { awsClient, generate, showOutcome, type Outcome } from '../devtools/aws-client.js';
import { serviceEnv, spawnApi, spawnWorker, type LogLine } from '../devtools/processes.js';
import { storeView } from './helpers/records.js';
import { waitFor } from '../devtools/redis-server.js';

describe('the order of work (real Redis and BullMQ, one worker slot)', () => {
  const fx = useRedis();

  it('runs interactive work first, accounts in turn across regions, and alternates bulk batches', async () => {
    const redis = createRedis(fx.redis.url, patientOptions(), 'cc-test-order');
    const keys = new Keys('order');
    const queue = createQueue(redis, keys);
    const deadline = Date.now() + 120_000;
    const job = (t: Tenant, id: string, batchId?: string) =>
      generateJob(t, id, { tags: {} }, deadline, batchId);
    const A1: Tenant = { accountId: '111111111111', region: 'us-east-1' };
    const A2: Tenant = { accountId: '111111111111', region: 'eu-west-1' };
    const B: Tenant = { accountId: '222222222222', region: 'us-east-1' };
    const order: string[] = [];
    let worker: Worker | undefined;
    const workerConnection = redis.duplicate();
    try {
      // Two bulk batches, then account A from two regions, then account B, all before any worker.
      await enqueueMany(
        queue,
        { tenant: BULK_TENANT, class: 'bulk', batchId: 'b1' },
        ['b1aaa1', 'b1aaa2', 'b1aaa3'].map((id) => job(BULK_TENANT, id, 'b1')),
      );
      await enqueueMany(
        queue,
        { tenant: BULK_TENANT, class: 'bulk', batchId: 'b2' },
        ['b2aaa1', 'b2aaa2', 'b2aaa3'].map((id) => job(BULK_TENANT, id, 'b2')),
      );
      for (const [t, id] of [
        [A1, 'aaaaa1'],
        [A2, 'aaaaa2'],
        [A1, 'aaaaa3'],
        [A2, 'aaaaa4'],
        [B, 'bbbbb1'],
        [B, 'bbbbb2'],
      ] as const) {
        await enqueue(queue, { tenant: t, class: 'interactive' }, job(t, id));
      }
      const bulkJob = await queue.getJob(`gen-${BULK_TENANT.accountId}-${BULK_TENANT.region}-b1aaa1`);
      assert.ok(bulkJob && bulkJob.priority >= BULK_BASE, 'bulk jobs sit above every interactive priority');

      worker = new Worker(
        QUEUE_NAME,
        async (j) => {
          order.push(String(j.data.clientCertificateId));
          return { status: 'expired', clientCertificateId: j.data.clientCertificateId };
        },
        { connection: workerConnection, prefix: keys.queuePrefix, concurrency: 1 },
      );
      await waitFor(() => order.length === 12, 30_000);
      // A's four Generates count as one account's, whichever region: B's two are served in turn
      // with A's first two (first in, first out would serve them after all of A's, and after the bulk).
      assert.deepEqual(order.slice(0, 6), ['aaaaa1', 'bbbbb1', 'aaaaa2', 'bbbbb2', 'aaaaa3', 'aaaaa4']);
      // The batches share the bulk capacity job by job.
      assert.deepEqual(order.slice(6), ['b1aaa1', 'b2aaa1', 'b1aaa2', 'b2aaa2', 'b1aaa3', 'b2aaa3']);
    } finally {
      await worker?.close();
      await queue.close();
      workerConnection.disconnect();
      redis.disconnect();
    }
  });
});

describe('fair issuance under mixed load (API, worker and bulk processes)', () => {
  const fx = useRedis();
  let dir: string;
  let credentialsFile: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'cc-fair-'));
    credentialsFile = join(dir, 'credentials.json');
    writeFileSync(credentialsFile, JSON.stringify([FLOODER, POLITE]), { mode: 0o600 });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a Generate sent after a bulk batch is enqueued finishes long before the batch', async () => {
    const env = serviceEnv(
      { url: fx.redis.url },
      { WORKER_CONCURRENCY: '1', GENERATE_TIMEOUT_MS: '60000', CLIENT_CERTIFICATE_LIMIT: '0' },
    );
    const api = await spawnApi(env, 90_000);
    const out = join(dir, 'batch.ndjson');
    const count = 30;
    const bulk = spawnBulk(count, out, env);
    const view = storeView({ redisUrl: fx.redis.url }, env.REDIS_PREFIX!);
    const client = awsClient(api.url, { requestTimeoutMs: 90_000 });
    try {
      // The batch's jobs, of up to BULK_JOB_CERTIFICATES certificates each.
      await waitFor(
        async () => (await backlog(api)).bulk === Math.ceil(count / BULK_JOB_CERTIFICATES),
        60_000,
      );
      const worker = await spawnWorker(env, 90_000);
      const o = await generate(client, { description: 'after the batch' });
      assert.ok(o.ok, showOutcome(o));
      const { existing } = await view.store.count(BULK_TENANT);
      // First in, first out it would come after all 30; here after the job running when it arrived.
      assert.ok(existing <= 10, `${existing} of the batch's ${count} certificates were made first`);

      const run = await bulk.done;
      assert.equal(run.code, 0, run.stderr);
      assert.equal(new Set(ids(out)).size, count);
      const started = (l: LogLine) => l.msg === 'generation job started';
      assert.ok(worker.logs.filter(started).length >= Math.ceil(count / BULK_JOB_CERTIFICATES) + 1);
    } finally {
      client.destroy();
      bulk.child.kill('SIGKILL');
      await view.close();
    }
  });

  it("a polite account's Generate beside a flooding account finishes ahead of the flooder's backlog", async () => {
    const env = serviceEnv(
      { url: fx.redis.url },
      {
        WORKER_CONCURRENCY: '1',
        GENERATE_TIMEOUT_MS: '60000',
        CLIENT_CERTIFICATE_LIMIT: '0',
        CREDENTIALS_FILE: credentialsFile,
      },
    );
    const [api] = await Promise.all([spawnApi(env, 90_000), spawnWorker(env, 90_000)]);
    const flooder = clientOf(api, FLOODER);
    const polite = clientOf(api, POLITE);
    try {
      const n = 16;
      let answered = 0;
      const flood = Array.from({ length: n }, (_, i) =>
        generate(flooder, { description: `flood ${i}` }).then((o) => (answered++, o)),
      );
      await waitFor(async () => (await backlog(api)).interactive >= n / 2, 30_000, 20);
      const o = await generate(polite, { description: 'polite' });
      const before = answered;
      assert.ok(o.ok, showOutcome(o));
      const floods = await Promise.all(flood);
      for (const f of floods) assert.ok(f.ok, showOutcome(f));
      // First in, first out it would wait for every one of the flooder's Generates.
      assert.ok(before <= n / 2, `${before} of the flooder's ${n} Generates were answered first`);
    } finally {
      flooder.destroy();
      polite.destroy();
    }
  });

  it('the load shedder answers 429 to the flooding account, not to the polite one', async () => {
    const env = serviceEnv(
      { url: fx.redis.url },
      {
        WORKER_CONCURRENCY: '1',
        // The shedder refuses once (backlog + 1) x the mean job time exceeds this. The flooder's backlog is
        // about its 150 connections: 150 x 40 ms (an RSA-2048 key on Node 24, quiet) = 6 s, so it sheds on a
        // fast machine too (with 10 s and 40 connections it never did there); a polite Generate, placed ahead
        // of that backlog, waits about one job even on a loaded machine.
        GENERATE_TIMEOUT_MS: '4000',
        CLIENT_CERTIFICATE_LIMIT: '0',
        CREDENTIALS_FILE: credentialsFile,
      },
    );
    const [api] = await Promise.all([spawnApi(env, 90_000), spawnWorker(env, 90_000)]);
    // Three clients: an SDK client opens at most 50 sockets.
    const flooders = [0, 1, 2].map(() => clientOf(api, FLOODER));
    const polite = clientOf(api, POLITE);
    let stop = false;
    const floods: Outcome[] = [];
    try {
      // The shedder measures job durations from the queue's events: give it some.
      for (let i = 0; i < 3; i++) assert.ok((await generate(polite)).ok);
      // 150 connections, each sending again as soon as it has its answer (a moment later after a 429):
      // the flooder keeps the backlog at what the shedder lets in.
      const loops = Array.from({ length: 150 }, async (_, i) => {
        while (!stop) {
          const o = await generate(flooders[i % 3]!);
          floods.push(o);
          if (!o.ok) await new Promise((r) => setTimeout(r, 100));
        }
      });
      await waitFor(() => floods.some((o) => !o.ok && o.status === 429), 120_000, 50);
      const politeOutcomes: Outcome[] = [];
      for (let i = 0; i < 5; i++) {
        await waitFor(async () => (await backlog(api)).interactive >= 4, 30_000, 20);
        politeOutcomes.push(await generate(polite, { description: `polite ${i}` }));
      }
      stop = true;
      await Promise.all(loops);
      for (const o of politeOutcomes) assert.ok(o.ok, `the polite account: ${showOutcome(o)}`);
      const shed = floods.find((o) => !o.ok && o.status === 429);
      assert.ok(shed && !shed.ok);
      assert.equal(shed.type, 'TooManyRequestsException');
      assert.ok(Number(shed.retryAfter) >= 1, `Retry-After ${shed.retryAfter}`);
      for (const o of floods) assert.ok(o.ok || [429, 503].includes(o.status ?? 0), showOutcome(o));
    } finally {
      stop = true;
      for (const f of flooders) f.destroy();
      polite.destroy();
    }
  });

  it('a worker SIGKILLed mid-batch loses nothing: the batch and a Generate beside it complete once each', async () => {
    const env = serviceEnv(
      { url: fx.redis.url },
      {
        WORKER_CONCURRENCY: '2',
        GENERATE_TIMEOUT_MS: '60000',
        CLIENT_CERTIFICATE_LIMIT: '0',
        // Short locks so the dead worker's jobs are found within a few seconds.
        WORKER_LOCK_DURATION_MS: '3000',
        WORKER_STALLED_INTERVAL_MS: '1000',
      },
    );
    const [api, victim] = await Promise.all([
      spawnApi(env, 90_000),
      spawnWorker(env, 90_000),
      spawnWorker(env, 90_000),
    ]);
    const out = join(dir, 'crash.ndjson');
    const count = 24;
    const bulk = spawnBulk(count, out, env);
    const view = storeView({ redisUrl: fx.redis.url }, env.REDIS_PREFIX!);
    const client = awsClient(api.url, { requestTimeoutMs: 90_000 });
    try {
      const unfinished = () => {
        const done = new Set(
          victim.logs.filter((l) => l.msg === 'generation job completed').map((l) => l.jobId),
        );
        return victim.logs.filter((l) => l.msg === 'generation job started' && !done.has(l.jobId));
      };
      await victim.waitForLog(() =>
        unfinished().some((l) => String(l.jobId).includes(BULK_TENANT.accountId)),
      );
      const interactive = generate(client, { description: 'beside the batch' });
      await victim.kill();

      const o = await interactive;
      assert.ok(o.ok, showOutcome(o));
      const run = await bulk.done;
      assert.equal(run.code, 0, run.stderr);
      const written = ids(out);
      assert.equal(written.length, count);
      assert.equal(new Set(written).size, count, 'no certificate twice');
      const stored = await view.all(BULK_TENANT);
      assert.deepEqual(stored.map((c) => c.clientCertificateId).sort(), [...written].sort());
      assert.deepEqual(await view.store.count(BULK_TENANT), { existing: count, pending: 0 });
      // The interactive job no longer counts in its account's share.
      const keys = new Keys(env.REDIS_PREFIX!);
      await waitFor(
        async () => (await view.redis.zcard(keys.schedulerAccount('000000000000'))) === 0,
        10_000,
      );
    } finally {
      client.destroy();
      bulk.child.kill('SIGKILL');
      await view.close();
    }
  });
});
