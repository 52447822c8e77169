import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../devtools/redis-server.js';
import { signedFetch } from '../devtools/signed-fetch.js';
import { startService, type TestService } from '../devtools/service.js';
import { ecCa, opensslAsync } from '../devtools/tls.js';
import { normalSerial } from '../shared/revocation-store.js';
import { certificateAuthorityFrom } from '../shared/certificate-authority.js';
import { startPrimaryWithReplicas, type TestReplicatedRedis } from './helpers/redis-replicated.js';

const T = { accountId: '000000000000', region: 'us-east-1' };

const openssl = async (args: string[]) => (await opensslAsync(args)).out;

describe('CA mode with REDIS_WAIT_REPLICAS=1 and two API replicas', () => {
  const caPem = ecCa('Replicas Test CA');
  let redis: TestReplicatedRedis;
  let svc: TestService;
  const dir = mkdtempSync(join(tmpdir(), 'ca-replicas-'));
  before(async () => {
    redis = await startPrimaryWithReplicas(1);
    // Linked is not caught up: the replica may still be in its first (diskless, delayed) sync.
    await waitFor(
      async () => /slave0:.*state=online/.test(await redis.primary.cli('INFO', 'replication')),
      30_000,
      200,
    );
    svc = await startService(`redis://127.0.0.1:${redis.primary.port}`, {
      ca: certificateAuthorityFrom(caPem.cert, caPem.key, { certFile: 'ca.pem', keyFile: 'ca.key' }),
      api: { redisWaitReplicas: 1, redisWaitTimeoutMs: 2000 },
    });
  });
  after(async () => {
    await svc?.close();
    await redis?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a 201 Generate means the serial index entry is on the replica, confirmed in one WAIT round on a single primary', async () => {
    await redis.primary.cli('CONFIG', 'RESETSTAT');
    const res = await signedFetch(svc.api.url, '/clientcertificates', { method: 'POST', body: '{}' });
    assert.equal(res.status, 201, await res.clone().text());
    const c = (await res.json()) as { clientCertificateId: string; pemEncodedCertificate: string };
    const serial = normalSerial(new X509Certificate(c.pemEncodedCertificate).serialNumber);
    assert.equal(
      await redis.replicas[0]!.cli('HGET', svc.keys.caSerials, serial),
      `${T.accountId}:${T.region}:${c.clientCertificateId}`,
    );
    assert.ok(
      Number(await redis.replicas[0]!.cli('ZSCORE', svc.keys.caSerialsExpiry, serial)) > Date.now() / 1000,
    );
    // The fence (the record's slot) and the index entry (the queue's slot) share the one primary's round.
    const stats = await redis.primary.cli('INFO', 'commandstats');
    assert.equal(/cmdstat_wait:calls=(\d+)/.exec(stats)?.[1], '1', stats);
  });

  test('a 202 Delete means the revocation entry is on the replica; the other API replica answers revoked and serves the same CRL', async () => {
    const res = await signedFetch(svc.api.url, '/clientcertificates', { method: 'POST', body: '{}' });
    assert.equal(res.status, 201, await res.clone().text());
    const c = (await res.json()) as { clientCertificateId: string; pemEncodedCertificate: string };
    const serial = normalSerial(new X509Certificate(c.pemEncodedCertificate).serialNumber);
    const other = await svc.addApi();

    const del = await signedFetch(svc.api.url, `/clientcertificates/${c.clientCertificateId}`, {
      method: 'DELETE',
    });
    assert.equal(del.status, 202);
    // Acknowledged only once WAIT saw it on the replica: read the replica itself, at once.
    const onReplica = await redis.replicas[0]!.cli('ZSCORE', svc.keys.revoked(T), serial);
    assert.ok(Number(onReplica) > Date.now() / 1000, `revocation entry on the replica: ${onReplica}`);
    assert.equal(await redis.replicas[0]!.cli('EXISTS', svc.keys.certificate(T, c.clientCertificateId)), '0');

    // The other API process, which never saw the delete, answers revoked.
    writeFileSync(join(dir, 'ca.pem'), caPem.cert);
    writeFileSync(join(dir, 'c.pem'), c.pemEncodedCertificate);
    const out = await openssl([
      'ocsp',
      '-issuer',
      join(dir, 'ca.pem'),
      '-cert',
      join(dir, 'c.pem'),
      '-url',
      `${other.url}/ca/ocsp`,
      '-CAfile',
      join(dir, 'ca.pem'),
    ]);
    assert.match(out, /Response verify OK/, out);
    assert.match(out, /: revoked/);

    // Both replicas serve one CRL (stored in Redis, one CRL number), listing the serial.
    const [one, two] = await Promise.all(
      [svc.api.url, other.url].map(async (u) =>
        Buffer.from(await (await fetch(`${u}/ca/crl`)).arrayBuffer()),
      ),
    );
    assert.deepEqual(one, two);
    writeFileSync(join(dir, 'crl.der'), one!);
    const text = await openssl(['crl', '-inform', 'DER', '-in', join(dir, 'crl.der'), '-noout', '-text']);
    assert.match(text, new RegExp(`Serial Number: 0*${serial}`, 'i'));
  });
});
