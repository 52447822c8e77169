import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitFor } from '../../devtools/redis-server.js';

const run = promisify(execFile);

/** One redis-server (or Sentinel) process a failover test can freeze, resume and kill. */
export interface RedisProcess {
  port: number;
  readonly pid: number;
  readonly alive: boolean;
  /** SIGSTOP / SIGCONT. */
  pause(): void;
  resume(): void;
  kill(): Promise<void>;
  /** Starts it again, same port and arguments (e.g. a killed node coming back, as an orchestrator would). */
  respawn(): Promise<void>;
  /** A redis-cli command against it; stdout trimmed. */
  cli(...args: string[]): Promise<string>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of running) {
    p.kill('SIGCONT');
    p.kill('SIGKILL');
  }
});

async function spawnRedis(args: string[], port: number): Promise<RedisProcess> {
  let proc!: ChildProcess;
  let alive = false;
  let exited!: Promise<void>;
  const cli = async (...a: string[]) =>
    (await run('redis-cli', ['-p', String(port), ...a], { timeout: 5000 })).stdout.trim();
  const start = async () => {
    const p = spawn('redis-server', args, { stdio: 'ignore' });
    proc = p;
    running.add(p);
    alive = true;
    exited = new Promise<void>((resolve) =>
      p.once('exit', () => {
        alive = false;
        running.delete(p);
        resolve();
      }),
    );
    await waitFor(async () => !alive || (await cli('PING').catch(() => '')) === 'PONG', 10_000, 50);
    if (!alive) throw new Error(`redis-server ${args.join(' ')} exited at start`);
  };
  await start();
  return {
    respawn: start,
    port,
    get pid() {
      return proc.pid!;
    },
    get alive() {
      return alive;
    },
    pause: () => void proc.kill('SIGSTOP'),
    resume: () => void proc.kill('SIGCONT'),
    async kill() {
      if (!alive) return;
      proc.kill('SIGCONT');
      proc.kill('SIGKILL');
      await exited;
    },
    cli,
  };
}

function serverArgs(port: number, dir: string, extra: string[] = []): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'no',
    '--maxmemory-policy',
    'noeviction',
    // A full sync (a replica's first link, or its resync after a cut) starts at once: Redis's default waits
    // 5 s for more replicas to join a diskless transfer, which every test here would wait out.
    '--repl-diskless-sync-delay',
    '0',
    ...extra,
  ];
}

export interface TestReplicatedRedis {
  primary: RedisProcess;
  replicas: RedisProcess[];
  dir: string;
  destroy(): Promise<void>;
}

/** A primary and `replicas` replicas on free ports, returned once every replica is linked. */
export async function startPrimaryWithReplicas(replicaCount = 2, dir?: string): Promise<TestReplicatedRedis> {
  const base = dir ?? mkdtempSync(join(tmpdir(), 'cc-replicated-'));
  const all: RedisProcess[] = [];
  const destroy = async () => {
    await Promise.all(all.map((p) => p.kill()));
    if (!dir) rmSync(base, { recursive: true, force: true });
  };
  try {
    const pport = await freePort();
    mkdirs(base, 'p');
    const primary = await spawnRedis(serverArgs(pport, join(base, 'p')), pport);
    all.push(primary);
    const replicas: RedisProcess[] = [];
    for (let i = 0; i < replicaCount; i++) {
      const port = await freePort();
      mkdirs(base, `r${i}`);
      const r = await spawnRedis(
        serverArgs(port, join(base, `r${i}`), ['--replicaof', '127.0.0.1', String(pport)]),
        port,
      );
      all.push(r);
      replicas.push(r);
    }
    await waitFor(
      async () => (await primary.cli('INFO', 'replication')).includes(`connected_slaves:${replicas.length}`),
      15_000,
      100,
    );
    return { primary, replicas, dir: base, destroy };
  } catch (err) {
    await destroy();
    throw err;
  }
}

export interface TestSentinelSet {
  primary: RedisProcess;
  replicas: RedisProcess[];
  sentinels: RedisProcess[];
  /** `host:port,...`, the form REDIS_SENTINELS takes. */
  sentinelAddrs: string;
  masterName: string;
  /** The port the Sentinels now name as the primary. */
  currentPrimaryPort(): Promise<number>;
  destroy(): Promise<void>;
}

/**
 * A primary, `replicas` replicas and `sentinels` Sentinels (quorum 2) on free ports, with short
 * timeouts so a killed primary is replaced within a few seconds: down-after 1000 ms, failover-timeout
 * 2000 ms.
 */
export async function startSentinelSet(
  opts: { replicas?: number; sentinels?: number } = {},
): Promise<TestSentinelSet> {
  const dir = mkdtempSync(join(tmpdir(), 'cc-sentinel-'));
  const all: RedisProcess[] = [];
  const masterName = 'ccprimary';
  try {
    const { primary, replicas } = await startPrimaryWithReplicas(opts.replicas ?? 2, dir);
    all.push(primary, ...replicas);
    const pport = primary.port;
    const sentinels: RedisProcess[] = [];
    for (let i = 0; i < (opts.sentinels ?? 3); i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${i}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${masterName} 127.0.0.1 ${pport} 2`,
          `sentinel down-after-milliseconds ${masterName} 1000`,
          `sentinel failover-timeout ${masterName} 2000`,
          `sentinel parallel-syncs ${masterName} 2`,
          '',
        ].join('\n'),
      );
      const s = await spawnRedis([conf, '--sentinel'], port);
      all.push(s);
      sentinels.push(s);
    }
    // Every Sentinel must know the others and the replicas before a failover can be agreed.
    await waitFor(
      async () => {
        const infos = await Promise.all(sentinels.map((s) => s.cli('SENTINEL', 'MASTER', masterName)));
        return infos.every((i) => {
          const f = i.split('\n');
          const get = (k: string) => f[f.indexOf(k) + 1];
          return (
            get('num-other-sentinels') === String(sentinels.length - 1) &&
            get('num-slaves') === String(replicas.length)
          );
        });
      },
      20_000,
      200,
    );
    return {
      primary,
      replicas,
      sentinels,
      sentinelAddrs: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
      masterName,
      async currentPrimaryPort() {
        for (const s of sentinels) {
          if (!s.alive) continue;
          const out = await s.cli('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName).catch(() => '');
          const port = Number(out.split('\n')[1]);
          if (port) return port;
        }
        throw new Error('no Sentinel answered');
      },
      async destroy() {
        await Promise.all(all.map((p) => p.kill()));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await Promise.all(all.map((p) => p.kill()));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function mkdirs(dir: string, name: string) {
  mkdirSync(join(dir, name), { recursive: true });
}

export interface TestReplicatedCluster {
  /** Every node, masters and replicas. */
  nodes: RedisProcess[];
  /** `host:port,...`, the form REDIS_CLUSTER_NODES takes. */
  seeds: string;
  /** The master that owns `key`'s slot now, and its replicas. */
  shardOf(key: string): Promise<{ master: RedisProcess; replicas: RedisProcess[] }>;
  destroy(): Promise<void>;
}

/**
 * A Redis Cluster of `masters` masters with one replica each, on free ports (each node's bus on a
 * free port of its own), with a 1 s node timeout so a killed master's replica takes over within a
 * few seconds; `cluster-replica-validity-factor 0` lets a replica that was briefly cut off still do so.
 */
export async function startReplicatedCluster(masters = 3): Promise<TestReplicatedCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'cc-rcluster-'));
  const nodes: RedisProcess[] = [];
  try {
    for (let i = 0; i < masters * 2; i++) {
      const port = await freePort();
      const bus = await freePort();
      mkdirs(dir, `n${i}`);
      nodes.push(
        await spawnRedis(
          serverArgs(port, join(dir, `n${i}`), [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-port',
            String(bus),
            '--cluster-node-timeout',
            '1000',
            '--cluster-replica-validity-factor',
            '0',
          ]),
          port,
        ),
      );
    }
    const addrs = nodes.map((n) => `127.0.0.1:${n.port}`);
    await run('redis-cli', ['--cluster', 'create', ...addrs, '--cluster-replicas', '1', '--cluster-yes'], {
      timeout: 30_000,
    });
    await waitFor(
      async () => {
        const infos = await Promise.all(nodes.map((n) => n.cli('CLUSTER', 'INFO')));
        if (!infos.every((i) => i.includes('cluster_state:ok'))) return false;
        // Every replica linked to its master.
        const roles = await Promise.all(nodes.map((n) => n.cli('INFO', 'replication')));
        return roles.filter((r) => r.includes('master_link_status:up')).length === masters;
      },
      30_000,
      200,
    );
    const byPort = new Map(nodes.map((n) => [n.port, n]));
    return {
      nodes,
      seeds: addrs.join(','),
      async shardOf(key) {
        const live = nodes.find((n) => n.alive)!;
        const slot = Number(await live.cli('CLUSTER', 'KEYSLOT', key));
        const lines = (await live.cli('CLUSTER', 'NODES')).split('\n');
        const parsed = lines.map((l) => {
          const f = l.split(' ');
          return {
            id: f[0]!,
            port: Number(f[1]!.split('@')[0]!.split(':')[1]),
            flags: f[2]!,
            master: f[3]!,
            slots: f.slice(8),
          };
        });
        const owner = parsed.find(
          (p) =>
            p.flags.includes('master') &&
            !p.flags.includes('fail') &&
            p.slots.some((r) => {
              const [lo, hi] = r.split('-').map(Number);
              return slot >= lo! && slot <= (hi ?? lo)!;
            }),
        );
        if (!owner) throw new Error(`no master for slot ${slot}`);
        const replicas = parsed.filter((p) => p.master === owner.id).map((p) => byPort.get(p.port)!);
        return { master: byPort.get(owner.port)!, replicas };
      },
      async destroy() {
        await Promise.all(nodes.map((n) => n.kill()));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await Promise.all(nodes.map((n) => n.kill()));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
