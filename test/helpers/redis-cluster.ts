import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort, startRedis, waitFor, type TestRedis } from '../../devtools/redis-server.js';

const run = promisify(execFile);

export interface TestRedisCluster {
  nodes: TestRedis[];
  /** `host:port,...`, the form REDIS_CLUSTER_NODES takes. */
  seeds: string;
  /** The port of the master that owns `key`'s hash slot. */
  ownerOf(key: string): Promise<number>;
  destroy(): Promise<void>;
}

/**
 * A private Redis Cluster of `masters` redis-servers (no replicas) on free ports, slots spread by
 * `redis-cli --cluster create`. The cluster bus gets its own free port (`cluster-port`), since
 * port + 10000 may be out of range or taken.
 */
export async function startRedisCluster(masters = 3): Promise<TestRedisCluster> {
  const nodes: TestRedis[] = [];
  try {
    for (let i = 0; i < masters; i++) {
      const busPort = await freePort();
      nodes.push(
        await startRedis({
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-port',
            String(busPort),
            '--cluster-node-timeout',
            '5000',
          ],
        }),
      );
    }
    const addrs = nodes.map((n) => `127.0.0.1:${n.port}`);
    await run('redis-cli', ['--cluster', 'create', ...addrs, '--cluster-replicas', '0', '--cluster-yes'], {
      timeout: 30_000,
    });
    await waitFor(
      async () => {
        const infos = await Promise.all(
          nodes.map((n) => run('redis-cli', ['-p', String(n.port), 'cluster', 'info'], { timeout: 5000 })),
        );
        return infos.every((r) => r.stdout.includes('cluster_state:ok'));
      },
      30_000,
      200,
    );
    const port0 = String(nodes[0]!.port);
    return {
      nodes,
      seeds: addrs.join(','),
      async ownerOf(key) {
        const slot = Number((await run('redis-cli', ['-p', port0, 'cluster', 'keyslot', key])).stdout.trim());
        // `CLUSTER NODES`: "<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot ranges...>"
        const { stdout } = await run('redis-cli', ['-p', port0, 'cluster', 'nodes']);
        for (const line of stdout.trim().split('\n')) {
          const f = line.split(' ');
          const port = Number(f[1]!.split('@')[0]!.split(':')[1]);
          for (const range of f.slice(8)) {
            const [lo, hi] = range.split('-').map(Number);
            if (slot >= lo! && slot <= (hi ?? lo)!) return port;
          }
        }
        throw new Error(`no owner for slot ${slot}`);
      },
      async destroy() {
        await Promise.all(nodes.map((n) => n.destroy()));
      },
    };
  } catch (err) {
    await Promise.all(nodes.map((n) => n.destroy()));
    throw err;
  }
}
