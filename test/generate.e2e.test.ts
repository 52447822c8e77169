import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  APIGatewayClient,
  BadRequestException,
  GenerateClientCertificateCommand,
} from '@aws-sdk/client-api-gateway';
import { ClientCertificateStore } from '../shared/client-certificate-store.js';
import { keyAad } from '../shared/crypto/key-vault.js';
import { useService } from './helpers/fixture.js';
import { startRedis, waitFor, type TestRedis } from '../devtools/redis-server.js';
import { startService } from '../devtools/service.js';
import { signedFetch } from '../devtools/signed-fetch.js';
import type { KeySource } from '../worker/key-source.js';
import { RECORD_FIELDS } from './helpers/records.js';

const TENANT = { accountId: '000000000000', region: 'us-east-1' };

function sdk(url: string, region = 'us-east-1') {
  return new APIGatewayClient({
    endpoint: url,
    region,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
}

describe('GenerateClientCertificate end to end (real Redis, BullMQ, worker, HTTP, AWS SDK)', () => {
  const fx = useService({ workers: 1 });
  let client: APIGatewayClient;

  before(() => {
    client = sdk(fx.svc.api.url);
  });
  after(() => {
    client.destroy();
  });

  it('answers 201 with a real certificate the SDK parses into its typed output', async () => {
    const before = Math.floor(Date.now() / 1000);
    const out = await client.send(
      new GenerateClientCertificateCommand({ description: 'my-cert', tags: { team: 'payments' } }),
    );
    assert.equal(out.$metadata.httpStatusCode, 201);
    assert.match(out.clientCertificateId!, /^[a-z0-9]{6}$/);
    assert.equal(out.description, 'my-cert');
    assert.deepEqual(out.tags, { team: 'payments' });
    assert.ok(out.createdDate instanceof Date && out.expirationDate instanceof Date);
    const created = out.createdDate.getTime() / 1000;
    assert.ok(Number.isInteger(created) && created >= before && created <= Math.floor(Date.now() / 1000));
    assert.equal(out.expirationDate.getTime() - out.createdDate.getTime(), 365 * 86_400_000);

    const x509 = new X509Certificate(out.pemEncodedCertificate!);
    assert.ok(x509.verify(x509.publicKey));
    assert.equal(x509.subject, 'C=US\nL=Seattle\nCN=ApiGateway');
    assert.equal(Date.parse(x509.validFrom), out.createdDate.getTime());
    assert.equal(Date.parse(x509.validTo), out.expirationDate.getTime());
  });

  it('answers exactly the six fields, timestamps as epoch seconds, application/json', async () => {
    const res = await signedFetch(fx.svc.api.url, '/clientcertificates', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ description: 'raw', tags: { a: 'b' }, unknownField: 1 }),
    });
    assert.equal(res.status, 201);
    assert.match(res.headers.get('content-type')!, /^application\/json/);
    const body = (await res.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), RECORD_FIELDS);
    assert.ok(Number.isInteger(body.createdDate));
    assert.equal((body.expirationDate as number) - (body.createdDate as number), 31_536_000);

    const bare = await signedFetch(fx.svc.api.url, '/clientcertificates', { method: 'POST' });
    assert.equal(bare.status, 201);
    const b = (await bare.json()) as Record<string, unknown>;
    assert.equal('description' in b, false);
    assert.equal('tags' in b, false);
  });

  it('gives 12 concurrent requests 12 distinct ids and keys, each with its own description', async () => {
    // More waiters than an EventEmitter's default limit (10): the API must not warn of a leak.
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    const outs = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        client.send(new GenerateClientCertificateCommand({ description: `concurrent-${i}` })),
      ),
    ).finally(() => setImmediate(() => process.off('warning', onWarning)));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message),
      [],
    );
    assert.equal(new Set(outs.map((o) => o.clientCertificateId)).size, 12);
    const moduli = outs.map(
      (o) => new X509Certificate(o.pemEncodedCertificate!).publicKey.export({ format: 'jwk' }).n,
    );
    assert.equal(new Set(moduli).size, 12);
    outs.forEach((o, i) => assert.equal(o.description, `concurrent-${i}`));
  });

  it('stores the record and only an encrypted private key that matches the certificate', async () => {
    const out = await client.send(new GenerateClientCertificateCommand({ description: 'stored' }));
    const id = out.clientCertificateId!;
    const store = new ClientCertificateStore(fx.svc.redis, fx.svc.keys);
    const stored = await store.get(TENANT, id);
    assert.equal(stored?.pemEncodedCertificate, out.pemEncodedCertificate);
    const envelope = await store.getEncryptedKey(TENANT, id);
    assert.ok(envelope?.startsWith('v1.'));
    const raw = await fx.svc.redis.hgetall(fx.svc.keys.certificate(TENANT, id));
    for (const v of Object.values(raw)) assert.doesNotMatch(v, /PRIVATE KEY/);
    const der = fx.svc.vault.decrypt(envelope!, keyAad(TENANT.accountId, TENANT.region, id));
    const privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    const x509 = new X509Certificate(out.pemEncodedCertificate!);
    assert.ok(x509.checkPrivateKey(privateKey));
    assert.ok(!raw.key!.includes(der.toString('base64').slice(20, 60)));
  });

  it('raises BadRequestException in the SDK for a bad tag, and creates nothing', async () => {
    const count = await fx.svc.redis.zcard(fx.svc.keys.index(TENANT));
    await assert.rejects(
      client.send(new GenerateClientCertificateCommand({ tags: { 'aws:owner': 'me' } })),
      (err: unknown) => {
        assert.ok(err instanceof BadRequestException);
        assert.equal(err.$metadata.httpStatusCode, 400);
        assert.equal(
          err.message,
          `Invalid tag key "aws:owner" in tags: a tag key must not start with 'aws:'`,
        );
        return true;
      },
    );
    assert.equal(await fx.svc.redis.zcard(fx.svc.keys.index(TENANT)), count);
    assert.equal(await fx.svc.redis.zcard(fx.svc.keys.pending(TENANT)), 0);
  });

  it('keeps certificates of different regions apart', async () => {
    const eu = sdk(fx.svc.api.url, 'eu-west-1');
    const out = await eu.send(new GenerateClientCertificateCommand({}));
    eu.destroy();
    const store = new ClientCertificateStore(fx.svc.redis, fx.svc.keys);
    assert.ok(await store.get({ ...TENANT, region: 'eu-west-1' }, out.clientCertificateId!));
    assert.equal(await store.get(TENANT, out.clientCertificateId!), undefined);
  });

  it('answers errors in the AWS wire format for bad JSON, unknown routes, wrong methods and big bodies', async () => {
    const cases: [{ path: string; method: string; body?: string }, number, string, RegExp][] = [
      [
        { path: '/clientcertificates', method: 'POST', body: '{bad' },
        400,
        'BadRequestException',
        // AWS's words: docs/aws-behaviour.md, "Operations".
        /^Could not parse request body into json/,
      ],
      [
        { path: '/clientcertificates', method: 'POST', body: '[1]' },
        400,
        'BadRequestException',
        /^Request body must be a JSON object$/,
      ],
      [{ path: '/nope', method: 'GET' }, 404, 'NotFoundException', /^No route for GET \/nope$/],
      [
        { path: '/health', method: 'POST' },
        405,
        'MethodNotAllowedException',
        /^Method POST is not allowed on \/health$/,
      ],
      [
        {
          path: '/clientcertificates',
          method: 'POST',
          body: JSON.stringify({ description: 'x'.repeat(70_000) }),
        },
        413,
        'PayloadTooLargeException',
        /^Request body must not exceed 65536 bytes$/,
      ],
    ];
    for (const [{ path, ...init }, status, type, message] of cases) {
      const res = await signedFetch(fx.svc.api.url, path, init);
      assert.equal(res.status, status, `${init.method} ${path}`);
      assert.equal(res.headers.get('x-amzn-errortype'), type);
      const body = (await res.json()) as { message: string };
      assert.deepEqual(Object.keys(body), ['message']);
      assert.match(body.message, message);
    }
  });

  it('reports health with the number of live workers', async () => {
    const res = await fetch(`${fx.svc.api.url}/health`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { redis: string; workers: number };
    assert.equal(body.redis, 'ok');
    assert.equal(body.workers, 1);
  });

  it('never logs key material', () => {
    const all = fx.svc.logs.lines.join('\n');
    assert.ok(fx.svc.logs.lines.length > 10);
    assert.doesNotMatch(all, /PRIVATE KEY|MII[A-Za-z0-9+/]{60}/);
  });
});

describe('Generate when things go wrong', () => {
  let redis: TestRedis;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis.destroy();
  });

  it('answers 503 with Retry-After when no worker finishes in time, and the late job creates nothing', async () => {
    const svc = await startService(redis.url, { workers: 0, generateTimeoutMs: 1000 });
    try {
      const res = await signedFetch(svc.api.url, '/clientcertificates', {
        method: 'POST',
        body: '{"description":"late"}',
      });
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('x-amzn-errortype'), 'ServiceUnavailableException');
      assert.ok(Number(res.headers.get('retry-after')) >= 1);
      assert.match(((await res.json()) as { message: string }).message, /no certificate was created/);
      assert.equal(await svc.redis.zcard(svc.keys.pending(TENANT)), 0);

      // A worker that turns up later must not create a certificate nobody was told about.
      const w = svc.addWorker();
      await waitFor(
        async () => (await svc.redis.zcard(`${svc.keys.queuePrefix}:client-certificates:wait`)) === 0,
        10_000,
      );
      await waitFor(
        async () =>
          (await w.worker.isRunning()) &&
          (await svc.redis.zcard(`${svc.keys.queuePrefix}:client-certificates:active`)) === 0,
        10_000,
      );
      assert.equal(await svc.redis.zcard(svc.keys.index(TENANT)), 0);
    } finally {
      await svc.close();
    }
  });

  it('answers 500 without internals when the worker fails, and logs the cause', async () => {
    const broken: KeySource = {
      take: async () => {
        throw new Error('entropy source exploded');
      },
      close: async () => {},
    };
    const svc = await startService(redis.url, { workers: 1, keySource: broken });
    try {
      const res = await signedFetch(svc.api.url, '/clientcertificates', { method: 'POST' });
      assert.equal(res.status, 500);
      assert.equal(res.headers.get('x-amzn-errortype'), 'InternalServerErrorException');
      assert.deepEqual(await res.json(), { message: 'Internal server error' });
      assert.ok(svc.logs.lines.some((l) => l.includes('entropy source exploded')));
      assert.equal(await svc.redis.zcard(svc.keys.pending(TENANT)), 0);
    } finally {
      await svc.close();
    }
  });

  it('answers 503 fast while Redis is down, and recovers when it is back', async () => {
    const svc = await startService(redis.url, { workers: 1 });
    try {
      await redis.stop();
      const started = Date.now();
      const res = await signedFetch(svc.api.url, '/clientcertificates', { method: 'POST' });
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('x-amzn-errortype'), 'ServiceUnavailableException');
      assert.ok(res.headers.get('retry-after'));
      assert.ok(Date.now() - started < 5000, 'a Redis outage must not hang the request');
      const health = await fetch(`${svc.api.url}/health`);
      assert.equal(health.status, 503);
      assert.equal(((await health.json()) as { redis: string }).redis, 'down');

      await redis.start();
      await waitFor(async () => (await fetch(`${svc.api.url}/health`)).status === 200, 20_000, 200);
      const again = await signedFetch(svc.api.url, '/clientcertificates', { method: 'POST' });
      assert.equal(again.status, 201);
    } finally {
      await svc.close();
    }
  });
});
