import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../shared/config.js';

describe('loadConfig: Sentinel, WAIT and worker probes', () => {
  it('defaults to no Sentinel, no WAIT (acknowledge once the primary has it) and no worker probe server', () => {
    const c = loadConfig({});
    assert.equal(c.redisSentinels, undefined);
    assert.equal(c.redisSentinelMaster, undefined);
    assert.equal(c.redisPassword, undefined);
    assert.equal(c.redisWaitReplicas, 0);
    assert.equal(c.redisWaitTimeoutMs, 1000);
    assert.equal(c.workerHealthPort, 0);
  });

  it('reads Sentinels, the monitored name and both passwords', () => {
    const c = loadConfig({
      REDIS_SENTINELS: '10.0.0.1:26379, [::1]:26380',
      REDIS_SENTINEL_MASTER: 'mymaster',
      REDIS_SENTINEL_PASSWORD: 's3',
      REDIS_PASSWORD: 'r3',
      REDIS_WAIT_REPLICAS: '1',
      REDIS_WAIT_TIMEOUT_MS: '250',
    });
    assert.deepEqual(c.redisSentinels, [
      { host: '10.0.0.1', port: 26379 },
      { host: '::1', port: 26380 },
    ]);
    assert.equal(c.redisSentinelMaster, 'mymaster');
    assert.equal(c.redisSentinelPassword, 's3');
    assert.equal(c.redisPassword, 'r3');
    assert.equal(c.redisWaitReplicas, 1);
    assert.equal(c.redisWaitTimeoutMs, 250);
  });

  const bad: [Record<string, string>, RegExp][] = [
    [{ REDIS_SENTINELS: '10.0.0.1:26379' }, /REDIS_SENTINEL_MASTER is required with REDIS_SENTINELS/],
    [{ REDIS_SENTINEL_MASTER: 'm' }, /REDIS_SENTINEL_MASTER is set but REDIS_SENTINELS is not/],
    [
      { REDIS_SENTINELS: 'nohost', REDIS_SENTINEL_MASTER: 'm' },
      /REDIS_SENTINELS must be a comma-separated list of host:port, got "nohost"/,
    ],
    [
      { REDIS_SENTINELS: 'a:1', REDIS_SENTINEL_MASTER: 'm', REDIS_URL: 'redis://x:6379' },
      /set only one of REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS/,
    ],
    [
      { REDIS_SENTINELS: 'a:1', REDIS_SENTINEL_MASTER: 'm', REDIS_CLUSTER_NODES: 'b:2' },
      /set only one of REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS/,
    ],
    [{ REDIS_WAIT_REPLICAS: 'two' }, /REDIS_WAIT_REPLICAS must be a whole number/],
    [{ REDIS_WAIT_TIMEOUT_MS: '0' }, /REDIS_WAIT_TIMEOUT_MS must be between 1 and 60000/],
    [{ WORKER_HEALTH_PORT: '70000' }, /WORKER_HEALTH_PORT must be between 0 and 65535/],
  ];
  for (const [env, message] of bad) {
    it(`rejects ${JSON.stringify(env)}`, () => {
      assert.throws(
        () => loadConfig(env),
        (err: unknown) => err instanceof ConfigError && message.test(err.message),
      );
    });
  }
});
