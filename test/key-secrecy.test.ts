import assert from 'node:assert/strict';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { GenerateClientCertificateCommand } from '@aws-sdk/client-api-gateway';
import { KeyVault, keyAad } from '../shared/crypto/key-vault.js';
import type { Tenant } from '../shared/keys.js';
import type { KeySource } from '../worker/key-source.js';
import type { Redis } from 'ioredis';
import { awsClient } from '../devtools/aws-client.js';
import { useService } from './helpers/fixture.js';
import { dumpRedis } from './helpers/redis-dump.js';
import { startRedis } from '../devtools/redis-server.js';
import { startService } from '../devtools/service.js';
import { signedFetch } from '../devtools/signed-fetch.js';

/** Fragments any encoding of a private key would contain: PEM/DER base64, base64url, hex, raw bytes, JWK parts. */
function needles(pkcs8Der: Buffer): { label: string; bytes: Buffer }[] {
  const key = createPrivateKey({ key: pkcs8Der, format: 'der', type: 'pkcs8' });
  const pkcs1 = key.export({ type: 'pkcs1', format: 'der' });
  const jwk = key.export({ format: 'jwk' });
  const pem = key.export({ type: 'pkcs8', format: 'pem' }) as string;
  const out: { label: string; bytes: Buffer }[] = [];
  for (const [name, der] of [
    ['pkcs8', pkcs8Der],
    ['pkcs1', pkcs1],
  ] as const) {
    out.push({ label: `${name} base64`, bytes: Buffer.from(der.toString('base64').slice(100, 160)) });
    out.push({ label: `${name} base64url`, bytes: Buffer.from(der.toString('base64url').slice(100, 160)) });
    out.push({ label: `${name} hex`, bytes: Buffer.from(der.toString('hex').slice(200, 300)) });
    out.push({ label: `${name} HEX`, bytes: Buffer.from(der.toString('hex').slice(200, 300).toUpperCase()) });
    out.push({ label: `${name} raw`, bytes: der.subarray(100, 140) });
  }
  for (const part of ['d', 'p', 'q'] as const) {
    const b64url = jwk[part]!;
    out.push({ label: `jwk ${part}`, bytes: Buffer.from(b64url.slice(10, 60)) });
    out.push({
      label: `${part} hex`,
      bytes: Buffer.from(Buffer.from(b64url, 'base64url').toString('hex').slice(20, 100)),
    });
  }
  out.push({
    label: 'base64 of the PEM',
    bytes: Buffer.from(Buffer.from(pem).toString('base64').slice(120, 180)),
  });
  return out;
}

const MARKERS = [Buffer.from('PRIVATE KEY'), Buffer.from('PRIVATE-KEY')];

function findLeaks(haystacks: { where: string; bytes: Buffer }[], keys: Buffer[]): string[] {
  const all = keys.flatMap(needles);
  const leaks: string[] = [];
  for (const h of haystacks) {
    for (const m of MARKERS) if (h.bytes.includes(m)) leaks.push(`${h.where}: '${m.toString()}'`);
    for (const n of all) if (h.bytes.includes(n.bytes)) leaks.push(`${h.where}: ${n.label}`);
  }
  return leaks;
}

describe('private keys stay secret', () => {
  const fx = useService({ workers: 2 });
  const tenant: Tenant = { accountId: '000000000000', region: 'us-east-1' };

  it('no key material in any Redis key of any type, in the logs, or in HTTP answers after a run', async () => {
    const client = awsClient(fx.svc.api.url);
    const answers: string[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const out = await client.send(
        new GenerateClientCertificateCommand({ description: `secret ${i}`, tags: { n: String(i) } }),
      );
      ids.push(out.clientCertificateId!);
      answers.push(JSON.stringify(out));
    }
    const raw = await signedFetch(fx.svc.api.url, '/clientcertificates', {
      method: 'POST',
      body: '{"description":"raw"}',
    });
    const rawText = await raw.text();
    assert.equal(raw.status, 201, rawText);
    answers.push(rawText);
    ids.push((JSON.parse(rawText) as { clientCertificateId: string }).clientCertificateId);
    // A failing generation too: its job, error and retry must not carry a key either.
    const failing: KeySource = {
      take: () => Promise.reject(new Error('no keys today')),
      close: async () => {},
    };
    await Promise.all(fx.svc.workers.map((w) => w.close(1000)));
    const bad = fx.svc.addWorker({ keySource: failing, concurrency: 1 });
    const failed = await signedFetch(fx.svc.api.url, '/clientcertificates', { method: 'POST', body: '{}' });
    answers.push(await failed.text());
    assert.equal(failed.status, 500);
    await bad.close(1000);

    // The real keys: open each stored envelope with the service's own vault.
    const keys: Buffer[] = [];
    for (const id of ids) {
      const envelope = await fx.svc.store.getEncryptedKey(tenant, id);
      assert.ok(envelope, `no sealed key stored for ${id}`);
      assert.match(envelope, /^v1\.[0-9a-f]{16}\./);
      keys.push(fx.svc.vault.decrypt(envelope, keyAad(tenant.accountId, tenant.region, id)));
    }

    const dump = await dumpRedis(fx.svc.redis as Redis); // a single node here, so one SCAN sees every key
    const types = new Set(dump.map((d) => d.type));
    for (const t of ['hash', 'zset', 'stream'])
      assert.ok(types.has(t), `expected some ${t} keys, got ${[...types]}`);
    assert.ok(
      dump.some((d) => d.type === 'stream' && d.key.endsWith(':events')),
      'BullMQ events stream not scanned',
    );
    const haystacks = dump.flatMap((d) =>
      d.values.map((v) => ({ where: `redis ${d.type} ${d.key}`, bytes: v })),
    );
    haystacks.push(...fx.svc.logs.lines.map((l, i) => ({ where: `log line ${i}`, bytes: Buffer.from(l) })));
    haystacks.push(...answers.map((a, i) => ({ where: `HTTP answer ${i}`, bytes: Buffer.from(a) })));
    assert.ok(fx.svc.logs.lines.length > 10, 'the logs were not captured');

    // The scanner must be able to fail: a planted key is found.
    const planted = findLeaks(
      [{ where: 'planted', bytes: Buffer.from(`x${keys[0]!.toString('base64')}x`) }],
      keys,
    );
    assert.ok(planted.length > 0, 'the scanner does not find a planted key');

    assert.deepEqual(findLeaks(haystacks, keys), []);
  });
});

describe('master key rotation', () => {
  it('an envelope sealed under the old key stays readable after rotation; new ones use the new key', () => {
    const oldKey = randomBytes(32).toString('base64');
    const newKey = randomBytes(32).toString('base64');
    const before = new KeyVault([oldKey]);
    const secret = randomBytes(1200);
    const aad = keyAad('000000000000', 'us-east-1', 'abc123');
    const sealedOld = before.encrypt(secret, aad);

    const rotated = new KeyVault([newKey, oldKey]); // MASTER_KEY=new, MASTER_KEYS_PREVIOUS=old
    assert.deepEqual(rotated.decrypt(sealedOld, aad), secret);
    const sealedNew = rotated.encrypt(secret, aad);
    assert.equal(KeyVault.envelopeKeyId(sealedNew), rotated.currentKeyId);
    assert.notEqual(KeyVault.envelopeKeyId(sealedNew), KeyVault.envelopeKeyId(sealedOld));
    assert.throws(() => before.decrypt(sealedNew, aad), /unknown master key/);
    // Dropping the old key too early makes old records unreadable: the documented order matters.
    assert.throws(() => new KeyVault([newKey]).decrypt(sealedOld, aad), /unknown master key/);
    // A fresh nonce per record.
    assert.notEqual(rotated.encrypt(secret, aad).split('.')[2], sealedNew.split('.')[2]);
  });

  it('records stored before a rotation stay readable and new records use the new key, end to end', async () => {
    const redis = await startRedis();
    const oldKey = randomBytes(32).toString('base64');
    const newKey = randomBytes(32).toString('base64');
    const tenant: Tenant = { accountId: '000000000000', region: 'us-east-1' };
    const prefix = `rot${randomBytes(3).toString('hex')}`;
    try {
      const v1 = await startService(redis.url, { prefix, masterKeys: [oldKey] });
      const a = await awsClient(v1.api.url).send(
        new GenerateClientCertificateCommand({ description: 'before' }),
      );
      await v1.close();

      const v2 = await startService(redis.url, { prefix, masterKeys: [newKey, oldKey] });
      try {
        const b = await awsClient(v2.api.url).send(
          new GenerateClientCertificateCommand({ description: 'after' }),
        );
        const envA = (await v2.store.getEncryptedKey(tenant, a.clientCertificateId!))!;
        const envB = (await v2.store.getEncryptedKey(tenant, b.clientCertificateId!))!;
        assert.equal(KeyVault.envelopeKeyId(envA), new KeyVault([oldKey]).currentKeyId);
        assert.equal(KeyVault.envelopeKeyId(envB), v2.vault.currentKeyId);
        for (const [env, id, certPem] of [
          [envA, a.clientCertificateId!, a.pemEncodedCertificate!],
          [envB, b.clientCertificateId!, b.pemEncodedCertificate!],
        ] as const) {
          const der = v2.vault.decrypt(env, keyAad(tenant.accountId, tenant.region, id));
          // The key opened is the certificate's own.
          const { X509Certificate, createPublicKey } = await import('node:crypto');
          const pub = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
          assert.ok(new X509Certificate(certPem).publicKey.equals(pub));
        }
      } finally {
        await v2.close();
      }
    } finally {
      await redis.destroy();
    }
  });
});
