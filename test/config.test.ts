import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import { readConfigDocs, renderConfigDocs } from '../devtools/config-docs.js';
import { ConfigError, loadConfig } from '../shared/config.js';
import { KeyVault, keyAad } from '../shared/crypto/key-vault.js';

describe('loadConfig', () => {
  it('gives documented defaults for an empty environment', () => {
    const c = loadConfig({});
    assert.equal(c.port, 8080);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.generateTimeoutMs, 30_000);
    assert.equal(c.redisUrl, undefined);
    assert.equal(c.defaultRegion, 'us-east-1');
    assert.equal(c.defaultAccountId, '000000000000');
    assert.equal(c.workerConcurrency, availableParallelism() + 1);
  });

  it('takes a DEFAULT_REGION that exists in any partition', () => {
    for (const r of ['eu-west-1', 'cn-north-1', 'us-gov-west-1']) {
      assert.equal(loadConfig({ DEFAULT_REGION: r }).defaultRegion, r);
    }
  });

  const bad: [Record<string, string>, RegExp][] = [
    [{ PORT: 'eighty' }, /PORT must be a whole number, got "eighty"/],
    [{ PORT: '70000' }, /PORT must be between 0 and 65535, got 70000/],
    [{ GENERATE_TIMEOUT_MS: '3e4' }, /GENERATE_TIMEOUT_MS must be a whole number/],
    [{ WORKER_CONCURRENCY: '0' }, /WORKER_CONCURRENCY must be between 1 and 256/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ REDIS_URL: 'localhost:6379' }, /REDIS_URL must start with redis:\/\//],
    [{ MASTER_KEY: 'c2hvcnQ=' }, /MASTER_KEY must be the base64 encoding of exactly 32 bytes/],
    [{ NODE_ENV: 'production' }, /MASTER_KEY is required when NODE_ENV=production/],
    [{ DEFAULT_REGION: 'mars' }, /DEFAULT_REGION must look like an AWS region, e.g. us-east-1$/],
    [
      { DEFAULT_REGION: 'us-east-9' },
      /DEFAULT_REGION must be a region that exists in the AWS SDK's partition data, e.g. us-east-1, got "us-east-9"/,
    ],
    [{ DEFAULT_REGION: 'us-gov-west-9' }, /DEFAULT_REGION must be a region that exists/],
  ];
  for (const [env, message] of bad) {
    it(`fails at start naming the variable: ${JSON.stringify(env)}`, () => {
      assert.throws(
        () => loadConfig(env),
        (err: unknown) => err instanceof ConfigError && message.test(err.message),
      );
    });
  }

  it('reports every bad variable at once', () => {
    assert.throws(
      () => loadConfig({ PORT: 'x', LOG_LEVEL: 'loud' }),
      (err: Error) => /PORT/.test(err.message) && /LOG_LEVEL/.test(err.message),
    );
  });

  it('reports the rules between variables even when a single variable is also bad', () => {
    assert.throws(
      () =>
        loadConfig({
          PORT: 'x',
          NODE_ENV: 'production',
          WORKER_LOCK_DURATION_MS: '2000',
          WORKER_STALLED_INTERVAL_MS: '3000',
        }),
      (err: Error) =>
        /PORT must be a whole number/.test(err.message) &&
        /MASTER_KEY is required when NODE_ENV=production/.test(err.message) &&
        /WORKER_STALLED_INTERVAL_MS \(3000\) must not exceed WORKER_LOCK_DURATION_MS \(2000\)/.test(
          err.message,
        ),
    );
  });

  it('docs/configuration.md is what `npm run docs:config` makes from the schema', async () => {
    assert.equal(await readConfigDocs(), await renderConfigDocs(), 'stale: run npm run docs:config');
  });
});

describe('KeyVault', () => {
  const k1 = randomBytes(32).toString('base64');
  const k2 = randomBytes(32).toString('base64');
  const aad = keyAad('000000000000', 'us-east-1', 'abc123');

  it('round-trips with a fresh nonce every time', () => {
    const v = new KeyVault([k1]);
    const a = v.encrypt(Buffer.from('secret'), aad);
    const b = v.encrypt(Buffer.from('secret'), aad);
    assert.notEqual(a, b);
    assert.equal(v.decrypt(a, aad).toString(), 'secret');
    assert.ok(!a.includes(Buffer.from('secret').toString('base64url')));
  });

  it('refuses a ciphertext moved to another record', () => {
    const v = new KeyVault([k1]);
    const env = v.encrypt(Buffer.from('secret'), aad);
    assert.throws(() => v.decrypt(env, keyAad('000000000000', 'us-east-1', 'zzz999')));
  });

  it('reads records sealed under a previous master key after rotation', () => {
    const old = new KeyVault([k1]).encrypt(Buffer.from('old'), aad);
    const rotated = new KeyVault([k2, k1]);
    assert.equal(rotated.decrypt(old, aad).toString(), 'old');
    const fresh = rotated.encrypt(Buffer.from('new'), aad);
    assert.equal(KeyVault.envelopeKeyId(fresh), rotated.currentKeyId);
    assert.throws(() => new KeyVault([k1]).decrypt(fresh, aad), /unknown master key/);
  });
});
