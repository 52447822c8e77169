import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Keys } from '../shared/keys.js';
import { createLogger } from '../shared/logger.js';
import { createRedis, patientOptions, type RedisClient } from '../shared/redis.js';
import { startWorkerHealthServer, type WorkerHealthServer } from '../worker/health-server.js';
import { directKeySource } from '../worker/key-source.js';
import { startWorker, type RunningWorker } from '../worker/worker.js';
import { KeyVault } from '../shared/crypto/key-vault.js';
import { startRedis, waitFor, type TestRedis } from '../devtools/redis-server.js';
import { startService, type TestService } from '../devtools/service.js';
import { randomBytes } from 'node:crypto';

async function probe(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

describe('API probes /health/live and /health/ready', () => {
  let redis: TestRedis;
  let svc: TestService;
  before(async () => {
    redis = await startRedis();
    svc = await startService(redis.url, { workers: 0 });
  });
  after(async () => {
    await svc?.close();
    await redis?.destroy();
  });

  it('answers live 200 and ready 503 without a signature while no worker is live', async () => {
    assert.deepEqual(await probe(`${svc.api.url}/health/live`), { status: 200, body: { status: 'ok' } });
    assert.deepEqual(await probe(`${svc.api.url}/health/ready`), {
      status: 503,
      body: { status: 'unavailable', redis: 'ok', workers: 0 },
    });
  });

  it('answers ready 200 once a worker is live, and /health keeps its full report', async () => {
    svc.addWorker();
    await waitFor(async () => (await probe(`${svc.api.url}/health/ready`)).status === 200, 10_000, 100);
    assert.deepEqual((await probe(`${svc.api.url}/health/ready`)).body, {
      status: 'ok',
      redis: 'ok',
      workers: 1,
    });
    const full = await probe(`${svc.api.url}/health`);
    assert.equal(full.status, 200);
    assert.deepEqual(Object.keys(full.body).sort(), ['queue', 'redis', 'status', 'workers']);
  });

  it('refuses other methods on the probes with 405', async () => {
    const res = await probe(`${svc.api.url}/health/ready`, { method: 'POST' });
    assert.equal(res.status, 405);
    assert.equal(res.body.message, 'Method POST is not allowed on /health/ready');
  });

  it('answers ready 503 (redis down) but live 200 while Redis is down, and ready again after', async () => {
    await redis.stop(true);
    try {
      const ready = await probe(`${svc.api.url}/health/ready`);
      assert.equal(ready.status, 503);
      assert.equal(ready.body.redis, 'down');
      assert.deepEqual(await probe(`${svc.api.url}/health/live`), { status: 200, body: { status: 'ok' } });
    } finally {
      await redis.start();
    }
    await waitFor(async () => (await probe(`${svc.api.url}/health/ready`)).status === 200, 20_000, 200);
  });
});

describe('worker probes /health/live and /health/ready', () => {
  let redis: TestRedis;
  let conn: RedisClient;
  let worker: RunningWorker;
  let health: WorkerHealthServer;
  let url: string;
  before(async () => {
    redis = await startRedis();
    conn = createRedis(redis.url, patientOptions(), 'cc-test-worker');
    conn.on('error', () => undefined);
    worker = startWorker({
      redis: conn,
      keys: new Keys(`t${randomBytes(4).toString('hex')}`),
      vault: new KeyVault([randomBytes(32).toString('base64')]),
      keySource: directKeySource,
      log: createLogger('silent', 'test'),
      concurrency: 1,
    });
    health = await startWorkerHealthServer({
      host: '127.0.0.1',
      port: 0,
      redis: conn,
      running: () => worker.worker.isRunning(),
    });
    url = `http://127.0.0.1:${health.port}`;
  });
  after(async () => {
    await worker?.close(1000);
    await health?.close();
    conn?.disconnect();
    await redis?.destroy();
  });

  it('answers live 200 and ready 200 when Redis answers and the worker runs', async () => {
    assert.deepEqual(await probe(`${url}/health/live`), { status: 200, body: { status: 'ok' } });
    await waitFor(async () => (await probe(`${url}/health/ready`)).status === 200, 10_000, 100);
    assert.deepEqual((await probe(`${url}/health/ready`)).body, {
      status: 'ok',
      redis: 'ok',
      worker: 'running',
    });
    assert.equal((await probe(`${url}/nothing`)).status, 404);
  });

  it('answers ready 503 within about a second while Redis is down, live 200 throughout', async () => {
    await redis.stop(true);
    try {
      const started = Date.now();
      const ready = await probe(`${url}/health/ready`);
      assert.equal(ready.status, 503);
      assert.equal(ready.body.redis, 'down');
      assert.ok(Date.now() - started < 5000, 'the probe must not wait for the patient connection');
      assert.equal((await probe(`${url}/health/live`)).status, 200);
    } finally {
      await redis.start();
    }
    await waitFor(async () => (await probe(`${url}/health/ready`)).status === 200, 20_000, 200);
  });

  it('answers ready 503 once the worker is closing, live still 200', async () => {
    await worker.close(1000);
    const ready = await probe(`${url}/health/ready`);
    assert.equal(ready.status, 503);
    assert.equal(ready.body.worker, 'stopped');
    assert.equal((await probe(`${url}/health/live`)).status, 200);
  });
});
