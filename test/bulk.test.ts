import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { APIGatewayClient, GetClientCertificateCommand } from '@aws-sdk/client-api-gateway';
import { Queue, QueueEvents } from 'bullmq';
import { ClientCertificateStore } from '../shared/client-certificate-store.js';
import {
  BULK_JOB_CERTIFICATES,
  QUEUE_NAME,
  certificateIdsOf,
  generateJobId,
  type GenerateData,
  type GenerateReturn,
} from '../shared/jobs.js';
import { parseBulkArgs } from '../scripts/bulk/args.js';
import { RECONCILE_BATCH, runBulk, QuotaError, stateFile } from '../scripts/bulk/batch.js';
import { Progress } from '../scripts/bulk/progress.js';
import { nodeArgs } from '../devtools/entry.js';
import { startRedis, waitFor, type TestRedis } from '../devtools/redis-server.js';
import { startService } from '../devtools/service.js';
import { RECORD_FIELDS } from './helpers/records.js';

const ROOT = new URL('..', import.meta.url).pathname;
const TENANT = { accountId: '111122223333', region: 'eu-west-1' };
/** The account the API serves without per-key accounts (DEFAULT_ACCOUNT_ID), so the API can show these. */
const API_TENANT = { accountId: '000000000000', region: 'eu-west-1' };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function spawnBulk(args: string[], env: Record<string, string>): { child: ChildProcess; done: Promise<Run> } {
  const child = spawn(process.execPath, [...nodeArgs('scripts/bulk.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'silent', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}

function records(file: string): { clientCertificateId: string; [k: string]: unknown }[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { clientCertificateId: string });
}

describe('npm run bulk', () => {
  let redis: TestRedis;
  let dir: string;
  before(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'cc-bulk-'));
  });
  after(async () => {
    await redis?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test('bad arguments name the argument, exit 2 and issue nothing', async () => {
    const prefix = 'bulkbad';
    const env = { REDIS_URL: redis.url, REDIS_PREFIX: prefix };
    const out = join(dir, 'bad.ndjson');
    const cases: [string[], RegExp][] = [
      [['--out', out], /--count is required/],
      [['--count', '0', '--out', out], /--count must be a whole number from 1 to 100000, got "0"/],
      [['--count', 'ten', '--out', out], /--count must be a whole number/],
      [['--count', '3'], /--out is required/],
      [['--count', '3', '--out', join(dir, 'no/such/dir.ndjson')], /--out .*directory .* does not exist/],
      [['--count', '3', '--out', out, '--tag', 'team'], /--tag must be key=value, got "team"/],
      [['--count', '3', '--out', out, '--tag', 'aws:x=1'], /Invalid tag key "aws:x" in --tag/],
      [['--count', '3', '--out', out, '--tag', 'a=1', '--tag', 'a=2'], /--tag "a" is given twice/],
      [['--count', '3', '--out', out, '--account', '12'], /--account must be a 12-digit AWS account id/],
      [['--count', '3', '--out', out, '--region', 'moon'], /--region must look like an AWS region/],
      [
        ['--count', '3', '--out', out, '--region', 'us-east-9'],
        /--region must be a region that exists in the AWS SDK's partition data, such as us-east-1, got "us-east-9"/,
      ],
      [['--count', '3', '--out', out, '--cuont', '3'], /Unknown option '--cuont'/],
      [['--count', '3', '--out', out, 'extra'], /unexpected argument "extra"/],
      [
        ['--count', '3', '--out', out, '--description', 'x'.repeat(1025)],
        /--description must be at most 1024/,
      ],
    ];
    // Every rule in-process; a few through the real process for the exit code and the message.
    for (const [args, message] of cases) {
      assert.throws(() => parseBulkArgs(args, { accountId: '000000000000', region: 'us-east-1' }), {
        name: 'UsageError',
        message,
      });
    }
    const spawned = [cases[1]!, cases[5]!, cases[8]!, cases[11]!];
    const runs = await Promise.all(spawned.map(([args]) => spawnBulk(args, env).done));
    runs.forEach((r, i) => {
      assert.equal(r.code, 2, `${spawned[i]![0].join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, spawned[i]![1]);
      assert.match(r.stderr, /usage: npm run bulk/);
    });
    const badEnv = await spawnBulk(['--count', '1', '--out', out], { ...env, REDIS_PREFIX: 'no spaces' })
      .done;
    assert.equal(badEnv.code, 2);
    assert.match(badEnv.stderr, /REDIS_PREFIX must be/);

    assert.equal(existsSync(out), false, 'no output file');
    const client = new (await import('ioredis')).Redis(redis.url);
    try {
      assert.deepEqual(await client.keys(`*${prefix}*`), [], 'nothing reserved or enqueued');
    } finally {
      client.disconnect();
    }
  });

  test('issues N certificates through the workers and writes one public record per line', async () => {
    const svc = await startService(redis.url, { workers: 1 });
    const sdk = new APIGatewayClient({
      endpoint: svc.api.url,
      region: API_TENANT.region,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
    try {
      const out = join(dir, 'five.ndjson');
      // prettier-ignore
      const argv = [
        '--count', '5', '--description', 'edge proxies', '--tag', 'team=ops', '--tag', 'env=test',
        '--account', API_TENANT.accountId, '--region', API_TENANT.region, '--out', out,
      ];
      const env = { REDIS_URL: redis.url, REDIS_PREFIX: svc.keys.prefix };
      const r = await spawnBulk(argv, env).done;
      assert.equal(r.code, 0, r.stderr);
      // Not a terminal: plain progress lines, ending with the total.
      const lines = r.stderr.split('\n');
      assert.ok(lines.includes('5/5'), r.stderr);
      assert.ok(lines.every((l) => !l.includes('\r')));
      assert.match(r.stderr, /5 records in .*five\.ndjson \(5 issued now, 0 picked up/);

      const text = readFileSync(out, 'utf8');
      assert.doesNotMatch(text, /PRIVATE KEY|"key"|encryptedKey/);
      const recs = records(out);
      assert.equal(recs.length, 5);
      assert.equal(new Set(recs.map((x) => x.clientCertificateId)).size, 5);
      const store = new ClientCertificateStore(svc.redis, svc.keys);
      for (const rec of recs) {
        assert.deepEqual(Object.keys(rec).sort(), RECORD_FIELDS);
        assert.equal(rec.description, 'edge proxies');
        assert.deepEqual(rec.tags, { team: 'ops', env: 'test' });
        new X509Certificate(rec.pemEncodedCertificate as string);
        // Visible to the API's store under that account and region, exactly as written.
        const stored = await store.get(API_TENANT, rec.clientCertificateId);
        assert.equal(stored?.pemEncodedCertificate, rec.pemEncodedCertificate);
        // ... and through the API, as the AWS SDK sees it in that region.
        const got = await sdk.send(
          new GetClientCertificateCommand({ clientCertificateId: rec.clientCertificateId }),
        );
        assert.equal(got.pemEncodedCertificate, rec.pemEncodedCertificate);
        assert.equal(got.description, 'edge proxies');
        assert.deepEqual(got.tags, { team: 'ops', env: 'test' });
      }
      assert.deepEqual(await store.count(API_TENANT), { existing: 5, pending: 0 });
      assert.equal(existsSync(stateFile(out)), false, 'a completed batch leaves no state behind');

      const again = await spawnBulk(argv, env).done;
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /already holds 5 records: nothing to do/);
      assert.equal(records(out).length, 5);
      assert.deepEqual(await store.count(API_TENANT), { existing: 5, pending: 0 });
    } finally {
      sdk.destroy();
      await svc.close();
    }
  });

  test('a batch killed after enqueueing is completed by a re-run without duplicates', async () => {
    // No worker yet: the jobs wait in the queue while the first run is killed.
    const svc = await startService(redis.url, { workers: 0 });
    const queue = new Queue(QUEUE_NAME, { connection: svc.redis, prefix: svc.keys.queuePrefix });
    try {
      const out = join(dir, 'killed.ndjson');
      const args = ['--count', '10', '--account', TENANT.accountId, '--region', TENANT.region, '--out', out];
      const env = { REDIS_URL: redis.url, REDIS_PREFIX: svc.keys.prefix };
      const first = spawnBulk(args, env);
      // Bulk jobs carry a priority (shared/scheduler.ts): BullMQ keeps them waiting as `prioritized`.
      const queued = async () => {
        const c = await queue.getJobCounts('waiting', 'prioritized');
        return (c.waiting ?? 0) + (c.prioritized ?? 0);
      };
      // 10 certificates in jobs of at most BULK_JOB_CERTIFICATES (4): 4 + 4 + 2.
      await waitFor(async () => (await queued()) === 3, 30_000);
      const waiting = await queue.getJobs(['waiting', 'prioritized']);
      const batchIds = new Set(waiting.map((j) => (j.data as GenerateData).batchId));
      assert.equal(batchIds.size, 1, 'every job carries the batch id');
      assert.ok([...batchIds][0]);
      for (const j of waiting)
        assert.equal(j.id, generateJobId(j.data as GenerateData), 'the first id gives the job id');
      assert.deepEqual(waiting.map((j) => certificateIdsOf(j.data as GenerateData).length).sort(), [
        2,
        BULK_JOB_CERTIFICATES,
        BULK_JOB_CERTIFICATES,
      ]);
      const enqueuedIds = waiting.flatMap((j) => certificateIdsOf(j.data as GenerateData));
      assert.equal(new Set(enqueuedIds).size, 10);
      first.child.kill('SIGKILL');
      const killed = await first.done;
      assert.equal(killed.code, null);
      assert.ok(existsSync(stateFile(out)));
      // As if the kill had cut a line short.
      appendFileSync(out, '{"clientCertificateId":"abc');

      svc.addWorker();
      // A different count is refused rather than silently starting another batch.
      const mismatch = await spawnBulk(['--count', '5', ...args.slice(2)], env).done;
      assert.equal(mismatch.code, 2);
      assert.match(mismatch.stderr, /--count 5 differs from the interrupted batch .* \(10\)/);

      const second = await spawnBulk(args, env).done;
      assert.equal(second.code, 0, second.stderr);
      assert.match(
        second.stderr,
        /resuming batch [0-9a-f]{16}: 0 records in the file, \d+ picked up, \d+ still queued/,
      );
      assert.match(second.stderr, /10 records in .* \(0 issued now/);
      const recs = records(out);
      assert.equal(recs.length, 10);
      assert.deepEqual(
        new Set(recs.map((r) => r.clientCertificateId)),
        new Set(enqueuedIds),
        'exactly the certificates the first run enqueued',
      );
      const store = new ClientCertificateStore(svc.redis, svc.keys);
      assert.deepEqual(await store.count(TENANT), { existing: 10, pending: 0 }, 'nothing issued twice');
    } finally {
      await queue.close();
      await svc.close();
    }
  });

  test('stops before issuing anything when the batch does not fit the quota', async () => {
    const svc = await startService(redis.url, { workers: 1 });
    const queue = new Queue<GenerateData, GenerateReturn>(QUEUE_NAME, {
      connection: svc.redis,
      prefix: svc.keys.queuePrefix,
    });
    const eventsConnection = svc.redis.duplicate();
    eventsConnection.on('error', () => undefined);
    const queueEvents = new QueueEvents(QUEUE_NAME, {
      connection: eventsConnection,
      prefix: svc.keys.queuePrefix,
    });
    const store = new ClientCertificateStore(svc.redis, svc.keys);
    const deps = {
      redis: svc.redis,
      keys: svc.keys,
      store,
      queue,
      queueEvents,
      limit: 3,
      reconcileEveryMs: 200,
    };
    try {
      const out = join(dir, 'quota.ndjson');
      const base = { tags: {}, accountId: TENANT.accountId, region: TENANT.region, out };
      const ok = await runBulk({ ...base, count: 2 }, deps);
      assert.equal(ok.written, 2);
      await assert.rejects(
        runBulk({ ...base, out: join(dir, 'quota2.ndjson'), count: 2 }, deps),
        (err: Error) => {
          assert.ok(err instanceof QuotaError);
          assert.equal(
            err.message,
            '--count 2 does not fit the quota of 3 client certificates for account 111122223333 in eu-west-1: ' +
              '2 exist and 0 are being generated, so at most 1 more can be issued, and this batch needs 2. ' +
              'Nothing was issued. Delete unused certificates or lower --count.',
          );
          return true;
        },
      );
      assert.deepEqual(await store.count(TENANT), { existing: 2, pending: 0 });
      // One job of both certificates, and nothing else enqueued.
      assert.deepEqual(await queue.getJobCounts('waiting', 'prioritized', 'active', 'completed'), {
        waiting: 0,
        prioritized: 0,
        active: 0,
        completed: 1,
      });
      const fits = await runBulk({ ...base, out: join(dir, 'quota3.ndjson'), count: 1 }, deps);
      assert.equal(fits.written, 1);
    } finally {
      await queueEvents.close();
      eventsConnection.disconnect();
      await queue.close();
      await svc.close();
    }
  });

  test('the periodic re-check reads only the oldest outstanding jobs, not the whole batch every round', async () => {
    // No worker: every job stays waiting, so each round finds nothing ended and the rounds go on.
    const svc = await startService(redis.url, { workers: 0 });
    const queue = new Queue<GenerateData, GenerateReturn>(QUEUE_NAME, {
      connection: svc.redis,
      prefix: svc.keys.queuePrefix,
    });
    let stateReads = 0;
    const getJobState = queue.getJobState.bind(queue);
    queue.getJobState = (jobId: string) => {
      stateReads++;
      return getJobState(jobId);
    };
    const eventsConnection = svc.redis.duplicate();
    eventsConnection.on('error', () => undefined);
    const queueEvents = new QueueEvents(QUEUE_NAME, {
      connection: eventsConnection,
      prefix: svc.keys.queuePrefix,
    });
    const count = 4 * RECONCILE_BATCH;
    const aborter = new AbortController();
    try {
      const running = runBulk(
        {
          tags: {},
          accountId: TENANT.accountId,
          region: TENANT.region,
          out: join(dir, 'rounds.ndjson'),
          count,
        },
        {
          redis: svc.redis,
          keys: svc.keys,
          store: new ClientCertificateStore(svc.redis, svc.keys),
          queue,
          queueEvents,
          limit: 0,
          reconcileEveryMs: 300,
          signal: aborter.signal,
        },
      );
      const jobs = count / BULK_JOB_CERTIFICATES;
      await waitFor(async () => (await queue.getJobCounts('prioritized')).prioritized === jobs, 10_000);
      const before = stateReads;
      await new Promise((r) => setTimeout(r, 1500));
      const during = stateReads - before;
      aborter.abort();
      const r = await running;
      assert.equal(r.interrupted, true);
      // The jobs of the oldest RECONCILE_BATCH certificates per round, one state read each (~5 rounds
      // of 300 ms, 13 jobs: ~65 reads); reading every outstanding job each round would be ~5 x 50, and
      // one read per certificate ~5 x 200.
      assert.ok(during > 0, 'the re-check runs');
      assert.ok(during <= 2.5 * jobs, `${during} job state reads in 1.5 s for ${jobs} outstanding jobs`);
    } finally {
      await queueEvents.close();
      eventsConnection.disconnect();
      await queue.close();
      await svc.close();
    }
  });

  test('the CLI honours CLIENT_CERTIFICATE_LIMIT: exit 3, a message, nothing issued', async () => {
    const prefix = 'bulkquota';
    const out = join(dir, 'over.ndjson');
    const r = await spawnBulk(['--count', '3', '--out', out], {
      REDIS_URL: redis.url,
      REDIS_PREFIX: prefix,
      CLIENT_CERTIFICATE_LIMIT: '2',
    }).done;
    assert.equal(r.code, 3, r.stderr);
    assert.match(
      r.stderr,
      /--count 3 does not fit the quota of 2 client certificates for account 000000000000 in us-east-1: 0 exist and 0 are being generated, so at most 2 more can be issued/,
    );
    const client = new (await import('ioredis')).Redis(redis.url);
    try {
      const keys = await client.keys(`*${prefix}*`);
      assert.deepEqual(
        keys.filter((k) => !k.endsWith(':meta') && !k.endsWith(':events')),
        [],
      );
      assert.equal(await client.zcard(`${prefix}:{000000000000:us-east-1}:pending`), 0);
    } finally {
      client.disconnect();
    }
  });

  test('on a terminal, progress is one redrawn bar with rate and ETA', () => {
    const writes: string[] = [];
    let now = 1_000_000;
    const p = new Progress(
      { isTTY: true, columns: 80, write: (x: string) => writes.push(x) },
      1000,
      () => now,
    );
    p.update(0, 10);
    now += 2000;
    p.update(4, 10);
    now += 2000;
    p.update(10, 10);
    p.end();
    assert.ok(writes.slice(0, -1).every((w) => w.startsWith('\r')));
    assert.match(writes[1]!, /\[#+-+\] 4\/10 {2}40% {2}2\.0\/s {2}ETA 0:03/);
    assert.match(writes[2]!, /\[#+\] 10\/10 100% {2}2\.5\/s {2}ETA 0:00/);
    assert.equal(writes.at(-1), '\n');
  });

  test('progress says when the batch is yielding to interactive work, and stops saying it after', () => {
    const writes: string[] = [];
    const p = new Progress({ isTTY: false, write: (x: string) => writes.push(x) }, 1000, () => 1_000_000);
    p.update(3, 10);
    p.setNote('yielding to interactive work: 2 Generate(s) served in the last second, 1 waiting');
    p.setNote(undefined);
    assert.deepEqual(writes, [
      '3/10\n',
      '3/10 (yielding to interactive work: 2 Generate(s) served in the last second, 1 waiting)\n',
      '3/10\n',
    ]);
  });
});
