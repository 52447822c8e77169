import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeArgs } from './entry.js';
import { waitFor } from './redis-server.js';

/** The repository root, where `api/main.ts` and `worker/main.ts` live. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** One parsed pino line of a child process. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface ServiceProcess {
  kind: 'api' | 'worker';
  pid: number;
  proc: ChildProcess;
  /** The API's base URL (api only). */
  url: string;
  /** Every JSON log line the process has written to stdout so far. */
  readonly logs: LogLine[];
  /** Non-JSON output (stderr and stray stdout), for failure messages. */
  readonly text: string[];
  /** Resolves with the exit code and signal once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly alive: boolean;
  /** Waits (bounded) for a log line matching `pred` and returns it. */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  signal(sig: NodeJS.Signals): void;
  /** SIGKILL if still running, and wait for the exit. */
  kill(): Promise<void>;
}

const spawned = new Set<ServiceProcess>();

/** Environment shared by every process of one test service: the same Redis, prefix and master key. */
export function serviceEnv(
  redis: { url: string } | { clusterNodes: string },
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    ...('url' in redis ? { REDIS_URL: redis.url } : { REDIS_CLUSTER_NODES: redis.clusterNodes }),
    REDIS_PREFIX: `p${randomBytes(4).toString('hex')}`,
    MASTER_KEY: randomBytes(32).toString('base64'),
    NODE_ENV: 'test',
    LOG_LEVEL: 'debug',
    HOST: '127.0.0.1',
    PORT: '0',
    // Big enough that worker/main.ts never relaunches itself as a child: a SIGKILL must hit the
    // worker itself, not a parent that would leave an orphan behind.
    UV_THREADPOOL_SIZE: '16',
    // Keys generated per job, so a job lasts long enough to be killed mid-way; tests that want
    // the pool set it.
    KEY_POOL_SIZE: '0',
    // As in startService: the per-account rate limit is tested on its own; load tests must not hit it.
    RATE_LIMIT_RPS: '0',
    ...extra,
  };
}

/** Where a spawned process runs: by default here; `netns`, inside that network namespace (devtools/netns.ts). */
export interface SpawnOptions {
  netns?: string;
  /** Run under `prlimit --nofile=N:N` (util-linux): the process's open-files limit, soft and hard. */
  nofile?: number;
}

function start(
  kind: 'api' | 'worker',
  env: Record<string, string>,
  where: SpawnOptions = {},
): ServiceProcess {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (!env.REDIS_URL) delete childEnv.REDIS_URL;
  if (!env.REDIS_CLUSTER_NODES) delete childEnv.REDIS_CLUSTER_NODES;
  // Plain node (built JavaScript under npm test, else the tsx loader), not the tsx CLI: the pid is the service itself, so signals
  // reach it directly and RSS figures are its own.
  // `ip netns exec` execs the command in place, so the pid is still the service's own.
  const command = [process.execPath, ...nodeArgs(join(kind, 'main.ts'))];
  // prlimit also execs the command in place.
  if (where.nofile) command.unshift('prlimit', `--nofile=${where.nofile}:${where.nofile}`, '--');
  if (where.netns) command.unshift('ip', 'netns', 'exec', where.netns);
  const proc = spawn(command[0]!, command.slice(1), {
    cwd: ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const text: string[] = [];
  const waiters = new Set<() => void>();
  const onLine = (line: string) => {
    if (!line.trim()) return;
    try {
      logs.push(JSON.parse(line) as LogLine);
    } catch {
      text.push(line);
    }
    for (const w of waiters) w();
  };
  const buffer = (stream: NodeJS.ReadableStream, each: (l: string) => void) => {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      parts.forEach(each);
    });
  };
  buffer(proc.stdout!, onLine);
  buffer(proc.stderr!, (l) => text.push(l));
  let alive = true;
  proc.once('exit', () => {
    alive = false;
  });
  // 'close', not 'exit': it comes after stdout and stderr are drained, so every line the process
  // wrote (pino writes asynchronously) is in `logs` once `exited` resolves.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      alive = false;
      for (const w of waiters) w();
      resolve({ code, signal });
    }),
  );
  const sp: ServiceProcess = {
    kind,
    pid: proc.pid!,
    proc,
    url: '',
    logs,
    text,
    exited,
    get alive() {
      return alive;
    },
    waitForLog(pred, timeoutMs = 20_000) {
      const found = logs.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = logs.find(pred);
          if (hit) done(() => resolve(hit));
          else if (!alive) done(() => reject(new Error(`${kind} ${proc.pid} exited: ${tail(sp)}`)));
        };
        const timer = setTimeout(
          () =>
            done(() =>
              reject(new Error(`${kind} ${proc.pid}: no such log line in ${timeoutMs} ms: ${tail(sp)}`)),
            ),
          timeoutMs,
        );
        const done = (f: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          f();
        };
        waiters.add(check);
      });
    },
    signal(sig) {
      if (alive) proc.kill(sig);
    },
    async kill() {
      if (alive) proc.kill('SIGKILL');
      await exited;
      spawned.delete(sp);
    },
  };
  spawned.add(sp);
  return sp;
}

function tail(p: ServiceProcess): string {
  return [...p.text.slice(-5), ...p.logs.slice(-5).map((l) => JSON.stringify(l))].join('\n');
}

/** Starts `api/main.ts` and waits until it listens; `url` is then its base URL. */
export async function spawnApi(
  env: Record<string, string>,
  timeoutMs = 30_000,
  where: SpawnOptions = {},
): Promise<ServiceProcess> {
  const p = start('api', env, where);
  try {
    const line = await p.waitForLog((l) => l.msg === 'API listening' && typeof l.url === 'string', timeoutMs);
    p.url = line.url as string;
  } catch (err) {
    await p.kill();
    throw err;
  }
  return p;
}

/** Starts `worker/main.ts` and waits until its BullMQ worker is connected and fetching jobs. */
export async function spawnWorker(
  env: Record<string, string>,
  timeoutMs = 30_000,
  where: SpawnOptions = {},
): Promise<ServiceProcess> {
  const p = start('worker', env, where);
  try {
    await p.waitForLog((l) => l.msg === 'worker ready', timeoutMs);
  } catch (err) {
    await p.kill();
    throw err;
  }
  return p;
}

/** SIGKILLs every process the helpers started and not yet reaped. Call it in `after`. */
export async function killAll(): Promise<void> {
  await Promise.all([...spawned].map((p) => p.kill()));
}

/** Waits (bounded) until `p` has exited and its output is drained. */
export async function waitForExit(p: ServiceProcess, timeoutMs = 30_000) {
  let done = false;
  void p.exited.then(() => (done = true));
  await waitFor(() => done, timeoutMs);
  return p.exited;
}
