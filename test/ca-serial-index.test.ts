import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CaResponder } from '../api/ca-responder.js';
import { signedFetch } from '../devtools/signed-fetch.js';
import { ecCa, opensslAsync } from '../devtools/tls.js';
import { certificateAuthorityFrom } from '../shared/certificate-authority.js';
import { normalSerial, RevocationStore } from '../shared/revocation-store.js';
import { useService } from './helpers/fixture.js';

const T = { accountId: '000000000000', region: 'us-east-1' };

const openssl = async (args: string[]) => (await opensslAsync(args)).out;

describe('CA mode: the serial index OCSP reads is bounded by notAfter', () => {
  const caPem = ecCa('Serial Index Test CA');
  const ca = certificateAuthorityFrom(caPem.cert, caPem.key, { certFile: 'ca.pem', keyFile: 'ca.key' });
  const fx = useService({ ca, workers: 1 });
  const dir = mkdtempSync(join(tmpdir(), 'ca-serial-index-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const issue = async () => {
    const res = await signedFetch(fx.svc.api.url, '/clientcertificates', { method: 'POST', body: '{}' });
    assert.equal(res.status, 201);
    const c = (await res.json()) as {
      clientCertificateId: string;
      pemEncodedCertificate: string;
      expirationDate: number;
    };
    const x = new X509Certificate(c.pemEncodedCertificate);
    return { ...c, serial: normalSerial(x.serialNumber), notAfter: Date.parse(x.validTo) / 1000 };
  };

  test('a deleted certificate keeps its entry until notAfter (revoked); from notAfter on both are unknown, and the prune removes them', async () => {
    const live = await issue();
    const gone = await issue();
    const del = await signedFetch(fx.svc.api.url, `/clientcertificates/${gone.clientCertificateId}`, {
      method: 'DELETE',
    });
    assert.equal(del.status, 202);

    // Both indexed with their certificate's notAfter; the deleted one's entry stays (OCSP answers revoked).
    const { redis, keys } = fx.svc;
    for (const c of [live, gone]) {
      assert.equal(
        await redis.hget(keys.caSerials, c.serial),
        `${T.accountId}:${T.region}:${c.clientCertificateId}`,
      );
      assert.equal(Number(await redis.zscore(keys.caSerialsExpiry, c.serial)), c.notAfter);
    }

    // A responder whose clock the test sets, on the same Redis, asked with openssl's request bytes.
    let now = 0;
    const responder = new CaResponder({
      ca,
      caCertPem: ca.certPem,
      revocations: new RevocationStore(redis, keys),
      log: fx.svc.log,
      crlValiditySeconds: 86_400,
      ocspValiditySeconds: 300,
      now: () => now,
      pruneTimer: false,
    });
    after(() => responder.close());
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, caPem.cert);
    const certArgs = [live, gone].flatMap((c, i) => {
      const f = join(dir, `c${i}.pem`);
      writeFileSync(f, c.pemEncodedCertificate);
      return ['-cert', f];
    });
    await openssl(['ocsp', '-issuer', caFile, ...certArgs, '-no_nonce', '-reqout', join(dir, 'req.der')]);
    const request = readFileSync(join(dir, 'req.der'));
    const ask = async (): Promise<string[]> => {
      const { der } = await responder.ocsp(request, fx.svc.store);
      writeFileSync(join(dir, 'resp.der'), der);
      // -validity_period: the answer's thisUpdate is the test's clock, not the machine's.
      const out = await openssl([
        'ocsp',
        '-respin',
        join(dir, 'resp.der'),
        '-issuer',
        caFile,
        ...certArgs,
        '-CAfile',
        caFile,
        '-validity_period',
        String(2 * 366 * 86_400),
      ]);
      assert.match(out, /Response verify OK/, out);
      return [0, 1].map((i) => new RegExp(`c${i}\\.pem: (\\w+)`).exec(out)?.[1] ?? out);
    };

    // A second before notAfter: still good and revoked, and nothing is pruned.
    const notAfter = Math.min(live.notAfter, gone.notAfter);
    now = notAfter * 1000 - 1000;
    assert.deepEqual(await ask(), ['good', 'revoked']);
    assert.equal(await responder.pruneSerials(), 0);
    assert.equal(await redis.hlen(keys.caSerials), 2);

    // Past notAfter (and past the 3 s a nonce-less answer is reused): unknown for both before the prune
    // runs, and the prune removes both entries.
    now = Math.max(live.notAfter, gone.notAfter) * 1000 + 5000;
    assert.deepEqual(await ask(), ['unknown', 'unknown']);
    assert.equal(await redis.zscore(keys.revoked(T), gone.serial), String(gone.notAfter));
    assert.equal(await responder.pruneSerials(), 2);
    assert.equal(await redis.exists(keys.caSerials, keys.caSerialsExpiry), 0);
    // The tenant's revocation leaves too (no later delete in the tenant would have pruned it).
    assert.equal(await redis.exists(keys.revoked(T), keys.revokedAt(T)), 0);
    assert.deepEqual(await ask(), ['unknown', 'unknown']);
  });

  test('entries indexed before notAfter was recorded get it from the revocation, the record, or the longest lifetime', async () => {
    const { redis, keys } = fx.svc;
    const live = await issue();
    const gone = await issue();
    const del = await signedFetch(fx.svc.api.url, `/clientcertificates/${gone.clientCertificateId}`, {
      method: 'DELETE',
    });
    assert.equal(del.status, 202);
    // As an older worker left them: the hash entry only.
    await redis.zrem(keys.caSerialsExpiry, live.serial, gone.serial);
    await redis.hset(keys.caSerials, 'abcdef01', `${T.accountId}:${T.region}:zzzzzz`);
    const nowS = Math.floor(Date.now() / 1000);
    const store = new RevocationStore(redis, keys);
    assert.equal(await store.backfillSerialExpiry(nowS, 1000), 3);
    assert.equal(Number(await redis.zscore(keys.caSerialsExpiry, live.serial)), live.notAfter);
    assert.equal(Number(await redis.zscore(keys.caSerialsExpiry, gone.serial)), gone.notAfter);
    assert.equal(Number(await redis.zscore(keys.caSerialsExpiry, 'abcdef01')), nowS + 1000);
    assert.equal(await store.backfillSerialExpiry(nowS, 1000), 0, 'nothing left to fill');
    // The prune now bounds them: the orphan leaves first, the certificates at their notAfter.
    assert.equal(await store.pruneSerials(nowS + 1001), 1);
    assert.equal(await redis.hget(keys.caSerials, 'abcdef01'), null);
    assert.equal(await store.pruneSerials(Math.max(live.notAfter, gone.notAfter) + 1), 2);
    assert.equal(await redis.hlen(keys.caSerials), 0);
  });
});
