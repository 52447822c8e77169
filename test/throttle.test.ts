import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LoadShedder } from '../api/load-shedder.js';
import { generateRsaKey, type KeySource } from '../worker/key-source.js';
import { useRedis } from './helpers/fixture.js';
import { startRedis, waitFor } from '../devtools/redis-server.js';
import { startService } from '../devtools/service.js';
import { signedFetch } from '../devtools/signed-fetch.js';

const creds = [
  {
    accessKeyId: 'alice',
    secretAccessKey: 'alice-secret',
    accountId: '111111111111',
    allow: ['apigateway:*'],
  },
  { accessKeyId: 'bob', secretAccessKey: 'bob-secret', accountId: '222222222222', allow: ['apigateway:*'] },
];
const alice = { accessKeyId: 'alice', secretAccessKey: 'alice-secret' };
const bob = { accessKeyId: 'bob', secretAccessKey: 'bob-secret' };

describe('throttling', () => {
  const fx = useRedis();

  it('shares one per-account budget across API replicas and answers 429 TooManyRequestsException with Retry-After', async () => {
    // A refill of one request per 1000 s: only the burst can pass during the test, however slow the machine.
    const svc = await startService(fx.redis.url, {
      workers: 0,
      credentials: creds,
      rateLimit: { rps: 0.001, burst: 3 },
    });
    try {
      const second = await svc.addApi();
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await signedFetch(
          i % 2 ? second.url : svc.api.url,
          '/clientcertificates/nosuchid',
          alice,
        );
        statuses.push(res.status);
      }
      assert.deepEqual(statuses, [404, 404, 404]);
      for (const url of [svc.api.url, second.url]) {
        const res = await signedFetch(url, '/clientcertificates/nosuchid', alice);
        assert.equal(res.status, 429);
        assert.equal(res.headers.get('x-amzn-errortype'), 'TooManyRequestsException');
        const retryAfter = Number(res.headers.get('retry-after'));
        assert.ok(
          Number.isInteger(retryAfter) && retryAfter >= 1,
          `Retry-After ${res.headers.get('retry-after')}`,
        );
        const body = (await res.json()) as { message: string };
        assert.match(
          body.message,
          /^Too Many Requests: account 111111111111 exceeded 0.001 requests per second \(burst 3\) in us-east-1/,
        );
      }
      // Another account, and another region of the same account, have budgets of their own.
      assert.equal((await signedFetch(svc.api.url, '/clientcertificates/nosuchid', bob)).status, 404);
      assert.equal(
        (await signedFetch(svc.api.url, '/clientcertificates/nosuchid', { ...alice, region: 'eu-west-1' }))
          .status,
        404,
      );
      // Unauthenticated requests never reach (nor spend) the budget.
      assert.equal((await fetch(`${svc.api.url}/clientcertificates/nosuchid`)).status, 403);
      assert.equal((await fetch(`${svc.api.url}/health`)).status, 503); // no workers, but answered
    } finally {
      await svc.close();
    }
  });
});

describe('load shedding', () => {
  it('estimates from the backlog, the busy slots and the measured job duration', async () => {
    let counts = { waiting: 0, active: 0 };
    const shedder = new LoadShedder(async () => counts, 10_000);
    assert.equal(await shedder.estimateMs(), undefined); // nothing measured yet
    shedder.sample(2000);
    assert.equal(await shedder.estimateMs(), undefined); // nothing waiting
    counts = { waiting: 3, active: 2 };
    assert.equal(await shedder.estimateMs(), 4000); // ceil(4 / 2) rounds of 2 s
    await shedder.admit();
    counts = { waiting: 10, active: 2 };
    await assert.rejects(
      shedder.admit(),
      (err: Error & { status: number; type: string; retryAfterSeconds: number }) => {
        assert.equal(err.status, 429);
        assert.equal(err.type, 'TooManyRequestsException');
        assert.equal(err.retryAfterSeconds, 2); // 12 s of work, 10 s of wait
        return true;
      },
    );
    counts = { waiting: 10, active: 0 }; // no worker: not load, an outage (the 503 path)
    await shedder.admit();
  });

  it('answers 429 at once when the queued generations cannot finish within GENERATE_TIMEOUT_MS', async () => {
    const redis = await startRedis();
    let release!: () => void;
    let gate: Promise<void> | undefined;
    // Every job takes at least 2 s, so the measured duration is at least that on any machine.
    const slow: KeySource = {
      async take() {
        await new Promise((r) => setTimeout(r, 2000));
        if (gate) await gate;
        return generateRsaKey();
      },
      close: async () => {},
    };
    const svc = await startService(redis.url, { workers: 0, generateTimeoutMs: 10_000, credentials: creds });
    svc.addWorker({ keySource: slow, concurrency: 1 });
    const pending: Promise<Response>[] = [];
    try {
      const first = await signedFetch(svc.api.url, '/clientcertificates', {
        ...alice,
        method: 'POST',
        body: '{}',
      });
      assert.equal(first.status, 201, await first.text());

      gate = new Promise((r) => (release = r));
      const queued = async () => {
        const h = (await (await fetch(`${svc.api.url}/health`)).json()) as {
          queue?: { waiting: number; active: number };
        };
        return (h.queue?.waiting ?? 0) + (h.queue?.active ?? 0);
      };
      let shed: Response | undefined;
      for (let i = 0; i < 12 && !shed; i++) {
        const settled: { res?: Response } = {};
        const p = signedFetch(svc.api.url, '/clientcertificates', { ...bob, method: 'POST', body: '{}' });
        void p.then((r) => (settled.res = r));
        const acceptedBefore = pending.length;
        await waitFor(async () => settled.res !== undefined || (await queued()) > acceptedBefore, 30_000, 50);
        if (settled.res?.status === 429) shed = settled.res;
        else pending.push(p);
      }
      assert.ok(shed, 'no request was shed');
      // With 2 s per job, one slot and a 10 s wait, at most 5 may wait behind the active one.
      assert.ok(pending.length >= 1 && pending.length <= 6, `accepted ${pending.length}`);
      assert.equal(shed.headers.get('x-amzn-errortype'), 'TooManyRequestsException');
      assert.ok(Number(shed.headers.get('retry-after')) >= 1);
      const body = (await shed.json()) as { message: string };
      assert.match(
        body.message,
        /^Too many certificates are being generated: the queued work would take about \d+ s, longer than this service waits \(10 s\)\. Retry later\.$/,
      );
      // Nothing was reserved for the shed request.
      const t = { accountId: '222222222222', region: 'us-east-1' };
      assert.equal(await svc.redis.zcard(svc.keys.pending(t)), pending.length);
    } finally {
      release?.();
      for (const res of await Promise.all(pending))
        assert.ok([201, 503].includes(res.status), `status ${res.status}`);
      await svc.close();
      await redis.destroy();
    }
  });
});
