// test/helpers/: fixtures for the tests (useRedis, useService, ...); shared development tools live in devtools/.
import { after, before } from 'node:test';
import { killAll } from '../../devtools/processes.js';
import { startRedisCluster, type TestRedisCluster } from './redis-cluster.js';
import { startSentinelSet, type TestSentinelSet } from './redis-replicated.js';
import { startRedis, type StartRedisOptions, type TestRedis } from '../../devtools/redis-server.js';
import { startService, type ServiceOptions, type TestService } from '../../devtools/service.js';

/**
 * Gives the enclosing describe() its own redis-server on a free port: started in a before() hook; in
 * the after() hook, the processes spawned through devtools/processes.js are killed first, then the
 * server is destroyed (see useService for when the field is set).
 */
export function useRedis(opts: StartRedisOptions = {}): { redis: TestRedis } {
  const fx: Partial<{ redis: TestRedis }> = {};
  before(async () => {
    fx.redis = await startRedis(opts);
  });
  after(async () => {
    try {
      await killAll();
    } finally {
      await fx.redis?.destroy();
    }
  });
  return fx as { redis: TestRedis };
}

export interface ServiceFixture {
  /** The describe's own redis-server, on a free port. */
  redis: TestRedis;
  /** The API and worker(s) on it. */
  svc: TestService;
}

/**
 * Gives the enclosing describe() its own redis-server and a service on it (`startService(url, opts)`):
 * started in a before() hook, stopped in an after() hook, both registered by this call. The fields are
 * set once that before() has run: read them in hooks and tests, not in the describe body. node:test runs
 * a describe's hooks in the order they were registered, so hooks registered after this call see the
 * service started, and their after() runs once it is stopped.
 */
export function useService(opts: ServiceOptions = {}): ServiceFixture {
  const fx: Partial<ServiceFixture> = {};
  before(async () => {
    fx.redis = await startRedis();
    fx.svc = await startService(fx.redis.url, opts);
  });
  after(async () => {
    try {
      await fx.svc?.close();
    } finally {
      await fx.redis?.destroy();
    }
  });
  return fx as ServiceFixture;
}

/**
 * Gives the enclosing describe() its own Redis Cluster of `masters` masters, like useService() does a
 * redis-server: started in before(); in after(), the processes spawned through devtools/processes.js are
 * killed first, then the cluster is destroyed.
 */
export function useRedisCluster(masters = 3): { cluster: TestRedisCluster } {
  const fx: Partial<{ cluster: TestRedisCluster }> = {};
  before(async () => {
    fx.cluster = await startRedisCluster(masters);
  });
  after(async () => {
    try {
      await killAll();
    } finally {
      await fx.cluster?.destroy();
    }
  });
  return fx as { cluster: TestRedisCluster };
}

/**
 * Gives the enclosing describe() its own primary with replicas behind Sentinels (`startSentinelSet()`), like
 * useRedisCluster() does a cluster: started in before(); in after(), the processes spawned through
 * devtools/processes.js are killed first, then the set is destroyed.
 */
export function useSentinelSet(): { set: TestSentinelSet } {
  const fx: Partial<{ set: TestSentinelSet }> = {};
  before(async () => {
    fx.set = await startSentinelSet();
  });
  after(async () => {
    try {
      await killAll();
    } finally {
      await fx.set?.destroy();
    }
  });
  return fx as { set: TestSentinelSet };
}
