import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runInNewContext } from 'node:vm';
import { DROP_URL_CREDENTIALS_SCRIPT } from '../api/routes/admin.js';
import { WorkerMetrics } from '../shared/metrics.js';
import { useRedis, useService } from './helpers/fixture.js';
import { waitFor } from '../devtools/redis-server.js';
import { startService, type TestService } from '../devtools/service.js';
import { signRequest } from '../devtools/signed-fetch.js';

const T = { accountId: '000000000000', region: 'us-east-1' };

async function metrics(svc: TestService): Promise<string> {
  const res = await fetch(`${svc.api.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return res.text();
}

/** The value of one exposition line, e.g. `certificates_issued_total` or `queue_jobs{state="waiting"}`. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** A SigV4-signed request (test/test), as every API call must be. */
async function signed(svc: TestService, path: string, method = 'GET', body?: string): Promise<Response> {
  const { url, init } = await signRequest(svc.api.url, path, {
    method,
    body,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
  });
  return fetch(url, init);
}

const generate = (svc: TestService) => signed(svc, '/clientcertificates', 'POST', '{}');

describe('/metrics', () => {
  const fx = useService();

  test('counts requests by route pattern and status, and reports the workers, queue, key pools and expiry', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await generate(fx.svc);
      assert.equal(res.status, 201);
      ids.push(((await res.json()) as { clientCertificateId: string }).clientCertificateId);
    }
    assert.equal((await signed(fx.svc, `/clientcertificates/${ids[0]}`)).status, 200);
    assert.equal((await signed(fx.svc, '/clientcertificates/zzzzzz')).status, 404);
    assert.equal((await signed(fx.svc, '/no/such/path')).status, 404);

    // The worker reports after the job completes: poll rather than race it.
    let text = '';
    await waitFor(
      async () => value((text = await metrics(fx.svc)), 'certificates_issued_total') === 2,
      20_000,
    );
    assert.equal(
      value(text, 'http_requests_total{method="POST",route="/clientcertificates",status="201"}'),
      2,
    );
    const byId = text.match(
      /http_requests_total\{method="GET",route="(\/clientcertificates\/:[^"]+)",status="200"\} 1/,
    );
    assert.ok(byId, 'the id is a route parameter, not a label value');
    assert.equal(value(text, `http_requests_total{method="GET",route="${byId[1]}",status="404"}`), 1);
    assert.equal(value(text, 'http_requests_total{method="GET",route="unmatched",status="404"}'), 1);
    assert.doesNotMatch(text, new RegExp(ids[0]!), 'no certificate id in any label');
    assert.equal(
      value(
        text,
        'http_request_duration_seconds_count{method="POST",route="/clientcertificates",status="201"}',
      ),
      2,
    );
    assert.equal(value(text, 'certificates_failed_total'), 0);
    assert.equal(value(text, 'certificate_generation_duration_seconds_count'), 2);
    assert.equal(value(text, 'certificate_generation_duration_seconds_bucket{le="+Inf"}'), 2);
    assert.ok(value(text, 'certificate_generation_duration_seconds_sum')! > 0);
    assert.match(text, /# TYPE certificate_generation_duration_seconds histogram/);
    for (const state of ['waiting', 'active', 'delayed'])
      assert.equal(value(text, `queue_jobs{state="${state}"}`), 0);
    // New certificates are valid for 365 days: none expires within 30.
    assert.equal(value(text, 'certificates_expiring_within_30_days'), 0);
    assert.equal(value(text, 'key_pool_ready_keys'), 0);

    // The key pool hook: a live worker's level counts, a worker without a heartbeat does not.
    const wm = new WorkerMetrics(fx.svc.redis, fx.svc.keys);
    await wm.keyPoolLevel(fx.svc.workers[0]!.id, 7);
    await wm.keyPoolLevel('worker-long-gone', 5);
    // One certificate due in 10 days, and one deleted since: only the first counts (the store keeps the index).
    const soon = Math.floor(Date.now() / 1000) + 10 * 24 * 3600;
    for (const id of ['soon01', 'gone00']) {
      assert.equal(await fx.svc.store.reserve(T, id, 60_000, 0), 'reserved');
      const c = { clientCertificateId: id, pemEncodedCertificate: 'x', createdDate: 0, expirationDate: soon };
      assert.equal(await fx.svc.store.createIfReserved(T, { ...c, tags: {}, encryptedKey: 'x' }), 'created');
    }
    assert.equal(await fx.svc.store.delete(T, 'gone00'), true);
    await wm.issued(100);
    await wm.issued(100);
    text = await metrics(fx.svc);
    assert.equal(value(text, 'key_pool_ready_keys'), 7);
    assert.equal(value(text, 'certificates_expiring_within_30_days'), 1);
    assert.equal(value(text, 'certificates_issued_total'), 4, 'the hook calls above count as issued');
  });

  test('counts a generation whose last attempt failed', async () => {
    const failing = await startService(fx.redis.url, {
      workers: 1,
      keySource: { take: () => Promise.reject(new Error('entropy exhausted')), close: async () => {} },
    });
    try {
      const res = await generate(failing);
      assert.equal(res.status, 500);
      let text = '';
      await waitFor(
        async () => value((text = await metrics(failing)), 'certificates_failed_total') === 1,
        20_000,
      );
      assert.equal(value(text, 'certificates_issued_total'), 0);
      assert.equal(
        value(text, 'http_requests_total{method="POST",route="/clientcertificates",status="500"}'),
        1,
      );
    } finally {
      await failing.close();
    }
  });
});

describe('/admin/queues', () => {
  const fx = useRedis();

  test('is off (404) without ADMIN_PASSWORD', async () => {
    const svc = await startService(fx.redis.url, { workers: 0 });
    try {
      for (const path of ['/admin/queues', '/admin/queues/api/queues']) {
        const res = await fetch(`${svc.api.url}${path}`, {
          headers: { authorization: `Basic ${Buffer.from('admin:').toString('base64')}` },
        });
        assert.equal(res.status, 404);
        assert.equal(res.headers.get('x-amzn-errortype'), 'NotFoundException');
      }
    } finally {
      await svc.close();
    }
  });

  test('asks for admin / ADMIN_PASSWORD and then shows the queue', async () => {
    const password = 'correct horse battery staple';
    const svc = await startService(fx.redis.url, { adminPassword: password });
    const basic = (u: string, p: string) => ({
      authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`,
    });
    try {
      assert.equal((await generate(svc)).status, 201);
      const anonymous = await fetch(`${svc.api.url}/admin/queues`);
      assert.equal(anonymous.status, 401);
      assert.match(
        anonymous.headers.get('www-authenticate') ?? '',
        /^Basic realm="client-certificates admin"/,
      );
      assert.equal(
        (await fetch(`${svc.api.url}/admin/queues`, { headers: basic('admin', 'guess') })).status,
        401,
      );
      assert.equal(
        (await fetch(`${svc.api.url}/admin/queues`, { headers: basic('root', password) })).status,
        401,
      );
      assert.equal((await fetch(`${svc.api.url}/admin/queues/api/queues`)).status, 401, 'the JSON API too');
      const page = await fetch(`${svc.api.url}/admin/queues`, { headers: basic('admin', password) });
      assert.equal(page.status, 200);
      const html = await page.text();
      assert.match(html, /<title>Client certificates<\/title>/);
      // Before the UI's scripts: the reload that drops user:password@ from the address (see admin.ts).
      assert.ok(html.indexOf(DROP_URL_CREDENTIALS_SCRIPT) >= 0, 'the page carries the reload script');
      assert.ok(html.indexOf(DROP_URL_CREDENTIALS_SCRIPT) < html.indexOf('<script defer'));
      assert.doesNotMatch(
        html,
        /https?:\/\/(?!localhost|127\.)[^"'\s]*\.(googleapis|gstatic)\.com/,
        'no outside fonts',
      );
      assert.match(
        html,
        /<link href="static\/css\/main\.[0-9a-f]+\.css" rel="stylesheet">/,
        'its own CSS stays',
      );
      const slash = await fetch(`${svc.api.url}/admin/queues/`, {
        headers: basic('admin', password),
        redirect: 'manual',
      });
      assert.equal(slash.status, 301);
      assert.equal(slash.headers.get('location'), '/admin/queues');
      assert.equal((await fetch(`${svc.api.url}/admin/queues/`, { redirect: 'manual' })).status, 401);

      // The translations, where the UI asks for them: `${<base href>}static/locales/{lng}/messages.json`.
      // Without them it shows raw keys (MENU.QUEUES, QUEUE.STATUS.ALL) instead of labels.
      const base = /<base href="([^"]+)"/.exec(html)?.[1];
      assert.equal(base, '/admin/queues/');
      const locale = `${svc.api.url}${base}static/locales/en-US/messages.json`;
      assert.equal((await fetch(locale)).status, 401, 'the UI files too: the browser resends the password');
      const messages = await fetch(locale, { headers: basic('admin', password) });
      assert.equal(messages.status, 200);
      assert.match(messages.headers.get('content-type') ?? '', /^application\/json/);
      const labels = (await messages.json()) as {
        MENU: { QUEUES: string };
        QUEUE: { STATUS: { ALL: string } };
      };
      assert.equal(labels.MENU.QUEUES, 'QUEUES');
      assert.equal(labels.QUEUE.STATUS.ALL, 'All');
      const api = await fetch(`${svc.api.url}/admin/queues/api/queues`, {
        headers: basic('admin', password),
      });
      assert.equal(api.status, 200);
      const body = (await api.json()) as { queues: { name: string; counts: Record<string, number> }[] };
      assert.equal(body.queues.length, 1);
      assert.equal(body.queues[0]!.name, 'client-certificates');
      assert.equal(body.queues[0]!.counts.completed, 1);
    } finally {
      await svc.close();
    }
  });

  test('the page reloads itself without user:password@ in its address, and only then', () => {
    const run = (baseURI: string, href: string) => {
      const replaced: string[] = [];
      runInNewContext(DROP_URL_CREDENTIALS_SCRIPT.replace(/^<script>|<\/script>$/g, ''), {
        URL,
        document: { baseURI },
        location: { href, replace: (u: string) => replaced.push(u) },
      });
      return replaced;
    };
    // Chromium: location.href already without them, the base URL (hence fetch()) still with them.
    assert.deepEqual(
      run('http://admin:pw@h:1/admin/queues/', 'http://h:1/admin/queues/queue/q?status=latest'),
      ['http://h:1/admin/queues/queue/q?status=latest'],
    );
    assert.deepEqual(run('http://admin:pw@h:1/admin/queues/', 'http://admin:pw@h:1/admin/queues'), [
      'http://h:1/admin/queues',
    ]);
    assert.deepEqual(run('http://h:1/admin/queues/', 'http://h:1/admin/queues'), []);
  });
});
