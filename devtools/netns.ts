/**
 * Real network partitions for tests: each process in its own network namespace, all joined by a bridge
 * inside a hub namespace, and this process (the test) on the same subnet through one more link, so it
 * reaches every node while a cut between two nodes leaves its own view alone. A cut drops packets at
 * the receiver (iptables INPUT in the receiving namespace), so neither side sees an error: the partition
 * an operator fears, one that closes nothing. Needs root, `ip` (iproute2) and `iptables`; see
 * {@link netnsUnavailable}. Everything created here is named after one random lab id and removed by
 * `destroy()` (also when this process exits), and traffic never leaves the lab's namespaces.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { redisServerArgs } from '../shared/redis-server.js';
import { waitFor } from './redis-server.js';

const run = promisify(execFile);

async function sh(cmd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(cmd, args, { timeout: 10_000 });
  return stdout;
}

/** Why these tests cannot run here (not root, no `ip` or `iptables`, namespaces refused), or undefined. */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces and iptables need root';
  for (const tool of ['ip', 'iptables']) {
    try {
      await sh(tool, '-V');
    } catch {
      return `\`${tool}\` is not installed (Debian: apt-get install iproute2 iptables)`;
    }
  }
  const probe = `ccprobe${randomBytes(3).toString('hex')}`;
  try {
    await sh('ip', 'netns', 'add', probe);
    await sh('ip', 'netns', 'exec', probe, 'iptables', '-L', 'INPUT', '-n');
  } catch (err) {
    return `cannot create a network namespace with iptables in it: ${(err as Error).message.split('\n')[0]}`;
  } finally {
    await sh('ip', 'netns', 'del', probe).catch(() => undefined);
  }
  return undefined;
}

/** One namespace of the lab: a process runs in it with `ip netns exec <ns>`. */
export interface NetNode {
  name: string;
  /** The namespace's name. */
  ns: string;
  /** Its address on the lab's subnet. */
  ip: string;
}

/** A redis-server inside a lab namespace, on port 6379 of its own address. */
export interface NetRedis {
  node: NetNode;
  url: string;
  stop(): Promise<void>;
}

export interface NetLab {
  /** This process's address on the subnet. */
  hostIp: string;
  /** A new namespace joined to the bridge. */
  node(name: string): Promise<NetNode>;
  /** Starts redis-server in `node`, reachable from every node and from this process. */
  redis(node: NetNode): Promise<NetRedis>;
  /**
   * Drops, at `to`, every packet from `from` (one direction: a half-open connection). Cut both
   * directions for a full partition. Returns when the rule is in place.
   */
  drop(from: NetNode, to: NetNode): Promise<void>;
  /** Both directions between `a` and `b`. */
  cut(a: NetNode, b: NetNode): Promise<void>;
  /** Removes every drop rule: the network is whole again. */
  heal(): Promise<void>;
  /** Stops what it started and removes every namespace and link. Safe to call twice. */
  destroy(): Promise<void>;
}

const labs = new Set<() => void>();
process.once('exit', () => {
  // A test file that crashes would otherwise leave namespaces behind.
  for (const cleanup of labs) cleanup();
});

/** Creates an empty lab: the hub namespace with its bridge and this process's link to it. */
export async function createNetLab(): Promise<NetLab> {
  const id = randomBytes(2).toString('hex');
  const tag = `cc${id}`;
  const subnet = await freeSubnet();
  const hostIp = `${subnet}.1`;
  const hub = `${tag}-hub`;
  const namespaces: string[] = [];
  const links: string[] = [];
  const nodes: NetNode[] = [];
  const procs = new Set<ChildProcess>();

  const addNs = async (ns: string) => {
    await sh('ip', 'netns', 'add', ns);
    namespaces.push(ns);
    await sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
  };
  const removeAll = () => {
    for (const p of procs) p.kill('SIGKILL');
    // Deleting a namespace deletes the veth ends inside it, and with them their peers.
    for (const l of links) spawnSyncQuiet('ip', 'link', 'del', l);
    for (const ns of namespaces) spawnSyncQuiet('ip', 'netns', 'del', ns);
  };
  labs.add(removeAll);

  try {
    await addNs(hub);
    await sh('ip', '-n', hub, 'link', 'add', 'br0', 'type', 'bridge');
    await sh('ip', '-n', hub, 'link', 'set', 'br0', 'up');
    // This process's link: one end here with the host address, the other on the bridge.
    const hostLink = `${tag}h`;
    await sh('ip', 'link', 'add', hostLink, 'type', 'veth', 'peer', 'name', `${tag}hb`, 'netns', hub);
    links.push(hostLink);
    await sh('ip', 'addr', 'add', `${hostIp}/24`, 'dev', hostLink);
    await sh('ip', 'link', 'set', hostLink, 'up');
    await sh('ip', '-n', hub, 'link', 'set', `${tag}hb`, 'master', 'br0', 'up');
  } catch (err) {
    removeAll();
    labs.delete(removeAll);
    throw err;
  }

  const lab: NetLab = {
    hostIp,
    async node(name) {
      const n = nodes.length + 10;
      const ns = `${tag}-${name}`;
      await addNs(ns);
      const peer = `${tag}n${n}`;
      await sh('ip', '-n', hub, 'link', 'add', peer, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      await sh('ip', '-n', hub, 'link', 'set', peer, 'master', 'br0', 'up');
      await sh('ip', '-n', ns, 'addr', 'add', `${subnet}.${n}/24`, 'dev', 'eth0');
      await sh('ip', '-n', ns, 'link', 'set', 'eth0', 'up');
      const node = { name, ns, ip: `${subnet}.${n}` };
      nodes.push(node);
      return node;
    },
    async redis(node) {
      const dir = mkdtempSync(join(tmpdir(), 'cc-netredis-'));
      const args = [
        ...redisServerArgs({ port: 6379, dir, appendonly: false, appendfsync: 'everysec' }),
        // The last --bind wins: the node's own address, not loopback.
        '--bind',
        node.ip,
        '--protected-mode',
        'no',
      ];
      const proc = spawn('ip', ['netns', 'exec', node.ns, 'redis-server', ...args], { stdio: 'ignore' });
      procs.add(proc);
      proc.once('exit', () => procs.delete(proc));
      await waitFor(() => canConnect(node.ip, 6379), 10_000, 100);
      return {
        node,
        url: `redis://${node.ip}:6379`,
        async stop() {
          if (proc.exitCode === null && proc.signalCode === null) {
            await new Promise<void>((resolve) => {
              proc.once('exit', () => resolve());
              proc.kill('SIGKILL');
            });
          }
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
    async drop(from, to) {
      await sh('ip', 'netns', 'exec', to.ns, 'iptables', '-I', 'INPUT', '-s', from.ip, '-j', 'DROP');
    },
    async cut(a, b) {
      await Promise.all([lab.drop(a, b), lab.drop(b, a)]);
    },
    async heal() {
      await Promise.all(nodes.map((n) => sh('ip', 'netns', 'exec', n.ns, 'iptables', '-F', 'INPUT')));
    },
    async destroy() {
      removeAll();
      labs.delete(removeAll);
      namespaces.length = 0;
      links.length = 0;
    },
  };
  return lab;
}

/** A 10.x.y.0/24 no route of this machine uses, as its first three octets. */
async function freeSubnet(): Promise<string> {
  const routes = await sh('ip', '-4', 'route', 'show', 'table', 'all').catch(() => '');
  for (;;) {
    const [a, b] = randomBytes(2);
    const subnet = `10.${200 + (a! % 50)}.${b}`;
    if (!routes.includes(`${subnet}.`)) return subnet;
  }
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: 500 });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('timeout', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(false));
  });
}

/** Runs a cleanup command synchronously, ignoring failure (it may already be gone). */
function spawnSyncQuiet(cmd: string, ...args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 10_000 });
  } catch {
    // already gone
  }
}
