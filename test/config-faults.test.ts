import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../shared/config.js';

describe('fault-tolerance configuration', () => {
  it('defaults to 10 s locks, a 5 s stall check, a 5 s watchdog and per-process shutdown timeouts', () => {
    const c = loadConfig({});
    assert.equal(c.workerLockDurationMs, 10_000);
    assert.equal(c.workerStalledIntervalMs, 5000);
    assert.equal(c.workerWatchdogIntervalMs, 5000);
    assert.equal(c.shutdownTimeoutMs, 0);
    assert.equal(c.redisClusterNodes, undefined);
  });

  it('parses REDIS_CLUSTER_NODES into seed nodes, IPv6 included', () => {
    assert.deepEqual(
      loadConfig({ REDIS_CLUSTER_NODES: 'redis-a:7000, 10.0.0.2:7001,[::1]:7002' }).redisClusterNodes,
      [
        { host: 'redis-a', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: '::1', port: 7002 },
      ],
    );
  });

  it('rejects a malformed REDIS_CLUSTER_NODES entry, naming the variable and the entry', () => {
    assert.throws(
      () => loadConfig({ REDIS_CLUSTER_NODES: 'redis-a:7000,redis-b' }),
      /REDIS_CLUSTER_NODES must be a comma-separated list of host:port, got "redis-b"/,
    );
    assert.throws(() => loadConfig({ REDIS_CLUSTER_NODES: 'a:70000' }), /REDIS_CLUSTER_NODES/);
  });

  it('refuses REDIS_URL and REDIS_CLUSTER_NODES together', () => {
    assert.throws(
      () => loadConfig({ REDIS_URL: 'redis://x:6379', REDIS_CLUSTER_NODES: 'a:7000' }),
      /set either REDIS_URL or REDIS_CLUSTER_NODES, not both/,
    );
  });

  it('refuses a stall check interval longer than the lock it checks', () => {
    assert.throws(
      () => loadConfig({ WORKER_LOCK_DURATION_MS: '2000', WORKER_STALLED_INTERVAL_MS: '3000' }),
      /WORKER_STALLED_INTERVAL_MS \(3000\) must not exceed WORKER_LOCK_DURATION_MS \(2000\)/,
    );
    assert.throws(
      () => loadConfig({ WORKER_LOCK_DURATION_MS: 'soon' }),
      /WORKER_LOCK_DURATION_MS must be a whole number, got "soon"/,
    );
  });
});
