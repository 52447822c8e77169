import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Queue } from 'bullmq';
import { LoginBackoff } from '../api/auth/login-backoff.js';
import { adminRoutes } from '../api/routes/admin.js';
import { loadConfig } from '../shared/config.js';
import { QUEUE_NAME } from '../shared/jobs.js';
import { useRedis, useService } from './helpers/fixture.js';

const PASSWORD = 'correct horse battery staple';
const basic = (p: string) => ({ authorization: `Basic ${Buffer.from(`admin:${p}`).toString('base64')}` });
const RETRY_FAILED = `/admin/queues/api/queues/${QUEUE_NAME}/retry/failed`;

describe('ADMIN_READ_WRITE and METRICS_TOKEN', () => {
  it('default to a read-only dashboard and an open /metrics; anything but true/false is a ConfigError', () => {
    const c = loadConfig({});
    assert.equal(c.adminReadWrite, false);
    assert.equal(c.metricsToken, undefined);
    assert.equal(loadConfig({ ADMIN_READ_WRITE: 'true' }).adminReadWrite, true);
    assert.equal(loadConfig({ ADMIN_READ_WRITE: 'false' }).adminReadWrite, false);
    assert.throws(
      () => loadConfig({ ADMIN_READ_WRITE: 'yes' }),
      /ADMIN_READ_WRITE must be true or false, got "yes"/,
    );
    assert.equal(loadConfig({ METRICS_TOKEN: 'tok' }).metricsToken, 'tok');
  });
});

describe('LoginBackoff', () => {
  it('lets 3 wrong passwords through, then doubles a wait per failure, per client, until a right one', () => {
    let now = 1_000_000;
    const b = new LoginBackoff({ now: () => now });
    assert.deepEqual([b.failed('a'), b.failed('a'), b.failed('a')], [0, 0, 0]);
    assert.equal(b.waitMs('a'), 0);
    assert.equal(b.failed('a'), 1000);
    assert.equal(b.waitMs('a'), 1000);
    assert.equal(b.waitMs('b'), 0, 'another client is not slowed down');
    now += 400;
    assert.equal(b.waitMs('a'), 600);
    now += 600;
    assert.equal(b.waitMs('a'), 0);
    assert.equal(b.failed('a'), 2000);
    now += 2000;
    assert.equal(b.failed('a'), 4000);
    b.succeeded('a');
    assert.equal(b.waitMs('a'), 0);
    assert.equal(b.failed('a'), 0, 'a right password starts the count afresh');
  });

  it('caps the wait and the number of clients it remembers', () => {
    const b = new LoginBackoff({
      freeFailures: 0,
      baseDelayMs: 1000,
      maxDelayMs: 5000,
      maxClients: 2,
      now: () => 0,
    });
    assert.deepEqual(
      [1, 2, 3, 4, 5].map(() => b.failed('a')),
      [1000, 2000, 4000, 5000, 5000],
    );
    b.failed('b');
    b.failed('c'); // 'a' failed longest ago: forgotten
    assert.equal(b.waitMs('a'), 0);
    assert.equal(b.waitMs('c'), 1000);
  });
});

describe('/admin/queues guard (bull-board on a real queue)', () => {
  const fx = useRedis();
  let queue: Queue;
  before(() => {
    queue = new Queue(QUEUE_NAME, {
      connection: { host: '127.0.0.1', port: fx.redis.port },
      prefix: '{adm}',
    });
  });
  after(async () => {
    await queue.close();
  });

  it('answers a client that must wait with 429 and Retry-After before looking at its password', async () => {
    let now = 0;
    const app = adminRoutes(queue, PASSWORD, {
      backoff: new LoginBackoff({ baseDelayMs: 60_000, now: () => now }),
    });
    const get = (p?: string) =>
      app.request('/admin/queues/api/queues', { headers: p === undefined ? {} : basic(p) });
    assert.equal((await get()).status, 401, 'no credentials: the browser asks; not counted');
    for (let i = 0; i < 4; i++) assert.equal((await get('guess')).status, 401, `guess ${i + 1}`);
    const blocked = await get(PASSWORD);
    assert.equal(blocked.status, 429, 'even the right password waits');
    assert.equal(blocked.headers.get('retry-after'), '60');
    now += 60_000;
    assert.equal((await get(PASSWORD)).status, 200, 'after the wait the right password works');
    assert.equal((await get('guess')).status, 401, 'and the count started afresh');
  });

  it('is read-only by default: retrying and cleaning jobs answer 405', async () => {
    const app = adminRoutes(queue, PASSWORD);
    const queues = (await (
      await app.request('/admin/queues/api/queues', { headers: basic(PASSWORD) })
    ).json()) as {
      queues: { readOnlyMode: boolean }[];
    };
    assert.equal(queues.queues[0]!.readOnlyMode, true);
    for (const path of [RETRY_FAILED, `/admin/queues/api/queues/${QUEUE_NAME}/clean/completed`]) {
      const res = await app.request(path, { method: 'PUT', headers: basic(PASSWORD) });
      assert.equal(res.status, 405, path);
    }
  });
});

describe('/admin/queues with ADMIN_READ_WRITE=true', () => {
  const fx = useService({ workers: 0, adminPassword: PASSWORD, api: { adminReadWrite: true } });

  it('lets the dashboard retry jobs', async () => {
    const res = await fetch(`${fx.svc.api.url}${RETRY_FAILED}`, { method: 'PUT', headers: basic(PASSWORD) });
    assert.equal(res.status, 200, await res.text());
  });
});

describe('/admin/queues by default, through the real server', () => {
  const fx = useService({ workers: 0, adminPassword: PASSWORD });

  it('refuses to retry jobs (read-only)', async () => {
    const res = await fetch(`${fx.svc.api.url}${RETRY_FAILED}`, { method: 'PUT', headers: basic(PASSWORD) });
    assert.equal(res.status, 405);
  });
});
