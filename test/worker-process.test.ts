import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { APIGatewayClient, GenerateClientCertificateCommand } from '@aws-sdk/client-api-gateway';
import { DEFAULT_KEY_POOL_SIZE, loadConfig } from '../shared/config.js';
import { KeyPool } from '../worker/key-pool.js';
import { requiredThreadpoolSize } from '../worker/threadpool.js';
import { nodeArgs } from '../devtools/entry.js';
import { startRedis, waitFor, type TestRedis } from '../devtools/redis-server.js';
import { startService } from '../devtools/service.js';

describe('worker configuration', () => {
  it('defaults WORKER_CONCURRENCY to the core count plus one and KEY_POOL_SIZE to 32', () => {
    const c = loadConfig({});
    assert.equal(c.workerConcurrency, availableParallelism() + 1);
    assert.equal(c.keyPoolSize, DEFAULT_KEY_POOL_SIZE);
    assert.equal(DEFAULT_KEY_POOL_SIZE, 32);
  });

  it('accepts KEY_POOL_SIZE=0 (no pool) and rejects a non-number, naming the variable', () => {
    assert.equal(loadConfig({ KEY_POOL_SIZE: '0' }).keyPoolSize, 0);
    assert.throws(
      () => loadConfig({ KEY_POOL_SIZE: 'lots' }),
      /KEY_POOL_SIZE must be a whole number, got "lots"/,
    );
    assert.throws(() => loadConfig({ KEY_POOL_SIZE: '-1' }), /KEY_POOL_SIZE must be a whole number/);
    assert.throws(
      () => loadConfig({ WORKER_CONCURRENCY: '0' }),
      /WORKER_CONCURRENCY must be between 1 and 256/,
    );
  });

  it('sizes the libuv pool for every job, the refill and one spare thread, never below libuv default 4', () => {
    assert.equal(requiredThreadpoolSize(2, 1), 4);
    assert.equal(requiredThreadpoolSize(6, 1), 8);
    assert.equal(requiredThreadpoolSize(16, 0), 17);
  });
});

describe('worker process', () => {
  let redis: TestRedis;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => redis.destroy());

  /** `worker/main.ts` as its own process on this Redis, with a fresh prefix and master key; `undefined` unsets. */
  const spawnWorkerMain = (vars: Record<string, string | undefined>, stderr: 'pipe' | 'ignore') => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      REDIS_URL: redis.url,
      REDIS_PREFIX: `w${randomBytes(4).toString('hex')}`,
      MASTER_KEY: randomBytes(32).toString('base64'),
      LOG_LEVEL: 'info',
      ...vars,
    };
    for (const [k, v] of Object.entries(vars)) if (v === undefined) delete env[k];
    return spawn(process.execPath, [...nodeArgs('worker/main.ts')], {
      env,
      stdio: ['ignore', 'pipe', stderr],
    });
  };

  it('relaunches itself with UV_THREADPOOL_SIZE large enough, fills its key pool and stops on SIGTERM', async () => {
    const proc = spawnWorkerMain(
      { UV_THREADPOOL_SIZE: undefined, WORKER_CONCURRENCY: '6', KEY_POOL_SIZE: '1' },
      'pipe',
    );
    const lines: Record<string, unknown>[] = [];
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      for (const l of parts) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
    });
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    try {
      await waitFor(() => lines.some((l) => l.msg === 'worker started'), 30_000);
      const relaunch = lines.find((l) => String(l.msg).startsWith('libuv thread pool too small'));
      assert.ok(relaunch, `relaunch logged; stderr: ${stderr}`);
      assert.equal(relaunch.needed, 8);
      const started = lines.find((l) => l.msg === 'worker started')!;
      assert.equal(started.threadpool, 8);
      assert.equal(started.concurrency, 6);
      assert.equal(started.keyPoolSize, 1);
      assert.notEqual(started.pid, proc.pid, 'the worker runs in the relaunched child');
    } finally {
      proc.kill('SIGTERM');
    }
    assert.equal(await exited, 0, `exit code; stderr: ${stderr}`);
    assert.ok(lines.some((l) => l.msg === 'shutdown complete'));
  });

  it('never leaves its relaunched child behind, even when killed with SIGKILL', async () => {
    const proc = spawnWorkerMain(
      { UV_THREADPOOL_SIZE: '2', WORKER_CONCURRENCY: '2', KEY_POOL_SIZE: '0' },
      'ignore',
    );
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const parentExited = new Promise<void>((r) => proc.on('exit', () => r()));
    let childPid = 0;
    try {
      await waitFor(() => /"msg":"worker started"/.test(out), 30_000);
      const started = out.split('\n').find((l) => l.includes('"msg":"worker started"'))!;
      childPid = (JSON.parse(started) as { pid: number }).pid;
      assert.notEqual(childPid, proc.pid);
    } finally {
      proc.kill('SIGKILL');
    }
    await parentExited;
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await waitFor(() => !alive(childPid), 20_000, 100);
  });

  it('issues certificates with keys from the pool, each with its own key', async () => {
    const pool = new KeyPool({ size: 2 });
    const svc = await startService(redis.url, { keySource: pool });
    const client = new APIGatewayClient({
      endpoint: svc.api.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    try {
      await waitFor(() => pool.stats().ready === 2, 30_000);
      const answers = [];
      for (let i = 0; i < 3; i++) answers.push(await client.send(new GenerateClientCertificateCommand({})));
      const certs = answers.map((a) => new X509Certificate(a.pemEncodedCertificate!));
      for (const c of certs) assert.ok(c.verify(c.publicKey));
      const spki = certs.map((c) => c.publicKey.export({ type: 'spki', format: 'der' }).toString('hex'));
      assert.equal(new Set(spki).size, 3);
      const s = pool.stats();
      assert.ok(s.hits >= 2, `the first two came from the full pool: ${JSON.stringify(s)}`);
      assert.equal(s.hits + s.misses, 3);
    } finally {
      client.destroy();
      await svc.close();
      await pool.close();
    }
  });
});
