import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClientCertificateStore } from '../shared/client-certificate-store.js';
import { directKeySource, generateRsaKey, type KeySource } from '../worker/key-source.js';
import { startWorker, type RunningWorker } from '../worker/worker.js';
import { watchdogVerdict, type WatchdogSample } from '../worker/watchdog.js';
import { awsClient, showOutcome, generate } from '../devtools/aws-client.js';
import { startRedis, waitFor, type TestRedis } from '../devtools/redis-server.js';
import { startService, type TestService } from '../devtools/service.js';

const base: WatchdogSample = {
  now: 100_000,
  running: true,
  waiting: 0,
  active: 0,
  concurrency: 2,
  lastActivity: 0,
  idleSince: undefined,
};

describe('watchdogVerdict', () => {
  it('calls a worker whose main loop has stopped stuck at once', () => {
    assert.equal(watchdogVerdict({ ...base, running: false }, 1000).stuck, 'main loop has stopped');
  });

  it('leaves an idle worker alone when nothing waits', () => {
    assert.deepEqual(watchdogVerdict({ ...base, waiting: 0 }, 1000), { idleSince: undefined });
  });

  it('suspects, then after the grace period replaces, a worker idle with free capacity while jobs wait', () => {
    const first = watchdogVerdict({ ...base, waiting: 3 }, 1000);
    assert.equal(first.stuck, undefined);
    assert.equal(first.idleSince, 100_000);
    const second = watchdogVerdict({ ...base, now: 101_000, waiting: 3, idleSince: first.idleSince }, 1000);
    assert.match(second.stuck ?? '', /^3 job\(s\) waiting while idle for 101000 ms$/);
  });

  it('does not blame a worker that is busy at full capacity or has just taken a job', () => {
    assert.deepEqual(watchdogVerdict({ ...base, waiting: 5, active: 2, idleSince: 1 }, 1000), {
      idleSince: undefined,
    });
    assert.deepEqual(watchdogVerdict({ ...base, waiting: 5, lastActivity: 99_500, idleSince: 1 }, 1000), {
      idleSince: undefined,
    });
  });

  it('concludes nothing when Redis did not answer', () => {
    assert.deepEqual(watchdogVerdict({ ...base, waiting: undefined, idleSince: 42 }, 1000), {
      idleSince: 42,
    });
  });
});

describe('worker watchdog', () => {
  let redis: TestRedis;
  let svc: TestService | undefined;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await svc?.close();
    await redis?.destroy();
  });

  it('replaces a BullMQ worker that has stopped taking jobs, and the queued request still gets its 201', async () => {
    svc = await startService(redis.url, { workers: 0, generateTimeoutMs: 20_000 });
    const running = svc.addWorker({ watchdogIntervalMs: 300 });
    await running.worker.waitUntilReady();
    const wedged = running.worker;
    // What the BullMQ reports describe: the process lives, its main loop no longer fetches jobs.
    await wedged.pause(true);
    await waitFor(() => !wedged.isRunning(), 10_000);

    const outcome = await generate(awsClient(svc.api.url, { requestTimeoutMs: 30_000 }));
    assert.ok(outcome.ok, showOutcome(outcome));
    assert.equal(running.restarts, 1);
    assert.notEqual(running.worker, wedged);
    assert.ok(svc.logs.lines.some((l) => l.includes('watchdog: worker stopped taking jobs; replacing it')));
  });
});

describe('worker shutdown timeout', () => {
  let redis: TestRedis;
  let svc: TestService | undefined;
  const extra: RunningWorker[] = [];
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await Promise.all(extra.map((w) => w.close(500)));
    await svc?.close();
    await redis?.destroy();
  });

  it('gives up on a job that outlives the drain, and another worker re-runs it: one 201, one certificate', async () => {
    svc = await startService(redis.url, { workers: 0, generateTimeoutMs: 30_000 });
    const s = svc;
    const stall = { lockDurationMs: 2000, stalledIntervalMs: 500, watchdogIntervalMs: 0 };
    // A key generation that hangs until the test lets it go: the job outlives any drain.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const hanging: KeySource = { take: () => gate.then(() => generateRsaKey()), close: async () => {} };
    const base = { redis: s.redis, keys: s.keys, vault: s.vault, log: s.log, concurrency: 1 };
    const leaving = startWorker({ ...base, ...stall, keySource: hanging });
    extra.push(leaving);

    const pending = generate(awsClient(s.api.url, { requestTimeoutMs: 40_000 }));
    await waitFor(() => leaving.active === 1, 15_000);
    await leaving.close(300); // returns although its job is still running

    const next = startWorker({ ...base, ...stall, keySource: directKeySource });
    extra.push(next);
    const outcome = await pending;
    assert.ok(outcome.ok, showOutcome(outcome));
    release(); // the abandoned run resumes, finds the record and stores nothing

    const store = new ClientCertificateStore(s.redis, s.keys);
    const tenant = { accountId: '000000000000', region: 'us-east-1' };
    await waitFor(() => s.logs.lines.some((l) => l.includes('generation job completed')), 10_000);
    assert.deepEqual(await store.count(tenant), { existing: 1, pending: 0 });
    const stored = await store.get(tenant, outcome.cert.clientCertificateId!);
    assert.equal(stored?.pemEncodedCertificate, outcome.cert.pemEncodedCertificate);
    assert.ok(s.logs.lines.some((l) => l.includes('active jobs did not finish in time')));
  });
});

describe('a job whose lock is lost', () => {
  let redis: TestRedis;
  let svc: TestService | undefined;
  const extra: RunningWorker[] = [];
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await Promise.all(extra.map((w) => w.close(500)));
    await svc?.close();
    await redis?.destroy();
  });

  it('stops counting as running when its run ends, so the watchdog still replaces a worker that stops taking jobs', async () => {
    svc = await startService(redis.url, { workers: 0, generateTimeoutMs: 30_000 });
    const s = svc;
    const stall = { lockDurationMs: 2000, stalledIntervalMs: 500 };
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const hanging: KeySource = { take: () => gate.then(() => generateRsaKey()), close: async () => {} };
    const base = { redis: s.redis, keys: s.keys, vault: s.vault, log: s.log, concurrency: 1 };
    const losing = startWorker({ ...base, ...stall, watchdogIntervalMs: 300, keySource: hanging });
    extra.push(losing);

    const pending = generate(awsClient(s.api.url, { requestTimeoutMs: 40_000 }));
    await waitFor(() => losing.active === 1, 15_000);
    // What a partition does to the job's lock: it expires while the run goes on. Deleting it has the
    // same effect at once: renewal fails and stall detection hands the job to another worker.
    const jobs = await s.redis.keys(`${s.keys.queuePrefix}:*:lock`);
    assert.equal(jobs.length, 1);
    await s.redis.del(jobs[0]!);
    const other = startWorker({ ...base, ...stall, watchdogIntervalMs: 0, keySource: directKeySource });
    extra.push(other);
    const outcome = await pending;
    assert.ok(outcome.ok, showOutcome(outcome));
    await waitFor(() => s.logs.lines.some((l) => l.includes('job lock lost')), 10_000);

    release(); // the first run ends; BullMQ reports it only as an error (its lock is gone)
    await waitFor(() => losing.active === 0, 10_000);
    await other.close(1000);

    // With the old count (1 of 1 slots busy for ever) the watchdog would never see this worker idle.
    const wedged = losing.worker;
    await wedged.pause(true);
    await waitFor(() => !wedged.isRunning(), 10_000);
    const next = await generate(awsClient(s.api.url, { requestTimeoutMs: 30_000 }));
    assert.ok(next.ok, showOutcome(next));
    assert.ok(losing.restarts >= 1, 'the watchdog replaced the wedged worker');
    assert.notEqual(losing.worker, wedged);
    const store = new ClientCertificateStore(s.redis, s.keys);
    const tenant = { accountId: '000000000000', region: 'us-east-1' };
    assert.deepEqual(await store.count(tenant), { existing: 2, pending: 0 });
  });
});
