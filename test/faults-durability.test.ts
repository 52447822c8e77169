import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { awsClient, showOutcome, generate } from '../devtools/aws-client.js';
import { TENANT } from './helpers/records.js';
import { useRedis } from './helpers/fixture.js';
import { waitFor } from '../devtools/redis-server.js';
import { startService } from '../devtools/service.js';
import { ClientCertificateStore } from '../shared/client-certificate-store.js';

describe('durability', () => {
  // What docker-compose runs: AOF with an fsync every second.
  const fx = useRedis({ appendonly: true, appendfsync: 'everysec' });

  it('a certificate answered with 201 survives a Redis crash and restart', async () => {
    const svc = await startService(fx.redis.url, { workers: 1, generateTimeoutMs: 20_000 });
    try {
      const client = awsClient(svc.api.url);
      const made = await generate(client, { description: 'keep me', tags: { a: 'b' } });
      assert.ok(made.ok, showOutcome(made));

      // SIGKILL: no shutdown save. What Redis had written to its AOF before answering must be enough.
      await fx.redis.stop(true);
      await fx.redis.start();

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
    } finally {
      await svc.close();
    }
  });
});
