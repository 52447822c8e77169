import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { awsClient, describe as show, generate } from './helpers/aws-client.js';
import { TENANT } from './helpers/records.js';
import { startRedis, waitFor, type TestRedis } from './helpers/redis-server.js';
import { startService, type TestService } from './helpers/service.js';
import { ClientCertificateStore } from '../shared/client-certificate.store.js';

describe('durability', () => {
  let redis: TestRedis;
  let svc: TestService | undefined;
  before(async () => {
    // What docker-compose runs: AOF with an fsync every second.
    redis = await startRedis({ appendonly: true, args: ['--appendfsync', 'everysec'] });
  });
  after(async () => {
    await svc?.close();
    await redis?.destroy();
  });

  it('a certificate answered with 201 survives a Redis crash and restart', async () => {
    svc = await startService(redis.url, { workers: 1, generateTimeoutMs: 20_000 });
    const client = awsClient(svc.api.url);
    const made = await generate(client, { description: 'keep me', tags: { a: 'b' } });
    assert.ok(made.ok, show(made));

    // SIGKILL: no shutdown save. What Redis had written to its AOF before answering must be enough.
    await redis.stop(true);
    await redis.start();

    const store = new ClientCertificateStore(svc.redis, svc.keys);
    const stored = await store.get(TENANT, made.cert.clientCertificateId!);
    assert.ok(stored, 'the certificate is gone after the restart');
    assert.equal(stored.pemEncodedCertificate, made.cert.pemEncodedCertificate);
    assert.equal(stored.description, 'keep me');
    assert.deepEqual({ ...stored.tags }, { a: 'b' });
    // The private key survived too, still sealed.
    const sealed = await store.getEncryptedKey(TENANT, made.cert.clientCertificateId!);
    assert.ok(sealed && !sealed.includes('PRIVATE KEY'));

    // And the service goes on with the same processes, once its fail-fast connection has reconnected.
    await waitFor(async () => (await generate(client)).ok, 15_000, 200);
  });
});
